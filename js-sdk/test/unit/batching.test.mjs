// Batching: size and time triggers, request shape (text/plain, key in query, keepalive), beacon on hide.
import test from 'node:test';
import assert from 'node:assert/strict';
import vm from 'node:vm';
import { webcrypto } from 'node:crypto';
import { started, browser, SHARED } from './harness.mjs';

// Ids are UUIDv7: version 7, RFC 4122 variant, the first 48 bits are the Unix time in ms.
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const idMs = (id) => parseInt(id.replace(/-/g, '').slice(0, 12), 16);
// track() props of n values of `size` characters each (track keeps values up to 256): large events, to fill batches
const props = (n, size) => Object.fromEntries([...Array(n).keys()].map((k) => ['k' + k, 'x'.repeat(size)]));
// a beforeSend that makes the event named 'huge' one of 25,000 characters, over what any batch may hold
const inflate = (e) => (e.name == 'huge' && (e.props.blob = 'z'.repeat(25_000)), e);

test('ten events go out in the next idle time as one text/plain POST with the key in the query string', async () => {
  const b = started();
  for (let i = 0; i < 10; i++) b.rum.track('click_' + i, { n: i });
  await b.settle();
  assert.equal(b.requests.length, 0, 'not in the middle of the page\'s task');
  await b.advance(0); // the idle callback (setTimeout where there is no requestIdleCallback)
  assert.equal(b.requests.length, 1);
  const [r] = b.requests;
  assert.equal(r.url, 'https://rum.example.com/v1/events?api_key=k3y%2F%26');
  assert.equal(r.init.method, 'POST');
  // no header: the browser labels a string body text/plain;charset=UTF-8 (a simple request, no preflight)
  assert.deepEqual(r.headers, {});
  assert.equal(r.init.keepalive, true);
  assert.equal(r.init.credentials, 'omit');
  assert.match(r.body.batch_id, UUID);
  assert.equal(r.body.dropped, undefined);
  assert.deepEqual(r.body.events.map((e) => e.name), [...Array(10).keys()].map((i) => 'click_' + i));
  const e = r.body.events[3];
  assert.match(e.event_id, UUID);
  assert.match(e.session_id, UUID);
  assert.equal(e.type, 'custom');
  assert.deepEqual(e.props, { n: 3 });
  assert.equal(e.timestamp, 1_700_000_000_000);
  assert.equal(e.user_agent, undefined, 'the ingest reads the request header');
  assert.deepEqual(e.viewport, { width: 1280, height: 720 });
  assert.deepEqual(e.page, { url: 'https://shop.example.com/cart/42', referrer: 'https://search.example.org/' });
  assert.equal(new Set(r.body.events.map((x) => x.event_id)).size, 10);
  assert.equal(new Set(r.body.events.map((x) => x.session_id)).size, 1);
  assert.equal(idMs(e.event_id), e.timestamp, 'the id starts with the event time');
});

test('a partial batch waits for the flush interval, then goes out', async () => {
  const b = started();
  b.rum.track('a');
  b.rum.track('b');
  await b.advance(4999);
  assert.equal(b.requests.length, 0);
  await b.advance(1);
  assert.equal(b.requests.length, 1);
  assert.deepEqual(b.requests[0].body.events.map((e) => e.name), ['a', 'b']);
  // the timer is not re-armed without new events
  await b.advance(60_000);
  assert.equal(b.requests.length, 1);
});

test('flush() sends immediately; batch size and interval are configurable', async () => {
  const b = started({}, { batchSize: 3, flushInterval: 1000 });
  for (let i = 0; i < 7; i++) b.rum.track('e' + i);
  await b.advance(0);
  // one request in flight at a time: the second batch follows once the first answered
  assert.deepEqual(b.requests.map((r) => r.body.events.length), [3, 3]);
  await b.advance(1000);
  assert.deepEqual(b.requests.map((r) => r.body.events.length), [3, 3, 1]);
  b.rum.track('x');
  b.rum.flush();
  await b.settle();
  assert.equal(b.requests.length, 4);
});

