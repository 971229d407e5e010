// run.mjs: main-thread cost of rum-sdk.js in headless Chromium, beside Google's web-vitals (issue #21).
//
//   node bench/sdk-main-thread/run.mjs [--rounds 12] [--src] [--sdk FILE] [--before FILE[,FILE...]] [--attribute]
//                                       [--profile [--variant sdk+trace+gzip] [--hide-only] [--reps N]] [--playwright]
//                                       [--only SCENARIO[,...]] [--variants sdk,before,...] [--paired-blocks 4] [--paired-calls 50]
//   (--before NAME=FILE names a build's variant; a NAME with "+trace" or "+gzip" gets those options)
//
// Variants of one small shop page (shop.html): bare, web-vitals (onLCP/CLS/INP/FCP/TTFB, one sendBeacon on
// hide), rum-sdk.js with default options, and rum-sdk.js with traceOrigins + gzip (each of the two alone as well,
// variants sdk+trace and sdk+gzip, when --variants names them). Each job runs in a fresh
// browser context; the jobs of a round run in shuffled order. Main-thread time is CDP Performance.getMetrics
// (ScriptDuration, TaskDuration) on thread CPU time (Performance.enable {timeDomain: 'threadTicks'}).
// Scenarios:
//   shop     load, six fetch + json(), a pushState route change, a click, page hidden: script and task time
//   fetch    200 fetch + json() in a row, then hide: main-thread time per call (also 'xhr' with XMLHttpRequest)
//   paired   in one SDK page, blocks of 50 calls through the page's (wrapped) fetch/XHR alternate with blocks
//            through the browser's own methods: the SDK's cost per call with the process and the load the same
//   burst    500 events (custom, clicks, fetch, XHR, errors, route changes) against an endpoint that answers
//            after 10 s (so the SDK's queue and outbox are full), then hide: the page-hide work with a full
//            queue, and from a Chromium trace the longest task the SDK adds
// --src serves the unminified js-sdk/src/rum-sdk.js instead of dist/rum-sdk.min.js (--sdk another build, e.g.
// main's, for a before/after); --profile takes a CDP CPU profile of the unminified SDK through all scenarios and
// prints where its time goes.
// --attribute runs the paired scenarios alone under a Chromium trace and splits the wrapped blocks' extra
// main-thread time by the kind of task it was spent in (the SDK's own callbacks, network answers, the rest), and
// by the tasks' outermost trace events.
import http from 'node:http';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { HERE, SDK, WEB_VITALS, launchChromium, listen, args, opt, median } from './common.mjs';

const ROUNDS = +opt('--rounds', 12);
const PROFILE = args.includes('--profile');
// --profile --hide-only: the burst's page-hide task alone, --reps N times (each a fresh page)
const HIDE_ONLY = args.includes('--hide-only'), REPS = +opt('--reps', 1);
const SRC = args.includes('--src') || PROFILE;
const ATTRIBUTE = args.includes('--attribute');
const CALLS = 200;
// paired per-call measurement: blocks per arm, calls per block (one full batch of the SDK's default batchSize)
// (--paired-calls: a build with a larger batchSize needs blocks of that many calls for its batch to be cut inside
// the block's window)
const PAIRED_BLOCKS = +opt('--paired-blocks', 4), PAIRED_CALLS = +opt('--paired-calls', 50);
let flip = 0;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// The collector the SDK and web-vitals report to (another origin, as in production): answers at once, or after
// 10 s for the burst's `?slow=1` endpoint. It only counts what it receives: requests, and the events in them.
let received = 0, eventsReceived = 0;
const sink = http.createServer((req, res) => {
  const cors = { 'access-control-allow-origin': req.headers.origin || '*', 'access-control-allow-headers': 'content-type, content-encoding', 'access-control-max-age': '600' };
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    if (req.method === 'POST') {
      received++;
      try {
        eventsReceived += JSON.parse(Buffer.concat(chunks)).events.length;
      } catch (e) {} // (gzip, or web-vitals' own array)
    }
    const answer = () => {
      res.writeHead(req.method === 'OPTIONS' ? 204 : 202, cors);
      res.end();
    };
    req.url.includes('slow=1') && req.method === 'POST' ? setTimeout(answer, 10000).unref() : answer();
  });
});
const SINK = await listen(sink);

