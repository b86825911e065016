/**
 * A watchdog on a worker thread's CPU time (user + system), read from outside it: it answers even
 * while the thread spins. Deadlines for untrusted work (transformations, costly schemas) count this,
 * not the wall clock, so a loaded machine, where the thread waits for a core, does not stop work that
 * still had time.
 */
import type { Worker } from 'node:worker_threads';

/** The thread's CPU time so far (ms); null when it cannot say (it is gone). */
async function workerCpuMs(worker: Worker): Promise<number | null> {
  try {
    const u = await worker.cpuUsage();
    return (u.user + u.system) / 1000;
  } catch {
    return null;
  }
}

export type CpuWatch = { cancel(): void };

/**
 * Calls `exceeded` once, when `worker` has spent `cpuMs` of CPU time from now, or `wallMs` have passed
 * on the wall clock (the backstop: a thread whose CPU time cannot be read counts none). Nothing is
 * read before the budget could be spent; then the thread is read again once the rest of its budget
 * could be (at least `recheckMs` later). `cancel` when the work ended first.
 */
export function watchThreadCpu(worker: Worker, limits: { cpuMs: number; wallMs: number; recheckMs: number }, exceeded: (usedMs: number) => void): CpuWatch {
  const startedAt = performance.now();
  const cpuAtStart = workerCpuMs(worker);
  let timer: NodeJS.Timeout | null = null;
  let cancelled = false;
  const arm = (ms: number) => {
    timer = setTimeout(() => void check(), ms);
    timer.unref();
  };
  const check = async () => {
    const [before, now] = await Promise.all([cpuAtStart, workerCpuMs(worker)]);
    if (cancelled) return;
    const usedMs = before === null || now === null ? 0 : now - before;
    if (usedMs >= limits.cpuMs || performance.now() - startedAt >= limits.wallMs) exceeded(usedMs);
    else arm(Math.max(limits.recheckMs, limits.cpuMs - usedMs));
  };
  arm(limits.cpuMs);
  return {
    cancel() {
      cancelled = true;
      if (timer) clearTimeout(timer);
    },
  };
}
