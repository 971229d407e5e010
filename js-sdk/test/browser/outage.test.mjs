// An outage seen from the page: for 10 s every batch gets 503 (Retry-After: 1, the ingest with its store away),
// then 502, then 500 (a proxy in front of it during a deploy), while the page keeps producing events; then the
// ingest answers again. Every event the SDK emitted arrives, each once (counted by the number the page's
// beforeSend gave it, and by event id); none is reported as dropped.
import test from 'node:test';
import assert from 'node:assert/strict';
import { startStack, waitFor, sleep } from './support.mjs';

const OUTAGE_MS = 10000;

test('503, then 502, then 500 for 10 s, then recovery: every event arrives once', async (t) => {
  let outageStart = 0;
  // Counted from the first batch the proxy sees: a third of the outage each.
  const fault = (entry) => {
    outageStart ||= entry.at;
    const into = entry.at - outageStart;
    if (into >= OUTAGE_MS) return 0;
    return into < OUTAGE_MS / 3 ? 503 : into < (2 * OUTAGE_MS) / 3 ? 502 : 500;
  };
  const { site, ingest, proxy, browser } = await startStack(t, { fault });
  // (The page batches every 3 s, so the outage fills a few batches, well within the SDK's bound of 10.)

  const page = await browser.context.newPage();
  await page.goto(`${site.url}/outage.html`);
  // Events all through the outage and a little after: 2 a second for 12 s.
  for (let i = 0; i < 24; i++) {
    await page.evaluate((i) => VantageRUM.track('during_' + i, { i }), i);
    await sleep(500);
  }
  await page.evaluate(() => VantageRUM.flush());
  const emitted = await page.evaluate(() => window.emitted);
  assert.ok(emitted.length >= 24, `the page emitted its events: ${emitted.length}`);

  // The page stays open: the SDK's own retries (honouring Retry-After) deliver everything.
  const stored = await waitFor('every emitted event stored', () => {
    const rows = ingest.events();
    const seqs = rows.map((e) => e.raw.test_seq);
    return emitted.every((n) => seqs.includes(n)) && rows;
  }, 90000);
  const seqs = stored.map((e) => e.raw.test_seq);
  assert.equal(new Set(seqs).size, seqs.length, 'no event stored twice');
  assert.equal(new Set(stored.map((e) => e.event_id)).size, stored.length, 'event ids unique');
  assert.deepEqual(seqs.sort((a, b) => a - b), emitted, 'exactly the emitted events');

  const posts = proxy.log.filter((r) => r.method === 'POST');
  const seen = new Set(posts.map((p) => p.status));
  for (const status of [503, 502, 500, 202]) assert.ok(seen.has(status), `the SDK met a ${status}: ${[...seen]}`);
  // Refused batches were retried as the same batch and accepted once; nothing was reported as dropped.
  const accepted = posts.filter((p) => p.status === 202);
  const acceptedIds = accepted.map((p) => p.batch.batch_id);
  assert.equal(new Set(acceptedIds).size, acceptedIds.length, 'no batch accepted twice');
  for (const p of posts.filter((p) => p.status >= 500)) assert.ok(acceptedIds.includes(p.batch.batch_id), 'a refused batch was retried and accepted');
  for (const p of posts) assert.equal(p.batch.dropped, undefined, `no batch reports dropped events: ${JSON.stringify(p.batch.dropped)}`);
});