const PNG = fs.readFileSync(path.join(HERE, 'photo.png'));
const SHOP = fs.readFileSync(path.join(HERE, 'shop.html'), 'utf8');
const sdkFile = path.resolve(opt('--sdk', SRC ? path.join(SDK, 'src', 'rum-sdk.js') : path.join(SDK, 'dist', 'rum-sdk.min.js')));
// --before FILE[,FILE...]: other builds of the SDK (e.g. main's dist, or experiments) measured as more variants,
// default options: 'before', 'before2', ..., or the name given as NAME=FILE (decompose.mjs names its builds)
const BUILDS = opt('--before') ? opt('--before').split(',').map((f, i) => f.match(/^([\w+-]+)=(.*)$/) || [, 'before' + (i ? i + 1 : ''), f]) : [];
const BEFORES = BUILDS.map((b) => path.resolve(b[2]));
const beforeName = (i) => BUILDS[i][1];
const beforeList = BEFORES.length ? `, before: ${BEFORES.map((f, i) => `${BEFORES.length > 1 ? beforeName(i) + ' ' : ''}${path.relative(process.cwd(), f)}`).join(', ')}` : '';
const wvVersion = JSON.parse(fs.readFileSync(path.join(SDK, 'node_modules', 'web-vitals', 'package.json'), 'utf8')).version;

let ORIGIN;
// An SDK variant's script tag: default options, with traceOrigins (the page's own origin) when its name has
// "+trace" and gzip when it has "+gzip" (a --before build named NAME+trace=FILE gets them too).
const sdkTag = (src, name, slow) =>
  `<script src="${src}" data-endpoint="${SINK}/v1/events${slow ? '?slow=1' : ''}" data-api-key="bench-key"${name.includes('+trace') ? ` data-trace-origins="${ORIGIN}"` : ''}${
    name.includes('+gzip') ? ' data-gzip="true"' : ''
  } defer></script>`;
const VARIANTS = {
  bare: () => '',
  // web-vitals as its README shows it: metrics queued, one sendBeacon when the page is hidden.
  'web-vitals': () => `<script src="/web-vitals.js"></script>
<script>
  (function () {
    var queue = new Set();
    var add = function (m) { queue.add(m); };
    webVitals.onLCP(add); webVitals.onCLS(add); webVitals.onINP(add); webVitals.onFCP(add); webVitals.onTTFB(add);
    addEventListener('visibilitychange', function () {
      if (document.visibilityState === 'hidden' && queue.size) {
        navigator.sendBeacon('${SINK}/wv', JSON.stringify([...queue]));
        queue.clear();
      }
    });
  })();
</script>`,
  sdk: (slow) => sdkTag('/rum-sdk.js', 'sdk', slow),
  'sdk+trace+gzip': (slow) => sdkTag('/rum-sdk.js', 'sdk+trace+gzip', slow),
  // each of the two options alone, to split what they cost (only when named with --variants)
  'sdk+trace': (slow) => sdkTag('/rum-sdk.js', 'sdk+trace', slow),
  'sdk+gzip': (slow) => sdkTag('/rum-sdk.js', 'sdk+gzip', slow),
};
const OPT_IN = ['sdk+trace', 'sdk+gzip'];
BEFORES.forEach((f, i) => (VARIANTS[beforeName(i)] = (slow) => sdkTag(`/rum-sdk-${beforeName(i)}.js`, beforeName(i), slow)));
const SDKS = Object.keys(VARIANTS).filter((v) => v !== 'bare' && v !== 'web-vitals');
// --only SCENARIO[,SCENARIO]: those scenarios' jobs (a quicker look; only their summaries are printed);
// --variants a,b: only those variants' jobs, and the bare page's
const picked = (v, s) =>
  (!opt('--only') || opt('--only').split(',').includes(s)) && (opt('--variants') ? v === 'bare' || opt('--variants').split(',').includes(v) : !OPT_IN.includes(v));

const site = http.createServer((req, res) => {
  const u = new URL(req.url, 'http://x');
  const send = (type, body) => {
    res.writeHead(200, { 'content-type': type, 'cache-control': 'no-store' });
    res.end(body);
  };
  if (u.pathname === '/rum-sdk.js') return send('text/javascript', fs.readFileSync(sdkFile));
  const before = BEFORES.findIndex((f, i) => u.pathname === `/rum-sdk-${beforeName(i)}.js`);
  if (before >= 0) return send('text/javascript', fs.readFileSync(BEFORES[before]));
  if (u.pathname === '/web-vitals.js') return send('text/javascript', fs.readFileSync(WEB_VITALS));
  if (u.pathname === '/img/photo.png') return send('image/png', PNG);
  if (u.pathname.startsWith('/api/item/')) return send('application/json', JSON.stringify({ id: u.pathname.slice(10), name: 'Item ' + u.pathname.slice(10), price: 9.99, tags: ['a', 'b'] }));
  if (u.pathname === '/favicon.ico') return send('image/x-icon', '');
  const variant = VARIANTS[u.searchParams.get('v')];
  if (!variant) return res.writeHead(404).end();
  send('text/html; charset=utf-8', SHOP.replace('<!--VARIANT-->', variant(u.searchParams.get('slow') === '1')));
});
ORIGIN = await listen(site);

