// Shared by the end-to-end tests: a fresh `legato serve` per test, Debian's Chromium through
// playwright-core, MP3s generated with ffmpeg, screenshots under <repo>/test-output/ui/.

import { spawn, execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const UI_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const REPO_DIR = path.resolve(UI_DIR, '..');
export const OUT_DIR = path.join(REPO_DIR, 'test-output', 'ui');
export const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium';
export const FFMPEG = process.env.FFMPEG_BIN || '/usr/bin/ffmpeg';

export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--autoplay-policy=no-user-gesture-required',
];

export function legatoBin() {
  const bin = process.env.LEGATO_BIN || path.join(REPO_DIR, 'target', 'debug', 'legato');
  if (!fs.existsSync(bin)) {
    throw new Error(
      `legato binary not found at ${bin}. Build it first with \`cargo build\` in ${REPO_DIR}, ` +
        'or point LEGATO_BIN at a built binary.',
    );
  }
  return bin;
}

/**
 * A SQLite data folder holding a library of `tracks` tracks, filled through the store API by
 * the `library` example of legato-store-mongo (metadata and waveforms, no audio; see its
 * doc comment for the names it gives). Removed by `stop()` of the server started on it.
 *
 * Filling 100,000 tracks takes the debug example almost two minutes, and what it writes
 * depends only on the code that writes it: the filled folder is kept under
 * `$LEGATO_TOOLS/ui-library/<key>-<tracks>` and copied for each test (see `libraryKey`).
 */
export function makeLibrary(tracks) {
  const bin = process.env.LEGATO_LIBRARY_BIN || path.join(REPO_DIR, 'target', 'debug', 'examples', 'library');
  if (!fs.existsSync(bin)) {
    throw new Error(
      `library example not found at ${bin}. Build it with \`cargo build -p legato-store-mongo --example library\` ` +
        'or point LEGATO_LIBRARY_BIN at a built one.',
    );
  }
  const tools = process.env.LEGATO_TOOLS || path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'legato-tools');
  const digest = libraryKey(bin);
  const cacheRoot = path.join(tools, 'ui-library');
  const cached = path.join(cacheRoot, `${digest}-${tracks}`);
  if (!fs.existsSync(path.join(cached, '.complete'))) {
    fs.mkdirSync(cacheRoot, { recursive: true });
    // Only one cached fill per size: older binaries' fills are removed.
    for (const old of fs.readdirSync(cacheRoot)) {
      if (old.endsWith(`-${tracks}`)) fs.rmSync(path.join(cacheRoot, old), { recursive: true, force: true });
    }
    const filling = fs.mkdtempSync(path.join(cacheRoot, 'filling-'));
    execFileSync(bin, [filling, String(tracks)], { stdio: ['ignore', 'ignore', 'inherit'] });
    fs.writeFileSync(path.join(filling, '.complete'), '');
    fs.renameSync(filling, cached);
  }
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'legato-ui-library-'));
  for (const name of fs.readdirSync(cached)) {
    if (name !== '.complete') fs.cpSync(path.join(cached, name), path.join(dataDir, name), { recursive: true });
  }
  return dataDir;
}

/** What a filled store depends on: the store's code, the example and Cargo.lock. */
const LIBRARY_INPUTS = ['Cargo.lock', 'crates/legato-store', 'crates/legato-store-sqlite', 'crates/legato-store-mongo'];

/**
 * The cache key of a filled store: the git objects of its inputs when they are committed as
 * they are (a fresh clone in CI rebuilds the binary at another path, so the binary's bytes
 * change while the store it writes does not), else the binary's own SHA-256.
 */
