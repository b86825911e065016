/**
 * A worker thread's CPU time so far (user + system, ms), read from outside it: it answers even while
 * the thread spins. Deadlines for untrusted work (transformations, costly schemas) count this, not
 * the wall clock, so a loaded machine, where the thread waits for a core, does not stop work that
 * still had time. null when the thread cannot say (it is gone).
 */
import type { Worker } from 'node:worker_threads';

export async function threadCpuMs(worker: Worker): Promise<number | null> {
  try {
    const u = await worker.cpuUsage();
    return (u.user + u.system) / 1000;
  } catch {
    return null;
  }
}
