// decompose.mjs: where the SDK's cost per fetch and per XHR goes, as a ladder of builds measured in one run of
// run.mjs's paired scenarios (issue #21).
//
//   node bench/sdk-main-thread/decompose.mjs [--rounds 11] [--paired-calls 100]
//
// Each build is js-sdk/src/rum-sdk.js with one expression replaced, minified as dist is (scripts/build.mjs):
//   no-wrappers       fetch and XHR not wrapped: the rest of the SDK (observers, listeners, timers) beside the calls
//   nothing-recorded  wrapped, and the answer handled (the fetch's `then`, the XHR's listener), but nothing recorded:
//                     no events, batches or POSTs for the calls
//   no-post           everything but the POST: each batch is cut and serialized, and answered 202 at once
//   sdk               the build as it is
// The steps between them are what the wrappers, the calls' events and batches, and the POSTs cost per call. A
// replaced expression that is no longer in the source stops the run with its name: update the edit with the code.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync, spawn } from 'node:child_process';
import { HERE, SDK, args, opt } from './common.mjs';

const EDITS = {
  'no-wrappers': ['    wrapFetch();\n    wrapXhr();\n', ''],
  'nothing-recorded': ['const api = safe(', 'const api = () => 0, recorded = safe('],
  'no-post': ['const send = (body, headers) =>', "const send = () => Promise.resolve({ status: 202, ok: true, headers: { get() {} } }), sent = (body, headers) =>"],
};

const src = fs.readFileSync(path.join(SDK, 'src', 'rum-sdk.js'), 'utf8');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vantage-decompose-'));
const builds = Object.entries(EDITS).map(([name, [from, to]]) => {
  if (!src.includes(from)) throw new Error(`decompose: build ${name}: ${JSON.stringify(from)} is no longer in js-sdk/src/rum-sdk.js`);
  const file = path.join(dir, name + '.js');
  fs.writeFileSync(file + '.src', src.replace(from, to));
  execFileSync(process.execPath, [path.join(SDK, 'scripts', 'build.mjs'), file, file + '.src'], { stdio: 'inherit' });
  return `${name}=${file}`;
});

const names = ['web-vitals', 'no-wrappers', 'nothing-recorded', 'no-post', 'sdk'];
const run = spawn(
  process.execPath,
  [
    path.join(HERE, 'run.mjs'),
    ...['--only', 'paired-fetch,paired-xhr', '--variants', names.join(','), '--before', builds.join(',')],
    ...['--rounds', opt('--rounds', '11'), '--paired-calls', opt('--paired-calls', '100')],
    ...(args.includes('--paired-blocks') ? ['--paired-blocks', opt('--paired-blocks')] : []),
  ],
  { stdio: ['ignore', 'pipe', 'inherit'] }
);
let out = '';
run.stdout.on('data', (d) => {
  out += d;
  process.stdout.write(d);
});
const code = await new Promise((r) => run.on('close', r));
fs.rmSync(dir, { recursive: true, force: true });
if (code) process.exit(code);

// run.mjs's lines: "  fetch + json()    no-post          +7.1% over bare (...)"
const pct = (kind, name) => {
  const m = out.match(new RegExp(`${kind.replace(/[+()]/g, '\\$&')}\\s+${name}\\s+([-+][\\d.]+)% over bare`));
  return m ? +m[1] : NaN;
};
const f = (x) => (x >= 0 ? '+' : '') + x.toFixed(1);
console.log('\nthe ladder, points of the bare call per call (differences of the medians above)');
console.log('  ' + ''.padEnd(18) + ['the SDK, unwrapped', 'wrappers', 'events, batches', 'POSTs', 'in all'].map((h) => h.padStart(19)).join(''));
for (const kind of ['fetch + json()', 'XHR + JSON.parse']) {
  const [w, n, r, p, s] = names.map((v) => pct(kind, v));
  console.log('  ' + kind.padEnd(18) + [n - w, r - n, p - r, s - p, s - w].map((x) => f(x).padStart(19)).join(''));
}
