// Carteiro dashboard: vanilla JS over the JSON API (/api/webhooks) with a bearer key kept in
// sessionStorage, and live updates read from the Server-Sent Events route with fetch().
// Everything shown is built with createElement/textContent: event data is user input and is never
// parsed as HTML.
'use strict';

(() => {
  const API = '/api/webhooks';
  const KEY_STORE = 'carteiro.dashboard.key';
  const ORG_STORE = 'carteiro.dashboard.org';
  const PAGE = 50;
  const LIVE_REFRESH_MS = 1000; // at most one refresh per second from live messages
  const CHART_BUCKET_MS = 3000;
  const CHART_BUCKETS = 40;
  const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

  const $ = (id) => document.getElementById(id);

  const state = {
    key: sessionStorage.getItem(KEY_STORE) || '',
    org: sessionStorage.getItem(ORG_STORE) || '',
    view: 'overview',
    stats: null,
    events: { rows: [], cursor: null, pages: 0, seen: new Set(), pendingNew: 0, loading: false },
    endpoints: { rows: [], cursor: null, pages: 0, loading: false },
    detailId: null,
    live: { abort: null, session: 0 },
    chart: [],
    timers: [],
    typesLoaded: false,
    /** The new-endpoint form's transformation template picker (shared/dom.js), made on first use. */
    picker: null,
    /** The endpoint opened from its row (#endpoints/<id>), and the test event being waited for. */
    endpoint: null,
    testRun: 0,
    orgs: { rows: [], cursor: null, open: null },
    audit: { rows: [], cursor: null },
  };

  // ---------------------------------------------------------------- DOM helpers

  /** h('tr', {class:'x'}, 'text', child): shared/dom.js, loaded before this script. */
  const { h, templatePicker, exampleOf } = window.carteiroDom;

  const show = (el, visible) => { el.hidden = !visible; };

  const TONES = {
    healthy: 'ok', completed: 'ok', succeeded: 'ok', delivered: 'ok', active: 'ok', configured: 'info', reachable: 'ok',
    degraded: 'warn', failing: 'warn', pending: 'warn', retry: 'warn', no_workers: 'warn', idle: 'warn', waiting: 'warn', delayed: 'warn', paused: 'neutral',
    processing: 'info', in_flight: 'info',
    unhealthy: 'bad', failed: 'bad', unreachable: 'bad', disabled: 'bad',
    not_configured: 'neutral', cancelled: 'neutral',
  };
  const LABELS = { in_flight: 'in flight', no_workers: 'no workers', not_configured: 'not configured' };
  const label = (s) => LABELS[s] || String(s).replace(/_/g, ' ');
  function badge(status, text) {
    return h('span', { class: 'badge', 'data-tone': TONES[status] || 'neutral' }, text ?? label(status));
  }
  function setBadge(el, status, text) {
    el.textContent = text ?? label(status);
    el.setAttribute('data-tone', TONES[status] || 'neutral');
  }

  const dateFmt = new Intl.DateTimeFormat(undefined, { dateStyle: 'short', timeStyle: 'medium' });
  const timeFmt = new Intl.DateTimeFormat(undefined, { timeStyle: 'medium' });
  const numFmt = new Intl.NumberFormat();
  const fmtNum = (n) => (typeof n === 'number' ? numFmt.format(n) : '—');
  const plural = (n, one, many) => `${fmtNum(n)} ${n === 1 ? one : many}`;
  function fmtDate(v) {
    if (!v) return '—';
    const d = new Date(v);
    return Number.isNaN(d.getTime()) ? String(v) : dateFmt.format(d);
  }
  function ago(v) {
    if (!v) return '—';
    const s = Math.round((Date.now() - new Date(v).getTime()) / 1000);
    if (s < -5) return 'in ' + duration(-s);
    if (s < 5) return 'just now';
    return duration(s) + ' ago';
  }
  function duration(s) {
    if (s < 60) return s + ' s';
    if (s < 3600) return Math.round(s / 60) + ' min';
    if (s < 86400) return Math.round(s / 3600) + ' h';
    return Math.round(s / 86400) + ' d';
  }
  const time = (v) => h('time', { datetime: v, title: fmtDate(v), class: 'rel' }, ago(v));
  const shortId = (id) => (typeof id === 'string' ? id.slice(-12) : '—');

  function toast(text, tone = 'info') {
    const el = h('div', { class: 'toast', 'data-tone': tone, role: 'status' }, text);
    $('toasts').append(el);
    setTimeout(() => el.classList.add('out'), 4200);
    setTimeout(() => el.remove(), 4700);
  }

  function confirmDialog(title, text, okText) {
    const dlg = $('confirm');
    $('confirm-title').textContent = title;
    $('confirm-text').textContent = text;
    $('confirm-ok').textContent = okText;
    dlg.returnValue = '';
    return new Promise((resolve) => {
      dlg.addEventListener('close', () => resolve(dlg.returnValue === 'ok'), { once: true });
      dlg.showModal();
    });
  }

  // ---------------------------------------------------------------- API

  class ApiError extends Error {
    constructor(status, message, code, details) {
      super(message);
      this.status = status;
      this.code = code;
      /** The request field the API named (details.field: `schema`, `body.url`, `filter.amount.gte`), if any. */
      this.field = details && typeof details.field === 'string' ? details.field.replace(/^body\./, '') : null;
    }
  }

  function authHeaders() {
    const headers = { authorization: 'Bearer ' + state.key };
    if (state.org) headers['x-organization-id'] = state.org;
    return headers;
  }

  async function api(method, path, body, { allow = [] } = {}) {
    const headers = { ...authHeaders(), accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(API + path, { method, headers, cache: 'no-store', body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await res.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch {
      data = { message: text };
    }
    if (res.status === 401 && state.key) {
      signOut('The API key was refused. Sign in again.');
      throw new ApiError(401, 'unauthorized', 'CARTEIRO_UNAUTHORIZED');
    }
    if (!res.ok && !allow.includes(res.status)) {
      throw new ApiError(res.status, (data && data.message) || res.statusText || 'request failed', data && data.code, data && data.details);
    }
    return data;
  }

  const report = (err) => {
    if (err instanceof ApiError && err.status === 401) return;
    toast(err instanceof Error ? err.message : String(err), 'bad');
  };

  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

  // ---------------------------------------------------------------- form errors

  /** Hides a form's messages: the one for the whole form (.form-error) and those beside fields. */
  function clearErrors(form) {
    for (const el of form.querySelectorAll('.form-error, .field-error')) {
      el.textContent = '';
      el.hidden = true;
    }
  }

  /**
   * Shows an error where it belongs: beside the field it names (a `.field-error[data-for=…]` of the
   * form for the field, or for the nearest part of its path: `schema` for `schema.properties.x`; from
   * a local check or the API's details.field), else at the form's foot.
   */
  function formError(form, err) {
    if (err instanceof ApiError && err.status === 401) return;
    const message = err instanceof Error ? err.message : String(err);
    const parts = err && typeof err.field === 'string' ? err.field.split('.') : [];
    let el = null;
    for (let n = parts.length; n > 0 && !el; n--) el = form.querySelector(`.field-error[data-for="${CSS.escape(parts.slice(0, n).join('.'))}"]`);
    el = el || form.querySelector('.form-error');
    el.textContent = message;
    el.hidden = false;
  }

  /** Runs a form's submit handler with its button disabled, its errors cleared and shown. */
  function onSubmit(form, handler) {
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      clearErrors(form);
      const button = form.querySelector('button[type="submit"]');
      button.disabled = true;
      try {
        await handler(form);
      } catch (err) {
        formError(form, err);
      } finally {
        button.disabled = false;
      }
    });
  }

  /** A local check that failed: named after the field it is about, shown beside it. */
  class FieldError extends Error {
    constructor(field, message) {
      super(message);
      this.field = field;
    }
  }

  // ---------------------------------------------------------------- sign-in

  async function signIn(ev) {
    ev.preventDefault();
    const key = $('login-key').value.trim();
    const org = $('login-org').value.trim();
    const err = $('login-error');
    show(err, false);
    if (org && !UUID.test(org)) {
      err.textContent = 'The organization ID must be a UUID (or empty for all organizations).';
      show(err, true);
      return;
    }
    $('login-submit').disabled = true;
    try {
      const res = await fetch(API + '/stats', { headers: { authorization: 'Bearer ' + key, ...(org ? { 'x-organization-id': org } : {}) }, cache: 'no-store' });
      if (!res.ok) {
        const body = await res.json().catch(() => ({}));
        throw new Error(res.status === 401 ? 'That key was not accepted.' : body.message || 'Sign-in failed (HTTP ' + res.status + ').');
      }
      sessionStorage.setItem(KEY_STORE, key);
      if (org) sessionStorage.setItem(ORG_STORE, org);
      else sessionStorage.removeItem(ORG_STORE);
      state.key = key;
      state.org = org;
      $('login-key').value = '';
      start();
    } catch (e) {
      err.textContent = e instanceof Error ? e.message : String(e);
      show(err, true);
    } finally {
      $('login-submit').disabled = false;
    }
  }

  function signOut(message) {
    sessionStorage.removeItem(KEY_STORE);
    sessionStorage.removeItem(ORG_STORE);
    state.key = '';
    state.org = '';
    stopLive();
    for (const t of state.timers) clearInterval(t);
    state.timers = [];
    closeDrawer();
    closeCreate();
    // Secrets, keys and portal links shown once leave the page with the key.
    closeEndpoint();
    hideKeySecret();
    doneSession();
    show($('app'), false);
    show($('login'), true);
    const err = $('login-error');
    err.textContent = message || '';
    show(err, Boolean(message));
    $('login-key').focus();
  }

  // ---------------------------------------------------------------- navigation

  const TITLES = {
    overview: ['Overview', 'Health, queues and deliveries as they happen'],
    events: ['Events', 'Every accepted event, newest first'],
    endpoints: ['Endpoints', 'Destinations, their counters and state'],
    types: ['Event types', 'The catalog: built-in types and your own, with their schemas'],
    n8n: ['n8n workflows', 'Workflows as destinations: discover, sync, watch'],
    organizations: ['Organizations', 'Organizations and their API keys'],
    audit: ['Audit log', 'Every management action: who, what, when'],
    portal: ['Portal sessions', 'What one of your users sees of their webhooks'],
  };

  /** What opening each view loads (the overview and events have their own refresh). */
  const LOADERS = {
    endpoints: () => loadEndpoints(true),
    types: () => loadTypes(),
    n8n: () => loadWorkflows(),
    organizations: () => loadOrgs(true),
    audit: () => loadAudit(true),
    portal: () => loadSessions(),
  };

  function route() {
    const hash = location.hash.replace(/^#/, '');
    const [view, id] = hash.split('/');
    state.view = TITLES[view] ? view : 'overview';
    for (const v of Object.keys(TITLES)) show($('view-' + v), v === state.view);
    for (const a of document.querySelectorAll('.nav-link')) a.classList.toggle('active', a.dataset.view === state.view);
    $('view-title').textContent = TITLES[state.view][0];
    $('view-subtitle').textContent = TITLES[state.view][1];
    if (state.view === 'events') {
      if (state.events.pages === 0) loadEvents(true).catch(report);
      if (id && UUID.test(id)) openEvent(id);
    }
    if (LOADERS[state.view]) LOADERS[state.view]().catch(report);
    if (state.view === 'endpoints' && id && UUID.test(id)) openEndpoint(id).catch(report);
    else if (state.view === 'endpoints') closeEndpoint();
  }

  // ---------------------------------------------------------------- overview

  async function loadHealth() {
    const hl = await api('GET', '/health', undefined, { allow: [503] });
    const tone = hl.overall_status;
    setBadge($('health-pill'), tone, 'Health: ' + label(tone));
    setBadge($('health-overall'), tone);
    const names = { webhook_manager: 'Webhook manager', redis: 'Redis', supabase: hl.ledger === 'pglite' ? 'Ledger (embedded PGlite)' : 'Ledger (Postgres)', n8n: 'n8n' };
    $('health-services').replaceChildren(
      ...Object.entries(hl.services || {}).map(([k, v]) => h('div', { class: 'service' }, h('dt', null, names[k] || k), h('dd', null, badge(v)))),
    );
    $('health-time').textContent = 'Checked ' + timeFmt.format(new Date(hl.timestamp));
  }

  function statCard(labelText, value, caption, tone) {
    return h('div', { class: 'stat', 'data-tone': tone || null },
      h('span', { class: 'stat-label' }, labelText),
      h('strong', { class: 'stat-value' }, value),
      caption ? h('span', { class: 'stat-caption' }, caption) : null);
  }

  async function loadStats() {
    const s = await api('GET', '/stats');
    state.stats = s;
    const q = s.queues || {};
    setBadge($('worker-status'), s.status, s.status === 'active' ? 'workers active' : 'workers idle');
    $('queue-stats').replaceChildren(
      statCard('High priority', fmtNum(q.high_priority), 'due now'),
      statCard('Normal priority', fmtNum(q.normal_priority), 'due now'),
      statCard('Retry', fmtNum(q.retry), 'waiting for backoff', q.retry > 0 ? 'warn' : null),
      statCard('Processing', fmtNum(s.processing_tasks), 'in flight'),
      statCard('Paused', fmtNum(s.paused), 'held by disabled endpoints', s.paused > 0 ? 'warn' : null),
      statCard('Workers', fmtNum(s.workers), s.status),
    );
    const lh = s.last_hour || {};
    const attempts = (lh.delivered || 0) + (lh.failed_attempts || 0);
    const rate = attempts ? Math.round((1000 * lh.delivered) / attempts) / 10 + '%' : '—';
    $('hour-stats').replaceChildren(
      statCard('Events accepted', fmtNum(lh.events)),
      statCard('Delivered', fmtNum(lh.delivered), null, 'ok'),
      statCard('Failed attempts', fmtNum(lh.failed_attempts), null, lh.failed_attempts > 0 ? 'bad' : null),
      statCard('Success rate', rate, 'of attempts'),
    );
    $('scope-text').textContent = (state.org ? 'Organization ' + shortId(state.org) : 'All organizations') + ' · ' + (s.ledger === 'pglite' ? 'embedded' : 'Postgres');
    if (!state.typesLoaded && Array.isArray(s.supported_events)) fillTypes(s.supported_events);
  }

  function fillTypes(types) {
    state.typesLoaded = true;
    const sel = $('filter-type');
    const current = sel.value;
    sel.replaceChildren(h('option', { value: '' }, 'All types'), ...[...types].sort().map((t) => h('option', { value: t }, t)));
    sel.value = current;
  }

  async function loadRecent() {
    const page = await api('GET', '/events?limit=8');
    const rows = page.data.map((e) =>
      h('tr', { class: 'clickable', 'data-event-id': e.id, onclick: () => openEvent(e.id) },
        h('td', null, time(e.created_at)),
        h('td', { class: 'mono' }, e.event_type),
        h('td', null, badge(e.status)),
        h('td', { class: 'num' }, fmtNum(e.retry_count))));
    $('recent-table').tBodies[0].replaceChildren(...rows);
    show($('recent-empty'), rows.length === 0);
  }

  function pushActivity(m) {
    let text;
    let tone = 'info';
    if (m.type === 'deliveries.recorded') {
      const failed = (m.count || 0) - (m.delivered || 0);
      text = `${fmtNum(m.count)} ${m.count === 1 ? 'delivery' : 'deliveries'} recorded: ${fmtNum(m.delivered)} delivered` + (failed ? `, ${fmtNum(failed)} not` : '');
      tone = failed ? 'warn' : 'ok';
    } else if (m.type === 'events.accepted') {
      text = `${fmtNum(m.count)} new ${m.count === 1 ? 'event' : 'events'} accepted`;
    } else {
      text = String(m.type);
    }
    const list = $('activity');
    list.prepend(h('li', { 'data-tone': tone }, h('time', null, timeFmt.format(new Date())), h('span', null, text)));
    while (list.children.length > 40) list.lastElementChild.remove();
    show($('activity-empty'), false);
  }

  function recordChart(m) {
    if (m.type !== 'deliveries.recorded') return;
    const bucket = Math.floor(Date.now() / CHART_BUCKET_MS);
    let b = state.chart.find((x) => x.bucket === bucket);
    if (!b) state.chart.push((b = { bucket, ok: 0, fail: 0 }));
    b.ok += m.delivered || 0;
    b.fail += (m.count || 0) - (m.delivered || 0);
    drawChart();
  }

  function drawChart() {
    const now = Math.floor(Date.now() / CHART_BUCKET_MS);
    state.chart = state.chart.filter((b) => b.bucket > now - CHART_BUCKETS);
    const max = Math.max(1, ...state.chart.map((b) => b.ok + b.fail));
    const bars = [];
    for (let i = now - CHART_BUCKETS + 1; i <= now; i++) {
      const b = state.chart.find((x) => x.bucket === i) || { ok: 0, fail: 0 };
      const col = h('div', { class: 'bar', title: `${timeFmt.format(new Date(i * CHART_BUCKET_MS))}: ${b.ok} delivered, ${b.fail} failed` });
      const ok = h('div', { class: 'bar-ok' });
      const fail = h('div', { class: 'bar-fail' });
      // CSSOM, not a style attribute: allowed by the page's Content-Security-Policy.
      ok.style.height = (100 * b.ok) / max + '%';
      fail.style.height = (100 * b.fail) / max + '%';
      col.append(fail, ok);
      bars.push(col);
    }
    const peak = h('span', { class: 'chart-peak' }, 'peak ' + fmtNum(max) + ' / 3 s');
    $('live-chart').replaceChildren(peak, ...bars);
  }

  // ---------------------------------------------------------------- events

  function eventQuery(cursor) {
    const p = new URLSearchParams({ limit: String(PAGE) });
    const type = $('filter-type').value;
    const status = $('filter-status').value;
    const user = $('filter-user').value.trim();
    if (type) p.set('event_type', type);
    if (status) p.set('status', status);
    if (user) p.set('user_id', user);
    if (cursor) p.set('cursor', cursor);
    return '/events?' + p.toString();
  }

  function eventRow(e, fresh) {
    return h('tr', { class: 'clickable' + (fresh ? ' fresh' : ''), 'data-event-id': e.id, onclick: () => openEvent(e.id) },
      h('td', null, time(e.created_at)),
      h('td', { class: 'mono' }, e.event_type),
      h('td', null, badge(e.status)),
      h('td', null, e.priority === 'high' ? badge('pending', 'high') : h('span', { class: 'muted' }, 'normal')),
      h('td', { class: 'mono ellipsis', title: e.user_id || '' }, e.user_id || '—'),
      h('td', { class: 'num' }, fmtNum(e.retry_count)),
      h('td', { class: 'muted' }, e.event_source),
      h('td', { class: 'mono muted', title: e.id }, '…' + shortId(e.id)));
  }

  async function loadEvents(reset) {
    const ev = state.events;
    if (ev.loading) return;
    ev.loading = true;
    try {
      const page = await api('GET', eventQuery(reset ? null : ev.cursor));
      const firstLoad = ev.pages === 0;
      if (reset) {
        ev.rows = [];
        ev.pages = 0;
        ev.pendingNew = 0;
        show($('new-events'), false);
      }
      const tbody = $('events-table').tBodies[0];
      const rows = page.data.map((e) => {
        const fresh = reset && !firstLoad && !ev.seen.has(e.id);
        ev.seen.add(e.id);
        return eventRow(e, fresh);
      });
      if (reset) tbody.replaceChildren(...rows);
      else tbody.append(...rows);
      ev.rows.push(...page.data);
      ev.cursor = page.next_cursor;
      ev.pages++;
      show($('events-more'), Boolean(ev.cursor));
      show($('events-empty'), ev.rows.length === 0);
      $('events-count').textContent = `Showing ${fmtNum(ev.rows.length)} ${ev.rows.length === 1 ? 'event' : 'events'}` + (ev.cursor ? ' · more available' : '');
    } finally {
      ev.loading = false;
    }
  }

  /** New events arrived: refresh the first page in place, or offer to when the user has paged on. */
  function eventsChanged(m) {
    const ev = state.events;
    if (ev.pages <= 1) return true;
    if (m && m.type === 'events.accepted') {
      ev.pendingNew += m.count || 0;
      const b = $('new-events');
      b.textContent = `${fmtNum(ev.pendingNew)} new ${ev.pendingNew === 1 ? 'event' : 'events'}: show newest`;
      show(b, true);
    }
    return false;
  }

  // ---------------------------------------------------------------- event detail

  function closeDrawer() {
    state.detailId = null;
    show($('drawer'), false);
    show($('drawer-backdrop'), false);
    if (location.hash.startsWith('#events/')) history.replaceState(null, '', '#events');
  }

  function openEvent(id) {
    state.detailId = id;
    if (state.view === 'events' && location.hash !== '#events/' + id) history.replaceState(null, '', '#events/' + id);
    $('drawer-title').textContent = 'Loading…';
    setBadge($('drawer-status'), 'pending', '…');
    for (const id2 of ['drawer-meta', 'drawer-data', 'drawer-attempts']) $(id2).replaceChildren();
    $('drawer-deliveries').tBodies[0].replaceChildren();
    show($('drawer-error'), false);
    show($('drawer'), true);
    show($('drawer-backdrop'), true);
    loadDetail().catch((err) => {
      $('drawer-error').textContent = err.message;
      show($('drawer-error'), true);
    });
  }

  async function loadDetail() {
    const id = state.detailId;
    if (!id) return;
    const enc = encodeURIComponent(id);
    const [event, status, attempts] = await Promise.all([
      api('GET', `/events/${enc}`),
      api('GET', `/events/${enc}/status`),
      api('GET', `/events/${enc}/attempts`),
    ]);
    if (state.detailId !== id) return;
    $('drawer-title').textContent = event.event_type;
    setBadge($('drawer-status'), status.status);
    const meta = [
      ['Event ID', event.id, true],
      ['Organization', event.organization_id, true],
      ['Source', event.event_source + (event.table_name ? ` (${event.table_name})` : '')],
      ['Priority', event.priority],
      ['User', event.user_id || '—', true],
      ['Idempotency key', event.idempotency_key || '—', true],
      ['Created', fmtDate(event.created_at)],
      ['Processed', fmtDate(status.processed_at)],
      ['Retries', fmtNum(status.retry_count)],
      ['Error', status.error_message || '—'],
    ];
    $('drawer-meta').replaceChildren(...meta.map(([k, v, mono]) => h('div', null, h('dt', null, k), h('dd', { class: mono ? 'mono' : null }, v))));

    const names = new Map(status.deliveries.map((d) => [d.endpoint_id, d.endpoint_name || shortId(d.endpoint_id)]));
    $('drawer-deliveries').tBodies[0].replaceChildren(...status.deliveries.map((d) =>
      h('tr', null,
        h('td', null, h('div', null, d.endpoint_name || '—'), h('div', { class: 'mono muted small' }, d.destination === 'n8n' ? 'n8n workflow' : shortId(d.endpoint_id))),
        h('td', null, badge(d.status)),
        h('td', { class: 'num' }, fmtNum(d.attempts)),
        h('td', { class: 'mono' }, d.last_status_code ?? '—'),
        h('td', { class: d.last_error ? 'error-text' : 'muted' }, d.last_error || '—'),
        h('td', null, d.next_attempt_at ? time(d.next_attempt_at) : '—'),
        h('td', null, h('button', { type: 'button', class: 'btn btn-sm', title: 'Replay to this destination only', onclick: () => replayEvent(id, d.endpoint_id) }, 'Replay')),
      )));
    show($('drawer-deliveries-empty'), status.deliveries.length === 0);

    const list = [...attempts.data].reverse();
    // A live refresh rebuilds the list: keep open the response bodies the reader had opened.
    const opened = new Set([...document.querySelectorAll('#drawer-attempts details[open]')].map((d) => d.getAttribute('data-attempt-id')));
    $('drawer-attempts').replaceChildren(...list.map((a) =>
      h('li', { class: 'attempt', 'data-tone': a.success ? 'ok' : 'bad' },
        h('div', { class: 'attempt-head' },
          h('strong', null, `#${a.attempt_number}`),
          h('span', null, names.get(a.webhook_endpoint_id) || shortId(a.webhook_endpoint_id)),
          badge(a.success ? 'delivered' : 'failed', a.success ? 'delivered' : 'failed'),
          h('span', { class: 'mono' }, a.status_code != null ? 'HTTP ' + a.status_code : 'no response'),
          h('span', { class: 'muted' }, fmtNum(a.delivery_duration_ms) + ' ms'),
          h('span', { class: 'muted attempt-time' }, fmtDate(a.created_at))),
        a.error ? h('p', { class: 'error-text' }, a.error) : null,
        a.response_body
          ? h('details', { 'data-attempt-id': a.id, open: opened.has(a.id) }, h('summary', null, `Response body (${plural(a.response_body.length, 'character', 'characters')})`), h('pre', { class: 'code' }, a.response_body))
          : h('p', { class: 'muted small' }, 'Empty response body'),
      )));
    show($('drawer-attempts-empty'), list.length === 0);
    $('drawer-data').textContent = JSON.stringify(event.data, null, 2);
  }

  async function replayEvent(id, endpointId) {
    try {
      const res = await api('POST', `/events/${encodeURIComponent(id)}/replay`, endpointId ? { endpoint_id: endpointId } : {});
      toast(`Replay queued: ${plural(res.requeued, 'delivery', 'deliveries')}`, 'ok');
      await loadDetail();
    } catch (err) {
      report(err);
    }
  }

  // ---------------------------------------------------------------- bulk replay

  async function bulkReplay() {
    const type = $('filter-type').value;
    const ok = await confirmDialog(
      'Replay failed events',
      `Every failed delivery of ${type ? `"${type}" events` : 'every event type'} will be delivered again. Receivers should de-duplicate by webhook-id.`,
      'Replay failed',
    );
    if (!ok) return;
    try {
      const body = { status: 'failed' };
      if (type) body.event_type = type;
      const job = await api('POST', '/replay', body);
      watchJob(job.job_id);
    } catch (err) {
      report(err);
    }
  }

  async function watchJob(jobId) {
    const panel = $('job-panel');
    show(panel, true);
    $('job-title').textContent = 'Bulk replay · job ' + jobId;
    for (;;) {
      let job;
      try {
        job = await api('GET', `/jobs/${encodeURIComponent(jobId)}`);
      } catch (err) {
        report(err);
        return;
      }
      const progress = job.result || (job.progress && typeof job.progress === 'object' ? job.progress : { events: 0, dispatches: 0 });
      setBadge($('job-state'), job.state === 'active' ? 'processing' : job.state);
      const done = job.state === 'completed' || job.state === 'failed';
      $('job-progress').dataset.state = done ? job.state : 'running';
      $('job-text').textContent = job.state === 'failed'
        ? 'Failed: ' + (job.error || 'unknown error')
        : `${plural(progress.events, 'event', 'events')}, ${plural(progress.dispatches, 'delivery', 'deliveries')} requeued${done ? '' : ' so far…'}`;
      if (done) {
        if (job.state === 'completed') toast(`Bulk replay done: ${plural(progress.events, 'event', 'events')} requeued`, 'ok');
        refreshNow();
        return;
      }
      await new Promise((r) => setTimeout(r, 500));
    }
  }

  // ---------------------------------------------------------------- endpoints

  async function loadEndpoints(reset) {
    const ep = state.endpoints;
    if (ep.loading) return;
    ep.loading = true;
    try {
      const page = await api('GET', `/endpoints?limit=${PAGE}` + (!reset && ep.cursor ? `&cursor=${encodeURIComponent(ep.cursor)}` : ''));
      if (reset) {
        ep.rows = [];
        ep.pages = 0;
      }
      ep.rows.push(...page.data);
      ep.cursor = page.next_cursor;
      ep.pages++;
      $('endpoints-table').tBodies[0].replaceChildren(...ep.rows.map(endpointRow));
      show($('endpoints-more'), Boolean(ep.cursor));
      show($('endpoints-empty'), ep.rows.length === 0);
      $('endpoints-count').textContent = `${fmtNum(ep.rows.length)} ${ep.rows.length === 1 ? 'endpoint' : 'endpoints'}`;
    } finally {
      ep.loading = false;
    }
  }

  function endpointRow(e) {
    const total = e.success_count + e.failure_count;
    const pct = total ? (100 * e.success_count) / total : null;
    const meter = h('div', { class: 'meter', title: pct === null ? 'no attempts yet' : pct.toFixed(1) + '% of attempts delivered' }, h('div', { class: 'meter-fill' }));
    if (pct !== null) meter.firstChild.style.width = pct + '%';
    if (pct !== null && pct < 90) meter.dataset.tone = pct < 50 ? 'bad' : 'warn';
    const action = e.is_active ? 'disable' : 'enable';
    return h('tr', { class: 'clickable', 'data-endpoint-id': e.id, onclick: () => { location.hash = '#endpoints/' + e.id; } },
      h('td', null, h('div', { class: 'strong' }, e.name), h('div', { class: 'mono muted small ellipsis', title: e.url }, e.url)),
      h('td', null, h('div', { class: 'chips' }, (e.events || []).slice(0, 4).map((f) => h('span', { class: 'chip mono' }, f)), e.events && e.events.length > 4 ? h('span', { class: 'chip' }, `+${e.events.length - 4}`) : null)),
      h('td', null,
        !e.is_active ? badge('disabled') : e.health === 'failing' ? badge('failing') : badge('active'),
        !e.is_active && e.disabled_reason ? h('div', { class: 'muted small' }, e.disabled_reason) : null,
        e.is_active && e.health === 'failing' ? h('div', { class: 'muted small' }, fmtNum(e.failed_attempts_in_row) + ' failed attempts in a row') : null,
        !e.is_active && e.next_probe_at ? h('div', { class: 'muted small' }, 'next probe ' + fmtDate(e.next_probe_at)) : null),
      h('td', { class: 'nowrap' }, h('span', { class: 'ok-text' }, fmtNum(e.success_count) + ' ok'), ' · ', h('span', { class: e.failure_count ? 'bad-text' : 'muted' }, fmtNum(e.failure_count) + ' failed')),
      h('td', null, meter, h('span', { class: 'small muted' }, pct === null ? '—' : pct.toFixed(1) + '%')),
      h('td', { class: 'num' }, e.consecutive_failures ? h('span', { class: 'bad-text', title: e.failing_since ? 'failing since ' + fmtDate(e.failing_since) : '' }, fmtNum(e.consecutive_failures)) : '0'),
      h('td', { class: 'actions' }, h('button', { type: 'button', class: 'btn btn-sm' + (e.is_active ? '' : ' btn-primary'), onclick: (ev) => { ev.stopPropagation(); toggleEndpoint(e, action); } }, e.is_active ? 'Disable' : 'Enable')));
  }

  async function toggleEndpoint(e, action) {
    if (action === 'disable') {
      const ok = await confirmDialog('Disable endpoint', `"${e.name}" will receive nothing until it is enabled again; its pending deliveries are held, not lost.`, 'Disable');
      if (!ok) return;
    }
    try {
      await api('POST', `/endpoints/${encodeURIComponent(e.id)}/${action}`, action === 'disable' ? { reason: 'disabled from the dashboard' } : {});
      toast(`Endpoint "${e.name}" ${action}d`, 'ok');
      await loadEndpoints(true);
      if (state.endpoint && state.endpoint.id === e.id) await openEndpoint(e.id);
    } catch (err) {
      report(err);
    }
  }

  // ---------------------------------------------------------------- one endpoint

  async function openEndpoint(id) {
    const e = await api('GET', `/endpoints/${encodeURIComponent(id)}`);
    if (!state.endpoint || state.endpoint.id !== id) {
      state.testRun++;
      for (const x of ['epd-test-result', 'epd-secret', 'epd-form']) show($(x), false);
      $('epd-secret-value').textContent = '';
    }
    state.endpoint = e;
    renderEndpoint(e);
    show($('endpoint-detail'), true);
  }

  function closeEndpoint() {
    state.endpoint = null;
    state.testRun++;
    show($('endpoint-detail'), false);
    $('epd-secret-value').textContent = '';
    if (location.hash.startsWith('#endpoints/')) history.replaceState(null, '', '#endpoints');
  }

  const orServer = (v, unit = '') => (v === null || v === undefined ? 'the server\'s' : fmtNum(v) + unit);

  function renderEndpoint(e) {
    $('epd-name').textContent = e.name;
    $('epd-url').textContent = e.url;
    setBadge($('epd-status'), e.is_active ? (e.health === 'failing' ? 'failing' : 'active') : 'disabled');
    $('epd-toggle').textContent = e.is_active ? 'Disable' : 'Enable';
    const meta = [
      ['Endpoint ID', e.id, true],
      ['Events', (e.events || []).join(', '), true],
      ['Description', e.description || '—'],
      ['Owner (user)', e.user_id || '—', true],
      ['Rate limit', e.rate_limit_per_second ? fmtNum(e.rate_limit_per_second) + ' / s' : 'none'],
      ['Max in flight', orServer(e.max_in_flight)],
      ['Timeout', orServer(e.timeout_ms, ' ms')],
      ['Max retries', orServer(e.max_retries)],
      ['Transformation', e.transformation ? (e.template ? `from the ${e.template} template` : 'its own code') : 'none'],
      ['Delivered / failed', `${fmtNum(e.success_count)} / ${fmtNum(e.failure_count)}`],
      ['Disabled because', e.is_active ? '—' : e.disabled_reason || '—'],
      ['Previous secret signs until', e.previous_secret_expires_at ? fmtDate(e.previous_secret_expires_at) : '—'],
      ['Created', fmtDate(e.created_at)],
      ['Updated', fmtDate(e.updated_at)],
    ];
    $('epd-meta').replaceChildren(...meta.map(([k, v, mono]) => h('div', null, h('dt', null, k), h('dd', { class: mono ? 'mono' : null }, v))));
  }

  function editEndpoint() {
    const e = state.endpoint;
    if (!e) return;
    const form = $('epd-form');
    clearErrors(form);
    const num = (v) => (v === null || v === undefined ? '' : String(v));
    $('epd-f-name').value = e.name;
    $('epd-f-url').value = e.url;
    $('epd-f-events').value = (e.events || []).join(', ');
    $('epd-f-description').value = e.description || '';
    $('epd-f-rate').value = num(e.rate_limit_per_second);
    $('epd-f-inflight').value = num(e.max_in_flight);
    $('epd-f-timeout').value = num(e.timeout_ms);
    $('epd-f-retries').value = num(e.max_retries);
    show(form, true);
    $('epd-f-name').focus();
  }

  /** A number field: null when empty (the server's default, or none), else an integer as typed. */
  function intOrNull(id, field) {
    const v = $(id).value.trim();
    if (v === '') return null;
    if (!/^\d+$/.test(v)) throw new FieldError(field, `${field}: a whole number, or empty`);
    return Number(v);
  }

  /** PATCH /endpoints/:id with what the form holds; an empty number field goes back to the default. */
  async function saveEndpoint() {
    const e = state.endpoint;
    const body = {
      name: $('epd-f-name').value.trim(),
      url: $('epd-f-url').value.trim(),
      events: $('epd-f-events').value.split(',').map((x) => x.trim()).filter(Boolean),
      description: $('epd-f-description').value.trim() || null,
      rate_limit_per_second: intOrNull('epd-f-rate', 'rate_limit_per_second'),
      max_in_flight: intOrNull('epd-f-inflight', 'max_in_flight'),
      timeout_ms: intOrNull('epd-f-timeout', 'timeout_ms'),
      max_retries: intOrNull('epd-f-retries', 'max_retries'),
    };
    const row = await api('PATCH', `/endpoints/${encodeURIComponent(e.id)}`, body);
    state.endpoint = row;
    renderEndpoint(row);
    show($('epd-form'), false);
    toast(`Endpoint "${row.name}" saved`, 'ok');
    await loadEndpoints(true);
  }

  async function rotateSecret() {
    const e = state.endpoint;
    if (!e) return;
    const ok = await confirmDialog('Rotate the signing secret', `"${e.name}" gets a new secret at once; the current one keeps signing too, for the overlap, so the receiver can switch.`, 'Rotate');
    if (!ok) return;
    try {
      const row = await api('POST', `/endpoints/${encodeURIComponent(e.id)}/rotate-secret`, {});
      $('epd-secret-value').textContent = row.secret;
      $('epd-secret-overlap').textContent = row.previous_secret_expires_at ? fmtDate(row.previous_secret_expires_at) : 'now';
      show($('epd-secret'), true);
      delete row.secret;
      state.endpoint = row;
      renderEndpoint(row);
      toast(`Secret of "${row.name}" rotated`, 'ok');
    } catch (err) {
      report(err);
    }
  }

  /** POST /endpoints/:id/test, then waits for the attempt and shows what the receiver answered. */
  async function sendTest() {
    const e = state.endpoint;
    if (!e) return;
    const run = ++state.testRun;
    show($('epd-test-result'), true);
    show($('epd-test-body'), false);
    setBadge($('epd-test-status'), 'pending', 'sending…');
    $('epd-test-summary').textContent = `Sending a webhook.test event to ${e.url}…`;
    $('epd-test').disabled = true;
    try {
      const sent = await api('POST', `/endpoints/${encodeURIComponent(e.id)}/test`, { message: 'A test delivery from the dashboard' });
      if (sent.paused) {
        setBadge($('epd-test-status'), 'paused');
        $('epd-test-summary').textContent = 'The endpoint is disabled: the test event is held until it is enabled.';
        return;
      }
      const attempt = await firstAttempt(sent.event_id, run);
      if (run !== state.testRun) return;
      if (!attempt) {
        setBadge($('epd-test-status'), 'pending');
        $('epd-test-summary').textContent = 'Queued; no attempt recorded within a minute. Its event: ' + sent.event_id;
        return;
      }
      showTestAnswer(attempt, sent.event_id);
      await openEndpoint(e.id);
    } catch (err) {
      report(err);
    } finally {
      if (run === state.testRun) $('epd-test').disabled = false;
    }
  }

  async function firstAttempt(eventId, run) {
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline && run === state.testRun) {
      const page = await api('GET', `/events/${encodeURIComponent(eventId)}/attempts`);
      if (page.data.length > 0) return page.data[0];
      await sleep(300);
    }
    return null;
  }

  function showTestAnswer(a, eventId) {
    setBadge($('epd-test-status'), a.success ? 'delivered' : 'failed', a.status_code != null ? 'HTTP ' + a.status_code : a.success ? 'delivered' : 'no response');
    $('epd-test-summary').replaceChildren(
      a.success ? 'The receiver accepted the test event' : 'The receiver did not accept the test event',
      a.delivery_duration_ms != null ? ` in ${fmtNum(a.delivery_duration_ms)} ms` : '',
      a.error ? ': ' + a.error : '.',
      ' ',
      h('a', { href: '#events/' + eventId, class: 'link' }, 'See the event'));
    $('epd-test-body').textContent = a.response_body || '(empty answer)';
    show($('epd-test-body'), true);
  }

  // ---------------------------------------------------------------- new endpoint

  async function openCreate() {
    if (!state.picker) {
      const templates = (await api('GET', '/transformation-templates')).data;
      state.picker = templatePicker({ select: $('ep-template'), code: $('ep-transformation'), hint: $('ep-template-hint') }, templates);
    }
    $('endpoint-form').reset();
    state.picker.set(null, null);
    show($('ep-error'), false);
    show($('endpoint-form'), true);
    show($('ep-secret'), false);
    show($('endpoint-create'), true);
    $('ep-name').focus();
  }

  function closeCreate() {
    show($('endpoint-create'), false);
    $('ep-secret-value').textContent = '';
  }

  async function createEndpoint(ev) {
    ev.preventDefault();
    const fail = (text) => {
      $('ep-error').textContent = text;
      show($('ep-error'), true);
    };
    show($('ep-error'), false);
    const name = $('ep-name').value.trim();
    const url = $('ep-url').value.trim();
    const events = $('ep-events').value.split(',').map((x) => x.trim()).filter(Boolean);
    if (!name) return fail('Give the endpoint a name.');
    if (!/^https?:\/\//i.test(url)) return fail('The URL must start with https:// (or http://).');
    if (events.length === 0) return fail('Name at least one event type, or * for all.');
    // The code as it stands in the form (a template's, edited or not), with the template as its label.
    const { transformation, template } = state.picker.value();
    const body = { name, url, events, ...(transformation ? { transformation } : {}), ...(template ? { template } : {}) };
    $('ep-create').disabled = true;
    try {
      const row = await api('POST', '/endpoints', body);
      $('ep-secret-name').textContent = row.name;
      $('ep-secret-value').textContent = row.secret;
      show($('endpoint-form'), false);
      show($('ep-secret'), true);
      toast(`Endpoint "${row.name}" created`, 'ok');
      await loadEndpoints(true);
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) return;
      fail(err instanceof Error ? err.message : String(err));
    } finally {
      $('ep-create').disabled = false;
    }
  }

  // ---------------------------------------------------------------- event types

  async function loadTypes() {
    const types = (await api('GET', '/event-types')).data;
    $('types-table').tBodies[0].replaceChildren(...types.map(typeRow));
  }

  function typeRow(t) {
    const example = exampleOf(t.schema);
    return h('tr', { 'data-type': t.name },
      h('td', { class: 'mono strong' }, t.name),
      h('td', null, t.description || h('span', { class: 'muted' }, '—')),
      h('td', null, t.priority === 'high' ? badge('pending', 'high') : h('span', { class: 'muted' }, 'normal')),
      h('td', null, t.builtin ? h('span', { class: 'muted' }, 'built in') : badge('configured', 'custom')),
      h('td', { class: 'type-data' },
        example ? h('details', null, h('summary', { class: 'small' }, example.label), h('pre', { class: 'code' }, JSON.stringify(example.value, null, 2))) : null,
        h('details', null, h('summary', { class: 'small' }, 'Schema'), h('pre', { class: 'code' }, JSON.stringify(t.schema, null, 2)))));
  }

  async function registerType(form) {
    let schema;
    try {
      schema = JSON.parse($('type-schema').value);
    } catch (err) {
      throw new FieldError('schema', 'schema: not JSON (' + err.message + ')');
    }
    const body = { name: $('type-name').value.trim(), priority: $('type-priority').value, schema };
    const description = $('type-description').value.trim();
    if (description) body.description = description;
    const row = await api('POST', '/event-types', body);
    toast(`Event type ${row.name} registered`, 'ok');
    form.reset();
    await loadTypes();
    state.typesLoaded = false;
  }

  // ---------------------------------------------------------------- n8n workflows

  async function loadWorkflows() {
    const page = await api('GET', `/n8n/workflows?limit=${PAGE}`);
    $('n8n-table').tBodies[0].replaceChildren(...page.data.map(workflowRow));
    show($('n8n-empty'), page.data.length === 0);
  }

  function workflowRow(w) {
    return h('tr', { 'data-workflow-id': w.id },
      h('td', null, h('div', { class: 'strong' }, w.name), h('div', { class: 'mono muted small' }, w.workflow_id)),
      h('td', null, h('div', { class: 'chips' }, (w.event_types || []).map((t) => h('span', { class: 'chip mono' }, t)))),
      h('td', null, badge(w.is_active ? w.state || 'active' : 'disabled'), w.last_error ? h('div', { class: 'error-text small' }, w.last_error) : null),
      h('td', { class: 'nowrap' }, h('span', { class: 'ok-text' }, fmtNum(w.success_count) + ' ok'), ' · ', h('span', { class: w.failure_count ? 'bad-text' : 'muted' }, fmtNum(w.failure_count) + ' failed')),
      h('td', { class: 'mono small ellipsis', title: w.delivery_url || w.webhook_url }, w.delivery_url || w.webhook_url));
  }

  async function discoverWorkflows() {
    const out = $('n8n-discover-result');
    $('n8n-discover').disabled = true;
    try {
      const r = await api('POST', '/n8n/discover', {});
      const counts = Object.entries(r).filter(([, v]) => typeof v === 'number').map(([k, v]) => `${label(k)}: ${fmtNum(v)}`);
      out.textContent = 'Discovered. ' + (counts.join(', ') || JSON.stringify(r));
      out.className = 'small ok-text';
      await loadWorkflows();
    } catch (err) {
      out.textContent = err instanceof Error ? err.message : String(err);
      out.className = 'small error-text';
    } finally {
      show(out, true);
      $('n8n-discover').disabled = false;
    }
  }

  async function syncWorkflow() {
    let data;
    try {
      data = JSON.parse($('n8n-sync-data').value || '{}');
    } catch (err) {
      throw new FieldError('data', 'data: not JSON (' + err.message + ')');
    }
    const r = await api('POST', '/n8n/sync', { sync_type: $('n8n-sync-type').value.trim(), data });
    $('n8n-sync-result').textContent = JSON.stringify(r, null, 2);
    show($('n8n-sync-result'), true);
    await loadWorkflows();
  }

  // ---------------------------------------------------------------- organizations and keys

  async function loadOrgs(reset) {
    const o = state.orgs;
    let page;
    try {
      page = await api('GET', `/organizations?limit=${PAGE}` + (!reset && o.cursor ? `&cursor=${encodeURIComponent(o.cursor)}` : ''));
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 403)) throw err;
      show($('orgs-denied'), true);
      show($('orgs-body'), false);
      return;
    }
    if (reset) o.rows = [];
    o.rows.push(...page.data);
    o.cursor = page.next_cursor;
    $('orgs-table').tBodies[0].replaceChildren(...o.rows.map((org) =>
      h('tr', { class: 'clickable' + (o.open === org.id ? ' selected' : ''), 'data-org-id': org.id, onclick: () => openOrg(org).catch(report) },
        h('td', null, h('div', { class: 'strong' }, org.name), h('div', { class: 'mono muted small' }, org.id)),
        h('td', null, time(org.created_at)))));
    show($('orgs-more'), Boolean(o.cursor));
    $('orgs-count').textContent = plural(o.rows.length, 'organization', 'organizations');
  }

  async function createOrg(form) {
    const org = await api('POST', '/organizations', { name: $('org-name').value.trim() });
    form.reset();
    toast(`Organization "${org.name}" created`, 'ok');
    await loadOrgs(true);
    await openOrg(org);
  }

  async function openOrg(org) {
    state.orgs.open = org.id;
    $('org-detail-name').textContent = org.name;
    $('org-detail-id').textContent = org.id;
    hideKeySecret();
    show($('org-detail'), true);
    for (const tr of $('orgs-table').tBodies[0].rows) tr.classList.toggle('selected', tr.dataset.orgId === org.id);
    await loadKeys();
  }

  async function loadKeys() {
    const id = state.orgs.open;
    const page = await api('GET', `/organizations/${encodeURIComponent(id)}/keys?limit=100`);
    if (state.orgs.open !== id) return;
    $('keys-table').tBodies[0].replaceChildren(...page.data.map(keyRow));
    show($('keys-empty'), page.data.length === 0);
  }

  function keyRow(k) {
    return h('tr', { 'data-key-id': k.id },
      h('td', null, h('div', { class: 'strong' }, k.name), h('div', { class: 'mono muted small' }, k.prefix + '…')),
      h('td', null, time(k.created_at)),
      h('td', { class: 'key-last-used' }, k.last_used_at ? time(k.last_used_at) : h('span', { class: 'muted' }, 'never')),
      h('td', null, k.active ? badge('active') : badge('disabled', 'revoked')),
      h('td', { class: 'actions' }, k.active ? h('button', { type: 'button', class: 'btn btn-sm', onclick: () => revokeKey(k) }, 'Revoke') : null));
  }

  async function createKey(form) {
    const name = $('key-name').value.trim();
    const k = await api('POST', `/organizations/${encodeURIComponent(state.orgs.open)}/keys`, name ? { name } : {});
    form.reset();
    $('key-secret-name').textContent = k.name;
    $('key-secret-value').textContent = k.key;
    show($('key-secret'), true);
    await loadKeys();
  }

  function hideKeySecret() {
    show($('key-secret'), false);
    $('key-secret-value').textContent = '';
  }

  async function revokeKey(k) {
    const ok = await confirmDialog('Revoke the key', `"${k.name}" (${k.prefix}…) is refused from now on, by every API process.`, 'Revoke');
    if (!ok) return;
    try {
      await api('DELETE', `/organizations/${encodeURIComponent(k.organization_id)}/keys/${encodeURIComponent(k.id)}`);
      toast(`Key "${k.name}" revoked`, 'ok');
      await loadKeys();
    } catch (err) {
      report(err);
    }
  }

  // ---------------------------------------------------------------- audit log

  /** A datetime-local value (the browser's zone) as an ISO instant; empty stays empty. */
  function isoFrom(id) {
    const v = $(id).value;
    if (!v) return null;
    const d = new Date(v);
    if (Number.isNaN(d.getTime())) throw new Error(`${id.replace('audit-', '')}: not a date and time`);
    return d.toISOString();
  }

  function auditQuery(cursor) {
    const p = new URLSearchParams({ limit: String(PAGE) });
    const action = $('audit-action').value.trim();
    const actor = $('audit-actor').value;
    const org = $('audit-org').value.trim();
    const since = isoFrom('audit-since');
    const until = isoFrom('audit-until');
    if (action) p.set('action', action);
    if (actor) p.set('actor', actor);
    if (org) p.set('organization_id', org);
    if (since) p.set('since', since);
    if (until) p.set('until', until);
    if (cursor) p.set('cursor', cursor);
    return '/audit-log?' + p.toString();
  }

  async function loadAudit(reset) {
    const a = state.audit;
    show($('audit-error'), false);
    let page;
    try {
      page = await api('GET', auditQuery(reset ? null : a.cursor));
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) return;
      $('audit-error').textContent = err.status === 403 ? 'The audit log is read with the admin key.' : err.message;
      show($('audit-error'), true);
      return;
    }
    if (reset) a.rows = [];
    a.rows.push(...page.data);
    a.cursor = page.next_cursor;
    $('audit-table').tBodies[0].replaceChildren(...a.rows.map(auditRow));
    show($('audit-empty'), a.rows.length === 0);
    show($('audit-more'), Boolean(a.cursor));
    $('audit-count').textContent = plural(a.rows.length, 'entry', 'entries') + (a.cursor ? ' · more available' : '');
  }

  function auditRow(r) {
    const who = r.actor.kind === 'admin' ? 'admin key' : `${r.actor.kind} ${r.actor.key_id ? shortId(r.actor.key_id) : ''}`.trim();
    return h('tr', { 'data-audit-id': r.id },
      h('td', { class: 'nowrap' }, time(r.at)),
      h('td', null, who),
      h('td', { class: 'mono' }, r.action),
      h('td', { class: 'mono small ellipsis', title: r.path }, `${r.method} ${r.path}`),
      h('td', { class: 'num ' + (r.status_code >= 400 ? 'bad-text' : '') }, r.status_code),
      h('td', { class: 'mono muted small', title: r.target_id || '' }, r.target_id ? '…' + shortId(r.target_id) : '—'));
  }

  // ---------------------------------------------------------------- portal sessions

  /** The page's look for this session (docs/portal.md, Theming): checked by the API, 422 beside the field. */
  function sessionTheme() {
    const theme = { mode: $('portal-theme').value };
    const primary = $('portal-primary').value.trim();
    const logo = $('portal-logo').value.trim();
    if (primary) theme.primary_color = primary;
    if (logo) theme.logo_url = logo;
    return theme;
  }

  async function issueSession(form) {
    const minutes = Number($('portal-ttl').value || 60);
    if (!Number.isInteger(minutes) || minutes < 1 || minutes > 1440) throw new FieldError('ttl_seconds', 'Lifetime: whole minutes, 1 to 1440');
    const body = { user_id: $('portal-user').value.trim(), scope: $('portal-scope').value, ttl_seconds: minutes * 60, theme: sessionTheme() };
    const s = await api('POST', '/portal/sessions', body);
    $('portal-issued-user').textContent = s.user_id;
    $('portal-issued-scope').textContent = s.scope === 'manage' ? 'may manage' : 'read only';
    $('portal-issued-expires').textContent = fmtDate(s.expires_at);
    $('portal-issued-url').textContent = s.url;
    $('portal-open').setAttribute('href', s.url);
    show($('portal-issued'), true);
    show(form, false);
    await loadSessions();
  }

  function doneSession() {
    show($('portal-issued'), false);
    $('portal-issued-url').textContent = '';
    $('portal-open').removeAttribute('href');
    show($('portal-form'), true);
  }

  async function loadSessions() {
    const page = await api('GET', `/portal/sessions?limit=${PAGE}`);
    $('sessions-table').tBodies[0].replaceChildren(...page.data.map((s) =>
      h('tr', { 'data-session-id': s.id },
        h('td', { class: 'mono' }, s.user_id),
        h('td', null, s.scope),
        h('td', null, time(s.created_at)),
        h('td', null, time(s.expires_at)),
        h('td', null, s.active ? badge('active') : badge('neutral', s.revoked_at ? 'revoked' : 'expired')),
        h('td', { class: 'actions' }, s.active ? h('button', { type: 'button', class: 'btn btn-sm', onclick: () => revokeSession(s) }, 'Revoke') : null))));
    show($('sessions-empty'), page.data.length === 0);
  }

  async function revokeSession(s) {
    try {
      await api('DELETE', `/portal/sessions/${encodeURIComponent(s.id)}`);
      toast(`Session of ${s.user_id} revoked`, 'ok');
      await loadSessions();
    } catch (err) {
      report(err);
    }
  }

  // ---------------------------------------------------------------- live stream

  let refreshTimer = null;
  let lastRefresh = 0;
  let pendingMessage = null;

  /** Throttled: the first message refreshes at once (or after the last refresh + 1 s), later ones join it. */
  function scheduleRefresh(m) {
    if (m && m.type === 'events.accepted') pendingMessage = m;
    if (refreshTimer) return;
    const wait = Math.max(0, lastRefresh + LIVE_REFRESH_MS - Date.now());
    refreshTimer = setTimeout(() => {
      refreshTimer = null;
      lastRefresh = Date.now();
      const msg = pendingMessage;
      pendingMessage = null;
      refreshLive(msg).catch(report);
    }, wait);
  }

  async function refreshLive(m) {
    const jobs = [loadStats()];
    if (state.view === 'overview') jobs.push(loadRecent());
    if (state.view === 'events' && eventsChanged(m)) jobs.push(loadEvents(true));
    if (state.view === 'endpoints' && state.endpoints.pages <= 1) jobs.push(loadEndpoints(true));
    if (state.detailId) jobs.push(loadDetail());
    await Promise.all(jobs);
  }

  function refreshNow() {
    return Promise.all([loadHealth(), refreshLive(null)]).catch(report);
  }

  function setLive(s, text) {
    $('live-status').dataset.state = s;
    $('live-text').textContent = text;
  }

  function stopLive() {
    state.live.session++;
    if (state.live.abort) state.live.abort.abort();
    state.live.abort = null;
    setLive('offline', 'Offline');
  }

  async function runLive() {
    const session = ++state.live.session;
    let backoff = 1000;
    while (session === state.live.session && state.key) {
      const ctrl = new AbortController();
      state.live.abort = ctrl;
      setLive('connecting', 'Connecting…');
      let watchdog = null;
      const arm = () => {
        clearTimeout(watchdog);
        watchdog = setTimeout(() => ctrl.abort(), 45_000); // three missed heartbeats
      };
      try {
        const res = await fetch(API + '/live', { headers: { ...authHeaders(), accept: 'text/event-stream' }, cache: 'no-store', signal: ctrl.signal });
        if (res.status === 401) {
          signOut('The API key was refused. Sign in again.');
          return;
        }
        if (!res.ok || !res.body) throw new Error('HTTP ' + res.status);
        arm();
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          arm();
          buffer += value.replace(/\r\n?/g, '\n');
          let cut;
          while ((cut = buffer.indexOf('\n\n')) >= 0) {
            const frame = buffer.slice(0, cut);
            buffer = buffer.slice(cut + 2);
            const data = frame.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5).replace(/^ /, '')).join('\n');
            if (!data) continue; // a heartbeat comment or a retry: line
            let m;
            try {
              m = JSON.parse(data);
            } catch {
              continue;
            }
            if (m.type === 'ready') {
              backoff = 1000;
              setLive('live', 'Live');
              scheduleRefresh(null); // catch up on anything missed while disconnected
            } else {
              pushActivity(m);
              recordChart(m);
              scheduleRefresh(m);
            }
          }
        }
      } catch {
        /* aborted or dropped: reconnect below */
      } finally {
        clearTimeout(watchdog);
      }
      if (session !== state.live.session) return;
      setLive('offline', 'Reconnecting…');
      await new Promise((r) => setTimeout(r, backoff));
      backoff = Math.min(backoff * 2, 15_000);
    }
  }

  // ---------------------------------------------------------------- start

  function start() {
    show($('login'), false);
    show($('app'), true);
    state.events = { rows: [], cursor: null, pages: 0, seen: new Set(), pendingNew: 0, loading: false };
    state.typesLoaded = false;
    route();
    refreshNow();
    drawChart();
    runLive();
    state.timers.push(
      setInterval(() => loadHealth().catch(() => {}), 15_000),
      // The live stream drives refreshes; this is the fallback when it is down.
      setInterval(() => { if ($('live-status').dataset.state !== 'live') refreshLive(null).catch(() => {}); }, 10_000),
      setInterval(() => {
        drawChart();
        for (const t of document.querySelectorAll('time.rel')) t.textContent = ago(t.getAttribute('datetime'));
      }, CHART_BUCKET_MS),
    );
  }

  function init() {
    $('login-form').addEventListener('submit', signIn);
    $('logout').addEventListener('click', () => signOut(''));
    $('refresh').addEventListener('click', () => refreshNow());
    $('drawer-close').addEventListener('click', closeDrawer);
    $('drawer-backdrop').addEventListener('click', closeDrawer);
    $('drawer-replay').addEventListener('click', () => state.detailId && replayEvent(state.detailId));
    document.addEventListener('keydown', (e) => { if (e.key === 'Escape' && state.detailId) closeDrawer(); });
    for (const id of ['filter-type', 'filter-status']) $(id).addEventListener('change', () => loadEvents(true).catch(report));
    let userTimer = null;
    $('filter-user').addEventListener('input', () => {
      clearTimeout(userTimer);
      userTimer = setTimeout(() => loadEvents(true).catch(report), 300);
    });
    $('events-more').addEventListener('click', () => loadEvents(false).catch(report));
    $('endpoints-more').addEventListener('click', () => loadEndpoints(false).catch(report));
    $('new-endpoint').addEventListener('click', () => openCreate().catch(report));
    $('endpoint-form').addEventListener('submit', createEndpoint);
    $('ep-cancel').addEventListener('click', closeCreate);
    $('ep-secret-done').addEventListener('click', closeCreate);
    $('new-events').addEventListener('click', () => { window.scrollTo(0, 0); loadEvents(true).catch(report); });
    $('bulk-replay').addEventListener('click', bulkReplay);
    $('epd-close').addEventListener('click', closeEndpoint);
    $('epd-edit').addEventListener('click', editEndpoint);
    $('epd-cancel').addEventListener('click', () => show($('epd-form'), false));
    $('epd-toggle').addEventListener('click', () => state.endpoint && toggleEndpoint(state.endpoint, state.endpoint.is_active ? 'disable' : 'enable'));
    $('epd-rotate').addEventListener('click', rotateSecret);
    $('epd-test').addEventListener('click', sendTest);
    $('epd-secret-done').addEventListener('click', () => { show($('epd-secret'), false); $('epd-secret-value').textContent = ''; });
    onSubmit($('epd-form'), saveEndpoint);
    onSubmit($('type-form'), registerType);
    onSubmit($('n8n-sync-form'), syncWorkflow);
    $('n8n-discover').addEventListener('click', discoverWorkflows);
    onSubmit($('org-form'), createOrg);
    onSubmit($('key-form'), createKey);
    $('key-secret-done').addEventListener('click', hideKeySecret);
    $('orgs-more').addEventListener('click', () => loadOrgs(false).catch(report));
    $('audit-filters').addEventListener('submit', (ev) => { ev.preventDefault(); loadAudit(true).catch(report); });
    $('audit-more').addEventListener('click', () => loadAudit(false).catch(report));
    onSubmit($('portal-form'), issueSession);
    $('portal-issued-done').addEventListener('click', doneSession);
    window.addEventListener('hashchange', () => { if (state.key) route(); });
    if (state.key) start();
    else signOut('');
  }

  init();
})();