test('page hide sends everything pending with sendBeacon, key in the query string', async () => {
  const b = started();
  b.rum.track('before-hide', { a: 'b' });
  b.hide();
  await b.settle();
  assert.equal(b.requests.length, 0);
  assert.equal(b.beacons.length, 1);
  assert.equal(b.beacons[0].url, 'https://rum.example.com/v1/events?api_key=k3y%2F%26');
  assert.deepEqual(b.beacons[0].body.events.map((e) => e.name), ['before-hide']);
  // pagehide right after finds nothing left to send
  b.dispatch('pagehide');
  assert.equal(b.beacons.length, 1);
  await b.advance(10_000);
  assert.equal(b.requests.length, 0);
});

test('when sendBeacon refuses, the batch stays in the outbox and goes by fetch if the page lives on', async () => {
  const b = started({ beaconFails: true });
  b.rum.track('x');
  b.leave();
  assert.equal(b.requests.length, 0, 'no request in the hide task: it would not outlive an unloading page');
  await b.advance(0); // the pump, in idle time
  assert.equal(b.requests.length, 1);
  assert.equal(b.requests[0].init.keepalive, true);
  assert.deepEqual(b.requests[0].body.events.map((e) => e.name), ['x']);
  assert.match(b.requests[0].body.batch_id, UUID);
});

test('keepalive only under 60,000 bytes: a batch over 20,000 characters is cut until it fits; a single larger event goes as a normal fetch', async () => {
  // a single event that large is one beforeSend made
  const b = started({}, { batchSize: 15, beforeSend: inflate });
  for (let i = 0; i < 15; i++) b.rum.track('small', { s: 'y' });
  await b.advance(0);
  for (let i = 0; i < 15; i++) b.rum.track('big' + i, props(20, 250));
  for (let i = 0; i < 6; i++) await b.advance(0);
  // about 5,300 characters each: 15 would be 80,000, so 15 × 20,000 / 80,000: 3 fit, and the rest of the cut goes by 3 too
  assert.deepEqual(b.requests.map((r) => r.body.events.length), [15, 3, 3, 3, 3, 3]);
  assert.deepEqual(b.requests.flatMap((r) => r.body.events.map((e) => e.name)).slice(15), [...Array(15).keys()].map((i) => 'big' + i), 'in order');
  for (const r of b.requests) {
    assert.ok(r.text.length <= 19_000);
    assert.equal(r.init.keepalive, true);
  }
  b.rum.track('huge');
  b.rum.flush();
  await b.advance(0);
  const last = b.requests.at(-1);
  assert.ok(last.text.length > 20_000);
  assert.equal(last.init.keepalive, false);
});

test('a batch over 20,000 characters is cut to its share of them, not halved: fuller batches, fewer POSTs, more in the hide beacon', async () => {
  // Events of about 260 characters (an error with a short stack): 100 are 26,000. Halved, batches of 50 were
  // half full: a full outbox sent 50 in flight and 150 in the hide's beacon.
  const hang = new Promise(() => {});
  const b = started({ respond: () => hang }, { batchSize: 100 });
  for (let i = 0; i < 1000; i++) b.rum.track('e' + i, { s: 'x'.repeat(130) });
  await b.advance(0);
  const [flight] = b.requests;
  assert.ok(flight.body.events.length >= 75 && flight.text.length <= 20_000, `${flight.body.events.length} events, ${flight.text.length} characters`);
  b.hide();
  const beaconed = b.beacons[0].body.events.length;
  assert.ok(beaconed >= 150 && b.beacons[0].text.length <= 60_000 - flight.text.length, `${beaconed}`);
  assert.ok(flight.body.events.length + beaconed >= 225, `${flight.body.events.length} + ${beaconed}`);
});

