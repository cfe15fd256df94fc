// The vendored hls.js is the pinned npm package's own file, and the page loads nothing from a CDN.

import { it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { UI_DIR } from './helpers.mjs';

const read = (p) => fs.readFileSync(path.join(UI_DIR, p));

it('static/vendor/hls.min.js is byte-identical to node_modules/hls.js/dist/hls.min.js', () => {
  const vendored = read('static/vendor/hls.min.js');
  const upstream = read('node_modules/hls.js/dist/hls.min.js');
  assert.ok(vendored.equals(upstream), 'run `npm run vendor` in ui/ after changing the hls.js version');
});

it('hls.js and playwright-core are pinned to exact versions, matching the lock file', () => {
  const pkg = JSON.parse(read('package.json'));
  const lock = JSON.parse(read('package-lock.json'));
  for (const [name, spec] of [['hls.js', pkg.dependencies['hls.js']], ['playwright-core', pkg.devDependencies['playwright-core']]]) {
    assert.match(spec, /^\d+\.\d+\.\d+$/, `${name} must be pinned exactly, not "${spec}"`);
    assert.equal(lock.packages[`node_modules/${name}`].version, spec, `${name} in package-lock.json`);
    const installed = JSON.parse(read(`node_modules/${name}/package.json`)).version;
    assert.equal(installed, spec, `installed ${name}`);
  }
  const header = read('static/vendor/hls.min.js').subarray(0, 4096).toString();
  assert.ok(!/https?:\/\/cdn/i.test(header));
});

it('the page refers to no other host', () => {
  for (const f of ['static/index.html', 'static/app.js', 'static/style.css', ...fs.readdirSync(path.join(UI_DIR, 'static/js')).map((x) => `static/js/${x}`)]) {
    const text = read(f).toString();
    const external = [...text.matchAll(/(?:src|href)\s*=\s*["'](https?:)?\/\/[^"']+/g)].map((m) => m[0]);
    assert.deepEqual(external, [], `${f} loads something from another host`);
    assert.ok(!/@import\s+url\(["']?https?:/.test(text), `${f} imports remote CSS`);
  }
});
