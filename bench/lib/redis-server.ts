// A redis-server of our own on a loopback port (chaos restarts it; the cluster test starts several),
// never the machine's shared one. No persistence; stopped by its own pid.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export type OwnRedis = {
  port: number;
  pid: number;
  url: string;
  dir: string;
  output(): string;
  /** SIGTERM by pid (SIGKILL after 5 s); resolves when it is gone. */
  stop(): Promise<void>;
};

/** Whether `redis-server` runs here, and its version line (null when it does not). */
export function redisServerVersion(): string | null {
  const r = spawnSync('redis-server', ['--version'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : null;
}

export async function startRedisServer(port: number, opts: { extraArgs?: string[]; dir?: string; timeoutMs?: number } = {}): Promise<OwnRedis> {
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), `carteiro-redis-${port}-`));
  const ownDir = opts.dir === undefined;
  const child: ChildProcess = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--protected-mode', 'no', ...(opts.extraArgs ?? [])],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  child.stdout?.on('data', (d) => (out = (out + d).slice(-20_000)));
  child.stderr?.on('data', (d) => (out = (out + d).slice(-20_000)));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  if (child.pid === undefined) throw new Error('could not spawn redis-server');
  const pid = child.pid;
  const deadline = Date.now() + (opts.timeoutMs ?? 10_000);
  while (!(await ping(port))) {
    if (child.exitCode !== null) throw new Error(`redis-server on port ${port} exited:\n${out}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`redis-server on port ${port} did not answer PING:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  return {
    port,
    pid,
    url: `redis://127.0.0.1:${port}`,
    dir,
    output: () => out,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const t = setTimeout(() => child.kill('SIGKILL'), 5_000);
        await exited;
        clearTimeout(t);
      }
      if (ownDir) rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** One PING over a raw socket: true on +PONG. */
export function ping(port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = createConnection({ host: '127.0.0.1', port });
    const done = (v: boolean) => {
      sock.destroy();
      resolve(v);
    };
    sock.setTimeout(timeoutMs, () => done(false));
    sock.once('error', () => done(false));
    sock.once('connect', () => sock.write('PING\r\n'));
    sock.once('data', (d) => done(d.toString().startsWith('+PONG')));
  });
}
