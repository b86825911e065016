/**
 * The operator's daily commands, talking to a running Carteiro over its API (api-client.ts):
 *   carteiro send <type> --data …        POST /trigger
 *   carteiro events [id]                 GET /events, or one event with its deliveries and attempts
 *   carteiro endpoints [id]              GET /endpoints, or one endpoint
 *   carteiro endpoints create|update|rotate|test|enable|disable
 *   carteiro templates [name]            GET /transformation-templates: the list, or one template's code
 *   carteiro replay <event>              POST /events/:id/replay
 *   carteiro recover --endpoint E --since T [--until T] [--dry-run]
 *   carteiro tail [--type T] [--endpoint E]   follows deliveries through GET /live
 */
import { readFileSync } from 'node:fs';
import { Option, type Command } from 'commander';
import { SingleBar, Presets } from 'cli-progress';
import { connectApi, type ApiClient, type ApiOptions } from './api-client.ts';
import { fromCommander, rootCommand, table, type Ctx } from './commander-command.ts';
import { UsageError, type CliCommand } from './sub-command.ts';

type Common = ApiOptions & { json?: boolean };

/** The options every API command takes. */
function api(cmd: Command): Command {
  return cmd
    .option('--url <url>', 'the API base URL (env CARTEIRO_URL; default http://127.0.0.1:$PORT/api/webhooks)')
    .option('--api-key <key>', "the key to send (env CARTEIRO_API_KEY, then CARTEIRO_ADMIN_KEY, then the local data folder's admin key)")
    .option('--json', "print the API's JSON answer instead of text");
}

const client = (ctx: Ctx, opts: Common): ApiClient => connectApi(ctx.config(), opts);
const print = (text: string) => console.log(text);
const printJson = (value: unknown) => console.log(JSON.stringify(value, null, 2));
const when = (v: unknown) => (v ? new Date(String(v)).toISOString() : '-');

function positiveInt(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new UsageError(`${name}: "${v}" is not a positive whole number`);
    return n;
  };
}

function wholeNumber(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0) throw new UsageError(`${name}: "${v}" is not a whole number`);
    return n;
  };
}

/** `--header "Name: value"`, repeatable: each adds one static header. */
function collectHeader(v: string, headers: Record<string, string> = {}): Record<string, string> {
  const colon = v.indexOf(':');
  if (colon < 1) throw new UsageError(`--header: "${v.slice(0, 60)}" is not "Name: value"`);
  headers[v.slice(0, colon).trim()] = v.slice(colon + 1).trim();
  return headers;
}

/** `--template-option key=value`, repeatable: each fills in one of the template's options. */
function collectTemplateOption(v: string, options: Record<string, string> = {}): Record<string, string> {
  const eq = v.indexOf('=');
  if (eq < 1) throw new UsageError(`--template-option: "${v.slice(0, 60)}" is not "key=value"`);
  options[v.slice(0, eq).trim()] = v.slice(eq + 1);
  return options;
}

/** --transformation: the code itself, or @file.js. */
function readCode(v: string): string {
  if (!v.startsWith('@')) return v;
  try {
    return readFileSync(v.slice(1), 'utf8');
  } catch (err) {
    throw new UsageError(`--transformation: cannot read ${v.slice(1)}: ${(err as Error).message}`);
  }
}

/** A time for --since/--until: an ISO date, or a duration back from now (30m, 2h, 7d). */
export function parseTime(name: string, v: string, nowMs = Date.now()): string {
  const ago = /^(\d+)\s*(s|m|h|d)$/.exec(v.trim());
  if (ago) return new Date(nowMs - Number(ago[1]) * { s: 1e3, m: 6e4, h: 36e5, d: 864e5 }[ago[2] as 's']).toISOString();
  const t = Date.parse(v);
  if (Number.isNaN(t)) throw new UsageError(`${name}: "${v}" is neither a date (2026-01-31T12:00:00Z) nor a duration ago (30m, 2h, 7d)`);
  return new Date(t).toISOString();
}

