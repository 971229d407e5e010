// gzip option in a real browser: CompressionStream output with Content-Encoding: gzip (one CORS preflight,
// answered by the ingest) is inflated and stored by the real ingest.
import test from 'node:test';
import assert from 'node:assert/strict';
import zlib from 'node:zlib';
import { startStack, waitFor } from './support.mjs';

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