test('a batchSize under 1 cuts batches of one, one that is not a number is the default (0 and 0.5 cut empty batches for ever)', async () => {
  for (const [batchSize, want] of [[0, [['a'], ['b']]], [0.5, [['a'], ['b']]], [NaN, [['a', 'b']]], [-5, [['a', 'b']]], ['abc', [['a', 'b']]]]) {
    const b = started({}, { batchSize });
    b.rum.track('a');
    b.rum.track('b');
    // (a timeout: an endless loop in the cut would otherwise hang the test run)
    vm.runInContext('VantageRUM.flush()', b.env, { timeout: 2000 });
    for (let i = 0; i < 3; i++) await b.advance(0);
    assert.deepEqual(b.requests.map((r) => r.body.events.map((e) => e.name)), want, `batchSize ${batchSize}`);
  }
});

test('gzip option compresses the body with CompressionStream', async () => {
  const b = started({}, { gzip: true });
  for (let i = 0; i < 10; i++) b.rum.track('z' + i);
  await b.advance(0);
  await b.until(() => b.requests.length === 1);
  const r = b.requests[0];
  assert.equal(r.headers['Content-Encoding'], 'gzip');
  const text = await new Response(new Blob([r.raw]).stream().pipeThrough(new DecompressionStream('gzip'))).text();
  assert.equal(JSON.parse(text).events.length, 10);
});

// Compression takes the batch out of the hide task's reach until its request leaves: a page closed meanwhile
// ran no more of it, and the batch was lost.
test('a batch still being compressed at page hide goes in the beacon, and is not sent again after', async () => {
  const b = started({}, { gzip: true });
  for (let i = 0; i < 10; i++) b.rum.track('z' + i);
  b.rum.flush(); // the batch is cut and its compression started (its request leaves when it ends)
  b.rum.track('after');
  b.leave();
  assert.equal(b.beacons.length, 1);
  assert.deepEqual(b.beacons[0].body.events.map((e) => e.name), ['z0', 'z1', 'z2', 'z3', 'z4', 'z5', 'z6', 'z7', 'z8', 'z9', 'after']);
  await new Promise((r) => setTimeout(r, 200)); // the compression ends
  await b.advance(60_000);
  assert.equal(b.requests.length, 0, 'the beaconed batch is not sent again');
  // the page lives on (a tab switched away and back): the next batch is sent as usual
  b.env.document.visibilityState = 'visible';
  b.rum.track('next');
  b.rum.flush();
  await b.until(() => b.requests.length === 1);
  const text = await new Response(new Blob([b.requests[0].raw]).stream().pipeThrough(new DecompressionStream('gzip'))).text();
  assert.deepEqual(JSON.parse(text).events.map((e) => e.name), ['next']);
});

test('without CompressionStream the gzip option falls back to plain JSON', async () => {
  const b = started({ noCompression: true }, { gzip: true });
  b.rum.track('a');
  b.rum.flush();
  await b.settle();
  assert.equal(b.requests[0].headers['Content-Encoding'], undefined);
  assert.equal(b.requests[0].body.events.length, 1);
});

test('the script tag starts the SDK from data attributes', async () => {
  const b = browser({ currentScript: { dataset: { endpoint: 'https://rum.example.com/v1/events', apiKey: 'tag-key' } } });
  b.load();
  b.rum.track('tagged');
  b.rum.flush();
  await b.settle();
  assert.equal(b.requests.length, 1);
  assert.equal(b.requests[0].url, 'https://rum.example.com/v1/events?api_key=tag-key');
  // a second init is refused, the first configuration stays
  assert.equal(b.rum.init({ endpoint: 'https://other.example.com/' }), false);
});

test('other options can be given as data attributes', async () => {
  const b = browser({ currentScript: { dataset: { endpoint: '/rum/v1/events', apiKey: 'k', batchSize: '2', allowParams: 'utm_source,tab', gzip: 'false' } } });
  b.load();
  b.rum.track('a');
  b.rum.track('b');
  await b.advance(0);
  assert.equal(b.requests.length, 1);
  assert.equal(b.requests[0].body.events[0].page.url, 'https://shop.example.com/cart/42?utm_source=news');
});

