// traceOrigins in a real browser: every call to a traced origin reaches the server with a W3C traceparent
// beside the page's own headers, however the page gave them (none, an object, a Request, a Headers); a
// traceparent the page set is left as it is; each call's api_call carries the trace id the server saw (the page's
// own where it set one).
import test from 'node:test';
import assert from 'node:assert/strict';
import { startStack, waitFor, watchConsole } from './support.mjs';

test('traced calls: a traceparent beside the page headers, the same trace id in the api_call', async (t) => {
  const { site, ingest, browser } = await startStack(t);
  const page = await browser.context.newPage();
  const log = watchConsole(page);
  await page.goto(`${site.url}/trace.html`);
  const own = '00-' + 'a'.repeat(32) + '-' + 'b'.repeat(16) + '-01';
  const seen = await page.evaluate((own) => window.calls(own), own);
  const TP = /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/;
  for (const via of ['none', 'object', 'request', 'xhr']) {
    assert.match(String(seen[via].traceparent), TP, via);
    assert.equal(seen[via].page, via === 'none' ? null : via, `${via}: the page's own header still sent`);
  }
  assert.deepEqual(seen.own, { method: 'POST', traceparent: own, page: 'own' });
  const ids = ['none', 'object', 'request', 'xhr'].map((v) => seen[v].traceparent.slice(3, 35));
  assert.equal(new Set(ids).size, 4, 'a trace id per call');

  await page.evaluate(() => VantageRUM.flush());
  const calls = await waitFor('api_calls stored', () => {
    const r = ingest.events().filter((e) => e.event_type === 'api_call');
    return r.length === 5 && r;
  });
  // the endpoint is scrubbed (no query): match calls to what the server saw by trace id instead
  assert.deepEqual(calls.map((r) => r.raw.trace_id).sort(), [...ids, 'a'.repeat(32)].sort(), 'the page\'s own trace id for the call that set it');
  assert.ok(calls.every((r) => r.raw.api.status === 200 && r.raw.api.method === 'POST'));
  assert.deepEqual(log, []);
});
