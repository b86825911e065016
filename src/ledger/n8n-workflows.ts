/**
 * n8n workflows in the ledger. Each n8n_workflows row is delivered to through a linked endpoint of
 * kind 'n8n' (migrations 0001, 0003): its events are the workflow's event_types, its url the
 * workflow's delivery URL, its secret NULL (WEBHOOK_SECRET signs) or the workflow's own (ciphertext).
 * Every write here changes both rows in one transaction, so fan-out never sees one without the other.
 * Counters and the delivery state (state, last_error) are written by the worker's outcome batches
 * (outcomes.ts: recordOutcomes).
 * Every query takes the caller's organization; `null` means the admin acting across organizations.
 */
import type { Sql, TxSql } from './connection.ts';
import { deleteEndpointIn, setEndpointActiveIn } from './endpoints.ts';
import { retryOnDeadlock } from './deadlock-retry.ts';

type Db = Sql | TxSql;

export type N8nWorkflowSource = 'api' | 'seed' | 'discovery';
export type N8nWorkflowState = 'unknown' | 'active' | 'inactive';

export type N8nWorkflowRow = {
  id: string;
  organization_id: string;
  workflow_id: string;
  name: string;
  webhook_url: string;
  event_types: string[];
  is_active: boolean;
  success_count: string | number;
  failure_count: string | number;
  webhook_endpoint_id: string | null;
  path: string | null;
  use_test_url: boolean;
  source: N8nWorkflowSource;
  state: N8nWorkflowState;
  state_changed_at: Date | null;
  last_error: string | null;
  last_error_at: Date | null;
  last_discovered_at: Date | null;
  /** Whether n8n's API listed a POST Webhook at this path when last checked; null: never checked (migration 0026). */
  confirmed: boolean | null;
  confirmation_note: string | null;
  confirmed_at: Date | null;
  created_at: Date;
  updated_at: Date;
  /**
   * From the linked endpoint: where deliveries go now, whether it is active (the worker disables it on a
   * 410 Gone), why it is inactive, whether it has its own secret.
   */
  delivery_url: string | null;
  endpoint_active: boolean | null;
  disabled_reason: string | null;
  has_secret: boolean;
};

/** `…/webhook/<path>` → `…/webhook-test/<path>` (n8n's test URL); null for a URL not shaped like a production URL. */
export function n8nTestUrl(webhookUrl: string): string | null {
  const i = webhookUrl.lastIndexOf('/webhook/');
  return i < 0 ? null : `${webhookUrl.slice(0, i)}/webhook-test/${webhookUrl.slice(i + '/webhook/'.length)}`;
}

/** Whether a workflow receives events: active itself and through its endpoint (which a 410 Gone disables). */
export function n8nWorkflowActive(w: Pick<N8nWorkflowRow, 'is_active' | 'endpoint_active'>): boolean {
  return w.is_active && w.endpoint_active !== false;
}

/** Where a workflow's deliveries go: its production URL, or in test mode its test URL. */
export function n8nDeliveryUrl(w: { webhook_url: string; use_test_url: boolean }): string {
  return (w.use_test_url && n8nTestUrl(w.webhook_url)) || w.webhook_url;
}

const details = (db: Db) => db`
  SELECT w.*, ep.url AS delivery_url, ep.is_active AS endpoint_active, ep.disabled_reason, (ep.secret IS NOT NULL) AS has_secret
  FROM n8n_workflows w LEFT JOIN webhook_endpoints ep ON ep.id = w.webhook_endpoint_id`;

export type NewN8nWorkflow = {
  organizationId: string;
  workflowId: string;
  name: string;
  webhookUrl: string;
  path: string | null;
  eventTypes: string[];
  isActive: boolean;
  /** Why it starts inactive (shown as disabled_reason). */
  inactiveReason?: string | null;
  source: N8nWorkflowSource;
  secretCiphertext: string | null;
  useTestUrl?: boolean;
  state?: N8nWorkflowState;
  discovered?: boolean;
  /** What n8n's API said about the path, when it was asked (seed, discovery). */
  confirmation?: N8nConfirmation;
};

/** confirmed null: not checked (no N8N_API_URL); note: why it is not confirmed. */
export type N8nConfirmation = { confirmed: boolean | null; note: string | null };