const profileDir = fs.mkdtempSync(path.join(os.tmpdir(), 'vantage-sdk-bench-'));
const browser = await launchChromium();
const chromiumVersion = browser.version();

async function metrics(cdp) {
  const { metrics } = await cdp.send('Performance.getMetrics');
  const m = Object.fromEntries(metrics.map((x) => [x.name, x.value]));
  return { script: m.ScriptDuration * 1000, task: m.TaskDuration * 1000 };
}
const diff = (a, b) => ({ script: b.script - a.script, task: b.task - a.task });

// Page hide: headless Chromium keeps a page visible whatever happens to its window or tabs, so the bench does
// what the browser does when the user leaves the page (HTML's "unload a document"; a tab switch is its second
// half alone): pagehide fires at the window while the page is still visible, then visibilityState becomes
// 'hidden' and visibilitychange fires at the document, as one task of their own. (Before session 17 the bench
// fired them the other way round, with the page already hidden at pagehide, which no browser does.)
// Returns the main-thread time of that task (thread CPU time, read just before and just after it) and the wall
// time its listeners took (performance.now() around the two dispatches).
async function hide(page, cdp) {
  const before = await metrics(cdp);
  const wall = await page.evaluate(
    () =>
      new Promise((resolve) =>
        setTimeout(() => {
          const t0 = performance.now();
          window.dispatchEvent(new PageTransitionEvent('pagehide', { persisted: false }));
          Object.defineProperty(document, 'visibilityState', { value: 'hidden', configurable: true });
          Object.defineProperty(document, 'hidden', { value: true, configurable: true });
          document.dispatchEvent(new Event('visibilitychange', { bubbles: true }));
          resolve(performance.now() - t0);
        })
      )
  );
  return { cpu: diff(before, await metrics(cdp)).task, wall };
}

// Trace events: a main-thread task, and a call into the SDK's script (this build's or --before's).
const isTask = (e) => e.name === 'RunTask' || e.name === 'ThreadControllerImpl::RunTask';
const isSdk = (e) => e.name === 'FunctionCall' && /\/rum-sdk(-[\w+-]+)?\.js/.test((e.args.data && e.args.data.url) || '');

// The longest task the SDK adds, from a Chromium trace: per main-thread task, the time of the SDK's own
// callbacks (outermost FunctionCall events in the SDK's script); a task that runs nothing but SDK callbacks
// (its timers, idle callbacks, observers, listeners) counts whole. Wall time (`dur`), what the page's user
// waits, and thread CPU time (`tdur`), what the SDK's work took: on a loaded machine the renderer's thread is
// sometimes descheduled in the middle of a task, which lengthens its wall time and not its CPU time.
function longestSdkTask(events) {
  const first = events.find(isSdk);
  if (!first) return { longest: 0, longestCpu: 0, tasks: 0, over5: 0, over5Cpu: 0, what: '' };
  const thread = events.filter((e) => e.pid === first.pid && e.tid === first.tid && e.ph === 'X');
  const tasks = thread.filter(isTask).sort((a, b) => a.ts - b.ts);
  const calls = thread.filter((e) => e.name === 'FunctionCall').sort((a, b) => a.ts - b.ts || b.dur - a.dur);
  const cpu = (e) => e.tdur ?? e.dur;
  let ci = 0, longest = 0, longestCpu = 0, n = 0, over5 = 0, over5Cpu = 0, what = '';
  for (const t of tasks) {
    while (ci < calls.length && calls[ci].ts < t.ts) ci++;
    let sdk = 0, sdkCpu = 0, other = 0, end = -1, names = [];
    for (let j = ci; j < calls.length && calls[j].ts <= t.ts + t.dur; j++) {
      const c = calls[j];
      if (c.ts < end) continue; // nested in an outer call already counted
      end = c.ts + c.dur;
      if (isSdk(c)) {
        sdk += c.dur;
        sdkCpu += cpu(c);
        names.push(`${c.args.data.functionName || '(anonymous)'}:${c.args.data.lineNumber}`);
      } else other += c.dur;
    }
    if (!sdk) continue;
    const ms = (other ? sdk : t.dur) / 1000, msCpu = (other ? sdkCpu : cpu(t)) / 1000;
    n++;
    if (ms > 5) over5++;
    if (msCpu > 5) over5Cpu++;
    longestCpu = Math.max(longestCpu, msCpu);
    if (ms > longest) {
      longest = ms;
      what = `${names.slice(0, 3).join(', ')}${other ? ' (beside the page\'s own calls)' : ''}`;
    }
  }
  return { longest, longestCpu, tasks: n, over5, over5Cpu, what };
}