test('by default a request carries up to 100 events (each request costs the page about as much as a fetch)', async () => {
  const b = browser();
  b.load().init({ endpoint: 'https://rum.example.com/v1/events', apiKey: 'k' });
  for (let i = 0; i < 99; i++) b.rum.track('e' + i);
  await b.advance(0);
  assert.equal(b.requests.length, 0, 'a partial batch waits for the flush interval');
  b.rum.track('e99');
  for (let i = 100; i < 110; i++) b.rum.track('e' + i);
  await b.advance(0);
  assert.deepEqual(b.requests.map((r) => r.body.events.length), [100]);
  await b.advance(5000);
  assert.deepEqual(b.requests.map((r) => r.body.events.length), [100, 10]);
});

test('page hide sends every batch and the queue in the hide task as one beacon; a refused beacon leaves them queued', async () => {
  // Nothing after the hide task is sure to run (an unloading document runs no more timers), and each beacon
  // costs the page's main thread about as much as a fetch: one beacon carries them all.
  const hang = new Promise(() => {});
  const b = started({ respond: () => hang }, { batchSize: 2 });
  for (let i = 0; i < 7; i++) b.rum.track('h' + i);
  await b.advance(0); // h0, h1 in flight (never answered); h2..h5 in two batches, h6 queued
  assert.equal(b.requests.length, 1);
  b.hide();
  const names = () => b.beacons.map((x) => x.body.events.filter((e) => e.type == 'custom').map((e) => e.name));
  assert.deepEqual(names(), [['h2', 'h3', 'h4', 'h5', 'h6']], 'all within the hide task, in order, one beacon');
  // several batches joined have no batch id (a beacon has no answer to retry on); each event keeps its own id
  // (the ingest's key)
  assert.equal(b.beacons[0].body.batch_id, undefined);
  assert.equal(new Set(b.beacons[0].body.events.map((e) => e.event_id)).size, 5);
  await b.advance(0);
  assert.equal(b.beacons.length, 1, 'nothing left for later');

  const r = started({ beaconFails: true, respond: () => hang }, { batchSize: 2 });
  for (let i = 0; i < 7; i++) r.rum.track('r' + i);
  await r.advance(0);
  r.hide();
  await r.advance(0);
  // refused: nothing is sent by fetch in the hide task; the batches wait behind the one in flight
  assert.deepEqual(r.requests.map((x) => x.body.events.map((e) => e.name)), [['r0', 'r1']]);
});

test('the hide beacon takes what fits beside the request in flight (64 KiB per page); the rest stays queued', async () => {
  let answer;
  const b = started({ respond: () => new Promise((r) => (answer = r)) }, { batchSize: 15 });
  const track = (tag) => {
    for (let i = 0; i < 15; i++) b.rum.track(tag + i, props(4, 250));
  };
  ['a', 'b', 'c', 'd'].forEach(track); // four batches of about 16,000 characters each
  await b.advance(0);
  assert.equal(b.requests.length, 1, 'the first in flight');
  const size = b.requests[0].text.length;
  assert.ok(size > 15_000 && size < 19_000, `${size}`);
  b.hide();
  // 60,000 less the batch in flight leaves room for two more; the fourth waits
  const first = (x) => x.body.events.find((e) => e.type == 'custom').name;
  assert.deepEqual(b.beacons.map((x) => x.body.events.filter((e) => e.type == 'custom').length), [30]);
  assert.equal(first(b.beacons[0]), 'b0');
  answer({ status: 202 });
  await b.advance(0);
  await b.advance(0);
  assert.deepEqual(b.requests.map(first), ['a0', 'd0'], 'the batch that did not fit goes once the page lives on');
});

