// Playback: an <audio> element fed by hls.js (served from /vendor), or by the browser's own HLS
// where hls.js cannot run (Safari on iOS). Owns the player bar at the bottom of the page.

import { playlistUrl } from './api.js';
import { coverUrl } from './subsonic.js';
import { formatTime } from './format.js';

const $ = (id) => document.getElementById(id);

const audio = $('audio');
const playButton = $('play-button');
const prevButton = $('prev-button');
const nextButton = $('next-button');
const seek = $('seek');
const seekPlayed = $('seek-played');
const seekBuffered = $('seek-buffered');
const elapsedEl = $('time-elapsed');
const totalEl = $('time-total');
const muteButton = $('mute-button');
const volume = $('volume');
const npTitle = $('np-title');
const npArtist = $('np-artist');
const errorBox = $('player-error');
const errorText = $('player-error-text');

/** Fires 'change' (track or play state changed) and 'missing' (the track is gone from the server). */
export const events = new EventTarget();

let hls = null;
let current = null;
let token = 0; // bumps on every load, so late callbacks of an older load are ignored
let mediaRecoveries = 0;
let scrubbing = false;
let pendingSeek = null;
let loading = false;
let failed = false;
let hasTracks = false;
let navigator_ = { next: async () => null, prev: async () => null, first: () => null };

/** How the page moves through the visible list: `{next(track, auto), prev(track), first()}`. */
export function setNavigator(n) {
  navigator_ = n;
}

export function currentTrack() {
  return current;
}

export function isPlaying() {
  return !!current && !audio.paused && !audio.ended;
}

/** Whether the visible list has tracks (the play button can then start the first one). */
export function setHasTracks(v) {
  hasTracks = v;
  renderButtons();
}

/** Which engine plays HLS here: 'hls.js', 'native' or null. */
export function engine() {
  if (window.Hls && window.Hls.isSupported()) return 'hls.js';
  if (audio.canPlayType('application/vnd.apple.mpegurl')) return 'native';
  return null;
}

function teardown() {
  token += 1;
  if (hls) {
    hls.destroy();
    hls = null;
  }
  if (audio.getAttribute('src') !== null) {
    audio.removeAttribute('src');
    audio.load();
  }
  pendingSeek = null;
  mediaRecoveries = 0;
}

/** Starts `track` from its beginning. */
export function play(track) {
  if (!track) return;
  teardown();
  const my = token;
  current = track;
  failed = false;
  loading = true;
  clearError();
  const url = playlistUrl(track);
  const how = engine();
  renderTrack();
  renderTime();
  renderBuffered();
  if (how === 'hls.js') {
    hls = new window.Hls({
      enableWorker: true,
      maxBufferLength: 30,
      backBufferLength: 60,
      startFragPrefetch: true,
    });
    hls.on(window.Hls.Events.ERROR, (_event, data) => onHlsError(my, data));
    hls.attachMedia(audio);
    hls.loadSource(url);
  } else if (how === 'native') {
    audio.src = url;
  } else {
    loading = false;
    failed = true;
    showError(window.Hls ? 'This browser cannot play HLS streams.' : 'The player could not start: its HLS library did not load.');
    emitChange();
    return;
  }
  startPlayback(my);
  emitChange();
}

function startPlayback(my) {
  const p = audio.play();
  if (p && p.catch) {
    p.catch((err) => {
      if (my !== token) return;
      if (err && err.name === 'AbortError') return; // a newer load replaced this one
      loading = false;
      if (err && err.name === 'NotAllowedError') {
        showError('The browser blocked playback until you interact with the page: press play.');
      } else if (!failed) {
        failed = true;
        showError(`“${current ? current.name : 'This track'}” could not be played${err && err.message ? ` (${err.message})` : ''}.`);
      }
      renderButtons();
    });
  }
}

export function toggle() {
  if (!current) {
    const first = navigator_.first();
    if (first) play(first);
    return;
  }
  if (failed || (!hls && audio.getAttribute('src') === null)) {
    const resumeAt = audio.currentTime || 0;
    play(current);
    if (resumeAt > 0) seekTo(resumeAt);
    return;
  }
  if (audio.paused || audio.ended) startPlayback(token);
  else audio.pause();
}

