// Copies hls.js's minified build into ui/static/vendor/ so the Rust binary can embed it.
// Run after `npm ci` whenever the pinned hls.js version changes: `npm run vendor`.
import { copyFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ui = join(dirname(fileURLToPath(import.meta.url)), '..');
const src = join(ui, 'node_modules', 'hls.js', 'dist', 'hls.min.js');
const dst = join(ui, 'static', 'vendor', 'hls.min.js');
mkdirSync(dirname(dst), { recursive: true });
copyFileSync(src, dst);
console.log(`copied ${src} -> ${dst}`);
