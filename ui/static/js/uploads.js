// Uploads: several files at once, one progress bar each (XMLHttpRequest upload events, then
// "processing" until the server answers 201), errors in words from the server's error codes.

import { crudUrl, describeError, parseErrorBody } from './api.js';
import { fileTitle, formatBytes, formatTime } from './format.js';
import { icon } from './dom.js';

const list = document.getElementById('upload-list');
const authorInput = document.getElementById('upload-author');

const MAX_PARALLEL = 2; // the server transcodes; two at a time keeps a small machine responsive
const queue = [];
let active = 0;
let onAdded = () => {};
let announcer = null;

function announce(text) {
  if (!announcer) {
    announcer = document.createElement('div');
    announcer.className = 'visually-hidden';
    announcer.setAttribute('role', 'status');
    announcer.setAttribute('aria-live', 'polite');
    document.body.append(announcer);
  }
  announcer.textContent = text;
}

/** `cb(track)` runs after each successful upload. */
export function setOnAdded(cb) {
  onAdded = cb;
}

/** Queues files for upload (a FileList or an array of File). */
export function addFiles(files) {
  const arr = Array.from(files || []);
  if (!arr.length) return;
  const author = authorInput.value.trim();
  for (const file of arr) {
    const item = { file, name: fileTitle(file.name), author, xhr: null, state: 'queued' };
    item.el = renderItem(item);
    list.append(item.el);
    queue.push(item);
  }
  announce(`${arr.length} file${arr.length === 1 ? '' : 's'} queued for upload.`);
  pump();
}

function renderItem(item) {
  const li = document.createElement('li');
  li.className = 'upload-item is-queued';
  const main = document.createElement('div');
  main.className = 'upload-main';
  const name = document.createElement('span');
  name.className = 'upload-name';
  name.textContent = item.file.name;
  name.title = item.file.name;
  const size = document.createElement('span');
  size.className = 'upload-size muted';
  size.textContent = formatBytes(item.file.size);
  const status = document.createElement('span');
  status.className = 'upload-status';
  status.textContent = 'Waiting…';
  main.append(name, size, status);
  const bar = document.createElement('progress');
  bar.className = 'upload-progress';
  bar.max = 100;
  bar.value = 0;
  bar.setAttribute('aria-label', `Upload of ${item.file.name}`);
  const action = document.createElement('button');
  action.type = 'button';
  action.className = 'btn btn-icon btn-ghost btn-small upload-action';
  action.setAttribute('aria-label', `Cancel upload of ${item.file.name}`);
  action.title = 'Cancel';
  action.append(icon('i-close'));
  action.addEventListener('click', () => {
    if (item.state === 'queued') {
      const i = queue.indexOf(item);
      if (i >= 0) queue.splice(i, 1);
      finish(item, 'cancelled', 'Cancelled');
    } else if (item.state === 'uploading' || item.state === 'processing') {
      item.xhr?.abort();
    } else {
      dismiss(item);
    }
  });
  li.append(main, bar, action);
  item.statusEl = status;
  item.bar = bar;
  item.action = action;
  return li;
}

function setState(item, state, text) {
  item.state = state;
  item.el.className = `upload-item is-${state}`;
  item.statusEl.textContent = text;
}

function pump() {
  while (active < MAX_PARALLEL && queue.length) {
    const item = queue.shift();
    active += 1;
    start(item);
  }
}

function start(item) {
  const xhr = new XMLHttpRequest();
  item.xhr = xhr;
  setState(item, 'uploading', 'Uploading… 0%');
  xhr.open('POST', crudUrl());
  xhr.setRequestHeader('Accept', 'application/json');
  xhr.setRequestHeader('X-Legato-CSRF', '1');
  xhr.upload.addEventListener('progress', (e) => {
    if (!e.lengthComputable || item.state !== 'uploading') return;
    const pct = Math.min(100, Math.round((e.loaded / e.total) * 100));
    item.bar.value = pct;
    item.statusEl.textContent = `Uploading… ${pct}%`;
  });
  xhr.upload.addEventListener('load', () => {
    if (item.state !== 'uploading') return;
    item.bar.removeAttribute('value'); // indeterminate: the server is converting the file
    setState(item, 'processing', 'Processing…');
  });
  xhr.addEventListener('load', () => {
    if (xhr.status === 201 || xhr.status === 200) {
      let track = null;
      try {
        track = JSON.parse(xhr.responseText);
      } catch {
        /* a 201 without JSON still means it was added */
      }
      item.bar.value = 100;
      const dur = track && Number.isFinite(track.duration) ? ` · ${formatTime(track.duration)}` : '';
      finish(item, 'done', `Added${dur}`);
      announce(`${item.file.name} added to the library.`);
      onAdded(track);
    } else {
      const { code, message } = parseErrorBody(xhr.responseText);
      const text = describeError(xhr.status, code, message);
      item.bar.value = 0;
      finish(item, 'error', `Not added: ${text}`);
      item.errorCode = code;
      announce(`${item.file.name} was not added: ${text}.`);
    }
  });
  xhr.addEventListener('error', () => {
    const text = 'the connection failed — the server may be unreachable, or the file larger than it accepts';
    finish(item, 'error', `Not added: ${text}`);
    announce(`${item.file.name} was not added: ${text}.`);
  });
  xhr.addEventListener('abort', () => finish(item, 'cancelled', 'Cancelled'));
  xhr.addEventListener('loadend', () => {
    item.xhr = null;
    active -= 1;
    pump();
  });

  const form = new FormData();
  form.append('name', item.name);
  if (item.author) form.append('author', item.author);
  form.append('song', item.file, item.file.name);
  xhr.send(form);
}

function finish(item, state, text) {
  setState(item, state, text);
  item.action.setAttribute('aria-label', `Dismiss ${item.file.name}`);
  item.action.title = 'Dismiss';
  if (state === 'done' || state === 'cancelled') {
    setTimeout(() => dismiss(item), state === 'done' ? 8000 : 3000);
  }
}

function dismiss(item) {
  if (!item.el.isConnected) return;
  const hadFocus = item.el.contains(document.activeElement);
  item.el.classList.add('is-leaving');
  setTimeout(() => {
    item.el.remove();
    if (hadFocus) document.getElementById('add-music')?.focus();
  }, 200);
}
