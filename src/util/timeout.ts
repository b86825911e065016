/**
 * Settles with `work`, or rejects with `onTimeout()` after `ms`. The work itself goes on (a query or
 * a DNS lookup cannot be taken back); only the caller stops waiting for it.
 */
export function withTimeout<T>(work: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(onTimeout()), ms);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}
