/**
 * Events that reached the ledger without passing through Carteiro's ingestion (table capture, or any
 * other INSERT into webhook_events) and so were stored as written: their personal fields are sealed
 * here, a batch at a time (migration 0010). Concurrent sealers skip each other's rows.
 */
import type { Sql } from './connection.ts';

/**
 * Seals up to `limit` unsealed events in one transaction. `seal` gets an event's data as JSON text and
 * returns the text to store instead, or null when there is nothing to seal. Returns how many events
 * were marked sealed, and how many of them had their data rewritten.
 */
export async function sealStoredEvents(sql: Sql, seal: (dataText: string) => string | null, limit: number): Promise<{ checked: number; rewritten: number }> {
  return sql.begin(async (tx) => {
    const rows = await tx<{ id: string; data_text: string }[]>`
      SELECT id, data::text AS data_text FROM webhook_events
      WHERE NOT data_sealed
      ORDER BY id LIMIT ${limit}
      FOR NO KEY UPDATE SKIP LOCKED`;
    if (rows.length === 0) return { checked: 0, rewritten: 0 };
    // One new row version each: the data where sealing changed it, and the mark.
    const sealed = rows.map((r) => seal(r.data_text));
    await tx`
      UPDATE webhook_events e SET data = coalesce(s.data::jsonb, e.data), data_sealed = true
        FROM unnest(${rows.map((r) => r.id)}::uuid[], ${sealed}::text[]) AS s(id, data)
       WHERE e.id = s.id`;
    return { checked: rows.length, rewritten: sealed.filter((d) => d !== null).length };
  }) as Promise<{ checked: number; rewritten: number }>;
}
