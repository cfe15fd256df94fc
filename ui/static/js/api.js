// The HTTP API of docs/api.md: /function/crud and /function/streaming under a base URL that is
// the page's own origin unless `?api=` or the saved setting says otherwise.

const STORAGE_KEY = 'legato.apiBase';

function clean(url) {
  return String(url || '').trim().replace(/\/+$/, '');
}

/** Where the base URL comes from: 'query' (?api=), 'saved' (localStorage) or 'page'. */
export function apiSource() {
  const fromQuery = new URLSearchParams(location.search).get('api');
  if (fromQuery && clean(fromQuery)) return 'query';
  if (readSaved()) return 'saved';
  return 'page';
}

function readSaved() {
  try {
    return clean(localStorage.getItem(STORAGE_KEY));
  } catch {
    return '';
  }
}

/** The API base URL without a trailing slash, e.g. `http://127.0.0.1:8080`. */
export function apiBase() {
  const fromQuery = new URLSearchParams(location.search).get('api');
  if (fromQuery && clean(fromQuery)) return clean(fromQuery);
  const saved = readSaved();
  if (saved) return saved;
  return location.origin;
}

/** The saved setting ('' when none). */
export function savedApiBase() {
  return readSaved();
}

/** Saves a base URL (an empty string forgets it). Throws on a URL that is not http(s). */
export function saveApiBase(value) {
  const v = clean(value);
  if (v) {
    let u;
    try {
      u = new URL(v);
    } catch {
      throw new Error('Enter a full URL, such as http://127.0.0.1:8080');
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('The URL must start with http:// or https://');
  }
  try {
    if (v) localStorage.setItem(STORAGE_KEY, v);
    else localStorage.removeItem(STORAGE_KEY);
  } catch {
    /* storage may be disabled; the setting then lasts for this page only */
  }
}

export function crudUrl(path = '') {
  return `${apiBase()}/function/crud${path}`;
}

/**
 * The playlist URL of a track, resolved against the API base (which may carry a path prefix),
 * under its stable name: a reprocessed track's playlist (`g2-index.m3u8`, as after an MP3's
 * follow-up job) is retired by the next reprocessing, while `index.m3u8` beside it always
 * answers the current one.
 */
export function playlistUrl(track) {
  const p = track && track.playlist && track.playlist.replace(/(^|\/)g[0-9]+-index\.m3u8(?=$|\?)/, '$1index.m3u8');
  if (p && /^https?:\/\//i.test(p)) return p;
  if (p && p.startsWith('/function/')) return apiBase() + p;
  return `${apiBase()}/function/streaming/${encodeURIComponent(track.id)}/index.m3u8`;
}

/** Where the original uploaded file of a track is downloaded from (null when it has none). */
export function fileUrl(track) {
  if (!track || !track.source) return null;
  return crudUrl(`/${encodeURIComponent(track.id)}/file`);
}

/** An error from the API, with the server's stable code when it gave one. */
export class ApiError extends Error {
  constructor(status, code, serverMessage) {
    super(describeError(status, code, serverMessage));
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.serverMessage = serverMessage;
  }
}

const MESSAGES = {
  'not-audio': 'not an audio file we can read',
  'empty-file': 'the file is empty',
  'unsupported-format': 'this audio format is not supported',
  'payload-too-large': 'the file is larger than the server accepts',
  'invalid-multipart': 'the upload was malformed; try again',
  'missing-field': 'the request was missing a field',
  'invalid-json': 'the server could not read the request',
  'invalid-base64': 'the server could not read the request',
  'invalid-parameter': null, // the server's own message says which parameter
  'invalid-id': 'that track id is not valid',
  'not-found': 'the track no longer exists (it may have been deleted)',
  'no-route': 'the server has no such endpoint — is the API address right?',
  'method-not-allowed': 'the server does not allow that here — is the API address right?',
  'store-unavailable': 'the server cannot reach its storage right now; try again later',
  'internal-error': null,
};

/** A short sentence for an error answer, from its code first, then its status. */
export function describeError(status, code, serverMessage) {
  if (code && MESSAGES[code]) return MESSAGES[code];
  if (code === 'internal-error') return `the server hit an internal error${serverMessage ? `: ${serverMessage}` : ''}`;
  if (serverMessage) return serverMessage;
  switch (status) {
    case 0: return 'could not reach the server — check the connection and the API address';
    case 404: return 'not found';
    case 413: return MESSAGES['payload-too-large'];
    case 415: return MESSAGES['not-audio'];
    case 503: return MESSAGES['store-unavailable'];
    default: return status >= 500 ? `the server failed (HTTP ${status})` : `the request failed (HTTP ${status})`;
  }
}

/** Reads `{"error": {"code", "message"}}` out of an answer's text, tolerating anything else. */
export function parseErrorBody(text) {
  if (!text) return { code: null, message: null };
  try {
    const body = JSON.parse(text);
    const e = body && body.error;
    if (e && typeof e === 'object') return { code: e.code || null, message: e.message || null };
    if (typeof e === 'string') return { code: null, message: e };
  } catch {
    /* not JSON */
  }
  const t = String(text).trim();
  return { code: null, message: t.length && t.length < 200 && !t.startsWith('<') ? t : null };
}

async function request(method, path, { body, signal, query } = {}) {
  let url = crudUrl(path);
  if (query) {
    const qs = new URLSearchParams(query).toString();
    if (qs) url += `?${qs}`;
  }
  // The session cookie goes along to the page's own server (fetch's default, same-origin: a
  // signed-in admin writes without an API key); a write carries the header that another
  // site's page cannot add.
  const init = { method, signal, headers: { Accept: 'application/json' } };
  if (method !== 'GET' && method !== 'HEAD') init.headers['X-Legato-CSRF'] = '1';
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(url, init);
  } catch (err) {
    if (err && err.name === 'AbortError') throw err;
    throw new ApiError(0, null, null);
  }
  const text = await res.text();
  if (!res.ok) {
    const { code, message } = parseErrorBody(text);
    throw new ApiError(res.status, code, message);
  }
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      throw new ApiError(res.status, null, 'the server answered with something that is not JSON');
    }
  }
  return { data, headers: res.headers };
}

/**
 * One page of tracks: `{tracks, total}`. `total` comes from X-Total-Count; when that header is
 * missing or unreadable (a gateway that does not expose it), it is estimated from the page.
 */
export async function listTracks({ q, sort, order, limit, offset }, signal) {
  const query = { limit: String(limit), offset: String(offset), sort, order };
  if (q) query.q = q;
  const { data, headers } = await request('GET', '', { query, signal });
  const tracks = Array.isArray(data) ? data : [];
  const header = headers.get('X-Total-Count');
  let total = header === null ? NaN : Number.parseInt(header, 10);
  let exact = true;
  if (!Number.isFinite(total)) {
    exact = false;
    total = offset + tracks.length + (tracks.length === limit ? 1 : 0);
  }
  return { tracks, total, exact };
}

export async function getTrack(id, signal) {
  return (await request('GET', `/${encodeURIComponent(id)}`, { signal })).data;
}

export async function updateTrack(id, fields) {
  return (await request('PATCH', `/${encodeURIComponent(id)}`, { body: fields })).data;
}

export async function deleteTrack(id) {
  return (await request('DELETE', `/${encodeURIComponent(id)}`)).data;
}
