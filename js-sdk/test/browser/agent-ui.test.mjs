// The agent's own page in headless Chromium, against a real vantage-agent probing a real local HTTP server:
// a passing check, a failing one, a workflow, a disabled one and one that only runs when asked. The list shows
// their states (also with JavaScript off), clicking a run shows its waterfall, a workflow shows its steps and the
// names (not values) of what they extracted, and "Run now" (with the admin token) updates the page. Screenshots at
// 1280x800 and at phone width go to js-sdk/test-output/agent-ui/ (readme-1280.png is docs/agent-page.png).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { SDK_ROOT, listen, launchBrowser, startAgent, waitFor } from './support.mjs';

const OUT = path.join(SDK_ROOT, 'test-output', 'agent-ui');
const TOKEN = 'agent-ui-admin-token-0123456789';
const QUERY_SECRET = 'q-s3cret-in-the-url';
const LOGIN_TOKEN = 'tok-value-never-shown-0042';

/** The probed service: a healthy page, a broken API and the endpoints of a small sign-up journey. */
async function startTarget() {
  const items = new Map();
  let next = 1;
  const server = http.createServer((req, res) => {
    const u = new URL(req.url, 'http://x');
    const send = (status, body, delay = 0) =>
      setTimeout(() => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(body));
      }, delay);
    req.resume();
    req.on('end', () => {
      if (u.pathname === '/health') return send(200, { status: 'up' }, 12);
      if (u.pathname === '/api/cart') return send(503, { error: 'cart service down' }, 4);
      if (u.pathname === '/login' && req.method === 'POST') return send(200, { access_token: LOGIN_TOKEN }, 6);
      if (u.pathname === '/items' && req.method === 'POST') {
        const id = String(next++);
        items.set(id, true);
        return send(201, { id }, 9);
      }
      const m = u.pathname.match(/^\/items\/(\d+)$/);
      if (m && req.method === 'GET') return send(items.has(m[1]) ? 200 : 404, { id: m[1] }, 5);
      if (m && req.method === 'DELETE') return send(items.delete(m[1]) ? 200 : 404, {}, 3);
      send(404, { error: 'no route' });
    });
  });
  const url = await listen(server);
  return { url, close: () => new Promise((r) => (server.close(r), server.closeAllConnections())) };
}

function config(target) {
  return `region: eu-west-1
ui: {admin_token: "\${UI_TOKEN}"}
history: {runs: 100}
checks:
  - name: homepage
    type: http
    target: ${target}/health
    every: 2s
    labels: {team: web}
  - name: checkout-api
    type: http
    target: ${target}/api/cart?key=${QUERY_SECRET}
    every: 2s
  - name: signup-journey
    type: api_workflow
    every: 3s
    variables: {base: "${target}"}
    steps:
      - {name: login, method: POST, url: "{{base}}/login", json: {user: probe}, extract: {token: "$.access_token"}, timeout: 600ms}
      - {name: create-item, method: POST, url: "{{base}}/items", auth: {bearer: "{{token}}"}, expect_status: [201], extract: {item_id: "$.id"}, timeout: 600ms}
      - {name: read-item, method: GET, url: "{{base}}/items/{{item_id}}", auth: {bearer: "{{token}}"}, timeout: 600ms}
    teardown:
      - {name: delete-item, method: DELETE, url: "{{base}}/items/{{item_id}}", auth: {bearer: "{{token}}"}, timeout: 600ms}
  - name: on-demand
    type: http
    target: ${target}/health
    schedule: "0 0 1 1 *"
  - name: legacy-ftp
    type: tcp
    target: 127.0.0.1:9
    every: 1m
    enabled: false
`;
}

async function shot(page, name) {
  fs.mkdirSync(OUT, { recursive: true });
  const file = path.join(OUT, `${name}.png`);
  await page.screenshot({ path: file, fullPage: name.includes('full') });
  return file;
}

/** Console errors (a CSP violation is one) and uncaught errors of a page. */
function watch(page) {
  const problems = [];
  page.on('console', (m) => m.type() === 'error' && problems.push(`console: ${m.text()}`));
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  return problems;
}