/** --data: JSON text, @file, or - for standard input. */
function readData(v: string): Record<string, unknown> {
  let text = v;
  try {
    if (v === '-') text = readFileSync(0, 'utf8');
    else if (v.startsWith('@')) text = readFileSync(v.slice(1), 'utf8');
  } catch (err) {
    throw new UsageError(`--data: cannot read ${v === '-' ? 'standard input' : v.slice(1)}: ${(err as Error).message}`);
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    throw new UsageError('--data: not JSON (give an object, e.g. \'{"user_id":"u1"}\', @file.json or - for stdin)');
  }
  if (data === null || typeof data !== 'object' || Array.isArray(data)) throw new UsageError('--data: must be a JSON object');
  return data as Record<string, unknown>;
}

export const sendCommand: CliCommand = fromCommander('send', (ctx) =>
  api(
    rootCommand('send')
      .description('Send an event (POST /trigger). Prints its id; exit code 0 once Carteiro has committed it.')
      .argument('<type>', 'the event type, e.g. user.registered')
      .requiredOption('-d, --data <json>', "the event's data: a JSON object, @file.json, or - for standard input")
      .option('--user-id <id>', 'the user the event is about')
      .option('--idempotency-key <key>', 'the same key twice is one event')
      .addOption(new Option('--priority <priority>', "delivery priority (default: the type's)").choices(['normal', 'high']))
      .option('--organization <uuid>', 'the organization (admin key only)'),
  ).action(async (type: string, o: Common & { data: string; userId?: string; idempotencyKey?: string; priority?: string; organization?: string }) => {
    const data = readData(o.data);
    const res = await client(ctx, o).request('POST', '/trigger', {
      body: { event_type: type, data, user_id: o.userId, idempotency_key: o.idempotencyKey, priority: o.priority, organization_id: o.organization },
    });
    if (o.json) printJson(res);
    else print(`${res.duplicate ? 'duplicate of' : 'accepted'} event ${res.event_id} (${res.event_type}, ${res.status})`);
  }),
);

type EventRow = { id: string; event_type: string; status: string; created_at: string; retry_count?: number; error_message?: string | null };

export const eventsCommand: CliCommand = fromCommander('events', (ctx) =>
  api(
    rootCommand('events')
      .description('List events, newest first (GET /events), or show one event with its deliveries and every attempt.')
      .argument('[id]', 'an event id: show that event')
      .option('--type <type>', 'only this event type')
      .addOption(new Option('--status <status>', 'only events in this status').choices(['pending', 'processing', 'completed', 'failed']))
      .option('--user-id <id>', 'only events about this user')
      .option('--since <time>', 'created at or after (ISO date, or 30m/2h/7d ago)')
      .option('--until <time>', 'created before (ISO date, or 30m/2h/7d ago)')
      .option('--limit <n>', 'how many (1-500)', positiveInt('--limit'), 20),
  ).action(async (id: string | undefined, o: Common & { type?: string; status?: string; userId?: string; since?: string; until?: string; limit: number }) => {
    const c = client(ctx, o);
    if (id) {
      const path = `/events/${encodeURIComponent(id)}`;
      const [event, status, attempts] = await Promise.all([
        c.request<EventRow & { data: unknown }>('GET', path),
        c.request<{ deliveries?: Record<string, unknown>[] }>('GET', `${path}/status`),
        c.request<{ attempts?: Record<string, unknown>[]; data?: Record<string, unknown>[] }>('GET', `${path}/attempts`),
      ]);
      if (o.json) return printJson({ event, status, attempts });
      print(`${event.id}  ${event.event_type}  ${event.status}  created ${when(event.created_at)}`);
      if (event.error_message) print(`error: ${event.error_message}`);
      print(`data: ${JSON.stringify(event.data, null, 2)}`);
      const deliveries = status.deliveries ?? [];
      if (deliveries.length) {
        print('\ndeliveries:');
        print(
          table(
            deliveries.map((d) => [
              String(d.endpoint_id),
              String(d.endpoint_name ?? '-'),
              String(d.status),
              `attempts ${d.attempts}`,
              `last ${d.last_status_code ?? d.last_error ?? '-'}`,
            ]),
          ),
        );
      }
      const list = attempts.attempts ?? attempts.data ?? [];
      if (list.length) {
        print('\nattempts:');
        print(
          table(
            list.map((a) => [
              when(a.created_at ?? a.attempted_at),
              String(a.webhook_endpoint_id ?? a.endpoint_id ?? '-'),
              `#${a.attempt_number ?? '-'}`,
              String(a.status_code ?? a.error ?? '-'),
              `${a.duration_ms ?? '-'} ms`,
            ]),
          ),
        );
      }
      return;
    }
    const res = await c.request<{ data?: EventRow[]; events?: EventRow[] }>('GET', '/events', {
      query: {
        event_type: o.type,
        status: o.status,
        user_id: o.userId,
        since: o.since && parseTime('--since', o.since),
        until: o.until && parseTime('--until', o.until),
        limit: o.limit,
      },
    });
    if (o.json) return printJson(res);
    const rows = res.data ?? res.events ?? [];
    if (!rows.length) return print('no events');
    print(table([['ID', 'TYPE', 'STATUS', 'CREATED'], ...rows.map((e) => [e.id, e.event_type, e.status, when(e.created_at)])]));
  }),
);