/** Creates the workflow and its endpoint. A second row with the same workflow_id in the organization fails (23505). */
export async function createN8nWorkflow(sql: Sql, w: NewN8nWorkflow): Promise<N8nWorkflowRow> {
  return sql.begin((tx) => insertN8nWorkflowIn(tx, w)) as Promise<N8nWorkflowRow>;
}

export async function insertN8nWorkflowIn(tx: TxSql, w: NewN8nWorkflow): Promise<N8nWorkflowRow> {
  const useTestUrl = w.useTestUrl ?? false;
  const [ep] = await tx<{ id: string }[]>`
    INSERT INTO webhook_endpoints (organization_id, name, url, events, secret, kind, is_active, disabled_reason, description)
    VALUES (${w.organizationId}, ${w.name}, ${n8nDeliveryUrl({ webhook_url: w.webhookUrl, use_test_url: useTestUrl })}, ${w.eventTypes}::text[],
            ${w.secretCiphertext}, 'n8n', ${w.isActive}, ${w.isActive ? null : (w.inactiveReason ?? null)},
            ${`n8n workflow ${w.workflowId}: managed through /api/webhooks/n8n/workflows`})
    RETURNING id`;
  const [row] = await tx<{ id: string }[]>`
    INSERT INTO n8n_workflows (organization_id, workflow_id, name, webhook_url, event_types, is_active, webhook_endpoint_id,
                               path, use_test_url, source, state, state_changed_at, last_discovered_at,
                               confirmed, confirmation_note, confirmed_at)
    VALUES (${w.organizationId}, ${w.workflowId}, ${w.name}, ${w.webhookUrl}, ${w.eventTypes}::text[], ${w.isActive}, ${(ep as { id: string }).id},
            ${w.path}, ${useTestUrl}, ${w.source}, ${w.state ?? 'unknown'}, ${w.state && w.state !== 'unknown' ? new Date() : null},
            ${w.discovered ? new Date() : null},
            ${w.confirmation?.confirmed ?? null}, ${w.confirmation?.note ?? null}, ${w.confirmation ? new Date() : null})
    RETURNING id`;
  return (await findN8nWorkflow(tx, w.organizationId, { id: (row as { id: string }).id })) as N8nWorkflowRow;
}

export async function findN8nWorkflow(
  db: Db,
  organizationId: string | null,
  key: { id: string } | { workflowId: string },
): Promise<N8nWorkflowRow | undefined> {
  const id = 'id' in key ? key.id : null;
  const workflowId = 'workflowId' in key ? key.workflowId : null;
  const [row] = await db<N8nWorkflowRow[]>`
    ${details(db)}
    WHERE (${organizationId}::uuid IS NULL OR w.organization_id = ${organizationId}::uuid)
      AND (${id}::uuid IS NULL OR w.id = ${id}::uuid)
      AND (${workflowId}::text IS NULL OR w.workflow_id = ${workflowId})
    ORDER BY w.id LIMIT 1`;
  return row;
}

export async function listN8nWorkflows(db: Db, f: { organizationId: string | null; after?: string | undefined; limit: number }): Promise<N8nWorkflowRow[]> {
  return db<N8nWorkflowRow[]>`
    ${details(db)}
    WHERE (${f.organizationId}::uuid IS NULL OR w.organization_id = ${f.organizationId}::uuid)
      AND (${f.after ?? null}::uuid IS NULL OR w.id > ${f.after ?? null}::uuid)
    ORDER BY w.id LIMIT ${f.limit}`;
}

/** The organization's workflows listening on `path`, active ones first, then the most recently changed. */
export async function findN8nWorkflowsByPath(db: Db, organizationId: string, path: string): Promise<N8nWorkflowRow[]> {
  return db<N8nWorkflowRow[]>`
    ${details(db)}
    WHERE w.organization_id = ${organizationId} AND w.path = ${path}
    ORDER BY w.is_active DESC, w.updated_at DESC`;
}

/** The workflows of one organization, or (null) of every one: /health's process-wide numbers. */
export async function countN8nWorkflows(db: Db, organizationId: string | null = null): Promise<{ registered: number; active: number; unconfirmed: number }> {
  const [row] = await db<{ registered: number; active: number; unconfirmed: number }[]>`
    SELECT count(*)::int AS registered,
           count(*) FILTER (WHERE w.is_active AND ep.is_active IS DISTINCT FROM false)::int AS active,
           count(*) FILTER (WHERE w.confirmed = false)::int AS unconfirmed
    FROM n8n_workflows w LEFT JOIN webhook_endpoints ep ON ep.id = w.webhook_endpoint_id
    WHERE ${organizationId}::uuid IS NULL OR w.organization_id = ${organizationId}::uuid`;
  return row ?? { registered: 0, active: 0, unconfirmed: 0 };
}

