// A library of 100,000 tracks (filled through the store API, no audio): the page pages it,
// sorts it and searches it as the user types, asking the server only for what it shows.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launchBrowser, openPage, screenshot, makeLibrary, apiList, rows } from './helpers.mjs';

const N = 100_000;
/** Generous bounds for a debug server on a shared 2-core machine; the release figures are in bench/library.py. */
const FIRST_PAGE_MS = 5000;
const STEP_MS = 3000;
/** The albums view's first answer waits for the Subsonic library snapshot, read once per process. */
const ALBUMS_FIRST_MS = 20_000;

describe('a library of 100,000 tracks', { timeout: 900_000 }, () => {
  let server;
  let browser;
  let page;
  const listRequests = [];

  before(async () => {
    const t0 = Date.now();
    const dataDir = makeLibrary(N);
    console.log(`a store of ${N} tracks ready in ${((Date.now() - t0) / 1000).toFixed(1)} s (filled once per version of the store code, then copied)`);
    server = await startServer({ dataDir });
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  /** Waits for `text` in `#page-status`, returns how long it took from `since`. */
  async function statusReads(text, since) {
    await page.waitForFunction((t) => document.getElementById('page-status').textContent === t, text, { timeout: 30_000 });
    return Date.now() - since;
  }

  it('opens on the first page of 50, newest first, after one small request', async () => {
    const t0 = Date.now();
    page = await openPage(browser, `${server.url}/#tracks`);
    page.on('request', (r) => {
      if (r.url().includes('/function/crud?')) listRequests.push(new URL(r.url()).searchParams);
    });
    const ms = await statusReads('1–50 of 100,000', t0);
    assert.ok(ms < FIRST_PAGE_MS, `first page after ${ms} ms`);
    assert.equal(await page.locator('#track-count').innerText(), '100,000 tracks');
    const r = await rows(page);
    assert.equal(r.length, 50);
    assert.equal(r[0].title, 'Jade Engine n099999');
    // Every list request the page made asked for a page, never the whole library.
    const asked = page.requests.filter((u) => u.includes('/function/crud?') || u.endsWith('/function/crud'));
    assert.ok(asked.length >= 1);
    for (const u of asked) assert.match(u, /[?&]limit=\d+/, u);
    await screenshot(page, '30-library-100k-first-page');
  });

  it('goes to the last page and sorts there, each step one request', async () => {
    let t0 = Date.now();
    await page.click('#page-last');
    let ms = await statusReads('99,951–100,000 of 100,000', t0);
    assert.ok(ms < STEP_MS, `last page after ${ms} ms`);
    assert.equal((await rows(page)).at(-1).title, 'Amber Night n000000');

    const { tracks: lastByName } = await apiList(server.legatoUrl, { sort: 'name', limit: 1, offset: N - 1 });
    t0 = Date.now();
    const before = listRequests.length;
    await page.click('th[data-sort="name"] button'); // Title A→Z, back to the first page
    await page.waitForFunction(() => document.querySelector('#track-rows tr .title')?.textContent === 'Amber Engine n000090');
    await page.click('#page-last');
    ms = await statusReads('99,951–100,000 of 100,000', t0);
    assert.ok(ms < 2 * STEP_MS, `sorted, then the last page, after ${ms} ms`);
    assert.equal((await rows(page)).at(-1).title, lastByName[0].name);
    assert.ok(listRequests.length - before <= 3, `${listRequests.length - before} list requests`);
  });

  it('searches as the user types: accents folded, one request after the typing stops', async () => {
    const before = listRequests.length;
    await page.click('#search');
    const t0 = Date.now();
    // "echos" finds "Échos", one track in ten; typed at a brisk 60 ms a key.
    await page.keyboard.type('echos', { delay: 60 });
    const typed = Date.now();
    await page.waitForFunction(() => document.getElementById('track-count').textContent === '10,000 matches', null, { timeout: 30_000 });
    const ms = Date.now() - typed;
    const searches = listRequests.slice(before).filter((p) => p.get('q'));
    assert.ok(searches.length >= 1 && searches.length <= 2, `${searches.length} searches for 5 keys: ${searches.map((p) => p.get('q'))}`);
    assert.equal(searches.at(-1).get('q'), 'echos');
    assert.ok(ms < STEP_MS, `results ${ms} ms after the last key (typing took ${typed - t0} ms)`);
    const r = await rows(page);
    assert.equal(r.length, 50);
    assert.ok(r.every((x) => x.title.startsWith('Échos ')), JSON.stringify(r.slice(0, 3)));
    assert.equal(await page.locator('#page-status').innerText(), '1–50 of 10,000');

    // Narrowing to one track: a word prefix of the title and the artist.
    await page.fill('#search', 'n004242');
    await page.waitForFunction(() => document.getElementById('track-count').textContent === '1 match', null, { timeout: 30_000 });
    assert.equal((await rows(page))[0].title, 'Café Motel n004242');
    await screenshot(page, '31-library-100k-search');

    await page.fill('#search', '');
    await statusReads('1–50 of 100,000', Date.now());
    assert.deepEqual(page.problems, []);
  });

  it('shows the album grid a page at a time, an album, and one search over artists, albums and tracks', async () => {
    const restCalls = [];
    page.on('request', (r) => {
      const u = new URL(r.url());
      if (u.pathname.startsWith('/rest/get') || u.pathname.startsWith('/rest/search')) restCalls.push(u);
    });
    let t0 = Date.now();
    await page.evaluate(() => {
      location.hash = '#albums/alphabeticalByName';
    });
    await page.waitForFunction(() => document.querySelectorAll('.album-card').length === 60, null, { timeout: 60_000 });
    const firstMs = Date.now() - t0;
    assert.ok(firstMs < ALBUMS_FIRST_MS, `first album page after ${firstMs} ms`);
    await screenshot(page, '32-library-100k-albums');

    // Again, warm: the next 60 albums.
    t0 = Date.now();
    await page.click('.more-button');
    await page.waitForFunction(() => document.querySelectorAll('.album-card').length === 120, null, { timeout: 30_000 });
    const moreMs = Date.now() - t0;
    assert.ok(moreMs < STEP_MS, `the next page after ${moreMs} ms`);
    const pages = restCalls.filter((u) => u.pathname === '/rest/getAlbumList2').map((u) => Number(u.searchParams.get('size')));
    assert.deepEqual(pages, [60, 60], 'two pages of 60, never the whole list');

    t0 = Date.now();
    await page.click('.album-card >> nth=0');
    await page.waitForFunction(() => document.querySelectorAll('.track-row').length === 10, null, { timeout: 30_000 });
    const albumMs = Date.now() - t0;
    assert.ok(albumMs < STEP_MS, `an album after ${albumMs} ms`);

    t0 = Date.now();
    await page.fill('#browse-search', 'r04242');
    await page.press('#browse-search', 'Enter');
    await page.waitForFunction(() => document.querySelectorAll('.album-card').length === 1, null, { timeout: 30_000 });
    const searchMs = Date.now() - t0;
    assert.ok(searchMs < STEP_MS, `a search after ${searchMs} ms`);
    console.log(`albums at ${N} tracks: first page ${firstMs} ms (cold), next ${moreMs} ms, album ${albumMs} ms, search ${searchMs} ms`);
    assert.deepEqual(page.problems, []);
  });
});
