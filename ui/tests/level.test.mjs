// Level playback and the waveform: the loudness measured at upload brings a loud and a quiet
// track to one level (bounded by their true peaks), and the seek bar draws the waveform.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { startServer, launchBrowser, openPage, apiAdd, FFMPEG, CHROMIUM, CHROMIUM_ARGS } from './helpers.mjs';

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'legato-ui-level-'));
process.on('exit', () => fs.rmSync(work, { recursive: true, force: true }));

// ffmpeg's sine source is at 1/8 of full scale: `volume` 7 is near full scale, 0.4 is −26 dB.
function sine(name, volume) {
  const file = path.join(work, name);
  execFileSync(FFMPEG, [
    '-hide_banner', '-loglevel', 'error', '-y',
    '-f', 'lavfi', '-i', 'sine=frequency=440:duration=12', '-af', `volume=${volume}`,
    '-c:a', 'libmp3lame', '-b:a', '128k', file,
  ]);
  return file;
}

/** The track once the analysis has measured it. */
async function measured(base, id) {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const track = await (await fetch(`${base}/function/crud/${id}`)).json();
    if (Number.isFinite(track.loudness) && Array.isArray(track.peaks)) return track;
    assert.ok(Date.now() < deadline, `not measured: ${JSON.stringify(track).slice(0, 300)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** What js/level.js applies: the target minus the loudness, with the peak kept under −1 dBTP. */
const expectedGain = (t) => Math.min(-16 - t.loudness, -1 - t.true_peak);

describe('level playback and the waveform', { timeout: 180_000 }, () => {
  let server;
  let browser;
  let page;
  let loud;
  let quiet;

  before(async () => {
    server = await startServer({ args: ['--ladder', 'none', '--aac-ladder', 'none', '--lossless', 'false'] });
    loud = await measured(server.url, (await apiAdd(server.url, sine('loud.mp3', 7), { name: 'Loud' })).id);
    quiet = await measured(server.url, (await apiAdd(server.url, sine('quiet.mp3', 0.4), { name: 'Quiet' })).id);
    browser = await launchBrowser();
    page = await openPage(browser, `${server.url}/#tracks`);
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  async function play(title) {
    await page.click(`#track-rows tr:has-text("${title}") button[data-action="play"]`);
    await page.waitForFunction((t) => document.getElementById('np-title').textContent === t, title);
    await page.waitForFunction(() => document.getElementById('audio').dataset.gainDb !== undefined && document.getElementById('seek-wave').dataset.peaks > 0);
    await page.waitForFunction(() => document.getElementById('audio').currentTime > 0.3);
    return Number(await page.$eval('#audio', (a) => a.dataset.gainDb));
  }

  it('brings a loud and a quiet track to one level, by their measured loudness', async () => {
    assert.ok(quiet.loudness < loud.loudness - 20, `${quiet.loudness} vs ${loud.loudness}`);
    const down = await play('Loud');
    assert.ok(Math.abs(down - expectedGain(loud)) < 0.02, `${down} for ${JSON.stringify({ l: loud.loudness, p: loud.true_peak })}`);
    assert.ok(down < 0, `the loud track is turned down: ${down} for ${JSON.stringify({ l: loud.loudness, p: loud.true_peak })}`);
    const up = await play('Quiet');
    assert.ok(Math.abs(up - expectedGain(quiet)) < 0.02, `${up} for ${JSON.stringify({ l: quiet.loudness, p: quiet.true_peak })}`);
    assert.ok(up > 0, 'the quiet track is turned up');
    console.log(`level: loud ${loud.loudness} LUFS / ${loud.true_peak} dBTP → ${down} dB; quiet ${quiet.loudness} LUFS / ${quiet.true_peak} dBTP → ${up} dB`);
    // Both now sound at the target, neither clips.
    assert.ok(Math.abs(loud.loudness + down - (quiet.loudness + up)) < 0.1);
    assert.ok(quiet.true_peak + up <= -1 + 0.01 && loud.true_peak + down <= -1 + 0.01);
    const state = await page.$eval('#audio', (a) => ({ error: a.error && a.error.code, paused: a.paused }));
    assert.deepEqual(state, { error: null, paused: false });
  });

  it('in album mode gives every track of an album the album\'s gain', async () => {
    // Both files are untagged: one album ("[Unknown Album]") in Subsonic's grouping.
    const energy = (t) => t.duration * 10 ** (t.loudness / 10);
    const album = {
      loudness: 10 * Math.log10((energy(loud) + energy(quiet)) / (loud.duration + quiet.duration)),
      true_peak: Math.max(loud.true_peak, quiet.true_peak),
    };
    const expected = expectedGain(album);
    await page.click('#settings-button');
    await page.selectOption('#level-mode', 'album');
    await page.click('#settings-cancel');
    // Quiet plays on, now at the album's gain.
    await page.waitForFunction((g) => Math.abs(Number(document.getElementById('audio').dataset.gainDb) - g) < 0.02, expected);
    const loudInAlbum = await play('Loud');
    assert.ok(Math.abs(loudInAlbum - expected) < 0.02, `${loudInAlbum} vs ${expected}`);
    console.log(`level, album mode: album ${album.loudness.toFixed(2)} LUFS → ${expected.toFixed(2)} dB for both tracks`);
  });

  it('plays as recorded when level playback is off', async () => {
    await page.click('#settings-button');
    await page.selectOption('#level-mode', 'off');
    await page.click('#settings-cancel');
    await page.waitForFunction(() => document.getElementById('audio').dataset.gainDb === '0.00');
    assert.equal(await page.evaluate(() => localStorage.getItem('legato.level')), 'off');
  });

  it('plays through Web Audio in a browser with the default autoplay policy, after a click', async () => {
    // The other tests' browser may play without a gesture; this one behaves as people's do:
    // the gain is applied after the click, and the audio must not be silenced by a
    // suspended AudioContext.
    const strict = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS.filter((a) => !a.startsWith('--autoplay-policy')),
    });
    try {
      const other = await openPage(strict, `${server.url}/#tracks`);
      await other.click('#track-rows tr:has-text("Quiet") button[data-action="play"]');
      await other.waitForFunction(() => Number(document.getElementById('audio').dataset.gainDb) > 0);
      const t0 = await other.$eval('#audio', (a) => a.currentTime);
      await other.waitForFunction((t) => document.getElementById('audio').currentTime > t + 0.5, t0);
      assert.equal(await other.$eval('#audio', (a) => a.dataset.levelPending), undefined);
      assert.deepEqual(other.problems, []);
    } finally {
      await strict.close();
    }
  });

  it('draws the waveform in the seek bar', async () => {
    assert.equal(await page.$eval('#seek-wave', (c) => c.dataset.peaks), String(quiet.peaks.length));
    const inked = await page.$eval('#seek-wave', (c) => {
      const data = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      let n = 0;
      for (let i = 3; i < data.length; i += 4) if (data[i] > 0) n += 1;
      return n / (c.width * c.height);
    });
    assert.ok(inked > 0.2, `the waveform covers ${(inked * 100).toFixed(1)} % of the bar`);
    assert.deepEqual(page.problems, []);
  });
});