type EndpointRow = {
  id: string;
  name: string;
  url: string;
  events: string[];
  is_active: boolean;
  health?: string;
  secret?: string;
  failed_attempts_in_row?: number;
  headers?: Record<string, string | null> | null;
  timeout_ms?: number | null;
  max_retries?: number | null;
  retry_base_delay_ms?: number | null;
  transformation?: string | null;
  template?: string | null;
};

function showEndpoint(e: EndpointRow): void {
  print(`${e.id}  ${e.name}  ${e.is_active ? 'enabled' : 'disabled'}${e.health ? ` (${e.health})` : ''}`);
  print(`  url:    ${e.url}`);
  print(`  events: ${e.events.join(', ')}`);
  // Names only: the values are often the receiver's credentials (--json shows them to whoever asks for them).
  if (e.headers) print(`  headers: ${Object.keys(e.headers).sort().join(', ')}`);
  const overrides = [
    e.timeout_ms != null ? `timeout ${e.timeout_ms} ms` : null,
    e.max_retries != null ? `${e.max_retries} retries` : null,
    e.retry_base_delay_ms != null ? `first retry after ${e.retry_base_delay_ms} ms` : null,
  ].filter(Boolean);
  if (overrides.length) print(`  delivery: ${overrides.join(', ')}`);
  if (e.transformation)
    print(`  transformation: ${e.template ? `from the ${e.template} template, ` : ''}${e.transformation.length} characters (--json shows the code)`);
  if (e.secret) print(`  secret: ${e.secret}   (shown once: keep it now)`);
}

/** Fields `endpoints update --clear` sets to null: back to the service's setting, or none. */
const CLEARABLE = [
  'description',
  'headers',
  'timeout_ms',
  'max_retries',
  'retry_base_delay_ms',
  'max_in_flight',
  'batch_max_events',
  'transformation',
  'template',
];

type EndpointFieldOptions = {
  description?: string;
  header?: Record<string, string>;
  timeoutMs?: number;
  maxRetries?: number;
  retryBaseDelayMs?: number;
  batchMaxEvents?: number;
  batchMaxWaitMs?: number;
  batchGroupByType?: boolean;
  template?: string;
  templateOption?: Record<string, string>;
  transformation?: string;
};

