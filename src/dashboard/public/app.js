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
  };

  // ---------------------------------------------------------------- DOM helpers

  /** h('tr', {class:'x'}, 'text', child): shared/dom.js, loaded before this script. */
  const { h, templatePicker } = window.carteiroDom;

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
    constructor(status, message, code) {
      super(message);
      this.status = status;
      this.code = code;
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
      throw new ApiError(res.status, (data && data.message) || res.statusText || 'request failed', data && data.code);
    }
    return data;
  }

  const report = (err) => {
    if (err instanceof ApiError && err.status === 401) return;
    toast(err instanceof Error ? err.message : String(err), 'bad');
  };

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
    if (state.view === 'endpoints') loadEndpoints(true).catch(report);
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
    return h('tr', { 'data-endpoint-id': e.id },
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
      h('td', { class: 'actions' }, h('button', { type: 'button', class: 'btn btn-sm' + (e.is_active ? '' : ' btn-primary'), onclick: () => toggleEndpoint(e, action) }, e.is_active ? 'Disable' : 'Enable')));
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
    } catch (err) {
      report(err);
    }
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
    window.addEventListener('hashchange', () => { if (state.key) route(); });
    if (state.key) start();
    else signOut('');
  }

  init();
})();
