// Retry: network errors, 408, 429, 500, 502, 503 and 504 are retried with exponential backoff and jitter,
// honouring Retry-After; other answers are final and not counted as dropped (the server counts its refusals);
// a batch is given up after maxRetries and counted as dropped.
import test from 'node:test';
import assert from 'node:assert/strict';
import { started } from './harness.mjs';

const gaps = (reqs) => reqs.slice(1).map((r, i) => r.at - reqs[i].at);

test('503, network error and 429 are retried with doubling delays and the same batch', async () => {
  const fates = [{ status: 503 }, 'neterr', { status: 429 }, { status: 202 }];
  const b = started({ respond: (_r, n) => { const f = fates[n - 1]; if (f === 'neterr') throw new TypeError('Failed to fetch'); return f; } });
  for (let i = 0; i < 10; i++) b.rum.track('e' + i);
  await b.advance(60_000);
  assert.equal(b.requests.length, 4);
  // random() = 0.5: half the step fixed plus a quarter = 0.75 of 1 s, 2 s, 4 s
  assert.deepEqual(gaps(b.requests), [750, 1500, 3000]);
  const ids = b.requests.map((r) => r.body.batch_id);
  assert.equal(new Set(ids).size, 1, 'retries resend the same batch id');
  assert.deepEqual(b.requests[3].body.events.map((e) => e.event_id), b.requests[0].body.events.map((e) => e.event_id));
});

test('jitter spreads the delay between half and the whole step', async () => {
  for (const [rand, want] of [[0, 500], [0.999999, 1000]]) {
    const b = started({ random: () => rand, respond: (_r, n) => (n === 1 ? { status: 503 } : { status: 202 }) });
    b.rum.track('x');
    b.rum.flush();
    await b.advance(10_000);
    assert.equal(b.requests.length, 2);
    assert.ok(Math.abs(gaps(b.requests)[0] - want) < 1, `rand ${rand}: ${gaps(b.requests)[0]}`);
  }
});

test('Retry-After (seconds or HTTP date) is a lower bound on the delay, capped', async () => {
  const b = started({ respond: (_r, n) => (n === 1 ? { status: 503, headers: { 'Retry-After': '12' } } : n === 2 ? { status: 429, headers: { 'retry-after': new Date(1_700_000_000_000 + 12_000 + 30_000).toUTCString() } } : { status: 202 }) });
  b.rum.track('x');
  b.rum.flush();
  await b.advance(120_000);
  assert.equal(b.requests.length, 3);
  const [g1, g2] = gaps(b.requests);
  assert.equal(g1, 12_000);
  assert.ok(g2 >= 29_000 && g2 <= 30_000, `date-based Retry-After honoured: ${g2}`);

  const c = started({ respond: (_r, n) => (n === 1 ? { status: 503, headers: { 'Retry-After': '86400' } } : { status: 202 }) }, { retryAfterMax: 60_000 });
  c.rum.track('x');
  c.rum.flush();
  await c.advance(59_999);
  assert.equal(c.requests.length, 1);
  await c.advance(1);
  assert.equal(c.requests.length, 2, 'an absurd Retry-After is capped');
});

test('backoff steps are capped by retryMax', async () => {
  const b = started({ respond: () => ({ status: 503 }) }, { maxRetries: 8, retryMax: 5000 });
  b.rum.track('x');
  b.rum.flush();
  await b.advance(600_000);
  assert.equal(b.requests.length, 9);
  assert.deepEqual(gaps(b.requests), [750, 1500, 3000, 3750, 3750, 3750, 3750, 3750]);
});

test('a failing or restarting server or proxy (500, 502, 503, 504) and 408 are retried, honouring Retry-After', async () => {
  for (const status of [408, 500, 502, 503, 504]) {
    const b = started({ respond: (_r, n) => (n <= 2 ? { status, headers: { 'Retry-After': '3' } } : { status: 202 }) });
    b.rum.track('x');
    b.rum.flush();
    await b.advance(60_000);
    assert.equal(b.requests.length, 3, `${status}: two refusals, then delivered`);
    assert.deepEqual(gaps(b.requests), [3000, 3000], `${status}: Retry-After is the lower bound`);
    assert.equal(new Set(b.requests.map((r) => r.body.batch_id)).size, 1, `${status}: the same batch`);
    b.rum.track('next');
    b.rum.flush();
    await b.settle();
    assert.equal(b.requests[3].body.dropped, undefined, `${status}: nothing was dropped`);
  }
});

test('an outage that alternates 503, 502 and 500 loses nothing while retries last', async () => {
  const fates = [503, 502, 500, 503, 502, 500];
  const b = started({ respond: (_r, n) => ({ status: fates[n - 1] || 202 }) });
  for (let i = 0; i < 10; i++) b.rum.track('e' + i);
  await b.advance(120_000);
  assert.equal(b.requests.length, 7, 'six refusals (maxRetries), then delivered');
  assert.deepEqual(b.requests[6].body.events.map((e) => e.name), [...Array(10).keys()].map((i) => 'e' + i));
  assert.equal(b.requests[6].body.dropped, undefined);
});

