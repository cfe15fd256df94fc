// The library as people browse it: albums with their covers, an album's tracks in disc and
// track order, artists, genres, and one search over all three. Read page by page through
// /rest (js/subsonic.js), so the page never loads the whole library.

import * as subsonic from './subsonic.js';
import * as queue from './queue.js';
import * as player from './player.js';
import { formatTime, plural } from './format.js';
import { el, iconButton } from './dom.js';

const $ = (id) => document.getElementById(id);

const PAGE = 60;
export const ALBUM_SORTS = {
  newest: 'Recently added',
  alphabeticalByName: 'Name',
  alphabeticalByArtist: 'Artist',
  byYear: 'Year',
  starred: 'Starred',
};

let canStore = false;
let token = 0; // bumps on every view, so a late answer of an older view is dropped
let onError = () => {};

/** Whether stars can be stored (signed in, not a guest). */
export function setCanStore(v) {
  canStore = v;
}

export function setOnError(cb) {
  onError = cb;
}

let onNotice = () => {};

export function setOnNotice(cb) {
  onNotice = cb;
}

function cover(id, size, label) {
  const box = el('div', { class: 'cover' });
  if (id) {
    const img = el('img', { src: subsonic.coverUrl(id, size), alt: label ? `Cover of ${label}` : '', loading: 'lazy', width: String(size), height: String(size) });
    img.addEventListener('error', () => {
      img.remove();
      box.classList.add('no-cover');
    });
    box.append(img);
  } else {
    box.classList.add('no-cover');
  }
  return box;
}

function view() {
  return $('browse-view');
}

function start(title) {
  token += 1;
  $('browse-title').textContent = title;
  $('browse-tools').replaceChildren();
  view().replaceChildren(el('p', { class: 'muted loading', text: 'Loading…' }));
  view().setAttribute('aria-busy', 'true');
  return token;
}

function done(my, ...children) {
  if (my !== token) return false;
  view().replaceChildren(...children);
  view().removeAttribute('aria-busy');
  return true;
}

/** Codes of a request that needs someone signed in: missing credentials, a wrong user. */
const NEEDS_SIGN_IN = new Set([10, 40, 44]);
let onSignIn = () => {};

export function setOnSignIn(cb) {
  onSignIn = cb;
}

function failed(my, err) {
  if (my !== token) return;
  if (err && NEEDS_SIGN_IN.has(err.code)) {
    const button = el('button', { type: 'button', class: 'btn btn-primary', text: 'Sign in' });
    button.addEventListener('click', () => onSignIn());
    done(my, el('div', { class: 'empty-state sign-in-needed' },
      el('h3', { text: 'Sign in to browse the library' }),
      el('p', { class: 'muted', text: 'Albums, artists and your stars are those of your Subsonic account: sign in with the same name and password.' }),
      button));
    return;
  }
  const box = el('div', { class: 'alert alert-error', role: 'alert', text: `The library could not be read: ${err.message}` });
  done(my, box);
  onError(err);
}

function albumCard(album) {
  const href = `#album/${encodeURIComponent(album.id)}`;
  const link = el('a', { class: 'album-card', href },
    cover(album.coverArt, 300, ''),
    el('span', { class: 'album-name', text: album.name || 'Unknown album' }),
    el('span', { class: 'album-artist muted', text: [album.artist, album.year].filter(Boolean).join(' · ') }),
  );
  return el('li', {}, link);
}

function albumGrid(albums) {
  return el('ul', { class: 'album-grid', 'aria-label': 'Albums' }, ...albums.map(albumCard));
}

// ---- albums ----------------------------------------------------------------------------------

export async function showAlbums(sort = 'newest') {
  if (!ALBUM_SORTS[sort]) sort = 'newest';
  const my = start('Albums');
  const select = el('select', { id: 'album-sort', 'aria-label': 'Sort albums by' },
    ...Object.entries(ALBUM_SORTS).map(([value, label]) => el('option', { value, text: label })));
  select.value = sort;
  select.addEventListener('change', () => {
    location.hash = `#albums/${select.value}`;
  });
  $('browse-tools').append(el('label', { class: 'page-size' }, el('span', { text: 'Sort by' }), select));
  const params = { type: sort };
  if (sort === 'byYear') Object.assign(params, { fromYear: 9999, toYear: 0 });
  const empty = sort === 'starred' ? 'No starred albums yet.' : 'No albums yet: add music, and its albums show here with their covers.';
  await albumPages(my, params, empty);
}

