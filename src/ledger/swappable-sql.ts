/**
 * One `sql` handle whose pool can be replaced underneath it. Everything in a process captured the
 * ledger's `sql` once, at start (catalog, intake, jobs, the worker); after postgres.js lost a
 * connection in a bad state (a query that never settles, a socket that throws `null.write`), the way
 * out is a fresh pool, and every holder must use it without being told. So the handle is a Proxy
 * that forwards each call and property to whichever pool is current.
 */
import type postgres from 'postgres';

// The ledger's handle type (connection.ts re-states it; importing it from there would be a cycle).
type Sql = postgres.Sql<{}>;

export type SwappableSql = {
  sql: Sql;
  current(): Sql;
  /** Makes `next` the pool every holder uses from now on; returns the one it replaced. */
  swap(next: Sql): Sql;
};

export function swappableSql(initial: Sql): SwappableSql {
  let current = initial;
  // An arrow function as the target: callable (sql`…`), with no own `prototype` to pin.
  const target = (() => {}) as unknown as Sql;
  const sql = new Proxy(target, {
    apply: (_t, _this, args: unknown[]) => (current as unknown as (...a: unknown[]) => unknown)(...args),
    get: (_t, prop) => {
      const value: unknown = Reflect.get(current as object, prop);
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(current) : value;
    },
    set: (_t, prop, value) => Reflect.set(current as object, prop, value),
    has: (_t, prop) => Reflect.has(current as object, prop),
  });
  return {
    sql,
    current: () => current,
    swap(next) {
      const old = current;
      current = next;
      return old;
    },
  };
}
