// batch-cost.mjs: where the SDK's cost per API call goes, and what its start costs the page in wall time, timed
// inside the page with cross-origin-isolated clocks (5 us steps; 100 us without isolation) (issue #21).
//
//   node bench/sdk-main-thread/batch-cost.mjs [--rounds 15] [--sdk FILE] [--calls 50]
//
// flush: the page makes 50 (--calls) fetch + json() calls through the SDK's wrapper (batchSize raised, so that no batch is cut
//   before), then VantageRUM.flush() is timed: the calls made into events, the batch cut and serialized, its POST
//   started. Ten flushes a page, their median. Once with the browser's fetch, once with a stub the SDK takes for
//   it (answers 202 at once, no request): the difference is what starting the POST costs. The POST's answer is
//   handled in a later task, in neither, as is a second batch's POST (one request is in flight at a time).
// start: the SDK inline in the page's head, its evaluation and start timed around it (wall time), beside
//   web-vitals with its five on* calls, on a tab's first page and on the next page in the same tab. Wall time
//   counts the main thread's waits for the browser process (the first sessionStorage access in a page is a
//   synchronous call to it), which run.mjs's thread CPU time does not.
// Each job in a fresh browser context, the jobs of a round in shuffled order; medians over the rounds.
import http from 'node:http';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SDK, WEB_VITALS, launchChromium, listen, sinkServer, opt, median } from './common.mjs';

const ROUNDS = +opt('--rounds', 15), CALLS = +opt('--calls', 50);
const sdkFile = path.resolve(opt('--sdk', path.join(SDK, 'dist', 'rum-sdk.min.js')));
const sdkCode = fs.readFileSync(sdkFile, 'utf8');
const wvCode = fs.readFileSync(WEB_VITALS, 'utf8');
const ISOLATED = { 'cross-origin-opener-policy': 'same-origin', 'cross-origin-embedder-policy': 'require-corp' };

const sink = sinkServer();
const SINK = (await listen(sink)) + '/v1/events';

const mark = (k) => `<script>(window.marks ||= {})[${JSON.stringify(k)}] = performance.now()</script>`;
// The SDK's POST answered by a stub: installed before the SDK, which keeps it as the browser's fetch.
const STUB = `<script>window.fetch = ((f) => function (u, init) {
  return String(u).startsWith(${JSON.stringify(SINK)}) ? Promise.resolve(new Response('{}', { status: 202 })) : f.apply(this, arguments);
})(fetch);</script>`;
const PAGES = {
  'flush, with its POST': () => `<script src="/rum-sdk.js" data-endpoint="${SINK}" data-api-key="k" data-batch-size="1000" data-flush-interval="600000" defer></script>`,
  'flush, POST stubbed': () => STUB + PAGES['flush, with its POST'](),
  'start: nothing': () => mark('a') + mark('b'),
  'start: rum-sdk.js': () => `${mark('a')}<script data-endpoint="${SINK}" data-api-key="k">${sdkCode}</script>${mark('b')}`,
  'start: web-vitals': () =>
    `${mark('a')}<script>${wvCode}</script><script>(function () { var q = new Set(), add = function (m) { q.add(m); };
      webVitals.onLCP(add); webVitals.onCLS(add); webVitals.onINP(add); webVitals.onFCP(add); webVitals.onTTFB(add); })();</script>${mark('b')}`,
};
const site = http.createServer((req, res) => {
  const u = new URL(req.url, 'http://x');
  if (u.pathname === '/rum-sdk.js') {
    res.writeHead(200, { 'content-type': 'text/javascript', ...ISOLATED });
    return res.end(sdkCode);
  }
  if (u.pathname.startsWith('/api/')) {
    res.writeHead(200, { 'content-type': 'application/json', ...ISOLATED });
    return res.end(JSON.stringify({ id: 1, name: 'Item 1', price: 9.99, tags: ['a', 'b'] }));
  }
  const page = PAGES[u.searchParams.get('p')];
  res.writeHead(page ? 200 : 404, { 'content-type': 'text/html; charset=utf-8', ...ISOLATED });
  res.end(`<!doctype html><html><head><meta charset="utf-8">${page ? page() : ''}</head><body><h1>A page</h1><p>Some text.</p></body></html>`);
});
const ORIGIN = await listen(site);

// In the page: ten rounds of CALLS calls and a timed flush; the median flush in microseconds.
const FLUSHES = `(async () => {
  if (!crossOriginIsolated) throw new Error('not isolated: the clock steps 100 us');
  const times = [];
  for (let r = 0; r < 10; r++) {
    await Promise.all(Array.from({ length: ${CALLS} }, (_, i) => fetch('/api/item/' + (i % 5) + '?n=' + i).then((x) => x.json())));
    await new Promise((ok) => setTimeout(ok, 20));
    const t = performance.now();
    VantageRUM.flush();
    times.push((performance.now() - t) * 1000);
    await new Promise((ok) => setTimeout(ok, 50));
  }
  return times.sort((a, b) => a - b)[5];
})()`;

const browser = await launchChromium();
const version = browser.version(), res = {};
try {
  for (let round = 0; round < ROUNDS; round++) {
    for (const p of Object.keys(PAGES).sort(() => Math.random() - 0.5)) {
      const ctx = await browser.newContext();
      const page = await ctx.newPage();
      await page.goto(`${ORIGIN}/?p=${encodeURIComponent(p)}`);
      if (p.startsWith('flush')) {
        await new Promise((r) => setTimeout(r, 300));
        (res[p] ||= []).push(await page.evaluate(FLUSHES));
      } else {
        // the tab's first page, then the next page in the same tab
        const took = () => page.evaluate('(marks.b - marks.a) * 1000');
        (res[`${p}, first page`] ||= []).push(await took());
        await page.goto(`${ORIGIN}/?p=${encodeURIComponent(p)}&next=1`);
        (res[`${p}, next page`] ||= []).push(await took());
      }
      await ctx.close();
    }
    process.stdout.write(`  round ${round + 1}/${ROUNDS} done\r`);
  }
} finally {
  await browser.close();
  sink.close();
  site.close();
}

const us = (k) => median(res[k]);
console.log(`\nbatch-cost: Chromium ${version}, SDK ${path.relative(process.cwd(), sdkFile)}; ${ROUNDS} rounds, ${os.cpus().length} CPUs, load ${os.loadavg()[0].toFixed(1)}; medians, wall time`);
const real = us('flush, with its POST'), stub = us('flush, POST stubbed');
console.log(`flush of ${CALLS} recorded fetch calls (events, batches, JSON, POSTs started)`);
console.log(`  with the POSTs         ${real.toFixed(0).padStart(6)} us  (${(real / CALLS).toFixed(1)} us per call)`);
console.log(`  the POSTs stubbed      ${stub.toFixed(0).padStart(6)} us  (${(stub / CALLS).toFixed(1)} us per call)`);
console.log(`  starting the POSTs     ${(real - stub).toFixed(0).padStart(6)} us  (${((real - stub) / CALLS).toFixed(1)} us per call)`);
console.log(`evaluation and start, inline in the head (less the empty pair of marks)`);
for (const when of ['first page', 'next page']) {
  const bare = us(`start: nothing, ${when}`);
  for (const v of ['rum-sdk.js', 'web-vitals']) console.log(`  ${`${v}, ${when}`.padEnd(22)} ${(us(`start: ${v}, ${when}`) - bare).toFixed(0).padStart(6)} us`);
}
