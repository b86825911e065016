/**
 * An ACCESS EXCLUSIVE lock on one of a Carteiro schema's tables, held from a second session until
 * `release()`: every statement that reads or writes that table waits, as it would on a stalled server.
 * Needs a real Postgres (PGlite has one session: nothing else can hold a lock).
 */
import postgres from 'postgres';
import { DATABASE_URL } from './carteiro.ts';

export type TableLock = {
  /** Lets the waiting statements through; resolves when the lock's transaction has ended. */
  release(): Promise<void>;
  close(): Promise<void>;
};

export async function lockTable(schema: string, table: string): Promise<TableLock> {
  const holder = postgres(DATABASE_URL as string, { max: 1, onnotice: () => {} });
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  let locked!: () => void;
  const isLocked = new Promise<void>((r) => (locked = r));
  const holding = holder.begin(async (tx) => {
    await tx`LOCK TABLE ${tx(schema)}.${tx(table)} IN ACCESS EXCLUSIVE MODE`;
    locked();
    await released;
  });
  await isLocked;
  return {
    async release() {
      release();
      await holding;
    },
    async close() {
      release();
      await holder.end({ timeout: 5 });
    },
  };
}
