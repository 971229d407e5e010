// gzip option in a real browser: CompressionStream output with Content-Encoding: gzip (one CORS preflight,
// answered by the ingest) is inflated and stored by the real ingest.
import test from 'node:test';
import assert from 'node:assert/strict';
import zlib from 'node:zlib';
import { startStack, waitFor, sleep, watchConsole } from './support.mjs';

test('gzip batches: preflight once, compressed body accepted by the ingest', async (t) => {
  const { site, ingest, proxy, browser } = await startStack(t);

  const page = await browser.context.newPage();
  await page.goto(`${site.url}/gzip.html`);
  await page.evaluate(() => {
    for (let i = 0; i < 10; i++) VantageRUM.track('zipped_' + i, { i, pad: 'x'.repeat(200) });
  });
  const rows = await waitFor('compressed events stored', () => {
    const r = ingest.events().filter((e) => e.event_type === 'custom');
    return r.length === 10 && r;
  });
  assert.deepEqual(rows.map((r) => r.raw.name).sort(), [...Array(10).keys()].map((i) => 'zipped_' + i).sort());
  const posts = await waitFor('answers', () => proxy.log.every((r) => r.status) && proxy.log.filter((r) => r.method === 'POST'));
  assert.ok(posts.length >= 2);
  for (const p of posts) {
    assert.equal(p.headers['content-encoding'], 'gzip');
    assert.equal(p.status, 202, p.response);
    const batch = JSON.parse(zlib.gunzipSync(p.raw).toString());
    assert.ok(batch.events.length > 0 && p.raw.length < JSON.stringify(batch).length, 'smaller than the JSON');
  }
  const preflights = proxy.log.filter((r) => r.method === 'OPTIONS');
  assert.equal(preflights.length, 1, 'one preflight, then cached (Access-Control-Max-Age)');
  assert.ok(preflights[0].status >= 200 && preflights[0].status < 300, `preflight answered ${preflights[0].status}`);
});

// A batch is out of the hide task's reach while CompressionStream works on it (its request leaves when that
// ends): a page unloaded meanwhile ran no more of it, and the batch was lost. The hide here comes in the very
// task that started the compression, so it is always in that window.
test('a batch being compressed when the page is hidden goes in the beacon, and is not sent again', async (t) => {
  const { site, ingest, proxy, browser } = await startStack(t);
  const page = await browser.context.newPage();
  const log = watchConsole(page);
  await page.goto(`${site.url}/gzip.html`);
  await page.evaluate(() => {
    for (let i = 0; i < 5; i++) VantageRUM.track('zipping_' + i);
    VantageRUM.flush(); // cut, and its compression started
    Object.defineProperty(document, 'visibilityState', { value: 'hidden', configurable: true });
    document.dispatchEvent(new Event('visibilitychange', { bubbles: true }));
  });
  const rows = await waitFor('events stored', () => {
    const r = ingest.events().filter((e) => e.event_type === 'custom');
    return r.length === 5 && r;
  });
  assert.deepEqual(rows.map((r) => r.raw.name).sort(), [0, 1, 2, 3, 4].map((i) => 'zipping_' + i));
  await sleep(1000); // the compression has long ended
  const posts = proxy.log.filter((r) => r.method === 'POST');
  assert.equal(posts.length, 1, 'one request, the beacon');
  assert.equal(posts[0].headers['content-encoding'], undefined, 'the beacon is plain JSON');
  const sent = JSON.parse(posts[0].raw.toString()).events.filter((e) => e.type === 'custom');
  assert.deepEqual(sent.map((e) => e.name), [0, 1, 2, 3, 4].map((i) => 'zipping_' + i));
  assert.deepEqual(log, []);
});
