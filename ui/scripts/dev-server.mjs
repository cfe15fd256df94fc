// Development server: ui/static straight from disk, every /function/* request passed on to a
// running `legato serve`. Lets the page be changed without rebuilding the binary (which embeds
// ui/static at compile time).
//
//   node ui/scripts/dev-server.mjs --api http://127.0.0.1:8080 [--listen 127.0.0.1:5173]
//
// The tests use it when LEGATO_UI_FROM_DISK=1 (default: the page the binary itself serves).

import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const STATIC_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'static');

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
  '.map': 'application/json',
};

/** Starts the server; resolves to `{url, close()}`. */
export function startDevServer({ api, host = '127.0.0.1', port = 0, staticDir = STATIC_DIR }) {
  const target = new URL(api);
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://x');
    if (url.pathname.startsWith('/function/')) {
      let answered = false;
      const upstream = http.request(
        { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: { ...req.headers, host: target.host } },
        (up) => {
          answered = true;
          res.writeHead(up.statusCode, up.headers);
          up.pipe(res);
        },
      );
      upstream.on('error', (e) => {
        // An early answer (413 before the whole upload was read) ends the upload with EPIPE: keep the answer.
        if (answered || res.headersSent) return;
        res.writeHead(502, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify({ error: { code: 'bad-gateway', message: String(e.message) } }));
      });
      req.pipe(upstream);
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405).end();
      return;
    }
    const rel = url.pathname === '/' ? 'index.html' : decodeURIComponent(url.pathname.slice(1));
    const file = path.resolve(staticDir, rel);
    if (!file.startsWith(staticDir + path.sep) || !fs.existsSync(file) || !fs.statSync(file).isFile()) {
      res.writeHead(404, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ error: { code: 'no-route', message: url.pathname } }));
      return;
    }
    const body = fs.readFileSync(file);
    res.writeHead(200, {
      'Content-Type': TYPES[path.extname(file)] || 'application/octet-stream',
      'Content-Length': body.length,
      'Cache-Control': 'no-cache',
    });
    res.end(req.method === 'HEAD' ? undefined : body);
  });
  return new Promise((resolve, reject) => {
    server.on('error', reject);
    server.listen(port, host, () => {
      const { port: p } = server.address();
      resolve({ url: `http://${host}:${p}`, close: () => new Promise((r) => server.close(r)) });
    });
  });
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const get = (name, dflt) => (args.includes(name) ? args[args.indexOf(name) + 1] : dflt);
  const api = get('--api', 'http://127.0.0.1:8080');
  const [host, port] = get('--listen', '127.0.0.1:5173').split(':');
  const { url } = await startDevServer({ api, host, port: Number(port) });
  console.log(`ui/static from disk at ${url}/, /function/* → ${api}`);
}