/**
 * A grid of `getAlbumList2` answers for `params`, a page of [`PAGE`] at a time behind a
 * "More albums" button: the page never asks for the whole list.
 */
async function albumPages(my, params, empty) {
  const page = async (offset) => {
    const answer = await subsonic.call('getAlbumList2', { ...params, size: PAGE, offset });
    return (answer.albumList2 && answer.albumList2.album) || [];
  };
  try {
    const albums = await page(0);
    if (!albums.length) {
      done(my, el('p', { class: 'muted empty-note', text: empty }));
      return;
    }
    const grid = albumGrid(albums);
    let offset = albums.length;
    const more = el('button', { type: 'button', class: 'btn more-button', text: 'More albums' });
    more.hidden = albums.length < PAGE;
    more.addEventListener('click', async () => {
      more.disabled = true;
      try {
        const next = await page(offset);
        if (my !== token) return;
        grid.append(...next.map(albumCard));
        offset += next.length;
        more.hidden = next.length < PAGE;
      } catch (err) {
        onError(err);
      } finally {
        more.disabled = false;
      }
    });
    done(my, grid, more);
  } catch (err) {
    failed(my, err);
  }
}

// ---- one album -------------------------------------------------------------------------------

function trackList(songs, { showArtist = false, showDisc = false, playlistId = null } = {}) {
  const tracks = songs.map(subsonic.songToTrack);
  const list = el('ol', { class: 'track-list', 'aria-label': 'Tracks' });
  let disc = null;
  tracks.forEach((t, i) => {
    if (showDisc && t.disc && t.disc !== disc) {
      disc = t.disc;
      list.append(el('li', { class: 'disc-heading', role: 'presentation', text: `Disc ${disc}` }));
    }
    const star = iconButton('star', t.starred ? `Unstar ${t.name}` : `Star ${t.name}`, 'i-star', { 'aria-pressed': String(t.starred), 'data-index': String(i) });
    star.hidden = !canStore;
    const row = el('li', { class: 'track-row', 'data-id': t.id, 'data-index': String(i) },
      el('span', { class: 'track-no muted', text: t.track ? String(t.track) : '' }),
      el('button', { type: 'button', class: 'track-play', 'data-action': 'play', 'data-index': String(i), 'aria-label': `Play ${t.name}` },
        el('span', { class: 'track-title', text: t.name }),
        (() => {
          // The signed-in user's own play count, as their apps show it.
          const line = [showArtist ? t.author : '', canStore && t.plays ? plural(t.plays, 'play') : ''].filter(Boolean).join(' · ');
          return line ? el('span', { class: 'track-artist muted', text: line }) : null;
        })()),
      el('span', { class: 'track-duration muted', text: formatTime(t.duration) }),
      star,
      iconButton('next', `Play ${t.name} next`, 'i-next', { 'data-index': String(i) }),
      iconButton('queue', `Add ${t.name} to the queue`, 'i-plus', { 'data-index': String(i) }),
    );
    if (playlistId && canStore) row.append(iconButton('unlist', `Remove ${t.name} from the playlist`, 'i-close', { 'data-index': String(i) }));
    list.append(row);
  });
  list.addEventListener('click', async (e) => {
    const b = e.target.closest('button[data-action]');
    if (!b) return;
    const i = Number.parseInt(b.dataset.index, 10);
    const action = b.dataset.action;
    if (action === 'play') queue.playAll(tracks, i);
    else if (action === 'next') queue.addNext([tracks[i]]);
    else if (action === 'queue') queue.addToEnd([tracks[i]]);
    else if (action === 'unlist') {
      b.disabled = true;
      try {
        await subsonic.call('updatePlaylist', { playlistId, songIndexToRemove: i }, { write: true });
        showPlaylist(playlistId);
      } catch (err) {
        b.disabled = false;
        onError(err);
      }
    }
    else if (action === 'star') {
      const t = tracks[i];
      const on = !t.starred;
      b.disabled = true;
      try {
        await subsonic.call(on ? 'star' : 'unstar', { id: t.id }, { write: true });
        t.starred = on;
        b.setAttribute('aria-pressed', String(on));
        b.setAttribute('aria-label', on ? `Unstar ${t.name}` : `Star ${t.name}`);
        b.title = b.getAttribute('aria-label');
      } catch (err) {
        onError(err);
      } finally {
        b.disabled = false;
      }
    }
  });
  markPlaying(list);
  return { list, tracks };
}