// --attribute: the main-thread task time of the paired blocks by arm and by kind of task, from a trace with a
// console.timeStamp at each end of each block's window. Kinds, by a task's outermost events: `sdk` runs nothing but
// the SDK's callbacks (its idle callbacks cutting and sending batches, its timers), `network` handles a network
// answer or message (the page's responses and the continuations it runs, the wrapper's `then` among them; the
// SDK's POST answers), `other` is the rest (garbage collection, the bench's own calls).
const KINDS = ['sdk', 'network', 'other'];
function taskKinds(events) {
  const marks = events.filter((e) => e.name === 'TimeStamp').sort((a, b) => a.ts - b.ts);
  const thread = events.filter((e) => e.pid === marks[0].pid && e.tid === marks[0].tid && e.ph === 'X');
  const tasks = thread.filter(isTask).sort((a, b) => a.ts - b.ts);
  const inner = thread.filter((e) => !isTask(e)).sort((a, b) => a.ts - b.ts || b.dur - a.dur);
  const out = Object.fromEntries(['bare', 'page'].flatMap((a) => KINDS.map((k) => [`${a}:${k}`, 0])));
  // the same time by the task's outermost events' names (an SDK idle callback or timer prefixed "sdk "), and what
  // the tasks spent outside any of them, per arm: `byName['page\tFireIdleCallback']` in ms
  const byName = {};
  const add = (arm, name, ms) => (byName[`${arm}\t${name}`] = (byName[`${arm}\t${name}`] || 0) + ms);
  // (tasks and their events in time order, so each task's events are found from where the last task's began)
  let ci = 0;
  for (let i = 0; i + 1 < marks.length; i += 2) {
    const arm = marks[i].args.data.message, t0 = marks[i].ts, t1 = marks[i + 1].ts;
    for (const t of tasks) {
      if (t.ts < t0 || t.ts >= t1) continue;
      while (ci < inner.length && inner[ci].ts < t.ts) ci++;
      let end = -1, sdk = 0, net = 0, rest = 0, covered = 0;
      for (let j = ci; j < inner.length && inner[j].ts <= t.ts + t.dur; j++) {
        const c = inner[j];
        if (c.ts < end) continue; // nested in an outer event already counted
        end = c.ts + c.dur;
        // an idle callback or timer is the SDK's when a call into its script runs inside it
        let own = isSdk(c);
        for (let k = j + 1; !own && (c.name === 'FireIdleCallback' || c.name === 'TimerFire') && k < inner.length && inner[k].ts <= end; k++) own = isSdk(inner[k]);
        if (own) sdk++;
        else if (/SimpleWatcher|mojo|Resource/i.test(c.name)) net++;
        else rest++;
        const ms = (c.tdur ?? c.dur) / 1000;
        add(arm, (own ? 'sdk ' : '') + c.name, ms);
        covered += ms;
      }
      const k = sdk && !net && !rest ? 'sdk' : net ? 'network' : 'other', ms = (t.tdur ?? t.dur) / 1000;
      out[`${arm}:${k}`] += ms;
      add(arm, '(the task itself)', ms - covered);
    }
  }
  return { ...out, byName };
}

// A Chromium trace of the page's session: `startTrace` starts it with these categories and returns a function that
// ends it and resolves to its events.
async function startTrace(cdp, categories) {
  const events = [];
  cdp.on('Tracing.dataCollected', (e) => events.push(...e.value));
  await cdp.send('Tracing.start', { categories, transferMode: 'ReportEvents' });
  return async () => {
    const done = new Promise((r) => cdp.once('Tracing.tracingComplete', r));
    await cdp.send('Tracing.end');
    await done;
    return events;
  };
}