export function pause() {
  if (current && !audio.paused) audio.pause();
}

/** Stops and forgets the current track (after it was deleted, for instance). */
export function stop() {
  teardown();
  current = null;
  loading = false;
  failed = false;
  renderTrack();
  renderTime();
  renderBuffered();
  emitChange();
}

/** Refreshes the shown name/author after an edit. */
export function trackUpdated(track) {
  if (current && track && current.id === track.id) {
    current = { ...current, ...track };
    renderTrack();
  }
}

export async function next(auto = false) {
  if (!current) return;
  const t = await navigator_.next(current, auto);
  if (t) play(t);
  else if (auto) emitChange();
}

export async function previous() {
  if (!current) return;
  if (audio.currentTime > 3) {
    seekTo(0);
    return;
  }
  const t = await navigator_.prev(current);
  if (t) play(t);
  else seekTo(0);
}

export function seekTo(seconds) {
  if (!current) return;
  const d = duration();
  const s = Math.max(0, Number.isFinite(d) ? Math.min(seconds, Math.max(0, d - 0.05)) : seconds);
  if (audio.readyState === 0) {
    pendingSeek = s;
  } else {
    audio.currentTime = s;
  }
  renderTime(s);
}

export function seekBy(delta) {
  if (current) seekTo((audio.currentTime || 0) + delta);
}

function duration() {
  if (Number.isFinite(audio.duration) && audio.duration > 0) return audio.duration;
  return current && Number.isFinite(current.duration) ? current.duration : NaN;
}

// ---- errors -------------------------------------------------------------------------------

function onHlsError(my, data) {
  if (my !== token || !data) return;
  if (!data.fatal) return; // hls.js retries and recovers by itself
  const H = window.Hls;
  const name = current ? `“${current.name}”` : 'This track';
  if (data.type === H.ErrorTypes.MEDIA_ERROR && mediaRecoveries < 2) {
    mediaRecoveries += 1;
    hls.recoverMediaError();
    return;
  }
  const status = data.response && typeof data.response.code === 'number' ? data.response.code : null;
  let message;
  if (data.type === H.ErrorTypes.NETWORK_ERROR) {
    if (status === 404 || status === 410) {
      message = `${name} is no longer available — it may have been deleted.`;
      events.dispatchEvent(new CustomEvent('missing', { detail: current }));
    } else if (status && status >= 500) {
      message = `The server failed while streaming ${name} (HTTP ${status}). Try again later.`;
    } else if (status && status >= 400) {
      message = `The server refused to stream ${name} (HTTP ${status}).`;
    } else {
      message = `Network error while loading ${name}. Check your connection and try again.`;
    }
  } else if (data.type === H.ErrorTypes.MEDIA_ERROR) {
    message = `${name} could not be decoded by this browser.`;
  } else {
    message = `Playback of ${name} failed (${data.details || 'unknown error'}).`;
  }
  fail(message);
}

async function onNativeError() {
  if (hls || !current || audio.getAttribute('src') === null) return;
  const my = token;
  const name = `“${current.name}”`;
  let message = `${name} could not be played in this browser.`;
  try {
    const res = await fetch(playlistUrl(current), { method: 'HEAD', cache: 'no-store' });
    if (res.status === 404 || res.status === 410) {
      message = `${name} is no longer available — it may have been deleted.`;
      events.dispatchEvent(new CustomEvent('missing', { detail: current }));
    } else if (!res.ok) {
      message = `The server failed while streaming ${name} (HTTP ${res.status}).`;
    } else if (audio.error && audio.error.code === MediaError.MEDIA_ERR_NETWORK) {
      message = `Network error while loading ${name}. Check your connection and try again.`;
    }
  } catch {
    message = `Network error while loading ${name}. Check your connection and try again.`;
  }
  if (my === token) fail(message);
}

function fail(message) {
  const resumeAt = audio.currentTime || 0;
  if (hls) {
    hls.destroy();
    hls = null;
  }
  token += 1;
  failed = true;
  loading = false;
  if (!audio.paused) audio.pause();
  showError(message);
  renderTime(resumeAt);
  emitChange();
}

