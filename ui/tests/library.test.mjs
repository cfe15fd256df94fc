// The main path through the page, as a person takes it: an empty library, two uploads through
// the file chooser, search, play, seek, keyboard, next/previous, edit, delete.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startServer, launchBrowser, openPage, screenshot, makeMp3, rows, audioState, waitForTime, apiList,
} from './helpers.mjs';

describe('library, upload and playback (empty store)', { timeout: 240_000 }, () => {
  let server;
  let browser;
  let page;

  before(async () => {
    server = await startServer();
    browser = await launchBrowser();
    page = await openPage(browser, `${server.url}/#tracks`);
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  it('serves the page at / with its assets from the same server, nothing from elsewhere', async () => {
    const res = await fetch(`${server.url}/`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') || '', /text\/html/);
    for (const asset of ['/app.js', '/js/player.js', '/style.css', '/vendor/hls.min.js']) {
      const r = await fetch(`${server.url}${asset}`);
      assert.equal(r.status, 200, `GET ${asset}`);
      const ct = r.headers.get('content-type') || '';
      if (asset.endsWith('.js')) assert.match(ct, /javascript/, `${asset} must be served as JavaScript (modules need it), got ${ct}`);
      if (asset.endsWith('.css')) assert.match(ct, /text\/css/, `${asset} must be served as text/css, got ${ct}`);
      await r.arrayBuffer();
    }
    const foreign = page.requests.filter((u) => !u.startsWith(server.url) && !u.startsWith('data:') && !u.startsWith('blob:'));
    assert.deepEqual(foreign, [], 'the page fetched nothing from another origin');
    assert.equal(await page.evaluate(() => typeof window.Hls), 'function', 'hls.js loaded from /vendor');
  });

  it('shows an empty state that says how to add music', async () => {
    const empty = page.locator('#empty-state');
    await empty.waitFor({ state: 'visible' });
    const text = await empty.innerText();
    assert.match(text, /library is empty/i);
    assert.match(text, /drag|choose files/i);
    await screenshot(page, '01-empty-library');
  });

  it('uploads two MP3s through the file chooser and lists them with their durations', async () => {
    const a = makeMp3({ seconds: 20, frequency: 440, name: 'Morning Sine.mp3' });
    const b = makeMp3({ seconds: 12, frequency: 660, name: 'Evening Tone.mp3' });
    await page.evaluate(() => {
      window.__noReload = true;
    });
    const [chooser] = await Promise.all([page.waitForEvent('filechooser'), page.click('#add-music')]);
    assert.ok(chooser.isMultiple(), 'the file chooser accepts several files');
    await chooser.setFiles([a, b]);
    // One progress row per file.
    await page.waitForFunction(() => document.querySelectorAll('#upload-list .upload-item').length === 2);
    await page.waitForFunction(() => document.querySelectorAll('#track-rows tr[data-id]').length === 2, null, { timeout: 60_000 });
    // The list is refreshed as each upload is added; one processed after the other may show as
    // still processing ("…") until the refresh after its own answer.
    await page.waitForFunction(() => [...document.querySelectorAll('#track-rows .col-duration')].every((td) => /^\d+:\d\d$/.test(td.textContent)), null, { timeout: 60_000 });
    const statuses = await page.$$eval('#upload-list .upload-status', (els) => els.map((e) => e.textContent));
    assert.deepEqual(statuses.map((s) => s.replace(/ ·.*/, '')), ['Added', 'Added']);
    const listed = await rows(page);
    const byTitle = Object.fromEntries(listed.map((r) => [r.title, r]));
    assert.deepEqual(Object.keys(byTitle).sort(), ['Evening Tone', 'Morning Sine'], 'titles come from the file names');
    assert.equal(byTitle['Morning Sine'].duration, '0:20');
    assert.equal(byTitle['Evening Tone'].duration, '0:12');
    assert.match(await page.locator('#track-count').innerText(), /^2 tracks/);
    assert.equal(await page.evaluate(() => window.__noReload), true, 'no page reload');
    await screenshot(page, '02-uploaded');
  });

  it('narrows the list as you type in search, and widens it again', async () => {
    const requests = [];
    const onReq = (r) => {
      if (r.url().includes('/function/crud?')) requests.push(r.url());
    };
    page.on('request', onReq);
    await page.locator('#search').pressSequentially('morn', { delay: 40 });
    await page.waitForFunction(() => document.querySelectorAll('#track-rows tr[data-id]').length === 1);
    assert.deepEqual((await rows(page)).map((r) => r.title), ['Morning Sine']);
    assert.ok(requests.some((u) => new URL(u).searchParams.get('q') === 'morn'), 'server-side search with q=');
    assert.ok(requests.length <= 2, `search is debounced (${requests.length} list requests for 4 keystrokes)`);
    await screenshot(page, '03-search');
    await page.locator('#search').fill('zzz-nothing');
    await page.locator('#no-results').waitFor({ state: 'visible' });
    await page.click('#clear-search');
    await page.waitForFunction(() => document.querySelectorAll('#track-rows tr[data-id]').length === 2);
    page.off('request', onReq);
  });

  it('sorts on the server when a column header is clicked', async () => {
    const seen = [];
    const onReq = (r) => {
      if (r.url().includes('/function/crud?')) seen.push(new URL(r.url()).searchParams);
    };
    page.on('request', onReq);
    await page.click('th[data-sort="name"] button');
    await page.waitForFunction(() => document.querySelector('th[data-sort="name"]').getAttribute('aria-sort') === 'ascending');
    assert.deepEqual((await rows(page)).map((r) => r.title), ['Evening Tone', 'Morning Sine']);
    await page.click('th[data-sort="name"] button');
    await page.waitForFunction(() => document.querySelector('th[data-sort="name"]').getAttribute('aria-sort') === 'descending');
    assert.deepEqual((await rows(page)).map((r) => r.title), ['Morning Sine', 'Evening Tone']);
    assert.ok(seen.some((p) => p.get('sort') === 'name' && p.get('order') === 'asc'));
    assert.ok(seen.some((p) => p.get('sort') === 'name' && p.get('order') === 'desc'));
    await page.click('th[data-sort="duration"] button');
    await page.waitForFunction(() => document.querySelector('th[data-sort="duration"]').getAttribute('aria-sort') === 'ascending');
    assert.deepEqual((await rows(page)).map((r) => r.duration), ['0:12', '0:20']);
    page.off('request', onReq);
  });

  it('plays a track: currentTime passes 2 s with no error, and the row is highlighted', async () => {
    const row = page.locator('#track-rows tr', { hasText: 'Morning Sine' });
    await row.locator('[data-action="play"]').click();
    await waitForTime(page, 2.0);
    const st = await audioState(page);
    assert.equal(st.error, null);
    assert.equal(st.playerError, null);
    assert.equal(await row.getAttribute('aria-current'), 'true');
    assert.equal(await page.locator('#np-title').innerText(), 'Morning Sine');
    assert.equal(await page.locator('#time-total').innerText(), '0:20');
    assert.equal(await page.getAttribute('#play-button', 'aria-label'), 'Pause');
    await screenshot(page, '04-playing');
  });

  it('seeks to the middle with the seek bar and continues from there', async () => {
    const box = await page.locator('#seek').boundingBox();
    await page.mouse.click(box.x + box.width / 2, box.y + box.height / 2);
    await page.waitForFunction(() => document.getElementById('audio').currentTime >= 9.3, null, { timeout: 5000 });
    const after = (await audioState(page)).currentTime;
    assert.ok(after >= 9.3 && after < 12.5, `seeked near the middle (10 s), at ${after}`);
    await waitForTime(page, after + 1.0);
    const st = await audioState(page);
    assert.ok(st.currentTime > after + 1.0 && st.currentTime < 16, `time continues from the middle, at ${st.currentTime}`);
    assert.match(await page.locator('#time-elapsed').innerText(), /^0:1\d$/);
    const buffered = await page.locator('#seek-buffered .seek-buffered-range').count();
    assert.ok(buffered >= 1, 'buffered ranges are drawn on the seek bar');
    await screenshot(page, '05-seeked');
  });

  it('toggles play with the space bar, but not while typing in the search box', async () => {
    await page.locator('h2#library-heading').click(); // focus out of any control
    await page.evaluate(() => document.activeElement && document.activeElement.blur());
    await page.keyboard.press('Space');
    await page.waitForFunction(() => document.getElementById('audio').paused);
    const pausedAt = (await audioState(page)).currentTime;
    await page.waitForTimeout(400);
    assert.equal((await audioState(page)).currentTime, pausedAt, 'stays paused');
    await page.focus('#search');
    await page.keyboard.press('Space');
    await page.waitForTimeout(200);
    assert.equal((await audioState(page)).paused, true, 'space in the search box types');
    assert.equal(await page.inputValue('#search'), ' ');
    await page.fill('#search', '');
    await page.waitForTimeout(400); // debounce of the (empty) search
    await page.evaluate(() => document.activeElement.blur());
    await page.keyboard.press('Space');
    await waitForTime(page, pausedAt + 0.3);
  });

  it('moves to the next and previous track of the visible list', async () => {
    const before = await page.locator('#np-title').innerText();
    await page.click('#next-button');
    await page.waitForFunction((t) => document.getElementById('np-title').textContent !== t, before);
    const other = await page.locator('#np-title').innerText();
    assert.notEqual(other, before);
    await waitForTime(page, 0.2);
    const cur = (await rows(page)).find((r) => r.current);
    assert.equal(cur.title, other, 'the now-playing row follows');
    await page.click('#prev-button');
    await page.waitForFunction((t) => document.getElementById('np-title').textContent === t, before);
    await waitForTime(page, 0.2);
    await page.click('#play-button');
    await page.waitForFunction(() => document.getElementById('audio').paused);
  });

  it('edits a title and an artist in place', async () => {
    const row = page.locator('#track-rows tr', { hasText: 'Evening Tone' });
    const id = await row.getAttribute('data-id');
    await row.locator('[data-action="edit"]').click();
    const editRow = page.locator(`#track-rows tr[data-id="${id}"]`);
    const title = editRow.getByLabel('Title', { exact: true });
    await title.waitFor();
    assert.equal(await title.evaluate((e) => e === document.activeElement), true, 'the title field takes focus');
    await title.fill('Renamed Song');
    await editRow.getByLabel('Artist', { exact: true }).fill('The Testers');
    await title.press('Enter');
    await page.waitForFunction((i) => {
      const tr = document.querySelector(`#track-rows tr[data-id="${i}"]`);
      return tr && !tr.classList.contains('is-editing') && tr.querySelector('.title')?.textContent === 'Renamed Song';
    }, id);
    assert.equal((await rows(page)).find((r) => r.id === id).artist, 'The Testers');
    const res = await fetch(`${server.url}/function/crud/${id}`);
    const track = await res.json();
    assert.equal(track.name, 'Renamed Song');
    assert.equal(track.author, 'The Testers');
    // Escape cancels an edit without saving.
    await page.locator(`#track-rows tr[data-id="${id}"] [data-action="edit"]`).click();
    await editRow.getByLabel('Title', { exact: true }).fill('Not saved');
    await editRow.getByLabel('Title', { exact: true }).press('Escape');
    await page.waitForFunction((i) => !document.querySelector(`#track-rows tr[data-id="${i}"]`).classList.contains('is-editing'), id);
    assert.equal((await rows(page)).find((r) => r.id === id).title, 'Renamed Song');
    await screenshot(page, '06-edited');
  });

  it('deletes a track after confirmation, without a reload', async () => {
    const row = page.locator('#track-rows tr', { hasText: 'Renamed Song' });
    const id = await row.getAttribute('data-id');
    // Dismissing the confirmation keeps the track.
    page.once('dialog', (d) => d.dismiss());
    await row.locator('[data-action="delete"]').click();
    await page.waitForTimeout(300);
    assert.equal((await rows(page)).length, 2);
    let message = '';
    page.once('dialog', (d) => {
      message = d.message();
      d.accept();
    });
    await row.locator('[data-action="delete"]').click();
    await page.waitForFunction((i) => !document.querySelector(`#track-rows tr[data-id="${i}"]`), id);
    assert.match(message, /Delete “Renamed Song”/);
    assert.deepEqual((await rows(page)).map((r) => r.title), ['Morning Sine']);
    assert.match(await page.locator('#track-count').innerText(), /^1 track/);
    const { total } = await apiList(server.url);
    assert.equal(total, 1);
    assert.equal(await page.evaluate(() => window.__noReload), true, 'no page reload');
    await screenshot(page, '07-deleted');
  });

  it('labels every control and reaches the library by keyboard', async () => {
    const unlabelled = await page.evaluate(() => {
      const out = [];
      for (const el of document.querySelectorAll('button, input, select')) {
        if (el.type === 'file') continue;
        const r = el.getBoundingClientRect();
        if (!r.width && !r.height) continue;
        const labelled = el.getAttribute('aria-label') || el.getAttribute('aria-labelledby')
          || (el.id && document.querySelector(`label[for="${el.id}"]`)) || el.closest('label')
          || (el.tagName === 'BUTTON' && el.textContent.trim());
        if (!labelled) out.push(el.outerHTML.slice(0, 120));
      }
      return out;
    });
    assert.deepEqual(unlabelled, []);
    await page.focus('#search');
    let reached = false;
    for (let i = 0; i < 25 && !reached; i += 1) {
      await page.keyboard.press('Tab');
      reached = await page.evaluate(() => !!document.activeElement?.closest('#track-rows [data-action="play"]'));
    }
    assert.ok(reached, 'Tab from the search box reaches a row play button');
    await page.keyboard.press('Enter');
    await waitForTime(page, 0.5);
    await page.click('#play-button');
  });

  it('left no errors in the page', () => {
    assert.deepEqual(page.problems, []);
  });
});
