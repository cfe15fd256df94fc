// The library table: server-side search, sort and paging; editing and deleting in place.

import { listTracks, updateTrack, deleteTrack, fileUrl, ApiError } from './api.js';
import { formatTime, spokenTime, formatAdded, formatCount, plural } from './format.js';
import * as player from './player.js';
import { el, icon } from './dom.js';

const $ = (id) => document.getElementById(id);

const table = $('tracks');
const tbody = $('track-rows');
const search = $('search');
const countEl = $('track-count');
const listError = $('list-error');
const emptyState = $('empty-state');
const noResults = $('no-results');
const noResultsText = $('no-results-text');
const pager = $('pager');
const pageStatus = $('page-status');
const pageInput = $('page-input');
const pageOf = $('page-of');
const pageSize = $('page-size');
const tableWrap = table.parentElement;

const SORTS = ['created_at', 'name', 'author', 'duration'];
const PAGE_SIZES = [25, 50, 100, 250];

const state = {
  q: '',
  sort: 'created_at',
  order: 'desc',
  limit: 50,
  offset: 0,
  tracks: [],
  total: 0,
  exact: true,
  loaded: false,
  editing: null, // id of the row being edited
};

let controller = null;
let searchTimer = 0;
let toastTimer = 0;

export function getState() {
  return state;
}

function loadPrefs() {
  try {
    const p = JSON.parse(localStorage.getItem('legato.view') || '{}');
    if (SORTS.includes(p.sort)) state.sort = p.sort;
    if (p.order === 'asc' || p.order === 'desc') state.order = p.order;
    if (PAGE_SIZES.includes(p.limit)) state.limit = p.limit;
  } catch {
    /* defaults */
  }
}

function savePrefs() {
  try {
    localStorage.setItem('legato.view', JSON.stringify({ sort: state.sort, order: state.order, limit: state.limit }));
  } catch {
    /* storage disabled */
  }
}

/** Fetches the current page; resolves when the table shows it. */
export async function refresh() {
  if (controller) controller.abort();
  const mine = new AbortController();
  controller = mine;
  table.setAttribute('aria-busy', 'true');
  tableWrap.classList.add('is-loading');
  try {
    let page = await listTracks(state, mine.signal);
    // A page past the end (after deletions or a narrower search): go to the last one.
    if (page.tracks.length === 0 && state.offset > 0 && page.total > 0 && page.exact) {
      state.offset = Math.max(0, Math.floor((page.total - 1) / state.limit) * state.limit);
      page = await listTracks(state, mine.signal);
    } else if (page.tracks.length === 0 && state.offset > 0 && !page.exact) {
      state.offset = 0;
      page = await listTracks(state, mine.signal);
    }
    if (controller !== mine) return;
    state.tracks = page.tracks;
    state.total = page.total;
    state.exact = page.exact;
    state.loaded = true;
    state.editing = null;
    listError.hidden = true;
    render();
  } catch (err) {
    if (err && err.name === 'AbortError') return;
    if (controller !== mine) return;
    listError.textContent = `Could not load the library: ${err instanceof ApiError ? err.message : String(err)}.`;
    listError.hidden = false;
  } finally {
    if (controller === mine) {
      controller = null;
      table.removeAttribute('aria-busy');
      tableWrap.classList.remove('is-loading');
    }
  }
}

// ---- rendering ----------------------------------------------------------------------------

function label(t) {
  return `${t.name || 'Untitled'} by ${t.author || 'unknown artist'}`;
}