test('leaving a page sends one beacon: pagehide while visible leaves the work to visibilitychange; what did not fit waits for the pump', async () => {
  // A second pass in the same unload would find the 64 KiB taken by the first beacon: its beacon would be refused.
  const b = started({}, { batchSize: 15 });
  ['a', 'b', 'c', 'd', 'e'].forEach((tag) => {
    for (let i = 0; i < 15; i++) b.rum.track(tag + i, props(4, 250));
  }); // five batches of about 16,000 characters, none sent yet
  b.dispatch('pagehide', { persisted: false });
  assert.equal(b.beacons.length, 0, 'the page is still visible at pagehide');
  b.hide();
  const tags = (x) => [...new Set(x.body.events.map((e) => e.name[0]))].join('');
  assert.deepEqual(b.beacons.map(tags), ['abc'], 'one beacon, the oldest batches that fit in 60,000 characters');
  await b.advance(0);
  await b.advance(0);
  assert.equal(b.beacons.length, 1);
  assert.deepEqual(b.requests.map(tags), ['d', 'e'], 'the rest goes by fetch if the page lives on');
});

test('a batch of large events is cut to 20,000 characters: leaving the page beacons the oldest that fit instead of nothing', async () => {
  // 50 events of about 1,500 characters (errors with their stacks are that size) were one batch of 77,000, over
  // the beacon's 60,000: it was not sent, and neither was anything behind it
  const b = started({}, { batchSize: 50 });
  for (let i = 0; i < 50; i++) b.rum.track('big' + i, props(5, 250));
  b.leave();
  assert.equal(b.beacons.length, 1);
  const names = b.beacons[0].body.events.map((e) => e.name);
  assert.ok(names.length >= 30 && b.beacons[0].text.length <= 60_000, `${names.length} events`);
  assert.deepEqual(names, [...names.keys()].map((i) => 'big' + i), 'the oldest, in order');
  for (let i = 0; i < 5; i++) await b.advance(0);
  const all = b.requests.flatMap((r) => r.body.events.map((e) => e.name));
  assert.deepEqual([...names, ...all], [...Array(50).keys()].map((i) => 'big' + i), 'the rest by fetch, should the page live on');
  for (const r of b.requests) assert.ok(r.text.length <= 20_000);
});

test('a page already hidden (a background tab closed) sends at pagehide what came since it was hidden', async () => {
  const b = started();
  b.rum.track('before');
  b.hide();
  b.rum.track('while-hidden');
  b.dispatch('pagehide', { persisted: false }); // no visibilitychange: the page was hidden already
  assert.deepEqual(b.beacons.map((x) => x.body.events.map((e) => e.name)), [['before'], ['while-hidden']]);
});

test('a request in flight sent as a normal fetch (too large for keepalive) leaves the whole budget to the hide beacon', async () => {
  // it takes none of the 64 KiB: counting it would have left no room, and what was queued would be lost at unload
  let answer;
  // a single event of 25,000 characters (beforeSend made it): over 60,000 bytes at 3 bytes per character, so not
  // keepalive
  const b = started({ respond: () => new Promise((r) => (answer = r)) }, { batchSize: 15, beforeSend: inflate });
  const track = (tag, size) => {
    for (let i = 0; i < 15; i++) b.rum.track(tag + i, props(4, size));
  };
  b.rum.track('huge');
  b.rum.flush();
  await b.advance(0);
  assert.equal(b.requests.length, 1, 'the first in flight');
  assert.equal(b.requests[0].init.keepalive, false);
  ['a', 'b', 'c'].forEach((t) => track(t, 200)); // three batches of about 16,000 characters
  b.hide();
  // all three: 60,000 less the request in flight would have left room for two
  assert.deepEqual(b.beacons.map((x) => x.body.events.map((e) => e.name[0]).join('')), ['a'.repeat(15) + 'b'.repeat(15) + 'c'.repeat(15)]);
  answer({ status: 202 });
  await b.advance(0);
  assert.equal(b.requests.length, 1, 'nothing left for later');
});

