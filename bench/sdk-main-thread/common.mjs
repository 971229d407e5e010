// common.mjs: what the SDK's main-thread benchmarks share: js-sdk's devDependencies (installed when missing),
// Debian's Chromium launched with the project's flags (driven by cdp.mjs, or by playwright-core with
// --playwright), command-line options, medians.
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { launchPipe } from './cdp.mjs';

export const HERE = path.dirname(fileURLToPath(import.meta.url));
export const SDK = path.resolve(HERE, '../../js-sdk');
if (!fs.existsSync(path.join(SDK, 'node_modules', 'playwright-core'))) execFileSync('npm', ['ci'], { cwd: SDK, stdio: 'inherit' });
const { chromium } = createRequire(path.join(SDK, 'package.json'))('playwright-core');

export const args = process.argv.slice(2);

const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const BIN = process.env.CHROMIUM_BIN || '/usr/bin/chromium';
// --playwright: pages opened by playwright-core, whose Network domain instruments every request the page makes
// (how the benchmarks measured before session 17; see cdp.mjs)
export const PLAYWRIGHT = args.includes('--playwright');
export const launchChromium = () => (PLAYWRIGHT ? chromium.launch({ executablePath: BIN, headless: true, args: FLAGS }) : launchPipe(BIN, FLAGS));
// `--name value` from the command line, or the default
export const opt = (k, d) => (args.includes(k) ? args[args.indexOf(k) + 1] : d);

// Starts a node http server on a free port of 127.0.0.1; its origin.
export const listen = (server) => new Promise((r) => server.listen(0, '127.0.0.1', () => r(`http://127.0.0.1:${server.address().port}`)));
// A collector on another origin, as in production: reads each request whole and answers 202 (204 to a CORS
// preflight), allowing the page's origin. run.mjs has its own, which also counts what it receives.
export const sinkServer = () =>
  http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(req.method === 'OPTIONS' ? 204 : 202, { 'access-control-allow-origin': req.headers.origin || '*', 'access-control-allow-headers': 'content-type' });
      res.end();
    });
  });
// Google's web-vitals as a page loads it (the IIFE bundle from js-sdk's devDependencies).
export const WEB_VITALS = path.join(SDK, 'node_modules', 'web-vitals', 'dist', 'web-vitals.iife.js');

export const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b), m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