function libraryKey(bin) {
  try {
    const dirty = execFileSync('git', ['-C', REPO_DIR, 'status', '--porcelain', '--', ...LIBRARY_INPUTS], { encoding: 'utf8' });
    if (!dirty.trim()) {
      const trees = execFileSync('git', ['-C', REPO_DIR, 'rev-parse', ...LIBRARY_INPUTS.map((p) => `HEAD:${p}`)], { encoding: 'utf8' });
      return `git-${crypto.createHash('sha256').update(trees).digest('hex').slice(0, 16)}`;
    }
  } catch {
    /* not a git checkout: the binary decides */
  }
  return `bin-${crypto.createHash('sha256').update(fs.readFileSync(bin)).digest('hex').slice(0, 16)}`;
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Starts `legato serve --listen 127.0.0.1:<free port> --data <dataDir, else a fresh tmp dir>` and waits until it
 * answers. Returns `{url, dataDir, stop(), log()}`; `stop()` kills it and removes the data.
 */
export async function startServer({ args = [], dataDir: given } = {}) {
  const bin = legatoBin();
  const dataDir = given || fs.mkdtempSync(path.join(os.tmpdir(), 'legato-ui-test-'));
  let lastError = null;
  for (let attempt = 0; attempt < 3; attempt += 1) {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const child = spawn(bin, ['serve', '--listen', `127.0.0.1:${port}`, '--data', dataDir, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, RUST_LOG: process.env.RUST_LOG || 'warn' },
    });
    let output = '';
    const keep = (d) => {
      output += d.toString();
      if (output.length > 200_000) output = output.slice(-100_000);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    let exited = null;
    child.on('exit', (code, signal) => {
      exited = { code, signal };
    });
    const deadline = Date.now() + 30_000;
    let up = false;
    while (Date.now() < deadline && !exited) {
      try {
        const res = await fetch(`${url}/function/crud?limit=1`);
        await res.arrayBuffer();
        if (res.ok) {
          up = true;
          break;
        }
      } catch {
        /* not yet listening */
      }
      await sleep(100);
    }
    if (up) {
      // LEGATO_UI_FROM_DISK=1: the page from ui/static on disk (the binary embeds it at build time),
      // the API from this legato. For working on the page without rebuilding the binary.
      let dev = null;
      if (process.env.LEGATO_UI_FROM_DISK === '1') {
        const { startDevServer } = await import('../scripts/dev-server.mjs');
        dev = await startDevServer({ api: url });
      }
      const stop = async () => {
        if (dev) await dev.close();
        if (!exited) {
          child.kill('SIGTERM');
          const t0 = Date.now();
          while (!exited && Date.now() - t0 < 5000) await sleep(50);
          if (!exited) child.kill('SIGKILL');
          while (!exited && Date.now() - t0 < 8000) await sleep(50);
        }
        fs.rmSync(dataDir, { recursive: true, force: true });
      };
      return { url: dev ? dev.url : url, legatoUrl: url, dataDir, stop, log: () => output };
    }
    if (!exited) child.kill('SIGKILL');
    lastError = new Error(
      `legato serve did not come up on ${url} (${exited ? `exited with ${exited.code ?? exited.signal}` : 'timed out'}):\n${output}`,
    );
    if (!/address.*in use|AddrInUse/i.test(output)) break;
  }
  fs.rmSync(dataDir, { recursive: true, force: true });
  throw lastError;
}

export async function launchBrowser() {
  if (!fs.existsSync(CHROMIUM)) {
    throw new Error(`Chromium not found at ${CHROMIUM}: install Debian's package (apt-get install -y chromium) or run ui/run-tests.sh.`);
  }
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
}

/**
 * Opens `url` in a new page and collects what the page complains about. `page.problems` holds
 * uncaught exceptions and console errors; `page.requests` every URL the page asked for.
 */
export async function openPage(browser, url, { viewport = { width: 1280, height: 800 }, mobile = false } = {}) {
  const context = await browser.newContext({
    viewport,
    ...(mobile ? { isMobile: true, hasTouch: true, deviceScaleFactor: 2 } : {}),
  });
  const page = await context.newPage();
  page.problems = [];
  page.requests = [];
  page.on('pageerror', (e) => page.problems.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') page.problems.push(`console: ${m.text()}`);
  });
  page.on('request', (r) => page.requests.push(r.url()));
  await page.goto(url);
  await page.waitForFunction(() => document.documentElement.dataset.ready === 'true');
  return page;
}