function showError(message) {
  errorText.textContent = message;
  errorBox.hidden = false;
}

export function clearError() {
  errorBox.hidden = true;
  errorText.textContent = '';
}

// ---- rendering ----------------------------------------------------------------------------

function emitChange() {
  renderButtons();
  updateMediaSession();
  events.dispatchEvent(new CustomEvent('change', { detail: { track: current, playing: isPlaying() } }));
}

function renderArt() {
  const art = document.querySelector('.np-art');
  if (!art) return;
  const old = art.querySelector('img');
  if (old) old.remove();
  if (current && current.coverArt) {
    const img = document.createElement('img');
    img.alt = '';
    img.src = coverUrl(current.coverArt, 96);
    img.addEventListener('error', () => img.remove());
    art.append(img);
  }
}

function renderTrack() {
  renderArt();
  if (current) {
    npTitle.textContent = current.name || 'Untitled';
    npArtist.textContent = current.author || 'Unknown artist';
    document.title = `${current.name || 'Untitled'} — ${current.author || 'Unknown artist'} · Legato`;
  } else {
    npTitle.textContent = 'Nothing playing';
    npArtist.textContent = 'Pick a track to start';
    document.title = 'Legato';
  }
}

function renderButtons() {
  const playing = isPlaying();
  playButton.disabled = !current && !hasTracks;
  playButton.setAttribute('aria-label', playing ? 'Pause' : 'Play');
  playButton.title = playing ? 'Pause (Space)' : 'Play (Space)';
  playButton.querySelector('use').setAttribute('href', playing ? '#i-pause' : '#i-play');
  playButton.classList.toggle('is-loading', loading && !!current);
  playButton.setAttribute('aria-busy', loading && current ? 'true' : 'false');
  prevButton.disabled = !current;
  nextButton.disabled = !current;
  seek.disabled = !current || failed;
  document.body.classList.toggle('has-track', !!current);
}

function renderTime(at) {
  const d = duration();
  const t = at !== undefined ? at : current ? audio.currentTime || 0 : 0;
  const max = Number.isFinite(d) ? d : 0;
  if (seek.max !== String(max)) seek.max = String(max);
  if (!scrubbing) {
    seek.value = String(Math.min(t, max));
    elapsedEl.textContent = formatTime(current ? t : 0);
    seekPlayed.style.width = max > 0 ? `${Math.min(100, (t / max) * 100)}%` : '0%';
  }
  seek.setAttribute('aria-valuetext', current ? `${formatTime(t)} of ${formatTime(d)}` : 'nothing playing');
  totalEl.textContent = current ? formatTime(d) : '0:00';
}

function renderBuffered() {
  const d = duration();
  seekBuffered.replaceChildren();
  if (!current || !Number.isFinite(d) || d <= 0) return;
  const b = audio.buffered;
  for (let i = 0; i < b.length; i += 1) {
    const start = Math.max(0, b.start(i));
    const end = Math.min(d, b.end(i));
    if (end <= start) continue;
    const seg = document.createElement('div');
    seg.className = 'seek-buffered-range';
    seg.style.left = `${(start / d) * 100}%`;
    seg.style.width = `${((end - start) / d) * 100}%`;
    seekBuffered.append(seg);
  }
}

function renderVolume() {
  const muted = audio.muted || audio.volume === 0;
  muteButton.setAttribute('aria-pressed', String(audio.muted));
  muteButton.setAttribute('aria-label', audio.muted ? 'Unmute' : 'Mute');
  muteButton.title = audio.muted ? 'Unmute' : 'Mute';
  muteButton.querySelector('use').setAttribute('href', muted ? '#i-mute' : '#i-volume');
  volume.value = String(Math.round(audio.volume * 100));
  volume.setAttribute('aria-valuetext', audio.muted ? 'muted' : `${Math.round(audio.volume * 100)}%`);
  volume.style.setProperty('--fill', `${audio.muted ? 0 : audio.volume * 100}%`);
}

