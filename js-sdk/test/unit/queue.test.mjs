// Queue bounds: a full queue drops the oldest events and reports how many in the next batch; batches held
// for sending are bounded too, so a hanging or dead endpoint cannot grow memory.
import test from 'node:test';
import assert from 'node:assert/strict';
import { browser, started } from './harness.mjs';

// events a request carried, and events it reported lost (its `dropped` counts, all reasons)
const carried = (r) => r.body.events.length;
const lost = (r) => Object.values(r.body.dropped || {}).reduce((a, x) => a + x, 0);
const sum = (rs, f) => rs.reduce((n, r) => n + f(r), 0);

test('a full queue drops the oldest events and reports the count as "dropped" by reason', async () => {
  const b = started({}, { batchSize: 1000, maxQueue: 5 });
  for (let i = 0; i < 8; i++) b.rum.track('e' + i);
  b.rum.flush();
  await b.settle();
  assert.equal(b.requests.length, 1);
  assert.deepEqual(b.requests[0].body.events.map((e) => e.name), ['e3', 'e4', 'e5', 'e6', 'e7']);
  assert.deepEqual(b.requests[0].body.dropped, { queue: 3 });
  b.rum.track('next');
  b.rum.flush();
  await b.settle();
  assert.equal(b.requests[1].body.dropped, undefined, 'the count is reported once');
});

test('with a hanging endpoint memory stays bounded and every event is either delivered or counted', async () => {
  let release;
  const hang = new Promise((r) => (release = r));
  const b = started({ respond: (_r, n) => (n === 1 ? hang.then(() => ({ status: 202 })) : { status: 202 }) }, { batchSize: 10, maxQueue: 30, maxBatches: 4 });
  const total = 2000;
  for (let i = 0; i < total; i++) b.rum.track('e' + i);
  await b.advance(0); // sent in the next idle time
  assert.equal(b.requests.length, 1, 'one request in flight');
  release();
  await b.advance(60_000);
  const delivered = sum(b.requests, carried);
  const dropped = sum(b.requests, lost);
  assert.ok(delivered <= 30 + 4 * 10, `held at most maxQueue + maxBatches*batchSize events, delivered ${delivered}`);
  b.rum.track('last');
  b.rum.flush();
  await b.advance(10_000);
  const delivered2 = sum(b.requests, carried);
  const dropped2 = sum(b.requests, lost);
  // a full queue hands its batches on to the outbox, whose bound drops the oldest batches: counted as such
  const reasons = new Set(b.requests.flatMap((r) => Object.keys(r.body.dropped || {})));
  assert.deepEqual([...reasons], ['outbox']);
  assert.ok(dropped >= 0);
  assert.equal(delivered2 + dropped2, total + 1, 'nothing vanishes uncounted');
  // the newest events survive, the oldest were dropped
  assert.equal(b.requests.at(-1).body.events.at(-1).name, 'last');
  assert.equal(b.requests[0].body.events[0].name, 'e0');
});

test('a dead endpoint gives up and holds no more than the bounds', async () => {
  const b = started({ respond: () => Promise.reject(new TypeError('Failed to fetch')) }, { maxRetries: 2, maxQueue: 20, maxBatches: 2 });
  for (let i = 0; i < 500; i++) b.rum.track('e' + i);
  await b.advance(3_600_000);
  // each batch is attempted 3 times; most batches are dropped before they are ever tried
  const tried = new Set(b.requests.map((r) => r.body.batch_id));
  assert.ok(tried.size <= 500 / 10, `batches tried: ${tried.size}`);
  assert.ok(b.requests.length <= tried.size * 3);
});

// An option that is not a number ("1k" in a data attribute, undefined spread in from code) made its bound NaN,
// and no comparison with NaN is true: the queue never dropped and a failed batch was retried without a pause.
test('a bound that is not a number is its default, so the queue and the outbox stay bounded', async () => {
  let release;
  const hang = new Promise((r) => (release = r));
  const b = browser({
    respond: (_r, n) => (n === 1 ? hang.then(() => ({ status: 202 })) : { status: 202 }),
    currentScript: { dataset: { endpoint: 'https://rum.example.com/v1/events', maxQueue: '1k', maxBatches: 'ten', batchSize: '' } },
  });
  b.load();
  const total = 2000;
  for (let i = 0; i < total; i++) b.rum.track('e' + i);
  await b.advance(0);
  assert.equal(b.requests.length, 1);
  release();
  await b.advance(60_000);
  const delivered = sum(b.requests, carried);
  // the defaults: maxQueue 100, 10 batches of 50 ("" is 0, cut as batches of 1)
  assert.ok(delivered <= 100 + 10 * 50, `delivered ${b.requests.map(carried)}`);
  assert.equal(delivered + sum(b.requests, lost), total, 'every event delivered or counted');
});

test('options given as undefined or garbage from code are their defaults; lists may be comma-separated strings', async () => {
  const b = started({ respond: () => ({ status: 503 }) }, { maxQueue: undefined, maxBatches: NaN, retryBase: 'soon', maxRetries: -1, traceOrigins: 'https://api.example.com,https://x.example.com', allowParams: undefined });
  b.rum.track('a');
  b.rum.flush();
  await b.advance(0);
  assert.equal(b.requests.length, 1);
  // retryBase 1000 with jitter: the retry waits 500-1000 ms (NaN was no wait at all)
  await b.advance(400);
  assert.equal(b.requests.length, 1, 'no retry before the default backoff');
  await b.advance(700);
  assert.equal(b.requests.length, 2);
  // a list as a string is split at its commas, not searched as a string ("https://api.example.co" is in it)
  await b.env.fetch('https://api.example.co/v1/cart');
  await b.env.fetch('https://x.example.com/v1/cart');
  const [other, traced] = b.requests.slice(-2);
  assert.equal(new Headers(other.headers).get('traceparent'), null, 'no traceparent for an origin only a prefix of a listed one');
  assert.match(new Headers(traced.headers).get('traceparent'), /^00-/);
});
