// The RUM explorer: reads this server's stats API with the admin token typed into the login form. The token
// lives in sessionStorage (this tab only) and goes out only as `Authorization: Bearer`, never in a URL. Every
// piece of text from the API is put in the page as text (no innerHTML); charts are SVG built here.
'use strict';

(function () {
  const TOKEN_KEY = 'vantage.explorer.token';
  const SITE_KEY = 'vantage.explorer.site';
  const WINDOW_KEY = 'vantage.explorer.window';
  const SVG_NS = 'http://www.w3.org/2000/svg';

  // Google's web vitals thresholds (web.dev): good up to the first, poor above the second.
  const VITALS = [
    { name: 'LCP', good: 2500, poor: 4000, ms: true, title: 'Largest Contentful Paint' },
    { name: 'INP', good: 200, poor: 500, ms: true, title: 'Interaction to Next Paint' },
    { name: 'CLS', good: 0.1, poor: 0.25, ms: false, title: 'Cumulative Layout Shift' },
    { name: 'FCP', good: 1800, poor: 3000, ms: true, title: 'First Contentful Paint' },
    { name: 'TTFB', good: 800, poor: 1800, ms: true, title: 'Time to First Byte' },
  ];
  const RATING_TEXT = { good: 'Good', 'needs-improvement': 'Needs improvement', poor: 'Poor' };

  const $ = (id) => document.getElementById(id);
  const view = $('view');
  const state = {
    token: sessionStorage.getItem(TOKEN_KEY),
    site: sessionStorage.getItem(SITE_KEY),
    window: sessionStorage.getItem(WINDOW_KEY) || '24h',
    sites: null,
    // Bumped on each render: answers to an older render are dropped.
    generation: 0,
  };

  // ---------------------------------------------------------------------------------------------------------
  // DOM helpers

  /** An element with attributes (`class`, `data-*`, `href`, ...) and children (nodes or text). */
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    setAttrs(el, attrs);
    append(el, children);
    return el;
  }

  function svg(tag, attrs, ...children) {
    const el = document.createElementNS(SVG_NS, tag);
    setAttrs(el, attrs);
    append(el, children);
    return el;
  }

  function setAttrs(el, attrs) {
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? '' : String(v));
    }
  }

  function append(el, children) {
    for (const c of children.flat(Infinity)) {
      if (c === null || c === undefined || c === false) continue;
      el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
  }

  function show(...nodes) {
    view.replaceChildren(...nodes);
  }

  // ---------------------------------------------------------------------------------------------------------
  // Formatting

  function ms(v) {
    if (v === null || v === undefined) return '–';
    if (v < 1000) return `${Math.round(v)} ms`;
    if (v < 10000) return `${(v / 1000).toFixed(2)} s`;
    if (v < 60000) return `${(v / 1000).toFixed(1)} s`;
    return `${Math.floor(v / 60000)} min ${Math.round((v % 60000) / 1000)} s`;
  }

  function vitalValue(def, v) {
    if (def.ms) return ms(v);
    if (v === 0) return '0';
    return v < 0.01 ? v.toFixed(3) : v.toFixed(2);
  }

  /** "1 event", "3 events". */
  function plural(n, word) {
    return `${count(n)} ${word}${n === 1 ? '' : 's'}`;
  }

  /** The width charts are drawn at: the view's, so that their text stays at its size on a phone. */
  function chartWidth() {
    return Math.max(300, Math.min(1600, view.clientWidth - 40));
  }

  function rate(def, v) {
    if (v <= def.good) return 'good';
    if (v <= def.poor) return 'needs-improvement';
    return 'poor';
  }

  function badge(rating) {
    return h('span', { class: `badge ${rating}` }, RATING_TEXT[rating] || rating);
  }

  function count(n) {
    return Number(n).toLocaleString('en-US');
  }

  function pct(x) {
    if (x === 0) return '0%';
    if (x < 0.001) return '<0.1%';
    return `${(x * 100).toFixed(x < 0.1 ? 1 : 0)}%`;
  }

  const pad = (n) => String(n).padStart(2, '0');

  /** A session id short enough for a table: its end (the SDK's ids start with the time, alike within minutes). */
  const shortId = (id) => (id.length > 10 ? `…${id.slice(-8)}` : id);

  function clock(t) {
    const d = new Date(t);
    return `${pad(d.getHours())}:${pad(d.getMinutes())}`;
  }

  function dateTime(t) {
    const d = new Date(t);
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  }

  /** "12 s ago", "5 min ago", "3 h ago", "2 d ago", with the exact time as the tooltip. */
  function ago(t) {
    const s = Math.max(0, Math.round((Date.now() - t) / 1000));
    const text = s < 60 ? `${s} s ago` : s < 3600 ? `${Math.floor(s / 60)} min ago` : s < 86400 ? `${Math.floor(s / 3600)} h ago` : `${Math.floor(s / 86400)} d ago`;
    return h('time', { datetime: new Date(t).toISOString(), title: dateTime(t) }, text);
  }

  /** "+0.0 s", "+12.4 s", "+3 min 05 s": time since the session's first event. */
  function since(d) {
    if (d < 60000) return `+${(d / 1000).toFixed(1)} s`;
    const s = Math.round(d / 1000);
    if (s < 3600) return `+${Math.floor(s / 60)} min ${pad(s % 60)} s`;
    return `+${Math.floor(s / 3600)} h ${pad(Math.floor((s % 3600) / 60))} min`;
  }

  function windowText(w) {
    const opt = [...$('window-select').options].find((o) => o.value === w);
    return opt ? opt.textContent : `last ${w}`;
  }

  // ---------------------------------------------------------------------------------------------------------
  // The API

  class Refused extends Error {}

  /** GET `path` with the token; a 401 or 403 signs out with the server's reason. */
  async function api(path, params) {
    const q = new URLSearchParams(params || {});
    const url = q.toString() ? `${path}?${q}` : path;
    const r = await fetch(url, { headers: { authorization: `Bearer ${state.token}` }, cache: 'no-store' });
    let body = null;
    try {
      body = await r.json();
    } catch (e) {
      body = null;
    }
    const reason = (body && body.error) || `HTTP ${r.status}`;
    if (r.status === 401 || r.status === 403) {
      signOut(
        r.status === 403
          ? `This token may not read stats (${reason}). Use a token with the read scope.`
          : `The server refused the token: ${reason}. Sign in again.`
      );
      throw new Refused(reason);
    }
    if (!r.ok) throw new Error(`${path}: ${reason}`);
    return body;
  }

  const siteParams = (extra) => ({ site: state.site, window: state.window, ...(extra || {}) });

  // ---------------------------------------------------------------------------------------------------------
  // Signing in and out

  function signOut(message) {
    state.token = null;
    state.sites = null;
    sessionStorage.removeItem(TOKEN_KEY);
    $('tabs').hidden = true;
    $('controls').hidden = true;
    view.replaceChildren();
    $('login').hidden = false;
    const err = $('login-error');
    err.textContent = message || '';
    err.hidden = !message;
    $('token').value = '';
    $('token').focus();
  }

  async function signIn(token) {
    state.token = token;
    let sites;
    try {
      sites = await fetch('/v1/stats/sites', { headers: { authorization: `Bearer ${token}` }, cache: 'no-store' });
    } catch (e) {
      signOut(`Cannot reach the server: ${e.message}`);
      return;
    }
    const body = await sites.json().catch(() => ({}));
    if (!sites.ok) {
      signOut(sites.status === 403 ? 'This token may not read stats: it needs the read scope.' : `The server refused this token: ${body.error || `HTTP ${sites.status}`}.`);
      return;
    }
    sessionStorage.setItem(TOKEN_KEY, token);
    $('token').value = '';
    start(body.sites || []);
  }

  function start(sites) {
    state.sites = sites.map((s) => s.id);
    if (!state.site || (state.sites.length && !state.sites.includes(state.site))) state.site = state.sites[0] || '';
    const select = $('site-select');
    const input = $('site-input');
    if (state.sites.length) {
      select.replaceChildren(...state.sites.map((id) => h('option', { value: id }, id)));
      select.value = state.site;
      select.hidden = false;
      input.hidden = true;
    } else {
      // No site list: the user types the site, remembered in this tab.
      input.value = state.site || '';
      input.hidden = false;
      select.hidden = true;
    }
    $('window-select').value = state.window;
    $('login').hidden = true;
    $('tabs').hidden = false;
    $('controls').hidden = false;
    if (!location.hash || location.hash === '#') location.hash = '#/overview';
    else render();
  }

  function setSite(site) {
    state.site = site.trim();
    sessionStorage.setItem(SITE_KEY, state.site);
    // A session or group of another site means nothing here.
    const [tab] = route();
    if (location.hash !== `#/${tab}`) location.hash = `#/${tab}`;
    else render();
  }

  // ---------------------------------------------------------------------------------------------------------
  // Routing: #/overview, #/errors, #/errors/<group>, #/sessions, #/sessions/<id>

  function route() {
    const parts = location.hash.replace(/^#\/?/, '').split('/');
    const tab = ['overview', 'errors', 'sessions'].includes(parts[0]) ? parts[0] : 'overview';
    return [tab, parts.slice(1).map(decodeURIComponent).join('/') || null];
  }

  async function render() {
    if (!state.token || !state.sites) return;
    const [tab, id] = route();
    for (const a of document.querySelectorAll('#tabs a')) a.classList.toggle('active', a.dataset.tab === tab);
    const generation = ++state.generation;
    const current = () => generation === state.generation;
    if (!state.site) {
      show(emptyCard('Which site?', ['Type the id of a site from the ingest config in the Site box above.']));
      return;
    }
    show(h('p', { class: 'loading' }, 'Loading…'));
    try {
      const nodes =
        tab === 'errors'
          ? await errorsView(id)
          : tab === 'sessions'
            ? id
              ? await sessionView(id)
              : await sessionsView()
            : await overview();
      if (current()) show(...nodes);
    } catch (e) {
      if (e instanceof Refused || !current()) return;
      show(h('div', { class: 'card problem', role: 'alert' }, `Could not load this view: ${e.message}`));
    }
    document.title = `${tab[0].toUpperCase()}${tab.slice(1)} · ${state.site} · Vantage RUM explorer`;
  }

  function pageHead(title, ...extra) {
    return h('div', { class: 'page-head' }, h('div', null, h('h1', null, title), h('div', { class: 'muted' }, `Site ${state.site} · ${windowText(state.window)}`)), ...extra);
  }

  function emptyCard(title, lines, snippet) {
    return h('div', { class: 'card empty' }, h('h2', null, title), lines.map((l) => h('p', null, l)), snippet ? h('pre', { class: 'snippet' }, snippet) : null);
  }

  function tagSnippet() {
    return `<script src="${location.origin}/rum-sdk.js"\n        data-endpoint="${location.origin}/v1/events"\n        data-api-key="YOUR_SITE_KEY" data-release="YOUR_RELEASE" defer></script>`;
  }

  function table(columns, rows, opts) {
    const o = opts || {};
    return h(
      'div',
      { class: 'table-wrap' },
      h(
        'table',
        { class: 'stack' },
        h('thead', null, h('tr', null, columns.map((c) => h('th', { class: c.num ? 'num' : null, scope: 'col', title: c.title || null }, c.label)))),
        h(
          'tbody',
          null,
          rows.map((r) =>
            h(
              'tr',
              { class: o.onclick ? 'clickable' : null, 'data-key': o.key ? o.key(r) : null, onclick: o.onclick ? () => o.onclick(r) : null },
              columns.map((c) => h('td', { class: c.cls || (c.num ? 'num' : null), 'data-label': c.label }, c.cell(r)))
            )
          )
        )
      )
    );
  }

  // ---------------------------------------------------------------------------------------------------------
  // Overview

  async function overview() {
    const p = siteParams();
    const [vitals, pages, apis, timeline, errors] = await Promise.all([
      api('/v1/stats/vitals', p),
      api('/v1/stats/pages', p),
      api('/v1/stats/api', p),
      api('/v1/stats/timeline', p),
      api('/v1/stats/errors', p),
    ]);
    const head = pageHead('Overview');
    if (!timeline.totals.page_loads && !timeline.totals.errors && !vitals.vitals.length && !apis.api.length) {
      return [
        head,
        emptyCard(
          `No events for site ${state.site} in the ${windowText(state.window)}`,
          ['Add the script tag to your pages, with your site key and the release the page runs (a version or a git sha), load a page, and come back: events show up here within seconds.', 'Or pick a longer window above.'],
          tagSnippet()
        ),
      ];
    }
    const errorCount = timeline.totals.errors;
    const stats = h(
      'div',
      { class: 'stats' },
      stat('Page loads', count(timeline.totals.page_loads)),
      stat('JS errors', count(errorCount), errorCount > 0),
      stat('Error groups', count(errors.groups.length), errors.groups.length > 0),
      stat('Routes', count(new Set([...vitals.vitals.map((v) => v.route), ...pages.pages.map((p) => p.route)]).size))
    );
    return [head, stats, chartCard(timeline), vitalsCard(vitals.vitals, pages.pages), apiCard(apis.api)];
  }

  function stat(label, value, bad) {
    return h('div', { class: 'stat' }, h('div', { class: 'label' }, label), h('div', { class: `value${bad ? ' bad' : ''}` }, value));
  }

  function bucketText(ms) {
    const min = ms / 60000;
    if (min < 60) return `${min} min`;
    if (min < 1440) return `${min / 60} h`;
    return `${min / 1440} d`;
  }

  /** Page loads and errors per bucket: two bar charts sharing the time axis, each with its own scale. */
  function chartCard(t) {
    const W = chartWidth();
    const left = 40;
    const right = 10;
    const plotW = W - left - right;
    const lanes = [
      { key: 'page_loads', label: 'Page loads', cls: 'bar-loads', top: 22, height: 110 },
      { key: 'errors', label: 'Errors', cls: 'bar-errors', top: 166, height: 56 },
    ];
    const H = 250;
    const n = t.buckets.length;
    const step = plotW / n;
    const gap = step > 4 ? 1 : 0;
    const root = svg('svg', { class: 'chart', viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: 'img', 'aria-label': `Page loads and errors per ${bucketText(t.bucket_ms)}` });
    for (const lane of lanes) {
      const top = niceMax(Math.max(1, ...t.buckets.map((b) => b[lane.key])));
      const base = lane.top + lane.height;
      // Gridlines at 0, the middle (when it is a whole number) and the top.
      for (const v of [0, top / 2, top].filter((x) => Number.isInteger(x))) {
        const y = base - (v / top) * lane.height;
        root.append(svg('line', { class: 'grid', x1: left, x2: W - right, y1: y, y2: y }));
        root.append(svg('text', { class: 'axis', x: left - 6, y: y + 4, 'text-anchor': 'end' }, count(v)));
      }
      root.append(svg('text', { class: 'lane-label', x: left, y: lane.top - 8 }, lane.label));
      t.buckets.forEach((b, i) => {
        const v = b[lane.key];
        if (!v) return;
        const bh = Math.max(2, (v / top) * lane.height);
        root.append(
          svg(
            'rect',
            { class: lane.cls, x: (left + i * step + gap / 2).toFixed(2), y: (base - bh).toFixed(2), width: Math.max(2, step - gap).toFixed(2), height: bh.toFixed(2) },
            svg('title', null, `${dateTime(b.start_ms)}: ${plural(v, lane.key === 'errors' ? 'error' : 'page load')}`)
          )
        );
      });
    }
    // Time labels on bucket starts, about one per 130 px, none cut at the right edge.
    const every = Math.max(1, Math.round(n / Math.max(2, Math.floor(plotW / 130))));
    for (let i = 0; i < n; i += every) {
      const x = left + i * step;
      if (x > W - right - 40) break;
      const b = t.buckets[i];
      const label = t.bucket_ms >= 86400000 ? dateTime(b.start_ms).slice(5, 10) : t.bucket_ms >= 3600000 ? `${dateTime(b.start_ms).slice(5, 10)} ${clock(b.start_ms)}` : clock(b.start_ms);
      root.append(svg('line', { class: 'grid', x1: x, x2: x, y1: H - 22, y2: H - 18 }));
      root.append(svg('text', { class: 'axis', x, y: H - 6, 'text-anchor': i === 0 ? 'start' : 'middle' }, label));
    }
    return h(
      'div',
      { class: 'card', id: 'chart' },
      h('div', { class: 'card-head' }, h('h2', null, `Page loads and errors per ${bucketText(t.bucket_ms)}`), h('div', { class: 'legend' }, h('span', null, h('span', { class: 'key loads' }), plural(t.totals.page_loads, 'page load')), h('span', null, h('span', { class: 'key errors' }), plural(t.totals.errors, 'error')))),
      root
    );
  }

  function niceMax(v) {
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
    return 10 * p;
  }

  function vitalsCard(vitals, pages) {
    const routes = new Map();
    const row = (route) => {
      if (!routes.has(route)) routes.set(route, { route, vitals: {}, page: null });
      return routes.get(route);
    };
    for (const v of vitals) row(v.route).vitals[v.name] = v;
    for (const p of pages) row(p.route).page = p;
    const rows = [...routes.values()].sort((a, b) => (b.page ? b.page.samples : 0) - (a.page ? a.page.samples : 0) || a.route.localeCompare(b.route));
    const columns = [
      { label: 'Route', cls: 'route', cell: (r) => r.route },
      { label: 'Load p75', title: 'Page load time, 75th percentile', cell: (r) => (r.page ? h('div', { class: 'vital' }, h('span', { class: 'v' }, ms(r.page.p75_ms)), h('span', { class: 'n' }, plural(r.page.samples, 'load'))) : '–') },
      ...VITALS.map((def) => ({
        label: def.name,
        title: `${def.title}, 75th percentile`,
        cell: (r) => {
          const v = r.vitals[def.name];
          if (!v) return h('span', { class: 'muted' }, '–');
          const rating = rate(def, v.p75);
          return h('div', { class: 'vital', 'data-vital': def.name, 'data-rating': rating }, h('span', { class: 'v' }, vitalValue(def, v.p75)), badge(rating), h('span', { class: 'n' }, plural(v.samples, 'sample')));
        },
      })),
    ];
    return h(
      'div',
      { class: 'card', id: 'vitals' },
      h(
        'div',
        { class: 'card-head' },
        h('h2', null, 'Web vitals per route (p75)'),
        h('div', { class: 'thresholds' }, 'Rated by Google’s thresholds: ', badge('good'), badge('needs-improvement'), badge('poor'))
      ),
      rows.length ? table(columns, rows, { key: (r) => r.route }) : h('p', { class: 'muted' }, 'No page loads or web vitals in this window.')
    );
  }

  function apiCard(apis) {
    const rows = apis.slice(0, 10);
    const columns = [
      { label: 'Endpoint', cls: 'endpoint', cell: (a) => a.endpoint },
      { label: 'Calls', num: true, cell: (a) => count(a.calls) },
      { label: 'Failed', num: true, title: 'HTTP status 400 or more, or no answer', cell: (a) => (a.errors ? h('span', { class: 'status-bad' }, `${count(a.errors)} (${pct(a.error_share)})`) : '0') },
      { label: 'p50', num: true, cell: (a) => ms(a.p50_ms) },
      { label: 'p95', num: true, cell: (a) => ms(a.p95_ms) },
    ];
    return h(
      'div',
      { class: 'card', id: 'api' },
      h('div', { class: 'card-head' }, h('h2', null, 'Slowest API endpoints (p95)'), apis.length > rows.length ? h('span', { class: 'muted small' }, `${rows.length} of ${apis.length}`) : null),
      rows.length ? table(columns, rows, { key: (a) => a.endpoint }) : h('p', { class: 'muted' }, 'No fetch or XHR calls in this window.')
    );
  }

  // ---------------------------------------------------------------------------------------------------------
  // Errors

  async function errorsView(groupId) {
    const data = await api('/v1/stats/errors', siteParams());
    let groups = data.groups;
    if (groupId) {
      groups = groups.filter((g) => g.id === groupId);
      if (!groups.length) {
        return [pageHead('Error group'), emptyCard('This group has no errors in this window', [`Group ${groupId} did not occur on ${state.site} in the ${windowText(state.window)}.`]), h('p', null, h('a', { href: '#/errors' }, '← All error groups'))];
      }
    }
    const head = groupId ? pageHead('Error group', h('a', { href: '#/errors' }, '← All error groups')) : pageHead('Errors', h('span', { class: 'muted' }, `${count(groups.length)} group${groups.length === 1 ? '' : 's'}`));
    if (!groups.length) {
      return [head, emptyCard(`No JavaScript errors for site ${state.site} in the ${windowText(state.window)}`, ['Errors the SDK catches (uncaught exceptions and rejected promises) are grouped here, with their stacks made readable by the source maps you upload for each release.'])];
    }
    const cards = groups.map((g) => groupCard(g, !!groupId));
    if (groupId) cards.push(await occurrencesCard(groupId));
    return [head, ...cards];
  }

  function groupCard(g, open) {
    const occurrences = h('div', { class: 'occurrences' });
    const toggle = h('button', { type: 'button', class: 'secondary', 'data-action': 'occurrences' }, 'Recent occurrences');
    toggle.addEventListener('click', async () => {
      if (occurrences.firstChild) {
        occurrences.replaceChildren();
        toggle.textContent = 'Recent occurrences';
        return;
      }
      toggle.disabled = true;
      try {
        occurrences.replaceChildren(await occurrencesCard(g.id));
        toggle.textContent = 'Hide occurrences';
      } catch (e) {
        if (!(e instanceof Refused)) occurrences.replaceChildren(h('p', { class: 'problem card' }, e.message));
      } finally {
        toggle.disabled = false;
      }
    });
    return h(
      'article',
      { class: 'card group', 'data-group': g.id },
      h('div', { class: 'group-title' }, h('span', { class: 'etype' }, g.type), h(open ? 'span' : 'a', { class: 'msg', href: open ? null : `#/errors/${g.id}` }, g.message || '(no message)')),
      h(
        'div',
        { class: 'facts' },
        h('span', null, h('b', null, count(g.count)), ` event${g.count === 1 ? '' : 's'}`),
        h('span', null, h('b', null, count(g.sessions)), ` session${g.sessions === 1 ? '' : 's'}`),
        h('span', null, 'first ', ago(g.first_seen_ms)),
        h('span', null, 'last ', ago(g.last_seen_ms)),
        h('span', null, 'releases ', g.releases.length ? h('span', { class: 'chips' }, g.releases.map((r) => h('span', { class: 'chip' }, r))) : h('span', { class: 'muted' }, 'none given')),
        h('span', null, 'pages ', h('span', { class: 'chips' }, g.top_pages.map((p) => h('span', { class: 'chip', title: `${p.count} events` }, p.value)))),
        g.top_browsers.length ? h('span', null, 'browsers ', g.top_browsers.map((b) => `${b.value} (${b.count})`).join(', ')) : null
      ),
      h('p', { class: 'sample-msg' }, h('span', { class: 'muted' }, 'Latest: '), g.sample.message, g.sample.release ? h('span', { class: 'muted' }, ` (${g.sample.release})`) : null),
      g.sample.stack ? stack(g.sample.stack) : h('p', { class: 'muted' }, 'No stack was sent with this error.'),
      open ? null : h('div', { class: 'actions' }, toggle),
      occurrences
    );
  }

  /** A stack, frames one per line; frames mapped to source files (no URL left: a source map rewrote them) stand out. */
  function stack(text) {
    const lines = text.split('\n');
    return h(
      'pre',
      { class: 'stack' },
      lines.map((l, i) => {
        const frame = /^\s*at\s/.test(l);
        const own = frame && !/:\/\/|node_modules/.test(l);
        return [h('span', { class: own ? 'frame-app' : null }, l), i < lines.length - 1 ? '\n' : ''];
      })
    );
  }

  async function occurrencesCard(groupId) {
    const data = await api(`/v1/stats/errors/${encodeURIComponent(groupId)}`, siteParams({ limit: 20 }));
    const columns = [
      { label: 'When', cell: (o) => ago(o.time_ms) },
      { label: 'Route', cls: 'route', cell: (o) => o.route },
      { label: 'Release', cell: (o) => o.release || '–' },
      { label: 'Browser', cell: (o) => o.browser },
      { label: 'Session', cell: (o) => h('a', { class: 'mono', href: `#/sessions/${encodeURIComponent(o.session_id)}`, title: o.session_id }, shortId(o.session_id)) },
    ];
    return h('div', { class: 'card', id: 'occurrences' }, h('h2', null, 'Recent occurrences'), data.occurrences.length ? table(columns, data.occurrences) : h('p', { class: 'muted' }, 'None in this window.'));
  }

  // ---------------------------------------------------------------------------------------------------------
  // Sessions

  async function sessionsView() {
    const data = await api('/v1/stats/sessions', siteParams({ limit: 100 }));
    const head = pageHead('Sessions', h('span', { class: 'muted' }, data.sessions.length >= 100 ? 'the 100 latest' : `${count(data.sessions.length)} session${data.sessions.length === 1 ? '' : 's'}`));
    if (!data.sessions.length) {
      return [head, emptyCard(`No sessions for site ${state.site} in the ${windowText(state.window)}`, ['A session is a visitor’s tab: its page views, API calls, clicks, vitals and errors. Add the script tag to your pages and sessions show up here.'], tagSnippet())];
    }
    const columns = [
      { label: 'Session', cell: (s) => h('a', { class: 'mono', href: `#/sessions/${encodeURIComponent(s.id)}`, title: s.id }, shortId(s.id)) },
      { label: 'Last seen', cell: (s) => ago(s.last_ms) },
      { label: 'Length', num: true, cell: (s) => ms(s.last_ms - s.start_ms) },
      { label: 'Page views', num: true, cell: (s) => count(s.page_views) },
      { label: 'Errors', num: true, cell: (s) => (s.errors ? h('span', { class: 'status-bad' }, count(s.errors)) : '0') },
      { label: 'Last page', cls: 'route', cell: (s) => s.last_route },
      { label: 'Browser', cell: (s) => `${s.browser} · ${s.device}` },
      { label: 'Release', cell: (s) => s.release || '–' },
    ];
    return [head, h('div', { class: 'card' }, table(columns, data.sessions, { key: (s) => s.id, onclick: (s) => (location.hash = `#/sessions/${encodeURIComponent(s.id)}`) }))];
  }

  const LANES = [
    { label: 'Pages', types: ['page_load', 'route_change'] },
    { label: 'API calls', types: ['api_call'] },
    { label: 'Clicks', types: ['user_interaction'] },
    { label: 'Vitals', types: ['web_vital'] },
    { label: 'Errors', types: ['error'] },
  ];
  const TYPE_TEXT = { page_load: 'page load', route_change: 'route', api_call: 'API call', user_interaction: 'click', web_vital: 'vital', error: 'error', long_task: 'long task', resource_load: 'resource', custom: 'custom' };
  const known = (t) => (TYPE_TEXT[t] && !['long_task', 'resource_load', 'custom'].includes(t) ? t : 'other');

  async function sessionView(id) {
    const data = await api(`/v1/stats/sessions/${encodeURIComponent(id)}`, siteParams());
    const head = pageHead('Session', h('a', { href: '#/sessions' }, '← All sessions'));
    const events = data.events;
    if (!events.length) {
      return [head, emptyCard('No events for this session in this window', [`Session ${id} sent nothing to ${state.site} in the ${windowText(state.window)}. Pick a longer window above.`])];
    }
    const t0 = events[0].time_ms;
    const span = events[events.length - 1].time_ms - t0;
    const errors = events.filter((e) => e.type === 'error').length;
    const views = events.filter((e) => e.type === 'page_load' || e.type === 'route_change').length;
    const summary = h(
      'div',
      { class: 'card' },
      h('div', { class: 'facts' }, h('span', null, 'id ', h('span', { class: 'mono' }, id)), h('span', null, 'started ', ago(t0), ` (${dateTime(t0)})`), h('span', null, h('b', null, ms(span)), ' long'), h('span', null, h('b', null, count(views)), views === 1 ? ' page view' : ' page views'), h('span', null, h('b', null, count(events.length)), events.length === 1 ? ' event' : ' events'), h('span', null, h('b', { class: errors ? 'status-bad' : null }, count(errors)), errors === 1 ? ' error' : ' errors')),
      lanesChart(events, t0, span)
    );
    const list = h(
      'ol',
      { class: 'events', id: 'session-events' },
      events.map((e) => h('li', { 'data-type': e.type }, h('span', { class: 'at' }, since(e.time_ms - t0)), h('span', null, h('span', { class: `ev ${known(e.type)}` }, TYPE_TEXT[e.type] || e.type)), h('span', { class: 'what' }, describe(e))))
    );
    return [head, summary, h('div', { class: 'card' }, h('h2', null, 'Events in order'), list, data.truncated ? h('p', { class: 'muted small' }, `Only the first ${events.length} events are shown.`) : null)];
  }

  /** One line about an event: what happened, on which route, how long or which value. */
  function describe(e) {
    const route = h('span', { class: 'route' }, e.route);
    switch (e.type) {
      case 'page_load':
        return [route, e.value !== null ? ` loaded in ${ms(e.value)}` : ' loaded'];
      case 'route_change':
        return ['to ', route, e.value !== null ? ` in ${ms(e.value)}` : ''];
      case 'api_call': {
        const bad = e.status === 0 || e.status >= 400;
        return [h('span', { class: 'route' }, e.endpoint || 'unknown'), ' → ', h('span', { class: bad ? 'status-bad' : null }, e.status === 0 ? 'no answer' : String(e.status)), e.value !== null ? ` in ${ms(e.value)}` : ''];
      }
      case 'user_interaction':
        return [e.target ? h('span', { class: 'route' }, e.target) : 'an element', ' on ', route, e.value !== null ? `, next paint after ${ms(e.value)}` : ''];
      case 'web_vital': {
        const def = VITALS.find((d) => d.name === e.name);
        const value = def && e.value !== null ? vitalValue(def, e.value) : String(e.value);
        return [h('b', null, e.name || '?'), ` ${value} `, e.rating ? badge(e.rating) : null, ' on ', route];
      }
      case 'error':
        return [h('span', { class: 'status-bad' }, e.name || '(no message)'), ' on ', route, e.group ? [' · ', h('a', { href: `#/errors/${e.group}` }, 'group')] : null];
      default:
        return [e.name ? `${e.name} ` : '', e.value !== null ? `${ms(e.value)} ` : '', 'on ', route];
    }
  }

  /** The session as lanes of marks on one time axis. */
  function lanesChart(events, t0, span) {
    const W = chartWidth();
    const left = 78;
    const right = 14;
    const laneH = 26;
    const top = 6;
    const H = top + LANES.length * laneH + 24;
    const x = (t) => left + (span > 0 ? ((t - t0) / span) * (W - left - right) : 0);
    const root = svg('svg', { class: 'lanes', viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: 'img', 'aria-label': 'The session’s events on a time line' });
    LANES.forEach((lane, i) => {
      const y = top + i * laneH;
      root.append(svg('rect', { class: 'lane-bg', x: left, y: y + 3, width: W - left - right, height: laneH - 6, rx: 4 }));
      root.append(svg('text', { class: 'lane-label', x: 0, y: y + laneH / 2 + 4 }, lane.label));
      for (const e of events.filter((ev) => lane.types.includes(ev.type))) {
        root.append(svg('circle', { class: `mark t-${known(e.type)}`, cx: x(e.time_ms).toFixed(1), cy: y + laneH / 2, r: e.type === 'error' ? 6 : 5 }, svg('title', null, `${since(e.time_ms - t0)} ${TYPE_TEXT[e.type] || e.type}: ${e.name || e.endpoint || e.route}`)));
      }
    });
    for (const [t, label] of axisTicks(span, W < 600 ? 2 : 4)) {
      // (a label at the lane's right end is drawn to its left, not past the chart)
      const at = x(t0 + t);
      root.append(svg('text', { class: 'axis', 'data-ms': t, x: at, y: H - 6, 'text-anchor': t === 0 ? 'start' : at > W - right - 24 ? 'end' : 'middle' }, label));
    }
    return root;
  }

  // Steps a time axis may take, in ms: 1-2-5 below a second, then seconds, minutes and hours a reader counts in
  // (beyond a day at `most` intervals, whole multiples of the last).
  const AXIS_STEPS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1e3, 2e3, 5e3, 1e4, 15e3, 3e4, 6e4, 12e4, 3e5, 6e5, 9e5, 18e5, 36e5, 72e5, 108e5, 216e5];

  /**
   * Ticks for a time axis from 0 to `span` ms: the multiples of the smallest step that needs at most `most`
   * intervals, so that the labels are round and evenly spaced ("+0.0 s, +0.2 s, +0.4 s, +0.6 s" for a 669 ms
   * session, where fractions of the span read "+0.2 s, +0.3 s, +0.5 s"), as [ms, label] pairs; a label has as many
   * decimals of a second as the step needs.
   */
  function axisTicks(span, most) {
    const last = AXIS_STEPS[AXIS_STEPS.length - 1];
    const step = AXIS_STEPS.find((s) => span / s <= most) || Math.ceil(span / most / last) * last;
    const decimals = Math.max(0, 3 - Math.floor(Math.log10(step)));
    const ticks = [];
    for (let t = 0; t <= span; t += step) ticks.push([t, t < 60000 ? `+${(t / 1000).toFixed(decimals)} s` : since(t)]);
    return ticks;
  }

  // ---------------------------------------------------------------------------------------------------------
  // Wiring

  $('login-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const token = $('token').value.trim();
    if (token) signIn(token);
  });
  $('sign-out').addEventListener('click', () => signOut(''));
  $('site-select').addEventListener('change', (ev) => setSite(ev.target.value));
  $('site-input').addEventListener('change', (ev) => setSite(ev.target.value));
  $('window-select').addEventListener('change', (ev) => {
    state.window = ev.target.value;
    sessionStorage.setItem(WINDOW_KEY, state.window);
    render();
  });
  window.addEventListener('hashchange', render);
  let drawnAt = view.clientWidth;
  let resizing = null;
  window.addEventListener('resize', () => {
    clearTimeout(resizing);
    resizing = setTimeout(() => {
      if (Math.abs(view.clientWidth - drawnAt) < 80) return;
      drawnAt = view.clientWidth;
      render();
    }, 250);
  });

  if (state.token) signIn(state.token);
  else signOut('');
})();