test('a batch waiting for its retry goes in the hide beacon as it is, with its batch id', async () => {
  // its first attempt may have been stored with the answer lost: the ingest recognizes the id
  const b = started({ respond: () => ({ status: 503 }) });
  b.rum.track('w');
  b.rum.flush();
  await b.settle(); // refused with 503: waiting for its retry
  assert.equal(b.requests.length, 1);
  b.hide();
  assert.equal(b.beacons.length, 1);
  assert.equal(b.beacons[0].body.batch_id, b.requests[0].body.batch_id);
  assert.deepEqual(b.beacons[0].body.events.map((e) => e.name), ['w']);
});

test('the counts of events lost travel in the merged hide beacon', async () => {
  const hang = new Promise(() => {});
  const b = started({ respond: () => hang }, { batchSize: 2, maxQueue: 2, maxBatches: 2 });
  for (let i = 0; i < 12; i++) b.rum.track('l' + i);
  b.hide();
  const lost = [...b.requests, ...b.beacons].map((x) => x.body.dropped || {});
  const sum = (k) => lost.reduce((n, d) => n + (d[k] || 0), 0);
  const sent = [...b.requests, ...b.beacons].reduce((n, x) => n + x.body.events.filter((e) => e.type == 'custom').length, 0);
  assert.equal(b.beacons.length, 1);
  assert.equal(b.beacons[0].body.batch_id, undefined, 'several batches joined');
  assert.ok(sum('outbox') > 0, JSON.stringify(lost));
  assert.equal(sent + sum('outbox') + sum('queue'), 12, 'every event sent or counted lost');
});

test('a batch dropped from a full outbox is counted in the batch cut after it, so the hide sends the count too', async () => {
  // The last batch cut is the one that overflows the outbox: the count of the batch it pushes out must not wait for
  // a later batch that an unloading page never cuts.
  const hang = new Promise(() => {});
  const b = started({ respond: () => hang }, { batchSize: 2, maxQueue: 100, maxBatches: 2 });
  for (let i = 0; i < 6; i++) b.rum.track('o' + i);
  b.rum.flush(); // three batches cut at once; the second pushed out by the third; the first in flight
  await b.advance(0);
  b.hide();
  const all = [...b.requests, ...b.beacons];
  const sent = all.reduce((n, x) => n + x.body.events.length, 0);
  const lost = all.reduce((n, x) => n + ((x.body.dropped || {}).outbox || 0), 0);
  assert.deepEqual([sent, lost], [4, 2], JSON.stringify(all.map((x) => x.body)));
});

test('one getRandomValues per batch: event ids are the batch id with a counter; the hide task does not serialize a batch already cut', async () => {
  let draws = 0;
  const crypto = { getRandomValues: (a) => (draws++, webcrypto.getRandomValues(a)) };
  const hang = new Promise(() => {});
  const b = started({ crypto, respond: () => hang }, { batchSize: 50 });
  draws = 0;
  for (let i = 0; i < 120; i++) b.rum.track('e' + i);
  await b.advance(0); // two full batches cut (when the queue of 100 filled), the first in flight; 20 events queued
  assert.equal(draws, 2, 'one draw per batch, none per event');
  const [r] = b.requests;
  const ids = r.body.events.map((e) => e.event_id);
  assert.equal(new Set(ids).size, 50);
  for (const id of ids) {
    assert.match(id, UUID);
    assert.equal(id.slice(0, 30), r.body.batch_id.slice(0, 30));
  }
  assert.deepEqual(ids.slice(0, 2).map((id) => id.slice(30)), ['100000', '100001']);

  const json = vm.runInContext('JSON', b.env), stringify = json.stringify;
  let serialized = 0;
  json.stringify = function (x) {
    serialized += (x && x.events && x.events.length) || 0;
    return stringify.apply(this, arguments);
  };
  b.hide(); // the cut batch e50..e99 goes as it was serialized, with the queue's 20
  assert.deepEqual(b.beacons.map((x) => x.body.events.length), [70]);
  assert.equal(serialized, 20, 'the queue\'s events, not the batch already cut');
  assert.equal(b.beacons[0].body.events.find((e) => e.type == 'custom').name, 'e50');
});

