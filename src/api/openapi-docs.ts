/**
 * The API description of every route: its summary, auth, success code and response schema, and the
 * error envelope for its 4xx and 5xx. Kept apart from the routes (which own their request schemas) and
 * attached as each route is added (documentRoute, an onRoute hook in api/app.ts).
 *
 * Response schemas are also what Fastify serializes with. Every object is open
 * (`additionalProperties: true`): a field a handler returns that is missing here still goes out, never
 * silently dropped; test/core/openapi.test.ts checks each real response against these schemas with
 * every object closed, so such a field fails the test instead.
 */
import type { RouteOptions } from 'fastify';

type Schema = Record<string, unknown>;

const str = { type: 'string' } as const;
const nstr = { type: ['string', 'null'] } as const;
const int = { type: 'integer' } as const;
const nint = { type: ['integer', 'null'] } as const;
const bool = { type: 'boolean' } as const;
const date = { type: 'string', format: 'date-time' } as const;
const ndate = { type: ['string', 'null'], format: 'date-time' } as const;
/** A part whose shape is the caller's (event data, metadata). */
const freeObject = { type: 'object', additionalProperties: true } as const;
/** A value of any JSON type (a job's progress or result). */
const anyValue = {} as const;
const strings = { type: 'array', items: str } as const;

/** An open object: every property listed, all of them required unless named in `optional`. */
function obj(properties: Record<string, Schema>, optional: string[] = [], description?: string): Schema {
  return {
    type: 'object',
    ...(description ? { description } : {}),
    required: Object.keys(properties).filter((k) => !optional.includes(k)),
    properties,
    additionalProperties: true,
  };
}

const page = (item: Schema): Schema =>
  obj({ data: { type: 'array', items: item }, next_cursor: { ...nstr, description: 'Pass as `cursor` for the next page; null on the last.' } });
const list = (item: Schema): Schema => obj({ data: { type: 'array', items: item } });

export const ERROR_ENVELOPE_ID = 'ErrorEnvelope';

/** The one shape of every 4xx and 5xx (api/error-handler.ts). */
export const errorEnvelope: Schema = {
  $id: ERROR_ENVELOPE_ID,
  type: 'object',
  description: 'The error envelope of every 4xx and 5xx answer.',
  required: ['statusCode', 'code', 'error', 'message'],
  properties: {
    statusCode: { ...int, examples: [404] },
    code: { ...str, description: 'Stable machine-readable code (CARTEIRO_…).', examples: ['CARTEIRO_NOT_FOUND'] },
    error: { ...str, description: 'The HTTP reason phrase.', examples: ['Not Found'] },
    message: { ...str, description: 'What went wrong, for a person.', examples: ['event 0190c3a4-… not found'] },
    details: { ...freeObject, description: 'Facts about the error, such as the `field` it concerns.' },
  },
  additionalProperties: true,
};

const ERROR_TEXT: Record<number, string> = {
  400: 'Invalid input: the envelope names the field (details.field).',
  401: 'No valid API key (Authorization: Bearer …).',
  403: "The key may not do this (admin key only, another organization, a read-only portal session writing, or a portal session token outside the portal's routes).",
  404: 'Not found (or not visible to this key).',
  409: 'Conflicts with the current state.',
  413: 'Body larger than CARTEIRO_BODY_LIMIT_BYTES.',
  415: 'Content-Type is not application/json.',
  422: 'Well-formed but refused: an unknown event type, data that breaks its schema, an unsafe destination URL, a transformation that fails, or a quota (details.limit).',
  429: 'Rate limited (per key, or per user id: details.limit): retry after Retry-After seconds.',
  500: 'Unexpected error; details are in the server log only.',
  503: 'The ledger is unavailable, or the transformation sandbox is busy (Retry-After), or the server is shutting down.',
};

// ---- The shapes (api/presenters.ts and the handlers) ------------------------------------------------

const eventExample = {
  id: '0190c3a4-5b6e-7c8d-9e0f-112233445566',
  organization_id: '00000000-0000-0000-0000-000000000000',
  event_type: 'agent.created',
  event_source: 'api',
  table_name: null,
  record_id: null,
  user_id: 'uuid-user-id',
  data: { agent_id: 'uuid-agent-id', name: 'Assistente de Vendas', user_id: 'uuid-user-id' },
  priority: 'normal',
  status: 'completed',
  retry_count: 0,
  error_message: null,
  idempotency_key: null,
  created_at: '2025-01-15T12:00:00.000Z',
  processed_at: '2025-01-15T12:00:00.120Z',
};

const event = {
  ...obj({
    id: str,
    organization_id: str,
    event_type: str,
    event_source: nstr,
    table_name: nstr,
    record_id: nstr,
    user_id: nstr,
    data: { ...freeObject, description: 'The event data as sent (personal fields opened for the caller).' },
    priority: { type: 'string', enum: ['high', 'normal'] },
    status: { type: 'string', enum: ['pending', 'processing', 'completed', 'failed'] },
    retry_count: int,
    error_message: nstr,
    idempotency_key: nstr,
    created_at: date,
    processed_at: ndate,
  }),
  examples: [eventExample],
};

const accepted = {
  ...obj({
    event_id: str,
    event_type: str,
    status: str,
    created_at: date,
    duplicate: { ...bool, description: 'True when the Idempotency-Key was seen before: this is the first event, not a new one.' },
    status_url: str,
  }),
  examples: [
    {
      event_id: eventExample.id,
      event_type: 'agent.created',
      status: 'pending',
      created_at: eventExample.created_at,
      duplicate: false,
      status_url: `/api/webhooks/events/${eventExample.id}/status`,
    },
  ],
};