function rowFor(t, index) {
  const cur = player.currentTrack();
  const isCurrent = !!cur && cur.id === t.id;
  const playing = isCurrent && player.isPlaying();
  const added = formatAdded(t.created_at);
  const playBtn = el(
    'button',
    {
      type: 'button',
      class: 'row-play',
      'data-action': 'play',
      'aria-label': playing ? `Pause ${label(t)}` : `Play ${label(t)}`,
    },
    el('span', { class: 'row-index', text: String(state.offset + index + 1), 'aria-hidden': 'true' }),
    icon(playing ? 'i-pause' : 'i-play', 'icon row-play-icon'),
    el('span', { class: 'eq', 'aria-hidden': 'true' }, el('i'), el('i'), el('i')),
  );
  const tr = el(
    'tr',
    { 'data-id': t.id, class: `${isCurrent ? 'is-current' : ''}${playing ? ' is-playing' : ''}` },
    el('td', { class: 'col-play' }, playBtn),
    el(
      'td',
      { class: 'col-title' },
      el('span', { class: 'title', text: t.name || 'Untitled' }),
      el('span', { class: 'sub', text: `${t.author || 'Unknown artist'}${t.album ? ` · ${t.album}` : ''}` }),
    ),
    el('td', { class: 'col-artist', text: t.author || '' }),
    el(
      'td',
      { class: 'col-album' },
      t.album ? el('span', { text: t.album }) : el('span', { class: 'dash' }, el('span', { 'aria-hidden': 'true', text: '—' }), el('span', { class: 'visually-hidden', text: 'No album' })),
    ),
    el('td', { class: 'col-duration' }, durationCell(t)),
    el('td', { class: 'col-added' }, el('time', { datetime: t.created_at || '', title: added.title, text: added.text })),
    el(
      'td',
      { class: 'col-actions' },
      el('div', { class: 'row-actions' },
        downloadLink(t),
        el('button', { type: 'button', class: 'btn btn-icon btn-ghost btn-small admin-only', 'data-action': 'edit', 'aria-label': `Edit ${label(t)}`, title: 'Edit title and artist' }, icon('i-edit')),
        el('button', { type: 'button', class: 'btn btn-icon btn-ghost btn-small btn-danger admin-only', 'data-action': 'delete', 'aria-label': `Delete ${label(t)}`, title: 'Delete' }, icon('i-trash')),
      ),
    ),
  );
  if (isCurrent) tr.setAttribute('aria-current', 'true');
  tr.addEventListener('dblclick', (e) => {
    if (e.target.closest('button, input, a')) return;
    if (state.editing === t.id) return;
    playFromList(t);
  });
  return tr;
}

/** The length of a ready track; a track still being processed has none yet (not "0:00"). */
function durationCell(t) {
  if (t.status === 'processing') return el('span', { class: 'dash', title: 'Still being processed', text: '…', 'aria-label': 'still being processed' });
  if (t.status === 'failed') return el('span', { class: 'dash', title: t.error || 'Processing failed', text: 'failed', 'aria-label': 'processing failed' });
  return el('span', { text: formatTime(t.duration), 'aria-label': spokenTime(t.duration) });
}

/** A link that saves the original upload (tracks stored before originals were kept have none). */
function downloadLink(t) {
  const href = fileUrl(t);
  if (!href) return null;
  const ext = t.source.format ? `.${t.source.format}` : '';
  return el('a', {
    class: 'btn btn-icon btn-ghost btn-small',
    href,
    download: t.source.file_name || `${t.author || 'Unknown artist'} - ${t.name || 'Untitled'}${ext}`,
    'data-action': 'download',
    'aria-label': `Download the original file of ${label(t)}`,
    title: 'Download the original file',
  }, icon('i-download'));
}

