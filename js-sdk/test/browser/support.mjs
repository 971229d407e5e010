// support.mjs: fixtures for the browser tests: headless Chromium (playwright-core, system chromium), a static
// server for the test pages and their APIs, a real vantage-ingest with a SQLite store, and a recording proxy
// in front of it that can answer errors of its own instead of forwarding (the first N batches, or by a schedule);
// a real vantage-agent on a given config (its own page is tested in agent-ui.test.mjs).
import http from 'node:http';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import { spawn, execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const SDK_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const PAGES = path.join(SDK_ROOT, 'test', 'browser', 'pages');
export const API_KEY = 'browser-test-key-0123456789';
const ADMIN_SECRET = 'browser-test-admin-secret-0123456789abcdef';

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls `fn` until it returns a truthy value; fails with `what` after `ms`. */
export async function waitFor(what, fn, ms = 20000) {
  const end = Date.now() + ms;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}; last: ${last instanceof Error ? last.stack : JSON.stringify(last)}`);
    await sleep(100);
  }
}

// Closes a server now, not when the browser decides to drop its keep-alive connections.
function closer(server) {
  return () =>
    new Promise((r) => {
      server.close(r);
      server.closeAllConnections();
    });
}

export function listen(server) {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${server.address().port}`));
  });
}

async function freePort() {
  const s = http.createServer();
  await listen(s);
  const { port } = s.address();
  await new Promise((r) => s.close(r));
  return port;
}

const readBody = (req) =>
  new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });

// A 1x1 PNG for <img> tags (resource timing).
const PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==', 'base64');

/**
 * Static server for the test pages: `/pages/<name>.html` with `{{ENDPOINT}}`, `{{API_KEY}}` replaced,
 * `/rum-sdk.js` (the committed dist build), `/web-vitals.js` (Google's package, attribution build),
 * `/img/*.png`, JSON APIs under `/api/`, and `/wv` where pages report web-vitals' results.
 */
export async function startStatic(vars = {}) {
  const webVitals = [];
  const server = http.createServer(async (req, res) => {
    const u = new URL(req.url, 'http://x');
    const delay = +u.searchParams.get('delay') || 0;
    if (delay) await sleep(delay);
    // no-cache rather than no-store for pages: the browser revalidates either way, and no-store would keep
    // pages out of the back/forward cache (views.test.mjs restores one).
    const send = (status, type, body) => {
      res.writeHead(status, { 'content-type': type, 'cache-control': type.startsWith('text/html') ? 'no-cache' : 'no-store' });
      res.end(body);
    };
    if (u.pathname === '/rum-sdk.js') return send(200, 'text/javascript', fs.readFileSync(path.join(SDK_ROOT, 'dist', 'rum-sdk.min.js')));
    if (u.pathname === '/web-vitals.js') return send(200, 'text/javascript', fs.readFileSync(path.join(SDK_ROOT, 'node_modules', 'web-vitals', 'dist', 'web-vitals.attribution.iife.js')));
    if (u.pathname === '/favicon.ico') return send(204, 'image/x-icon', '');
    if (u.pathname.startsWith('/img/')) return send(200, 'image/png', PNG);
    if (u.pathname === '/wv' && req.method === 'POST') {
      webVitals.push(JSON.parse((await readBody(req)).toString()));
      return send(204, 'text/plain', '');
    }
    if (u.pathname === '/api/items') return send(200, 'application/json', JSON.stringify({ items: [1, 2, 3] }));
    if (u.pathname === '/api/echo') return send(200, 'application/json', JSON.stringify({ method: req.method, traceparent: req.headers.traceparent || null, page: req.headers['x-page'] || null }));
    if (u.pathname.startsWith('/api/')) return send(404, 'application/json', '{"error":"not found"}');
    // Pages (also for SPA routes below /app/, which serve the page they were pushed from).
    const name = u.pathname === '/' ? 'full' : u.pathname.replace(/^\/(pages\/)?/, '').replace(/\.html$/, '');
    const file = path.join(PAGES, `${name}.html`);
    if (!/^[a-z0-9-]+$/.test(name) || !fs.existsSync(file)) return send(404, 'text/plain', 'no such page');
    let html = fs.readFileSync(file, 'utf8');
    for (const [k, v] of Object.entries(vars)) html = html.replaceAll(`{{${k}}}`, v);
    send(200, 'text/html; charset=utf-8', html);
  });
  const url = await listen(server);
  return { url, webVitals, vars, close: closer(server) };
}

/** A workspace binary: `$ENV_VAR`, else `$CARGO_TARGET_DIR/debug/NAME`, else `target/debug/NAME`. */
function workspaceBinary(name, envVar) {
  if (process.env[envVar]) return process.env[envVar];
  const candidates = [];
  if (process.env.CARGO_TARGET_DIR) candidates.push(path.join(process.env.CARGO_TARGET_DIR, 'debug', name));
  candidates.push(path.resolve(SDK_ROOT, '..', 'target', 'debug', name));
  return candidates.find((c) => fs.existsSync(c)) || candidates[0];
}

export function ingestBinary() {
  return workspaceBinary('vantage-ingest', 'VANTAGE_INGEST_BIN');
}

