// Legato web player: wires the library, the uploads and the player together.

import { apiBase, apiSource, savedApiBase, saveApiBase } from './js/api.js';
import * as browse from './js/browse.js';
import * as level from './js/level.js';
import * as library from './js/library.js';
import * as player from './js/player.js';
import * as queue from './js/queue.js';
import * as subsonic from './js/subsonic.js';
import * as uploads from './js/uploads.js';

const $ = (id) => document.getElementById(id);

const fileInput = $('file-input');

function chooseFiles() {
  fileInput.click();
}

// ---- uploads: picker and drag-and-drop -------------------------------------------------------

function initUploads() {
  let refreshTimer = 0;
  uploads.setOnAdded(() => {
    // Several uploads finishing together cause one reload.
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(() => library.refresh(), 150);
  });

  $('add-music').addEventListener('click', chooseFiles);
  $('choose-files').addEventListener('click', chooseFiles);
  document.querySelector('[data-action="choose-files"]').addEventListener('click', chooseFiles);
  fileInput.addEventListener('change', () => {
    uploads.addFiles(fileInput.files);
    fileInput.value = '';
  });

  const overlay = $('drop-overlay');
  const dropzone = $('dropzone');
  let depth = 0;
  const hasFiles = (e) => !!e.dataTransfer && Array.from(e.dataTransfer.types || []).includes('Files');
  const hide = () => {
    depth = 0;
    overlay.hidden = true;
    dropzone.classList.remove('is-over');
  };
  document.addEventListener('dragenter', (e) => {
    if (!hasFiles(e) || document.documentElement.dataset.role === 'listener') return;
    e.preventDefault();
    depth += 1;
    overlay.hidden = false;
    dropzone.classList.add('is-over');
  });
  document.addEventListener('dragover', (e) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    e.dataTransfer.dropEffect = 'copy';
  });
  document.addEventListener('dragleave', (e) => {
    if (!hasFiles(e)) return;
    depth = Math.max(0, depth - 1);
    if (depth === 0) hide();
  });
  document.addEventListener('drop', (e) => {
    if (!hasFiles(e)) return;
    if (document.documentElement.dataset.role === 'listener') {
      e.preventDefault();
      hide();
      library.toast('Only admins add music: sign in as an admin.', true);
      return;
    }
    e.preventDefault();
    hide();
    uploads.addFiles(e.dataTransfer.files);
  });
}

// ---- keyboard -----------------------------------------------------------------------------

const TEXT_INPUTS = new Set(['text', 'search', 'url', 'email', 'password', 'number', 'tel', 'date', 'time', 'datetime-local', 'month', 'week']);

function isTyping(target) {
  if (!(target instanceof Element)) return false;
  if (target.isContentEditable) return true;
  const tag = target.tagName;
  if (tag === 'TEXTAREA' || tag === 'SELECT') return true;
  if (tag === 'INPUT') return TEXT_INPUTS.has((target.getAttribute('type') || 'text').toLowerCase());
  return false;
}

function initKeyboard() {
  document.addEventListener('keydown', (e) => {
    if (e.defaultPrevented || e.ctrlKey || e.metaKey || e.altKey) return;
    if (isTyping(e.target)) return;
    if ($('settings-dialog').open) return;
    const onControl = e.target instanceof Element && e.target.closest('button, a, summary, [role="button"]');
    if (e.key === ' ' || e.code === 'Space') {
      // Space on a focused button presses that button, as everywhere else.
      if (onControl) return;
      e.preventDefault();
      player.toggle();
    } else if ((e.key === 'ArrowRight' || e.key === 'ArrowLeft') && !(e.target instanceof HTMLInputElement)) {
      if (!player.currentTrack()) return;
      e.preventDefault();
      player.seekBy(e.key === 'ArrowRight' ? 10 : -10);
    } else if (e.key === '/' && !onControl) {
      e.preventDefault();
      $('search').focus();
    }
  });
}

// ---- server settings ----------------------------------------------------------------------