export async function listN8nWorkflowPaths(db: Db, organizationId: string): Promise<string[]> {
  const rows = await db<{ path: string }[]>`
    SELECT DISTINCT path FROM n8n_workflows WHERE organization_id = ${organizationId} AND path IS NOT NULL ORDER BY path`;
  return rows.map((r) => r.path);
}

/**
 * Every workflow of the organization, locked for the rest of the transaction (seed, discovery).
 * Locks are taken in the worker's order (recordOutcomes: endpoints by id, then their workflows), so a
 * discovery and an outcome batch wait for each other instead of deadlocking.
 */
export async function lockN8nWorkflowsIn(tx: TxSql, organizationId: string): Promise<N8nWorkflowRow[]> {
  await tx`
    SELECT ep.id FROM webhook_endpoints ep JOIN n8n_workflows w ON w.webhook_endpoint_id = ep.id
    WHERE w.organization_id = ${organizationId} ORDER BY ep.id FOR NO KEY UPDATE OF ep`;
  await tx`SELECT id FROM n8n_workflows WHERE organization_id = ${organizationId} ORDER BY id FOR UPDATE`;
  return tx<N8nWorkflowRow[]>`${details(tx)} WHERE w.organization_id = ${organizationId} ORDER BY w.id`;
}

/** Serialises seed and discovery runs for one organization until the transaction ends. */
export async function lockN8nRegistryIn(tx: TxSql, organizationId: string): Promise<void> {
  await tx`SELECT pg_advisory_xact_lock(${N8N_REGISTRY_LOCK_KEY}::int, hashtext(${organizationId}))`;
}
const N8N_REGISTRY_LOCK_KEY = 885_001;

export type N8nWorkflowChanges = Partial<{
  workflowId: string;
  name: string;
  webhookUrl: string;
  path: string | null;
  eventTypes: string[];
  useTestUrl: boolean;
  source: N8nWorkflowSource;
  state: N8nWorkflowState;
  /** string: the workflow's own secret (ciphertext); null: back to WEBHOOK_SECRET. */
  secretCiphertext: string | null;
  /** Activation changes hold (pause) or resume its pending deliveries, as for any endpoint. */
  active: { isActive: boolean; reason: string | null };
  /** Stamps last_discovered_at. */
  discovered: boolean;
  /** Sets confirmed, confirmation_note and stamps confirmed_at. */
  confirmation: N8nConfirmation;
}>;

export async function updateN8nWorkflow(sql: Sql, organizationId: string | null, id: string, changes: N8nWorkflowChanges): Promise<N8nWorkflowRow | undefined> {
  return sql.begin(async (tx) => {
    // Endpoint first, then workflow: the worker's lock order (see lockN8nWorkflowsIn).
    await tx`
      SELECT ep.id FROM webhook_endpoints ep JOIN n8n_workflows w ON w.webhook_endpoint_id = ep.id
      WHERE w.id = ${id} FOR NO KEY UPDATE OF ep`;
    const [current] = await tx<N8nWorkflowRow[]>`
      SELECT w.*, NULL AS delivery_url, NULL AS endpoint_active, NULL AS disabled_reason, false AS has_secret FROM n8n_workflows w
      WHERE w.id = ${id} AND (${organizationId}::uuid IS NULL OR w.organization_id = ${organizationId}::uuid)
      FOR UPDATE`;
    return current ? updateN8nWorkflowIn(tx, current, changes) : undefined;
  }) as Promise<N8nWorkflowRow | undefined>;
}

