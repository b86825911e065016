/**
 * Runs background jobs: on BullMQ when Redis is configured (shared by every process, survives a
 * restart of the one that enqueued), in-process otherwise. Both honour the same catalogue.
 */
import { randomUUID } from 'node:crypto';
import { Queue, Worker, type Job } from 'bullmq';
import type { Logger } from 'pino';
import type { JobCatalog, JobHandler, JobName, JobState } from './job-catalog.ts';
import { connectRedis } from '../coordination/redis.ts';

export type JobRunner = {
  register<N extends JobName>(name: N, handler: JobHandler<N>): void;
  enqueue<N extends JobName>(name: N, payload: JobCatalog[N]['payload'], opts?: { repeatEveryMs?: number }): Promise<{ id: string }>;
  /** Stops a job that `enqueue` scheduled to repeat (with Redis the schedule outlives processes: a later start with the job turned off must remove it). */
  unschedule(name: JobName): Promise<void>;
  get(id: string): Promise<JobState | undefined>;
  /** Start executing jobs in this process. API-only processes enqueue and never call this. */
  startProcessing(): Promise<void>;
  close(): Promise<void>;
};

const KEEP_FINISHED_JOBS_SECONDS = 24 * 3600;

export function createBullmqJobRunner(redisUrl: string, prefix: string, log: Logger): JobRunner {
  const connection = connectRedis(redisUrl, { forBullmq: true });
  // The hash tag keeps all of a queue's keys in one Redis Cluster slot.
  const bullPrefix = `{${prefix}}`;
  const queue = new Queue('carteiro-jobs', { connection, prefix: bullPrefix });
  queue.on('error', (err) => log.warn({ err }, 'job queue error'));
  const handlers = new Map<JobName, JobHandler<JobName>>();
  let worker: Worker | null = null;
  let workerConnection: ReturnType<typeof connectRedis> | null = null;

  return {
    register(name, handler) {
      handlers.set(name, handler as unknown as JobHandler<JobName>);
    },
    async enqueue(name, payload, opts) {
      const jobOpts = {
        removeOnComplete: { age: KEEP_FINISHED_JOBS_SECONDS },
        removeOnFail: { age: KEEP_FINISHED_JOBS_SECONDS },
        attempts: 3,
        backoff: { type: 'exponential', delay: 1000 },
      };
      if (opts?.repeatEveryMs) {
        await queue.upsertJobScheduler(`${name}-schedule`, { every: opts.repeatEveryMs }, { name, data: payload, opts: jobOpts });
        return { id: `${name}-schedule` };
      }
      const job = await queue.add(name, payload, { ...jobOpts, jobId: randomUUID() });
      return { id: job.id as string };
    },
    async unschedule(name) {
      await queue.removeJobScheduler(`${name}-schedule`);
    },
    async get(id) {
      // State first, then the job: the job finishing between the two reads would otherwise pair
      // "completed" with the hash read before it, which has no result yet. BullMQ writes a job's
      // state and its result in one script, so a hash read after the state has both.
      const state = await queue.getJobState(id);
      const job = await queue.getJob(id);
      if (!job) return undefined;
      return {
        id,
        name: job.name as JobName,
        payload: job.data,
        state: (['waiting', 'active', 'completed', 'failed', 'delayed'].includes(state) ? state : 'unknown') as JobState['state'],
        progress: job.progress,
        result: job.returnvalue ?? null,
        error: job.failedReason ?? null,
      };
    },
    async startProcessing() {
      // BullMQ does not close connections it was handed, so this one is kept to be closed here.
      workerConnection = connectRedis(redisUrl, { forBullmq: true });
      worker = new Worker(
        'carteiro-jobs',
        async (job: Job) => {
          const handler = handlers.get(job.name as JobName);
          if (!handler) throw new Error(`no handler for job ${job.name}`);
          const resumed = job.attemptsMade > 0 && typeof job.progress === 'object' && job.progress !== null ? (job.progress as Record<string, unknown>) : null;
          return handler(job.data, { progress: (p) => job.updateProgress(p), resumed });
        },
        { connection: workerConnection, prefix: bullPrefix, concurrency: 2 },
      );
      worker.on('failed', (job, err) => log.error({ err, job: job?.name }, 'background job failed'));
      worker.on('error', (err) => log.warn({ err }, 'job worker error'));
    },
    async close() {
      await worker?.close();
      await queue.close();
      workerConnection?.disconnect();
      connection.disconnect();
    },
  };
}

export function createLocalJobRunner(log: Logger): JobRunner {
  const handlers = new Map<JobName, JobHandler<JobName>>();
  const jobs = new Map<string, JobState>();
  const timers = new Map<JobName, NodeJS.Timeout>();
  let processing = false;
  const backlog: { id: string; name: JobName; payload: unknown }[] = [];

  async function run(id: string, name: JobName, payload: unknown): Promise<void> {
    const state = jobs.get(id) as JobState;
    const handler = handlers.get(name);
    state.state = 'active';
    try {
      if (!handler) throw new Error(`no handler for job ${name}`);
      state.result = await handler(payload as never, { progress: async (p) => void (state.progress = p), resumed: null });
      state.state = 'completed';
    } catch (err) {
      state.state = 'failed';
      state.error = (err as Error).message;
      log.error({ err, job: name }, 'background job failed');
    }
  }

  function schedule(id: string, name: JobName, payload: unknown): void {
    jobs.set(id, { id, name, payload, state: 'waiting', progress: 0, result: null, error: null });
    if (processing) setImmediate(() => void run(id, name, payload));
    else backlog.push({ id, name, payload });
  }

  return {
    register(name, handler) {
      handlers.set(name, handler as unknown as JobHandler<JobName>);
    },
    async enqueue(name, payload, opts) {
      if (opts?.repeatEveryMs) {
        clearInterval(timers.get(name));
        const t = setInterval(() => schedule(randomUUID(), name, payload), opts.repeatEveryMs);
        t.unref();
        timers.set(name, t);
        return { id: `${name}-schedule` };
      }
      const id = randomUUID();
      schedule(id, name, payload);
      return { id };
    },
    async get(id) {
      return jobs.get(id);
    },
    async unschedule(name) {
      clearInterval(timers.get(name));
      timers.delete(name);
    },
    async startProcessing() {
      processing = true;
      for (const j of backlog.splice(0)) setImmediate(() => void run(j.id, j.name, j.payload));
    },
    async close() {
      timers.forEach((t) => clearInterval(t));
    },
  };
}
