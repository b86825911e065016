/**
 * Key rotation, second half: re-seals every ciphertext in the ledger (endpoint secrets and static
 * header values, sealed personal fields in event data) under the keyring's newest key, so an old key can then be removed
 * from CARTEIRO_ENCRYPTION_KEYS. Plaintexts do not change, so nothing else notices; it can run while
 * Carteiro runs, and again (it only touches what an older key sealed).
 */
import type { Sql } from './connection.ts';
import { parseKeepingNumbers } from '../util/exact-json.ts';

export type Resealer = {
  primaryKeyId: string;
  /** A sealed string under the newest key. */
  resealString(sealed: string): string;
  /** Re-seals what is sealed inside a parsed JSON value; `changed` counts it. */
  resealValue<T>(value: T): { value: T; changed: number };
};

export type ReencryptCounts = { endpoint_secrets: number; endpoint_headers: number; events: number; event_fields: number };

export async function reencryptLedger(sql: Sql, r: Resealer, opts: { batchSize?: number } = {}): Promise<ReencryptCounts> {
  const limit = opts.batchSize ?? 500;
  const current = `enc:v1:${r.primaryKeyId}:`;
  const counts: ReencryptCounts = { endpoint_secrets: 0, endpoint_headers: 0, events: 0, event_fields: 0 };
  const stale = (v: string | null) => v !== null && v.startsWith('enc:v1:') && !v.startsWith(current);

  const endpoints = await sql<{ id: string; secret: string | null; previous_secret: string | null }[]>`
    SELECT id, secret, previous_secret FROM webhook_endpoints
    WHERE (secret LIKE 'enc:v1:%' AND secret NOT LIKE ${current + '%'})
       OR (previous_secret LIKE 'enc:v1:%' AND previous_secret NOT LIKE ${current + '%'})`;
  for (const e of endpoints) {
    const secret = stale(e.secret) ? r.resealString(e.secret as string) : e.secret;
    const previous = stale(e.previous_secret) ? r.resealString(e.previous_secret as string) : e.previous_secret;
    // Only where the ciphertext is still the one read: a rotation meanwhile wins.
    const done = await sql`
      UPDATE webhook_endpoints SET secret = ${secret}, previous_secret = ${previous}
      WHERE id = ${e.id} AND secret IS NOT DISTINCT FROM ${e.secret} AND previous_secret IS NOT DISTINCT FROM ${e.previous_secret}
      RETURNING 1`;
    if (done.length) counts.endpoint_secrets += Number(stale(e.secret)) + Number(stale(e.previous_secret));
  }

  // Static headers (migration 0027): each value sealed on its own, re-sealed where an older key sealed it.
  const withHeaders = await sql<{ id: string; headers: Record<string, string> }[]>`
    SELECT id, headers FROM webhook_endpoints WHERE headers IS NOT NULL AND headers::text LIKE '%"enc:v1:%'`;
  for (const e of withHeaders) {
    const { value, changed } = r.resealValue(e.headers);
    if (changed === 0) continue;
    // Only where the headers are still the ones read: a change meanwhile wins.
    const done = await sql`
      UPDATE webhook_endpoints SET headers = ${sql.json(value)}
      WHERE id = ${e.id} AND headers = ${sql.json(e.headers)}
      RETURNING 1`;
    if (done.length) counts.endpoint_headers += changed;
  }

  let after: string | null = null;
  for (;;) {
    // From the text sent (migration 0016), so its key order survives, and numbers a double cannot
    // hold are kept as written.
    type Row = { id: string; data_text: string };
    const rows: Row[] = await sql<Row[]>`
      SELECT id, coalesce(data_json, data::text) AS data_text FROM webhook_events
      WHERE data::text LIKE '%"enc:v1:%' AND (${after}::uuid IS NULL OR id > ${after}::uuid)
      ORDER BY id LIMIT ${limit}`;
    if (rows.length === 0) break;
    const ids: string[] = [];
    const texts: string[] = [];
    for (const row of rows) {
      const { value, changed } = r.resealValue(parseKeepingNumbers(row.data_text));
      if (changed === 0) continue;
      ids.push(row.id);
      texts.push(JSON.stringify(value));
      counts.event_fields += changed;
    }
    if (ids.length) {
      await sql`
        UPDATE webhook_events e SET data = u.data::jsonb, data_json = u.data
        FROM unnest(${ids}::uuid[], ${texts}::text[]) AS u(id, data) WHERE e.id = u.id`;
      counts.events += ids.length;
    }
    after = rows[rows.length - 1]?.id ?? null;
    if (rows.length < limit) break;
  }
  return counts;
}
