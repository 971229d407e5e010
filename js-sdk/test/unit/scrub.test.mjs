// Scrubbing: query strings and fragments never leave the page unless a parameter is allow-listed;
// beforeSend can edit or drop events, and a throwing hook drops the event rather than leak it.
import test from 'node:test';
import assert from 'node:assert/strict';
import { started } from './harness.mjs';

async function sent(b) {
  b.rum.flush();
  await b.settle();
  return b.delivered();
}

test('page URL and referrer lose query and fragment by default', async () => {
  const b = started();
  b.rum.track('x');
  const [e] = await sent(b);
  assert.equal(e.page.url, 'https://shop.example.com/cart/42');
  assert.equal(e.page.referrer, 'https://search.example.org/');
  assert.ok(!b.requests[0].text.includes('SECRET'));
});

test('allow-listed parameters are kept, others removed', async () => {
  const b = started({}, { allowParams: ['utm_source', 'page'] });
  b.rum.track('x');
  const [e] = await sent(b);
  assert.equal(e.page.url, 'https://shop.example.com/cart/42?utm_source=news');
});

test('api_call endpoints are scrubbed; method, status and duration recorded', async () => {
  const b = started({ respond: (r) => (r.url.startsWith('https://rum.example.com') ? { status: 202 } : { status: 201 }) });
  const res = await b.env.fetch('/api/orders/7?token=abc#x', { method: 'post' });
  assert.equal(res.status, 201);
  await b.env.fetch(new Request('https://api.example.com/v2/items?id=3'));
  await b.env.fetch(new Request('https://api.example.com/v2/items/3', { method: 'DELETE' }));
  await b.env.fetch(new URL('https://api.example.com/v3/cart?token=abc'));
  const events = (await sent(b)).filter((e) => e.type === 'api_call');
  assert.deepEqual(events.map((e) => [e.api.method, e.api.endpoint, e.api.status]), [
    ['POST', 'https://shop.example.com/api/orders/7', 201],
    ['GET', 'https://api.example.com/v2/items', 201],
    ['DELETE', 'https://api.example.com/v2/items/3', 201],
    ['GET', 'https://api.example.com/v3/cart', 201],
  ]);
  assert.equal(typeof events[0].api.duration, 'number');
  assert.ok(!b.requests.at(-1).text.includes('token'));
});

test('calls that differ only in allow-listed parameters keep them apart; in other parameters they are one URL', async () => {
  const b = started({}, { allowParams: ['page'] });
  for (const q of ['page=1&token=a', 'page=2&token=b', 'token=c&page=1', 'token=d']) await b.env.fetch('/api/list?' + q);
  const events = (await sent(b)).filter((e) => e.type === 'api_call');
  assert.deepEqual(events.map((e) => e.api.endpoint), [
    'https://shop.example.com/api/list?page=1',
    'https://shop.example.com/api/list?page=2',
    'https://shop.example.com/api/list?page=1',
    'https://shop.example.com/api/list',
  ]);
});

test('the SDK does not record its own beacons as api calls', async () => {
  const b = started();
  await b.env.fetch('https://rum.example.com/v1/events?api_key=other', { method: 'POST', body: '{}' });
  for (let i = 0; i < 10; i++) b.rum.track('t');
  await b.advance(10_000);
  assert.equal(b.delivered().filter((e) => e.type === 'api_call').length, 0);
});

test('non-http URLs keep only their scheme', async () => {
  const b = started({ href: 'https://shop.example.com/a' });
  await b.env.fetch('data:text/plain;base64,SGVsbG8=');
  const [e] = (await sent(b)).filter((x) => x.type === 'api_call');
  assert.equal(e.api.endpoint, 'data:');
});

test('route changes through the history API become route_change events with scrubbed URLs', async () => {
  const b = started();
  b.env.history.pushState({}, '', '/product/9?ref=mail#reviews');
  b.env.history.replaceState({}, '', '/product/9?ref=other'); // same scrubbed URL: no event
  b.env.location.href = 'https://shop.example.com/checkout?step=2';
  b.dispatch('popstate');
  b.rum.track('after');
  const events = await sent(b);
  const routes = events.filter((e) => e.type === 'route_change');
  assert.deepEqual(routes.map((e) => e.route), [
    { from: 'https://shop.example.com/cart/42', to: 'https://shop.example.com/product/9' },
    { from: 'https://shop.example.com/product/9', to: 'https://shop.example.com/checkout' },
  ]);
  const after = events.find((e) => e.name === 'after');
  assert.deepEqual(after.page, { url: 'https://shop.example.com/checkout', referrer: 'https://shop.example.com/product/9' });
});

test('a route change keeps the URLs already parsed; a path-relative one resolves against the new page', async () => {
  const b = started({ href: 'https://shop.example.com/shop/cart' });
  let parsed = 0;
  const U = b.env.URL;
  b.env.URL = class extends U {
    constructor(...a) {
      parsed++;
      super(...a);
    }
  };
  await b.env.fetch('/api/items');
  await b.env.fetch('items');
  b.env.history.pushState({}, '', '/account/orders');
  const before = parsed;
  await b.env.fetch('/api/items');
  await b.env.fetch('https://shop.example.com/api/items');
  b.rum.flush(); // (calls' URLs are parsed when they are made into events)
  assert.equal(parsed - before, 1, 'the absolute URL is new; the root-relative one was kept through the route change');
  await b.env.fetch('items');
  b.rum.flush();
  assert.equal(parsed - before, 2, 'the path-relative URL is parsed again against the new page');
  await b.advance(100); // (the batches flushed above go one after another)
  const calls = (await sent(b)).filter((e) => e.type === 'api_call').map((e) => e.api.endpoint);
  assert.deepEqual(calls, [
    'https://shop.example.com/api/items',
    'https://shop.example.com/shop/items',
    'https://shop.example.com/api/items',
    'https://shop.example.com/api/items',
    'https://shop.example.com/account/items',
  ]);
});

