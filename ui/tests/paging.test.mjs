// A large library: 1,000 tracks added through the HTTP API, browsed page by page.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startServer, launchBrowser, openPage, screenshot, makeMp3, apiAdd, apiList, inParallel, rows,
} from './helpers.mjs';

const N = 1000;

describe('paging through 1,000 tracks', { timeout: 300_000 }, () => {
  let server;
  let browser;
  let page;

  before(async () => {
    // Passthrough only: 1,000 small MP3s need no ladder to test paging.
    server = await startServer({ args: ['--ladder', 'none'] });
    browser = await launchBrowser();
    const mp3 = makeMp3({ seconds: 2, frequency: 880, name: 'tiny.mp3' });
    const t0 = Date.now();
    const indexes = Array.from({ length: N }, (_, i) => i);
    await inParallel(indexes, 8, (i) =>
      apiAdd(server.url, mp3, { name: `Track ${String(i).padStart(4, '0')}`, author: `Artist A${String(i % 40).padStart(2, '0')}` }),
    );
    const seconds = (Date.now() - t0) / 1000;
    console.log(`inserted ${N} tracks through the API in ${seconds.toFixed(1)} s`);
    assert.ok(seconds < 60, `inserting ${N} tracks took ${seconds.toFixed(1)} s`);
    const { total } = await apiList(server.url, { limit: 1 });
    assert.equal(total, N);
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  it('shows the first page, the count and the page controls', async () => {
    page = await openPage(browser, `${server.url}/#tracks`);
    await page.waitForFunction(() => document.querySelectorAll('#track-rows tr[data-id]').length > 0);
    assert.equal(await page.locator('#track-count').innerText(), '1,000 tracks');
    assert.equal((await rows(page)).length, 50);
    assert.equal(await page.locator('#page-status').innerText(), '1–50 of 1,000');
    assert.equal(await page.locator('#page-of').innerText(), 'of 20');
    assert.equal(await page.locator('#page-prev').isDisabled(), true);
    // Default order: newest first.
    assert.match((await rows(page))[0].title, /^Track \d{4}$/);
    await screenshot(page, '10-paging-first-page');
  });

  it('moves through pages with limit/offset', async () => {
    const offsets = [];
    page.on('request', (r) => {
      if (r.url().includes('/function/crud?')) offsets.push(new URL(r.url()).searchParams.get('offset'));
    });
    await page.click('th[data-sort="name"] button'); // Title A→Z
    await page.waitForFunction(() => document.querySelector('#track-rows tr .title')?.textContent === 'Track 0000');
    await page.click('#page-next');
    await page.waitForFunction(() => document.getElementById('page-status').textContent === '51–100 of 1,000');
    let r = await rows(page);
    assert.equal(r[0].title, 'Track 0050');
    assert.equal(r.at(-1).title, 'Track 0099');
    assert.ok(offsets.includes('50'));
    await page.click('#page-last');
    await page.waitForFunction(() => document.getElementById('page-status').textContent === '951–1,000 of 1,000');
    r = await rows(page);
    assert.equal(r.length, 50);
    assert.equal(r.at(-1).title, 'Track 0999');
    assert.equal(await page.locator('#page-next').isDisabled(), true);
    await page.fill('#page-input', '7');
    await page.press('#page-input', 'Enter');
    await page.waitForFunction(() => document.getElementById('page-status').textContent === '301–350 of 1,000');
    await page.selectOption('#page-size', '250');
    await page.waitForFunction(() => document.querySelectorAll('#track-rows tr[data-id]').length === 250);
    assert.equal(await page.locator('#page-status').innerText(), '251–500 of 1,000');
    await page.click('#page-first');
    await page.waitForFunction(() => document.getElementById('page-status').textContent === '1–250 of 1,000');
    await page.selectOption('#page-size', '50');
    await page.waitForFunction(() => document.querySelectorAll('#track-rows tr[data-id]').length === 50);
  });

  it('searches within the large library and pages the matches', async () => {
    // Every word of the search begins a word of the title or the artist ("07" alone would also
    // find Track 0700–0799), so the artists' numbers are words of their own.
    await page.fill('#search', 'artist a07');
    await page.waitForFunction(() => document.getElementById('track-count').textContent === '25 matches');
    const r = await rows(page);
    assert.equal(r.length, 25);
    assert.ok(r.every((x) => x.artist === 'Artist A07'));
    assert.equal(await page.locator('#pager').evaluate((e) => e.classList.contains('single-page')), true);
    await page.fill('#search', 'Track 012');
    await page.waitForFunction(() => document.getElementById('track-count').textContent === '10 matches');
    await screenshot(page, '11-paging-search');
    await page.fill('#search', '');
    await page.waitForFunction(() => document.getElementById('track-count').textContent === '1,000 tracks');
  });

  it('next at the end of a page continues on the next page', async () => {
    await page.click('#page-next'); // 51–100
    await page.waitForFunction(() => document.getElementById('page-status').textContent === '51–100 of 1,000');
    const last = (await rows(page)).at(-1);
    await page.locator(`#track-rows tr[data-id="${last.id}"] [data-action="play"]`).click();
    await page.waitForFunction(() => document.getElementById('audio').currentTime > 0.1, null, { timeout: 15_000 });
    await page.click('#next-button');
    await page.waitForFunction(() => document.getElementById('page-status').textContent === '101–150 of 1,000');
    await page.waitForFunction(() => document.getElementById('np-title').textContent === 'Track 0100');
    assert.equal((await rows(page))[0].current, true);
    assert.deepEqual(page.problems, []);
  });
});
