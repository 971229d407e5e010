// The agent page's script: the page works without it (server-rendered HTML); this only refreshes the live
// part every few seconds and runs a check now (POST /api/v1/checks/{name}/run, with the admin token if needed).
'use strict';
(function () {
  const REFRESH_MS = 5000;
  const TOKEN_KEY = 'vantage-agent-admin-token';
  const status = document.getElementById('live-status');
  for (const el of document.querySelectorAll('.js-only')) el.hidden = false;

  // Fetches this page again and swaps in its live part (a run being typed into the token box is outside it).
  let inflight = false;
  async function refresh() {
    if (inflight) return;
    inflight = true;
    try {
      const r = await fetch(location.href, { headers: { accept: 'text/html' }, cache: 'no-store' });
      if (!r.ok) throw new Error(`HTTP ${r.status}`);
      const doc = new DOMParser().parseFromString(await r.text(), 'text/html');
      const next = doc.getElementById('live');
      const live = document.getElementById('live');
      if (next && live) live.replaceWith(document.importNode(next, true));
      document.title = doc.title;
      if (status) {
        status.hidden = false;
        status.classList.remove('stale');
        status.textContent = 'live';
      }
      document.body.dataset.refreshed = String(Date.now());
    } catch (e) {
      if (status) {
        status.hidden = false;
        status.classList.add('stale');
        status.textContent = 'agent unreachable';
      }
    } finally {
      inflight = false;
    }
  }
  if (status) status.hidden = false;
  setInterval(() => {
    if (document.visibilityState === 'visible') refresh();
  }, REFRESH_MS);
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible') refresh();
  });

  const form = document.getElementById('run-now');
  if (!form) return;
  form.hidden = false;
  const out = document.getElementById('run-now-status');
  const tokenInput = document.getElementById('run-now-token');
  const button = form.querySelector('button');
  if (tokenInput) tokenInput.value = sessionStorage.getItem(TOKEN_KEY) || '';
  const say = (text, bad) => {
    out.textContent = text;
    out.classList.toggle('bad', !!bad);
  };
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const headers = {};
    if (form.dataset.token === 'required') {
      const token = tokenInput.value.trim();
      if (!token) {
        say('enter the admin token first', true);
        tokenInput.focus();
        return;
      }
      headers.authorization = `Bearer ${token}`;
    }
    button.disabled = true;
    say('running…');
    try {
      const name = form.dataset.check;
      const r = await fetch(`/api/v1/checks/${name}/run`, { method: 'POST', headers });
      const body = await r.json().catch(() => ({}));
      if (r.status === 401) {
        sessionStorage.removeItem(TOKEN_KEY);
        say('the admin token was not accepted', true);
        return;
      }
      if (!r.ok) {
        say(body.error || `failed: HTTP ${r.status}`, true);
        return;
      }
      if (tokenInput) sessionStorage.setItem(TOKEN_KEY, tokenInput.value.trim());
      const run = body.run;
      say(run ? (run.success ? `ok in ${(run.duration_seconds * 1000).toFixed(1)} ms` : `failed: ${run.error_type}`) : 'done', run && !run.success);
      // Show the new run selected.
      const url = new URL(location.href);
      if (run) url.searchParams.set('run', run.id);
      url.hash = 'run';
      history.replaceState(null, '', url);
      await refresh();
    } catch (e) {
      say(`failed: ${e.message}`, true);
    } finally {
      button.disabled = false;
    }
  });
})();
