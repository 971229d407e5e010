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
