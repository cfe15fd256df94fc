// The play queue: what plays next, in order. An album or a selection replaces it; tracks can
// be added next or at the end, moved, removed, shuffled and repeated. It is kept in
// localStorage, so a reload finds it (and the track it was on) as it was.

import * as player from './player.js';
import { formatTime } from './format.js';
import { iconButton } from './dom.js';

const STORAGE_KEY = 'legato.queue';
const REPEATS = ['off', 'all', 'one'];

const $ = (id) => document.getElementById(id);

let items = [];
let index = -1;
let repeat = 'off';
let shuffle = false;
/** Called when the queue changes (the page shows its length on the Queue button). */
let onChange = () => {};

function save() {
  try {
    localStorage.setItem(STORAGE_KEY, JSON.stringify({ items, index, repeat, shuffle }));
  } catch {
    /* storage full or disabled: the queue lasts for this page only */
  }
}

function load() {
  try {
    const saved = JSON.parse(localStorage.getItem(STORAGE_KEY) || 'null');
    if (!saved || !Array.isArray(saved.items)) return;
    items = saved.items.filter((t) => t && typeof t.id === 'string');
    index = Number.isInteger(saved.index) && saved.index < items.length ? saved.index : (items.length ? 0 : -1);
    repeat = REPEATS.includes(saved.repeat) ? saved.repeat : 'off';
    shuffle = !!saved.shuffle;
  } catch {
    /* a damaged entry: start empty */
  }
}

function changed() {
  save();
  render();
  onChange();
}

export function setOnChange(cb) {
  onChange = cb;
}

export function tracks() {
  return items.slice();
}

export function currentIndex() {
  return index;
}

export function settings() {
  return { repeat, shuffle };
}