async function job(variant, scenario, { trace, profile } = {}) {
  const context = await browser.newContext();
  const page = await context.newPage();
  const cdp = await context.newCDPSession(page);
  await cdp.send('Performance.enable', { timeDomain: 'threadTicks' });
  const errors = [];
  page.on('console', (m) => m.type() === 'error' && !/burst error|reported/.test(m.text()) && errors.push(m.text()));
  const startProfile = async () => {
    await cdp.send('Profiler.enable');
    await cdp.send('Profiler.setSamplingInterval', { interval: 50 });
    await cdp.send('Profiler.start');
  };
  if (profile && !HIDE_ONLY) await startProfile();
  const out = {};
  const slow = scenario === 'burst' ? '&slow=1' : '';
  const start = await metrics(cdp);
  await page.goto(`${ORIGIN}/shop?v=${encodeURIComponent(variant)}${slow}`, { waitUntil: 'load' });
  if (scenario === 'shop') {
    await page.evaluate(() => window.bench.shop());
    await page.click('#buy');
    await sleep(500);
    const h = await hide(page, cdp);
    await sleep(300);
    Object.assign(out, diff(start, await metrics(cdp)), { hide: h.cpu, hideWall: h.wall });
  } else if (scenario === 'fetch' || scenario === 'xhr') {
    await sleep(1000); // load-time work (idle callbacks, page_load) out of the way
    const before = await metrics(cdp);
    await page.evaluate(([k, n]) => window.bench.calls(k, n), [scenario, CALLS]);
    await sleep(300);
    await hide(page, cdp);
    await sleep(300);
    out.perCall = diff(before, await metrics(cdp)).task / CALLS;
  } else if (scenario === 'paired-fetch' || scenario === 'paired-xhr') {
    // The same page makes blocks of calls through the browser's own fetch/XHR (bare) and through the page's
    // (wrapped by the SDK when it is there), alternating, so that the process, its caches and the machine's load
    // are the same for both arms. A block is one full batch (batchSize 50), and the time after it lets the SDK's
    // idle work (cutting and sending that batch, reading its answer) land in the block's window.
    await sleep(1000);
    const kind = scenario.slice(7), per = { bare: 0, page: 0 };
    const stopTrace = trace && (await startTrace(cdp, 'devtools.timeline,toplevel'));
    for (let b = 0; b < PAIRED_BLOCKS * 2; b++) {
      const bare = (b + flip) % 2 === 0;
      // (a trace marker at each end of the block's window, for --attribute)
      if (trace) await page.evaluate((x) => console.timeStamp(x), bare ? 'bare' : 'page');
      const before = await metrics(cdp);
      await page.evaluate(([k, n, x]) => window.bench.calls(k, n, x), [kind, PAIRED_CALLS, bare]);
      await sleep(300);
      per[bare ? 'bare' : 'page'] += diff(before, await metrics(cdp)).task;
      if (trace) await page.evaluate(() => console.timeStamp('end'));
    }
    out.overBare = per.page / per.bare - 1;
    out.perCallBare = per.bare / (PAIRED_BLOCKS * PAIRED_CALLS);
    if (stopTrace) Object.assign(out, taskKinds(await stopTrace()));
  } else if (scenario === 'burst') {
    await sleep(1000);
    const stopTrace = trace && (await startTrace(cdp, 'devtools.timeline,disabled-by-default-devtools.timeline,toplevel'));
    await page.evaluate(() => window.bench.burst());
    await sleep(500);
    if (profile && HIDE_ONLY) await startProfile();
    const sent = eventsReceived;
    const h = await hide(page, cdp);
    Object.assign(out, { hide: h.cpu, hideWall: h.wall });
    await sleep(300);
    out.hideEvents = eventsReceived - sent; // what the hide's beacon carried (a beacon is never compressed)
    if (stopTrace) Object.assign(out, longestSdkTask(await stopTrace()));
  }
  if (profile) out.profile = (await cdp.send('Profiler.stop')).profile;
  if (errors.length) out.errors = errors;
  await context.close();
  return out;
}