export async function screenshot(page, name) {
  fs.mkdirSync(OUT_DIR, { recursive: true });
  const file = path.join(OUT_DIR, `${name}.png`);
  await page.screenshot({ path: file });
  return file;
}

const media = fs.mkdtempSync(path.join(os.tmpdir(), 'legato-ui-media-'));
process.on('exit', () => fs.rmSync(media, { recursive: true, force: true }));

/** A sine-wave MP3 made with ffmpeg (cached per process). `name` is the file name to give it. */
export function makeMp3({ seconds = 20, frequency = 440, name } = {}) {
  if (!fs.existsSync(FFMPEG)) throw new Error(`ffmpeg not found at ${FFMPEG}: apt-get install -y ffmpeg`);
  const file = path.join(media, name || `sine-${frequency}-${seconds}s.mp3`);
  if (!fs.existsSync(file)) {
    execFileSync(FFMPEG, [
      '-hide_banner', '-loglevel', 'error', '-y',
      '-f', 'lavfi', '-i', `sine=frequency=${frequency}:duration=${seconds}`,
      '-c:a', 'libmp3lame', '-b:a', '128k', file,
    ]);
  }
  return file;
}

export function makeTextFile(name = 'notes.txt', text = 'This is not music, just a shopping list.\n') {
  const file = path.join(media, name);
  fs.writeFileSync(file, text);
  return file;
}

let added = 0;

/**
 * `mp3` with an ID3v1 tag of its own at its end: the same song in another file. The server
 * answers an upload of a file it has already with that track (200), not a new one.
 */
export function uniqueMp3(mp3) {
  added += 1;
  const tag = Buffer.alloc(128);
  tag.write('TAG', 0, 'latin1');
  tag.write(`ui ${process.pid} ${added}`, 97, 'latin1'); // the comment field
  tag[127] = 0xff; // no genre
  return Buffer.concat([mp3, tag]);
}

/**
 * Adds a track through the HTTP API (raw body form of docs/api.md). Returns the track JSON.
 * Each call adds a new track, even of the same file (see `uniqueMp3`).
 */
export async function apiAdd(base, file, { name, author } = {}) {
  const qs = new URLSearchParams();
  if (name) qs.set('name', name);
  if (author) qs.set('author', author);
  const body = uniqueMp3(typeof file === 'string' ? fs.readFileSync(file) : file);
  // The server bounds concurrent ingests (429 with Retry-After): back off and retry, as a
  // well-behaved client does.
  for (let attempt = 0; ; attempt += 1) {
    const res = await fetch(`${base}/function/crud?${qs}`, { method: 'POST', headers: { 'Content-Type': 'audio/mpeg' }, body });
    const text = await res.text();
    if (res.status === 429 && attempt < 200) {
      await new Promise((resolve) => setTimeout(resolve, 20 + Math.random() * 30));
      continue;
    }
    if (res.status !== 201) throw new Error(`POST /function/crud answered ${res.status}: ${text}`);
    return JSON.parse(text);
  }
}

export async function apiList(base, query = {}) {
  const res = await fetch(`${base}/function/crud?${new URLSearchParams(query)}`);
  if (!res.ok) throw new Error(`GET /function/crud answered ${res.status}: ${await res.text()}`);
  return { tracks: await res.json(), total: Number(res.headers.get('x-total-count')) };
}

export async function apiDelete(base, id) {
  const res = await fetch(`${base}/function/crud/${id}`, { method: 'DELETE' });
  const text = await res.text();
  if (!res.ok) throw new Error(`DELETE answered ${res.status}: ${text}`);
  return JSON.parse(text);
}