/**
 * Starts the real `vantage-agent run -c <tmp config> --listen 127.0.0.1:PORT` on `yaml` (the agent's config
 * text) with the environment variables `env`; resolves once /readyz answers. `stop()` ends it.
 */
export async function startAgent(yaml, env = {}) {
  const bin = workspaceBinary('vantage-agent', 'VANTAGE_AGENT_BIN');
  if (!fs.existsSync(bin)) {
    throw new Error(`vantage-agent binary not found at ${bin}. Build it first (cargo build -p vantage-agent) or set VANTAGE_AGENT_BIN.`);
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vantage-agent-ui-'));
  fs.writeFileSync(path.join(dir, 'agent.yaml'), yaml);
  const port = await freePort();
  const log = [];
  // The region comes from the config unless the test says otherwise.
  const childEnv = { ...process.env, ...env };
  if (!('VANTAGE_REGION' in env)) delete childEnv.VANTAGE_REGION;
  const child = spawn(bin, ['run', '-c', path.join(dir, 'agent.yaml'), '--listen', `127.0.0.1:${port}`], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: childEnv,
  });
  child.stdout.on('data', (d) => log.push(d.toString()));
  child.stderr.on('data', (d) => log.push(d.toString()));
  let exited = null;
  child.on('exit', (code) => (exited = code));
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (exited === null) {
      child.kill('SIGTERM');
      await Promise.race([new Promise((r) => child.once('exit', r)), sleep(10000)]);
      if (exited === null) child.kill('SIGKILL');
    }
    fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitFor('vantage-agent /readyz', async () => {
      if (exited !== null) throw new Error(`vantage-agent exited with ${exited}:\n${log.join('')}`);
      return (await fetch(`${url}/readyz`)).ok;
    }, 30000);
  } catch (e) {
    await stop();
    throw e;
  }
  return { url, log, stop };
}

function b64url(x) {
  return Buffer.from(typeof x === 'string' ? x : JSON.stringify(x)).toString('base64url');
}

/** HS256 admin token with the `read` scope (the stats API), or another (`admin`: source map uploads). */
export function adminToken(scope = 'read') {
  const head = b64url({ alg: 'HS256', typ: 'JWT' });
  const body = b64url({ scope, exp: Math.floor(Date.now() / 1000) + 3600 });
  const sig = crypto.createHmac('sha256', ADMIN_SECRET).update(`${head}.${body}`).digest('base64url');
  return `${head}.${body}.${sig}`;
}

/**
 * Starts the real `vantage-ingest run -c <tmp config> --listen 127.0.0.1:PORT` with a SQLite store and one
 * site (`shop`) whose key is API_KEY and whose allowed origins are `origins`.
 */