/** The delivery settings create and update both take. */
function deliveryOptions(cmd: Command): Command {
  return cmd
    .option(
      '--header <name: value>',
      'a static header sent with every delivery (repeatable; on update, the whole set), e.g. "Authorization: Bearer …"',
      collectHeader,
    )
    .option('--timeout-ms <ms>', "this endpoint's deadline per attempt, up to the service's WEBHOOK_TIMEOUT_MS", positiveInt('--timeout-ms'))
    .option('--max-retries <n>', "retries before a delivery fails, up to the service's WEBHOOK_MAX_RETRIES", wholeNumber('--max-retries'))
    .option('--retry-base-delay-ms <ms>', "the first retry's delay (later ones grow as the service's)", positiveInt('--retry-base-delay-ms'))
    .option('--batch-max-events <n>', 'send up to n events per request (2-1000; docs/batching.md)', positiveInt('--batch-max-events'))
    .option('--batch-max-wait-ms <ms>', 'how long a batch waits to fill before it goes partial (default 1000)', wholeNumber('--batch-max-wait-ms'))
    .option('--batch-group-by-type', 'each batch holds events of one type only')
    .option('--template <name>', 'a transformation template whose code the endpoint gets (carteiro templates lists them): slack, discord, teams, …')
    .option('--template-option <key=value>', "one of the template's options (repeatable), e.g. chat_id=-1001234567890 for telegram", collectTemplateOption)
    .option('--transformation <code>', "the endpoint's transformation: JavaScript, or @file.js (with --template, the template only labels it)", readCode);
}

function deliveryFields(o: EndpointFieldOptions): Record<string, unknown> {
  if (o.templateOption && !o.template) throw new UsageError('--template-option: goes with --template');
  if (o.templateOption && o.transformation !== undefined)
    throw new UsageError("--template-option: fills in a template's code, so not with --transformation (write the values into the code)");
  return {
    headers: o.header,
    timeout_ms: o.timeoutMs,
    max_retries: o.maxRetries,
    retry_base_delay_ms: o.retryBaseDelayMs,
    batch_max_events: o.batchMaxEvents,
    batch_max_wait_ms: o.batchMaxWaitMs,
    batch_group_by_type: o.batchGroupByType,
    template: o.template,
    template_options: o.templateOption,
    transformation: o.transformation,
  };
}

function eventList(list: string): string[] {
  const events = list
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (!events.length) throw new UsageError('--events: name at least one event type or wildcard');
  return events;
}

