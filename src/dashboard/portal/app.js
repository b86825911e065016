// Carteiro's customer portal: a user's own webhook endpoints, their deliveries and attempts, over
// the portal API (/api/webhooks/portal/…) with the session token this page was opened with.
//
// - The token comes from the URL (?token=…), is removed from the address bar at once (so it stays
//   in no history entry and no referrer), and is kept in this tab's sessionStorage only.
// - Theming comes with the session (its theme, from GET /portal/session) and from the URL
//   (?theme=dark&primary=%23ff6600&logo=https://…, each over the session's), each value checked
//   strictly: a colour is #rgb or #rrggbb, a logo an http(s) URL or a data: image set as an <img src>.
// - Everything shown is built with createElement/textContent: names, URLs and the receivers'
//   answers are data, never parsed as HTML.
'use strict';

(() => {
  const API = '/api/webhooks/portal';
  const TOKEN_STORE = 'carteiro.portal.token';
  const PAGE = 50;
  const FINAL = new Set(['succeeded', 'failed', 'cancelled']);
  const $ = (id) => document.getElementById(id);

  const state = {
    token: '',
    session: null,
    canWrite: false,
    types: null,
    /** The endpoint form's transformation template picker (shared/dom.js), made on first use. */
    picker: null,
    endpoints: { rows: [], cursor: null, byId: new Map() },
    deliveries: { rows: [], cursor: null },
    endpoint: null,
    delivery: null,
    editing: null,
    testRun: 0,
    ended: false,
  };

  // ---------------------------------------------------------------- theming, from the URL

  const HEX_COLOUR = /^#(?:[0-9a-f]{3}|[0-9a-f]{6})$/i;

  /**
   * A logo is accepted only as an absolute http(s) URL without credentials, or a base64 data: image
   * (as a session's theme may carry), used as an image source.
   */
  function logoUrl(value) {
    if (typeof value === 'string' && /^data:image\/(?:png|jpeg|gif|webp|svg\+xml);base64,[A-Za-z0-9+/]+={0,2}$/.test(value)) return value;
    if (!value || value.length > 2048) return null;
    try {
      const u = new URL(value);
      if (u.protocol !== 'https:' && u.protocol !== 'http:') return null;
      if (u.username || u.password) return null;
      return u.href;
    } catch {
      return null;
    }
  }

  /** Black or white text on the primary colour, whichever reads better. */
  function inkOn(hex) {
    const full = hex.length === 4 ? '#' + [...hex.slice(1)].map((c) => c + c).join('') : hex;
    const [r, g, b] = [1, 3, 5].map((i) => parseInt(full.slice(i, i + 2), 16) / 255);
    const lin = (c) => (c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4);
    const luminance = 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b);
    return luminance > 0.4 ? '#111827' : '#ffffff';
  }

  /** The session's theme (GET /portal/session; none before it is read), each value overridden by the URL's parameter. */
  function themeOf(session, params) {
    const t = (session && session.theme) || {};
    return { mode: params.get('theme') || t.mode, primary: params.get('primary') || t.primary_color, logo: params.get('logo') || t.logo_url };
  }

  function applyTheme({ mode, primary, logo: logoValue }) {
    const root = document.documentElement;
    root.setAttribute('data-theme', mode === 'dark' || mode === 'auto' ? mode : 'light');
    if (primary && HEX_COLOUR.test(primary)) {
      // CSSOM, not a style attribute: allowed under style-src 'self', and the value is checked above.
      root.style.setProperty('--accent', primary);
      root.style.setProperty('--accent-ink', inkOn(primary));
    }
    const logo = logoUrl(logoValue);
    if (logo) {
      const img = $('brand-logo');
      img.src = logo;
      img.hidden = false;
    }
  }

  // ---------------------------------------------------------------- the token

  function storage() {
    try {
      return window.sessionStorage;
    } catch {
      return null; // storage refused (e.g. a sandboxed frame): the token lives in memory only
    }
  }

  /** The token from the URL (then dropped from the address bar), else from this tab's storage. */
  function takeToken() {
    const url = new URL(window.location.href);
    const fromUrl = url.searchParams.get('token');
    const store = storage();
    if (fromUrl !== null) {
      url.searchParams.delete('token');
      const query = url.searchParams.toString();
      history.replaceState(null, '', url.pathname + (query ? '?' + query : '') + url.hash);
      try {
        store?.setItem(TOKEN_STORE, fromUrl);
      } catch {
        /* memory only */
      }
      return fromUrl;
    }
    try {
      return store?.getItem(TOKEN_STORE) || '';
    } catch {
      return '';
    }
  }

  function forgetToken() {
    state.token = '';
    try {
      storage()?.removeItem(TOKEN_STORE);
    } catch {
      /* nothing kept */
    }
  }

  function endSession(title, text) {
    state.ended = true;
    forgetToken();
    $('ended-title').textContent = title;
    $('ended-text').textContent = text;
    $('app').hidden = true;
    $('ended').hidden = false;
  }

  const expired = () => endSession('This session has expired', 'Open the webhooks page again from the app to start a new session.');

  // ---------------------------------------------------------------- DOM helpers

  /** h('tr', {class:'x'}, 'text', child): shared/dom.js, loaded before this script. */
  const { h, templatePicker, exampleOf } = window.carteiroDom;

  const TONES = {
    succeeded: 'ok', healthy: 'ok', active: 'ok',
    pending: 'warn', in_flight: 'info', paused: 'neutral', failing: 'warn',
    failed: 'bad', disabled: 'neutral', cancelled: 'neutral',
  };
  const LABELS = { in_flight: 'in flight', disabled: 'paused' };
  const label = (s) => LABELS[s] || String(s).replace(/_/g, ' ');
  const badge = (status, text) => h('span', { class: 'badge', 'data-tone': TONES[status] || 'neutral' }, text ?? label(status));
  function setBadge(el, status, text) {
    el.textContent = text ?? label(status);
    el.setAttribute('data-tone', TONES[status] || 'neutral');
  }

  const dateFmt = new Intl.DateTimeFormat(undefined, { dateStyle: 'short', timeStyle: 'medium' });
  function fmtDate(v) {
    if (!v) return '—';
    const d = new Date(v);
    return Number.isNaN(d.getTime()) ? String(v) : dateFmt.format(d);
  }

  function toast(text, tone = 'info') {
    const el = h('div', { class: 'toast', 'data-tone': tone, role: 'status' }, text);
    $('toasts').append(el);
    setTimeout(() => el.remove(), 5000);
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

  function meta(dl, pairs) {
    dl.replaceChildren(...pairs.flatMap(([k, v]) => [h('dt', null, k), h('dd', null, v instanceof Node ? v : v === null || v === undefined || v === '' ? '—' : String(v))]));
  }

  // ---------------------------------------------------------------- API

  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  async function api(method, path, body) {
    if (state.ended) throw new ApiError(401, 'the session has ended');
    const headers = { authorization: 'Bearer ' + state.token, accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    let res;
    try {
      res = await fetch(API + path, { method, headers, cache: 'no-store', credentials: 'omit', referrerPolicy: 'no-referrer', body: body === undefined ? undefined : JSON.stringify(body) });
    } catch {
      throw new ApiError(0, 'Carteiro could not be reached. Check your connection and try again.');
    }
    const text = await res.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch {
      data = { message: text };
    }
    if (res.status === 401) {
      expired();
      throw new ApiError(401, 'this session has expired');
    }
    if (!res.ok) throw new ApiError(res.status, (data && data.message) || res.statusText || 'request failed (HTTP ' + res.status + ')');
    return data;
  }

  const report = (err) => {
    if (err instanceof ApiError && err.status === 401) return;
    toast(err instanceof Error ? err.message : String(err), 'bad');
  };

  // ---------------------------------------------------------------- views and routing

  const VIEWS = ['endpoints', 'endpoint', 'form', 'deliveries', 'delivery'];

  function showView(name) {
    for (const v of VIEWS) $('view-' + v).hidden = v !== name;
    const tab = name === 'deliveries' || name === 'delivery' ? 'deliveries' : 'endpoints';
    for (const a of document.querySelectorAll('.tab')) a.setAttribute('aria-current', a.dataset.view === tab ? 'page' : 'false');
  }

  const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

  async function route() {
    if (state.ended) return;
    const [name, id] = window.location.hash.replace(/^#/, '').split('/');
    try {
      if (name === 'endpoints' && id && UUID.test(id)) return await openEndpoint(id);
      if (name === 'new' && state.canWrite) return await openForm(null);
      if (name === 'edit' && id && UUID.test(id) && state.canWrite) return await openForm(id);
      if (name === 'deliveries' && id && UUID.test(id)) return await openDelivery(id);
      if (name === 'deliveries') return await openDeliveries();
      return await openEndpoints();
    } catch (err) {
      report(err);
    }
  }

  const go = (hash) => {
    if (window.location.hash === hash) route();
    else window.location.hash = hash;
  };

  // ---------------------------------------------------------------- endpoints

  function eventsText(events) {
    if (!events || events.length === 0) return 'none';
    if (events.includes('*')) return 'all events';
    return events.join(', ');
  }

  function statusOf(e) {
    return e.is_active ? (e.health === 'failing' ? 'failing' : 'active') : 'disabled';
  }

  async function loadEndpoints(more = false) {
    const q = new URLSearchParams({ limit: String(PAGE) });
    if (more && state.endpoints.cursor) q.set('cursor', state.endpoints.cursor);
    const page = await api('GET', '/endpoints?' + q);
    state.endpoints.rows = more ? state.endpoints.rows.concat(page.data) : page.data;
    state.endpoints.cursor = page.next_cursor;
    state.endpoints.byId = new Map(state.endpoints.rows.map((e) => [e.id, e]));
  }

  function renderEndpoints() {
    const rows = state.endpoints.rows;
    $('endpoints-table').tBodies[0].replaceChildren(
      ...rows.map((e) =>
        h('tr', { 'data-endpoint-id': e.id, tabindex: '0', onclick: () => go('#endpoints/' + e.id), onkeydown: (ev) => ev.key === 'Enter' && go('#endpoints/' + e.id) },
          h('td', null, h('div', { class: 'strong' }, e.name), h('div', { class: 'mono small muted break' }, e.url)),
          h('td', { class: 'small' }, eventsText(e.events)),
          h('td', null, badge(statusOf(e))),
          h('td', { class: 'num' }, String(e.success_count)),
          h('td', { class: 'num' }, String(e.failure_count)),
        ),
      ),
    );
    $('endpoints-empty').hidden = rows.length > 0;
    $('endpoints-more').hidden = !state.endpoints.cursor;
    const filter = $('filter-endpoint');
    const chosen = filter.value;
    filter.replaceChildren(h('option', { value: '' }, 'All endpoints'), ...rows.map((e) => h('option', { value: e.id }, e.name)));
    filter.value = state.endpoints.byId.has(chosen) ? chosen : '';
  }

  async function openEndpoints() {
    showView('endpoints');
    await loadEndpoints();
    renderEndpoints();
  }

  async function openEndpoint(id) {
    const e = await api('GET', '/endpoints/' + id);
    if (state.endpoint?.id !== id) $('test-result').hidden = true;
    state.endpoint = e;
    renderEndpoint(e);
    showView('endpoint');
    await loadEndpointAttempts(e.id);
  }

  function renderEndpoint(e) {
    $('detail-name').textContent = e.name;
    $('detail-url').textContent = e.url;
    setBadge($('detail-status'), statusOf(e));
    $('detail-pause').textContent = e.is_active ? 'Pause' : 'Resume';
    meta($('detail-meta'), [
      ['Events', eventsText(e.events)],
      ['Description', e.description],
      ['Status', e.is_active ? (e.health === 'failing' ? 'active, failing' : 'active') : 'paused' + (e.disabled_reason ? ' (' + e.disabled_reason + ')' : '')],
      ['Delivered', String(e.success_count)],
      ['Failed', String(e.failure_count)],
      ['Transformation', e.transformation ? (e.template ? 'from the ' + e.template + ' template' : 'custom code') : 'none: the standard payload'],
      ['Rate limit', e.rate_limit_per_second ? e.rate_limit_per_second + ' per second' : 'none'],
      // Names only: the values are often the receiver's credentials (the API returns them to the owner).
      ['Static headers', e.headers ? Object.keys(e.headers).sort().join(', ') : 'none'],
      ['Timeout', e.timeout_ms != null ? e.timeout_ms + ' ms' : 'service default'],
      ['Retries', e.max_retries != null ? String(e.max_retries) : 'service default'],
      ['First retry after', e.retry_base_delay_ms != null ? e.retry_base_delay_ms + ' ms' : 'service default'],
      ['Previous secret valid until', e.previous_secret_expires_at ? fmtDate(e.previous_secret_expires_at) : null],
      ['Created', fmtDate(e.created_at)],
      ['Endpoint ID', e.id],
    ]);
  }

  function attemptItem(a) {
    const ok = a.success;
    const summary = h('summary', null,
      h('span', { class: 'strong' }, '#' + a.attempt_number), ' ',
      badge(ok ? 'succeeded' : 'failed', a.status_code ? 'HTTP ' + a.status_code : ok ? 'delivered' : 'no answer'), ' ',
      h('span', { class: 'muted small' }, (a.delivery_duration_ms ?? '—') + ' ms · ' + fmtDate(a.created_at)),
    );
    return h('li', { class: 'attempt', 'data-attempt-id': a.id },
      h('details', null, summary,
        a.error ? h('p', { class: 'error-text small' }, a.error) : null,
        h('p', { class: 'small muted' }, "The receiver's answer:"),
        h('pre', { class: 'code' }, a.response_body === null || a.response_body === undefined || a.response_body === '' ? '(empty)' : a.response_body),
      ),
    );
  }

  async function loadEndpointAttempts(id) {
    const page = await api('GET', '/endpoints/' + id + '/attempts?limit=20');
    if (state.endpoint?.id !== id) return;
    $('detail-attempts').replaceChildren(...page.data.map((a) => attemptItem(a)));
    $('detail-attempts-empty').hidden = page.data.length > 0;
  }

  async function togglePause() {
    const e = state.endpoint;
    if (!e) return;
    const row = await api('POST', '/endpoints/' + e.id + '/' + (e.is_active ? 'disable' : 'enable'), {});
    state.endpoint = row;
    renderEndpoint(row);
    toast(row.is_active ? 'Endpoint resumed' : 'Endpoint paused: deliveries are held until you resume it', 'ok');
  }

  async function rotateSecret() {
    const e = state.endpoint;
    if (!e) return;
    if (!(await confirmDialog('Rotate the secret?', 'A new secret signs every delivery from now on. The old one keeps signing too for a while, so your receiver can switch over.', 'Rotate'))) return;
    const row = await api('POST', '/endpoints/' + e.id + '/rotate-secret', {});
    const { secret, ...endpoint } = row;
    state.endpoint = endpoint;
    renderEndpoint(endpoint);
    showSecret(secret, endpoint.previous_secret_expires_at ? 'The previous secret keeps signing until ' + fmtDate(endpoint.previous_secret_expires_at) + '.' : '');
  }

  async function deleteEndpoint() {
    const e = state.endpoint;
    if (!e) return;
    if (!(await confirmDialog('Delete this endpoint?', 'Deliveries to "' + e.name + '" stop, and it cannot be undone.', 'Delete'))) return;
    await api('DELETE', '/endpoints/' + e.id);
    state.endpoint = null;
    toast('Endpoint deleted', 'ok');
    go('#endpoints');
  }

  function showSecret(secret, note) {
    $('secret-value').textContent = secret;
    $('secret-note').textContent = note || '';
    $('secret-panel').hidden = false;
    $('secret-panel').scrollIntoView({ block: 'nearest' });
  }

  function hideSecret() {
    $('secret-value').textContent = '';
    $('secret-panel').hidden = true;
  }

  // ---------------------------------------------------------------- send a test event

  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

  async function sendTest() {
    const e = state.endpoint;
    if (!e) return;
    const run = ++state.testRun;
    const panel = $('test-result');
    const body = $('test-body');
    panel.hidden = false;
    body.hidden = true;
    body.textContent = '';
    setBadge($('test-status'), 'pending', 'sending…');
    $('test-summary').textContent = 'Sending a webhook.test event to ' + e.url + '…';
    $('detail-test').disabled = true;
    try {
      const sent = await api('POST', '/endpoints/' + e.id + '/test', { message: 'A test delivery from the webhooks page' });
      if (sent.paused) {
        setBadge($('test-status'), 'paused');
        $('test-summary').textContent = 'The endpoint is paused: the test event is held until you resume it.';
        return;
      }
      // Wait for the first recorded attempt (a delivery in flight has claimed one, not recorded it
      // yet), then show what the receiver answered.
      const deadline = Date.now() + 60_000;
      let delivery = null;
      let last = null;
      while (Date.now() < deadline && run === state.testRun && !state.ended) {
        const page = await api('GET', '/deliveries?event_id=' + encodeURIComponent(sent.event_id) + '&limit=1');
        delivery = page.data[0] || null;
        if (delivery && delivery.attempts > 0 && delivery.status !== 'in_flight') {
          const attempts = await api('GET', '/deliveries/' + delivery.id + '/attempts');
          last = attempts.data[attempts.data.length - 1] || null;
          if (last) break;
        }
        await sleep(400);
      }
      if (run !== state.testRun) return;
      if (!delivery || !last) {
        setBadge($('test-status'), 'pending');
        $('test-summary').textContent = 'The test event is queued; its delivery shows under Deliveries once it is attempted.';
        return;
      }
      if (run !== state.testRun) return;
      setBadge($('test-status'), last && last.success ? 'succeeded' : 'failed', last && last.status_code ? 'HTTP ' + last.status_code : last && last.success ? 'delivered' : 'failed');
      $('test-summary').replaceChildren(
        last && last.success ? 'Your receiver accepted the test event' : 'Your receiver did not accept the test event',
        last && last.delivery_duration_ms !== null && last.delivery_duration_ms !== undefined ? ' in ' + last.delivery_duration_ms + ' ms' : '',
        last && last.error ? ': ' + last.error : '.',
        ' ',
        h('a', { href: '#deliveries/' + delivery.id, class: 'link', id: 'test-delivery-link' }, 'See the delivery'),
      );
      body.textContent = last && last.response_body ? last.response_body : '(empty answer)';
      body.hidden = false;
      // The endpoint's counters changed with this attempt.
      const fresh = await api('GET', '/endpoints/' + e.id);
      if (state.endpoint?.id === e.id) {
        state.endpoint = fresh;
        renderEndpoint(fresh);
      }
      await loadEndpointAttempts(e.id);
    } finally {
      if (run === state.testRun) $('detail-test').disabled = false;
    }
  }

  // ---------------------------------------------------------------- recover

  async function recover(ev) {
    ev.preventDefault();
    const e = state.endpoint;
    const value = $('recover-since').value;
    if (!e || !value) return;
    const since = new Date(value);
    if (Number.isNaN(since.getTime())) return toast('Pick a date and time to recover from', 'bad');
    const result = await api('POST', '/endpoints/' + e.id + '/recover', { since: since.toISOString() });
    const n = result.recovered;
    toast((n === 1 ? '1 event' : n + ' events') + ' queued again' + (result.truncated ? ' (the most at once; recover again for the rest)' : ''), 'ok');
  }

  // ---------------------------------------------------------------- create / edit

  async function loadTypes() {
    if (!state.types) state.types = (await api('GET', '/event-types')).data;
    return state.types;
  }

  function renderTypeChoices(types, chosen) {
    $('ep-events').replaceChildren(
      ...types.map((t) => {
        const example = exampleOf(t.schema);
        return h('li', { class: 'event-type' },
          h('label', { class: 'check' },
            h('input', { type: 'checkbox', value: t.name, checked: chosen.has(t.name) }),
            h('span', { class: 'mono' }, t.name),
            t.description ? h('span', { class: 'muted small' }, ' — ' + t.description) : null,
          ),
          example ? h('details', { class: 'example' }, h('summary', { class: 'small' }, example.label), h('pre', { class: 'code' }, JSON.stringify(example.value, null, 2))) : null,
        );
      }),
    );
  }

  function syncAllEvents() {
    const all = $('ep-all-events').checked;
    for (const input of $('ep-events').querySelectorAll('input')) input.disabled = all;
    $('ep-patterns').disabled = all;
  }

  async function loadPicker() {
    if (!state.picker) {
      const templates = (await api('GET', '/transformation-templates')).data;
      state.picker = templatePicker({ select: $('ep-template'), code: $('ep-transformation'), hint: $('ep-template-hint') }, templates);
    }
    return state.picker;
  }

  async function openForm(id) {
    hideFormError();
    const [types, picker] = await Promise.all([loadTypes(), loadPicker()]);
    const e = id ? await api('GET', '/endpoints/' + id) : null;
    state.editing = e;
    const events = e ? e.events : [];
    const names = new Set(types.map((t) => t.name));
    $('form-title').textContent = e ? 'Edit endpoint' : 'New endpoint';
    $('ep-save').textContent = e ? 'Save changes' : 'Create endpoint';
    $('form-back').setAttribute('href', e ? '#endpoints/' + e.id : '#endpoints');
    $('ep-name').value = e ? e.name : '';
    $('ep-url').value = e ? e.url : '';
    $('ep-description').value = e && e.description ? e.description : '';
    $('ep-all-events').checked = e ? events.includes('*') : false;
    renderTypeChoices(types, new Set(events.filter((x) => names.has(x))));
    $('ep-patterns').value = events.filter((x) => x !== '*' && !names.has(x)).join(', ');
    syncAllEvents();
    picker.set(e ? e.template : null, e ? e.transformation : null);
    showView('form');
    $('ep-name').focus();
  }

  function showFormError(text) {
    $('form-error').textContent = text;
    $('form-error').hidden = false;
  }
  function hideFormError() {
    $('form-error').hidden = true;
  }

  async function saveForm(ev) {
    ev.preventDefault();
    hideFormError();
    const name = $('ep-name').value.trim();
    const url = $('ep-url').value.trim();
    const description = $('ep-description').value.trim();
    if (!name) return showFormError('Give the endpoint a name.');
    if (!/^https?:\/\//i.test(url)) return showFormError('The URL must start with https:// (or http://).');
    let events;
    if ($('ep-all-events').checked) events = ['*'];
    else {
      events = [...$('ep-events').querySelectorAll('input:checked')].map((i) => i.value);
      events.push(...$('ep-patterns').value.split(',').map((s) => s.trim()).filter(Boolean));
      if (events.length === 0) return showFormError('Pick at least one event type, or All events.');
    }
    const editing = state.editing;
    // The code as it stands in the form (a template's, edited or not), the template as its label.
    const { transformation, template } = state.picker.value();
    const shaping = transformation ? { transformation, template } : editing && editing.transformation ? { transformation: null } : {};
    $('ep-save').disabled = true;
    try {
      if (editing) {
        const row = await api('PATCH', '/endpoints/' + editing.id, { name, url, description: description || null, events, ...shaping });
        toast('Endpoint saved', 'ok');
        go('#endpoints/' + row.id);
      } else {
        if (shaping.template === null) delete shaping.template;
        const row = await api('POST', '/endpoints', { name, url, events, ...(description ? { description } : {}), ...shaping });
        const { secret, ...endpoint } = row;
        state.endpoint = endpoint;
        go('#endpoints/' + endpoint.id);
        showSecret(secret, 'Your receiver verifies each webhook with it (Standard Webhooks signatures).');
      }
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) return;
      showFormError(err instanceof Error ? err.message : String(err));
    } finally {
      $('ep-save').disabled = false;
    }
  }

  // ---------------------------------------------------------------- deliveries

  async function loadDeliveries(more = false) {
    const q = new URLSearchParams({ limit: String(PAGE) });
    const endpoint = $('filter-endpoint').value;
    const status = $('filter-status').value;
    if (endpoint) q.set('endpoint_id', endpoint);
    if (status) q.set('status', status);
    if (more && state.deliveries.cursor) q.set('cursor', state.deliveries.cursor);
    const page = await api('GET', '/deliveries?' + q);
    state.deliveries.rows = more ? state.deliveries.rows.concat(page.data) : page.data;
    state.deliveries.cursor = page.next_cursor;
    renderDeliveries();
  }

  const endpointName = (id) => state.endpoints.byId.get(id)?.name ?? id.slice(-12);

  function renderDeliveries() {
    const rows = state.deliveries.rows;
    $('deliveries-table').tBodies[0].replaceChildren(
      ...rows.map((d) =>
        h('tr', { 'data-delivery-id': d.id, tabindex: '0', onclick: () => go('#deliveries/' + d.id), onkeydown: (ev) => ev.key === 'Enter' && go('#deliveries/' + d.id) },
          h('td', { class: 'small' }, fmtDate(d.created_at)),
          h('td', { class: 'mono small' }, d.event_type),
          h('td', null, endpointName(d.endpoint_id)),
          h('td', null, badge(d.status)),
          h('td', { class: 'num' }, String(d.attempts)),
          h('td', { class: 'small' }, d.last_status_code ? 'HTTP ' + d.last_status_code : d.last_error || '—'),
        ),
      ),
    );
    $('deliveries-empty').hidden = rows.length > 0;
    $('deliveries-more').hidden = !state.deliveries.cursor;
  }

  async function openDeliveries() {
    showView('deliveries');
    if (state.endpoints.rows.length === 0) {
      await loadEndpoints();
      renderEndpoints();
    }
    await loadDeliveries();
  }

  async function openDelivery(id) {
    const [d, attempts] = await Promise.all([api('GET', '/deliveries/' + id), api('GET', '/deliveries/' + id + '/attempts')]);
    if (!state.endpoints.byId.has(d.endpoint_id)) {
      await loadEndpoints();
      renderEndpoints();
    }
    state.delivery = d;
    $('delivery-title').textContent = d.event_type;
    $('delivery-sub').textContent = 'to ' + endpointName(d.endpoint_id);
    setBadge($('delivery-status'), d.status);
    $('delivery-replay').disabled = !state.canWrite || !FINAL.has(d.status);
    meta($('delivery-meta'), [
      ['Endpoint', endpointName(d.endpoint_id)],
      ['Status', label(d.status)],
      ['Attempts', String(d.attempts)],
      ['Last answer', d.last_status_code ? 'HTTP ' + d.last_status_code : null],
      ['Last error', d.last_error],
      ['Created', fmtDate(d.created_at)],
      ['Completed', d.completed_at ? fmtDate(d.completed_at) : null],
      ['Next attempt', FINAL.has(d.status) ? null : fmtDate(d.next_attempt_at)],
      ['Event ID', d.event_id],
      ['Delivery ID', d.id],
    ]);
    const list = attempts.data.slice().reverse();
    $('delivery-attempts').replaceChildren(...list.map((a) => attemptItem(a)));
    $('delivery-attempts-empty').hidden = list.length > 0;
    showView('delivery');
  }

  async function replayDelivery() {
    const d = state.delivery;
    if (!d) return;
    await api('POST', '/deliveries/' + d.id + '/replay', {});
    toast('Replay queued', 'ok');
    // Show the new attempt as soon as it is recorded.
    const before = d.attempts;
    for (let i = 0; i < 30 && state.delivery?.id === d.id && !state.ended; i++) {
      await sleep(500);
      const now = await api('GET', '/deliveries/' + d.id);
      if (now.attempts > before && FINAL.has(now.status)) break;
    }
    if (state.delivery?.id === d.id) await openDelivery(d.id);
  }

  // ---------------------------------------------------------------- start

  const guarded = (fn) => (ev) => {
    Promise.resolve(fn(ev)).catch(report);
  };

  function applyScope(session) {
    state.canWrite = session.scope === 'manage';
    $('who-user').textContent = session.user_id;
    setBadge($('who-scope'), state.canWrite ? 'active' : 'neutral', state.canWrite ? 'can manage' : 'read only');
    document.documentElement.setAttribute('data-scope', session.scope);
    for (const el of document.querySelectorAll('[data-write]')) {
      el.hidden = !state.canWrite;
      if ('disabled' in el && !state.canWrite) el.disabled = true;
    }
    const max = session.limits && session.limits.max_endpoints;
    $('limits-text').textContent = typeof max === 'number' ? 'Up to ' + max + ' endpoints.' : '';
  }

  async function start() {
    const params = new URLSearchParams(window.location.search);
    applyTheme(themeOf(null, params));
    state.token = takeToken();
    if (!state.token) {
      endSession('No session', 'This page opens from a link the app gives you. Open it again from the app.');
      return;
    }
    let session;
    try {
      session = await api('GET', '/session');
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) return;
      endSession('The webhooks page could not load', err instanceof Error ? err.message : String(err));
      return;
    }
    state.session = session;
    applyTheme(themeOf(session, params));
    applyScope(session);
    $('app').hidden = false;

    $('new-endpoint').addEventListener('click', () => go('#new'));
    $('endpoints-more').addEventListener('click', guarded(async () => { await loadEndpoints(true); renderEndpoints(); }));
    $('detail-test').addEventListener('click', guarded(sendTest));
    $('detail-edit').addEventListener('click', () => state.endpoint && go('#edit/' + state.endpoint.id));
    $('detail-pause').addEventListener('click', guarded(togglePause));
    $('detail-rotate').addEventListener('click', guarded(rotateSecret));
    $('detail-delete').addEventListener('click', guarded(deleteEndpoint));
    $('detail-deliveries').addEventListener('click', () => {
      if (state.endpoint) $('filter-endpoint').value = state.endpoint.id;
      $('filter-status').value = '';
      go('#deliveries');
    });
    $('recover-form').addEventListener('submit', guarded(recover));
    $('endpoint-form').addEventListener('submit', guarded(saveForm));
    $('ep-all-events').addEventListener('change', syncAllEvents);
    $('ep-cancel').addEventListener('click', () => go(state.editing ? '#endpoints/' + state.editing.id : '#endpoints'));
    $('filter-endpoint').addEventListener('change', guarded(() => loadDeliveries()));
    $('filter-status').addEventListener('change', guarded(() => loadDeliveries()));
    $('deliveries-refresh').addEventListener('click', guarded(() => loadDeliveries()));
    $('deliveries-more').addEventListener('click', guarded(() => loadDeliveries(true)));
    $('delivery-replay').addEventListener('click', guarded(replayDelivery));
    $('secret-dismiss').addEventListener('click', hideSecret);
    $('secret-copy').addEventListener('click', guarded(async () => {
      await navigator.clipboard.writeText($('secret-value').textContent || '');
      toast('Secret copied', 'ok');
    }));
    window.addEventListener('hashchange', route);
    await route();
  }

  start().catch(report);
})();