test('beforeSend can edit, drop, and a throwing hook drops the event', async () => {
  const b = started({}, {
    beforeSend(e) {
      if (e.name === 'drop') return null;
      if (e.name === 'boom') throw new Error('hook bug');
      e.page.url = e.page.url.replace(/\d+/, ':id');
      return e;
    },
  });
  ['keep', 'drop', 'boom'].forEach((n) => b.rum.track(n));
  const events = await sent(b);
  assert.deepEqual(events.map((e) => e.name), ['keep']);
  assert.equal(events[0].page.url, 'https://shop.example.com/cart/:id');
});

test('what beforeSend changes in the shared fields is sent, for each event on its own', async () => {
  // The fields events share (page, viewport, user...) are one object in the SDK: a hook that replaced one had its
  // change undone when the batch was cut, and one that edited one in place edited it for every later event.
  const b = started({}, {
    beforeSend(e) {
      if (e.name == 'anon') delete e.user_id;
      if (e.name == 'other') e.page = { url: 'https://shop.example.com/other' };
      e.page.url += '!';
      e.viewport.width = 1;
      return e;
    },
  });
  b.rum.setUser('u1');
  ['anon', 'other', 'a', 'b'].forEach((n) => b.rum.track(n));
  await sent(b);
  const events = JSON.parse(b.requests[0].text).events; // (as sent: with a hook every event is whole)
  assert.deepEqual(
    events.map((e) => [e.name, e.page.url, e.user_id, e.viewport.width]),
    [
      ['anon', 'https://shop.example.com/cart/42!', undefined, 1],
      ['other', 'https://shop.example.com/other!', 'u1', 1],
      ['a', 'https://shop.example.com/cart/42!', 'u1', 1],
      ['b', 'https://shop.example.com/cart/42!', 'u1', 1],
    ]
  );
});

test('track props keep only small primitive values', async () => {
  const b = started();
  b.rum.track('checkout', { step: 2, ok: true, note: 'n'.repeat(1000), nested: { a: 1 }, list: [1], nil: null });
  const [e] = await sent(b);
  assert.deepEqual(Object.keys(e.props).sort(), ['nil', 'note', 'ok', 'step']);
  assert.equal(e.props.note.length, 256);
});

// JSON cannot write a BigInt: one in a batch threw in every cut after it, and the SDK sent nothing more.
test('a BigInt prop is sent as a string, and the events after it are sent too', async () => {
  const b = started();
  b.rum.track('before');
  b.rum.track('order', { total: 12345678901234567890n });
  b.rum.track('after');
  const events = await sent(b);
  assert.deepEqual(events.map((e) => e.name), ['before', 'order', 'after']);
  assert.equal(events[1].props.total, '12345678901234567890');
});

test('an event beforeSend makes unwritable (a BigInt, a cycle) is dropped as a throwing hook\'s is, and the rest are sent', async () => {
  const b = started({}, {
    beforeSend(e) {
      if (e.name === 'big') e.props.total = 10n;
      if (e.name === 'cycle') e.self = e;
      return e;
    },
  });
  ['before', 'big', 'cycle', 'after'].forEach((n) => b.rum.track(n));
  const events = await sent(b);
  assert.deepEqual(events.map((e) => e.name), ['before', 'after']);
});

test('errors are deduplicated per page and capped', async () => {
  const b = started({}, { maxErrors: 3 });
  const err = new Error('same');
  for (let i = 0; i < 5; i++) b.dispatch('error', { error: err, message: 'same', filename: 'https://shop.example.com/app.js', lineno: 1, colno: 2 });
  b.dispatch('unhandledrejection', { reason: new Error('rejected') });
  b.dispatch('unhandledrejection', { reason: 'plain string' });
  b.dispatch('unhandledrejection', { reason: 'over the cap' });
  b.rum.trackError(new Error('manual'));
  let errors = (await sent(b)).filter((e) => e.type === 'error');
  assert.deepEqual(errors.map((e) => [e.error.kind, e.error.message]), [
    ['error', 'same'],
    ['unhandledrejection', 'rejected'],
    ['unhandledrejection', 'plain string'],
  ]);
  assert.equal(errors[0].error.source, 'https://shop.example.com/app.js:1:2');
  assert.match(errors[0].error.stack, /Error: same/);
  assert.equal(errors[0].page.url, 'https://shop.example.com/cart/42', 'the page is the event\'s (the ingest reads error.page only without it)');
  // a soft page view starts a new page: the cap and dedup reset
  b.env.history.pushState({}, '', '/next');
  b.dispatch('error', { error: err, message: 'same' });
  errors = (await sent(b)).filter((e) => e.type === 'error');
  assert.equal(errors.length, 4);
});

test('query strings and fragments are removed from URLs inside stacks and sources', async () => {
  const b = started();
  const err = new Error('x');
  err.stack = 'Error: what?\n    at f (https://shop.example.com/app.js?token=abc:10:5)\n    at https://shop.example.com/p.html?s=1#h:3:7\n    at g (https://cdn.example.com/lib.js:1:2)';
  b.dispatch('error', { error: err, message: 'x', filename: 'https://shop.example.com/app.js?token=abc', lineno: 10, colno: 5 });
  const [e] = (await sent(b)).filter((x) => x.type === 'error');
  assert.equal(e.error.stack, 'Error: what?\n    at f (https://shop.example.com/app.js:10:5)\n    at https://shop.example.com/p.html:3:7\n    at g (https://cdn.example.com/lib.js:1:2)');
  assert.equal(e.error.source, 'https://shop.example.com/app.js:10:5');
});
