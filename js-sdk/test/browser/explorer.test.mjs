// The RUM explorer (`/ui/` on the ingest) in headless Chromium, on what a real page sent: the shop fixture
// (ingest/tests/fixtures/shop/src) bundled and minified by esbuild with its source map, served on a test page that
// loads the SDK from the ingest with `data-release`; the map uploaded with `vantage-ingest sourcemaps upload`. The
// page makes API calls, changes route, takes a click and throws from the bundle's addToCart; then it is hidden so
// the vitals flush. The explorer, signed in with a read token, shows the route with its vitals, the error group
// with `src/cart.js:42`, and the session's events; a wrong token brings back the login with the server's reason;
// the token never appears in a URL. Screenshots at 1280x800 and 390x844 go to js-sdk/test-output/explorer/
// (overview-1280x800.png is docs/explorer.png, shown in the README).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { SDK_ROOT, API_KEY, adminToken, ingestBinary, launchBrowser, listen, startIngest, waitFor } from './support.mjs';

const OUT = path.join(SDK_ROOT, 'test-output', 'explorer');
const RELEASE = 'shop@1.4.2';
const SHOP_SRC = path.resolve(SDK_ROOT, '..', 'ingest', 'tests', 'fixtures', 'shop', 'src');

/** The shop's bundle, as a release build makes it: `app.min.js` (one global, `Shop`) and its map. */
function buildShop() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vantage-explorer-shop-'));
  fs.mkdirSync(path.join(dir, 'src'));
  for (const f of ['app.js', 'cart.js']) fs.copyFileSync(path.join(SHOP_SRC, f), path.join(dir, 'src', f));
  execFileSync(path.join(SDK_ROOT, 'node_modules', '.bin', 'esbuild'), ['src/app.js', '--bundle', '--minify', '--sourcemap', '--format=iife', '--global-name=Shop', '--outfile=app.min.js', '--log-level=warning'], { cwd: dir });
  return dir;
}

/** The page's script: two API calls at load; "Cart" changes route and calls the API; "Buy" runs the shop. */
const PAGE_JS = `
window.pageLog = [];
addEventListener('load', function () {
  fetch('/api/products').then(function (r) { return r.json(); }).then(function () { pageLog.push('products'); });
  fetch('/api/recommendations').then(function (r) { pageLog.push('recommendations ' + r.status); });
});
document.getElementById('cart').addEventListener('click', function () {
  history.pushState({}, '', '/shop/cart');
  fetch('/api/cart').then(function () { pageLog.push('cart'); });
});
document.getElementById('buy').addEventListener('click', function () {
  pageLog.push('buy');
  // The second product has no details: addToCart throws (src/cart.js:42), uncaught.
  Shop.main([{ sku: 'a', price: 1, details: { sku: 'x' } }, { sku: 'b', price: 2 }]);
});
`;

/** The shop: its page under /shop (and /shop/cart), the bundle under /assets/, a small JSON API. */
async function startShop(bundleDir, ingestUrl) {
  const server = http.createServer((req, res) => {
    const u = new URL(req.url, 'http://x');
    const send = (status, type, body, delay = 0) =>
      setTimeout(() => {
        res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
        res.end(body);
      }, delay);
    if (u.pathname === '/shop' || u.pathname === '/shop/cart') {
      return send(
        200,
        'text/html; charset=utf-8',
        `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Shop</title>
<script src="${ingestUrl}/rum-sdk.js" data-endpoint="${ingestUrl}/v1/events" data-api-key="${API_KEY}" data-release="${RELEASE}" defer></script>
<script src="/assets/app.min.js"></script></head>
<body><h1>The shop</h1><p>Products and a cart.</p>
<button id="cart" data-rum="cart-link">Cart</button> <button id="buy" data-rum="buy-button">Buy</button>
<script src="/assets/page.js"></script></body></html>`
      );
    }
    if (u.pathname === '/assets/app.min.js') return send(200, 'text/javascript', fs.readFileSync(path.join(bundleDir, 'app.min.js')));
    if (u.pathname === '/assets/page.js') return send(200, 'text/javascript', PAGE_JS);
    if (u.pathname === '/api/products') return send(200, 'application/json', '{"products":[1,2,3]}', 120);
    if (u.pathname === '/api/recommendations') return send(503, 'application/json', '{"error":"down"}', 40);
    if (u.pathname === '/api/cart') return send(200, 'application/json', '{"items":[]}', 60);
    if (u.pathname === '/gone') return send(200, 'text/html', '<!doctype html><title>gone</title>');
    send(404, 'text/plain', 'not found');
  });
  const url = await listen(server);
  return { url, close: () => new Promise((r) => (server.close(r), server.closeAllConnections())) };
}