function renderServerBadge() {
  const badge = $('server-badge');
  const base = apiBase();
  if (base === location.origin) {
    badge.hidden = true;
    return;
  }
  let host = base;
  try {
    host = new URL(base).host + new URL(base).pathname.replace(/\/$/, '');
  } catch {
    /* shown as is */
  }
  badge.textContent = host;
  badge.title = `Using the API at ${base}${apiSource() === 'query' ? ' (from ?api=)' : ''}`;
  badge.hidden = false;
}

function initSettings() {
  const dialog = $('settings-dialog');
  const input = $('api-input');
  const error = $('settings-error');
  input.placeholder = location.origin;
  $('settings-button').addEventListener('click', () => {
    input.value = apiSource() === 'query' ? apiBase() : savedApiBase();
    error.hidden = true;
    $('api-help').textContent = apiSource() === 'query'
      ? 'This page was opened with ?api=, which takes precedence over the saved address.'
      : "Leave empty to use this page's own server.";
    dialog.showModal();
    input.focus();
  });
  $('settings-cancel').addEventListener('click', () => dialog.close());
  $('settings-reset').addEventListener('click', () => {
    input.value = '';
  });
  $('settings-form').addEventListener('submit', (e) => {
    e.preventDefault();
    try {
      saveApiBase(input.value);
    } catch (err) {
      error.textContent = err.message;
      error.hidden = false;
      input.focus();
      return;
    }
    dialog.close();
    if (apiSource() === 'query') {
      // The ?api= parameter would keep overriding the saved value: drop it from the address.
      const u = new URL(location.href);
      u.searchParams.delete('api');
      history.replaceState(null, '', u);
    }
    renderServerBadge();
    player.stop();
    library.refresh();
    subsonic.forgetRest();
    refreshSession().finally(route);
  });
}

// ---- views: #albums, #album/ID, #artists, #artist/ID, #genres, #genre/NAME, #search/Q, #tracks