function markPlaying(list) {
  const current = player.currentTrack();
  for (const row of list.querySelectorAll('.track-row')) {
    const on = !!current && current.id === row.dataset.id;
    row.classList.toggle('is-playing', on);
    if (on) row.setAttribute('aria-current', 'true');
    else row.removeAttribute('aria-current');
  }
}

function actions(tracks) {
  const play = el('button', { type: 'button', class: 'btn btn-primary', 'data-action': 'play-all' });
  play.innerHTML = '<svg class="icon" aria-hidden="true"><use href="#i-play"/></svg><span>Play</span>';
  const shuffleAll = el('button', { type: 'button', class: 'btn', 'data-action': 'shuffle-all', text: 'Shuffle' });
  const next = el('button', { type: 'button', class: 'btn', 'data-action': 'next-all', text: 'Play next' });
  const add = el('button', { type: 'button', class: 'btn', 'data-action': 'queue-all', text: 'Add to queue' });
  play.addEventListener('click', () => queue.playAll(tracks, 0));
  shuffleAll.addEventListener('click', () => {
    const order = tracks.slice();
    for (let i = order.length - 1; i > 0; i -= 1) {
      const j = Math.floor(Math.random() * (i + 1));
      [order[i], order[j]] = [order[j], order[i]];
    }
    queue.playAll(order, 0);
  });
  next.addEventListener('click', () => queue.addNext(tracks));
  add.addEventListener('click', () => queue.addToEnd(tracks));
  const box = el('div', { class: 'album-actions' }, play, shuffleAll, next, add);
  if (canStore) box.append(addToPlaylist(tracks));
  return box;
}

/** The user's rating of an album (1 to 5 stars, or none), as their apps set and show it. */
function rating(album) {
  const select = el('select', { class: 'album-rating', 'aria-label': `Your rating of ${album.name}` },
    el('option', { value: '0', text: 'Not rated' }),
    ...[1, 2, 3, 4, 5].map((n) => el('option', { value: String(n), text: `${'★'.repeat(n)}${'☆'.repeat(5 - n)}` })));
  select.value = String(album.userRating || 0);
  select.addEventListener('change', async () => {
    select.disabled = true;
    try {
      await subsonic.call('setRating', { id: album.id, rating: select.value }, { write: true });
    } catch (err) {
      onError(err);
    } finally {
      select.disabled = false;
    }
  });
  return el('p', { class: 'album-rating-line' }, select);
}

/** A menu of the user's playlists that adds `tracks` to the one picked. */
function addToPlaylist(tracks) {
  const select = el('select', { class: 'add-to-playlist', 'aria-label': 'Add these tracks to a playlist' },
    el('option', { value: '', text: 'Add to playlist…' }));
  subsonic.call('getPlaylists').then((answer) => {
    for (const p of (answer.playlists && answer.playlists.playlist) || []) {
      select.append(el('option', { value: p.id, text: p.name }));
    }
  }).catch(() => {
    select.hidden = true;
  });
  select.addEventListener('change', async () => {
    const id = select.value;
    if (!id) return;
    const name = select.selectedOptions[0].textContent;
    select.disabled = true;
    try {
      await subsonic.call('updatePlaylist', { playlistId: id, songIdToAdd: tracks.map((t) => t.id) }, { write: true });
      onNotice(`Added ${plural(tracks.length, 'track')} to “${name}”.`);
    } catch (err) {
      onError(err);
    } finally {
      select.value = '';
      select.disabled = false;
    }
  });
  return select;
}

