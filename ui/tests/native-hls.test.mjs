// Where hls.js cannot run (Safari on iOS), the page hands the playlist to the browser's own HLS.
// Recent Chromium plays HLS natively too, so the fallback is exercised here by making
// Hls.isSupported() answer false.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startServer, launchBrowser, screenshot, makeMp3, apiAdd, apiDelete, waitForTime,
} from './helpers.mjs';

describe('native HLS fallback', { timeout: 120_000 }, () => {
  let server;
  let browser;
  let page;

  before(async () => {
    server = await startServer();
    browser = await launchBrowser();
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    await context.addInitScript(() => {
      let hls;
      Object.defineProperty(window, 'Hls', {
        configurable: true,
        get: () => hls,
        set: (v) => {
          hls = v;
          if (v) v.isSupported = () => false;
        },
      });
    });
    page = await context.newPage();
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  it('plays through audio.src with the playlist URL, and reports a deleted track', async (t) => {
    const mp3 = makeMp3({ seconds: 20, frequency: 440 });
    const keep = await apiAdd(server.url, mp3, { name: 'Native One', author: 'Browser' });
    const gone = await apiAdd(server.url, mp3, { name: 'Native Gone', author: 'Browser' });
    await page.goto(`${server.url}/#tracks`);
    await page.waitForFunction(() => document.querySelectorAll('#track-rows tr[data-id]').length === 2);
    const canNative = await page.evaluate(() => document.getElementById('audio').canPlayType('application/vnd.apple.mpegurl'));
    assert.equal(await page.evaluate(() => window.Hls.isSupported()), false);
    if (!canNative) {
      t.skip('this Chromium has no native HLS');
      return;
    }
    await page.locator(`#track-rows tr[data-id="${keep.id}"] [data-action="play"]`).click();
    assert.equal(await page.evaluate(() => document.getElementById('audio').getAttribute('src')), `${server.url}/function/streaming/${keep.id}/index.m3u8`);
    await waitForTime(page, 1.0);
    await apiDelete(server.url, gone.id);
    await page.locator(`#track-rows tr[data-id="${gone.id}"] [data-action="play"]`).click();
    await page.locator('#player-error').waitFor({ state: 'visible', timeout: 20_000 });
    assert.match(await page.locator('#player-error-text').innerText(), /Native Gone.*no longer available/);
    await screenshot(page, '16-native-hls-error');
  });
});
