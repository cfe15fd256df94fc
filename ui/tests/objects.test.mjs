// Segments from a CDN in front of the object store: `legato serve --segments cdn` names
// segments under the CDN's base URL, a second origin; hls.js in Chromium fetches the playlists
// from the server and every segment from the CDN. The CDN here is a small Node server with
// access to the private SeaweedFS bucket (as a CDN's origin credentials give it), signing its
// requests to the bucket with AWS Signature V4. Needs the SeaweedFS that scripts/test.sh starts
// (LEGATO_TEST_BLOBS, LEGATO_TEST_BLOBS_KEYS).

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import {
  startServer, launchBrowser, openPage, playWithHlsJs, FFMPEG,
} from './helpers.mjs';

const BLOBS = process.env.LEGATO_TEST_BLOBS;
const KEYS = process.env.LEGATO_TEST_BLOBS_KEYS;
const SECONDS = 20;

const hmac = (key, text, encoding) => crypto.createHmac('sha256', key).update(text).digest(encoding);
const sha256 = (text) => crypto.createHash('sha256').update(text).digest('hex');
const rfc3986 = (s) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

/** A presigned GET of `key` in a path-style S3 endpoint (AWS Signature V4, query form). */
function presign({ endpoint, bucket, key, accessKey, secretKey, region = 'us-east-1', expires = 60 }) {
  const url = new URL(`${endpoint}/${bucket}/${key}`);
  const amzDate = new Date().toISOString().replace(/[:-]|\.\d{3}/g, '');
  const day = amzDate.slice(0, 8);
  const scope = `${day}/${region}/s3/aws4_request`;
  const params = {
    'X-Amz-Algorithm': 'AWS4-HMAC-SHA256',
    'X-Amz-Credential': `${accessKey}/${scope}`,
    'X-Amz-Date': amzDate,
    'X-Amz-Expires': String(expires),
    'X-Amz-SignedHeaders': 'host',
  };
  const query = Object.keys(params).sort().map((k) => `${rfc3986(k)}=${rfc3986(params[k])}`).join('&');
  const canonical = ['GET', url.pathname, query, `host:${url.host}`, '', 'host', 'UNSIGNED-PAYLOAD'].join('\n');
  const toSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256(canonical)].join('\n');
  let signingKey = hmac(`AWS4${secretKey}`, day);
  for (const part of [region, 's3', 'aws4_request']) signingKey = hmac(signingKey, part);
  return `${url.origin}${url.pathname}?${query}&X-Amz-Signature=${hmac(signingKey, toSign, 'hex')}`;
}

/** The stand-in CDN: GET /<key> from the bucket, with the object's headers and CORS. */
function startCdn({ endpoint, bucket, accessKey, secretKey }) {
  const served = [];
  const server = http.createServer(async (req, res) => {
    const key = decodeURIComponent(new URL(req.url, 'http://cdn').pathname.slice(1));
    const cors = { 'access-control-allow-origin': '*' };
    if (req.method === 'OPTIONS') {
      res.writeHead(204, { ...cors, 'access-control-allow-headers': '*' });
      return res.end();
    }
    try {
      const origin = await fetch(presign({ endpoint, bucket, key, accessKey, secretKey }));
      const body = Buffer.from(await origin.arrayBuffer());
      if (origin.ok) served.push(key);
      res.writeHead(origin.status, {
        ...cors,
        'content-type': origin.headers.get('content-type') || 'application/octet-stream',
        'cache-control': origin.headers.get('cache-control') || 'no-store',
        'content-length': body.length,
      });
      res.end(body);
    } catch (e) {
      res.writeHead(502, cors);
      res.end(String(e));
    }
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => resolve({
      url: `http://127.0.0.1:${server.address().port}`, served, close: () => server.close(),
    }));
  });
}

function makeMp3() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'legato-ui-cdn-'));
  const file = path.join(dir, 'tone.mp3');
  execFileSync(FFMPEG, [
    '-hide_banner', '-loglevel', 'error', '-y', '-f', 'lavfi', '-i', `sine=frequency=440:duration=${SECONDS}`,
    '-ac', '2', '-c:a', 'libmp3lame', '-b:a', '192k', file,
  ]);
  return file;
}

describe('segments from a CDN in front of the object store', { timeout: 300_000, skip: !BLOBS && 'LEGATO_TEST_BLOBS is not set (scripts/test.sh starts SeaweedFS)' }, () => {
  let server;
  let browser;
  let cdn;
  let track;

  before(async () => {
    const [head, query] = BLOBS.split('?');
    const endpoint = new URLSearchParams(query).get('endpoint');
    const bucket = head.replace('s3://', '').split('/')[0];
    const accessKey = fs.readFileSync(path.join(KEYS, 'access_key'), 'utf8').trim();
    const secretKey = fs.readFileSync(path.join(KEYS, 'secret_key'), 'utf8').trim();
    cdn = await startCdn({ endpoint, bucket, accessKey, secretKey });
    server = await startServer({
      args: [
        '--blobs', `${head}/ui-cdn-${Date.now()}?${query}`,
        '--blobs-access-key-file', path.join(KEYS, 'access_key'),
        '--blobs-secret-key-file', path.join(KEYS, 'secret_key'),
        '--segments', 'cdn', '--segment-base-url', cdn.url,
        '--ladder', '64,128', '--aac-ladder', '64',
      ],
    });
    browser = await launchBrowser();
    const res = await fetch(`${server.url}/function/crud?name=Tone&author=Tester`, {
      method: 'POST', headers: { 'Content-Type': 'audio/mpeg' }, body: fs.readFileSync(makeMp3()),
    });
    track = await res.json();
    assert.ok([201, 202].includes(res.status), JSON.stringify(track));
    const deadline = Date.now() + 120_000;
    // Playable at once; the follow-up job adds the ladder and the AAC rung.
    while (track.status !== 'ready' || track.job) {
      assert.ok(Date.now() < deadline && track.status !== 'failed', JSON.stringify(track));
      await new Promise((r) => setTimeout(r, 250));
      track = await (await fetch(`${server.url}/function/crud/${track.id}`)).json();
    }
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
    cdn?.close();
  });

  it('hls.js plays index.m3u8 and mp3.m3u8 with every segment from the CDN', async () => {
    const page = await openPage(browser, `${server.url}/#tracks`);
    await page.waitForFunction(() => typeof window.Hls === 'function');
    const fromServer = [];
    page.on('request', (r) => {
      if (r.url().startsWith(server.url) && /\.(ts|m4s|mp4)$/.test(new URL(r.url()).pathname)) fromServer.push(r.url());
    });
    for (const name of ['index.m3u8', 'mp3.m3u8']) {
      const before = cdn.served.length;
      const result = await playWithHlsJs(page, `${server.url}/function/streaming/${track.id}/${name}`);
      console.log(`time-to-first-audio-ms hls.js ${name} via the CDN: ${result.ms.toFixed(0)}`);
      assert.ok(result.played > 0.5, `${name} played only to ${result.played}`);
      assert.ok(cdn.served.length > before, `the CDN served nothing for ${name}`);
    }
    assert.deepEqual(fromServer, [], 'segments were fetched from the server, not the CDN');
    assert.ok(cdn.served.every((key) => key.includes(track.id)), cdn.served.join(' '));
    await page.context().close();
  });
});
