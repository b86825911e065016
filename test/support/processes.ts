/** Spawns real Carteiro processes (`carteiro worker`, `carteiro api`) for multi-process tests, and the bench's scripts. */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** The `carteiro` command as installed (bin/carteiro.js: the compile cache, then src/cli/main.ts). */
const MAIN = fileURLToPath(new URL('../../bin/carteiro.js', import.meta.url));
const COMPILE_CACHE = fileURLToPath(new URL('../../src/cli/compile-cache.ts', import.meta.url));

export type CarteiroProcess = { child: ChildProcess; pid: number; output(): string; kill(signal?: NodeJS.Signals): Promise<number | null> };

export function spawnCarteiro(command: 'worker' | 'api' | 'start', env: Record<string, string>): CarteiroProcess {
  const child = spawn(process.execPath, [MAIN, command], {
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout?.on('data', (d) => (out = (out + d).slice(-20_000)));
  child.stderr?.on('data', (d) => (out = (out + d).slice(-20_000)));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return {
    child,
    pid: child.pid as number,
    output: () => out,
    async kill(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

/**
 * Runs a Node script (e.g. bench/run.ts) to its end: its exit code and the last 20 kB it printed. With
 * `timeoutMs`, a script still running then is killed (so a hung run fails its test instead of
 * outliving it) and `timedOut` is set.
 */
export async function runScript(
  script: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  opts: { timeoutMs?: number } = {},
): Promise<{ code: number | null; output: string; timedOut: boolean }> {
  // With the compile cache, as the npm scripts run them (src/cli/compile-cache.ts).
  const child = spawn(process.execPath, ['--import', COMPILE_CACHE, script, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  let timedOut = false;
  child.stdout?.on('data', (d) => (output = (output + d).slice(-20_000)));
  child.stderr?.on('data', (d) => (output = (output + d).slice(-20_000)));
  const timer =
    opts.timeoutMs === undefined
      ? null
      : setTimeout(() => {
          timedOut = true;
          child.kill('SIGKILL');
        }, opts.timeoutMs);
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  if (timer) clearTimeout(timer);
  return { code, output, timedOut };
}

/**
 * Runs one `carteiro …` command to its end (fed `input` on standard input, if given): exit code, stdout and stderr. A command still running
 * after `timeoutMs` is killed and reported with `timedOut` (a `--help` that started a server, say).
 */
export async function runCarteiro(
  args: string[],
  env: Record<string, string>,
  opts: { timeoutMs?: number; input?: string } = {},
): Promise<{ code: number | null; stdout: string; stderr: string; timedOut: boolean }> {
  const child = spawn(process.execPath, [MAIN, ...args], {
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
    stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
  });
  // Given input goes to its standard input, then end of file.
  if (opts.input !== undefined) child.stdin?.end(opts.input);
  let stdout = '';
  let stderr = '';
  let timedOut = false;
  child.stdout?.on('data', (d) => (stdout = (stdout + d).slice(-50_000)));
  child.stderr?.on('data', (d) => (stderr = (stderr + d).slice(-50_000)));
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, opts.timeoutMs ?? 60_000);
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  clearTimeout(timer);
  return { code, stdout, stderr, timedOut };
}

/** A TCP port nothing listens on right now (the OS picks it), for a spawned server. */
export async function freePort(): Promise<number> {
  const { createServer } = await import('node:net');
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
