// The library as people browse it, signed in as a Subsonic user: albums with their art, an
// album's tracks in order, playing it through the queue, skipping, reordering, a reload that
// keeps the queue, and a star that the user's Subsonic apps see.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  startServer, launchBrowser, openPage, screenshot, audioState, legatoBin, FFMPEG, accessibilityProblems,
} from './helpers.mjs';

const USER = 'ana';
const PASSWORD = 'open-sesame';

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'legato-ui-albums-'));
process.on('exit', () => fs.rmSync(work, { recursive: true, force: true }));

/** A tagged MP3 of `seconds` made with ffmpeg. */
function taggedMp3({ title, album, artist, track, frequency, seconds = 8 }) {
  const file = path.join(work, `${album}-${track}.mp3`);
  execFileSync(FFMPEG, [
    '-hide_banner', '-loglevel', 'error', '-y',
    '-f', 'lavfi', '-i', `sine=frequency=${frequency}:duration=${seconds}`,
    '-c:a', 'libmp3lame', '-b:a', '128k',
    '-metadata', `title=${title}`, '-metadata', `album=${album}`, '-metadata', `artist=${artist}`,
    '-metadata', `album_artist=${artist}`, '-metadata', `track=${track}`, '-metadata', 'date=2021',
    '-metadata', 'genre=Ambient',
    file,
  ]);
  return file;
}

function redCover() {
  const file = path.join(work, 'cover.png');
  execFileSync(FFMPEG, ['-hide_banner', '-loglevel', 'error', '-y', '-f', 'lavfi', '-i', 'color=c=red:s=320x320', '-frames:v', '1', file]);
  return file;
}

/** Uploads `file` as multipart, with a folder `cover` when given (as `legato add` does). */
async function upload(base, file, cover) {
  const form = new FormData();
  form.append('song', new Blob([fs.readFileSync(file)], { type: 'audio/mpeg' }), path.basename(file));
  if (cover) form.append('cover', new Blob([fs.readFileSync(cover)], { type: 'image/png' }), 'cover.png');
  for (let attempt = 0; ; attempt += 1) {
    const res = await fetch(`${base}/function/crud`, { method: 'POST', body: form });
    const text = await res.text();
    if (res.status === 429 && attempt < 100) {
      await new Promise((r) => setTimeout(r, 50));
      continue;
    }
    assert.equal(res.status, 201, text);
    return JSON.parse(text);
  }
}

async function subsonic(base, method, params = {}) {
  const qs = new URLSearchParams({ u: USER, p: PASSWORD, v: '1.16.1', c: 'ui-test', f: 'json', ...params });
  const res = await fetch(`${base}/rest/${method}?${qs}`);
  const body = await res.json();
  const answer = body['subsonic-response'];
  assert.equal(answer.status, 'ok', JSON.stringify(answer));
  return answer;
}

const queueTitles = (page) => page.$$eval('#queue-list .queue-title', (els) => els.map((e) => e.textContent));
const nowPlaying = (page) => page.locator('#np-title').innerText();

