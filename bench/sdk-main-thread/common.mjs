// common.mjs: what the SDK's main-thread benchmarks share: js-sdk's devDependencies (installed when missing),
// Debian's Chromium launched with the project's flags through playwright-core, command-line options, medians.
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

export const HERE = path.dirname(fileURLToPath(import.meta.url));
export const SDK = path.resolve(HERE, '../../js-sdk');
if (!fs.existsSync(path.join(SDK, 'node_modules', 'playwright-core'))) execFileSync('npm', ['ci'], { cwd: SDK, stdio: 'inherit' });
const { chromium } = createRequire(path.join(SDK, 'package.json'))('playwright-core');

export const launchChromium = () =>
  chromium.launch({
    executablePath: process.env.CHROMIUM_BIN || '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });

export const args = process.argv.slice(2);
// `--name value` from the command line, or the default
export const opt = (k, d) => (args.includes(k) ? args[args.indexOf(k) + 1] : d);

export const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b), m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
