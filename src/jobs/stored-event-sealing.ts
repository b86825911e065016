/**
 * Seals the personal fields (CARTEIRO_PII_FIELDS) of events that were written straight into the
 * database, which Carteiro's ingestion never saw: rows from table capture, mostly. The encryption key
 * never enters Postgres, so this cannot happen inside the application's transaction; a timer in every
 * process that delivers picks the rows up within about a second of their commit (the plaintext lives
 * that long in the table, and in WAL and dead row versions until they are recycled: docs/security.md).
 * Delivery does not wait for it: the worker sends sealed and unsealed data alike, opened.
 */
import type { Logger } from 'pino';
import type { Ledger } from '../ledger/connection.ts';
import type { DataProtection } from '../protection/data-protection.ts';
import { sealStoredEvents } from '../ledger/unsealed-events.ts';
import { parseKeepingNumbers } from '../util/exact-json.ts';

const SEAL_INTERVAL_MS = 1000;
const SEAL_BATCH = 500;

/**
 * Starts the timer; returns the function that stops it (and waits for a pass under way). Every event a
 * pass finds arrived without Carteiro's ingestion, so it is also where they are announced on the live
 * bus (`announce`, as ingestion announces its own): dashboards see captured events within a second.
 */
export function startStoredEventSealing(
  services: { ledger: Pick<Ledger, 'sql'>; log: Logger; dataProtection: DataProtection },
  announce: (organizationId: string, count: number) => void,
): () => Promise<void> {
  const { ledger, log, dataProtection } = services;
  // null when sealing changes nothing (Postgres's jsonb text and JSON.stringify space differently).
  // Numbers a double cannot hold (a bigint column) are kept as written.
  const seal = (dataText: string): string | null => {
    const data = parseKeepingNumbers(dataText) as Record<string, unknown>;
    const sealed = dataProtection.sealData(data);
    return sealed === JSON.stringify(data) ? null : sealed;
  };
  let stopped = false;
  let pass: Promise<void> = Promise.resolve();
  const run = async () => {
    try {
      for (;;) {
        const { checked, rewritten, byOrganization } = await sealStoredEvents(ledger.sql, seal, SEAL_BATCH);
        if (rewritten) log.debug({ checked, rewritten }, 'sealed personal fields of stored events');
        for (const [organizationId, count] of byOrganization) announce(organizationId, count);
        if (checked < SEAL_BATCH || stopped) break;
      }
    } catch (err) {
      log.warn({ err }, 'sealing stored events failed; retrying at the next pass');
    }
  };
  let running = false;
  const timer = setInterval(() => {
    if (running) return; // a slow pass is not queued behind by every tick
    running = true;
    pass = run().finally(() => {
      running = false;
    });
  }, SEAL_INTERVAL_MS);
  timer.unref();
  return async () => {
    stopped = true;
    clearInterval(timer);
    await pass;
  };
}
