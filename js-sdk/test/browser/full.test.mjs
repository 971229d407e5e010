// The SDK in headless Chromium against the real vantage-ingest: a page with images, fetch and XHR, a thrown
// error, a rejected promise, an SPA route change, a layout shift and a slow interaction. Asserts on what the
// ingest stored (SQLite store and stats API) and on /metrics, and compares the web vitals with Google's
// web-vitals library measuring the same page.
import test from 'node:test';
import assert from 'node:assert/strict';
import { startStack, waitFor, watchConsole, API_KEY } from './support.mjs';

const VITALS = ['CLS', 'FCP', 'INP', 'LCP', 'TTFB'];

test('full page: every collector reaches the real ingest, vitals match web-vitals', async (t) => {
  const { site, ingest, proxy, browser } = await startStack(t);

  const page = await browser.context.newPage();
  const consoleLog = watchConsole(page);
  await page.goto(`${site.url}/full.html?session=secret-abc#frag`);
  await page.waitForFunction(() => ['loaded', 'fetch 3', 'fetch 404', 'xhr 200', 'shifted'].every((s) => window.pageLog.includes(s)) && window.pageLog.filter((s) => s === 'xhr 200').length === 2);
  await page.click('#buy');
  await page.click('#next');
  await page.waitForFunction(() => window.pageLog.includes('routed'));
  await page.waitForTimeout(300);
  // Page hide: navigating away fires pagehide, then visibilitychange(hidden); both libraries report.
  await page.goto(`${site.url}/blank.html`);

  const wv = await waitFor('web-vitals reports', () => VITALS.every((n) => site.webVitals.some((m) => m.name === n)) && site.webVitals);
  // The hide sends several beacons at once; they may be stored in any order, so wait for the last events of
  // the page (the vitals reported at hide, the click just before it), not for the first beacon.
  const rows = await waitFor('web vitals and the last click stored by the ingest', () => {
    const r = ingest.events();
    const vitals = VITALS.every((n) => r.some((e) => e.event_type === 'web_vital' && e.name === n));
    return vitals && r.some((e) => e.event_type === 'user_interaction' && e.raw.interaction.target === '#next') && r;
  });
  // the raw events, with the ingest's own rating (web vitals) and browser (from the request's User-Agent)
  const events = rows.map((r) => ({ ...r.raw, rating: r.rating, browser: r.browser }));
  const of = (type) => events.filter((e) => e.type === type);

  // Every event: unique id, one session, the common fields, scrubbed page URL.
  assert.equal(new Set(events.map((e) => e.event_id)).size, events.length, 'event ids unique');
  assert.equal(new Set(events.map((e) => e.session_id)).size, 1, 'one session');
  for (const e of events) {
    assert.match(e.event_id, /^[0-9a-f-]{36}$/);
    assert.ok(Math.abs(e.timestamp - Date.now()) < 120000, 'timestamp is epoch ms');
    assert.equal(e.user_agent, undefined, 'the user agent is the request header, not repeated per event');
    assert.match(e.browser, /Chrom/);
    assert.ok(e.viewport.width > 0 && e.viewport.height > 0);
    assert.ok(!JSON.stringify(e).includes('secret'), `nothing secret leaks: ${JSON.stringify(e)}`);
    assert.ok(!e.page.url.includes('session=') && !e.page.url.includes('#'), e.page.url);
  }

  // Nothing secret on the wire either: page_load sends the navigation entry's numbers above 0 only (its `name` is the
  // page's URL as loaded, with ?session=secret-abc).
  const sent = proxy.log.filter((r) => r.method === 'POST');
  for (const r of sent) assert.ok(!r.raw.toString().includes('secret'), `nothing secret sent: ${r.raw.toString().slice(0, 300)}`);
  const timing = sent.flatMap((r) => (r.batch ? r.batch.events : [])).find((e) => e.type === 'page_load').timing;
  assert.ok(Object.values(timing).every((v) => typeof v === 'number' && v > 0) && timing.loadEventEnd > 0, JSON.stringify(timing));

  // page_load: a breakdown measured after load finished, so nothing is negative and total covers onload.
  const [load] = of('page_load');
  assert.ok(load, 'page_load stored');
  const m = load.metrics;
  for (const k of ['dns_lookup', 'tcp_connection', 'tls_negotiation', 'ttfb', 'content_download', 'dom_processing', 'dom_complete', 'onload', 'total']) {
    assert.equal(typeof m[k], 'number', k);
    assert.ok(m[k] >= 0, `${k} = ${m[k]}`);
  }
  assert.ok(m.total > 0 && m.total >= m.ttfb + m.content_download, JSON.stringify(m));
  assert.equal(load.page.url, `${site.url}/full.html`);

  // Web vitals: same values and ratings as web-vitals on the same page, INP with the slowest target. The route
  // change ends the page's first view, which reports its vitals under its own URL (nothing shifts after it).
  for (const name of VITALS) {
    const ours = of('web_vital').filter((e) => e.name === name && e.page.url === `${site.url}/full.html`);
    assert.equal(ours.length, 1, `${name} reported once`);
    const theirs = wv.filter((x) => x.name === name).at(-1);
    const tol = name === 'CLS' ? 1e-4 : 0.5;
    assert.ok(Math.abs(ours[0].value - theirs.value) <= tol, `${name}: ours ${ours[0].value}, web-vitals ${theirs.value}`);
    assert.equal(ours[0].rating, theirs.rating, `${name} rating`);
  }
  const vital = (n) => of('web_vital').find((e) => e.name === n && e.page.url === `${site.url}/full.html`);
  assert.ok(vital('INP').value >= 250, 'INP covers the 250 ms handler');
  assert.equal(vital('INP').target, wv.find((x) => x.name === 'INP').target);
  assert.equal(vital('INP').target, '#buy');
  assert.equal(vital('LCP').target, wv.find((x) => x.name === 'LCP').target);
  assert.ok(vital('CLS').value > 0, 'the late banner shifted the layout');

  // Resources: both images, query removed; the SDK's own requests are not resources.
  const res = of('resource_load').map((e) => e.resource);
  for (const img of ['a', 'b']) {
    const r = res.find((x) => x.name === `${site.url}/img/${img}.png`);
    assert.ok(r, `image ${img} in ${JSON.stringify(res.map((x) => x.name))}`);
    assert.equal(r.type, 'img');
    assert.ok(r.duration >= 0 && r.size >= 0);
  }
  assert.ok(!res.some((x) => x.name.startsWith(proxy.url)));

  // API calls: fetch and XHR, scrubbed URLs, statuses; the SDK's beacons excluded.
  const calls = of('api_call').map((e) => [e.api.method, e.api.endpoint, e.api.status]);
  assert.deepEqual(calls.sort(), [
    ['DELETE', `${site.url}/api/missing`, 404],
    ['GET', `${site.url}/api/items`, 200],
    ['POST', `${site.url}/api/echo`, 200],
    ['POST', `${site.url}/api/echo`, 200],
  ]);
  assert.ok(of('api_call').every((e) => e.api.duration >= 0));

  // Errors: the thrown error and the rejected promise, with message, stack and source.
  const errors = of('error').map((e) => e.error);
  const thrown = errors.find((e) => e.message.includes('boom from the test page'));
  assert.ok(thrown, JSON.stringify(errors));
  assert.equal(thrown.kind, 'error');
  assert.match(thrown.source, /full\.html:\d+:\d+$/);
  assert.match(thrown.stack, /boom from the test page/);
  const rejected = errors.find((e) => e.message === 'rejected from the test page');
  assert.ok(rejected && rejected.kind === 'unhandledrejection', JSON.stringify(errors));

  // SPA route change with a soft page view; the allow-listed parameter survives, the others do not.
  const [route] = of('route_change');
  assert.deepEqual(route.route, { from: `${site.url}/full.html`, to: `${site.url}/app/orders/123?tab=items` });
  // Clicks on [data-rum] elements, the custom event, the user id, the long task of the slow handler.
  const clicks = of('user_interaction').map((e) => e.interaction);
  assert.ok(clicks.some((c) => c.action === 'click' && c.target === 'buy-button' && c.duration >= 200), JSON.stringify(clicks));
  assert.ok(clicks.some((c) => c.target === '#next'), JSON.stringify(clicks));
  const [custom] = of('custom');
  assert.deepEqual([custom.name, custom.props], ['checkout', { step: 2, total: 19.99 }]);
  assert.equal(custom.user_id, 'u_5f2b9c');
  assert.ok(of('long_task').some((e) => e.duration >= 200), 'long task of the slow click handler');

  // The store's own columns agree with the raw events.
  const lcpRow = rows.find((r) => r.event_type === 'web_vital' && r.name === 'LCP');
  assert.equal(lcpRow.value, vital('LCP').value);
  assert.equal(lcpRow.rating, wv.filter((x) => x.name === 'LCP').at(-1).rating);

  // Transport: every batch was a text/plain POST with the key in the query string (no preflight).
  const posts = await waitFor('answers to all batches', () => proxy.log.every((r) => r.status) && proxy.log.filter((r) => r.method === 'POST'));
  assert.ok(posts.length >= 2);
  assert.ok(posts.some((p) => p.batch.batch_id), 'batches sent by fetch carry their id');
  assert.equal(proxy.log.filter((r) => r.method === 'OPTIONS').length, 0, 'no CORS preflight');
  for (const p of posts) {
    assert.match(p.headers['content-type'], /^text\/plain/);
    assert.ok(p.url.startsWith(`/v1/events?api_key=${API_KEY}`), p.url);
    assert.equal(p.status, 202, p.response);
    // a batch sent by fetch has an id for its retries; several batches joined in the hide beacon (no answer,
    // so no retry) have none
    if (p.batch.batch_id !== undefined) assert.match(p.batch.batch_id, /^[0-9a-f-]{36}$/);
    // the ingest accepted every event as sent: nothing rejected, no field dropped as impossible
    const answer = JSON.parse(p.response);
    assert.equal(answer.accepted, p.batch.events.length, p.response);
    assert.deepEqual(answer.rejected, [], p.response);
    assert.ok(!answer.warnings || !answer.warnings.length, p.response);
  }

  // /metrics: counted per type for this site, vitals observed into their histograms.
  const metrics = await ingest.metrics();
  for (const type of ['page_load', 'web_vital', 'api_call', 'error', 'route_change', 'resource_load']) {
    assert.match(metrics, new RegExp(`rum_events_total\\{[^}]*event_type="${type}"[^}]*\\} [1-9]`), `rum_events_total for ${type}`);
  }
  assert.match(metrics, /rum_lcp_seconds_count\{[^}]*site="shop"[^}]*\} 1/);
  assert.match(metrics, /rum_inp_seconds_count\{[^}]*site="shop"[^}]*\} 1/);
  assert.match(metrics, /rum_cls_count\{[^}]*site="shop"[^}]*\} 1/);
  assert.match(metrics, /rum_errors_total\{[^}]*site="shop"[^}]*\} [1-9]/);

  // Stats API answers from the same store.
  const vitalsStats = JSON.stringify(await ingest.stats('vitals'));
  assert.match(vitalsStats, /LCP|lcp/);
  const errorStats = JSON.stringify(await ingest.stats('errors'));
  assert.match(errorStats, /full\.html/);
  const apiStats = JSON.stringify(await ingest.stats('api'));
  assert.match(apiStats, /api\/items/);
  const pageStats = JSON.stringify(await ingest.stats('pages'));
  assert.match(pageStats, /full\.html/);

  // The page's own console shows its own error and rejection, nothing from the SDK.
  const foreign = consoleLog.filter((l) => !/boom from the test page|rejected from the test page|404 \(Not Found\) @ .*\/api\/missing$/.test(l));
  assert.deepEqual(foreign, []);
});