function shuffled(list) {
  const out = list.slice();
  for (let i = out.length - 1; i > 0; i -= 1) {
    const j = Math.floor(Math.random() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

/** The player's path through the queue. */
const navigator = {
  first() {
    return items[index] || items[0] || null;
  },
  async next(track, auto) {
    if (!items.length) return null;
    if (auto && repeat === 'one') return items[index] || null;
    let i = index + 1;
    if (i >= items.length) {
      if (repeat === 'off' && auto) return null;
      i = 0;
    }
    index = i;
    changed();
    return items[index];
  },
  async prev() {
    if (!items.length) return null;
    let i = index - 1;
    if (i < 0) {
      if (repeat !== 'all') return null;
      i = items.length - 1;
    }
    index = i;
    changed();
    return items[index];
  },
};

/** Plays item `i` of the queue. */
export function playAt(i) {
  if (i < 0 || i >= items.length) return;
  index = i;
  player.setNavigator(navigator);
  player.play(items[index]);
  changed();
}

/** Replaces the queue with `list` and plays from `start` (shuffled when shuffle is on). */
export function playAll(list, start = 0) {
  if (!list.length) return;
  if (shuffle) {
    const first = list[start];
    items = [first, ...shuffled(list.filter((_, i) => i !== start))];
    playAt(0);
  } else {
    items = list.slice();
    playAt(Math.max(0, Math.min(start, items.length - 1)));
  }
}

/** Puts `list` right after the track playing now. */
export function addNext(list) {
  if (!list.length) return;
  const at = index >= 0 ? index + 1 : items.length;
  items.splice(at, 0, ...list);
  if (index < 0) index = 0;
  changed();
}

/** Puts `list` at the end of the queue. */
export function addToEnd(list) {
  if (!list.length) return;
  items.push(...list);
  if (index < 0) index = 0;
  changed();
}

/** Moves item `i` by `delta` places (−1 up, +1 down). */
export function move(i, delta) {
  const j = i + delta;
  if (i < 0 || j < 0 || i >= items.length || j >= items.length) return;
  [items[i], items[j]] = [items[j], items[i]];
  if (index === i) index = j;
  else if (index === j) index = i;
  changed();
}

export function remove(i) {
  if (i < 0 || i >= items.length) return;
  items.splice(i, 1);
  if (i < index) index -= 1;
  else if (i === index) index = Math.min(index, items.length - 1);
  changed();
}

export function clear() {
  items = [];
  index = -1;
  changed();
}

/** Shuffle on: the tracks after the current one are put in a random order. */
export function toggleShuffle() {
  shuffle = !shuffle;
  if (shuffle && index >= 0) {
    items = [...items.slice(0, index + 1), ...shuffled(items.slice(index + 1))];
  }
  changed();
}

export function cycleRepeat() {
  repeat = REPEATS[(REPEATS.indexOf(repeat) + 1) % REPEATS.length];
  changed();
}

/** The queue's track `id` changed (edited) or was deleted (`track` null). */
export function trackUpdated(id, track) {
  let touched = false;
  items = items.flatMap((t, i) => {
    if (t.id !== id) return [t];
    touched = true;
    if (track) return [{ ...t, ...track }];
    if (i < index) index -= 1;
    return [];
  });
  if (touched) {
    index = Math.min(index, items.length - 1);
    changed();
  }
}

// ---- the panel -------------------------------------------------------------------------------

function render() {
  const list = $('queue-list');
  if (!list) return;
  const current = player.currentTrack();
  list.replaceChildren(
    ...items.map((t, i) => {
      const li = document.createElement('li');
      li.className = 'queue-item';
      li.dataset.index = String(i);
      const playing = i === index && current && current.id === t.id;
      if (i === index) li.classList.add('is-current');
      if (playing) li.setAttribute('aria-current', 'true');
      const pick = document.createElement('button');
      pick.type = 'button';
      pick.className = 'queue-pick';
      pick.dataset.action = 'play';
      pick.dataset.index = String(i);
      const title = document.createElement('span');
      title.className = 'queue-title';
      title.textContent = t.name;
      const who = document.createElement('span');
      who.className = 'queue-artist muted';
      who.textContent = [t.author, formatTime(t.duration)].filter(Boolean).join(' · ');
      pick.append(title, who);
      li.append(
        pick,
        iconButton('up', `Move ${t.name} up`, 'i-up', { 'data-index': String(i) }),
        iconButton('down', `Move ${t.name} down`, 'i-down', { 'data-index': String(i) }),
        iconButton('remove', `Remove ${t.name} from the queue`, 'i-close', { 'data-index': String(i) }),
      );
      return li;
    }),
  );
  $('queue-empty').hidden = items.length > 0;
  $('queue-count').textContent = items.length ? String(items.length) : '';
  $('queue-button').setAttribute('aria-label', items.length ? `Queue: ${items.length} ${items.length === 1 ? 'track' : 'tracks'}` : 'Queue');
  const shuffleButton = $('queue-shuffle');
  shuffleButton.setAttribute('aria-pressed', String(shuffle));
  const repeatButton = $('queue-repeat');
  repeatButton.dataset.mode = repeat;
  repeatButton.textContent = `Repeat: ${repeat}`;
  repeatButton.setAttribute('aria-label', `Repeat: ${repeat === 'one' ? 'this track' : repeat === 'all' ? 'the queue' : 'off'}`);
}

export function init() {
  load();
  if (items.length) player.setNavigator(navigator);
  $('queue-list').addEventListener('click', (e) => {
    const b = e.target.closest('button[data-action]');
    if (!b) return;
    const i = Number.parseInt(b.dataset.index, 10);
    if (b.dataset.action === 'play') playAt(i);
    else if (b.dataset.action === 'up') move(i, -1);
    else if (b.dataset.action === 'down') move(i, 1);
    else if (b.dataset.action === 'remove') remove(i);
  });
  $('queue-shuffle').addEventListener('click', toggleShuffle);
  $('queue-repeat').addEventListener('click', cycleRepeat);
  $('queue-clear').addEventListener('click', clear);
  const panel = $('queue-panel');
  const toggleButton = $('queue-button');
  toggleButton.addEventListener('click', () => {
    panel.hidden = !panel.hidden;
    toggleButton.setAttribute('aria-expanded', String(!panel.hidden));
  });
  const close = (focus) => {
    if (panel.hidden) return;
    panel.hidden = true;
    toggleButton.setAttribute('aria-expanded', 'false');
    if (focus) toggleButton.focus();
  };
  $('queue-close').addEventListener('click', () => close(true));
  // A popover over the page: Escape or moving to another view closes it.
  document.addEventListener('keydown', (e) => {
    if (e.key === 'Escape' && !panel.hidden && !document.querySelector('dialog[open]')) close(true);
  });
  window.addEventListener('hashchange', () => close(false));
  player.events.addEventListener('change', render);
  render();
}