const delivery = obj({
  endpoint_id: nstr,
  endpoint_name: nstr,
  destination: { ...nstr, description: 'endpoint or n8n' },
  status: { type: 'string', enum: ['pending', 'in_flight', 'paused', 'succeeded', 'failed', 'cancelled'] },
  attempts: int,
  last_status_code: nint,
  last_error: nstr,
  next_attempt_at: ndate,
  completed_at: ndate,
});

const eventStatus = {
  ...obj({
    event_id: str,
    event_type: str,
    status: { type: 'string', enum: ['pending', 'processing', 'completed', 'failed'] },
    retry_count: int,
    error_message: nstr,
    created_at: date,
    processed_at: ndate,
    deliveries: { type: 'array', items: delivery, description: 'One per destination the event fans out to.' },
  }),
  examples: [
    {
      event_id: eventExample.id,
      event_type: 'agent.created',
      status: 'completed',
      retry_count: 0,
      error_message: null,
      created_at: eventExample.created_at,
      processed_at: eventExample.processed_at,
      deliveries: [
        {
          endpoint_id: '0190c3a4-0000-7000-8000-000000000001',
          endpoint_name: 'CRM',
          destination: 'endpoint',
          status: 'delivered',
          attempts: 1,
          last_status_code: 200,
          last_error: null,
          next_attempt_at: null,
          completed_at: eventExample.processed_at,
        },
      ],
    },
  ],
};

const attempt = obj(
  {
    id: str,
    webhook_event_id: str,
    webhook_endpoint_id: nstr,
    attempt_number: int,
    success: bool,
    status_code: nint,
    response_body: { ...nstr, description: "The receiver's answer, truncated." },
    delivery_duration_ms: int,
    error: nstr,
    batch_id: { ...nstr, description: "The batch this attempt sent the event in (the request's webhook-id; docs/batching.md); null: sent alone." },
    created_at: date,
  },
  ['webhook_event_id'],
);

