/**
 * Maintenance statements (erasure, retention) touch events and dispatches in the opposite order to the
 * worker's outcome batches, which lock dispatches first. Rather than contort those statements, a
 * deadlock — Postgres aborts one side at once, so nothing half-done remains — is simply run again.
 */
const DEADLOCK = '40P01';
const SERIALIZATION_FAILURE = '40001';
const MAX_TRIES = 5;

export async function retryOnDeadlock<T>(work: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await work();
    } catch (err) {
      const code = (err as { code?: string }).code;
      if ((code !== DEADLOCK && code !== SERIALIZATION_FAILURE) || attempt >= MAX_TRIES) throw err;
      await new Promise((r) => setTimeout(r, 10 * attempt + Math.random() * 20));
    }
  }
}
