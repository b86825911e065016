/**
 * Table capture: typed entry points to the SQL functions of migrations/0002_table_capture.sql, which
 * do the real work inside Postgres (the triggers must run in the user's own transaction). Used by the
 * CLI (`carteiro triggers …`), the Supabase ingress and the benchmarks.
 *
 * Errors the SQL functions raise on purpose (RAISE EXCEPTION, SQLSTATE P0001) and a table that does
 * not exist become ValidationError / NotFoundError, so callers show the message as it is.
 */
import type { Sql } from './connection.ts';
import { ForbiddenError, NotFoundError, SchemaViolationError, ValidationError } from '../errors/errors.ts';

export const CAPTURE_OPERATIONS = ['INSERT', 'UPDATE', 'DELETE'] as const;
export type CaptureOperation = (typeof CAPTURE_OPERATIONS)[number];

export const CAPTURE_MAPPINGS = ['row', 'function', 'seed.user', 'seed.agent', 'seed.conversation', 'seed.message', 'seed.integration'] as const;
export type CaptureMapping = (typeof CAPTURE_MAPPINGS)[number];

export type CaptureSpec = {
  table: string;
  /** Default 'public'. */
  schema?: string | undefined;
  /** Required for mapping 'row'; '{op}' stands for created/updated/deleted. */
  eventType?: string | null | undefined;
  /** Default ['INSERT']. INSERT alone uses the set-based statement trigger. */
  operations?: readonly CaptureOperation[] | undefined;
  /** data = only these columns (default: the whole row). */
  columns?: readonly string[] | null | undefined;
  /** Fixed organization (default: the row's organization_id column, else the default organization). */
  organizationId?: string | null | undefined;
  /** Default carteiro_<table>_<operations>. */
  triggerName?: string | null | undefined;
  recordIdColumn?: string | undefined;
  userIdColumn?: string | undefined;
  priority?: 'normal' | 'high' | undefined;
  mapping?: CaptureMapping | undefined;
  /** For mapping 'function': `schema.fn(text, jsonb, jsonb)`. */
  mapper?: string | null | undefined;
};

export type Capture = {
  id: string;
  schema_name: string;
  table_name: string;
  trigger_name: string;
  operations: CaptureOperation[];
  mapping: CaptureMapping;
  event_type: string | null;
  columns: string[] | null;
  record_id_column: string;
  user_id_column: string;
  organization_id: string | null;
  mapper: string | null;
  priority: number;
  created_at: Date;
  updated_at: Date;
};

/** A capture and whether its trigger is still on its table (a dropped table takes its triggers along). */
export type CaptureListing = Capture & { attached: boolean };

export type SeedTriggerResult = { table_name: string; trigger_name: string; installed: boolean };

/** table_captures' columns, the mapper as text (`schema.fn(text,jsonb,jsonb)`), each prefixed with `p`. */
const captureColumns = (p: string) =>
  `${p}id, ${p}schema_name, ${p}table_name, ${p}trigger_name, ${p}operations, ${p}mapping, ${p}event_type, ${p}columns, ` +
  `${p}record_id_column, ${p}user_id_column, ${p}organization_id, ${p}mapper::text AS mapper, ${p}priority, ${p}created_at, ${p}updated_at`;

/** Attaches a capture trigger to a table, or re-configures the capture of the same trigger name. */
export async function captureTable(sql: Sql, spec: CaptureSpec): Promise<Capture> {
  const schema = spec.schema ?? 'public';
  return translateErrors(`${schema}.${spec.table}`, async () => {
    const [row] = await sql.unsafe<Capture[]>(
      `SELECT ${captureColumns('')} FROM capture_table(
         format('%I.%I', $1::text, $2::text)::regclass, $3::text, $4::text[], $5::text[], $6::uuid, $7::text,
         $8::text, $9::text, $10::text, $11::text, $12::regprocedure)`,
      [
        schema,
        spec.table,
        spec.eventType ?? null,
        [...(spec.operations ?? ['INSERT'])],
        spec.columns ? [...spec.columns] : null,
        spec.organizationId ?? null,
        spec.triggerName ?? null,
        spec.recordIdColumn ?? 'id',
        spec.userIdColumn ?? 'user_id',
        spec.priority ?? 'normal',
        spec.mapping ?? 'row',
        spec.mapper ?? null,
      ] as never[],
    );
    return row as Capture;
  });
}

