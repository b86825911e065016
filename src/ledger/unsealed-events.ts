/**
 * Events that reached the ledger without passing through Carteiro's ingestion (table capture, or any
 * other INSERT into webhook_events) and so were stored as written: their personal fields are sealed
 * here, a batch at a time (migration 0010). Concurrent sealers skip each other's rows.
 */
import type { Sql } from './connection.ts';

/** Events marked sealed, how many of them had their data rewritten, and new arrivals per organization. */
export type SealedBatch = { checked: number; rewritten: number; byOrganization: Map<string, number> };

/**
 * Seals up to `limit` unsealed events in one transaction. `seal` gets an event's data as JSON text and
 * returns the text to store instead, or null when there is nothing to seal. Returns how many events
 * were marked sealed, how many of them had their data rewritten, and how many of those written in
 * the last minute per organization (new arrivals, for the live bus).
 */
export async function sealStoredEvents(sql: Sql, seal: (dataText: string) => string | null, limit: number): Promise<SealedBatch> {
  return sql.begin(async (tx) => {
    const rows = await tx<{ id: string; organization_id: string; data_text: string; recent: boolean }[]>`
      SELECT id, organization_id, coalesce(data_json, data::text) AS data_text, created_at > now() - interval '1 minute' AS recent FROM webhook_events
      WHERE NOT data_sealed
      ORDER BY id LIMIT ${limit}
      FOR NO KEY UPDATE SKIP LOCKED`;
    if (rows.length === 0) return { checked: 0, rewritten: 0, byOrganization: new Map() };
    // One new row version each: the data where sealing changed it (both copies: jsonb and the text
    // sent, migration 0016), and the mark.
    const sealed = rows.map((r) => seal(r.data_text));
    await tx`
      UPDATE webhook_events e SET data = coalesce(s.data::jsonb, e.data), data_json = coalesce(s.data, e.data_json), data_sealed = true
        FROM unnest(${rows.map((r) => r.id)}::uuid[], ${sealed}::text[]) AS s(id, data)
       WHERE e.id = s.id`;
    const byOrganization = new Map<string, number>();
    // New arrivals only: rows an operator marks for sealing again (docs/security.md) are not news.
    for (const r of rows) if (r.recent) byOrganization.set(r.organization_id, (byOrganization.get(r.organization_id) ?? 0) + 1);
    return { checked: rows.length, rewritten: sealed.filter((d) => d !== null).length, byOrganization };
  }) as Promise<SealedBatch>;
}