function editRowFor(t) {
  const title = el('input', { type: 'text', class: 'edit-title', value: t.name || '', autocomplete: 'off', spellcheck: false, required: true });
  const artist = el('input', { type: 'text', class: 'edit-artist', value: t.author || '', autocomplete: 'off', spellcheck: false });
  const titleId = `edit-title-${t.id}`;
  const artistId = `edit-artist-${t.id}`;
  title.id = titleId;
  artist.id = artistId;
  const error = el('p', { class: 'field-error', role: 'alert', hidden: true });
  const form = el(
    'form',
    { class: 'edit-form', 'aria-label': `Edit ${label(t)}` },
    el('div', { class: 'field' }, el('label', { htmlFor: titleId, text: 'Title' }), title),
    el('div', { class: 'field' }, el('label', { htmlFor: artistId, text: 'Artist' }), artist),
    el('div', { class: 'edit-actions' },
      el('button', { type: 'submit', class: 'btn btn-primary btn-small', text: 'Save' }),
      el('button', { type: 'button', class: 'btn btn-small', 'data-action': 'cancel-edit', text: 'Cancel' }),
    ),
    error,
  );
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const name = title.value.trim();
    const author = artist.value.trim();
    if (!name) {
      error.textContent = 'The title cannot be empty.';
      error.hidden = false;
      title.focus();
      return;
    }
    const fields = {};
    if (name !== (t.name || '')) fields.name = name;
    if (author !== (t.author || '')) fields.author = author;
    if (!Object.keys(fields).length) {
      cancelEdit(t.id);
      return;
    }
    form.classList.add('is-saving');
    for (const b of form.querySelectorAll('button, input')) b.disabled = true;
    try {
      const updated = await updateTrack(t.id, fields);
      const merged = { ...t, ...(updated && typeof updated === 'object' ? updated : fields) };
      const i = state.tracks.findIndex((x) => x.id === t.id);
      if (i >= 0) state.tracks[i] = merged;
      state.editing = null;
      player.trackUpdated(merged);
      onTrackChanged(t.id, { name: merged.name, author: merged.author });
      replaceRow(t.id, rowFor(merged, i), 'edit');
      toast(`Saved “${merged.name}”.`);
    } catch (err) {
      form.classList.remove('is-saving');
      for (const b of form.querySelectorAll('button, input')) b.disabled = false;
      error.textContent = `Could not save: ${err.message}.`;
      error.hidden = false;
      if (err.status === 404) setTimeout(refresh, 1500);
    }
  });
  form.addEventListener('keydown', (e) => {
    if (e.key === 'Escape') {
      e.preventDefault();
      cancelEdit(t.id);
    }
  });
  const i = state.tracks.findIndex((x) => x.id === t.id);
  return el(
    'tr',
    { 'data-id': t.id, class: 'is-editing' },
    el('td', { class: 'col-play' }, el('span', { class: 'row-index', text: String(state.offset + i + 1) })),
    el('td', { class: 'col-edit', colspan: '6' }, form),
  );
}

function replaceRow(id, newRow, focusAction) {
  const old = tbody.querySelector(`tr[data-id="${CSS.escape(id)}"]`);
  if (!old) return;
  old.replaceWith(newRow);
  if (focusAction === 'edit-input') newRow.querySelector('input')?.focus();
  else if (focusAction) newRow.querySelector(`[data-action="${focusAction}"]`)?.focus();
}

function startEdit(id) {
  if (state.editing && state.editing !== id) cancelEdit(state.editing, false);
  const t = state.tracks.find((x) => x.id === id);
  if (!t) return;
  state.editing = id;
  replaceRow(id, editRowFor(t), 'edit-input');
  const input = tbody.querySelector(`tr[data-id="${CSS.escape(id)}"] input`);
  if (input) input.select();
}

function cancelEdit(id, focus = true) {
  const i = state.tracks.findIndex((x) => x.id === id);
  state.editing = null;
  if (i >= 0) replaceRow(id, rowFor(state.tracks[i], i), focus ? 'edit' : null);
}

async function remove(id) {
  const t = state.tracks.find((x) => x.id === id);
  if (!t) return;
  const ok = window.confirm(`Delete “${t.name || 'Untitled'}” by ${t.author || 'unknown artist'}?\n\nThe track and its audio are removed from the server. This cannot be undone.`);
  if (!ok) return;
  const row = tbody.querySelector(`tr[data-id="${CSS.escape(id)}"]`);
  row?.classList.add('is-removing');
  try {
    await deleteTrack(id);
  } catch (err) {
    row?.classList.remove('is-removing');
    if (err.status !== 404) {
      toast(`Could not delete “${t.name}”: ${err.message}.`, true);
      return;
    }
  }
  const cur = player.currentTrack();
  if (cur && cur.id === id) player.stop();
  onTrackChanged(id, null);
  toast(`Deleted “${t.name || 'Untitled'}”.`);
  await refresh();
  // Keep keyboard focus in the table rather than losing it with the removed row.
  const next = tbody.querySelector('tr [data-action="play"]');
  if (next && (!document.activeElement || document.activeElement === document.body)) next.focus();
}

