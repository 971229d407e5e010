// The SDK's main-thread design rules (issue #21), pinned by counting what it does in Chromium (page-side
// instrumentation in lean.html), not by timing it: the session is written to sessionStorage when it starts and
// at page hide, never per event, and the next page continues it; no Blob is built to measure or send a body;
// per event nothing is serialized and no URL parsed however full the queue is; batches leave in idle callbacks.
import test from 'node:test';
import assert from 'node:assert/strict';
import { startStack, waitFor } from './support.mjs';

test('session: written at start and at page hide, never per event; the next page in the tab continues it', async (t) => {
  const { site, ingest, browser } = await startStack(t);
  const page = await browser.context.newPage();
  await page.goto(`${site.url}/lean.html?batch=10`);
  assert.equal(await page.evaluate(() => counts.setItem), 1, 'the new session is stored once');
  const perEvents = await page.evaluate(() => during(() => { for (let i = 0; i < 100; i++) VantageRUM.track('e' + i); }));
  assert.equal(perEvents.setItem, 0, '100 events, no sessionStorage write');
  const atHide = await page.evaluate(() => during(() => hidePage()));
  assert.equal(atHide.setItem, 1, 'stored at page hide');
  const first = await page.evaluate(() => JSON.parse(sessionStorage.getItem('vantage_rum_session')));

  // The next page in the same tab: same session, and it writes nothing until its own hide.
  await page.goto(`${site.url}/lean.html?batch=1`);
  assert.equal(await page.evaluate(() => counts.setItem), 0, 'a continued session is not written at start');
  await page.evaluate(() => VantageRUM.track('next-page'));
  const rows = await waitFor('both pages stored', () => {
    const r = ingest.events().filter((e) => e.event_type === 'custom');
    return r.some((e) => e.raw.name === 'next-page') && r.some((e) => e.raw.name === 'e99') && r;
  });
  assert.deepEqual([...new Set(rows.map((e) => e.raw.session_id))], [first.id]);
});

test('no Blob per request (plain and gzip), every batch sent from an idle callback, none inside track()', async (t) => {
  const { site, ingest, browser } = await startStack(t);
  for (const gzip of ['0', '1']) {
    const page = await browser.context.newPage();
    await page.goto(`${site.url}/lean.html?batch=5&gzip=${gzip}`);
    const sync = await page.evaluate(() => during(() => { for (let i = 0; i < 23; i++) VantageRUM.track('g' + i); }));
    assert.equal(sync.posts, 0, 'no request inside the page\'s task');
    assert.ok(sync.idle >= 1, 'an idle callback was asked for');
    const c = await waitFor('four batches sent', () => page.evaluate(() => counts.posts.length >= 4 && counts));
    assert.equal(c.blob, 0, `gzip=${gzip}: no Blob constructed`);
    // (with gzip the request leaves when CompressionStream is done, after the idle callback that started it)
    if (gzip === '0') assert.ok(c.posts.every((p) => p.inIdle), `every request from an idle callback: ${JSON.stringify(c.posts)}`);
    await page.close();
  }
  await waitFor('40 events stored', () => ingest.events().filter((e) => e.event_type === 'custom').length >= 40);
});

test('per event, nothing grows with the queue: no serialization, no URL parsing, same work at 1 and 95 queued', async (t) => {
  const { site, browser } = await startStack(t);
  const page = await browser.context.newPage();
  await page.goto(`${site.url}/lean.html`); // batchSize 1000, flush interval 10 min: everything stays queued
  await page.evaluate(() => fetch('/api/items').then((r) => r.json()));
  const work = await page.evaluate(async () => {
    const one = (i) => during(() => VantageRUM.track('q' + i, { i }));
    const out = { early: one(0) };
    for (let i = 1; i < 95; i++) VantageRUM.track('q' + i, { i });
    out.late = one(95);
    // an API call: its URL is parsed when the call is made into an event (at a flush here) and first seen, not
    // again, and (no parameter allow-listed) neither when only its query changes from call to call
    let before = counts.url;
    for (let i = 0; i < 20; i++) await fetch('/api/items?token=t').then((r) => r.json());
    VantageRUM.flush();
    out.urlsFor20Calls = counts.url - before;
    before = counts.url;
    for (let i = 0; i < 20; i++) await fetch('/api/items?token=u' + i + '#' + i).then((r) => r.json());
    VantageRUM.flush();
    out.urlsFor20Queries = counts.url - before;
    // a route change parses the new page's URL, and keeps the API's (a root-relative URL means the same on every route)
    before = counts.url;
    history.pushState({}, '', '/lean/next');
    for (let i = 0; i < 20; i++) await fetch('/api/items?token=t').then((r) => r.json());
    VantageRUM.flush();
    out.urlsAfterRoute = counts.url - before;
    return out;
  });
  assert.deepEqual(work.early, work.late, `the 96th event costs what the 1st did: ${JSON.stringify(work)}`);
  assert.deepEqual(work.late, { setItem: 0, blob: 0, url: 0, json: 0, idle: 0, posts: 0, beacons: 0 });
  assert.ok(work.urlsFor20Calls <= 1, `20 calls to one URL parsed it at most once: ${work.urlsFor20Calls}`);
  assert.equal(work.urlsFor20Queries, 0, `20 calls to that path with 20 queries parsed nothing more: ${work.urlsFor20Queries}`);
  assert.equal(work.urlsAfterRoute, 1, `after a route change, only the new page's URL was parsed: ${work.urlsAfterRoute}`);
});

// One XHR object polling: reopened and sent again from its own handler (`onload`, or an `onreadystatechange` set
// before the first send, at DONE), which also does 400 ms of work.
for (const [handler, title] of [
  ['onload', 'XHR: the call is recorded before the page\'s onload, which is not in its duration; an XHR reopened there keeps each request'],
  ['onreadystatechange', 'XHR reopened in its own onreadystatechange (set before send) keeps each request, the handler\'s work in no duration'],
]) {
  test(title, async (t) => {
    const { site, ingest, browser } = await startStack(t);
    const page = await browser.context.newPage();
    await page.goto(`${site.url}/lean.html?batch=1`);
    await page.evaluate(
      (handler) =>
        new Promise((resolve) => {
          const x = new XMLHttpRequest();
          const reqs = [['GET', '/api/items'], ['post', '/api/nope'], ['GET', '/api/items'], ['post', '/api/gone']];
          let i = 0;
          const next = () => {
            x.open(...reqs[i]);
            x.send();
          };
          x[handler] = () => {
            if (x.readyState != 4) return;
            const t = performance.now();
            while (performance.now() - t < 400);
            ++i < reqs.length ? next() : setTimeout(resolve, 100);
          };
          next();
        }),
      handler
    );
    const polled = () => ingest.events().filter((e) => e.event_type === 'api_call' && /\/api\/(items|nope|gone)$/.test(e.raw.api.endpoint));
    await waitFor('the polling requests stored', () => polled().length >= 4);
    await new Promise((r) => setTimeout(r, 500)); // (and nothing more)
    const got = polled().map((e) => [e.raw.api.method, e.raw.api.endpoint.replace(/^https?:\/\/[^/]+/, ''), e.raw.api.status]);
    assert.deepEqual(got, [
      ['GET', '/api/items', 200],
      ['POST', '/api/nope', 404],
      ['GET', '/api/items', 200],
      ['POST', '/api/gone', 404],
    ]);
    const slow = polled().filter((e) => e.raw.api.duration >= 300).map((e) => e.raw.api.duration);
    assert.deepEqual(slow, [], `the page's 400 ms ${handler} is in no call's duration`);
  });
}