export async function showAlbum(id) {
  const my = start('Album');
  try {
    const { album } = await subsonic.call('getAlbum', { id });
    const songs = album.song || [];
    const discs = new Set(songs.map((s) => s.discNumber || 0));
    const { list, tracks } = trackList(songs, { showArtist: songs.some((s) => s.artist && s.artist !== album.artist), showDisc: discs.size > 1 });
    const total = songs.reduce((sum, s) => sum + (Number(s.duration) || 0), 0);
    const artist = album.artistId
      ? el('a', { href: `#artist/${encodeURIComponent(album.artistId)}`, text: album.artist || 'Unknown artist' })
      : el('span', { text: album.artist || 'Unknown artist' });
    const head = el('div', { class: 'album-head' },
      cover(album.coverArt, 600, album.name),
      el('div', { class: 'album-meta' },
        el('h3', { class: 'album-title', text: album.name || 'Unknown album' }),
        el('p', { class: 'album-by' }, artist),
        el('p', { class: 'muted small', text: [album.year, album.genre, plural(songs.length, 'track'), formatTime(total)].filter(Boolean).join(' · ') }),
        canStore ? rating(album) : null,
        actions(tracks)));
    $('browse-title').textContent = album.name || 'Album';
    done(my, head, list);
  } catch (err) {
    failed(my, err);
  }
}

// ---- artists ---------------------------------------------------------------------------------

export async function showArtists() {
  const my = start('Artists');
  try {
    const answer = await subsonic.call('getArtists');
    const groups = (answer.artists && answer.artists.index) || [];
    if (!groups.length) {
      done(my, el('p', { class: 'muted empty-note', text: 'No artists yet.' }));
      return;
    }
    const lists = groups.map((g) => el('section', { class: 'artist-group' },
      el('h3', { class: 'artist-letter', text: g.name }),
      el('ul', { class: 'artist-list' }, ...(g.artist || []).map((a) => el('li', {},
        el('a', { href: `#artist/${encodeURIComponent(a.id)}` },
          el('span', { class: 'artist-name', text: a.name }),
          el('span', { class: 'muted small', text: plural(a.albumCount || 0, 'album') })))))));
    done(my, ...lists);
  } catch (err) {
    failed(my, err);
  }
}

export async function showArtist(id) {
  const my = start('Artist');
  try {
    const { artist } = await subsonic.call('getArtist', { id });
    const albums = artist.album || [];
    $('browse-title').textContent = artist.name || 'Artist';
    const own = albums.filter((a) => !a.artistId || a.artistId === artist.id);
    const appears = albums.filter((a) => a.artistId && a.artistId !== artist.id);
    const sections = [el('h3', { class: 'section-title', text: `Albums (${own.length})` }), albumGrid(own)];
    if (appears.length) sections.push(el('h3', { class: 'section-title', text: 'Appears on' }), albumGrid(appears));
    done(my, ...sections);
  } catch (err) {
    failed(my, err);
  }
}

// ---- genres ----------------------------------------------------------------------------------

export async function showGenres() {
  const my = start('Genres');
  try {
    const answer = await subsonic.call('getGenres');
    const genres = ((answer.genres && answer.genres.genre) || []).slice().sort((a, b) => (b.albumCount || 0) - (a.albumCount || 0));
    if (!genres.length) {
      done(my, el('p', { class: 'muted empty-note', text: 'No genres: the files carry no genre tags.' }));
      return;
    }
    done(my, el('ul', { class: 'genre-list' }, ...genres.map((g) => el('li', {},
      el('a', { href: `#genre/${encodeURIComponent(g.value)}` },
        el('span', { class: 'genre-name', text: g.value }),
        el('span', { class: 'muted small', text: `${plural(g.albumCount || 0, 'album')} · ${plural(g.songCount || 0, 'track')}` }))))));
  } catch (err) {
    failed(my, err);
  }
}

export async function showGenre(name) {
  const my = start(name);
  await albumPages(my, { type: 'byGenre', genre: name }, `No albums in ${name}.`);
}

// ---- playlists and stars -------------------------------------------------------------------

export async function showPlaylists() {
  const my = start('Playlists');
  try {
    const answer = await subsonic.call('getPlaylists');
    const lists = (answer.playlists && answer.playlists.playlist) || [];
    const starred = el('li', {}, el('a', { href: '#starred' },
      el('span', { class: 'artist-name', text: '★ Starred tracks' }),
      el('span', { class: 'muted small', text: 'yours' })));
    const items = lists.map((p) => el('li', {}, el('a', { href: `#playlist/${encodeURIComponent(p.id)}` },
      el('span', { class: 'artist-name', text: p.name }),
      el('span', { class: 'muted small', text: `${plural(p.songCount || 0, 'track')} · ${formatTime(p.duration || 0)}${p.owner ? ` · ${p.owner}` : ''}` }))));
    const parts = [el('ul', { class: 'artist-list playlist-list' }, ...(canStore ? [starred] : []), ...items)];
    if (!lists.length) parts.push(el('p', { class: 'muted empty-note', text: 'No playlists yet: fill the queue, then save it as a playlist (in the queue).' }));
    done(my, ...parts);
  } catch (err) {
    failed(my, err);
  }
}

