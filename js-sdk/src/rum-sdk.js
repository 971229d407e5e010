/*! Vantage RUM SDK | Apache-2.0 */
// rum-sdk.js: collectors (navigation, web vitals, resources, long tasks, fetch/XHR, errors, routes,
// clicks, custom) -> one bounded queue -> batcher -> transport (fetch keepalive, sendBeacon on hide,
// retry with backoff). Dependency-free; every entry point is wrapped so nothing ever throws into the page.
(function () {
  // Not a browser (a worker, a server rendering), or already loaded: a second copy must not wrap fetch/XHR/history
  // again.
  if (typeof document != 'object' || window.VantageRUM) return;
  const w = window;

  const d = document, nav = navigator, perf = performance, loc = location;
  const origFetch = fetch, script = d.currentScript, COMMON = Symbol(); // (COMMON: the event's shared fields)
  const DEFAULTS = {
    batchSize: 100, // events per request (each request costs the page's main thread about as much as a fetch)
    flushInterval: 5000, // ms before a partial batch is sent
    maxQueue: 200, // events waiting to be batched; oldest dropped beyond this
    maxBatches: 10, // batches held for sending/retry; oldest dropped beyond this
    maxRetries: 6, // attempts after the first before a batch is given up
    retryBase: 1000, // ms, doubled per attempt, with jitter
    retryMax: 30000, // ms cap of one backoff step
    retryAfterMax: 300000, // ms cap on an honoured Retry-After, and the pause after a batch is given up
    sampleRate: 1, // share of sessions that send anything
    resourceSampleRate: 0.2, // share of resource timings sent
    maxResources: 40, // resource_load events per page view
    maxLongTasks: 40, // long_task events per page view
    maxErrors: 20, // distinct errors per page view
    allowParams: [], // query parameters kept in URLs (all others removed)
    traceOrigins: [], // origins whose fetch/XHR get a W3C traceparent header
    gzip: false, // compress batches with CompressionStream (costs one cached CORS preflight)
    sessionTimeout: 18e5, // ms of inactivity after which a new session starts
    // beforeSend: function(event) -> event | null to edit or drop
  };
  const SKEY = 'vantage_rum_session';

  let cfg, started, sess, userId, report, dropped = {}, endpointKeyless, endpointUrl, pageUrl, referrer, viewport, idleId;
  // The fields the events of a page view share (session, viewport, page, release, user), one object until one
  // of them changes (then 0, made again at the next event). In a batch an event leaves them out when its are
  // the event's before it; the ingest takes them from there (js-sdk/README.md): about 140 of an api_call's 330
  // characters, so a batch of 100 calls is one POST, not two.
  let common;
  // queue[qh..] are the events waiting; dropping the oldest moves qh instead of shifting the array. `sending`:
  // 0, or the share of the keepalive budget the request in flight takes (1 when it is a normal fetch, see send;
  // -1 while it is compressed, and after for a compressed body too large for keepalive: it has not left, or will
  // not outlive an unloading page, and the hide's beacon takes it).
  let queue = [], qh = 0, outbox = [], sending = 0, flushTimer, retryTimer, down;
  let seen = {}, errCount = 0, resCount = 0, resAt = 0, taskCount = 0, urls = new Map();

  const safe = (fn) => function () {
    try {
      return fn.apply(this, arguments);
    } catch (e) {}
  };
  const on = (t, a, b, c) => t.addEventListener(a, b, c);
  const now = () => perf.now(); // every browser that parses this file has it
  const r1 = (x, p = 10) => Math.round(x * p) / p; // (to 0.1, or 1/p)
  // Work that can wait runs when the page is idle (or at the latest 2 s later); setTimeout where there is no
  // requestIdleCallback (Safari), for which the options object is a delay of 0.
  const idle = (fn) => (w.requestIdleCallback || setTimeout)(fn, { timeout: 2000 });

  // x in hex, n digits (up to 8: any 32-bit number)
  const hex = (x, n = 8) => x.toString(16).padStart(n, 0);

  // UUIDv7: the first 48 bits are Unix milliseconds, so ids arrive roughly in time order and the ingest's
  // id index grows at one end (random v4 ids made every insert touch a random index page).
  // (every browser that parses this file has crypto.getRandomValues, in insecure contexts too)
  function uuid() {
    const r = crypto.getRandomValues(new Uint32Array(3)), t = hex(Date.now(), 12);
    // version 7 and 12 random bits; the variant (binary 10) and 14 random bits; 48 random bits
    return t.slice(0, 8) + '-' + t.slice(8) + '-' + hex(28672 | (r[0] & 4095), 4) + '-' + hex(32768 | (r[0] >>> 18), 4) + '-' + hex(r[1]) + hex(r[2] >>> 16, 4);
  }

  // What the SDK needs to know about a URL, parsed once per URL string (up to 100 kept; the cache is emptied
  // when full): `s` scrubbed (query and fragment removed unless the parameter is allow-listed; non-http URLs keep
  // only the scheme), `o` the SDK's own endpoint, `t` gets a traceparent.
  function info(u) {
    // With no parameter allow-listed (the default) the query and fragment change nothing here, so they are cut
    // before the lookup: a page whose calls carry ids or cache busters in the query parses each path once, not
    // each call (the parse cost the page 8-10 us per call, bench/README.md).
    u = cfg.allowParams[0] ? u : u.split(/[?#]/)[0];
    // A URL with a scheme or from the root means the same on every route; a path-relative one ("items") is
    // resolved against the page's URL, which route changes move, so its key is it, a space and the page's URL
    // (which has no space; a key of the first kind starts with "/" or a scheme, this one does not). Route changes
    // then keep what the page's calls had parsed. The page's URL is the SDK's (scrubbed, which changes no
    // path-relative URL's path), not location's: calls answered before a route change are made into events
    // after location has moved, but before the SDK's page does (route).
    const k = /^(\/|\w+:)/.test(u) ? u : u + ' ' + pageUrl;
    let i = urls.get(k);
    if (!i) {
      try {
        const x = new URL(u, pageUrl), q = x.searchParams, p = x.origin + x.pathname;
        // the parameters not allow-listed are deleted, the rest sorted (no query left: `search` is empty); by default
        // the query was cut above, so there is none to parse
        [...q.keys()].forEach((n) => cfg.allowParams.includes(n) || q.delete(n));
        q.sort();
        i = { s: /^https?:$/.test(x.protocol) ? (p + x.search).slice(0, 1000) : x.protocol, t: cfg.traceOrigins.includes(x.origin) };
      } catch (e) {
        i = { s: '' };
      }
      if (urls.size > 99) urls.clear();
      urls.set(k, i);
    }
    return i;
  }

  // Query strings and fragments of URLs inside stack traces and sources ("https://x/a.js?t=1:3:7").
  const unq = (s) => s.replace(/(https?:\/\/[^\s?#)]+)[?#][^\s)]*?(?=(:\d+)*(\)|\s|$))/gm, '$1');

  // CSS-like path of an element, as web-vitals' attribution build does, capped at 100 chars.
  function sel(el) {
    let s = '';
    try {
      while (el && el.nodeType == 1) {
        const p = el.id ? '#' + el.id : [el.nodeName.toLowerCase(), ...[...el.classList].sort()].join('.');
        if (s.length + p.length > 99) return s || p;
        s = s ? p + '>' + s : p;
        if (el.id) break;
        el = el.parentNode;
      }
    } catch (e) {}
    return s;
  }

  // The session's last activity lives in memory; sessionStorage is written when a session starts or rolls
  // over and at page hide (so the next page in the tab continues it), never per event.
  function session() {
    const t = Date.now();
    let s = sess;
    if (!s) {
      try {
        s = JSON.parse(sessionStorage.getItem(SKEY));
      } catch (e) {}
    }
    if (!s || !s.id || !(t - s.last < cfg.sessionTimeout)) {
      sess = s = { id: uuid(), sampled: Math.random() < cfg.sampleRate, last: t };
      common = 0;
      store();
    }
    s.last = t;
    return (sess = s);
  }

  function store() {
    try {
      sessionStorage.setItem(SKEY, JSON.stringify(sess));
    } catch (e) {}
  }

  function emit(type, data) {
    if (!started) return;
    const s = session();
    if (!s.sampled) return;
    common = common || {
      session_id: s.id,
      viewport,
      page: { url: pageUrl, referrer },
      // data-release / init({release}): the build the page runs, which picks the source maps for its stacks
      release: cfg.release,
      user_id: userId,
    };
    let ev = { type, timestamp: Date.now(), ...data, [COMMON]: common };
    if (cfg.beforeSend) {
      try {
        // The hook sees (and may change) the whole event, a copy of its own (the shared fields are one object for
        // many events, which the copy leaves out), so with a hook every event is sent whole. (What it returns is
        // serialized here too: a BigInt or a cycle threw in every cut after it, and nothing more was sent.)
        JSON.stringify((ev = cfg.beforeSend(JSON.parse(JSON.stringify({ ...common, ...ev })))));
      } catch (e) {
        ev = 0; // a broken hook must not leak what it was meant to remove
      }
      if (!ev) return;
    }
    if (queue.length - qh >= cfg.maxQueue) {
      // Full before the page was idle: full batches move to the outbox now (cut also compacts the queue);
      // the oldest event is dropped only when that leaves the queue full (maxQueue under batchSize).
      cut(1);
      if (queue.length >= cfg.maxQueue) {
        queue[qh++] = 0;
        lose('queue', 1);
      }
    }
    later(queue.push(ev) - qh);
  }

  // n events (or call records) waiting: a full batch is cut in idle time; a partial one waits for the flush
  // interval. More than maxQueue are only call records (emit keeps the queue at most that): they are made into
  // events and cut at once, so they are bounded as the queue is.
  const later = (n) => (n > cfg.maxQueue ? cut(1) : n < cfg.batchSize ? flushTimer || (flushTimer = setTimeout(() => idle(safe(flush)), cfg.flushInterval)) : soon());

  // Full batches are cut and sent in idle time, not in the middle of the page's task (once scheduled, once run).
  const soon = () =>
    idleId ||
    (idleId = idle(
      safe(() => {
        idleId = 0;
        cut(1);
        pump();
      })
    ));

  // ---- batcher and transport ----

  // Events given up, by reason, sent with the next batch: `queue` (the queue was full), `outbox` (more than
  // maxBatches batches waiting), `retry` (a batch given up after its retries). A batch that is dropped or refused
  // hands on the counts it carried.
  const lose = (k, x) => (dropped[k] = (dropped[k] || 0) + x);
  const carry = (b) => {
    for (const k in b.d) lose(k, b.d[k]);
  };
  const drop = (b, k) => b && (lose(k, b.n), carry(b));

  // Move queued events into batches, each with an idempotency key and the count of events dropped so far,
  // serialized once here (n events, d dropped, body) for every attempt and for the beacon at hide. The calls
  // waiting are made into events first.
  function cut(full) {
    drain();
    if (!full) {
      clearTimeout(flushTimer);
      flushTimer = 0;
    }
    // A batch is at most 20,000 characters (60,000 bytes in UTF-8 at most), cut again to as many events as should
    // fit (its share of 20,000) until it is, and the batches after it in this cut no larger: it goes keepalive, and
    // the hide's beacon has room for it beside any request in flight. (Halved, as before, batches of events a little
    // over 200 characters were half full: twice the POSTs, and a hide beside one in flight beaconed 150 of them where
    // 200 fit.) A batch too large for the beacon blocked the batches behind it too, and all were lost when the
    // page unloaded (50 errors with their stacks are over 60,000). Only a single event over it, which beforeSend
    // can make, goes larger.
    // (a whole number, at least 1: batchSize 0 or 0.5 cut empty batches for ever)
    let n = Math.max(cfg.batchSize | 0, 1), events, body;
    while (queue.length - qh >= (full ? n : 1)) {
      // Room first: with the outbox full, the oldest batch after the head is dropped, and the batch cut now
      // carries its count (dropped after the push, the last batch's count waited for a batch that a page being
      // unloaded never cuts). The head is never the one dropped: it is in flight, waiting for its retry (its
      // attempts count against maxRetries) or next. (With maxBatches 0 or 1 the outbox holds 2: the head and
      // the batch cut.)
      if (outbox.length >= cfg.maxBatches) drop(outbox.splice(1, 1)[0], 'outbox');
      const id = uuid();
      do {
        events = queue.slice(qh, qh + n);
        // (events first: the hide takes their JSON out of the body, up to its last "]", to send several as one)
        body = { events, batch_id: id };
        // Ids are stamped here, a batch's together, not when each event happened: the ingest's (site, event_id)
        // index then takes a batch's ids on one page instead of one page per event (bench/README.md). They are
        // the batch id with its last six digits a counter from 100000 (UUIDv7 allows counter bits in place of
        // random ones; 50 random bits are left; batches up to 900,000 events): one getRandomValues per batch
        // instead of one per event, which cost the page 2.5-9 us each.
        // The shared fields are put in the batch's first event and in each whose differ from the one's before it
        // (an event after one with the same gets `true`, which Object.assign ignores). Events cut out of a batch too
        // large, and so first in the next one, get theirs in its cut.
        events.forEach((e, i) => Object.assign(e, (i && e[COMMON] == events[i - 1][COMMON]) || e[COMMON], { event_id: id.slice(0, 30) + (i + 1e5) }));
        for (const k in dropped) body.dropped = dropped; // only when something was lost
      } while ((body = JSON.stringify(body)).length > 2e4 && events[1] && (n = ((events.length * 2e4) / body.length) | 0 || 1));
      qh += events.length;
      outbox.push({ n: events.length, d: dropped, body });
      dropped = {};
    }
    queue = queue.slice(qh);
    qh = 0;
  }

  // Resource timings are read from the browser's buffer once the page has loaded and at each flush, not
  // observed: an observer is called for every fetch and XHR the page makes too (those are api_calls), which
  // cost the page's main thread more than the rest of the SDK's work per call.
  function resources() {
    const l = entries('resource');
    if (l.length < resAt) resAt = 0; // the page cleared the buffer
    for (; resAt < l.length; resAt++) {
      // the SDK's own requests are fetch and beacon ones; /^(fe|x|be)/ is fetch, xmlhttprequest and beacon among
      // the initiator types (font, body and the rest start otherwise)
      const e = l[resAt];
      if (resCount < cfg.maxResources && Math.random() < cfg.resourceSampleRate && !/^(fe|x|be)/.test(e.initiatorType)) {
        resCount++;
        emit('resource_load', { resource: { name: info(e.name).s, type: e.initiatorType, duration: r1(e.duration), size: e.transferSize || 0 } });
      }
    }
  }

  function flush() {
    resources();
    cut();
    pump();
  }

  async function post(b) {
    let body = b.body;
    let headers;
    if (cfg.gzip && w.CompressionStream) {
      // (a hide in the meantime takes the batch into its beacon, as an unloading page would run no more of this;
      // then it is not sent here)
      sending = -1;
      try {
        body = await new Response(new Response(body).body.pipeThrough(new CompressionStream('gzip'))).arrayBuffer();
        headers = { 'Content-Type': 'text/plain', 'Content-Encoding': 'gzip' };
      } catch (e) {}
      if (b != outbox[0]) throw 0;
    }
    return send(body, headers);
  }

  // keepalive requests share a 64 KiB budget per page; larger bodies go as a normal fetch. A string body is
  // not encoded to be measured: at most 3 UTF-8 bytes per UTF-16 unit, so at most 20,000 units is at most 60,000
  // bytes.
  // A string body is sent as text/plain;charset=UTF-8 by the browser itself, as a beacon is: a simple request
  // without a CORS preflight. A keepalive request sets `sending` to its size, which the hide's beacon leaves free.
  const send = (body, headers) =>
    origFetch.call(w, endpointUrl, { method: 'POST', body, headers, keepalive: (body.byteLength || body.length * 3) <= 6e4 && !!(sending = body.byteLength || body.length), credentials: 'omit' });

  // One request in flight; the head batch is retried until it succeeds or gives up, so order is kept.
  function pump() {
    if (sending || retryTimer || !outbox[0]) return; // (every browser that parses this file has fetch)
    const b = outbox[0];
    sending = 1;
    post(b).then(
      (res) => done(b, res),
      () => done(b)
    );
  }

  // Answers worth another try: timeout, rate limit, and a server or proxy that is failing, restarting or
  // overloaded (the ingest answers 503 while its store is away). Network errors are retried too.
  const RETRY = /^(408|429|50[0234])$/;

  // The next batch goes in idle time too, not in the task that handles this answer.
  const next = () => idle(safe(pump));

  function done(b, res) {
    // b is outbox[0] unless the hide's beacon took it while it was compressed: nothing else takes the head off
    // while it is in flight (cut drops the second batch, the hide beacons from the second)
    sending = 0;
    if (b != outbox[0]) return next();
    if (res && !RETRY.test(res.status)) {
      // Delivered, or refused for good (a 4xx caused by the batch itself): resending would not help. The
      // server counts what it refuses; `dropped` is only what the SDK gave up on, carried to the next batch.
      outbox.shift();
      res.ok || carry(b);
      return next();
    }
    // Exponential backoff with jitter (half fixed, half random); a Retry-After answer is a lower bound (seconds,
    // or an HTTP date: a "0" read as a date is in the past too).
    const tries = (b.tries = -~b.tries), ra = res && res.headers.get('Retry-After');
    let t = Math.min(cfg.retryMax, cfg.retryBase * 2 ** (tries - 1)), s = ra && (+ra * 1000 || Date.parse(ra) - Date.now());
    t = t / 2 + (Math.random() * t) / 2;
    if (s > 0) t = Math.max(t, Math.min(s, cfg.retryAfterMax));
    if (tries > cfg.maxRetries) {
      // Given up: the endpoint is down. Stay quiet for a while (every failed request is a line in the
      // browser's console), keep collecting into the bounded queue.
      drop(outbox.shift(), 'retry');
      down = 1;
      t = cfg.retryAfterMax;
    }
    retryTimer = setTimeout(
      safe(() => {
        retryTimer = down = 0;
        pump();
      }),
      t
    );
  }

  // Page is being hidden or unloaded: what is not already in flight goes out in the hide task, as one beacon.
  // Nothing later is sure to run: an unloading document runs no more timers, and a mobile page hidden in the
  // background may be frozen or killed. Beacons and keepalive requests share a budget of 64 KiB in flight per
  // page, so the beacon takes the batches already cut, oldest first, then the queue (cut only when they all
  // fit), as long as they fit beside a keepalive request in flight (a larger one, sent as a normal fetch, takes
  // none of the budget): one beacon costs the page's main thread about as much as a fetch, whatever its size.
  // What does not fit, or a refused beacon's batches, stays in the outbox for the pump, should the page live on.
  // Several batches joined have no batch id (a beacon gets no answer, so is never retried): the ingest knows each
  // event by its id.
  function beaconAll() {
    const i = +(sending > 0), take = [];
    let room = 6e4 - sending, b, ok;
    while (!down && (outbox[i] || cut(), (b = outbox[i])) && (room -= b.body.length) > 0) take.push(outbox.splice(i, 1)[0]);
    // One batch goes as it is, with its id (it may be a retry of one the ingest stored). Several go as one body:
    // their events, and the counts of events lost that they carried added up (by `carry`, into a `dropped` of
    // their own) with those no batch carries yet (a refused batch's, or one given up, wait for the next cut: a
    // page left with nothing more to cut sent them never). Such counts go alone, in a body with no events, too.
    const was = dropped;
    let body = take[0] && take[0].body, join = take[1];
    for (const k in was) join = !down; // (with the endpoint down, nothing is sent)
    if (join) {
      dropped = { ...was };
      take.forEach(carry);
      body = JSON.stringify({ events: [], dropped }).replace('[]', () => '[' + take.map((b) => b.body.slice(11, b.body.lastIndexOf(']'))) + ']');
      dropped = was;
    }
    if (body) {
      try {
        ok = nav.sendBeacon(endpointUrl, body);
      } catch (e) {}
      ok ? (dropped = {}) : (outbox.splice(i, 0, ...take), next());
    }
  }

  // ---- collectors ----

  function observe(type, cb, o) {
    try {
      if (!PerformanceObserver.supportedEntryTypes.includes(type)) return;
      const po = new PerformanceObserver(safe((l) => l.getEntries().forEach(cb)));
      po.observe({ type, buffered: true, ...o });
      po.cb = cb;
      return po;
    } catch (e) {}
  }

  const entries = (type) => perf.getEntriesByType(type);

  // The rating is the ingest's: it rates each value by the web-vitals thresholds, whatever a sender says. A time
  // measured from the activation of a prerendered page can fall before it: 0, as web-vitals reports it.
  const vital = (name, value, extra) => emit('web_vital', { name, value: r1(value > 0 ? value : 0, name == 'CLS' ? 1e4 : 10), ...extra });

  // Vitals are measured per view: the page load, then each back/forward-cache restore and each route change
  // (a soft navigation), as web-vitals does with `reportSoftNavs`. The observers stay connected for the page's
  // life; `view()` starts a view's CLS and INP afresh. The returned `report` ends the view: its CLS and INP (and
  // a soft navigation's LCP) are reported once, when the page is hidden or the next view starts, tagged with
  // the view's page (the route change reports before the page URL moves on).
  let cls, win, first, last, list, byId, n, ic0, ended, sn, snLcp;
  const view = () => {
    cls = win = n = ended = sn = snLcp = 0;
    list = [];
    byId = {};
    ic0 = perf.interactionCount;
  };

  function vitals() {
    const navEntry = entries('navigation')[0] || {};
    const act = navEntry.activationStart || 0;
    // Entries after the page was first hidden do not count for FCP and LCP (web-vitals semantics).
    let hiddenAt = d.visibilityState == 'hidden' && !d.prerendering ? 0 : 1 / 0;
    entries('visibility-state').forEach((e) => e.name == 'hidden' && (hiddenAt = Math.min(hiddenAt, e.startTime)));
    const fin = (po) => po && po.takeRecords().forEach(po.cb);
    view();

    const fcp = observe('paint', (e) => {
      if (e.name == 'first-contentful-paint' && e.startTime < hiddenAt) {
        fcp.disconnect();
        vital('FCP', e.startTime - act);
      }
    });

    let lcp, lcpDone;
    const lcpPo = observe('largest-contentful-paint', (e) => e.startTime < hiddenAt && (lcp = e));
    // LCP is final at the first input or when the page is hidden.
    const lcpFinal = safe(() => {
      if (lcpDone || !lcpPo) return;
      lcpDone = 1;
      fin(lcpPo);
      lcpPo.disconnect();
      if (lcp) vital('LCP', lcp.startTime - act, { target: sel(lcp.element) });
    });
    ['keydown', 'click'].forEach((t) => on(w, t, (e) => e.isTrusted && setTimeout(lcpFinal), true));

    // CLS: largest session window (gap < 1 s, window < 5 s) of shifts without recent input.
    const clsPo = observe('layout-shift', (e) => {
      if (e.hadRecentInput) return;
      if (win && e.startTime - last < 1000 && e.startTime - first < 5000) win += e.value;
      else {
        win = e.value;
        first = e.startTime;
      }
      last = e.startTime;
      if (win > cls) cls = win;
    });

    // INP: the 10 longest interactions by id; the value is the one at index floor(count / 50) (~p98).
    const inpCb = (e) => {
      const id = e.interactionId;
      if (!id) return;
      let it = byId[id];
      if (!it) {
        n++;
        if (list.length >= 10 && e.duration <= list[9].d) return;
        list.push((it = byId[id] = { id, d: -1 }));
      }
      if (e.duration > it.d) {
        it.d = e.duration;
        it.t = sel(e.target);
      }
      list.sort((a, b) => b.d - a.d);
      list.splice(10).forEach((x) => delete byId[x.id]);
    };
    const inpPo = observe('event', inpCb, { durationThreshold: 40 });
    if (inpPo) observe('first-input', inpCb);

    // A soft navigation's LCP where the browser exposes it (Chromium): its largest paint caused by the
    // interaction that navigated, from that interaction.
    const icp = (e) => e && sn && e.interactionId == sn.interactionId && (snLcp = Math.max(e.largestContentfulPaint.renderTime - sn.startTime, 0));
    observe('interaction-contentful-paint', icp);
    observe('soft-navigation', (e) => icp((sn = e).getLargestInteractionContentfulPaint()));

    return () => {
      if (ended) return;
      ended = 1;
      lcpFinal();
      if (clsPo) {
        fin(clsPo);
        vital('CLS', cls);
      }
      fin(inpPo);
      // interactions of this view: the page's count since the view started, or the ones observed
      const it = list[Math.min(list.length - 1, Math.floor((perf.interactionCount - ic0 || n) / 50))];
      if (it) vital('INP', it.d, { target: it.t });
      if (snLcp) vital('LCP', snLcp);
    };
  }

  // Navigation breakdown, read only once the load event has finished (loadEventEnd set).
  function pageLoad(tries) {
    const n = entries('navigation')[0];
    if (!n) return;
    if (!n.loadEventEnd) return tries < 200 && setTimeout(safe(() => pageLoad(tries + 1)), 50);
    // The marks the ingest makes the breakdown of (metrics{dns_lookup, ...}, js-sdk/README.md): the entry's numbers
    // above 0 by name, as the browser gives them (unrounded; a mark left out is one not recorded). The arithmetic
    // and the rounding are done there, where they cost no page anything and no bytes of this file. Numbers only
    // (`> 0` is false for any string but a number's, and for objects): the entry's strings and objects include
    // the page's URL unscrubbed (`name`) and, in `notRestoredReasons`, the URLs of its frames.
    emit('page_load', {
      timing: Object.fromEntries(Object.entries(n.toJSON()).filter((e) => e[1] > 0)),
      navigation_type: n.type,
    });
    if (n.responseStart > 0) vital('TTFB', n.responseStart - (n.activationStart || 0));
    resources();
  }

  // W3C trace context: a random 128-bit trace id and 64-bit parent id, from one draw of six 32-bit numbers (a traced
  // call makes one: 10-14 us, where two UUIDs made a byte at a time cost it 25-38 us, bench/README.md)
  const traceparent = (r = crypto.getRandomValues(new Uint32Array(6))) => '00-' + hex(r[0]) + hex(r[1]) + hex(r[2]) + hex(r[3]) + '-' + hex(r[4]) + hex(r[5]) + '-01';

  // A fetch or XHR answered is recorded (method, URL, status, start, traceparent, end, time) and made into an
  // api_call event with the others when a batch is cut (in idle time at batchSize records, at the flush, at hide) or
  // before a route change moves the page: that work done a batch at a time cost the page much less per call than
  // done at each answer (bench/README.md).
  let calls = [];
  const api = safe((m, u, status, t0, tp, t1 = now()) => later(calls.push([m, u, status, t0, tp, t1, Date.now()])));
  // The SDK's own requests do not go through the wrappers; the page's own calls to the endpoint (as configured,
  // without the site key) are left out here.
  const drain = () =>
    calls.splice(0).forEach(([method, u, status, t0, tp, t1, timestamp]) =>
      (u = info(u).s) == endpointKeyless || emit('api_call', { timestamp, api: { method, endpoint: u, duration: r1(t1 - t0), status }, trace_id: tp && tp.slice(3, 35) })
    );

  // fetch: the page gets the very promise the browser returned; we only observe it.
  function wrapFetch() {
    // (every browser that parses this file has fetch)
    w.fetch = function (input, init) {
      let args = arguments, m, u, tp;
      const t0 = now();
      try {
        u = String(input.url || input);
        m = String((init && init.method) || input.method || 'GET').toUpperCase();
        // (URLs are parsed when the calls are made into events; only for a traceparent here)
        if (cfg.traceOrigins[0] && info(u).t) {
          // A call with no headers of its own gets them as a plain object: a Headers cost the page 16 us more per
          // call (bench/README.md). One whose headers hold a traceparent (the page's own tracing) keeps it, and its
          // api_call takes that trace id.
          let h = (init && init.headers) || input.headers;
          if (!h || !(tp = (h = new Headers(h)).get('traceparent'))) {
            tp = traceparent();
            h ? h.set('traceparent', tp) : (h = { traceparent: tp });
            args = [input, { ...init, headers: h }];
          }
        }
      } catch (e) {
        u = 0;
      }
      const p = origFetch.apply(this, args);
      if (u) {
        try {
          p.then(
            (r) => api(m, u, r.status, t0, tp),
            () => api(m, u, 0, t0, tp)
          );
        } catch (e) {}
      }
      return p;
    };
  }

  function wrapXhr() {
    const X = XMLHttpRequest.prototype; // (every browser that parses this file has it)
    const open = X.open, send = X.send;
    // (ended when the event was fired: a page's own onreadystatechange, which runs first, is not in the duration)
    function xhrDone(e) {
      const c = this._vrum;
      if (this.readyState == 4 && c[3]) {
        c[2] = this.status;
        c[5] = e.timeStamp;
        api(...c);
        c[3] = 0;
      }
    }
    // Per request: [method, URL, status, start, traceparent, end], kept on the XHR object as `_vrum` (its start
    // is 0 once recorded); one listener per XHR object, however often it is reopened (the browser ignores adding
    // the same listener twice). Recorded at readyState 4, which fires before load/loadend, so a page that reopens
    // the XHR in onload does not confuse it. One reopened in an onreadystatechange set before the first send
    // runs before that listener, at the same event: its finished request is recorded here first.
    X.open = function (m, u) {
      try {
        this._vrum && xhrDone.call(this, w.event || 0); // (no event: ends now)
        this._vrum = [String(m).toUpperCase(), String(u)];
      } catch (e) {}
      return open.apply(this, arguments);
    };
    X.send = function () {
      const x = this, r = x._vrum;
      try {
        if (r) {
          cfg.traceOrigins[0] && info(r[1]).t && x.setRequestHeader('traceparent', (r[4] = traceparent()));
          r[3] = now();
          x.addEventListener('readystatechange', xhrDone);
        }
      } catch (e) {}
      return send.apply(this, arguments);
    };
  }

  function error(x, msg, src, kind) {
    msg = String((x && x.message) || msg || x).slice(0, 1000);
    const key = kind + msg + src;
    if (seen[key] || errCount >= cfg.maxErrors) return;
    seen[key] = 1;
    errCount++;
    emit('error', { error: { message: msg, stack: unq(String((x && x.stack) || '').slice(0, 4000)), source: unq(src), kind } });
  }

  // Soft page view: URL changed through the history API; the view that ends reports its vitals under its own
  // page, and per-page caps start again.
  const route = safe(() => {
    const u = info(loc.href).s;
    if (u == pageUrl) return;
    const from = pageUrl;
    drain();
    report();
    view();
    referrer = pageUrl;
    pageUrl = u;
    common = 0;
    seen = {};
    errCount = resCount = taskCount = 0;
    emit('route_change', { route: { from, to: u } });
  });

  function wrapHistory() {
    const h = history;
    ['pushState', 'replaceState'].forEach((k) => {
      const o = h[k];
      h[k] = function () {
        const r = o.apply(this, arguments);
        route();
        return r;
      };
    });
    on(w, 'popstate', route);
  }

  function start() {
    const x = new URL(cfg.endpoint, loc.href);
    endpointKeyless = x.href;
    // the site key in the query string: a beacon cannot carry a header
    cfg.apiKey && x.searchParams.set('api_key', cfg.apiKey);
    endpointUrl = x.href;
    pageUrl = info(loc.href).s;
    referrer = d.referrer ? info(d.referrer).s : '';
    // read at start and on resize: innerWidth can force a layout when read in the middle of the page's work
    const size = () => {
      common = 0;
      viewport = { width: innerWidth, height: innerHeight };
    };
    size();
    on(w, 'resize', size);
    // Once per hiding. Leaving a page fires pagehide while it is still visible, then visibilitychange to hidden
    // (HTML's unload; a tab switch fires the second alone): that one does the work. pagehide does it only for a
    // page already hidden (a background tab closed), which gets no visibilitychange. A second pass in the same
    // unload would find the keepalive budget taken by the first beacon, and its beacon refused.
    const hide = safe(() => {
      if (d.visibilityState == 'hidden') {
        store();
        if (report) {
          report();
          beaconAll();
        }
      }
    });
    on(w, 'visibilitychange', hide, true);
    on(w, 'pagehide', hide, true);
    if (!session().sampled) return;
    report = vitals();
    // Back/forward-cache restore: a new page view, whose FCP and LCP are the time to the next frame and TTFB 0
    // (web-vitals semantics); CLS and INP start again.
    on(w, 'pageshow', safe((e) => {
      if (e.persisted) {
        view();
        emit('page_load', { metrics: {}, navigation_type: 'back-forward-cache' });
        vital('TTFB', 0);
        requestAnimationFrame(() => requestAnimationFrame(safe(() => ['FCP', 'LCP'].forEach((m) => vital(m, now() - e.timeStamp)))));
      }
    }));
    const load = safe(() => idle(safe(() => pageLoad(0))));
    d.readyState == 'complete' ? load() : on(w, 'load', load);
    observe('longtask', (e) => taskCount++ < cfg.maxLongTasks && emit('long_task', { duration: r1(e.duration) }));
    wrapFetch();
    wrapXhr();
    wrapHistory();
    on(w, 'error', safe((e) => error(e.error, e.message, e.filename ? e.filename + ':' + e.lineno + ':' + e.colno : '', 'error')));
    on(w, 'unhandledrejection', safe((e) => error(e.reason, 0, '', 'unhandledrejection')));
    on(d, 'click', safe((e) => {
      const el = e.target && e.target.closest && e.target.closest('[data-rum]');
      if (!el) return;
      const t0 = now();
      // Measured after the page's own handlers for this click have run.
      setTimeout(safe(() => emit('user_interaction', { interaction: { action: 'click', target: el.dataset.rum || sel(el), duration: r1(now() - t0) } })));
    }), true);
  }

  const init = safe((o) => {
    if (started || !o || !o.endpoint) return false;
    cfg = { ...DEFAULTS, ...o };
    // Options as the script tag gives them (strings) or as code may: a number that is not one (or negative, or
    // undefined) is its default, as a NaN bound was no bound (a queue that never dropped, retries without pause);
    // a list may be a comma-separated string; "false" is false.
    for (const k in DEFAULTS) {
      const v = cfg[k], d0 = DEFAULTS[k];
      cfg[k] = d0 > 0 ? (v >= 0 ? +v : d0) : d0 ? String(v || '').split(',').filter(String) : typeof v == 'string' ? v != 'false' : v;
    }
    started = 1;
    start();
    return true;
  });

  w.VantageRUM = {
    init,
    track: safe((name, props) => {
      const p = {};
      Object.keys(props || {}).slice(0, 20).forEach((k) => {
        const v = props[k];
        // (a BigInt as a string: JSON cannot write one, and its batch would throw in every cut after it, so that
        // nothing was sent again)
        if (v == null || typeof v != 'object') p[k.slice(0, 64)] = typeof v == 'string' ? v.slice(0, 256) : typeof v == 'bigint' ? '' + v : v;
      });
      emit('custom', { name: String(name).slice(0, 128), props: p });
    }),
    trackError: safe((e) => error(e, 0, '', 'manual')),
    setUser: safe((id) => {
      userId = id != null ? String(id).slice(0, 128) : undefined;
      common = 0;
    }),
    flush: safe(flush),
  };

  // data-endpoint, data-api-key and any other option as data-kebab-case (lists comma-separated)
  script && init({ ...script.dataset });
})();
