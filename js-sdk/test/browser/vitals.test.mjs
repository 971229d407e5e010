// Web vitals with the SDK loaded late (after load, from the browser's buffers) on a page with several
// interactions of different cost and layout shifts in separate session windows: every value, rating and
// attribution target equals what Google's web-vitals (loaded early) reports for the same page.
import test from 'node:test';
import assert from 'node:assert/strict';
import { startStack, waitFor, sleep } from './support.mjs';

const VITALS = ['CLS', 'FCP', 'INP', 'LCP', 'TTFB'];

test('loaded late: LCP, INP, CLS, FCP, TTFB equal web-vitals on the same page', async (t) => {
  const { site, ingest, proxy, browser } = await startStack(t);

  const page = await browser.context.newPage();
  await page.goto(`${site.url}/vitals.html`);
  // Shifts before the SDK exists (window 1: 2 small shifts), then the SDK arrives late.
  await page.evaluate(() => window.shift(40));
  await sleep(200);
  await page.evaluate(() => window.shift(40));
  await sleep(1500);
  await page.evaluate(() => window.loadSdkLate());
  await page.waitForFunction(() => window.sdkLoaded);
  // Window 2, after a gap of more than 1 s: three larger shifts close together -> the largest window.
  await sleep(1200);
  for (let i = 0; i < 3; i++) {
    await page.evaluate(() => window.shift(90));
    await sleep(150);
  }
  await sleep(300);
  // Interactions: the slow one is the INP candidate (fewer than 50 interactions: the longest one).
  await page.click('#quick');
  await page.click('#slow');
  await page.click('#medium');
  // A shift right after an input does not count (hadRecentInput).
  await page.evaluate(() => window.shift(200));
  await sleep(500);
  await page.goto(`${site.url}/blank.html`);

  const wv = await waitFor('web-vitals reports', () => VITALS.every((n) => site.webVitals.some((m) => m.name === n)) && site.webVitals);
  const rows = await waitFor('SDK vitals stored', () => {
    const r = ingest.events().filter((e) => e.event_type === 'web_vital');
    return VITALS.every((n) => r.some((e) => e.name === n)) && r;
  });
  for (const name of VITALS) {
    // the rating is the ingest's (stored column), from the value the SDK sent
    const ours = rows.filter((r) => r.name === name).map((r) => ({ ...r.raw, rating: r.rating }));
    assert.equal(ours.length, 1, `${name} once`);
    const theirs = wv.filter((x) => x.name === name).at(-1);
    const tol = name === 'CLS' ? 1e-4 : 0.5;
    assert.ok(Math.abs(ours[0].value - theirs.value) <= tol, `${name}: ours ${ours[0].value}, web-vitals ${theirs.value}`);
    assert.equal(ours[0].rating, theirs.rating, `${name} rating`);
    if (name === 'INP' || name === 'LCP') assert.equal(ours[0].target, theirs.target, `${name} target`);
  }
  t.diagnostic(`sdk: ${JSON.stringify(rows.map((r) => [r.name, r.raw.value, r.rating, r.raw.target]))}`);
  t.diagnostic(`web-vitals: ${JSON.stringify(wv.map((x) => [x.name, x.value, x.rating, x.target]))}`);
  const inp = rows.find((r) => r.name === 'INP').raw;
  assert.equal(inp.target, '#slow');
  assert.ok(inp.value >= 320, JSON.stringify(inp));
  const cls = rows.find((r) => r.name === 'CLS').raw;
  assert.ok(cls.value > 0, JSON.stringify(cls));
});
