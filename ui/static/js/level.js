// What the analysis at upload measured, used while a track plays: its loudness brings it to one
// level (no clipping against its measured true peak), and its waveform is drawn in the seek
// bar. Both come from the track's crud JSON (`loudness`, `true_peak`, `peaks`). In album mode
// every track of an album gets the album's gain, so its quiet and loud songs keep their
// difference.

import { getTrack } from './api.js';
import * as player from './player.js';
import * as subsonic from './subsonic.js';

/** The level every track is brought to, in LUFS (as streaming services play). */
export const TARGET_LUFS = -16;
/** The highest a peak may reach after the gain, in dBTP. */
const CEILING_DBTP = -1;
const STORAGE_KEY = 'legato.level';

const $ = (id) => document.getElementById(id);

const MODES = ['track', 'album', 'off'];
let mode = 'track';
/** Album id → Promise of `{loudness, true_peak}` (the album as one programme). */
const albums = new Map();
let context = null;
let gainNode = null;
let peaks = null;
let following = null;

/**
 * An album's loudness as one programme: the energy mean of its tracks' loudness, weighted by
 * their durations, and its highest true peak. Read once per album (its tracks' crud JSON).
 */
export function albumLevel(tracks) {
  const measured = tracks.filter((t) => Number.isFinite(t.loudness) && t.duration > 0);
  if (!measured.length) return null;
  const seconds = measured.reduce((sum, t) => sum + t.duration, 0);
  const energy = measured.reduce((sum, t) => sum + t.duration * 10 ** (t.loudness / 10), 0);
  const peaks = measured.map((t) => t.true_peak).filter(Number.isFinite);
  return {
    loudness: 10 * Math.log10(energy / seconds),
    true_peak: peaks.length ? Math.max(...peaks) : undefined,
  };
}

async function albumOf(track) {
  let albumId = track.albumId;
  if (!albumId) {
    // A track played from the table: its album as Subsonic groups it.
    const { song } = await subsonic.call('getSong', { id: track.id });
    albumId = song && song.albumId;
  }
  if (!albumId) return null;
  if (!albums.has(albumId)) {
    albums.set(albumId, (async () => {
      const { album } = await subsonic.call('getAlbum', { id: albumId });
      const tracks = await Promise.all((album.song || []).map((s) => getTrack(s.id)));
      return albumLevel(tracks);
    })());
  }
  return albums.get(albumId);
}

/** The gain in dB that brings `track` (or, in album mode, its `album`) to the target: 0 when off or not measured. */
export function gainFor(track, album = null) {
  if (mode === 'album' && album) track = album;
  if (mode === 'off' || !track || !Number.isFinite(track.loudness)) return 0;
  let db = TARGET_LUFS - track.loudness;
  if (Number.isFinite(track.true_peak)) db = Math.min(db, CEILING_DBTP - track.true_peak);
  return Math.max(-30, Math.min(18, db));
}

/**
 * The element's path through Web Audio, made once, for the first track that needs a change
 * (a boost needs it: the element's volume only goes down; and an element feeds one graph
 * only). Routed only once the context runs: a context the browser keeps suspended (no
 * interaction with the page yet) would silence the element, so it then plays as recorded and
 * the next track tries again.
 */
async function graph() {
  if (gainNode) return true;
  try {
    if (!context) context = new AudioContext();
    if (context.state !== 'running') {
      await Promise.race([context.resume(), new Promise((r) => setTimeout(r, 500))]);
    }
    if (context.state !== 'running') return false;
    const source = context.createMediaElementSource($('audio'));
    gainNode = context.createGain();
    source.connect(gainNode).connect(context.destination);
    return true;
  } catch {
    return false;
  }
}