test('other answers are final: no retry, not counted as dropped, next batch goes on', async () => {
  for (const status of [400, 401, 403, 404, 413, 415, 422, 501]) {
    const b = started({ respond: (_r, n) => (n === 1 ? { status } : { status: 202 }) }, { batchSize: 1 });
    b.rum.track('bad');
    b.rum.track('good');
    await b.advance(60_000);
    assert.deepEqual(b.requests.map((r) => r.body.events[0].name), ['bad', 'good'], `${status}`);
    b.rum.track('later');
    await b.advance(0);
    assert.equal(b.requests[2].body.dropped, undefined, `${status}: a refusal is the server's to count`);
  }
});

test('a refused batch passes on the count of events dropped before it', async () => {
  const b = started({ respond: (_r, n) => (n === 1 ? { status: 400 } : { status: 202 }) }, { maxQueue: 2, batchSize: 5, flushInterval: 1000 });
  ['a', 'b', 'c'].forEach((n) => b.rum.track(n)); // 'a' dropped by the queue bound
  await b.advance(1000);
  assert.deepEqual(b.requests[0].body.dropped, { queue: 1 });
  b.rum.track('d');
  await b.advance(1000);
  assert.deepEqual(b.requests[1].body.dropped, { queue: 1 }, 'the count was not lost with the refused batch');
});

test('a count no batch carries goes in the hide beacon: alone, or with the batches it joins', async () => {
  // A refused batch's count waits for the next batch; a page left with nothing more to send sent it never.
  const b = started({ respond: (_r, n) => (n === 1 ? { status: 400 } : { status: 202 }) }, { maxQueue: 2, batchSize: 5, flushInterval: 1000 });
  ['a', 'b', 'c'].forEach((n) => b.rum.track(n)); // 'a' dropped by the queue bound
  await b.advance(1000);
  b.hide();
  assert.equal(b.beacons.length, 1);
  assert.deepEqual(b.beacons[0].body, { events: [], dropped: { queue: 1 } }, 'alone, in a body with no events');
  b.env.document.visibilityState = 'visible';
  b.rum.track('d');
  await b.advance(1000);
  assert.deepEqual(b.requests.at(-1).body.events.map((e) => e.name), ['d']);
  assert.equal(b.requests.at(-1).body.dropped, undefined, 'sent once: the beacon was accepted');

  // batches cut before the refusal, waiting at the hide: the count joins them (and they lose their batch id)
  let answer;
  const hang = new Promise(() => {});
  const j = started({ respond: (_r, n) => (n === 1 ? new Promise((r) => (answer = r)) : n === 2 ? { status: 400 } : hang) }, { maxQueue: 2, batchSize: 3, flushInterval: 1000 });
  j.rum.track('a');
  await j.advance(1000); // a in flight, not answered yet
  ['b', 'c', 'd'].forEach((n) => j.rum.track(n));
  await j.advance(1000); // b dropped by the queue bound: the batch of c and d carries the count
  j.rum.track('e');
  await j.advance(1000);
  j.rum.track('f');
  await j.advance(1000);
  answer({ status: 202 });
  await j.advance(0);
  await j.advance(0); // c and d refused (400), their count waiting; e in flight for ever; f waiting
  assert.equal(j.requests.length, 3);
  j.hide();
  assert.equal(j.beacons.length, 1);
  assert.deepEqual(j.beacons[0].body.events.map((e) => e.name), ['f']);
  assert.deepEqual(j.beacons[0].body.dropped, { queue: 1 });
  assert.equal(j.beacons[0].body.batch_id, undefined);
});

test('after maxRetries the batch is given up, memory is freed and the loss is reported in the next batch', async () => {
  let down = true;
  const b = started({ respond: () => (down ? Promise.reject(new TypeError('Failed to fetch')) : { status: 202 }) }, { maxRetries: 3 });
  for (let i = 0; i < 10; i++) b.rum.track('lost' + i);
  await b.advance(100_000);
  assert.equal(b.requests.length, 4, 'first attempt + 3 retries');
  down = false;
  b.rum.track('after');
  b.rum.flush();
  await b.settle();
  assert.equal(b.requests.length, 4, 'quiet while the endpoint is considered down');
  await b.advance(300_000);
  assert.equal(b.requests.length, 5, 'sending resumes after the pause');
  assert.deepEqual(b.requests[4].body.dropped, { retry: 10 });
  assert.deepEqual(b.requests[4].body.events.map((e) => e.name), ['after']);
});

test('while the head batch waits for a retry, later batches wait behind it (order kept)', async () => {
  const b = started({ respond: (_r, n) => (n <= 2 ? { status: 503 } : { status: 202 }) }, { batchSize: 2 });
  ['a', 'b', 'c', 'd', 'e', 'f'].forEach((n) => b.rum.track(n));
  await b.advance(60_000);
  const names = b.requests.map((r) => r.body.events.map((e) => e.name).join(''));
  assert.deepEqual(names, ['ab', 'ab', 'ab', 'cd', 'ef']);
});

test('after giving up, page hide sends no beacon to the dead endpoint; the number of failed requests is bounded', async () => {
  const b = started({ respond: () => Promise.reject(new TypeError('Failed to fetch')) }, { maxRetries: 2 });
  for (let i = 0; i < 35; i++) b.rum.track('e' + i);
  await b.advance(100_000);
  assert.equal(b.requests.length, 3);
  b.leave();
  await b.settle();
  assert.equal(b.beacons.length, 0);
  assert.equal(b.requests.length, 3);
});