function render() {
  const { tracks, total, q } = state;
  const frag = document.createDocumentFragment();
  tracks.forEach((t, i) => frag.append(rowFor(t, i)));
  tbody.replaceChildren(frag);

  const empty = total === 0 && tracks.length === 0;
  emptyState.hidden = !(empty && !q);
  noResults.hidden = !(empty && !!q);
  table.hidden = empty;
  document.body.classList.toggle('library-empty', empty && !q);
  if (empty && q) noResultsText.textContent = `No track has “${q}” in its title or artist.`;

  if (q) countEl.textContent = `${plural(total, 'match', 'matches')}${state.exact ? '' : '+'}`;
  else countEl.textContent = `${plural(total, 'track')}${state.exact ? '' : '+'}`;

  const pages = Math.max(1, Math.ceil(total / state.limit));
  const page = Math.floor(state.offset / state.limit) + 1;
  pager.hidden = empty;
  const from = tracks.length ? state.offset + 1 : 0;
  const to = state.offset + tracks.length;
  pageStatus.textContent = `${formatCount(from)}–${formatCount(to)} of ${formatCount(total)}${state.exact ? '' : '+'}`;
  pageInput.value = String(page);
  pageInput.max = String(pages);
  pageOf.textContent = `of ${formatCount(pages)}`;
  $('page-first').disabled = page <= 1;
  $('page-prev').disabled = page <= 1;
  $('page-next').disabled = to >= total;
  $('page-last').disabled = to >= total || !state.exact;
  pager.classList.toggle('single-page', pages <= 1);

  for (const th of table.querySelectorAll('th[data-sort]')) {
    const active = th.dataset.sort === state.sort;
    th.setAttribute('aria-sort', active ? (state.order === 'asc' ? 'ascending' : 'descending') : 'none');
    th.querySelector('use').setAttribute('href', active ? (state.order === 'asc' ? '#i-up' : '#i-down') : '#i-sort');
    th.classList.toggle('is-sorted', active);
  }
  player.setHasTracks(tracks.length > 0);
}

/** Re-marks the current/playing row without reloading the list. */
function renderPlaying() {
  const cur = player.currentTrack();
  const playing = player.isPlaying();
  for (const tr of tbody.querySelectorAll('tr[data-id]')) {
    const isCurrent = !!cur && tr.dataset.id === cur.id;
    tr.classList.toggle('is-current', isCurrent);
    tr.classList.toggle('is-playing', isCurrent && playing);
    if (isCurrent) tr.setAttribute('aria-current', 'true');
    else tr.removeAttribute('aria-current');
    const btn = tr.querySelector('[data-action="play"]');
    if (!btn) continue;
    const t = state.tracks.find((x) => x.id === tr.dataset.id);
    if (t) btn.setAttribute('aria-label', `${isCurrent && playing ? 'Pause' : 'Play'} ${label(t)}`);
    btn.querySelector('use')?.setAttribute('href', isCurrent && playing ? '#i-pause' : '#i-play');
  }
}

// ---- paging, sorting, searching -----------------------------------------------------------

function goToPage(page) {
  const pages = Math.max(1, Math.ceil(state.total / state.limit));
  const p = Math.min(Math.max(1, page), state.exact ? pages : Number.MAX_SAFE_INTEGER);
  state.offset = (p - 1) * state.limit;
  return refresh().then(() => {
    tableWrap.scrollTop = 0;
  });
}

function setSort(key) {
  if (state.sort === key) state.order = state.order === 'asc' ? 'desc' : 'asc';
  else {
    state.sort = key;
    state.order = key === 'created_at' ? 'desc' : 'asc';
  }
  state.offset = 0;
  savePrefs();
  refresh();
}

export function clearSearch() {
  search.value = '';
  state.q = '';
  state.offset = 0;
  refresh();
  search.focus();
}

// ---- the player's path through the visible list ----------------------------------------

