/**
 * One timer that wakes the claim loop at the earliest moment asked for: a retry falling due, a rate
 * limit's wait ending, a batch filling. A little after it (`padMs`), so the write that makes the work
 * visible has committed.
 */
export type WakeTimer = { at(time: number): void; clear(): void };

export function createWakeTimer(wake: () => void, padMs: number): WakeTimer {
  let pending: { at: number; timer: NodeJS.Timeout } | null = null;
  return {
    at(time) {
      if (pending && pending.at <= time) return;
      if (pending) clearTimeout(pending.timer);
      const timer = setTimeout(
        () => {
          pending = null;
          wake();
        },
        Math.max(0, time - Date.now()) + padMs,
      );
      timer.unref();
      pending = { at: time, timer };
    },
    clear() {
      if (pending) clearTimeout(pending.timer);
      pending = null;
    },
  };
}