test('the agent page shows each check, its runs and waterfalls, and runs a check now', async (t) => {
  const target = await startTarget();
  t.after(target.close);
  const agent = await startAgent(config(target.url), { UI_TOKEN: TOKEN });
  t.after(agent.stop);
  const history = async (name) => (await fetch(`${agent.url}/api/v1/checks/${name}/history`)).json();
  await waitFor('three runs of each scheduled check', async () => {
    for (const name of ['homepage', 'checkout-api', 'signup-journey']) {
      if ((await history(name)).kept < 3) return false;
    }
    return true;
  }, 30000);

  const browser = await launchBrowser();
  t.after(() => browser.close());
  const desktop = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await desktop.newPage();
  const problems = watch(page);

  // The list: states, redacted target, strips.
  await page.goto(`${agent.url}/`);
  const state = (name) => page.locator(`tr[data-check="${name}"] .pill`).getAttribute('data-state');
  assert.equal(await state('homepage'), 'passing');
  assert.equal(await state('checkout-api'), 'failing');
  assert.equal(await state('signup-journey'), 'passing');
  assert.equal(await state('on-demand'), 'pending');
  assert.equal(await state('legacy-ftp'), 'disabled');
  assert.match(await page.locator('tr[data-check="checkout-api"] .pill').innerText(), /failing since \d+s ago/);
  assert.match(await page.locator('h1').innerText(), /1 of 4 checks failing/);
  const html = await page.content();
  assert.ok(html.includes('/api/cart?***'), 'the query is redacted');
  assert.ok(!html.includes(QUERY_SECRET), 'the secret never reaches the page');
  assert.ok((await page.locator('tr[data-check="homepage"] svg.strip rect.ok').count()) >= 3);
  assert.ok((await page.locator('tr[data-check="checkout-api"] svg.strip rect.bad').count()) >= 3);
  // Failing first.
  assert.equal(await page.locator('tbody tr').first().getAttribute('data-check'), 'checkout-api');
  // The script refreshes the live part.
  const refreshed = await page.evaluate(() => document.body.dataset.refreshed || '0');
  await page.waitForFunction((before) => (document.body.dataset.refreshed || '0') !== before, refreshed, { timeout: 15000 });
  assert.equal(await page.locator('#live-status').innerText(), 'live');
  await shot(page, 'list-1280x800');

  // A passing check: click a run in the strip, its waterfall shows.
  await page.click('tr[data-check="homepage"] .name a');
  await page.waitForURL(/\/checks\/homepage$/);
  const runs = await history('homepage');
  const older = runs.runs[2];
  await page.click(`svg.strip a[data-run="${older.id}"]`);
  await page.waitForURL(new RegExp(`\\?run=${older.id}#run$`));
  const selected = page.locator('.selected-run');
  assert.equal(await selected.getAttribute('data-run'), String(older.id));
  for (const phase of ['connect', 'processing', 'transfer']) {
    assert.equal(await selected.locator(`.waterfall [data-phase="${phase}"] svg rect.ph-${phase}`).count(), 1, phase);
  }
  assert.equal(await page.locator(`table.runs tr.selected`).getAttribute('data-run'), String(older.id));
  await page.evaluate(() => window.scrollTo(0, 0));
  await shot(page, 'check-passing-1280x800');

  // A failing check: the newest run's error type and message.
  await page.goto(`${agent.url}/checks/checkout-api`);
  assert.match(await page.locator('.selected-run .error').innerText(), /http_status.*503/);
  assert.equal(await page.locator('.pill').first().getAttribute('data-state'), 'failing');
  await shot(page, 'check-failing-1280x800');

  // The workflow: each step's waterfall and the names of its extracted variables, never their values.
  await page.goto(`${agent.url}/checks/signup-journey`);
  const steps = page.locator('.selected-run .step');
  assert.deepEqual(await steps.evaluateAll((s) => s.map((e) => e.dataset.step)), ['login', 'create-item', 'read-item', 'delete-item']);
  assert.equal(await page.locator('.step[data-step="login"] .chip.var').innerText(), 'token');
  assert.equal(await page.locator('.step[data-step="create-item"] .chip.var').innerText(), 'item_id');
  assert.ok((await page.locator('.step[data-step="read-item"] .waterfall [data-phase="processing"]').count()) === 1);
  assert.ok(!(await page.content()).includes(LOGIN_TOKEN), 'an extracted secret value never reaches the page');
  await shot(page, 'check-workflow-full-1280');

  // Run now: a wrong token is refused, the right one runs the check and the page shows the new run.
  await page.goto(`${agent.url}/checks/on-demand`);
  assert.equal(await page.locator('.pill').first().getAttribute('data-state'), 'pending');
  assert.equal((await history('on-demand')).kept, 0);
  await page.fill('#run-now-token', 'not-the-token-at-all-000');
  await page.click('#run-now button');
  await page.waitForFunction(() => /not accepted/.test(document.getElementById('run-now-status').textContent));
  assert.equal((await history('on-demand')).kept, 0);
  await page.fill('#run-now-token', TOKEN);
  await page.click('#run-now button');
  await page.waitForSelector('.selected-run[data-run="1"]', { timeout: 15000 });
  assert.match(await page.locator('#run-now-status').innerText(), /^ok in /);
  assert.equal(await page.locator('.pill').first().getAttribute('data-state'), 'passing');
  assert.match(await page.locator('.selected-run h2').innerText(), /run now/);
  assert.equal(await page.locator('.selected-run .waterfall [data-phase="processing"]').count(), 1);
  const after = await history('on-demand');
  assert.equal(after.kept, 1);
  assert.equal(after.runs[0].manual, true);
  const metrics = await (await fetch(`${agent.url}/metrics`)).text();
  assert.match(metrics, /vantage_agent_run_now_total\{endpoint="on-demand",result="success"\} 1/);
  await shot(page, 'check-run-now-1280x800');
  // Back on the list, the new run is there too.
  await page.goto(`${agent.url}/`);
  assert.equal(await state('on-demand'), 'passing');
  await shot(page, 'list-full-1280');
  // The README's picture (docs/agent-page.png is a copy): the list, cropped below the footer.
  const height = await page.evaluate(() => Math.ceil(document.querySelector('footer').getBoundingClientRect().bottom) + 8);
  await page.screenshot({ path: path.join(OUT, 'readme-1280.png'), clip: { x: 0, y: 0, width: 1280, height: Math.min(height, 800) } });
  // The one error expected: Chromium logs the 401 the wrong token got.
  const unexpected = problems.filter((p) => !/status of 401 \(Unauthorized\)/.test(p));
  assert.deepEqual(unexpected, [], 'no console errors (CSP violations included)');
  assert.equal(problems.length, 1);

  // Phone width.
  const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
  const small = await phone.newPage();
  const smallProblems = watch(small);
  await small.goto(`${agent.url}/`);
  assert.equal(await small.locator('tr[data-check="checkout-api"] .pill').getAttribute('data-state'), 'failing');
  // Nothing wider than the screen.
  assert.ok(await small.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth), 'no horizontal scroll');
  await shot(small, 'list-390-full');
  await small.goto(`${agent.url}/checks/homepage`);
  assert.ok(await small.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth), 'no horizontal scroll');
  await shot(small, 'check-390-full');
  assert.deepEqual(smallProblems, []);

  // Without JavaScript the table is all there.
  const noJs = await browser.newContext({ viewport: { width: 1280, height: 800 }, javaScriptEnabled: false });
  const plain = await noJs.newPage();
  await plain.goto(`${agent.url}/`);
  assert.equal(await plain.locator('tr[data-check="homepage"] .pill').getAttribute('data-state'), 'passing');
  assert.equal(await plain.locator('tbody tr').count(), 5);
  await plain.goto(`${agent.url}/checks/homepage`);
  assert.equal(await plain.locator('.selected-run .waterfall [data-phase="connect"]').count(), 1);
  assert.equal(await plain.locator('#run-now').isVisible(), false, 'no button that cannot work');
});