function updateMediaSession() {
  if (!('mediaSession' in navigator)) return;
  try {
    navigator.mediaSession.metadata = current && window.MediaMetadata
      ? new window.MediaMetadata({ title: current.name || 'Untitled', artist: current.author || '', album: current.album || '' })
      : null;
    navigator.mediaSession.playbackState = current ? (isPlaying() ? 'playing' : 'paused') : 'none';
  } catch {
    /* optional */
  }
}

function initMediaSession() {
  if (!('mediaSession' in navigator)) return;
  const set = (action, fn) => {
    try {
      navigator.mediaSession.setActionHandler(action, fn);
    } catch {
      /* unsupported action */
    }
  };
  set('play', () => toggle());
  set('pause', () => pause());
  set('previoustrack', () => previous());
  set('nexttrack', () => next());
  set('seekto', (d) => d && Number.isFinite(d.seekTime) && seekTo(d.seekTime));
  set('seekbackward', () => seekBy(-10));
  set('seekforward', () => seekBy(10));
}

// ---- wiring -------------------------------------------------------------------------------

export function init() {
  playButton.addEventListener('click', () => toggle());
  prevButton.addEventListener('click', () => previous());
  nextButton.addEventListener('click', () => next());
  $('player-error-close').addEventListener('click', clearError);

  seek.addEventListener('input', () => {
    scrubbing = true;
    const v = Number(seek.value);
    const d = duration();
    elapsedEl.textContent = formatTime(v);
    seekPlayed.style.width = d > 0 ? `${(v / d) * 100}%` : '0%';
  });
  seek.addEventListener('change', () => {
    scrubbing = false;
    seekTo(Number(seek.value));
  });
  seek.addEventListener('blur', () => {
    scrubbing = false;
  });

  muteButton.addEventListener('click', () => {
    audio.muted = !audio.muted;
    if (!audio.muted && audio.volume === 0) audio.volume = 0.5;
  });
  volume.addEventListener('input', () => {
    audio.volume = Number(volume.value) / 100;
    if (audio.volume > 0 && audio.muted) audio.muted = false;
  });

  try {
    const v = Number.parseFloat(localStorage.getItem('legato.volume'));
    if (Number.isFinite(v) && v >= 0 && v <= 1) audio.volume = v;
    audio.muted = localStorage.getItem('legato.muted') === '1';
  } catch {
    /* storage disabled */
  }
  audio.addEventListener('volumechange', () => {
    renderVolume();
    try {
      localStorage.setItem('legato.volume', String(audio.volume));
      localStorage.setItem('legato.muted', audio.muted ? '1' : '0');
    } catch {
      /* storage disabled */
    }
  });

  audio.addEventListener('loadedmetadata', () => {
    if (pendingSeek !== null) {
      audio.currentTime = pendingSeek;
      pendingSeek = null;
    }
    renderTime();
  });
  audio.addEventListener('durationchange', () => {
    renderTime();
    renderBuffered();
  });
  audio.addEventListener('timeupdate', () => renderTime());
  audio.addEventListener('progress', renderBuffered);
  audio.addEventListener('seeked', () => {
    renderTime();
    renderBuffered();
  });
  audio.addEventListener('playing', () => {
    loading = false;
    failed = false;
    emitChange();
  });
  audio.addEventListener('waiting', () => {
    if (current && !failed) {
      loading = true;
      renderButtons();
    }
  });
  audio.addEventListener('canplay', () => {
    if (loading && !audio.paused) return;
    loading = false;
    renderButtons();
  });
  audio.addEventListener('play', emitChange);
  audio.addEventListener('pause', () => {
    loading = false;
    emitChange();
  });
  audio.addEventListener('ended', () => {
    emitChange();
    next(true);
  });
  audio.addEventListener('error', () => {
    onNativeError();
  });

  // A smooth seek bar while playing (timeupdate only fires a few times a second).
  const tick = () => {
    if (isPlaying() && !scrubbing) {
      const d = duration();
      const t = audio.currentTime;
      seekPlayed.style.width = d > 0 ? `${Math.min(100, (t / d) * 100)}%` : '0%';
    }
    requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);

  initMediaSession();
  renderVolume();
  renderButtons();
  renderTime();
}