describe('albums, the queue and signing in', { timeout: 300_000 }, () => {
  let server;
  let browser;
  let page;

  before(async () => {
    // The user is added first, as an operator does (`legato user add`), then the server starts.
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'legato-ui-test-'));
    const passwordFile = path.join(work, 'password');
    fs.writeFileSync(passwordFile, `${PASSWORD}\n`);
    execFileSync(legatoBin(), ['user', 'add', USER, '--password-file', passwordFile, '--data', dataDir]);
    execFileSync(legatoBin(), ['user', 'add', 'root', '--admin', '--password-file', passwordFile, '--data', dataDir]);
    server = await startServer({ dataDir, args: ['--ladder', 'none', '--aac-ladder', 'none', '--lossless', 'false'] });
    const blue = [
      { title: 'Three', track: 3, frequency: 660 },
      { title: 'One', track: 1, frequency: 440 },
      { title: 'Two', track: 2, frequency: 550 },
    ];
    for (const t of blue) await upload(server.url, taggedMp3({ ...t, album: 'Blue Hour', artist: 'The Testers' }));
    const cover = redCover();
    for (const t of [{ title: 'Dawn', track: 1, frequency: 330 }, { title: 'Noon', track: 2, frequency: 770 }]) {
      await upload(server.url, taggedMp3({ ...t, album: 'Red Morning', artist: 'Crimson' }), cover);
    }
    browser = await launchBrowser();
    page = await openPage(browser, `${server.url}/#albums`);
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  it('signs in with the Subsonic user and password', async () => {
    // Users exist, so nobody browses without signing in: the view says so, with a button.
    await page.locator('.sign-in-needed').waitFor();
    const button = page.locator('#user-button');
    await button.waitFor({ state: 'visible' });
    assert.match(await button.innerText(), /sign in/i);
    await button.click();
    await page.fill('#signin-name', USER);
    await page.fill('#signin-password', 'not it');
    await page.click('#signin-submit');
    await page.locator('#signin-error').waitFor({ state: 'visible' });
    assert.match(await page.locator('#signin-error').innerText(), /wrong user name or password/i);
    await page.fill('#signin-password', PASSWORD);
    await page.click('#signin-submit');
    await page.waitForFunction((u) => document.documentElement.dataset.user === u, USER);
    assert.equal(await page.locator('#toast').isHidden(), true, 'no error was shown');
    assert.match(await button.innerText(), new RegExp(USER));
    const cookies = await page.context().cookies();
    const session = cookies.find((c) => c.name === 'legato_session');
    assert.ok(session, 'a session cookie');
    assert.equal(session.httpOnly, true);
    assert.equal(session.sameSite, 'Strict');
    assert.equal(await page.evaluate(() => document.cookie.includes('legato_session')), false, 'scripts cannot read it');
  });

  it('shows the albums as a grid of covers, with the folder art', async () => {
    await page.locator('.album-card').nth(1).waitFor();
    const names = await page.$$eval('.album-card .album-name', (els) => els.map((e) => e.textContent).sort());
    assert.deepEqual(names, ['Blue Hour', 'Red Morning']);
    const red = page.locator('.album-card', { hasText: 'Red Morning' });
    await red.locator('img').waitFor();
    await page.waitForFunction(() => {
      const img = [...document.querySelectorAll('.album-card')].find((a) => a.textContent.includes('Red Morning'))?.querySelector('img');
      return img && img.complete && img.naturalWidth > 0;
    });
    const pixel = await red.locator('img').evaluate((img) => {
      const c = document.createElement('canvas');
      c.width = 4;
      c.height = 4;
      const g = c.getContext('2d');
      g.drawImage(img, 0, 0, 4, 4);
      return Array.from(g.getImageData(1, 1, 1, 1).data);
    });
    assert.ok(pixel[0] > 200 && pixel[1] < 60 && pixel[2] < 60, `the red folder cover, got ${pixel}`);
    // Sorted by name through the API.
    await page.selectOption('#album-sort', 'alphabeticalByName');
    await page.waitForFunction(() => location.hash === '#albums/alphabeticalByName');
    await page.waitForFunction(() => document.querySelector('.album-card .album-name')?.textContent === 'Blue Hour');
    await screenshot(page, 'albums-01-grid');
    assert.deepEqual(await accessibilityProblems(page), [], 'the album grid');
  });

  it('opens an album with its tracks in track order and plays it through the queue', async () => {
    await page.click('.album-card:has-text("Blue Hour")');
    await page.locator('.album-title').waitFor();
    assert.equal(await page.locator('.album-title').innerText(), 'Blue Hour');
    const titles = await page.$$eval('.track-row .track-title', (els) => els.map((e) => e.textContent));
    assert.deepEqual(titles, ['One', 'Two', 'Three']);
    await page.click('button[data-action="play-all"]');
    await page.waitForFunction(() => document.getElementById('audio').currentTime > 0.3);
    assert.equal(await nowPlaying(page), 'One');
    assert.equal(await page.locator('#queue-count').innerText(), '3');
    await screenshot(page, 'albums-02-album-page');
    assert.deepEqual(await accessibilityProblems(page), [], 'the album page');
    await page.click('#next-button');
    await page.waitForFunction(() => document.getElementById('np-title').textContent === 'Two');
    await page.waitForFunction(() => document.getElementById('audio').currentTime > 0.3);
    const state = await audioState(page);
    assert.equal(state.error, null);
    assert.equal(state.playerError, null);
  });

  it('reorders the queue, and a reload keeps it', async () => {
    await page.click('#queue-button');
    await page.locator('#queue-panel').waitFor({ state: 'visible' });
    assert.deepEqual(await queueTitles(page), ['One', 'Two', 'Three']);
    await page.click('#queue-list button[aria-label="Move Three up"]');
    assert.deepEqual(await queueTitles(page), ['One', 'Three', 'Two']);
    // Two is still the current track, now last: next from it ends the queue, previous is Three.
    // (A first "previous" past 3 s into a track goes back to its start.)
    const isThree = () => page.waitForFunction(() => document.getElementById('np-title').textContent === 'Three', null, { timeout: 3000 }).then(() => true, () => false);
    await page.click('#prev-button');
    if (!(await isThree())) await page.click('#prev-button');
    await page.waitForFunction(() => document.getElementById('np-title').textContent === 'Three');
    await screenshot(page, 'albums-03-queue');
    assert.deepEqual(await accessibilityProblems(page), [], 'the page with its queue open');
    await page.reload();
    await page.waitForFunction(() => document.documentElement.dataset.ready === 'true');
    await page.click('#queue-button');
    assert.deepEqual(await queueTitles(page), ['One', 'Three', 'Two']);
    const current = await page.$eval('#queue-list .queue-item.is-current .queue-title', (e) => e.textContent);
    assert.equal(current, 'Three');
    // Play resumes the queue where it was.
    await page.click('#play-button');
    await page.waitForFunction(() => document.getElementById('np-title').textContent === 'Three');
    await page.waitForFunction(() => document.getElementById('audio').currentTime > 0.3);
  });

  it('stars a track and rates the album, and the Subsonic apps of the user see both', async () => {
    await page.evaluate(() => {
      location.hash = '#albums/newest';
    });
    await page.click('.album-card:has-text("Blue Hour")');
    await page.locator('.track-row').first().waitFor();
    await page.click('button[aria-label="Star Two"]');
    await page.locator('button[aria-label="Unstar Two"][aria-pressed="true"]').waitFor();
    await page.selectOption('.album-rating', '4');
    await page.waitForFunction(() => !document.querySelector('.album-rating').disabled);
    const albumId = decodeURIComponent(await page.evaluate(() => location.hash.split('/')[1]));
    assert.equal((await subsonic(server.url, 'getAlbum', { id: albumId })).album.userRating, 4, 'the apps see the rating');
    const { starred2 } = await subsonic(server.url, 'getStarred2');
    assert.deepEqual((starred2.song || []).map((s) => s.title), ['Two']);
    const { nowPlaying: playing } = await subsonic(server.url, 'getNowPlaying');
    assert.ok((playing.entry || []).some((e) => e.username === USER), 'the page reported what plays');
  });

  it('saves the queue as a playlist that the apps see, and plays it from the page', async () => {
    await page.click('#queue-button');
    await page.fill('#queue-save-name', 'Evening');
    await page.click('#queue-save button[type="submit"]');
    await page.locator('#toast', { hasText: 'Saved “Evening”' }).waitFor();
    const { playlists } = await subsonic(server.url, 'getPlaylists');
    const evening = playlists.playlist.find((p) => p.name === 'Evening');
    assert.ok(evening, JSON.stringify(playlists));
    assert.equal(evening.songCount, 3);
    await page.keyboard.press('Escape');
    await page.click('#views a[data-view="playlists"]');
    await page.click('.playlist-list a:has-text("Evening")');
    await page.locator('.track-row').nth(2).waitFor();
    assert.deepEqual(await page.$$eval('.track-row .track-title', (els) => els.map((e) => e.textContent)), ['One', 'Three', 'Two']);
    // Edited in the page, seen by the apps: a track removed, a new name, an album added.
    await page.click('button[aria-label="Remove Three from the playlist"]');
    await page.waitForFunction(() => document.querySelectorAll('.track-row').length === 2);
    await page.fill('#playlist-name', 'Late evening');
    await page.click('.playlist-rename button');
    await page.locator('#toast', { hasText: 'Renamed' }).waitFor();
    let apps = (await subsonic(server.url, 'getPlaylists')).playlists.playlist.find((p) => p.id === evening.id);
    assert.equal(apps.name, 'Late evening');
    assert.equal(apps.songCount, 2);
    await page.click('#views a[data-view="albums"]');
    await page.click('.album-card:has-text("Red Morning")');
    await page.locator('.add-to-playlist option:has-text("Late evening")').waitFor({ state: 'attached' });
    await page.selectOption('.add-to-playlist', { label: 'Late evening' });
    await page.locator('#toast', { hasText: 'Added 2 tracks' }).waitFor();
    const { playlist } = await subsonic(server.url, 'getPlaylist', { id: evening.id });
    assert.deepEqual(playlist.entry.map((e) => e.title), ['One', 'Two', 'Dawn', 'Noon']);
    await page.click('#views a[data-view="playlists"]');
    await page.click('.playlist-list a:has-text("Starred tracks")');
    await page.locator('.track-row').first().waitFor();
    assert.deepEqual(await page.$$eval('.track-row .track-title', (els) => els.map((e) => e.textContent)), ['Two']);
  });

  it('finds artists, albums and tracks in one search, and albums by genre', async () => {
    await page.fill('#browse-search', 'crimson');
    await page.press('#browse-search', 'Enter');
    await page.locator('.artist-list a:has-text("Crimson")').waitFor();
    assert.equal(await page.locator('.album-card:has-text("Red Morning")').count(), 1);
    await page.click('.artist-list a:has-text("Crimson")');
    await page.locator('.album-card:has-text("Red Morning")').waitFor();
    // Genres: both albums are tagged Ambient.
    await page.click('#views a[data-view="genres"]');
    await page.click('.genre-list a:has-text("Ambient")');
    await page.waitForFunction(() => document.querySelectorAll('.album-card').length === 2);
  });

  it('has a dark theme that follows the system, as readable as the light one', async () => {
    await page.evaluate(() => {
      location.hash = '#albums/alphabeticalByName';
    });
    await page.locator('.album-card').nth(1).waitFor();
    await page.emulateMedia({ colorScheme: 'dark' });
    const background = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    assert.notEqual(background, 'rgb(245, 246, 248)', 'the dark background');
    await screenshot(page, 'albums-04-grid-dark');
    assert.deepEqual(await accessibilityProblems(page), [], 'the album grid, dark');
    await page.click('.album-card:has-text("Blue Hour")');
    await page.locator('.track-row').first().waitFor();
    await screenshot(page, 'albums-05-album-page-dark');
    assert.deepEqual(await accessibilityProblems(page), [], 'the album page, dark');
    await page.click('#queue-button');
    await page.locator('#queue-panel').waitFor({ state: 'visible' });
    await screenshot(page, 'albums-06-queue-dark');
    assert.deepEqual(await accessibilityProblems(page), [], 'the queue, dark');
    await page.click('#queue-close');
    await page.emulateMedia({ colorScheme: 'light' });
  });

  it('lets a listener listen, and an admin add, edit and delete (the queue follows)', async () => {
    await page.evaluate(() => {
      location.hash = '#tracks';
    });
    await page.locator('#track-rows tr[data-id]').first().waitFor();
    assert.equal(await page.locator('#add-music').isVisible(), false, 'no upload for a listener');
    assert.equal(await page.locator('#upload-section').isVisible(), false);
    assert.equal(await page.locator('#track-rows button[data-action="delete"]').first().isVisible(), false);
    assert.equal(await page.locator('#track-rows button[data-action="play"]').first().isVisible(), true);
    await page.click('#user-button'); // signs out
    await page.waitForFunction(() => document.documentElement.dataset.user === '');
    await page.click('#user-button');
    await page.fill('#signin-name', 'root');
    await page.fill('#signin-password', PASSWORD);
    await page.click('#signin-submit');
    await page.waitForFunction(() => document.documentElement.dataset.user === 'root');
    assert.equal(await page.locator('#add-music').isVisible(), true);
    assert.equal(await page.locator('#track-rows button[data-action="delete"]').first().isVisible(), true);
    // The admin deletes a track that is in the queue: the queue lets it go.
    page.once('dialog', (d) => d.accept());
    await page.click('#track-rows tr:has-text("Three") button[data-action="delete"]');
    await page.locator('#toast', { hasText: 'Deleted' }).waitFor();
    await page.click('#queue-button');
    assert.deepEqual(await queueTitles(page), ['One', 'Two']);
    await page.keyboard.press('Escape');
  });

  it('raised no error in the page but the refused sign-in', () => {
    const unexpected = page.problems.filter((p) => !/status of 401/.test(p));
    assert.deepEqual(unexpected, []);
    assert.equal(page.problems.length - unexpected.length, 1, 'one refused sign-in');
  });
});