async function shot(page, name) {
  fs.mkdirSync(OUT, { recursive: true });
  const file = path.join(OUT, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

// Google's thresholds (good up to the first, poor above the second) and the explorer's number format.
const THRESHOLDS = { LCP: [2500, 4000], INP: [200, 500], CLS: [0.1, 0.25], FCP: [1800, 3000], TTFB: [800, 1800] };
const rated = (name, v) => (v <= THRESHOLDS[name][0] ? 'good' : v <= THRESHOLDS[name][1] ? 'needs-improvement' : 'poor');
function shown(name, v) {
  if (name === 'CLS') return v === 0 ? '0' : v < 0.01 ? v.toFixed(3) : v.toFixed(2);
  return v < 1000 ? `${Math.round(v)} ms` : v < 10000 ? `${(v / 1000).toFixed(2)} s` : `${(v / 1000).toFixed(1)} s`;
}

/** Console errors (a CSP violation is one) and uncaught errors of a page. */
function watch(page) {
  const problems = [];
  page.on('console', (m) => m.type() === 'error' && !/status of 40[13]/.test(m.text()) && problems.push(`console: ${m.text()}`));
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  return problems;
}

test('the explorer shows what a real page sent: vitals per route, the symbolicated error group, the session', async (t) => {
  const bundle = buildShop();
  t.after(() => fs.rmSync(bundle, { recursive: true, force: true }));
  // The shop's origin is only known once it listens; the ingest needs it allowed, the shop needs the ingest URL.
  let ingestUrl = null;
  const shop = await startShop(bundle, { toString: () => ingestUrl });
  t.after(shop.close);
  const ingest = await startIngest([shop.url]);
  t.after(ingest.stop);
  ingestUrl = ingest.url;

  // Step 2 of the README: the release's map uploaded in CI, before the release goes live.
  const upload = execFileSync(ingestBinary(), ['sourcemaps', 'upload', '--url', ingest.url, '--site', 'shop', '--release', RELEASE, '--url-prefix', `${shop.url}/assets/`, path.join(bundle, 'app.min.js.map')], {
    env: { ...process.env, VANTAGE_TOKEN: ingest.token('admin') },
    encoding: 'utf8',
  });
  assert.match(upload, /app\.min\.js/);

  const browser = await launchBrowser();
  t.after(() => browser.close());

  // The explorer, before anything was sent; signed in with a token minted as README's step 3 says.
  const token = ingest.token('read');
  const desktop = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await desktop.newPage();
  const problems = watch(page);
  const requested = [];
  page.on('request', (r) => requested.push(r.url()));
  const first = await page.goto(`${ingest.url}/ui`);
  assert.equal(new URL(page.url()).pathname, '/ui/', '/ui redirects to /ui/');
  const csp = first.headers()['content-security-policy'];
  assert.ok(csp && csp.includes("default-src 'self'") && csp.includes("frame-ancestors 'none'") && !csp.includes('unsafe'), csp);

  // A wrong token: the login stays, with the server's reason.
  await page.fill('#token', 'not-a-token');
  await page.click('#login-form button[type=submit]');
  await page.waitForSelector('#login-error:not([hidden])');
  assert.match(await page.locator('#login-error').innerText(), /refused this token/);
  assert.ok(await page.locator('#login').isVisible());
  await shot(page, 'login-error-1280x800');

  // The right one: the overview.
  await page.fill('#token', token);
  await page.click('#login-form button[type=submit]');
  // Nothing sent yet: the overview says so and what to do.
  await page.waitForSelector('#view .empty');
  const empty = await page.locator('#view .empty').innerText();
  assert.match(empty, /No events for site shop in the last 24 h/);
  assert.match(empty, /data-release=/);
  await shot(page, 'overview-empty-1280x800');

  // A visitor: load, API calls, a route change, a click that throws; then the page is hidden (navigated away).
  const visitor = await (await browser.newContext({ viewport: { width: 1280, height: 800 } })).newPage();
  await visitor.goto(`${shop.url}/shop`);
  await visitor.waitForFunction(() => window.VantageRUM && pageLog.includes('products') && pageLog.includes('recommendations 503'));
  await visitor.click('#cart');
  await visitor.waitForFunction(() => pageLog.includes('cart'));
  await visitor.click('#buy');
  await visitor.waitForTimeout(300);
  await visitor.goto(`${shop.url}/gone`);

  const errors = await waitFor('the symbolicated error group', async () => {
    const e = await ingest.stats('errors');
    return e.groups.some((g) => (g.sample.stack || '').includes('src/cart.js:42')) && e;
  });
  const group = errors.groups.find((g) => g.sample.stack.includes('src/cart.js:42'));
  const vitals = await waitFor('LCP, FCP and TTFB stored', async () => {
    const v = (await ingest.stats('vitals')).vitals;
    return ['LCP', 'FCP', 'TTFB'].every((n) => v.some((x) => x.name === n)) && v;
  });
  const stored = ingest.events();
  const sessionId = stored[0].raw.session_id;
  assert.equal(new Set(stored.map((e) => e.raw.session_id)).size, 1, 'one session');

  // A reload keeps the sign-in (the token is in this tab's session storage) and shows what arrived.
  await page.reload();
  await page.waitForSelector('#vitals');
  assert.equal(await page.locator('#site-select').inputValue(), 'shop');
  // The page's route (page loads) and every vital the stats API has, per route, as it has them.
  assert.equal(await page.locator('#vitals tr[data-key="/shop"]').count(), 1, 'the page route has its row');
  for (const v of vitals) {
    const cell = page.locator(`#vitals tr[data-key="${v.route}"] [data-vital="${v.name}"]`);
    assert.equal(await cell.locator('.v').innerText(), shown(v.name, v.p75), `${v.name} p75 on ${v.route}`);
    assert.equal(await cell.getAttribute('data-rating'), rated(v.name, v.p75), `${v.name} rating`);
    assert.match(await cell.innerText(), /Good|Needs improvement|Poor/, 'the rating in words, not only in color');
  }
  assert.ok((await page.locator('#chart rect.bar-loads').count()) >= 1, 'page loads in the chart');
  assert.ok((await page.locator('#chart rect.bar-errors').count()) >= 1, 'errors in the chart');
  const apiText = await page.locator('#api').innerText();
  assert.match(apiText, /\/api\/products/);
  assert.match(apiText, /\/api\/recommendations/);
  await shot(page, 'overview-1280x800');

  // Errors: the group with its symbolicated stack, and its occurrences.
  await page.click('#tabs a[data-tab="errors"]');
  const card = page.locator(`article[data-group="${group.id}"]`);
  await card.waitFor();
  assert.match(await card.locator('pre.stack').innerText(), /at addToCart \(src\/cart\.js:42:\d+\)/);
  assert.match(await card.innerText(), new RegExp(RELEASE.replace('.', '\\.')));
  await card.locator('button[data-action="occurrences"]').click();
  await card.locator('#occurrences tbody tr').first().waitFor();
  assert.match(await card.locator('#occurrences').innerText(), /\/shop\/cart/);
  await shot(page, 'errors-1280x800');

  // Sessions: the list, then the session's events on its timeline.
  await page.click('#tabs a[data-tab="sessions"]');
  const row = page.locator(`tr[data-key="${sessionId}"]`);
  await row.waitFor();
  assert.match(await row.innerText(), /\/shop\/cart/, 'the last page');
  await shot(page, 'sessions-1280x800');
  await row.click();
  await page.waitForSelector('#session-events');
  assert.equal(new URL(page.url()).hash, `#/sessions/${sessionId}`);
  const types = await page.locator('#session-events li').evaluateAll((lis) => lis.map((li) => li.dataset.type));
  for (const type of ['page_load', 'api_call', 'route_change', 'user_interaction', 'error', 'web_vital']) assert.ok(types.includes(type), `${type} in ${types}`);
  const list = await page.locator('#session-events').innerText();
  assert.match(list, /\+0\.0 s/);
  assert.match(list, /buy-button/);
  assert.match(list, /503/);
  assert.match(list, /Cannot read properties of undefined/);
  assert.ok((await page.locator('svg.lanes circle.t-error').count()) >= 1);
  // The time axis: round, evenly spaced labels from +0 (a 669 ms session read "+0.2 s, +0.3 s, +0.5 s" at quarters)
  const ticks = await page.locator('svg.lanes text.axis').evaluateAll((ts) => ts.map((t) => [+t.dataset.ms, t.textContent, +t.getAttribute('x')]));
  assert.ok(ticks.length >= 2 && ticks.length <= 5, JSON.stringify(ticks));
  const step = ticks[1][0];
  assert.ok([1, 2, 5].includes(step / 10 ** Math.floor(Math.log10(step))), `a 1-2-5 step: ${JSON.stringify(ticks)}`);
  ticks.forEach(([ms, label, x], i) => {
    assert.equal(ms, i * step, JSON.stringify(ticks));
    assert.equal(Math.round(parseFloat(label.slice(1)) * 1000), ms, `label ${label} at ${ms} ms`);
    if (i > 1) assert.ok(Math.abs(x - ticks[i - 1][2] - (ticks[1][2] - ticks[0][2])) < 0.5, `evenly spaced: ${JSON.stringify(ticks)}`);
  });
  await shot(page, 'session-1280x800');

  // Phone width: the same three views.
  const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
  const small = await phone.newPage();
  const smallProblems = watch(small);
  small.on('request', (r) => requested.push(r.url()));
  await small.goto(`${ingest.url}/ui/`);
  await small.fill('#token', token);
  await small.click('#login-form button[type=submit]');
  await small.waitForSelector('#vitals tr[data-key="/shop"]');
  assert.equal(await small.locator('#vitals [data-vital="LCP"] .badge').count(), vitals.filter((v) => v.name === 'LCP').length);
  const width = await small.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(width <= 390, `no sideways scrolling on a phone (page is ${width}px wide)`);
  await shot(small, 'overview-390x844');
  await small.click('#tabs a[data-tab="errors"]');
  await small.locator(`article[data-group="${group.id}"]`).waitFor();
  await shot(small, 'errors-390x844');
  await small.goto(`${ingest.url}/ui/#/sessions/${encodeURIComponent(sessionId)}`);
  await small.waitForSelector('#session-events');
  await shot(small, 'session-390x844');

  // The token: never in a URL, only in this tab's session storage.
  for (const u of [...requested, page.url(), small.url()]) assert.ok(!u.includes(token) && !u.includes(token.split('.')[2]), `token in ${u}`);
  assert.equal(await page.evaluate(() => localStorage.length), 0);
  assert.equal(await page.evaluate(() => sessionStorage.getItem('vantage.explorer.token')), token);

  // A token the server refuses later (expired, revoked) brings back the login with its reason.
  await page.evaluate(() => sessionStorage.setItem('vantage.explorer.token', 'expired.token.value'));
  await page.goto(`${ingest.url}/ui/#/overview`);
  await page.reload();
  await page.waitForSelector('#login-error:not([hidden])');
  assert.ok(await page.locator('#login').isVisible());
  assert.match(await page.locator('#login-error').innerText(), /refused this token/);
  // A token without the read scope: told what it lacks.
  await page.fill('#token', adminToken('ingest'));
  await page.click('#login-form button[type=submit]');
  await page.waitForFunction(() => /read scope/.test(document.getElementById('login-error').textContent));

  assert.deepEqual(problems, [], 'no console errors (CSP violations) on the desktop page');
  assert.deepEqual(smallProblems, [], 'no console errors on the phone page');
});