/** Applies `changes` to a workflow the transaction holds, and brings its endpoint in step. */
export async function updateN8nWorkflowIn(tx: TxSql, current: N8nWorkflowRow, c: N8nWorkflowChanges): Promise<N8nWorkflowRow> {
  const next = {
    workflow_id: c.workflowId ?? current.workflow_id,
    name: c.name ?? current.name,
    webhook_url: c.webhookUrl ?? current.webhook_url,
    path: c.path !== undefined ? c.path : current.path,
    event_types: c.eventTypes ?? current.event_types,
    use_test_url: c.useTestUrl ?? current.use_test_url,
    source: c.source ?? current.source,
    state: c.state ?? current.state,
    is_active: c.active ? c.active.isActive : current.is_active,
  };
  const [w] = await tx<N8nWorkflowRow[]>`
    UPDATE n8n_workflows
       SET workflow_id = ${next.workflow_id}, name = ${next.name}, webhook_url = ${next.webhook_url}, path = ${next.path},
           event_types = ${next.event_types}::text[], use_test_url = ${next.use_test_url}, source = ${next.source},
           state = ${next.state}, state_changed_at = CASE WHEN state <> ${next.state} THEN now() ELSE state_changed_at END,
           is_active = ${next.is_active},
           last_discovered_at = CASE WHEN ${c.discovered ?? false} THEN now() ELSE last_discovered_at END,
           confirmed = CASE WHEN ${c.confirmation !== undefined} THEN ${c.confirmation?.confirmed ?? null}::boolean ELSE confirmed END,
           confirmation_note = CASE WHEN ${c.confirmation !== undefined} THEN ${c.confirmation?.note ?? null}::text ELSE confirmation_note END,
           confirmed_at = CASE WHEN ${c.confirmation !== undefined} THEN now() ELSE confirmed_at END,
           updated_at = now()
     WHERE id = ${current.id}
    RETURNING *`;
  const row = w as N8nWorkflowRow;
  const url = n8nDeliveryUrl(next);
  if (!row.webhook_endpoint_id) {
    // The link was lost (the endpoint row was deleted directly in SQL): make a new endpoint.
    const [ep] = await tx<{ id: string }[]>`
      INSERT INTO webhook_endpoints (organization_id, name, url, events, secret, kind, is_active, description)
      VALUES (${row.organization_id}, ${next.name}, ${url}, ${next.event_types}::text[], ${c.secretCiphertext ?? null}, 'n8n', ${next.is_active},
              ${`n8n workflow ${next.workflow_id}: managed through /api/webhooks/n8n/workflows`})
      RETURNING id`;
    await tx`UPDATE n8n_workflows SET webhook_endpoint_id = ${(ep as { id: string }).id} WHERE id = ${row.id}`;
  } else {
    const secretChanged = c.secretCiphertext !== undefined;
    await tx`
      UPDATE webhook_endpoints
         SET name = ${next.name}, url = ${url}, events = ${next.event_types}::text[],
             secret = CASE WHEN ${secretChanged} THEN ${c.secretCiphertext ?? null} ELSE secret END,
             previous_secret = CASE WHEN ${secretChanged} THEN NULL ELSE previous_secret END,
             previous_secret_expires_at = CASE WHEN ${secretChanged} THEN NULL ELSE previous_secret_expires_at END,
             updated_at = now()
       WHERE id = ${row.webhook_endpoint_id}`;
    if (c.active) await setEndpointActiveIn(tx, null, row.webhook_endpoint_id, c.active.isActive, c.active.reason);
  }
  return (await findN8nWorkflow(tx, null, { id: row.id })) as N8nWorkflowRow;
}

/** The n8n endpoints with no secret of their own (signed with WEBHOOK_SECRET, when it is set). */
export async function listN8nEndpointsWithoutSecret(db: Db): Promise<{ endpoint_id: string; workflow_id: string }[]> {
  return db<{ endpoint_id: string; workflow_id: string }[]>`
    SELECT ep.id AS endpoint_id, coalesce(w.workflow_id, ep.name) AS workflow_id
    FROM webhook_endpoints ep LEFT JOIN n8n_workflows w ON w.webhook_endpoint_id = ep.id
    WHERE ep.kind = 'n8n' AND ep.secret IS NULL
    ORDER BY ep.id`;
}

/** Gives an n8n endpoint its own secret (ciphertext) unless it got one meanwhile (another process). */
export async function setN8nEndpointSecretIfUnset(db: Db, endpointId: string, secretCiphertext: string): Promise<boolean> {
  const rows = await db`
    UPDATE webhook_endpoints SET secret = ${secretCiphertext}, updated_at = now()
    WHERE id = ${endpointId} AND kind = 'n8n' AND secret IS NULL
    RETURNING id`;
  return rows.length > 0;
}

