// The library as Subsonic apps see it (albums, artists, genres, stars), through /rest with the
// page's session cookie (or as a guest on a server without users). See docs/api.md, "The web
// player's session".

import { apiBase } from './api.js';

const CSRF = { 'X-Legato-CSRF': '1' };

/**
 * Where `/rest` is: under the API base for `legato serve`, or the subsonic function's path
 * behind an OpenFaaS gateway; found by `session()`, which the page asks first.
 */
let restBase = null;

/** The API base changed (the settings): `/rest` is looked for again. */
export function forgetRest() {
  restBase = null;
}

function rest() {
  return restBase || `${apiBase()}/rest`;
}

export function restUrl(method, params = {}) {
  const u = new URL(`${rest()}/${method}`);
  u.searchParams.set('f', 'json');
  u.searchParams.set('v', '1.16.1');
  u.searchParams.set('c', 'legato-web');
  for (const [k, v] of Object.entries(params)) {
    if (Array.isArray(v)) for (const one of v) u.searchParams.append(k, one);
    else if (v !== undefined && v !== null) u.searchParams.set(k, String(v));
  }
  return u.toString();
}

/** A Subsonic failure: `code` is the API's error code. */
export class SubsonicError extends Error {
  constructor(code, message) {
    super(message);
    this.name = 'SubsonicError';
    this.code = code;
  }
}

/**
 * Calls `method` and returns its `subsonic-response`; `write` adds the header that a change
 * made with the session cookie must carry.
 */
export async function call(method, params = {}, { write = false, signal } = {}) {
  let response;
  try {
    response = await fetch(restUrl(method, params), {
      headers: write ? CSRF : {},
      signal,
    });
  } catch (err) {
    if (err && err.name === 'AbortError') throw err;
    throw new SubsonicError(-1, 'could not reach the server — check the connection');
  }
  let body;
  try {
    body = await response.json();
  } catch {
    throw new SubsonicError(-1, `the server answered ${response.status} without a Subsonic answer`);
  }
  const answer = body && body['subsonic-response'];
  if (!answer) throw new SubsonicError(-1, 'the server gave no Subsonic answer');
  if (answer.status !== 'ok') {
    const e = answer.error || {};
    throw new SubsonicError(e.code ?? 0, e.message || 'the server refused the request');
  }
  return answer;
}

/** The cover of an album or a song at `size` pixels (resized once on the server and cached). */
export function coverUrl(id, size = 300) {
  return restUrl('getCoverArt', { id, size });
}

/** A Subsonic song as the player's track. */
export function songToTrack(song) {
  return {
    id: song.id,
    name: song.title || 'Untitled',
    author: song.artist || '',
    album: song.album || '',
    albumId: song.albumId || '',
    artistId: song.artistId || '',
    coverArt: song.coverArt || '',
    duration: Number(song.duration) || 0,
    track: song.track || 0,
    disc: song.discNumber || 0,
    starred: !!song.starred,
    plays: Number(song.playCount) || 0,
  };
}

// ---- the session -----------------------------------------------------------------------------

async function sessionRequest(method, body, base = rest()) {
  let response;
  try {
    response = await fetch(`${base}/session`, {
      method,
      headers: method === 'GET' ? {} : { ...CSRF, ...(body ? { 'Content-Type': 'application/x-www-form-urlencoded' } : {}) },
      body,
    });
  } catch {
    throw new Error('could not reach the server — check the connection');
  }
  if (response.status === 204) return null;
  let json = null;
  try {
    json = await response.json();
  } catch {
    /* handled below */
  }
  if (!response.ok) {
    if (response.status === 404) return { user: null, guest: false, unavailable: true };
    const message = json && json.error && json.error.message;
    throw new Error(message || `the server answered ${response.status}`);
  }
  return json;
}

/** `{user: {name, admin} | null, guest: bool}`: who the page is signed in as. */
export async function session() {
  if (restBase) return sessionRequest('GET');
  const base = apiBase();
  let answer = null;
  for (const candidate of [`${base}/rest`, `${base}/function/subsonic/rest`]) {
    answer = await sessionRequest('GET', undefined, candidate);
    if (!answer.unavailable) {
      restBase = candidate;
      return answer;
    }
  }
  return answer;
}

export function signIn(name, password) {
  return sessionRequest('POST', new URLSearchParams({ name, password }).toString());
}

export function signOut() {
  return sessionRequest('DELETE');
}