test('an event leaves out the fields it shares with the event before it in its batch (session, viewport, page, release, user); each change, and each batch, starts with them all', async () => {
  const b = started({}, { batchSize: 50, release: 'shop@1.4.2', sessionTimeout: 1000 });
  const wire = (r) => JSON.parse(r.text).events;
  const whole = (e) => SHARED.filter((k) => k in e).join(' ');
  b.rum.track('a0');
  b.rum.track('a1');
  b.env.innerWidth = 800;
  b.dispatch('resize');
  b.rum.track('b0');
  b.rum.track('b1');
  b.rum.setUser('u1');
  b.rum.track('c0');
  b.rum.track('c1');
  b.env.history.pushState(null, '', '/checkout');
  b.rum.track('d0');
  await b.advance(1500); // the session rolls over (before the flush interval)
  b.rum.track('e0');
  b.rum.track('e1');
  b.rum.flush();
  await b.advance(0);
  assert.equal(b.requests.length, 1);
  const sent = wire(b.requests[0]);
  assert.deepEqual(
    sent.map((e) => [e.name || e.type, whole(e)]),
    [
      ['a0', 'session_id viewport page release'],
      ['a1', ''],
      ['b0', 'session_id viewport page release'],
      ['b1', ''],
      ['c0', 'session_id viewport page release user_id'],
      ['c1', ''],
      ['route_change', 'session_id viewport page release user_id'],
      ['d0', ''],
      ['e0', 'session_id viewport page release user_id'],
      ['e1', ''],
    ]
  );
  // as the ingest reads them: each with the fields of the nearest whole event before it
  const events = b.requests[0].body.events;
  assert.deepEqual(events.map((e) => e.viewport.width), [1280, 1280, 800, 800, 800, 800, 800, 800, 800, 800]);
  assert.deepEqual(events.map((e) => e.user_id || '-').join(''), '----u1u1u1u1u1u1');
  assert.deepEqual(events.map((e) => e.page.url.split('/').pop()), ['42', '42', '42', '42', '42', '42', 'checkout', 'checkout', 'checkout', 'checkout']);
  assert.equal(new Set(events.map((e) => e.session_id)).size, 2);
  assert.ok(events.every((e) => e.release == 'shop@1.4.2'));
  // an api_call event is about 200 characters on the wire, not 330
  await b.env.fetch('/api/items?id=1');
  await b.env.fetch('/api/items?id=2');
  b.rum.flush();
  await b.advance(0);
  const [c0, c1] = wire(b.requests.filter((r) => r.text).at(-1));
  assert.ok(JSON.stringify(c1).length < 200 && JSON.stringify(c0).length > JSON.stringify(c1).length + 100, JSON.stringify(c1));

  // A batch cut again: the events moved to the next batch start it whole. Joined in a beacon, each batch's first is.
  const h = started({ respond: () => new Promise(() => {}) }, { batchSize: 45 });
  for (let i = 0; i < 45; i++) h.rum.track('big' + i, props(4, 1000)); // 54,000 characters: cut to 16 a batch
  await h.advance(0);
  h.hide();
  const starts = (r) => wire(r).flatMap((e, i) => (e.session_id ? [i] : []));
  assert.deepEqual(starts(h.requests[0]), [0], 'the first of 16, in flight');
  assert.deepEqual(starts(h.beacons[0]), [0, 16], 'the next 16 and the 13 left, joined');
  assert.equal(wire(h.beacons[0]).length, 29);

  // With beforeSend the hook sees whole events and each is sent whole.
  const s = started({}, { batchSize: 3, beforeSend: (e) => (assert.ok(e.session_id && e.page && e.viewport), e) });
  for (let i = 0; i < 3; i++) s.rum.track('s' + i);
  await s.advance(0);
  assert.deepEqual(wire(s.requests[0]).map((e) => !!e.session_id), [true, true, true]);
});
