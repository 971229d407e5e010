// harness.mjs: runs src/rum-sdk.js in a node vm context with small fakes of window, document, fetch,
// sendBeacon, sessionStorage and a virtual clock, so batching and retry logic can be tested deterministically.
import fs from 'node:fs';
import vm from 'node:vm';
import { webcrypto } from 'node:crypto';

export const SRC = fs.readFileSync(new URL('../../src/rum-sdk.js', import.meta.url), 'utf8');

const tick = () => new Promise((r) => setImmediate(r));

/** The fields a batch's events share, which an event leaves out when they are the event's before it. */
export const SHARED = ['session_id', 'viewport', 'page', 'release', 'user_id'];

/** A batch body's events as the ingest reads them: an event without `session_id` takes the shared fields of the
 * nearest event before it in the body that has one. (The raw text is kept beside, as `text`.) */
export function expand(body) {
  let full;
  for (const e of body.events || []) {
    if ('session_id' in e) full = e;
    else if (full) for (const k of SHARED) if (!(k in e) && k in full) e[k] = full[k];
  }
  return body;
}

export function fakeStorage() {
  const m = new Map();
  return {
    map: m,
    getItem: (k) => (m.has(k) ? m.get(k) : null),
    setItem: (k, v) => m.set(k, String(v)),
    removeItem: (k) => m.delete(k),
  };
}

/**
 * Creates a fake browser. `respond(req)` decides each POST's fate: return {status, headers} or throw
 * for a network error, or return a promise that never settles for a request that hangs.
 */
export function browser(opts = {}) {
  const timers = new Map();
  let clock = 0, nextId = 1, rand = opts.random ?? (() => 0.5);
  const listeners = {};
  const requests = [], beacons = [];
  const respond = opts.respond || (() => ({ status: 202 }));
  const addListener = (t, fn) => (listeners[t] ||= []).push(fn);
  const env = {
    setTimeout(fn, ms) {
      const id = nextId++;
      timers.set(id, { at: clock + (ms > 0 ? ms : 0), fn, id });
      return id;
    },
    clearTimeout(id) {
      timers.delete(id);
    },
    async fetch(url, init = {}) {
      const req = { url: String(url), init, at: clock, headers: init.headers || {} };
      if (typeof init.body === 'string') req.body = expand(JSON.parse((req.text = init.body)));
      else if (init.body) req.raw = init.body;
      requests.push(req);
      const r = await respond(req, requests.length);
      const h = new Map(Object.entries(r.headers || {}).map(([k, v]) => [k.toLowerCase(), v]));
      return { status: r.status, ok: r.status < 300, headers: { get: (k) => h.get(k.toLowerCase()) ?? null } };
    },
    navigator: {
      userAgent: 'Mozilla/5.0 (unit test)',
      sendBeacon(url, body) {
        if (opts.beaconFails) return false;
        beacons.push({ url: String(url), body: expand(JSON.parse(body)), text: body, at: clock });
        return true;
      },
    },
    location: { href: opts.href || 'https://shop.example.com/cart/42?coupon=SECRET&utm_source=news#step2' },
    document: {
      readyState: 'complete',
      visibilityState: 'visible',
      referrer: 'https://search.example.org/?q=private',
      currentScript: opts.currentScript || null,
      addEventListener: addListener,
    },
    innerWidth: 1280,
    innerHeight: 720,
    sessionStorage: opts.sessionStorage || fakeStorage(),
    performance: { now: () => clock, getEntriesByType: () => [] },
    addEventListener: addListener,
    URL,
    URLSearchParams,
    Blob,
    Headers,
    Request,
    Response,
    XMLHttpRequest: class {}, // (the browser tests make real ones)
    CompressionStream: opts.noCompression ? undefined : CompressionStream,
    crypto: opts.crypto || webcrypto,
    __now: () => 1_700_000_000_000 + clock,
    __rand: () => rand(),
  };
  env.history = {
    pushState(_s, _t, u) {
      env.location.href = new URL(u, env.location.href).href;
    },
    replaceState(_s, _t, u) {
      env.location.href = new URL(u, env.location.href).href;
    },
  };
  if (opts.fetch === false) delete env.fetch;
  const origFetch = env.fetch;
  env.window = env;
  vm.createContext(env);
  vm.runInContext('Date.now = () => __now(); Math.random = () => __rand();', env);
  const b = {
    env,
    requests,
    beacons,
    origFetch,
    get clock() {
      return clock;
    },
    set random(fn) {
      rand = fn;
    },
    load() {
      vm.runInContext(SRC, env);
      return env.VantageRUM;
    },
    get rum() {
      return env.VantageRUM;
    },
    /** Advances the virtual clock by ms, running due timers in order and settling promises between them. */
    async advance(ms) {
      const end = clock + ms;
      await b.settle();
      for (;;) {
        let next = null;
        for (const t of timers.values()) if (t.at <= end && (!next || t.at < next.at || (t.at === next.at && t.id < next.id))) next = t;
        if (!next) break;
        timers.delete(next.id);
        clock = next.at;
        next.fn();
        await b.settle();
      }
      clock = end;
      await b.settle();
    },
    /** Waits (real time, for work done off the virtual clock such as compression) until fn() is true. */
    async until(fn, ms = 5000) {
      const end = Date.now() + ms;
      while (!fn()) {
        if (Date.now() > end) throw new Error('condition not reached');
        await new Promise((r) => setTimeout(r, 5));
      }
    },
    async settle() {
      for (let i = 0; i < 20; i++) await tick();
    },
    dispatch(type, ev = {}) {
      for (const fn of listeners[type] || []) fn.call(env, { type, ...ev });
    },
    hide() {
      env.document.visibilityState = 'hidden';
      b.dispatch('visibilitychange');
    },
    /** What leaving a visible page fires (HTML's unload): pagehide while still visible, then the hide. */
    leave() {
      b.dispatch('pagehide', { persisted: false });
      b.hide();
    },
    /** All events delivered by fetch or beacon, in order. */
    delivered() {
      return [...requests.filter((r) => r.body && r.body.events).map((r) => r.body), ...beacons.map((x) => x.body)].flatMap((x) => x.events);
    },
  };
  return b;
}

export function started(opts = {}, config = {}) {
  const b = browser(opts);
  const rum = b.load();
  // Batches of 10 (and 10 of them held), the mechanics these tests were written with; the defaults are larger.
  const ok = rum.init({ endpoint: 'https://rum.example.com/v1/events', apiKey: 'k3y/&', batchSize: 10, maxBatches: 10, ...config });
  if (!ok) throw new Error('init failed');
  return b;
}
