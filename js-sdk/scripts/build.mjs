// build.mjs: minify src/rum-sdk.js into dist/rum-sdk.min.js (or the path given as the first argument).
import { build } from 'esbuild';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const outfile = process.argv[2] ? path.resolve(process.argv[2]) : path.join(root, 'dist', 'rum-sdk.min.js');

await build({
  entryPoints: [path.join(root, 'src', 'rum-sdk.js')],
  outfile,
  bundle: false,
  minify: true,
  // es2019: optional catch binding (Chrome 66, Firefox 58, Safari 11.1), which keeps the build under 5 KiB
  target: ['es2019'],
  legalComments: 'inline',
  logLevel: 'warning',
});