export async function showPlaylist(id) {
  const my = start('Playlist');
  try {
    const { playlist } = await subsonic.call('getPlaylist', { id });
    const songs = playlist.entry || [];
    const { list, tracks } = trackList(songs, { showArtist: true, playlistId: id });
    $('browse-title').textContent = playlist.name || 'Playlist';
    const rename = el('form', { class: 'playlist-rename' },
      el('label', { class: 'visually-hidden', htmlFor: 'playlist-name', text: 'Playlist name' }),
      el('input', { id: 'playlist-name', type: 'text', value: playlist.name || '', maxLength: 200, autocomplete: 'off' }),
      el('button', { type: 'submit', class: 'btn btn-small', text: 'Rename' }));
    rename.hidden = !canStore;
    rename.addEventListener('submit', async (e) => {
      e.preventDefault();
      const name = rename.querySelector('input').value.trim();
      if (!name) return;
      try {
        await subsonic.call('updatePlaylist', { playlistId: id, name }, { write: true });
        $('browse-title').textContent = name;
        onNotice(`Renamed to “${name}”.`);
      } catch (err) {
        onError(err);
      }
    });
    const remove = el('button', { type: 'button', class: 'btn', text: 'Delete playlist' });
    remove.hidden = !canStore;
    remove.addEventListener('click', async () => {
      remove.disabled = true;
      try {
        await subsonic.call('deletePlaylist', { id }, { write: true });
        location.hash = '#playlists';
      } catch (err) {
        remove.disabled = false;
        onError(err);
      }
    });
    const head = el('div', { class: 'playlist-head' },
      el('p', { class: 'muted small', text: [playlist.owner, plural(songs.length, 'track'), formatTime(playlist.duration || 0), playlist.public ? 'public' : ''].filter(Boolean).join(' · ') }),
      actions(tracks), rename, remove);
    done(my, head, list);
  } catch (err) {
    failed(my, err);
  }
}

export async function showStarred() {
  const my = start('Starred tracks');
  try {
    const answer = await subsonic.call('getStarred2');
    const songs = (answer.starred2 && answer.starred2.song) || [];
    if (!songs.length) {
      done(my, el('p', { class: 'muted empty-note', text: 'No starred tracks yet: star them on an album page.' }));
      return;
    }
    const { list, tracks } = trackList(songs, { showArtist: true });
    done(my, actions(tracks), list);
  } catch (err) {
    failed(my, err);
  }
}

/** Saves `tracks` as a new playlist named `name`; answers the playlist. */
export async function savePlaylist(name, tracks) {
  const answer = await subsonic.call('createPlaylist', { name, songId: tracks.map((t) => t.id) }, { write: true });
  return answer.playlist;
}

// ---- search ----------------------------------------------------------------------------------

export async function showSearch(q) {
  const my = start(`Search: ${q}`);
  try {
    const answer = await subsonic.call('search3', { query: q, artistCount: 12, albumCount: 24, songCount: 50 });
    const found = answer.searchResult3 || {};
    const artists = found.artist || [];
    const albums = found.album || [];
    const songs = found.song || [];
    const parts = [];
    if (artists.length) {
      parts.push(el('h3', { class: 'section-title', text: 'Artists' }),
        el('ul', { class: 'artist-list' }, ...artists.map((a) => el('li', {},
          el('a', { href: `#artist/${encodeURIComponent(a.id)}` }, el('span', { class: 'artist-name', text: a.name }))))));
    }
    if (albums.length) parts.push(el('h3', { class: 'section-title', text: 'Albums' }), albumGrid(albums));
    if (songs.length) parts.push(el('h3', { class: 'section-title', text: 'Tracks' }), trackList(songs, { showArtist: true }).list);
    if (!parts.length) parts.push(el('p', { class: 'muted empty-note', text: `Nothing matches “${q}”.` }));
    done(my, ...parts);
  } catch (err) {
    failed(my, err);
  }
}

export function init() {
  player.events.addEventListener('change', () => {
    for (const list of view().querySelectorAll('.track-list')) markPlaying(list);
  });
}
