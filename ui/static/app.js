// Legato web player: wires the library, the uploads and the player together.

import { apiBase, apiSource, savedApiBase, saveApiBase } from './js/api.js';
import * as library from './js/library.js';
import * as player from './js/player.js';
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
    if (!hasFiles(e)) return;
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
  });
}

// ---- start --------------------------------------------------------------------------------

function start() {
  player.init();
  library.init();
  initUploads();
  initKeyboard();
  initSettings();
  renderServerBadge();
  library.refresh();
  document.documentElement.dataset.ready = 'true';
}

start();