function printProfile(profiles, names) {
  // Self time per SDK function (line) over all scenarios, and the SDK's total per scenario: samples with an SDK
  // frame on the stack, less the page's own fetch/XHR/history calls passing through the SDK's wrappers.
  const WRAPPERS = new Set(['w.fetch', 'X.send', 'X.open', 'h.<computed>']);
  const self = new Map();
  const totals = [], tops = [];
  for (const p of profiles) {
    const byId = new Map(p.nodes.map((n) => [n.id, n]));
    const parent = new Map();
    for (const n of p.nodes) for (const c of n.children || []) parent.set(c, n.id);
    const isSdkNode = (id) => byId.get(id).callFrame.url.endsWith('/rum-sdk.js');
    // 1 when the deepest SDK frame on the stack is not one of the wrappers (whose self time is the native
    // fetch/XHR/pushState the page asked for)
    const owner = (id) => {
      for (let x = id; x !== undefined; x = parent.get(x)) if (isSdkNode(x)) return WRAPPERS.has(byId.get(x).callFrame.functionName) ? 0 : 1;
      return 0;
    };
    const memo = new Map(), mine = new Map();
    let total = 0;
    p.samples.forEach((id, i) => {
      const dt = (p.timeDeltas[i + 1] || 0) / 1000;
      if (!memo.has(id)) memo.set(id, owner(id));
      if (!memo.get(id)) return;
      total += dt;
      const f = byId.get(id).callFrame;
      const k = `${f.functionName || '(anonymous)'} ${isSdkNode(id) ? 'rum-sdk.js:' + (f.lineNumber + 1) : f.url ? path.basename(f.url) : '(native)'}`;
      self.set(k, (self.get(k) || 0) + dt);
      mine.set(k, (mine.get(k) || 0) + dt);
    });
    totals.push(total);
    tops.push([...mine].sort((a, b) => b[1] - a[1]).slice(0, 6).map(([k, v]) => `${k} ${v.toFixed(1)}`).join('; '));
  }
  console.log(`\nCPU profile of the unminified SDK (50 us sampling; the page's own calls through the SDK's wrappers excluded)`);
  console.log(`SDK time per scenario: ${names.map((n, i) => `${n} ${totals[i].toFixed(1)} ms`).join(', ')}; self time:`);
  for (const [k, v] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 25)) console.log(`  ${v.toFixed(2).padStart(8)} ms  ${k}`);
  names.forEach((n, i) => console.log(`${n}: ${tops[i]}`));
}

const fmt = (x, d = 1) => (x >= 0 ? '+' : '') + x.toFixed(d);
// what a per-call scenario ('fetch' or 'xhr') makes, in the tables
const callName = (s) => (s === 'fetch' ? 'fetch + json()' : 'XHR + JSON.parse');