export async function startIngest(origins) {
  const bin = ingestBinary();
  if (!fs.existsSync(bin)) {
    throw new Error(
      `vantage-ingest binary not found at ${bin}. Build it first (cargo build -p vantage-ingest) or set ` +
        `VANTAGE_INGEST_BIN; these tests run the SDK against the real ingest server.`
    );
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vantage-sdk-ingest-'));
  const db = path.join(dir, 'rum.db');
  const port = await freePort();
  const config = [
    `listen: 127.0.0.1:${port}`,
    'storage:',
    `  url: sqlite://${db}`,
    'admin:',
    '  algorithm: HS256',
    `  secret: ${ADMIN_SECRET}`,
    'sites:',
    '  - id: shop',
    `    api_key: ${API_KEY}`,
    `    allowed_origins: [${origins.map((o) => JSON.stringify(o)).join(', ')}]`,
    '',
  ].join('\n');
  fs.writeFileSync(path.join(dir, 'ingest.yaml'), config);
  const log = [];
  const child = spawn(bin, ['run', '-c', path.join(dir, 'ingest.yaml'), '--listen', `127.0.0.1:${port}`], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.on('data', (d) => log.push(d.toString()));
  child.stderr.on('data', (d) => log.push(d.toString()));
  let exited = null;
  child.on('exit', (code) => (exited = code));
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitFor('vantage-ingest /healthz', async () => {
      if (exited !== null) throw new Error(`vantage-ingest exited with ${exited}:\n${log.join('')}`);
      return (await fetch(`${url}/healthz`)).ok;
    }, 30000);
  } catch (e) {
    child.kill('SIGKILL');
    throw e;
  }
  const ingest = {
    url,
    db,
    log,
    /** Rows of the events table (the store's own view of what was accepted). */
    events() {
      const out = execFileSync('sqlite3', ['-readonly', '-cmd', '.timeout 5000', '-json', db, 'SELECT lower(hex(event_id)) AS event_id, event_type, name, value, rating, browser, route, url, endpoint, status, raw FROM events ORDER BY client_ts_ms, rowid'], { encoding: 'utf8' });
      // Ids are stored as 16-byte BLOBs; shown here in the uuid text form the SDK sent.
      const uuid = (h) => `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
      return (out.trim() ? JSON.parse(out) : []).map((r) => ({ ...r, event_id: uuid(r.event_id), raw: JSON.parse(r.raw) }));
    },
    async stats(kind) {
      const r = await fetch(`${url}/v1/stats/${kind}?site=shop&window=1h`, { headers: { authorization: `Bearer ${adminToken()}` } });
      if (!r.ok) throw new Error(`stats ${kind}: ${r.status} ${await r.text()}`);
      return r.json();
    },
    async metrics() {
      return (await fetch(`${url}/metrics`)).text();
    },
    /** An admin token minted as an operator does: `vantage-ingest token -c <this config> --scope <scope>`. */
    token(scope = 'read') {
      return execFileSync(bin, ['token', '-c', path.join(dir, 'ingest.yaml'), '--scope', scope], { encoding: 'utf8' }).trim();
    },
    async stop() {
      if (exited === null) {
        child.kill('SIGTERM');
        await Promise.race([new Promise((r) => child.once('exit', r)), sleep(10000)]);
        if (exited === null) child.kill('SIGKILL');
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  return ingest;
}

/**
 * A recording reverse proxy in front of the ingest: every request (method, headers, parsed batch, status
 * answered) is kept in `log`. The first `fail` POSTs are answered 503 with Retry-After: 1; or, with
 * `fault(entry)`, each POST for which it returns a status gets that status instead of the ingest's answer
 * (Retry-After: 1 with a 503, as the ingest sends it; none with other codes, as proxies send them).
 */
export async function startProxy(target, { fail = 0, fault } = {}) {
  const log = [];
  let failed = 0;
  const server = http.createServer(async (req, res) => {
    const body = await readBody(req);
    const entry = { method: req.method, url: req.url, headers: req.headers, at: Date.now(), raw: body };
    log.push(entry);
    if (req.method === 'POST') {
      try {
        entry.batch = JSON.parse(body.toString());
      } catch (e) {
        entry.batch = null;
      }
      const status = fault ? fault(entry) : failed < fail && (failed++, 503);
      if (status) {
        entry.status = status;
        const cors = req.headers.origin ? { 'access-control-allow-origin': req.headers.origin, 'access-control-expose-headers': 'retry-after' } : {};
        res.writeHead(status, { ...(status === 503 && { 'retry-after': '1' }), 'content-type': 'application/json', ...cors });
        return res.end(JSON.stringify({ error: `test fault ${status}` }));
      }
    }
    const headers = { ...req.headers };
    delete headers.host;
    try {
      const r = await fetch(target + req.url, { method: req.method, headers, body: req.method === 'GET' || req.method === 'HEAD' ? undefined : body });
      entry.status = r.status;
      entry.response = await r.text();
      const out = {};
      r.headers.forEach((v, k) => k !== 'content-length' && k !== 'transfer-encoding' && k !== 'content-encoding' && (out[k] = v));
      res.writeHead(r.status, out);
      res.end(entry.response);
    } catch (e) {
      entry.status = 502;
      res.writeHead(502);
      res.end();
    }
  });
  const url = await listen(server);
  return { url, log, close: closer(server) };
}

const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/** Headless Chromium from the system package, for tests that need several contexts (JavaScript off, phone size). */
export async function launchBrowser() {
  return chromium.launch({ executablePath: process.env.CHROMIUM_BIN || '/usr/bin/chromium', headless: true, args: CHROMIUM_ARGS });
}

/**
 * Headless Chromium from the system package, with a fresh profile. `bfcache`: keep the back/forward cache on
 * (playwright turns it off by default).
 */
export async function launch({ bfcache = false } = {}) {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'vantage-sdk-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM_BIN || '/usr/bin/chromium',
    headless: true,
    args: CHROMIUM_ARGS,
    ignoreDefaultArgs: bfcache ? ['--disable-back-forward-cache'] : [],
  });
  return {
    context,
    async close() {
      await context.close();
      fs.rmSync(profile, { recursive: true, force: true });
    },
  };
}

/**
 * The usual test setup: a static site, the real ingest allowing that site's origin, a recording proxy in
 * front of the ingest (`fail` first POSTs answered 503, or `fault` as in startProxy), the page variables pointing the SDK at the proxy,
 * and a browser; all stopped when the test ends.
 */
export async function startStack(t, { fail = 0, fault, bfcache } = {}) {
  const site = await startStatic();
  t.after(site.close);
  const ingest = await startIngest([site.url]);
  t.after(ingest.stop);
  const proxy = await startProxy(ingest.url, { fail, fault });
  t.after(proxy.close);
  Object.assign(site.vars, { ENDPOINT: `${proxy.url}/v1/events`, API_KEY });
  const browser = await launch({ bfcache });
  t.after(browser.close);
  return { site, ingest, proxy, browser };
}

/**
 * Collects console messages and uncaught page errors of a page as `type: text @ url` lines (url: where the
 * message comes from; for Chromium's own "Failed to load resource" lines, the request that failed).
 */
export function watchConsole(page) {
  const messages = [];
  page.on('console', (m) => messages.push(`${m.type()}: ${m.text()} @ ${m.location().url || ''}`));
  page.on('pageerror', (e) => messages.push(`pageerror: ${e.message}`));
  return messages;
}