/**
 * Deletes the workflow and its endpoint (with the endpoint's pending deliveries; the attempt log stays,
 * as for any deleted endpoint).
 */
export async function deleteN8nWorkflow(sql: Sql, organizationId: string | null, id: string): Promise<boolean> {
  return retryOnDeadlock(
    () =>
      sql.begin(async (tx) => {
        // Endpoint first (its foreign key then clears the workflow's link): the worker's lock order. Its
        // unfinished deliveries are cancelled and their events settled, as for any deleted endpoint.
        const [linked] = await tx<{ endpoint_id: string | null }[]>`
      SELECT w.webhook_endpoint_id AS endpoint_id FROM n8n_workflows w JOIN webhook_endpoints ep ON ep.id = w.webhook_endpoint_id AND ep.kind = 'n8n'
      WHERE w.id = ${id} AND (${organizationId}::uuid IS NULL OR w.organization_id = ${organizationId}::uuid)`;
        if (linked?.endpoint_id) await deleteEndpointIn(tx, organizationId, linked.endpoint_id);
        const deleted = await tx`
      DELETE FROM n8n_workflows
      WHERE id = ${id} AND (${organizationId}::uuid IS NULL OR organization_id = ${organizationId}::uuid)
      RETURNING id`;
        return deleted.length > 0;
      }) as Promise<boolean>,
  );
}

/**
 * Records an event addressed to ONE workflow (POST /n8n/sync) and queues its delivery, in one
 * transaction. The fan-out trigger runs on every event insert and would also hand it to every endpoint
 * whose filters match (a `*` endpoint, say); a directed event is not a broadcast, so those dispatches
 * are removed before commit and the one to the workflow's endpoint is made instead. From there the
 * delivery is the ordinary one: signed, retried, logged.
 * An idempotency key seen before returns the first event, without queueing anything again.
 */
export async function insertDirectedEvent(
  sql: Sql,
  e: {
    organizationId: string;
    endpointId: string;
    eventType: string;
    recordId: string | null;
    userId: string | null;
    dataJson: string;
    priority: number;
    idempotencyKey: string | null;
  },
): Promise<{ id: string; created_at: Date; duplicate: boolean }> {
  return sql.begin(async (tx) => {
    const [inserted] = await tx<{ id: string; created_at: Date }[]>`
      INSERT INTO webhook_events (organization_id, event_type, event_source, record_id, user_id, data, data_json, priority, idempotency_key, data_sealed)
      VALUES (${e.organizationId}, ${e.eventType}, 'n8n', ${e.recordId}, ${e.userId}, ${e.dataJson}::text::jsonb, ${e.dataJson}::text, ${e.priority}, ${e.idempotencyKey}, true)
      ON CONFLICT (organization_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
      RETURNING id, created_at`;
    if (!inserted) {
      const [first] = await tx<{ id: string; created_at: Date }[]>`
        SELECT id, created_at FROM webhook_events WHERE organization_id = ${e.organizationId} AND idempotency_key = ${e.idempotencyKey}`;
      return { ...(first as { id: string; created_at: Date }), duplicate: true };
    }
    await tx`DELETE FROM webhook_dispatches WHERE webhook_event_id = ${inserted.id} AND webhook_endpoint_id <> ${e.endpointId}`;
    await tx`
      INSERT INTO webhook_dispatches (organization_id, webhook_event_id, webhook_endpoint_id, priority, status, fifo)
      SELECT ${e.organizationId}, ${inserted.id}, ep.id, ${e.priority}, CASE WHEN ep.is_active THEN 'pending' ELSE 'paused' END, CASE WHEN ep.fifo THEN true END
      FROM webhook_endpoints ep WHERE ep.id = ${e.endpointId}
      ON CONFLICT (webhook_event_id, webhook_endpoint_id) DO NOTHING`;
    // The trigger completed it at once if nothing matched; it is now waiting for its one delivery.
    await tx`UPDATE webhook_events SET status = 'pending', processed_at = NULL WHERE id = ${inserted.id}`;
    await tx`SELECT pg_notify(current_schema() || '_dispatch', '')`;
    return { ...inserted, duplicate: false };
  }) as Promise<{ id: string; created_at: Date; duplicate: boolean }>;
}