const stringListMap = { type: 'object', additionalProperties: strings } as const;
const endpointFields = {
  id: str,
  organization_id: str,
  user_id: nstr,
  name: str,
  url: str,
  events: { ...strings, description: 'Event types or wildcards (user.registered, integration.*, *).' },
  is_active: bool,
  disabled_reason: nstr,
  description: nstr,
  metadata: freeObject,
  rate_limit_per_second: nint,
  include_fields: { anyOf: [{ type: 'null' }, strings, stringListMap], description: 'Minimal payload: the data paths delivered (null: all).' },
  success_count: int,
  failure_count: int,
  consecutive_failures: int,
  failing_since: ndate,
  max_in_flight: { ...nint, description: 'Deliveries to this endpoint in flight at once (null: the default).' },
  failed_attempts_in_row: int,
  health: { type: 'string', enum: ['healthy', 'failing', 'disabled'] },
  next_probe_at: { ...ndate, description: 'When a disabled endpoint is next tried by the circuit breaker.' },
  filter: { anyOf: [{ type: 'null' }, freeObject], description: "Content filter on the event's data (docs/filters.md); null: none." },
  transformation: { ...nstr, description: 'JavaScript run on each event before signing (docs/transformations.md); null: the envelope as is.' },
  template: { ...nstr, description: 'The preset the transformation came from (slack, discord, …); null: none or own code.' },
  fifo: { ...bool, description: 'Ordered delivery: one at a time, in the order events were accepted (docs/ordered-delivery.md).' },
  fifo_on_exhausted: {
    type: 'string',
    enum: ['hold', 'skip'],
    description: "A FIFO head that fails for good: 'hold' disables the endpoint until it is replayed or the endpoint enabled; 'skip' goes on.",
  },
  batch_max_events: {
    ...nint,
    description:
      'Batching: at most this many events in one signed POST, 2-1000 (docs/batching.md); null: one event per POST. Not with fifo or a transformation.',
  },
  batch_max_wait_ms: {
    ...nint,
    description: 'Batching: how long the oldest event waits for its batch to fill before a partial batch is sent (0-3600000; default 1000).',
  },
  batch_group_by_type: { ...bool, description: 'Batching: each batch holds events of one type only.' },
  headers: {
    anyOf: [{ type: 'null' }, { type: 'object', additionalProperties: { type: ['string', 'null'] } }],
    description:
      'Static headers sent with every delivery (names in lower case; values stored sealed, shown to the owner; null: a value whose key left the keyring). null: none.',
  },
  timeout_ms: { ...nint, description: "The whole exchange's deadline for this endpoint, up to WEBHOOK_TIMEOUT_MS (null: the service's)." },
  max_retries: { ...nint, description: "Retries after the first attempt, up to WEBHOOK_MAX_RETRIES (null: the service's)." },
  retry_base_delay_ms: { ...nint, description: "The first retry's delay; later ones grow by the service's factor up to its cap (null: the service's)." },
  previous_secret_expires_at: { ...ndate, description: 'Until when the secret before a rotation still signs alongside.' },
  created_at: date,
  updated_at: date,
};
const endpointExample = {
  id: '0190c3a4-0000-7000-8000-000000000001',
  organization_id: eventExample.organization_id,
  user_id: null,
  name: 'CRM',
  url: 'http://127.0.0.1:4000/hooks',
  events: ['user.registered', 'agent.*'],
  is_active: true,
  disabled_reason: null,
  description: null,
  metadata: { team: 'growth' },
  rate_limit_per_second: null,
  include_fields: null,
  success_count: 12,
  failure_count: 0,
  consecutive_failures: 0,
  failing_since: null,
  max_in_flight: null,
  failed_attempts_in_row: 0,
  health: 'healthy',
  next_probe_at: null,
  filter: null,
  transformation: null,
  template: null,
  fifo: false,
  fifo_on_exhausted: 'hold',
  batch_max_events: null,
  batch_max_wait_ms: null,
  batch_group_by_type: false,
  headers: { authorization: 'Bearer crm-inbound-token' },
  timeout_ms: 10_000,
  max_retries: 3,
  retry_base_delay_ms: null,
  previous_secret_expires_at: null,
  created_at: eventExample.created_at,
  updated_at: eventExample.created_at,
};
const endpoint = { ...obj(endpointFields), examples: [endpointExample] };
const endpointWithSecret = {
  ...obj({ ...endpointFields, secret: { ...str, description: 'The signing secret (whsec_…): shown in this answer only, never again.' } }),
  examples: [{ ...endpointExample, secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw' }],
};

const transformationPreview = {
  ...obj({
    transformed: { ...bool, description: 'Whether code ran (false: the endpoint has none, and this is the envelope as sent).' },
    cancelled: { ...bool, description: 'The transformation cancelled the delivery: nothing would be sent.' },
    request: {
      anyOf: [
        { type: 'null' },
        obj({
          method: { type: 'string', enum: ['POST'] },
          url: str,
          headers: {
            type: 'object',
            additionalProperties: str,
            description: 'Besides these, the signature headers (webhook-id, webhook-timestamp, webhook-signature, x-webhook-*).',
          },
          body: { ...anyValue, description: 'The JSON body, exactly the bytes that would be signed and sent, parsed.' },
        }),
      ],
      description: 'The request that would be sent; null when cancelled.',
    },
    duration_ms: { type: 'number', description: 'How long the transformation ran in the sandbox.' },
  }),
  examples: [
    {
      transformed: true,
      cancelled: false,
      duration_ms: 0.41,
      request: {
        method: 'POST',
        url: 'https://hooks.slack.com/services/T000/B000/XXXX',
        headers: { 'content-type': 'application/json', 'user-agent': 'AgentesDeConversao-Webhook/1.0' },
        body: { text: 'User registered (user.registered)' },
      },
    },
  ],
};

const transformationTemplate = obj({
  name: str,
  title: str,
  description: str,
  url_hint: { ...str, description: "What the endpoint's URL should be." },
  options: { type: 'array', items: obj({ name: str, description: str, required: bool }), description: 'Values given as template_options.' },
  source: { ...str, description: 'The code an endpoint gets with `template` (options as placeholders).' },
});

const eventType = obj(
  {
    name: str,
    description: str,
    priority: { type: 'string', enum: ['high', 'normal'] },
    schema: { ...freeObject, description: "JSON Schema the event's data must satisfy." },
    builtin: bool,
  },
  ['builtin'],
);

const organization = obj({ id: str, name: str, created_at: date, updated_at: date });
const apiKeyFields = { id: str, organization_id: str, name: str, prefix: str, created_at: date, last_used_at: ndate, revoked_at: ndate, active: bool };
const apiKey = obj(apiKeyFields);
const apiKeyWithSecret = obj({ ...apiKeyFields, key: { ...str, description: 'The key itself: shown in this answer only, never again.' } });

const auditEntry = obj({
  id: str,
  at: date,
  actor: obj({ kind: { type: 'string', enum: ['admin', 'organization', 'portal'] }, key_id: nstr, organization_id: nstr }),
  organization_id: nstr,
  action: str,
  method: str,
  route: str,
  path: str,
  target_id: nstr,
  status_code: int,
  ip: nstr,
  user_agent: nstr,
  request_id: nstr,
});

const serviceState = { type: 'string', enum: ['healthy', 'unhealthy', 'not_configured', 'configured', 'reachable', 'unreachable', 'no_workers', 'stalled'] };
const health = {
  ...obj({
    overall_status: { type: 'string', enum: ['healthy', 'degraded', 'unhealthy'] },
    services: obj({ webhook_manager: serviceState, redis: serviceState, supabase: { ...serviceState, description: 'The ledger.' }, n8n: serviceState }),
    n8n: obj({
      api: { ...serviceState, description: "N8N_API_URL: whether n8n's API answers (unhealthy: it refused N8N_API_KEY), or not_configured." },
      webhook_url: { type: 'string', enum: ['configured', 'not_configured'] },
      workflows: {
        anyOf: [
          { type: 'null' },
          obj({ registered: int, active: int, unconfirmed: { ...int, description: "Workflows whose path n8n's API did not list when last asked." } }),
        ],
        description: 'In every organization; null when the ledger could not be read.',
      },
      last_discovery: {
        anyOf: [{ type: 'null' }, obj({ finished_at: date, ok: bool, result: { anyOf: [{ type: 'null' }, freeObject] } })],
        description:
          "The most recent discovery in any organization, a failed one included (ok: false; n8n's error is in the log, not here: /health is public).",
      },
    }),
    ledger: { type: 'string', enum: ['postgres', 'pglite'] },
    timestamp: date,
  }),
  examples: [
    {
      overall_status: 'healthy',
      services: { webhook_manager: 'healthy', redis: 'not_configured', supabase: 'healthy', n8n: 'configured' },
      n8n: { api: 'not_configured', webhook_url: 'configured', workflows: { registered: 7, active: 7, unconfirmed: 0 }, last_discovery: null },
      ledger: 'pglite',
      timestamp: eventExample.created_at,
    },
  ],
};

const stats = obj({
  status: { type: 'string', enum: ['active', 'idle', 'stalled'] },
  queues: obj({ high_priority: int, normal_priority: int, retry: int }),
  processing_tasks: int,
  supported_events: strings,
  n8n_integration: { type: 'string', enum: ['active', 'not_configured'] },
  paused: int,
  workers: int,
  stalled_workers: { ...int, description: 'Live workers that made no progress while work was due (CARTEIRO_WORKER_STALL_MS).' },
  last_hour: obj({ events: int, delivered: int, failed_attempts: int }),
  ledger: { type: 'string', enum: ['postgres', 'pglite'] },
});

const workflowFields = {
  id: str,
  organization_id: str,
  workflow_id: str,
  name: str,
  path: nstr,
  webhook_url: str,
  test_url: nstr,
  use_test_url: bool,
  delivery_url: nstr,
  event_types: strings,
  is_active: bool,
  inactive_reason: nstr,
  state: nstr,
  state_changed_at: ndate,
  last_error: nstr,
  last_error_at: ndate,
  success_count: int,
  failure_count: int,
  signing: { type: 'string', enum: ['workflow_secret', 'webhook_secret'] },
  source: str,
  webhook_endpoint_id: nstr,
  last_discovered_at: ndate,
  confirmed: {
    type: ['boolean', 'null'],
    description: "Whether n8n's API listed an active POST Webhook at this path when last asked (seed, discovery); null: never asked (no N8N_API_URL).",
  },
  confirmation_note: { ...nstr, description: 'Why it is not confirmed.' },
  confirmed_at: ndate,
  created_at: date,
  updated_at: date,
};
const workflow = obj(workflowFields);
const workflowMaybeSecret = obj({ ...workflowFields, secret: { ...nstr, description: 'A generated secret: in this answer only.' } }, ['secret']);
const workflowWithSecret = obj({ ...workflowFields, secret: str });

const seedOutcome = obj(
  {
    workflow_id: str,
    name: str,
    path: str,
    webhook_url: str,
    result: { type: 'string', enum: ['created', 'updated', 'unchanged', 'present'] },
    confirmed: { type: ['boolean', 'null'], description: "Whether n8n's API listed an active POST Webhook at the path; null: not asked (no N8N_API_URL)." },
    note: { ...nstr, description: 'Why it is not confirmed.' },
    is_active: bool,
    secret: str,
  },
  ['secret'],
);

const syncResult = {
  ...obj({
    event_id: str,
    sync_type: str,
    duplicate: bool,
    workflow: obj({ id: str, workflow_id: str, name: str, url: nstr }),
    status: { type: 'string', enum: ['delivered', 'failed', 'pending', 'retrying', 'paused'] },
    delivery: {
      anyOf: [{ type: 'null' }, obj({ attempts: int, status_code: nint, error: nstr, response_body: nstr, duration_ms: nint, next_attempt_at: ndate })],
    },
    status_url: str,
  }),
};

const discovery = obj({
  organization_id: str,
  pages: int,
  listed: int,
  webhook_workflows: int,
  created: int,
  updated: int,
  unchanged: int,
  deactivated: int,
  reactivated: int,
  skipped: int,
});

const job = obj({
  id: str,
  name: str,
  state: { type: 'string', enum: ['waiting', 'active', 'completed', 'failed', 'delayed', 'unknown'] },
  progress: anyValue,
  result: anyValue,
  error: nstr,
});

const erasure = obj({
  user_id: str,
  user_pseudonym: str,
  organization_id: nstr,
  events_deleted: int,
  deliveries_cancelled: int,
  dispatches_deleted: int,
  attempts_deleted: int,
  endpoints_deleted: int,
  endpoints_unlinked: int,
  audit_entries_pseudonymized: int,
  late_attempts_scrub_at: ndate,
  erased_at: date,
});

const noContent = { type: 'null', description: 'No content.' };

const portalTheme = {
  anyOf: [
    { type: 'null' },
    obj(
      {
        mode: { type: 'string', enum: ['light', 'dark', 'auto'] },
        primary_color: { ...str, description: '#rrggbb' },
        logo_url: { ...str, description: 'An https:// URL, or a base64 data:image/… of at most 32 KiB.' },
      },
      ['mode', 'primary_color', 'logo_url'],
    ),
  ],
  description: 'How the portal page looks for this session (null: its defaults). URL parameters of the page override each value.',
};
const portalSessionFields = {
  id: str,
  organization_id: str,
  user_id: str,
  prefix: { ...str, description: "The token's first characters." },
  scope: { type: 'string', enum: ['read', 'manage'] },
  features: strings,
  theme: portalTheme,
  created_at: date,
  expires_at: date,
  revoked_at: ndate,
  active: { ...bool, description: 'Neither revoked nor expired.' },
};
const portalSession = obj(portalSessionFields);
const newPortalSession = {
  ...obj({
    ...portalSessionFields,
    token: { ...str, description: 'The session token (cp_sess_…): in this answer only, never again.' },
    url: { ...str, description: 'The portal page for this session (the page itself is not served yet: docs/portal.md).' },
  }),
  examples: [
    {
      id: '0190c3a4-0000-7000-8000-0000000000aa',
      organization_id: eventExample.organization_id,
      user_id: 'customer-42',
      prefix: 'cp_sess_Zx81Qa',
      scope: 'manage',
      features: [],
      theme: { mode: 'dark', primary_color: '#0f766e', logo_url: 'https://app.example.com/logo.svg' },
      created_at: eventExample.created_at,
      expires_at: '2025-01-15T13:00:00.000Z',
      revoked_at: null,
      active: true,
      token: 'cp_sess_Zx81QaN5yP3Vd0kq7tG2sB9mW4eR6uH1jL8cF5xA0oI',
      url: 'https://hooks.example.com/portal?token=cp_sess_Zx81QaN5yP3Vd0kq7tG2sB9mW4eR6uH1jL8cF5xA0oI',
    },
  ],
};
const userLimitValues = { max_endpoints: int, events_per_second: { ...int, description: '0: no limit.' }, events_burst: int };
const organizationLimits = obj({
  organization_id: str,
  settings: obj({ max_endpoints_per_user: nint, user_events_per_second: nint, user_events_burst: nint }, [], 'As set (null: the server default).'),
  effective: obj({ max_endpoints_per_user: int, user_events_per_second: int, user_events_burst: int }),
});
const userLimits = obj({
  organization_id: str,
  user_id: str,
  override: {
    anyOf: [{ type: 'null' }, obj({ max_endpoints: nint, events_per_second: nint, events_burst: nint })],
    description: "This user's own values (null: none).",
  },
  effective: obj(userLimitValues),
});
const portalDelivery = obj({
  id: str,
  event_id: str,
  event_type: str,
  endpoint_id: str,
  status: { type: 'string', enum: ['pending', 'in_flight', 'paused', 'succeeded', 'failed', 'cancelled'] },
  attempts: int,
  last_status_code: nint,
  last_error: nstr,
  next_attempt_at: date,
  created_at: date,
  completed_at: ndate,
});

// ---- The routes -------------------------------------------------------------------------------------

/** public: no key; key: an organization key or the admin key; admin: the admin key only; supabase: its shared secret header. */
type Auth = 'public' | 'key' | 'admin' | 'supabase' | 'portal';

type RouteDoc = {
  summary: string;
  description?: string;
  auth?: Auth;
  /** Success codes and their schemas (text/event-stream routes describe theirs in `description`). */
  ok: Record<number, Schema>;
  /** Error codes beyond those every route of its auth can answer. */
  errors?: number[];
  /** Examples of the request body. */
  bodyExamples?: unknown[];
};

const triggerExample = {
  event_type: 'agent.created',
  data: { agent_id: 'uuid-agent-id', name: 'Assistente de Vendas', user_id: 'uuid-user-id' },
  user_id: 'uuid-user-id',
};

const INGEST_ERRORS = [413, 415, 422];

/** Keyed by "METHOD path", the path below /api/webhooks. */
export const ROUTE_DOCS: Record<string, RouteDoc> = {
  'GET /health': {
    summary: 'Health of the ledger, workers, Redis and n8n',
    description: '200 when healthy or degraded; 503 (same body) when the ledger is down, so load balancers take the process out.',
    auth: 'public',
    ok: { 200: health, 503: health },
  },
  'GET /stats': { summary: 'Queue depths, workers and the last hour of deliveries', ok: { 200: stats } },

  'POST /trigger': {
    summary: 'Send an event',
    description:
      'Answers 202 once the event and its fan-out are committed. An Idempotency-Key header (or `idempotency_key`) returns the first event for a repeated request.',
    ok: { 202: accepted },
    errors: [403, 404, ...INGEST_ERRORS],
    bodyExamples: [triggerExample],
  },
  'POST /events/batch': {
    summary: 'Send up to 1000 events in one request',
    description: 'All of one organization; each event may carry its own idempotency_key (the Idempotency-Key header is refused here).',
    ok: { 202: obj({ events: { type: 'array', items: accepted } }) },
    errors: [403, 404, ...INGEST_ERRORS],
    bodyExamples: [
      { events: [triggerExample, { event_type: 'user.registered', data: { user_id: 'test-user-123', email: 'test@example.com', name: 'Test User' } }] },
    ],
  },
  'POST /events/:name': {
    summary: 'Send an event of one type, the body being its data',
    description: "The seed's per-type routes: `POST /events/user-registered` with the data as the body (kebab-case of the type's name).",
    ok: { 202: accepted },
    errors: [404, ...INGEST_ERRORS],
    bodyExamples: [{ user_id: 'uuid-user-id', email: 'user@example.com', name: 'João Silva', metadata: { source: 'landing_page' } }],
  },
  'GET /events': { summary: 'List events, newest first', ok: { 200: page(event) } },
  'GET /events/:id': { summary: 'One event with its data', ok: { 200: event }, errors: [404] },
  'GET /events/:id/status': { summary: "An event's status and its deliveries", ok: { 200: eventStatus }, errors: [404] },
  'GET /events/:id/attempts': { summary: 'Every delivery attempt of an event', ok: { 200: list(attempt) }, errors: [404] },
  'POST /events/:id/replay': {
    summary: "Deliver an event again (all its finished deliveries, or one endpoint's)",
    ok: { 202: obj({ event_id: str, requeued: int }) },
    errors: [404, 409],
    bodyExamples: [{}, { endpoint_id: endpointExample.id }],
  },

  'POST /endpoints': {
    summary: 'Create an endpoint; its signing secret is in this answer only',
    ok: { 201: endpointWithSecret },
    errors: [422],
    bodyExamples: [{ name: 'CRM', url: 'http://127.0.0.1:4000/hooks', events: ['user.registered', 'agent.*'] }],
  },
  'GET /endpoints': { summary: 'List endpoints', ok: { 200: page(endpoint) } },
  'GET /endpoints/:id': { summary: 'One endpoint, with its health', ok: { 200: endpoint }, errors: [404] },
  'PATCH /endpoints/:id': {
    summary: 'Change an endpoint',
    ok: { 200: endpoint },
    errors: [404, 422],
    bodyExamples: [{ events: ['*'], rate_limit_per_second: 50 }],
  },
  'DELETE /endpoints/:id': { summary: 'Delete an endpoint', ok: { 204: noContent }, errors: [404] },
  'POST /endpoints/:id/enable': { summary: 'Enable an endpoint (held deliveries resume)', ok: { 200: endpoint }, errors: [404] },
  'POST /endpoints/:id/disable': {
    summary: 'Disable an endpoint (its deliveries are held, not dropped)',
    ok: { 200: endpoint },
    errors: [404],
    bodyExamples: [{ reason: 'receiver under maintenance' }],
  },
  'POST /endpoints/:id/recover': {
    summary: 'Queue again the events an endpoint missed in a time window',
    description: 'At most 10 000 per call; `truncated: true` says to call again for the rest.',
    ok: { 200: obj({ recovered: int, truncated: bool }) },
    errors: [404],
    bodyExamples: [{ since: '2025-01-15T00:00:00Z' }],
  },
  'POST /endpoints/:id/recover/preview': {
    summary: 'Count the events recover would queue over a time window (nothing is written)',
    ok: { 200: obj({ would_recover: int, truncated: bool }) },
    errors: [404],
    bodyExamples: [{ since: '2025-01-15T00:00:00Z' }],
  },
  'POST /endpoints/:id/test': {
    summary: 'Send a synthetic webhook.test event to this endpoint only',
    description: 'Held (paused) while the endpoint is disabled, like its other deliveries.',
    ok: { 202: obj({ event_id: str, event_type: str, endpoint_id: str, paused: bool, created_at: date, status_url: str }) },
    errors: [404],
    bodyExamples: [{ message: 'hello from the dashboard' }],
  },
  'POST /endpoints/:id/rotate-secret': {
    summary: 'Rotate the signing secret; the new one is in this answer only',
    description: 'The previous secret keeps signing alongside for `overlap_seconds` (default CARTEIRO_SECRET_ROTATION_OVERLAP_MS).',
    ok: { 200: endpointWithSecret },
    errors: [404],
    bodyExamples: [{ overlap_seconds: 3600 }],
  },
  'GET /endpoints/:id/attempts': { summary: "An endpoint's delivery attempts, newest first", ok: { 200: page(attempt) }, errors: [404] },
  'POST /endpoints/:id/transformation/preview': {
    summary: 'What an endpoint would be sent for an event, through its transformation (nothing is delivered)',
    description:
      "The event is a stored one of the endpoint's organization (`event_id`) or a sample (`event_type`, `data`); " +
      "`transformation` tries unsaved code instead of the endpoint's. Signature headers are made when a request is sent, so they are not shown. " +
      '422 CARTEIRO_TRANSFORMATION_FAILED when the transformation throws, runs past a limit or returns what the contract refuses (docs/transformations.md).',
    ok: { 200: transformationPreview },
    errors: [404, 422, 503],
    bodyExamples: [
      { event_type: 'user.registered', data: { user_id: 'u1', plan: 'pro' } },
      { event_id: eventExample.id, transformation: 'function handler(webhook) { webhook.payload = { text: webhook.event_type }; return webhook; }' },
    ],
  },
  'GET /transformation-templates': {
    summary: 'The transformation templates (Slack, Discord, Teams, Google Chat, Telegram, n8n, passthrough) with their code',
    ok: { 200: list(transformationTemplate) },
  },

  'GET /event-types': { summary: 'The event catalog: built-in types and your own', ok: { 200: list(eventType) } },
  'POST /event-types': {
    summary: 'Register an event type with a JSON Schema for its data',
    ok: { 201: eventType },
    errors: [409, 422],
    bodyExamples: [
      {
        name: 'invoice.paid',
        description: 'An invoice was paid',
        schema: { type: 'object', required: ['invoice_id'], properties: { invoice_id: { type: 'string' } } },
      },
    ],
  },

  'POST /replay': {
    summary: 'Replay many events as a background job',
    ok: { 202: obj({ job_id: str, status_url: str }) },
    errors: [404],
    bodyExamples: [{ status: 'failed', since: '2025-01-15T00:00:00Z' }],
  },
  'GET /jobs/:id': { summary: "A background job's state and progress", ok: { 200: job }, errors: [404] },

  'DELETE /users/:user_id/data': { summary: 'Erase everything Carteiro holds about a user (LGPD)', ok: { 200: erasure } },

  'POST /organizations': { summary: 'Create an organization', auth: 'admin', ok: { 201: organization }, bodyExamples: [{ name: 'Acme' }] },
  'GET /organizations': { summary: 'List organizations', auth: 'admin', ok: { 200: page(organization) } },
  'GET /organizations/:id': { summary: 'One organization', auth: 'admin', ok: { 200: organization }, errors: [404] },
  'POST /organizations/:id/keys': {
    summary: "Create an organization's API key; the key is in this answer only",
    auth: 'admin',
    ok: { 201: apiKeyWithSecret },
    errors: [404, 409],
    bodyExamples: [{ name: 'backend' }],
  },
  'GET /organizations/:id/keys': { summary: "List an organization's API keys", auth: 'admin', ok: { 200: page(apiKey) }, errors: [404] },
  'DELETE /organizations/:id/keys/:keyId': { summary: 'Revoke an API key', auth: 'admin', ok: { 200: apiKey }, errors: [404] },

  'GET /audit-log': { summary: 'The audit log of management actions, newest first', auth: 'admin', ok: { 200: page(auditEntry) } },

  'POST /supabase': {
    summary: 'Receive a Supabase Database Webhook',
    description: '202 with the stored event; 200 with `ignored: true` for a change that makes no event.',
    auth: 'supabase',
    ok: {
      202: accepted,
      200: obj({ event_id: { type: 'null' }, ignored: { type: 'boolean', enum: [true] }, reason: str }),
    },
    errors: [...INGEST_ERRORS],
    bodyExamples: [{ type: 'INSERT', table: 'users', schema: 'public', record: { id: 'uuid-user-id', email: 'user@example.com' }, old_record: null }],
  },

  'POST /n8n/workflows': {
    summary: 'Register an n8n workflow as a destination',
    ok: { 201: workflowMaybeSecret },
    errors: [409, 422],
    bodyExamples: [{ workflow_id: 'wf-1', name: 'User registration', path: 'user-registration', event_types: ['user.registered'] }],
  },
  'GET /n8n/workflows': { summary: 'List n8n workflows', ok: { 200: page(workflow) } },
  'POST /n8n/workflows/seed': {
    summary: "Register the seed's seven workflows at N8N_WEBHOOK_URL",
    auth: 'admin',
    ok: { 200: list(seedOutcome) },
    errors: [422],
  },
  'GET /n8n/workflows/:id': { summary: 'One n8n workflow (by Carteiro id or n8n workflow id)', ok: { 200: workflow }, errors: [404] },
  'PATCH /n8n/workflows/:id': { summary: 'Change an n8n workflow', ok: { 200: workflowMaybeSecret }, errors: [404, 409, 422] },
  'DELETE /n8n/workflows/:id': { summary: 'Delete an n8n workflow', ok: { 204: noContent }, errors: [404] },
  'POST /n8n/workflows/:id/rotate-secret': {
    summary: "Rotate an n8n workflow's secret; the new one is in this answer only",
    ok: { 200: workflowWithSecret },
    errors: [404, 409],
  },
  'POST /n8n/workflows/:id/enable': { summary: 'Enable an n8n workflow', ok: { 200: workflow }, errors: [404] },
  'POST /n8n/workflows/:id/disable': { summary: 'Disable an n8n workflow', ok: { 200: workflow }, errors: [404] },
  'GET /n8n/workflows/:id/attempts': { summary: "An n8n workflow's delivery attempts, newest first", ok: { 200: page(attempt) }, errors: [404] },
  'POST /n8n/sync': {
    summary: 'Send data to one n8n workflow by its path, and wait briefly for the outcome',
    description: '200 once delivered or failed within `wait_ms`; 202 while still pending or retrying (follow status_url).',
    ok: { 200: syncResult, 202: syncResult },
    errors: [404, 422],
    bodyExamples: [{ sync_type: 'user-registration', data: { user_id: 'test-123', email: 'test@example.com' } }],
  },
  'POST /n8n/discover': { summary: "Read n8n's API and bring the workflow registry in line", auth: 'admin', ok: { 200: discovery }, errors: [422, 502] },

  'POST /portal/sessions': {
    summary: 'Issue a portal session for one of your users; its token is in this answer only',
    description:
      'Default scope "read"; default lifetime CARTEIRO_PORTAL_SESSION_TTL_SECONDS (1 h), at most 24 h. `features` are kept for the portal page; the API enforces the scope. `theme` ({mode, primary_color, logo_url}) is how the portal page looks for the session: a bad value is refused with 422 (CARTEIRO_INVALID_THEME) naming the field.',
    ok: { 201: newPortalSession },
    errors: [422],
    bodyExamples: [{ user_id: 'customer-42', scope: 'manage', ttl_seconds: 3600, theme: { mode: 'dark', primary_color: '#0f766e' } }],
  },
  'GET /portal/sessions': { summary: 'List portal sessions (never their tokens), optionally of one user', ok: { 200: page(portalSession) } },
  'DELETE /portal/sessions/:id': { summary: 'Revoke a portal session: its token answers 401 from now on', ok: { 200: portalSession }, errors: [404] },

  'GET /portal/session': {
    summary: 'The portal session itself: its user, scope, theme and limits',
    auth: 'portal',
    ok: {
      200: obj({
        session_id: str,
        organization_id: str,
        user_id: str,
        scope: { type: 'string', enum: ['read', 'manage'] },
        theme: portalTheme,
        limits: obj(userLimitValues),
      }),
    },
  },
  'GET /portal/event-types': { summary: 'The event catalog, to pick event types from (read-only)', auth: 'portal', ok: { 200: list(eventType) } },
  'GET /portal/transformation-templates': {
    summary: "The transformation templates with their code, to fill an endpoint's transformation from (read-only)",
    auth: 'portal',
    ok: { 200: list(transformationTemplate) },
  },
  'GET /portal/endpoints': { summary: "The session user's endpoints", auth: 'portal', ok: { 200: page(endpoint) } },
  'POST /portal/endpoints': {
    summary: 'Create an endpoint owned by the session user; its signing secret is in this answer only',
    description: 'Refused with 422 (CARTEIRO_QUOTA_EXCEEDED) once the user owns its max_endpoints.',
    auth: 'portal',
    ok: { 201: endpointWithSecret },
    errors: [422],
    bodyExamples: [{ name: 'My CRM', url: 'https://crm.example.com/hooks', events: ['user.registered'] }],
  },
  'GET /portal/endpoints/:id': { summary: "One of the user's endpoints", auth: 'portal', ok: { 200: endpoint }, errors: [404] },
  'PATCH /portal/endpoints/:id': {
    summary: "Change one of the user's endpoints",
    auth: 'portal',
    ok: { 200: endpoint },
    errors: [404, 422],
    bodyExamples: [{ events: ['*'] }],
  },
  'DELETE /portal/endpoints/:id': { summary: "Delete one of the user's endpoints", auth: 'portal', ok: { 204: noContent }, errors: [404] },
  'POST /portal/endpoints/:id/enable': { summary: 'Resume an endpoint (held deliveries resume)', auth: 'portal', ok: { 200: endpoint }, errors: [404] },
  'POST /portal/endpoints/:id/disable': { summary: 'Pause an endpoint (its deliveries are held)', auth: 'portal', ok: { 200: endpoint }, errors: [404] },
  'POST /portal/endpoints/:id/rotate-secret': {
    summary: 'Rotate the signing secret; the new one is in this answer only',
    auth: 'portal',
    ok: { 200: endpointWithSecret },
    errors: [404],
  },
  'POST /portal/endpoints/:id/test': {
    summary: 'Send a webhook.test event to this endpoint only',
    description: 'Follow `deliveries_url` to see the delivery and what the receiver answered.',
    auth: 'portal',
    ok: { 202: obj({ event_id: str, event_type: str, endpoint_id: str, paused: bool, created_at: date, deliveries_url: str }) },
    errors: [404],
  },
  'POST /portal/endpoints/:id/recover': {
    summary: 'Queue again the events this endpoint missed since a time',
    auth: 'portal',
    ok: { 200: obj({ recovered: int, truncated: bool }) },
    errors: [404],
    bodyExamples: [{ since: '2025-01-15T00:00:00Z' }],
  },
  'GET /portal/endpoints/:id/attempts': { summary: "An endpoint's delivery attempts, newest first", auth: 'portal', ok: { 200: page(attempt) }, errors: [404] },
  'GET /portal/deliveries': {
    summary: "Deliveries to the user's endpoints, newest first (filter by endpoint_id, event_id, status)",
    auth: 'portal',
    ok: { 200: page(portalDelivery) },
  },
  'GET /portal/deliveries/:id': { summary: 'One delivery', auth: 'portal', ok: { 200: portalDelivery }, errors: [404] },
  'GET /portal/deliveries/:id/attempts': {
    summary: "A delivery's attempts, with what the receiver answered",
    auth: 'portal',
    ok: { 200: list(attempt) },
    errors: [404],
  },
  'POST /portal/deliveries/:id/replay': {
    summary: 'Deliver again (a finished delivery)',
    auth: 'portal',
    ok: { 202: obj({ delivery_id: str, requeued: int }) },
    errors: [404, 409],
  },

  'GET /user-limits': { summary: "The organization's limits per user (defaults for each of its users)", ok: { 200: organizationLimits } },
  'PATCH /user-limits': {
    summary: "Set the organization's limits per user (null: back to the server's default)",
    ok: { 200: organizationLimits },
    bodyExamples: [{ max_endpoints_per_user: 10, user_events_per_second: 20, user_events_burst: 40 }],
  },
  'GET /user-limits/users/:user_id': { summary: "One user's limits: its override and what applies", ok: { 200: userLimits } },
  'PUT /user-limits/users/:user_id': {
    summary: "Override one user's limits (null: the organization's default)",
    ok: { 200: userLimits },
    bodyExamples: [{ events_per_second: 100, events_burst: 200 }],
  },
  'DELETE /user-limits/users/:user_id': { summary: "Remove one user's override", ok: { 204: noContent }, errors: [404] },

  'GET /live': {
    summary: 'Live updates as Server-Sent Events',
    description:
      'text/event-stream: `event: <type>` with the message as JSON `data:` (deliveries.recorded, events.accepted, …), and a heartbeat comment every 15 s.',
    ok: {
      200: { description: 'A stream that lasts until the client or the server closes it.', content: { 'text/event-stream': { schema: { type: 'string' } } } },
    },
  },
};

function errorCodes(doc: RouteDoc): number[] {
  const base = doc.auth === 'public' ? [400, 500] : [400, 401, 429, 500, 503];
  // Every keyed route answers 403 to a portal session token (only the portal's routes take one).
  if (doc.auth !== 'public' && doc.auth !== 'supabase') base.push(403);
  return [...new Set([...base, ...(doc.errors ?? [])])].sort((a, b) => a - b);
}

const SECURITY: Record<Auth, unknown[]> = {
  public: [],
  key: [{ bearer: [] }],
  admin: [{ bearer: [] }],
  supabase: [{ supabaseSecret: [] }],
  portal: [{ bearer: [] }],
};
const AUTH_TEXT: Record<Auth, string> = {
  public: 'No key needed.',
  key: 'An organization key, or the admin key (with X-Organization-Id to act for one organization).',
  admin: 'The admin key only; an organization key gets 403.',
  supabase: 'The X-Supabase-Webhook-Secret header (SUPABASE_WEBHOOK_SECRET), checked before the body is read.',
  portal: 'A portal session token (cp_sess_…, from POST /portal/sessions), acting for its user only; writes need scope "manage" (403 otherwise). Keys get 403.',
};

/** The doc for a route as registered (full URL), or undefined for routes outside the API (dashboard, metrics). */
export function routeDocFor(method: string, url: string, prefix: string): RouteDoc | undefined {
  if (!url.startsWith(prefix)) return undefined;
  return ROUTE_DOCS[`${method} ${url.slice(prefix.length)}`];
}

/** An onRoute hook: adds summary, auth, examples and responses to the route's schema. */
export function documentRoute(route: RouteOptions, prefix: string): void {
  const methods = Array.isArray(route.method) ? route.method : [route.method];
  const doc = routeDocFor(String(methods[0]), route.url ?? '', prefix);
  if (!doc) return;
  const auth = doc.auth ?? 'key';
  const schema: Record<string, unknown> = { ...(route.schema ?? {}) };
  const response: Record<string, unknown> = {};
  for (const [code, s] of Object.entries(doc.ok)) response[code] = { description: (s.description as string | undefined) ?? 'Success.', ...s };
  for (const code of errorCodes(doc)) {
    if (response[code]) continue;
    response[code] = { description: ERROR_TEXT[code] ?? 'Error.', $ref: `${ERROR_ENVELOPE_ID}#` };
  }
  schema.summary ??= doc.summary;
  schema.description = [doc.description, `Auth: ${AUTH_TEXT[auth]}`].filter(Boolean).join('\n\n');
  schema.security = SECURITY[auth];
  schema.response = response;
  const body = schema.body as Schema | undefined;
  if (body && doc.bodyExamples) schema.body = { ...body, examples: doc.bodyExamples };
  route.schema = schema;
}
