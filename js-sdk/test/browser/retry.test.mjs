// The ingest answers 503 (Retry-After: 1) to the first batches, then recovers: every event is stored exactly
// once, none is lost, and no event is delivered twice.
import test from 'node:test';
import assert from 'node:assert/strict';
import { startStack, waitFor } from './support.mjs';

test('503 then recovery: nothing lost, nothing duplicated', async (t) => {
  const { site, ingest, proxy, browser } = await startStack(t, { fail: 3 });

  const page = await browser.context.newPage();
  await page.goto(`${site.url}/retry.html`);
  await page.evaluate(() => {
    for (let i = 0; i < 25; i++) VantageRUM.track('order_' + i, { i });
  });
  // The page stays visible: the SDK's own retries (honouring Retry-After) must deliver everything.
  const custom = await waitFor('all 25 custom events stored', () => {
    const r = ingest.events().filter((e) => e.event_type === 'custom');
    return r.length >= 25 && r;
  }, 60000);
  assert.deepEqual(custom.map((e) => e.raw.name).sort(), [...Array(25).keys()].map((i) => 'order_' + i).sort());

  const posts = await waitFor('answers to all batches', () => proxy.log.every((r) => r.status) && proxy.log.filter((r) => r.method === 'POST'));
  assert.deepEqual(posts.slice(0, 3).map((p) => p.status), [503, 503, 503]);
  const ok = posts.filter((p) => p.status === 202);
  // Retries resend the same batch (same idempotency key); an accepted event is never sent again.
  const failedIds = new Set(posts.filter((p) => p.status === 503).map((p) => p.batch.batch_id));
  const okIds = ok.map((p) => p.batch.batch_id);
  for (const id of failedIds) assert.ok(okIds.includes(id), 'a refused batch was retried and accepted');
  assert.equal(new Set(okIds).size, okIds.length, 'no batch accepted twice');
  const delivered = ok.flatMap((p) => p.batch.events.map((e) => e.event_id));
  assert.equal(new Set(delivered).size, delivered.length, 'no event delivered twice');
  for (const p of ok) assert.equal(JSON.parse(p.response).accepted, p.batch.events.length, p.response);
  // The store holds exactly what was delivered.
  const stored = ingest.events().map((e) => e.event_id).sort();
  assert.deepEqual(stored, [...delivered].sort());
  // Backoff honoured Retry-After: 1 s between the refused attempts.
  const first = posts[0].at, second = posts[1].at;
  assert.ok(second - first >= 900, `retry waited for Retry-After: ${second - first} ms`);
});