export const endpointsCommand: CliCommand = fromCommander('endpoints', (ctx) => {
  const root = api(
    rootCommand('endpoints')
      .description('List endpoints (GET /endpoints), or show one; manage them with the actions below.')
      .argument('[id]', 'an endpoint id: show that endpoint')
      .option('--limit <n>', 'how many (1-500)', positiveInt('--limit'), 50),
  ).action(async (id: string | undefined, o: Common & { limit: number }) => {
    const c = client(ctx, o);
    if (id) {
      const e = await c.request<EndpointRow>('GET', `/endpoints/${encodeURIComponent(id)}`);
      return o.json ? printJson(e) : showEndpoint(e);
    }
    const res = await c.request<{ data?: EndpointRow[]; endpoints?: EndpointRow[] }>('GET', '/endpoints', { query: { limit: o.limit } });
    if (o.json) return printJson(res);
    const rows = res.data ?? res.endpoints ?? [];
    if (!rows.length) return print('no endpoints');
    print(
      table([
        ['ID', 'NAME', 'STATE', 'HEALTH', 'URL', 'EVENTS'],
        ...rows.map((e) => [e.id, e.name, e.is_active ? 'enabled' : 'disabled', e.health ?? '-', e.url, e.events.join(',')]),
      ]),
    );
  });

  api(
    deliveryOptions(
      root
        .command('create')
        .description('Register an endpoint (POST /endpoints); its signing secret is printed once.')
        .argument('<receiver-url>', 'where deliveries go')
        .requiredOption('--name <name>', 'a name for it')
        .option('--events <list>', 'comma-separated event types or wildcards (user.*, *)', '*')
        .option('--description <text>', 'a description'),
    ),
  ).action(async (receiverUrl: string, o: Common & EndpointFieldOptions & { name: string; events: string }) => {
    const body = { name: o.name, url: receiverUrl, events: eventList(o.events), description: o.description, ...deliveryFields(o) };
    const e = await client(ctx, o).request<EndpointRow>('POST', '/endpoints', { body });
    return o.json ? printJson(e) : showEndpoint(e);
  });

  api(
    deliveryOptions(
      root
        .command('update')
        .description("Change an endpoint (PATCH /endpoints/:id): only the fields given change; --clear sets fields back to the service's.")
        .argument('<id>', 'the endpoint')
        .option('--receiver-url <url>', 'where deliveries go')
        .option('--name <name>', 'its name')
        .option('--events <list>', 'comma-separated event types or wildcards (user.*, *)')
        .option('--description <text>', 'a description')
        .option('--max-in-flight <n>', 'requests in flight to it per worker, at most (1-1000)', positiveInt('--max-in-flight'))
        .option('--clear <fields>', `comma-separated fields to clear: ${CLEARABLE.join(', ')}`),
    ),
  ).action(
    async (id: string, o: Common & EndpointFieldOptions & { receiverUrl?: string; name?: string; events?: string; maxInFlight?: number; clear?: string }) => {
      const body: Record<string, unknown> = {
        url: o.receiverUrl,
        name: o.name,
        events: o.events === undefined ? undefined : eventList(o.events),
        description: o.description,
        max_in_flight: o.maxInFlight,
        ...deliveryFields(o),
      };
      for (const field of (o.clear ?? '')
        .split(',')
        .map((f) => f.trim())
        .filter(Boolean)) {
        if (!CLEARABLE.includes(field)) throw new UsageError(`--clear: "${field}" cannot be cleared (${CLEARABLE.join(', ')})`);
        if (body[field] !== undefined) throw new UsageError(`--clear: ${field} is also given a value`);
        body[field] = null;
      }
      for (const k of Object.keys(body)) if (body[k] === undefined) delete body[k];
      if (Object.keys(body).length === 0) throw new UsageError('update: give at least one field to change');
      const e = await client(ctx, o).request<EndpointRow>('PATCH', `/endpoints/${encodeURIComponent(id)}`, { body });
      return o.json ? printJson(e) : showEndpoint(e);
    },
  );

  api(
    root
      .command('rotate')
      .description("Rotate an endpoint's signing secret (POST /endpoints/:id/rotate-secret); the new one is printed once.")
      .argument('<id>', 'the endpoint')
      .option('--overlap <seconds>', "how long the old secret keeps signing too (default: the server's)", (v) => {
        const n = Number(v);
        if (!Number.isInteger(n) || n < 0) throw new UsageError(`--overlap: "${v}" is not a whole number of seconds`);
        return n;
      }),
  ).action(async (id: string, o: Common & { overlap?: number }) => {
    const e = await client(ctx, o).request<EndpointRow>('POST', `/endpoints/${encodeURIComponent(id)}/rotate-secret`, {
      body: o.overlap === undefined ? {} : { overlap_seconds: o.overlap },
    });
    return o.json ? printJson(e) : showEndpoint(e);
  });

  api(
    root
      .command('test')
      .description('Deliver a webhook.test event to this endpoint only (POST /endpoints/:id/test); held while it is disabled.')
      .argument('<id>', 'the endpoint')
      .option('--message <text>', 'a message to put in the test event'),
  ).action(async (id: string, o: Common & { message?: string }) => {
    const res = await client(ctx, o).request('POST', `/endpoints/${encodeURIComponent(id)}/test`, {
      body: o.message === undefined ? {} : { message: o.message },
    });
    if (o.json) return printJson(res);
    print(`test event ${res.event_id} queued for endpoint ${res.endpoint_id}${res.paused ? ' (held: the endpoint is disabled)' : ''}`);
  });

  for (const [action, what] of [
    ['enable', 'Enable an endpoint: its held deliveries resume.'],
    ['disable', 'Disable an endpoint: its pending deliveries are held.'],
  ] as const) {
    api(root.command(action).description(`${what} (POST /endpoints/:id/${action})`).argument('<id>', 'the endpoint')).action(async (id: string, o: Common) => {
      const e = await client(ctx, o).request<EndpointRow>('POST', `/endpoints/${encodeURIComponent(id)}/${action}`);
      return o.json ? printJson(e) : print(`endpoint ${e.id} ${e.is_active ? 'enabled' : 'disabled'}`);
    });
  }
  return root;
});

