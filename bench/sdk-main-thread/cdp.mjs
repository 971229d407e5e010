// cdp.mjs: Debian's Chromium driven over the DevTools protocol on a pipe, with no domain enabled that a user's
// browser would not have. playwright-core enables the Network domain on every page it opens (for its request
// events), and with it Chromium's inspector records each request the page makes (its initiator's stack, its
// body): a POST's synchronous fetch(), XHR send() or sendBeacon() then costs the page two to four times its
// time without it (bench/README.md, session 17). The SDK's largest share per call is one POST per batch, so the
// benchmarks measure pages through this client, and through playwright only with --playwright.
//
// It offers the few calls of playwright's API the benchmarks use: browser.newContext(), version(), close();
// context.newPage(), newCDPSession(page), close(); page.goto(url), evaluate(fn, arg), click(selector),
// on('console', m => m.type()/m.text()); session.send(), on(), once().
import { spawn } from 'node:child_process';
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export async function launchPipe(executablePath, flags) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vantage-bench-chromium-'));
  const child = spawn(executablePath, [...flags, '--remote-debugging-pipe', '--no-first-run', '--no-default-browser-check', `--user-data-dir=${dir}`, 'about:blank'], {
    stdio: ['ignore', 'ignore', 'ignore', 'pipe', 'pipe'],
  });
  const [toBrowser, fromBrowser] = [child.stdio[3], child.stdio[4]];
  const pending = new Map(), sessions = new Map();
  let nextId = 0, buf = '', closed = false;
  const exited = new Promise((r) => child.once('exit', r));
  child.once('exit', () => {
    closed = true;
    for (const { reject } of pending.values()) reject(new Error('chromium exited'));
  });
  fromBrowser.setEncoding('utf8');
  fromBrowser.on('data', (chunk) => {
    const parts = (buf + chunk).split('\0');
    buf = parts.pop();
    for (const p of parts) {
      const m = JSON.parse(p);
      if (m.id !== undefined) {
        const w = pending.get(m.id);
        pending.delete(m.id);
        if (m.error) w.reject(new Error(`${w.method}: ${m.error.message}`));
        else w.resolve(m.result);
      } else sessions.get(m.sessionId || '')?.emit(m.method, m.params);
    }
  });
  const send = (method, params = {}, sessionId) =>
    new Promise((resolve, reject) => {
      if (closed) return reject(new Error('chromium exited'));
      const id = ++nextId;
      pending.set(id, { resolve, reject, method });
      toBrowser.write(JSON.stringify({ id, method, params, ...(sessionId && { sessionId }) }) + '\0');
    });
  const session = (sessionId) => {
    const s = new EventEmitter();
    s.send = (method, params) => send(method, params, sessionId);
    sessions.set(sessionId, s);
    return s;
  };
  session('');
  const { product } = await send('Browser.getVersion');

  return {
    version: () => product.replace(/^[^/]*\//, ''),
    async newContext() {
      const { browserContextId } = await send('Target.createBrowserContext', { disposeOnDetach: true });
      const pages = new Map();
      return {
        async newPage() {
          const { targetId } = await send('Target.createTarget', { url: 'about:blank', browserContextId });
          const { sessionId } = await send('Target.attachToTarget', { targetId, flatten: true });
          const cdp = session(sessionId);
          // the viewport playwright gives a page, so that both clients lay the shop page out alike
          await cdp.send('Emulation.setDeviceMetricsOverride', { width: 1280, height: 720, deviceScaleFactor: 1, mobile: false });
          await cdp.send('Page.enable');
          await cdp.send('Runtime.enable');
          const page = new EventEmitter();
          cdp.on('Runtime.consoleAPICalled', (e) => page.emit('console', { type: () => e.type, text: () => e.args.map((a) => a.value ?? a.description ?? '').join(' ') }));
          cdp.on('Runtime.exceptionThrown', (e) => page.emit('console', { type: () => 'error', text: () => e.exceptionDetails.exception?.description || e.exceptionDetails.text }));
          page.goto = async (url) => {
            const loaded = new Promise((r) => cdp.once('Page.loadEventFired', r));
            const { errorText } = await cdp.send('Page.navigate', { url });
            if (errorText) throw new Error(`navigating to ${url}: ${errorText}`);
            await loaded;
          };
          // (the value comes back as JSON, undefined where it has none, as a window or a DOM node)
          page.evaluate = async (fn, arg) => {
            const call = typeof fn == 'string' ? fn : `(${fn})(${arg === undefined ? '' : JSON.stringify(arg)})`;
            const { result, exceptionDetails } = await cdp.send('Runtime.evaluate', {
              expression: `Promise.resolve(${call}).then((v) => { try { return JSON.stringify(v); } catch (e) {} })`,
              awaitPromise: true,
              returnByValue: true,
            });
            if (exceptionDetails) throw new Error(`evaluate: ${exceptionDetails.exception?.description || exceptionDetails.text}`);
            return result.value === undefined ? undefined : JSON.parse(result.value);
          };
          // a trusted click at the element's centre, as a user's (the SDK finalizes LCP and rates INP on those)
          page.click = async (selector) => {
            const at = await page.evaluate((s) => {
              const r = document.querySelector(s).getBoundingClientRect();
              return { x: r.left + r.width / 2, y: r.top + r.height / 2 };
            }, selector);
            await cdp.send('Input.dispatchMouseEvent', { type: 'mouseMoved', ...at });
            await cdp.send('Input.dispatchMouseEvent', { type: 'mousePressed', button: 'left', clickCount: 1, ...at });
            await cdp.send('Input.dispatchMouseEvent', { type: 'mouseReleased', button: 'left', clickCount: 1, ...at });
          };
          pages.set(page, cdp);
          return page;
        },
        newCDPSession: async (page) => pages.get(page),
        close: () => send('Target.disposeBrowserContext', { browserContextId }),
      };
    },
    async close() {
      if (!closed) {
        send('Browser.close').catch(() => {});
        await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
        if (!closed) child.kill('SIGKILL');
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
