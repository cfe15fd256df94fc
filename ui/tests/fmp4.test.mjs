// The fMP4 renditions in Chromium: hls.js plays the AAC-LC and the lossless FLAC variants,
// and video.js (its built-in VHS, which refuses MP3 in HLS) plays index.m3u8, picking AAC.
// Time to first audio (load → currentTime > 0) is reported for each.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import {
  startServer, launchBrowser, openPage, playWithHlsJs, UI_DIR, FFMPEG,
} from './helpers.mjs';

const SECONDS = 25;

function makeFlac() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'legato-ui-fmp4-'));
  const file = path.join(dir, 'chord.flac');
  execFileSync(FFMPEG, [
    '-hide_banner', '-loglevel', 'error', '-y',
    '-f', 'lavfi', '-i', `sine=frequency=330:duration=${SECONDS}`,
    '-f', 'lavfi', '-i', `sine=frequency=495:duration=${SECONDS}`,
    '-filter_complex', '[0][1]amerge=inputs=2', '-ar', '44100', '-c:a', 'flac', file,
  ]);
  return file;
}

/** Uploads a file as it is and waits until its track is ready. */
async function upload(base, file) {
  const res = await fetch(`${base}/function/crud?name=Chord&author=Tester`, {
    method: 'POST', headers: { 'Content-Type': 'audio/flac' }, body: fs.readFileSync(file),
  });
  const text = await res.text();
  assert.ok([201, 202].includes(res.status), `upload answered ${res.status}: ${text}`);
  let track = JSON.parse(text);
  const deadline = Date.now() + 120_000;
  // Playable on its first rung at once; the follow-up job adds the AAC and FLAC rungs.
  while (track.status !== 'ready' || track.job) {
    assert.notEqual(track.status, 'failed', JSON.stringify(track));
    assert.ok(Date.now() < deadline, 'the track did not get every rendition');
    await new Promise((r) => setTimeout(r, 250));
    track = await (await fetch(`${base}/function/crud/${track.id}`)).json();
  }
  return track;
}

describe('fMP4 renditions in Chromium', { timeout: 300_000 }, () => {
  let server;
  let browser;
  let track;

  before(async () => {
    server = await startServer();
    browser = await launchBrowser();
    track = await upload(server.url, makeFlac());
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  const variant = (name) => {
    const found = track.variants.find((v) => v.name === name);
    assert.ok(found, `no ${name} variant in ${JSON.stringify(track.variants)}`);
    return `${server.url}${found.playlist}`;
  };

  it('hls.js plays the AAC-LC variant and the lossless FLAC variant', async () => {
    assert.deepEqual(
      track.variants.filter((v) => v.container === 'fmp4').map((v) => v.name),
      ['aac64k', 'aac128k', 'aac256k', 'flac'],
    );
    const page = await openPage(browser, `${server.url}/#tracks`);
    await page.waitForFunction(() => typeof window.Hls === 'function');
    const aac = await playWithHlsJs(page, variant('aac128k'));
    console.log(`time-to-first-audio-ms hls.js aac128k: ${aac.ms.toFixed(0)}`);
    assert.ok(aac.played > 0.5, `AAC played only to ${aac.played}`);
    const flacSupported = await page.evaluate(() => MediaSource.isTypeSupported('audio/mp4; codecs="flac"'));
    assert.ok(flacSupported, 'this Chromium has no FLAC in MSE');
    const flac = await playWithHlsJs(page, variant('flac'));
    console.log(`time-to-first-audio-ms hls.js flac: ${flac.ms.toFixed(0)}`);
    assert.ok(flac.played > 0.5, `FLAC played only to ${flac.played}`);
    const master = await playWithHlsJs(page, `${server.url}${track.playlist}`);
    console.log(`time-to-first-audio-ms hls.js index.m3u8 (${master.codecs}): ${master.ms.toFixed(0)}`);
    assert.ok(master.played > 0.5);
    await page.context().close();
  });

  it('video.js plays index.m3u8 on an AAC variant', async () => {
    // A bare page of the server's origin (so the streams are same-origin) that loads
    // video.js from node_modules: served by the browser's router, since the web player's
    // own pages forbid scripts from anywhere else.
    const context = await browser.newContext();
    const page = await context.newPage();
    const videojs = fs.readFileSync(path.join(UI_DIR, 'node_modules', 'video.js', 'dist', 'video.min.js'));
    await page.route(`${server.url}/__video-js/**`, (route) => {
      if (route.request().url().endsWith('.js')) {
        return route.fulfill({ contentType: 'text/javascript', body: videojs });
      }
      return route.fulfill({
        contentType: 'text/html',
        body: '<!doctype html><html><body><script src="video.min.js"></script></body></html>',
      });
    });
    await page.goto(`${server.url}/__video-js/index.html`);
    await page.waitForFunction(() => typeof window.videojs === 'function');
    const result = await page.evaluate((src) => new Promise((resolve, reject) => {
      const el = document.createElement('audio');
      el.className = 'video-js';
      document.body.append(el);
      const player = window.videojs(el, { html5: { vhs: { overrideNative: true } } });
      const t0 = performance.now();
      player.on('error', () => reject(new Error(`video.js: ${JSON.stringify(player.error())}`)));
      player.src({ src, type: 'application/x-mpegURL' });
      player.play().catch(() => {});
      const check = () => {
        if (player.currentTime() > 0) {
          const ms = performance.now() - t0;
          setTimeout(() => {
            const media = player.tech({ IWillNotUseThisInPlugins: true }).vhs.playlists.media();
            resolve({ ms, played: player.currentTime(), codecs: media.attributes.CODECS, uri: media.uri });
            player.dispose();
          }, 1500);
          return;
        }
        if (performance.now() - t0 > 20000) return reject(new Error('no audio after 20 s'));
        setTimeout(check, 5);
      };
      check();
    }), `${server.url}${track.playlist}`);
    console.log(`time-to-first-audio-ms video.js index.m3u8 (${result.codecs}, ${result.uri}): ${result.ms.toFixed(0)}`);
    assert.equal(result.codecs, 'mp4a.40.2', `video.js picked ${result.uri}`);
    assert.ok(result.played > 0.5, `video.js played only to ${result.played}`);
    await context.close();
  });
});