/** Runs `fn` over `items` with at most `n` at a time. */
export async function inParallel(items, n, fn) {
  const out = new Array(items.length);
  let next = 0;
  const workers = Array.from({ length: Math.min(n, items.length) }, async () => {
    while (next < items.length) {
      const i = next;
      next += 1;
      out[i] = await fn(items[i], i);
    }
  });
  await Promise.all(workers);
  return out;
}

/** Rows of the library table as `{id, title, artist, duration}`. */
export function rows(page) {
  return page.$$eval('#track-rows tr[data-id]', (trs) =>
    trs.map((tr) => ({
      id: tr.dataset.id,
      title: tr.querySelector('.col-title .title')?.textContent ?? '',
      artist: tr.querySelector('.col-artist')?.textContent ?? '',
      duration: tr.querySelector('.col-duration')?.textContent ?? '',
      current: tr.getAttribute('aria-current') === 'true',
    })),
  );
}

export function audioState(page) {
  return page.evaluate(() => {
    const a = document.getElementById('audio');
    return {
      currentTime: a.currentTime,
      paused: a.paused,
      error: a.error ? a.error.code : null,
      duration: a.duration,
      playerError: document.getElementById('player-error').hidden ? null : document.getElementById('player-error-text').textContent,
    };
  });
}

/** Waits until the audio element's currentTime passes `seconds`. */
export async function waitForTime(page, seconds, timeout = 20_000) {
  await page.waitForFunction(
    (s) => {
      const a = document.getElementById('audio');
      const err = document.getElementById('player-error');
      if (!err.hidden) throw new Error(`player error: ${err.textContent.trim()}`);
      return a.currentTime > s && !a.paused;
    },
    seconds,
    { timeout, polling: 50 },
  );
}

export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Plays `url` with hls.js in a fresh audio element; resolves with ms to first audio. */
export function playWithHlsJs(page, url) {
  return page.evaluate((src) => new Promise((resolve, reject) => {
    const audio = document.createElement('audio');
    document.body.append(audio);
    const hls = new window.Hls({ enableWorker: false });
    const t0 = performance.now();
    hls.on(window.Hls.Events.ERROR, (_, data) => {
      if (data.fatal) reject(new Error(`hls.js: ${data.type} ${data.details}`));
    });
    hls.loadSource(src);
    hls.attachMedia(audio);
    hls.on(window.Hls.Events.MANIFEST_PARSED, () => audio.play().catch(reject));
    const check = () => {
      if (audio.currentTime > 0) {
        const ms = performance.now() - t0;
        const level = hls.levels[hls.currentLevel];
        setTimeout(() => {
          const played = audio.currentTime;
          hls.destroy();
          audio.remove();
          resolve({ ms, played, codecs: level?.audioCodec || level?.attrs?.CODECS });
        }, 1500);
        return;
      }
      if (performance.now() - t0 > 20000) return reject(new Error('no audio after 20 s'));
      setTimeout(check, 5);
    };
    check();
  }), url);
}

const AXE_SOURCE = path.join(UI_DIR, 'node_modules', 'axe-core', 'axe.min.js');

/**
 * The serious and critical accessibility violations axe-core (from npm) finds in the page as it
 * is now, against WCAG 2.1 A and AA, as `"rule: target…"` lines (empty when there are none).
 */
export async function accessibilityProblems(page) {
  if (!(await page.evaluate(() => typeof window.axe === 'object'))) {
    // Evaluated through the DevTools protocol, which the page's CSP does not govern.
    await page.evaluate(fs.readFileSync(AXE_SOURCE, 'utf8'));
  }
  const violations = await page.evaluate(async () => {
    const result = await window.axe.run(document, {
      runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] },
    });
    return result.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, targets: v.nodes.slice(0, 5).map((n) => n.target.join(' ')) }));
  });
  return violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id} (${v.impact}: ${v.help}): ${v.targets.join(', ')}`);
}
