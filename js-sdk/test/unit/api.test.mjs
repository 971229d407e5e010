// Public API and page safety: sessions, sampling, setUser, loaded twice, and the page never sees a difference.
import test from 'node:test';
import assert from 'node:assert/strict';
import { browser, started, fakeStorage } from './harness.mjs';

test('the session id is kept in sessionStorage and renewed after 30 minutes idle', async () => {
  const storage = fakeStorage();
  const b = started({ sessionStorage: storage });
  b.rum.track('one');
  await b.advance(29 * 60_000);
  b.rum.track('two');
  await b.advance(31 * 60_000);
  b.rum.track('three');
  b.rum.flush();
  await b.settle();
  const [one, two, three] = b.delivered();
  assert.equal(one.session_id, two.session_id);
  assert.notEqual(two.session_id, three.session_id);
  assert.equal(JSON.parse(storage.getItem('vantage_rum_session')).id, three.session_id);
  // a new page in the same tab continues the session
  const c = started({ sessionStorage: storage });
  c.rum.track('next-page');
  c.rum.flush();
  await c.settle();
  assert.equal(c.delivered()[0].session_id, three.session_id);
});

test('sampleRate is decided once per session', async () => {
  const storage = fakeStorage();
  const out = started({ sessionStorage: storage, random: () => 0.7 }, { sampleRate: 0.5 });
  out.rum.track('x');
  await out.advance(10_000);
  assert.equal(out.requests.length, 0);
  // same session on the next page: still out, even though the dice would now say yes
  const again = started({ sessionStorage: storage, random: () => 0.1 }, { sampleRate: 0.5 });
  again.rum.track('x');
  await again.advance(10_000);
  assert.equal(again.requests.length, 0);
  const inside = started({ random: () => 0.3 }, { sampleRate: 0.5 });
  inside.rum.track('x');
  await inside.advance(10_000);
  assert.equal(inside.requests.length, 1);
});

test('a throwing sessionStorage (privacy mode) keeps the session in memory', async () => {
  const bad = { getItem() { throw new Error('denied'); }, setItem() { throw new Error('denied'); } };
  const b = started({ sessionStorage: bad });
  b.rum.track('a');
  b.rum.track('b');
  b.rum.flush();
  await b.settle();
  const [a, c] = b.delivered();
  assert.equal(a.session_id, c.session_id);
});

test('setUser adds an opaque user id', async () => {
  const b = started();
  b.rum.setUser('u_8f14e45f');
  b.rum.track('x');
  b.rum.setUser(null);
  b.rum.track('y');
  b.rum.flush();
  await b.settle();
  const [x, y] = b.delivered();
  assert.equal(x.user_id, 'u_8f14e45f');
  assert.equal(y.user_id, undefined);
});

test('loading the script twice keeps one instance and wraps fetch once', async () => {
  const b = started();
  const first = b.rum;
  const wrapped = b.env.fetch;
  b.load();
  assert.equal(b.rum, first);
  assert.equal(b.env.fetch, wrapped);
  await b.env.fetch('/api/x');
  b.rum.flush();
  await b.settle();
  assert.equal(b.delivered().filter((e) => e.type === 'api_call').length, 1);
});

test('the page gets the same promise, response and rejection from fetch', async () => {
  const failing = new TypeError('Failed to fetch');
  const b = browser({ respond: (r) => { if (r.url.includes('/fail')) throw failing; return { status: 418 }; } });
  b.load().init({ endpoint: '/rum/v1/events', apiKey: 'k' });
  const res = await b.env.fetch('/api/teapot');
  assert.equal(res.status, 418);
  await assert.rejects(b.env.fetch('/api/fail'), (e) => e === failing);
  b.rum.flush();
  await b.settle();
  const calls = b.delivered().filter((e) => e.type === 'api_call');
  assert.deepEqual(calls.map((e) => e.api.status), [418, 0]);
  // relative same-origin endpoint: resolved against the page, key in the query string, own requests excluded
  assert.equal(b.requests.at(-1).url, 'https://shop.example.com/rum/v1/events?api_key=k');
});