try {
  if (PROFILE) {
    const scenarios = HIDE_ONLY ? ['burst'] : opt('--only') ? opt('--only').split(',') : ['shop', 'fetch', 'xhr', 'burst'], profiles = [], names = [];
    for (const s of scenarios) {
      const label = HIDE_ONLY ? 'hide' : s;
      for (let k = 0; k < REPS; k++) {
        profiles.push((await job(opt('--variant', 'sdk'), s, { profile: true })).profile);
        names.push(REPS > 1 ? `${label}#${k + 1}` : label);
      }
    }
    printProfile(profiles, names);
  } else if (ATTRIBUTE) {
    const res = {};
    console.log(`rum-sdk main-thread benchmark, --attribute: Chromium ${chromiumVersion}, SDK ${path.relative(process.cwd(), sdkFile)}${beforeList}; ${ROUNDS} pages per variant and kind, ${os.cpus().length} CPUs, load ${os.loadavg()[0].toFixed(1)}`);
    for (let r = 0; r < ROUNDS; r++) {
      const order = ['web-vitals', ...SDKS].flatMap((v) => ['paired-fetch', 'paired-xhr'].filter((s) => picked(v, s)).map((s) => [Math.random(), v, s])).sort((a, b) => a[0] - b[0]);
      for (const [, v, s] of order) {
        flip = r % 2;
        const o = await job(v, s, { trace: true });
        for (const [k, x] of Object.entries(o)) ((res[`${v}/${s}/${k}`] ||= [])).push(x);
      }
      process.stdout.write(`  round ${r + 1}/${ROUNDS} done\r`);
    }
    const calls = PAIRED_BLOCKS * PAIRED_CALLS;
    console.log(`\npaired blocks under a trace: the wrapped arm's extra main-thread task time per call over the bare arm's, by kind of task (medians over ${ROUNDS} pages; the trace itself slows both arms)`);
    console.log(`  ${''.padEnd(34)} ${'bare'.padStart(8)} ${'extra'.padStart(14)} ${KINDS.map((k) => k.padStart(16)).join('')}`);
    for (const s of ['fetch', 'xhr']) {
      for (const v of ['web-vitals', ...SDKS]) {
        const pages = res[`${v}/paired-${s}/overBare`] || [];
        if (!pages.length) continue; // (not picked)
        const arm = (a, k) => res[`${v}/paired-${s}/${a}:${k}`];
        const bare = median(pages.map((_, i) => KINDS.reduce((t, k) => t + arm('bare', k)[i], 0))) / calls;
        const by = KINDS.map((k) => median(pages.map((_, i) => arm('page', k)[i] - arm('bare', k)[i])) / calls);
        const extra = median(pages.map((_, i) => KINDS.reduce((t, k) => t + arm('page', k)[i] - arm('bare', k)[i], 0))) / calls;
        const cell = (x) => `${fmt(x * 1000, 0)} us ${fmt((x / bare) * 100)}%`.padStart(16);
        console.log(`  ${callName(s).padEnd(17)} ${v.padEnd(16)} ${(bare * 1000).toFixed(0).padStart(5)} us ${cell(extra).padStart(14)}${by.map(cell).join('')}`);
      }
    }
    // The same extra by the tasks' outermost events: medians over the pages of the wrapped arm's time less the bare
    // arm's, per call (a name missing from a page's arm counts 0 there); the six largest either way.
    console.log(`\nthe extra per call by the tasks' outermost events ("sdk ": the SDK's idle callbacks and timers; "(the task itself)": time in no traced event)`);
    for (const s of ['fetch', 'xhr']) {
      for (const v of SDKS) {
        const pages = res[`${v}/paired-${s}/byName`] || [];
        if (!pages.length) continue;
        const names = new Set(pages.flatMap((p) => Object.keys(p).map((k) => k.split('\t')[1])));
        const rows = [...names].map((n) => [n, median(pages.map((p) => ((p[`page\t${n}`] || 0) - (p[`bare\t${n}`] || 0)) / calls))]);
        rows.sort((a, b) => Math.abs(b[1]) - Math.abs(a[1]));
        console.log(`  ${callName(s).padEnd(17)} ${v.padEnd(16)} ${rows.slice(0, 6).map(([n, x]) => `${n} ${fmt(x * 1000, 1)} us`).join(', ')}`);
      }
    }
  } else {
    const jobs = [];
    for (const v of Object.keys(VARIANTS)) for (const s of ['shop', 'fetch', 'xhr']) jobs.push([v, s]);
    for (const v of ['bare', ...SDKS]) jobs.push([v, 'burst']);
    // web-vitals wraps nothing, so its paired figure is the method's own zero
    for (const v of ['web-vitals', ...SDKS]) for (const s of ['paired-fetch', 'paired-xhr']) jobs.push([v, s]);
    jobs.splice(0, jobs.length, ...jobs.filter(([v, s]) => picked(v, s)));
    const res = {};
    console.log(`rum-sdk main-thread benchmark: Chromium ${chromiumVersion}, web-vitals ${wvVersion}, SDK ${path.relative(process.cwd(), sdkFile)}${beforeList}`);
    console.log(`${ROUNDS} rounds of ${jobs.length} jobs in shuffled order, fresh browser context each; ${os.cpus().length} CPUs, load ${os.loadavg()[0].toFixed(1)}`);
    for (let r = 0; r < ROUNDS; r++) {
      const order = jobs.map((j) => [Math.random(), j]).sort((a, b) => a[0] - b[0]).map((x) => x[1]);
      for (const [v, s] of order) {
        flip = r % 2; // which arm of the paired measurement goes first
        const o = await job(v, s, { trace: s === 'burst' && v !== 'bare' });
        if (o.errors) console.log(`  ${v} ${s}: console errors: ${o.errors.slice(0, 3).join(' | ')}`);
        for (const [k, x] of Object.entries(o)) ((res[`${v}/${s}/${k}`] ||= [])).push(x);
      }
      process.stdout.write(`  round ${r + 1}/${ROUNDS} done\r`);
    }
    const m = (v, s, k) => median(res[`${v}/${s}/${k}`] || [NaN]);
    // the variants of a scenario that ran (the summary of a scenario that did not is left out)
    const ran = (s, vs) => vs.filter((v) => jobs.some(([jv, js]) => jv === v && js === s));
    const bare = { script: m('bare', 'shop', 'script'), task: m('bare', 'shop', 'task') };
    const wv = { script: m('web-vitals', 'shop', 'script') - bare.script, task: m('web-vitals', 'shop', 'task') - bare.task };
    if (ran('shop', ['bare']).length) {
      console.log(`\nload to hide (shop page), medians of thread CPU time; the bare page: script ${bare.script.toFixed(1)} ms, task ${bare.task.toFixed(1)} ms`);
      console.log(`  ${'on top of the bare page'.padEnd(20)} ${'script'.padStart(9)} ${'vs wv'.padStart(6)} ${'task'.padStart(9)} ${'vs wv'.padStart(6)} ${'hide'.padStart(8)} ${'(wall)'.padStart(8)}`);
    }
    for (const v of ran('shop', ['web-vitals', ...SDKS])) {
      const sc = m(v, 'shop', 'script') - bare.script, tk = m(v, 'shop', 'task') - bare.task, hd = m(v, 'shop', 'hide') - m('bare', 'shop', 'hide');
      console.log(`  ${v.padEnd(20)} ${fmt(sc).padStart(6)} ms ${(sc / wv.script).toFixed(2).padStart(5)}x ${fmt(tk).padStart(6)} ms ${(tk / wv.task).toFixed(2).padStart(5)}x ${fmt(hd, 2).padStart(5)} ms ${m(v, 'shop', 'hideWall').toFixed(2).padStart(5)} ms`);
    }
    for (const s of ['fetch', 'xhr'].filter((s) => ran(s, ['bare']).length)) {
      const b = m('bare', s, 'perCall');
      console.log(`\nper ${callName(s)} (${CALLS} in a row, then hide), main-thread task time per call; bare page ${(b * 1000).toFixed(0)} us`);
      for (const v of ran(s, ['web-vitals', ...SDKS])) {
        const x = m(v, s, 'perCall');
        console.log(`  ${v.padEnd(20)} ${(x * 1000).toFixed(0).padStart(6)} us  ${fmt(((x - b) / b) * 100)}% over bare (${fmt((x - b) * 1000, 0)} us)`);
      }
    }
    if (ran('paired-fetch', ['web-vitals', ...SDKS]).length + ran('paired-xhr', ['web-vitals', ...SDKS]).length)
      console.log(`\npaired, in one page: ${PAIRED_BLOCKS} blocks of ${PAIRED_CALLS} calls through the page's fetch/XHR (wrapped by the SDK) against as many through the browser's own, alternating; task time, median over ${ROUNDS} pages`);
    for (const s of ['fetch', 'xhr']) {
      for (const v of ran(`paired-${s}`, ['web-vitals', ...SDKS])) {
        const o = res[`${v}/paired-${s}/overBare`] || [NaN], b = m(v, `paired-${s}`, 'perCallBare');
        console.log(`  ${callName(s).padEnd(17)} ${v.padEnd(16)} ${fmt(median(o) * 100)}% over bare (${fmt(median(o) * b * 1000, 0)} us of ${(b * 1000).toFixed(0)} us per call; pages from ${fmt(Math.min(...o) * 100)}% to ${fmt(Math.max(...o) * 100)}%)`);
      }
    }
    if (ran('burst', SDKS).length) console.log(`\nburst: 500 events against an endpoint that answers after 10 s (queue and outbox full), then hide`);
    for (const v of ran('burst', SDKS)) {
      const hd = m(v, 'burst', 'hide') - m('bare', 'burst', 'hide');
      const worst = Math.max(...(res[`${v}/burst/longest`] || [NaN]));
      const worstWhat = (res[`${v}/burst/what`] || [])[(res[`${v}/burst/longest`] || []).indexOf(worst)];
      console.log(`  ${v.padEnd(20)} page-hide task ${fmt(hd, 2)} ms over bare (listeners ${m(v, 'burst', 'hideWall').toFixed(2)} ms wall); longest SDK task ${m(v, 'burst', 'longest').toFixed(2)} ms median, ${worst.toFixed(2)} ms worst of ${ROUNDS}; SDK tasks per run ${m(v, 'burst', 'tasks')}, over 5 ms: ${Math.max(...(res[`${v}/burst/over5`] || [0]))}`);
      console.log(`  ${''.padEnd(20)} in thread CPU time: longest SDK task ${m(v, 'burst', 'longestCpu').toFixed(2)} ms median, ${Math.max(...(res[`${v}/burst/longestCpu`] || [NaN])).toFixed(2)} ms worst; over 5 ms: ${Math.max(...(res[`${v}/burst/over5Cpu`] || [0]))}`);
      console.log(`  ${''.padEnd(20)} the worst: ${worstWhat}; events in the hide's beacon ${m(v, 'burst', 'hideEvents')} (median)`);
    }
    console.log(`\n(${received} requests and beacons reached the collector)`);
  }
} finally {
  await browser.close();
  site.close();
  sink.close();
  fs.rmSync(profileDir, { recursive: true, force: true });
}
