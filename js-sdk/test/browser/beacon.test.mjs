// Page hide: events held by the SDK (long flush interval) reach the real ingest through navigator.sendBeacon
// when the page is hidden, with one beacon sent in visibilitychange; a second copy of the script changes nothing.
import test from 'node:test';
import fs from 'node:fs';
import path from 'node:path';
import assert from 'node:assert/strict';
import { startStack, SDK_ROOT, waitFor, watchConsole, sleep, API_KEY } from './support.mjs';

test('events held at page hide reach the ingest via sendBeacon; loading the SDK twice is harmless', async (t) => {
  const { site, ingest, proxy, browser } = await startStack(t);

  const page = await browser.context.newPage();
  const log = watchConsole(page);
  await page.goto(`${site.url}/beacon.html`);
  assert.equal(await page.evaluate(() => window.rumStarted), true);
  await page.waitForFunction(() => window.fetched);
  await sleep(500);
  assert.equal(proxy.log.length, 0, 'nothing sent before the page is hidden');

  await page.goto(`${site.url}/blank.html`);
  const rows = await waitFor('held events stored', () => {
    const r = ingest.events();
    return r.filter((e) => e.event_type === 'custom').length === 5 && r;
  });
  const posts = proxy.log.filter((r) => r.method === 'POST');
  assert.equal(posts.length, 1, 'one beacon carried the whole queue');
  // Leaving the page fired pagehide while it was visible, then visibilitychange: the SDK beaconed once, in the
  // second (a pass in each would have tried a second beacon, over the keepalive budget the first one took).
  assert.deepEqual(JSON.parse(await page.evaluate(() => sessionStorage.getItem('beacons'))), ['hidden']);
  // sendBeacon's signature: a string body is sent as text/plain;charset=UTF-8 (the SDK's fetch says text/plain)
  assert.equal(posts[0].headers['content-type'], 'text/plain;charset=UTF-8');
  assert.ok(posts[0].url.startsWith(`/v1/events?api_key=${API_KEY}`));
  const names = rows.filter((e) => e.event_type === 'custom').map((e) => e.raw.name).sort();
  assert.deepEqual(names, ['held_0', 'held_1', 'held_2', 'held_3', 'held_4']);
  // loaded twice, yet every collector ran once
  assert.equal(rows.filter((e) => e.event_type === 'api_call').length, 1);
  assert.equal(rows.filter((e) => e.event_type === 'page_load').length, 1);
  assert.equal(new Set(rows.map((e) => e.event_id)).size, rows.length);
  assert.deepEqual(log, []);

  // The ingest serves the very build committed here (embedded in the binary).
  const served = await fetch(`${ingest.url}/rum-sdk.js`);
  assert.equal(served.status, 200);
  assert.match(served.headers.get('content-type'), /javascript/);
  assert.equal(await served.text(), fs.readFileSync(path.join(SDK_ROOT, 'dist', 'rum-sdk.min.js'), 'utf8'));
});

test('events too many for one beacon: leaving the page beacons the oldest that fit, not nothing', async (t) => {
  // One batch of 77,000 characters did not fit the beacon's 64 KiB; the SDK sent nothing and lost all 50.
  const { site, ingest, proxy, browser } = await startStack(t);
  const page = await browser.context.newPage();
  const log = watchConsole(page);
  await page.goto(`${site.url}/beacon.html?large`);
  await page.waitForFunction(() => window.fetched);
  await sleep(500);
  assert.equal(proxy.log.length, 0, 'nothing sent before the page is hidden');
  await page.goto(`${site.url}/blank.html`);
  const rows = await waitFor('held events stored', () => {
    const r = ingest.events().filter((e) => e.event_type === 'custom');
    return r.length >= 30 && r;
  });
  await sleep(500);
  const posts = proxy.log.filter((r) => r.method === 'POST');
  assert.equal(posts.length, 1, 'one beacon');
  const names = ingest.events().filter((e) => e.event_type === 'custom').map((e) => +e.raw.name.slice(5)).sort((a, b) => a - b);
  assert.ok(names.length >= rows.length && names.length < 50, `${names.length} events`);
  assert.deepEqual(names, [...names.keys()], 'the oldest');
  assert.deepEqual(log, []);
});

test('the count of events lost that a refused batch carried reaches the ingest in the hide beacon, with no events', async (t) => {
  // The count waited for the next batch; a page left with nothing more to send sent it never.
  const { site, ingest, proxy, browser } = await startStack(t, { fault: (e) => e.batch && e.batch.events.length && 400 });
  const page = await browser.context.newPage();
  const log = watchConsole(page);
  await page.goto(`${site.url}/beacon.html?lost`);
  const refused = await waitFor('the batch refused', () => proxy.log.find((r) => r.status === 400));
  assert.deepEqual(refused.batch.dropped, { queue: 1 });
  assert.deepEqual(refused.batch.events.map((e) => e.name), ['held_1', 'held_2']);
  await page.goto(`${site.url}/blank.html`);
  const m = await waitFor('the count counted', async () => {
    const text = await ingest.metrics();
    return text.includes('rum_sdk_dropped_events_total{site="shop",reason="queue"} 1') && text;
  });
  assert.ok(m);
  const posts = proxy.log.filter((r) => r.method === 'POST');
  assert.equal(posts.length, 2);
  assert.deepEqual(posts[1].batch, { events: [], dropped: { queue: 1 } });
  assert.equal(posts[1].status, 202);
  // (the refused POST is the one line Chromium logs)
  assert.deepEqual(log.filter((l) => !/status of 400/.test(l)), []);
});