function route() {
  const hash = decodeURIComponent(location.hash.replace(/^#/, ''));
  const [first, ...rest] = hash.split('/');
  // The page opens on the albums, as music apps do; the track table is `#tracks`.
  const view = first || 'albums';
  const arg = rest.join('/');
  const browsing = ['albums', 'album', 'artists', 'artist', 'genres', 'genre', 'search', 'playlists', 'playlist', 'starred'].includes(view);
  $('browse').hidden = !browsing;
  $('library').hidden = browsing;
  const tabs = { album: 'albums', artist: 'artists', genre: 'genres', playlist: 'playlists', starred: 'playlists' };
  const tab = tabs[view] || (browsing ? view : 'tracks');
  for (const a of document.querySelectorAll('#views a')) {
    if (a.dataset.view === tab) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  if (view === 'albums') browse.showAlbums(arg || 'newest');
  else if (view === 'album') browse.showAlbum(arg);
  else if (view === 'artists') browse.showArtists();
  else if (view === 'artist') browse.showArtist(arg);
  else if (view === 'genres') browse.showGenres();
  else if (view === 'genre') browse.showGenre(arg);
  else if (view === 'playlists') browse.showPlaylists();
  else if (view === 'playlist') browse.showPlaylist(arg);
  else if (view === 'starred') browse.showStarred();

  if (view === 'search') {
    $('browse-search').value = arg;
    browse.showSearch(arg);
  } else {
    $('browse-search').value = '';
  }
}

function initQueueSave() {
  $('queue-save').addEventListener('submit', async (e) => {
    e.preventDefault();
    const input = $('queue-save-name');
    const name = input.value.trim();
    const tracks = queue.tracks();
    if (!name || !tracks.length) {
      library.toast(tracks.length ? 'Name the playlist first.' : 'The queue is empty.', true);
      return;
    }
    try {
      await browse.savePlaylist(name, tracks);
      input.value = '';
      library.toast(`Saved “${name}” (${tracks.length} tracks): your Subsonic apps see it too.`);
      if (location.hash === '#playlists') route();
    } catch (err) {
      library.toast(err.message, true);
    }
  });
}

function initViews() {
  initQueueSave();
  browse.init();
  browse.setOnError((err) => library.toast(err.message, true));
  browse.setOnNotice((message) => library.toast(message));
  browse.setOnSignIn(() => $('user-button').click());
  window.addEventListener('hashchange', route);
  $('browse-search-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const q = $('browse-search').value.trim();
    if (q) location.hash = `#search/${encodeURIComponent(q)}`;
  });
  route();
}

// ---- signing in (the users of Subsonic apps) ------------------------------------------------

let signedIn = null;

function renderUser(state) {
  const button = $('user-button');
  signedIn = state && state.user ? state.user : null;
  // A server without /rest (no secret key) or with a guest only shows no sign-in.
  button.hidden = !state || state.unavailable || (!signedIn && state.guest);
  $('user-label').textContent = signedIn ? `${signedIn.name} · Sign out` : 'Sign in';
  button.setAttribute('aria-label', signedIn ? `Signed in as ${signedIn.name}: sign out` : 'Sign in');
  browse.setCanStore(!!signedIn);
  $('queue-save').hidden = !signedIn;
  document.documentElement.dataset.user = signedIn ? signedIn.name : '';
  // Where users exist, only admins add, edit and delete; without users (a guest, or no /rest)
  // the page is as it always was.
  const listener = !!state && !state.unavailable && !state.guest && !(signedIn && signedIn.admin);
  document.documentElement.dataset.role = listener ? 'listener' : 'admin';
}

async function refreshSession() {
  try {
    renderUser(await subsonic.session());
  } catch {
    renderUser(null);
  }
}

function initSession() {
  const dialog = $('signin-dialog');
  const error = $('signin-error');
  $('user-button').addEventListener('click', async () => {
    if (signedIn) {
      try {
        await subsonic.signOut();
      } catch (err) {
        library.toast(err.message, true);
      }
      await refreshSession();
      route();
      return;
    }
    error.hidden = true;
    $('signin-password').value = '';
    dialog.showModal();
    $('signin-name').focus();
  });
  $('signin-cancel').addEventListener('click', () => dialog.close());
  $('signin-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const submit = $('signin-submit');
    submit.disabled = true;
    try {
      renderUser(await subsonic.signIn($('signin-name').value, $('signin-password').value));
      dialog.close();
      route();
    } catch (err) {
      error.textContent = err.message;
      error.hidden = false;
      $('signin-password').focus();
    } finally {
      submit.disabled = false;
    }
  });
  return refreshSession();
}

// A play counts for the signed-in user as it does from their apps: now playing at the start,
// a play once half the track (or four minutes) has been heard.
function initScrobbles() {
  const audio = $('audio');
  let counted = null;
  player.events.addEventListener('change', () => {
    const t = player.currentTrack();
    if (!signedIn || !t || (counted !== null && counted.endsWith(`:${t.id}`))) return;
    counted = `now:${t.id}`;
    subsonic.call('scrobble', { id: t.id, submission: 'false' }, { write: true }).catch(() => {});
  });
  audio.addEventListener('timeupdate', () => {
    const t = player.currentTrack();
    if (!signedIn || !t || counted === `played:${t.id}`) return;
    const d = Number.isFinite(audio.duration) ? audio.duration : t.duration;
    if (!d || audio.currentTime < Math.min(d / 2, 240)) return;
    counted = `played:${t.id}`;
    subsonic.call('scrobble', { id: t.id, submission: 'true' }, { write: true }).catch(() => {});
  });
}

// ---- start --------------------------------------------------------------------------------

function start() {
  player.init();
  library.init();
  queue.init();
  library.setOnTrackChanged(queue.trackUpdated);
  level.init();
  queue.setOnChange(() => {});
  initUploads();
  initKeyboard();
  initSettings();
  renderServerBadge();
  library.refresh();
  initScrobbles();
  initSession().finally(() => {
    initViews();
    document.documentElement.dataset.ready = 'true';
  });
}

start();