type TemplateRow = {
  name: string;
  title: string;
  description: string;
  url_hint: string;
  options: { name: string; description: string; required: boolean }[];
  source: string;
};

export const templatesCommand: CliCommand = fromCommander('templates', (ctx) =>
  api(
    rootCommand('templates')
      .description(
        "List the transformation templates (GET /transformation-templates), or print one template's code, to edit and give to endpoints create --transformation @file.js.",
      )
      .argument('[name]', 'a template: print its code'),
  ).action(async (name: string | undefined, o: Common) => {
    const res = await client(ctx, o).request<{ data: TemplateRow[] }>('GET', '/transformation-templates');
    if (name === undefined) {
      if (o.json) return printJson(res);
      print(
        table([
          ['NAME', 'TITLE', 'OPTIONS', 'URL'],
          ...res.data.map((t) => [t.name, t.title, t.options.map((x) => `${x.name}${x.required ? '' : '?'}`).join(',') || '-', t.url_hint]),
        ]),
      );
      return;
    }
    const t = res.data.find((x) => x.name === name);
    if (!t) throw new UsageError(`"${name.slice(0, 60)}" is not a template (the templates are ${res.data.map((x) => x.name).join(', ')})`);
    if (o.json) return printJson(t);
    // The code alone on stdout (so it can be saved to a file); what it needs on stderr.
    for (const x of t.options) console.error(`// option ${x.name}${x.required ? ' (required)' : ''}: ${x.description} (--template-option ${x.name}=…)`);
    process.stdout.write(t.source.endsWith('\n') ? t.source : `${t.source}\n`);
  }),
);

export const replayCommand: CliCommand = fromCommander('replay', (ctx) =>
  api(
    rootCommand('replay')
      .description('Deliver an event again, with the same webhook-id (POST /events/:id/replay): its finished deliveries are requeued.')
      .argument('<event>', 'the event id')
      .option('--endpoint <id>', 'only the delivery to this endpoint'),
  ).action(async (event: string, o: Common & { endpoint?: string }) => {
    const res = await client(ctx, o).request('POST', `/events/${encodeURIComponent(event)}/replay`, { body: o.endpoint ? { endpoint_id: o.endpoint } : {} });
    if (o.json) return printJson(res);
    print(`event ${res.event_id}: ${res.requeued} deliveries requeued`);
  }),
);

/** Recovers a window one call (up to 10,000 events) at a time, with a progress bar on a terminal. */
export const recoverCommand: CliCommand = fromCommander('recover', (ctx) =>
  api(
    rootCommand('recover')
      .description(
        'Queue, for an endpoint, the events of a window its filters match that it never got, e.g. while it was disabled (POST /endpoints/:id/recover).',
      )
      .requiredOption('--endpoint <id>', 'the endpoint')
      .requiredOption('--since <time>', 'from (ISO date, or 30m/2h/7d ago)')
      .option('--until <time>', 'to, exclusive (default: now)')
      .option('--dry-run', 'only count what would be queued (POST /endpoints/:id/recover/preview)'),
  ).action(async (o: Common & { endpoint: string; since: string; until?: string; dryRun?: boolean }) => {
    const c = client(ctx, o);
    const window = { since: parseTime('--since', o.since), until: o.until === undefined ? undefined : parseTime('--until', o.until) };
    const path = `/endpoints/${encodeURIComponent(o.endpoint)}/recover`;
    const preview = await c.request<{ would_recover: number; truncated: boolean }>('POST', `${path}/preview`, { body: window });
    if (o.dryRun) {
      if (o.json) return printJson({ dry_run: true, ...preview });
      return print(`dry run: would recover ${preview.would_recover}${preview.truncated ? '+' : ''} events for endpoint ${o.endpoint} (nothing queued)`);
    }
    // Recovering only what was there when it started: events arriving meanwhile are fanned out as usual.
    const body = { since: window.since, until: window.until ?? new Date().toISOString() };
    const bar = new SingleBar({ format: 'recovering [{bar}] {value}/{total} events', stream: process.stderr, hideCursor: true }, Presets.shades_classic);
    bar.start(Math.max(preview.would_recover, 1), 0);
    let recovered = 0;
    try {
      for (;;) {
        const res = await c.request<{ recovered: number; truncated: boolean }>('POST', path, { body });
        recovered += res.recovered;
        if (recovered > bar.getTotal()) bar.setTotal(recovered);
        bar.update(recovered);
        if (!res.truncated || res.recovered === 0) break;
      }
    } finally {
      bar.stop();
    }
    if (o.json) return printJson({ recovered });
    print(`recovered ${recovered} events for endpoint ${o.endpoint}`);
  }),
);

