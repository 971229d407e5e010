// With the ingest endpoint down, the page behaves exactly as it does without the SDK: same fetch/XHR results
// in the same order, same history behaviour, and not a single extra console message.
import test from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { startStatic, launch, watchConsole, sleep } from './support.mjs';

async function deadUrl() {
  const s = http.createServer();
  await new Promise((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address();
  await new Promise((r) => s.close(r));
  return `http://127.0.0.1:${port}`;
}

test('endpoint down: the page sees identical network behaviour and a clean console', async (t) => {
  const dead = await deadUrl();
  const site = await startStatic({ DEAD: dead });
  t.after(site.close);
  const browser = await launch();
  t.after(browser.close);

  async function run(sdkTag) {
    site.vars.SDK_TAG = sdkTag;
    const page = await browser.context.newPage();
    const log = watchConsole(page);
    await page.goto(`${site.url}/down.html`);
    const results = await page.evaluate(() => window.scenario());
    // let the SDK flush, fail and retry a few times, then hide the page (beacons to the dead endpoint)
    await page.evaluate(() => {
      if (window.VantageRUM) {
        for (let i = 0; i < 25; i++) VantageRUM.track('t' + i);
        VantageRUM.trackError(new Error('handled'));
        VantageRUM.flush();
      }
    });
    await sleep(2500);
    const sdk = await page.evaluate(() => !!(window.VantageRUM && window.VantageRUM.init));
    await page.goto(`${site.url}/blank.html`);
    await sleep(300);
    await page.close();
    return { results, log, sdk };
  }

  const without = await run('');
  const withSdk = await run(
    `<script src="/rum-sdk.js" data-endpoint="${dead}/v1/events" data-api-key="k" data-retry-base="50" data-max-retries="2" data-flush-interval="100" data-batch-size="5"></script>`
  );
  assert.equal(without.sdk, false);
  assert.equal(withSdk.sdk, true);
  assert.ok(without.results.length >= 10, JSON.stringify(without.results));
  // Same outcomes (requests racing each other may finish in either order, in both runs)...
  assert.deepEqual([...withSdk.results].sort(), [...without.results].sort());
  // ...and the order the page relies on is kept: a request started earlier but answered later finishes later.
  for (const r of [without.results, withSdk.results]) {
    assert.ok(r.indexOf('fast 200 true application/json') < r.indexOf('slow 3'), JSON.stringify(r));
    assert.deepEqual(r.slice(-2), without.results.slice(-2));
  }
  // The page's own failed requests log the same lines in both runs. The SDK adds no script output at all
  // (no exception, no unhandled rejection, no CORS error); the only extra lines are Chromium's own network
  // log of the SDK's failed requests, which no script can suppress, and the SDK bounds them: after
  // maxRetries it stops sending (and sends no beacon on hide) while the endpoint is down.
  const endpointLine = (l) => l.endsWith(`@ ${dead}/v1/events?api_key=k`);
  const extra = withSdk.log.filter(endpointLine);
  assert.deepEqual(withSdk.log.filter((l) => !endpointLine(l)).sort(), [...without.log].sort());
  assert.ok(extra.length >= 1 && extra.length <= 3, `bounded by maxRetries + 1: ${JSON.stringify(extra)}`);
  for (const l of extra) assert.match(l, /^error: Failed to load resource: net::ERR_CONNECTION_REFUSED @ /);
});
