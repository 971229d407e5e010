// requests.mjs: what one request costs the page's main thread in headless Chromium (issue #21), to weigh how
// often the SDK may send: the page's own GET + json() beside the SDK's batch POST (text/plain, keepalive or not,
// a batch of 50 api_call events, 1 KB and three batches), the same POST by XHR, and sendBeacon.
//
//   node bench/sdk-main-thread/requests.mjs [--rounds 7] [--playwright]
//
// Each kind runs in a fresh browser context: 40 in a row, each after the previous one answered (a beacon has no
// answer: 5 ms apart, and `sleep5` is that pause alone), main-thread task time (CDP Performance.getMetrics on
// thread CPU time) over the 40, medians over the rounds. The collector is on another origin (CORS), as in
// production.
import http from 'node:http';
import { launchChromium, listen, sinkServer, opt, median } from './common.mjs';

const ROUNDS = +opt('--rounds', 7);
const N = 40;

const sink = sinkServer();
const site = http.createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    if (req.url.startsWith('/api')) {
      res.writeHead(200, { 'content-type': 'application/json' });
      return res.end(JSON.stringify({ id: 1, name: 'Item 1', price: 9.99, tags: ['a', 'b'] }));
    }
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end('<!doctype html><p>requests</p>');
  });
});
const SINK = (await listen(sink)) + '/v1/events';
const ORIGIN = await listen(site);

// A batch of 50 api_call events as the SDK sends it (about 17 KB).
const event = (i) => ({ type: 'api_call', session_id: '0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b', timestamp: 1764806400000 + i, viewport: { width: 1280, height: 720 }, page: { url: ORIGIN + '/shop', referrer: '' }, api: { method: 'GET', endpoint: ORIGIN + '/api/item/1', duration: 1.2, status: 200 }, event_id: '0193a1b2-c3d4-7e5f-8a9b-0c1d2e' + (100000 + i) });
const BODY = JSON.stringify({ events: Array.from({ length: 50 }, (_, i) => event(i)), batch_id: '0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b' });
const post = (body, keepalive) => `fetch(SINK, { method: 'POST', body: ${body}, headers: { 'Content-Type': 'text/plain' }, keepalive: ${keepalive}, credentials: 'omit' })`;
const KINDS = {
  'GET + json() (the page)': `fetch('/api/item/1').then((r) => r.json())`,
  'POST a batch, keepalive (the SDK)': post('BODY', true),
  'POST a batch': post('BODY', false),
  'POST 1 KB keepalive': post('BODY.slice(0, 1000)', true),
  'POST three batches': post('BODY + BODY + BODY', false),
  'XHR POST a batch': `new Promise((r) => { const x = new XMLHttpRequest(); x.open('POST', SINK); x.onloadend = r; x.send(BODY); })`,
  'sendBeacon a batch (+ 5 ms pause)': `(navigator.sendBeacon(SINK, BODY), new Promise((r) => setTimeout(r, 5)))`,
  // what the page hide pays for its one beacon, by size (web-vitals' own beacon is the small one)
  'sendBeacon 200 B (+ 5 ms pause)': `(navigator.sendBeacon(SINK, BODY.slice(0, 200)), new Promise((r) => setTimeout(r, 5)))`,
  'sendBeacon three batches (+ 5 ms)': `(navigator.sendBeacon(SINK, BODY + BODY + BODY), new Promise((r) => setTimeout(r, 5)))`,
  'sleep5 (the pause alone)': `new Promise((r) => setTimeout(r, 5))`,
};

const browser = await launchChromium();
const version = browser.version(), res = {};
try {
  for (let round = 0; round < ROUNDS; round++) {
    for (const [k, code] of Object.entries(KINDS).sort(() => Math.random() - 0.5)) {
      const ctx = await browser.newContext();
      const page = await ctx.newPage();
      const cdp = await ctx.newCDPSession(page);
      await cdp.send('Performance.enable', { timeDomain: 'threadTicks' });
      await page.goto(ORIGIN + '/');
      await page.evaluate(([s, b]) => Object.assign(window, { SINK: s, BODY: b }), [SINK, BODY]);
      await new Promise((r) => setTimeout(r, 300));
      const task = async () => (await cdp.send('Performance.getMetrics')).metrics.find((m) => m.name === 'TaskDuration').value * 1e6;
      const t0 = await task();
      await page.evaluate(`(async () => { for (let i = 0; i < ${N}; i++) await ${code}; })()`);
      await new Promise((r) => setTimeout(r, 300));
      (res[k] ||= []).push((await task()) - t0);
      await ctx.close();
    }
  }
} finally {
  await browser.close();
  sink.close();
  site.close();
}
console.log(`main-thread task time per request, Chromium ${version}, median of ${ROUNDS} rounds of ${N} (batch body ${BODY.length} bytes)`);
for (const k of Object.keys(KINDS)) console.log(`  ${k.padEnd(34)} ${(median(res[k]) / N).toFixed(0).padStart(6)} us`);