test('traceparent is added only for allow-listed origins', async () => {
  const b = started({}, { traceOrigins: ['https://api.example.com'] });
  await b.env.fetch('https://api.example.com/v1/cart', { headers: { 'X-Page': '1' } });
  await b.env.fetch('https://elsewhere.example.net/v1/cart', { headers: { 'X-Page': '1' } });
  const [traced, plain] = b.requests;
  const tp = traced.headers.get('traceparent');
  assert.match(tp, /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
  assert.equal(traced.headers.get('x-page'), '1');
  assert.deepEqual(plain.headers, { 'X-Page': '1' });
  b.rum.flush();
  await b.settle();
  const calls = b.delivered().filter((e) => e.type === 'api_call');
  assert.equal(calls[0].trace_id, tp.slice(3, 35));
  assert.equal(calls[1].trace_id, undefined);
});

test('a traced call with no headers gets them as a plain object; a traceparent the page set is kept, and its trace id taken', async () => {
  const b = started({}, { traceOrigins: ['https://api.example.com'] });
  const own = '00-' + 'a'.repeat(32) + '-' + 'b'.repeat(16) + '-01';
  await b.env.fetch('https://api.example.com/v1/cart');
  await b.env.fetch('https://api.example.com/v1/cart');
  await b.env.fetch('https://api.example.com/v1/cart', { headers: new Headers({ traceparent: own }) });
  const [one, two, mine] = b.requests;
  assert.deepEqual(Object.keys(one.headers), ['traceparent']);
  assert.match(one.headers.traceparent, /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
  assert.notEqual(one.headers.traceparent.slice(3, 35), two.headers.traceparent.slice(3, 35), 'a trace id per call');
  assert.notEqual(one.headers.traceparent.slice(36, 52), two.headers.traceparent.slice(36, 52), 'a parent id per call');
  assert.equal(new Headers(mine.headers).get('traceparent'), own);
  b.rum.flush();
  await b.settle();
  const calls = b.delivered().filter((e) => e.type === 'api_call');
  assert.deepEqual(calls.map((e) => e.trace_id), [one.headers.traceparent.slice(3, 35), two.headers.traceparent.slice(3, 35), 'a'.repeat(32)]);
});

test('nothing is sent before init and the API never throws', () => {
  const b = browser();
  const rum = b.load();
  assert.doesNotThrow(() => {
    rum.track('x');
    rum.trackError(new Error('e'));
    rum.flush();
    rum.setUser({ toString() { throw new Error('bad'); } });
    rum.init(null);
    rum.init({});
    rum.track(Symbol('s'));
  });
  assert.equal(b.requests.length, 0);
});

// Calls are recorded at their answer and made into api_call events 50 at a time (when a batch is cut), which
// cost the page much less per call (bench/README.md). What the event says must not change with it.
test('an API call is made into its event later, with the time, duration and status of its answer', async () => {
  let b, made = 0;
  const later = (status) => new Promise((res) => b.env.setTimeout(() => res({ status }), 120));
  b = started({ respond: (r) => (r.url.includes('/api/') ? later(201) : { status: 202 }) }, { beforeSend: (e) => (e.type == 'api_call' && made++, e) });
  await b.advance(1000);
  const p = b.env.fetch('/api/orders', { method: 'post' });
  await b.advance(120);
  assert.equal((await p).status, 201);
  await b.advance(3000);
  assert.equal(made, 0, 'not made into an event at the answer, nor before the flush');
  b.rum.track('after');
  await b.advance(5000);
  assert.equal(made, 1);
  // (in the batch after the event tracked since: events are in the order they were made, each with its time)
  const [after, call] = b.delivered();
  assert.equal(after.name, 'after');
  assert.equal(call.type, 'api_call');
  assert.equal(call.timestamp, 1_700_000_000_000 + 1120, 'the answer time, not the time it was made into an event');
  assert.deepEqual(call.api, { method: 'POST', endpoint: 'https://shop.example.com/api/orders', duration: 120, status: 201 });
});

test('calls answered before a back/forward route change keep their page; the hide makes the rest into events', async () => {
  const b = started({ href: 'https://shop.example.com/shop/cart' });
  await b.env.fetch('items');
  b.env.location.href = 'https://shop.example.com/account/orders';
  b.dispatch('popstate');
  await b.env.fetch('items');
  b.leave();
  const events = b.delivered().filter((e) => e.type != 'web_vital');
  assert.deepEqual(
    events.map((e) => [e.type, e.page.url, e.api ? e.api.endpoint : e.route.to]),
    [
      ['api_call', 'https://shop.example.com/shop/cart', 'https://shop.example.com/shop/items'],
      ['route_change', 'https://shop.example.com/account/orders', 'https://shop.example.com/account/orders'],
      ['api_call', 'https://shop.example.com/account/orders', 'https://shop.example.com/account/items'],
    ]
  );
  assert.equal(b.beacons.length, 1, 'the last call went in the hide beacon');
});

test('calls waiting to be made into events are bounded: past maxQueue they are made at once', async () => {
  let made = 0;
  const hang = new Promise(() => {});
  const b = started({ respond: (r) => (r.url.includes('rum.example.com') ? hang : { status: 200 }) }, {
    maxQueue: 20,
    beforeSend: (e) => (made++, e),
  });
  for (let i = 0; i < 20; i++) await b.env.fetch('/api/x');
  assert.equal(made, 0, 'no idle time has passed: 20 calls wait');
  await b.env.fetch('/api/x');
  assert.equal(made, 21, 'the 21st made them all into events, in its task');
  for (let i = 0; i < 200; i++) await b.env.fetch('/api/x');
  assert.ok(made >= 200, `made ${made}`);
});
