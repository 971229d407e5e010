// js-cost.mjs: the SDK's own work per fetch call the page makes, with the network taken out (issue #21).
//
//   node bench/sdk-main-thread/js-cost.mjs [--rounds 7] [--calls 2000] [--before OTHER_BUILD.js] [--trace] [--playwright]
//
// run.mjs measures what a call costs the page in full: the browser's own fetch is most of it and varies by a few
// points from page to page, more than a change to the SDK's JavaScript moves. Here the page's fetch is a stub that
// answers at once with one shared Response (the SDK's POSTs too), so what is left is the SDK's own work per call:
// its wrapper, the event, the batch and its JSON, its idle callbacks and timers, and the garbage they make. Each
// page makes the calls one per task (`scheduler.yield()` between them, so the SDK's idle work interleaves as in a
// real page; requestIdleCallback is a 0 ms timer, since a page that is never idle would run it only at its 2 s
// timeout), and the page's main-thread task time (CDP, thread CPU) is read around them. Three URL mixes: seven URLs
// (as the shop page's), a query that differs on every call (ids, cache busters), and the seven URLs with a
// `pushState` route change every 10 calls, against a page without the SDK (which makes the same route changes).
// --trace: the SDK with traceOrigins (the page's own origin), so every call gets a traceparent.
import http from 'node:http';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SDK, launchChromium, args, opt, median } from './common.mjs';

const ROUNDS = +opt('--rounds', 7), CALLS = +opt('--calls', 2000);
const TRACE = args.includes('--trace');
const BUILDS = { sdk: path.join(SDK, 'dist', 'rum-sdk.min.js') };
if (opt('--before')) BUILDS.before = path.resolve(opt('--before'));
// (`routed`: the seven URLs, and a route change every 10 calls, as an SPA moving between five views)
const MIXES = { seven: '(i % 7) + "?token=t" + (i % 7)', unique: '(i % 7) + "?token=t" + i', routed: '(i % 7) + "?token=t" + (i % 7)' };

const page = (build) => `<!doctype html><html><head><script>
  const answer = new Response('{}', { status: 202 });
  window.fetch = () => Promise.resolve(answer);
  window.requestIdleCallback = (f) => setTimeout(f, 0);
</script>${build ? `<script src="/${build}.js" data-endpoint="http://127.0.0.1:9/v1/events" data-api-key="bench-key"${TRACE ? ` data-trace-origins="${ORIGIN}"` : ''}></script>` : ''}
</head><body><p>js-cost</p></body></html>`;
const server = http.createServer((req, res) => {
  const u = new URL(req.url, 'http://x');
  const build = u.pathname.slice(1, -3);
  if (BUILDS[build]) return res.writeHead(200, { 'content-type': 'text/javascript' }).end(fs.readFileSync(BUILDS[build]));
  res.writeHead(200, { 'content-type': 'text/html' }).end(page(u.searchParams.get('b')));
});
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const ORIGIN = `http://127.0.0.1:${server.address().port}`;
const browser = await launchChromium();

async function job(build, mix) {
  const context = await browser.newContext();
  const p = await context.newPage();
  const cdp = await context.newCDPSession(p);
  await cdp.send('Performance.enable', { timeDomain: 'threadTicks' });
  const task = async () => (await cdp.send('Performance.getMetrics')).metrics.find((m) => m.name === 'TaskDuration').value;
  await p.goto(`${ORIGIN}/?b=${build}`);
  await new Promise((r) => setTimeout(r, 500));
  const t0 = await task();
  await p.evaluate(`(async () => {
    const tick = () => scheduler.yield();
    for (let i = 0; i < ${CALLS}; i++) {
      ${mix === 'routed' ? 'if (i % 10 == 0) history.pushState({}, "", "/view/" + ((i / 10) % 5));' : ''}
      await fetch('/api/item/' + ${MIXES[mix]}).then((r) => r.status);
      await tick();
    }
    await new Promise((r) => setTimeout(r, 50));
  })()`);
  const us = ((await task()) - t0) * 1e6 / CALLS;
  await context.close();
  return us;
}

try {
  const names = ['', ...Object.keys(BUILDS)];
  console.log(`rum-sdk JavaScript per fetch call, network stubbed: Chromium ${browser.version()}, ${CALLS} calls per page, ${ROUNDS} rounds${TRACE ? ', traceOrigins on' : ''}; ${os.cpus().length} CPUs, load ${os.loadavg()[0].toFixed(1)}`);
  const res = {};
  for (let r = 0; r < ROUNDS; r++) {
    const jobs = names.flatMap((b) => Object.keys(MIXES).map((m) => [b, m])).map((j) => [Math.random(), j]).sort((a, b) => a[0] - b[0]);
    for (const [, [b, m]] of jobs) (res[`${b}/${m}`] ||= []).push(await job(b, m));
    process.stdout.write(`  round ${r + 1}/${ROUNDS} done\r`);
  }
  console.log(`\nmain-thread task time per call, medians (the page without the SDK: ${Object.keys(MIXES).map((m) => `${m} ${median(res[`/${m}`]).toFixed(2)} us`).join(', ')})`);
  for (const b of Object.keys(BUILDS)) {
    const row = Object.keys(MIXES).map((m) => {
      const over = res[`${b}/${m}`].map((x, i) => x - res[`/${m}`][i]);
      return `${m} URLs +${median(over).toFixed(2)} us (${Math.min(...over).toFixed(2)} to ${Math.max(...over).toFixed(2)})`;
    });
    console.log(`  ${b.padEnd(8)} ${row.join('; ')}`);
  }
} finally {
  await browser.close();
  server.close();
}