/** Removes a table's captures (only `triggerName` when given). Returns how many were removed. */
export async function uncaptureTable(
  sql: Sql,
  target: { table: string; schema?: string | undefined; triggerName?: string | null | undefined },
): Promise<number> {
  const schema = target.schema ?? 'public';
  return translateErrors(`${schema}.${target.table}`, async () => {
    const [row] = await sql<{ removed: number }[]>`
      SELECT uncapture_table(format('%I.%I', ${schema}::text, ${target.table}::text), ${target.triggerName ?? null}::text) AS removed`;
    return row?.removed ?? 0;
  });
}

export async function listCaptures(sql: Sql): Promise<CaptureListing[]> {
  return sql.unsafe<CaptureListing[]>(`
    SELECT ${captureColumns('c.')},
           -- By the capture id its trigger carries, not by name: a renamed table keeps its trigger (migration 0015).
           EXISTS (SELECT 1 FROM pg_trigger t WHERE capture_trigger_of(t, c.id)) AS attached
    FROM table_captures c
    ORDER BY c.schema_name, c.table_name, c.trigger_name`);
}

/** The seed's five triggers on whichever of users, agents, conversations, messages, external_integrations exist. */
export async function installSeedTriggers(
  sql: Sql,
  opts: { schema?: string | undefined; organizationId?: string | null | undefined } = {},
): Promise<SeedTriggerResult[]> {
  return translateErrors(
    `schema ${opts.schema ?? 'public'}`,
    () => sql<SeedTriggerResult[]>`
    SELECT table_name, trigger_name, installed FROM install_seed_triggers(${opts.schema ?? 'public'}::text, ${opts.organizationId ?? null}::uuid)`,
  );
}

export async function uninstallSeedTriggers(sql: Sql, opts: { schema?: string | undefined } = {}): Promise<number> {
  const [row] = await sql<{ removed: number }[]>`SELECT uninstall_seed_triggers(${opts.schema ?? 'public'}::text) AS removed`;
  return row?.removed ?? 0;
}

export type MappedRow = {
  event_type: string;
  organization_id: string;
  user_id: string | null;
  record_id: string | null;
  /** The event's data as JSON text. */
  data_json: string;
};

/**
 * Maps a row change exactly as a capture trigger would, writing nothing. Null when the change makes
 * no event (e.g. an integration updated without connecting or disconnecting). A row the mapping cannot
 * handle throws SchemaViolationError with the reason.
 */
export async function mapCapturedRow(
  sql: Sql,
  input: {
    mapping: CaptureMapping;
    eventType: string | null;
    operation: CaptureOperation;
    record: Record<string, unknown> | null;
    oldRecord: Record<string, unknown> | null;
    organizationId?: string | null | undefined;
  },
): Promise<MappedRow | null> {
  try {
    const [row] = await sql<(MappedRow | { event_type: null })[]>`
      SELECT m ->> 'event_type' AS event_type, m ->> 'organization_id' AS organization_id, m ->> 'user_id' AS user_id,
             m ->> 'record_id' AS record_id, (m -> 'data')::text AS data_json
      FROM map_captured_row(${input.mapping}::text, ${input.eventType}::text, ${input.operation}::text,
                            ${jsonText(input.record)}::text::jsonb, ${jsonText(input.oldRecord)}::text::jsonb,
                            ${input.organizationId ?? null}::uuid) AS m`;
    return row && row.event_type !== null ? (row as MappedRow) : null;
  } catch (err) {
    if (isRaisedByCapture(err) || sqlState(err).startsWith('22')) {
      throw new SchemaViolationError(`the row cannot be mapped to an event: ${(err as Error).message}`);
    }
    throw err;
  }
}

/** Sent as text and cast in SQL: a string parameter typed jsonb would be JSON-encoded again by postgres.js. */
function jsonText(value: Record<string, unknown> | null): string | null {
  return value === null ? null : JSON.stringify(value);
}

function sqlState(err: unknown): string {
  const code = (err as { code?: unknown })?.code;
  return typeof code === 'string' ? code : '';
}

/** RAISE EXCEPTION without an explicit code: the capture functions' own, deliberate errors. */
function isRaisedByCapture(err: unknown): boolean {
  return sqlState(err) === 'P0001';
}

async function translateErrors<T>(target: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (err) {
    const message = (err as Error).message;
    if (isRaisedByCapture(err)) throw new ValidationError(message);
    if (sqlState(err) === '42P01') throw new NotFoundError('table', target, { reason: message });
    // Attaching a trigger takes the table's owner (and EXECUTE on the capture functions).
    if (sqlState(err) === '42501') throw new ForbiddenError(`${message} (connect as the owner of ${target} and of Carteiro's schema)`);
    if (sqlState(err) === '42883' && /regprocedure|function/.test(message)) throw new ValidationError(`mapper: ${message}`);
    throw err;
  }
}
