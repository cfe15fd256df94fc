// A phone-width screen: nothing overflows sideways, the essentials stay visible and work by touch.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startServer, launchBrowser, openPage, screenshot, makeMp3, apiAdd, rows, waitForTime,
} from './helpers.mjs';

describe('phone-width viewport', { timeout: 180_000 }, () => {
  let server;
  let browser;

  before(async () => {
    server = await startServer();
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  it('is usable at 390×844 with touch', async () => {
    const empty = await openPage(browser, `${server.url}/#tracks`, { viewport: { width: 390, height: 844 }, mobile: true });
    await empty.locator('#empty-state').waitFor({ state: 'visible' });
    await screenshot(empty, '12-phone-empty');
    await empty.context().close();

    const mp3 = makeMp3({ seconds: 20, frequency: 440 });
    await apiAdd(server.url, mp3, { name: 'A Rather Long Song Title That Will Not Fit On A Phone', author: 'Someone With A Long Name' });
    await apiAdd(server.url, mp3, { name: 'Short', author: 'Duo' });
    const page = await openPage(browser, `${server.url}/#tracks`, { viewport: { width: 390, height: 844 }, mobile: true });
    await page.waitForFunction(() => document.querySelectorAll('#track-rows tr[data-id]').length === 2);

    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `no horizontal scrolling (overflow ${overflow}px)`);

    // Title, artist (under the title), duration and the row buttons are on screen.
    const inView = await page.evaluate(() => {
      const vw = window.innerWidth;
      const row = document.querySelector('#track-rows tr[data-id]');
      const check = (sel) => {
        const el = row.querySelector(sel);
        if (!el) return `${sel}: missing`;
        const r = el.getBoundingClientRect();
        if (r.width === 0 || r.height === 0) return `${sel}: not shown`;
        if (r.left < 0 || r.right > vw + 0.5) return `${sel}: off screen (${r.left}–${r.right})`;
        return null;
      };
      return ['[data-action="play"]', '.title', '.sub', '.col-duration', '[data-action="edit"]', '[data-action="delete"]']
        .map(check).filter(Boolean);
    });
    assert.deepEqual(inView, []);
    const r = await rows(page);
    assert.ok(r.every((x) => /^\d+:\d\d$/.test(x.duration)));

    // Touch targets of the player are at least 32 px.
    const small = await page.evaluate(() => ['#play-button', '#prev-button', '#next-button', '#mute-button', '#add-music']
      .map((s) => [s, document.querySelector(s).getBoundingClientRect()])
      .filter(([, b]) => b.width < 32 || b.height < 32)
      .map(([s]) => s));
    assert.deepEqual(small, []);

    await page.locator('#track-rows tr', { hasText: 'Short' }).locator('[data-action="play"]').tap();
    await waitForTime(page, 1.0);
    const bar = await page.locator('.player').boundingBox();
    assert.ok(bar.y + bar.height <= 844 + 1 && bar.y > 844 / 2, 'the player sits at the bottom of the screen');
    const seek = await page.locator('#seek').boundingBox();
    assert.ok(seek.width > 120, `the seek bar is wide enough to use (${seek.width}px)`);
    await page.locator('#play-button').tap();
    await page.waitForFunction(() => document.getElementById('audio').paused);
    await screenshot(page, '13-phone-library');

    // The albums and an album page fit the phone too, the queue over them.
    await page.evaluate(() => {
      location.hash = '#albums';
    });
    await page.locator('.album-card').first().waitFor();
    const albumsOverflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(albumsOverflow <= 0, `no horizontal scrolling on the albums (overflow ${albumsOverflow}px)`);
    await screenshot(page, '13b-phone-albums');
    await page.locator('.album-card').first().tap();
    await page.locator('.track-row').first().waitFor();
    await page.locator('button[data-action="play-all"]').tap();
    await page.locator('#queue-button').tap();
    await page.locator('#queue-panel').waitFor({ state: 'visible' });
    const panel = await page.locator('#queue-panel').boundingBox();
    assert.ok(panel.x >= 0 && panel.x + panel.width <= 390 + 0.5, `the queue fits the screen (${panel.x}–${panel.x + panel.width})`);
    const close = await page.locator('#queue-close').boundingBox();
    assert.ok(close && close.x + close.width <= panel.x + panel.width + 0.5, 'the queue\'s close button is on screen');
    const albumOverflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(albumOverflow <= 0, `no horizontal scrolling on an album (overflow ${albumOverflow}px)`);
    await screenshot(page, '13c-phone-album-queue');
    assert.deepEqual(page.problems, []);
    await page.context().close();
  });
});