/** Sets the gain for track `id`; `data-gain-db` on the element says what is applied. */
async function applyGain(db, id) {
  const audio = $('audio');
  if (db === 0 && !gainNode) {
    audio.dataset.gainDb = '0.00';
    return;
  }
  const routed = await graph();
  if (following !== id) return; // another track started meanwhile: its own call sets the gain
  if (!routed) {
    audio.dataset.gainDb = '0.00';
    audio.dataset.levelPending = 'true';
    return;
  }
  delete audio.dataset.levelPending;
  if (context.state === 'suspended') context.resume().catch(() => {});
  gainNode.gain.value = 10 ** (db / 20);
  audio.dataset.gainDb = db.toFixed(2);
}

// ---- the waveform --------------------------------------------------------------------------

function drawWave() {
  const canvas = $('seek-wave');
  const bar = canvas.parentElement;
  bar.classList.toggle('has-wave', !!peaks);
  if (!peaks) return;
  const width = canvas.clientWidth;
  const height = canvas.clientHeight;
  const scale = window.devicePixelRatio || 1;
  if (canvas.width !== Math.round(width * scale)) canvas.width = Math.round(width * scale);
  if (canvas.height !== Math.round(height * scale)) canvas.height = Math.round(height * scale);
  const g = canvas.getContext('2d');
  g.setTransform(scale, 0, 0, scale, 0, 0);
  g.clearRect(0, 0, width, height);
  const audio = $('audio');
  const d = Number.isFinite(audio.duration) && audio.duration > 0 ? audio.duration : 0;
  const played = d ? Math.min(1, audio.currentTime / d) : 0;
  const style = getComputedStyle(canvas);
  const bars = Math.max(1, Math.floor(width / 3));
  const top = Math.max(...peaks) || 1; // the shape of the track, whatever its level
  for (let i = 0; i < bars; i += 1) {
    const from = Math.floor((i / bars) * peaks.length);
    const to = Math.max(from + 1, Math.floor(((i + 1) / bars) * peaks.length));
    const value = Math.max(...peaks.slice(from, to)) / top;
    const h = Math.max(2, value * height);
    g.fillStyle = i / bars < played ? style.getPropertyValue('--wave-played') : style.getPropertyValue('--wave');
    g.fillRect(i * 3, (height - h) / 2, 2, h);
  }
}

async function follow(track) {
  following = track ? track.id : null;
  peaks = null;
  drawWave();
  if (!track) return;
  let full = track;
  try {
    full = await getTrack(track.id);
  } catch {
    /* not measured, or not reachable through crud: played as it is */
  }
  if (following !== track.id) return;
  let album = null;
  if (mode === 'album') {
    try {
      album = await albumOf(track);
    } catch {
      albums.delete(track.albumId); // read again next time; this track plays at its own level
    }
    if (following !== track.id) return;
  }
  peaks = Array.isArray(full.peaks) && full.peaks.length ? full.peaks : null;
  $('seek-wave').dataset.peaks = peaks ? String(peaks.length) : '0';
  drawWave();
  await applyGain(gainFor(full, album), track.id);
}

export function setMode(value) {
  mode = MODES.includes(value) ? value : 'track';
  try {
    localStorage.setItem(STORAGE_KEY, mode);
  } catch {
    /* kept for this page only */
  }
  const current = player.currentTrack();
  if (current) follow(current);
}

export function currentMode() {
  return mode;
}

export function init() {
  try {
    const saved = localStorage.getItem(STORAGE_KEY);
    mode = MODES.includes(saved) ? saved : 'track';
  } catch {
    mode = 'track';
  }
  player.events.addEventListener('change', () => {
    const t = player.currentTrack();
    if ((t ? t.id : null) !== following) follow(t);
  });
  const audio = $('audio');
  audio.addEventListener('timeupdate', drawWave);
  audio.addEventListener('durationchange', drawWave);
  window.addEventListener('resize', drawWave);
  const select = $('level-mode');
  if (select) {
    select.value = mode;
    select.addEventListener('change', () => setMode(select.value));
  }
}