const navigatorImpl = {
  first() {
    return state.tracks[0] || null;
  },
  async next(track, auto) {
    const i = state.tracks.findIndex((x) => x.id === track.id);
    if (i >= 0 && i < state.tracks.length - 1) return state.tracks[i + 1];
    if (i === state.tracks.length - 1 && state.offset + state.tracks.length < state.total) {
      await goToPage(Math.floor(state.offset / state.limit) + 2);
      return state.tracks[0] || null;
    }
    if (auto) return null; // the end of the list: stop
    // A click on "next" at the end of the list starts it over.
    if (state.offset > 0) {
      await goToPage(1);
      return state.tracks[0] || null;
    }
    const first = state.tracks[0] || null;
    return first && first.id !== track.id ? first : null;
  },
  async prev(track) {
    const i = state.tracks.findIndex((x) => x.id === track.id);
    if (i > 0) return state.tracks[i - 1];
    if (i === 0 && state.offset > 0) {
      await goToPage(Math.floor(state.offset / state.limit));
      return state.tracks[state.tracks.length - 1] || null;
    }
    if (i < 0) return state.tracks[state.tracks.length - 1] || null;
    return null;
  },
};

/** Told of a track edited (its new fields) or deleted (`null`): the queue follows. */
let onTrackChanged = () => {};

export function setOnTrackChanged(cb) {
  onTrackChanged = cb;
}

/** Plays a track of the table; the player then moves through the table, not the queue. */
function playFromList(t) {
  player.setNavigator(navigatorImpl);
  player.play(t);
}

// ---- toasts -------------------------------------------------------------------------------

export function toast(message, isError = false) {
  const t = $('toast');
  t.textContent = message;
  t.classList.toggle('is-error', isError);
  t.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => {
    t.hidden = true;
  }, isError ? 7000 : 3500);
}

// ---- wiring -------------------------------------------------------------------------------

export function init() {
  loadPrefs();
  pageSize.value = String(state.limit);
  player.setNavigator(navigatorImpl);
  player.events.addEventListener('change', renderPlaying);
  player.events.addEventListener('missing', () => refresh());

  search.addEventListener('input', () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => {
      const q = search.value.trim();
      if (q === state.q) return;
      state.q = q;
      state.offset = 0;
      refresh();
    }, 250);
  });
  search.addEventListener('keydown', (e) => {
    if (e.key === 'Escape' && search.value) {
      e.preventDefault();
      clearSearch();
    }
  });
  $('clear-search').addEventListener('click', clearSearch);

  for (const th of table.querySelectorAll('th[data-sort]')) {
    th.querySelector('button').addEventListener('click', () => setSort(th.dataset.sort));
  }

  tbody.addEventListener('click', (e) => {
    const btn = e.target.closest('button[data-action]');
    if (!btn) return;
    const tr = btn.closest('tr[data-id]');
    if (!tr) return;
    const id = tr.dataset.id;
    const action = btn.dataset.action;
    if (action === 'play') {
      const cur = player.currentTrack();
      if (cur && cur.id === id) player.toggle();
      else playFromList(state.tracks.find((x) => x.id === id));
    } else if (action === 'edit') startEdit(id);
    else if (action === 'cancel-edit') cancelEdit(id);
    else if (action === 'delete') remove(id);
  });

  $('page-first').addEventListener('click', () => goToPage(1));
  $('page-prev').addEventListener('click', () => goToPage(Math.floor(state.offset / state.limit)));
  $('page-next').addEventListener('click', () => goToPage(Math.floor(state.offset / state.limit) + 2));
  $('page-last').addEventListener('click', () => goToPage(Math.ceil(state.total / state.limit)));
  pageInput.addEventListener('change', () => {
    const p = Number.parseInt(pageInput.value, 10);
    if (Number.isFinite(p)) goToPage(p);
  });
  pageSize.addEventListener('change', () => {
    const first = state.offset;
    state.limit = Number.parseInt(pageSize.value, 10) || 50;
    state.offset = Math.floor(first / state.limit) * state.limit;
    savePrefs();
    refresh();
  });
}