type LiveDelivery = {
  event_id: string;
  endpoint_id: string;
  attempt: number;
  success: boolean;
  status_code: number | null;
  duration_ms: number;
  error: string | null;
  next_status: string;
};

/** Follows /live until Ctrl-C (exit 0), --count lines were printed (0), or the stream ends (1). */
export const tailCommand: CliCommand = fromCommander('tail', (ctx) =>
  api(
    rootCommand('tail')
      .description('Follow deliveries as they are made (GET /live), one line per attempt, until Ctrl-C.')
      .option('--type <type>', 'only deliveries of this event type (a wildcard such as user.* too)')
      .option('--endpoint <id>', 'only deliveries to this endpoint')
      .option('--count <n>', 'stop after this many lines', positiveInt('--count')),
  ).action(async (o: Common & { type?: string; endpoint?: string; count?: number }) => {
    const c = client(ctx, o);
    const abort = new AbortController();
    const stop = () => abort.abort();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    const types = new Map<string, Promise<string>>();
    const typeOf = (eventId: string) => {
      let t = types.get(eventId);
      if (!t) {
        if (types.size > 10_000) types.clear();
        t = c.request<{ event_type: string }>('GET', `/events/${eventId}`).then(
          (e) => e.event_type,
          () => '?',
        );
        types.set(eventId, t);
      }
      return t;
    };
    const matches = (type: string) => !o.type || o.type === type || o.type === '*' || (o.type.endsWith('.*') && type.startsWith(o.type.slice(0, -1)));
    let printed = 0;
    let chain = Promise.resolve();
    const emit = (line: string) => {
      if (abort.signal.aborted) return;
      print(line);
      if (o.count !== undefined && ++printed >= o.count) abort.abort();
    };
    try {
      await c.stream(
        '/live',
        (type, data) => {
          if (type === 'ready') console.error(`following deliveries at ${c.baseUrl}/live (Ctrl-C to stop)`);
          let m: { deliveries?: LiveDelivery[]; count?: number };
          try {
            m = JSON.parse(data);
          } catch {
            return;
          }
          if (type === 'events.accepted' && !o.type && !o.endpoint && !o.json) {
            chain = chain.then(() => emit(`${new Date().toISOString()}  + ${m.count} event(s) accepted`));
          }
          if (type !== 'deliveries.recorded') return;
          for (const d of m.deliveries ?? []) {
            if (o.endpoint && d.endpoint_id !== o.endpoint.toLowerCase()) continue;
            const at = new Date().toISOString();
            chain = chain.then(async () => {
              const eventType = await typeOf(d.event_id);
              if (!matches(eventType)) return;
              if (o.json) return emit(JSON.stringify({ type: 'delivery', at, event_type: eventType, ...d }));
              const outcome = d.success ? `ok   ${d.status_code}` : `FAIL ${d.status_code ?? d.error ?? ''}`;
              emit(
                `${at}  ${outcome.padEnd(9)} ${eventType.padEnd(26)} event ${d.event_id} → endpoint ${d.endpoint_id}  attempt ${d.attempt}  ${d.duration_ms} ms${d.success ? '' : `  (${d.next_status})`}`,
              );
            });
          }
        },
        abort.signal,
      );
      await chain;
    } finally {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
    }
    if (!abort.signal.aborted) {
      console.error('the live stream ended (the server closed it)');
      ctx.exitCode = 1;
    }
  }),
);
