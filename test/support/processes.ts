/** Spawns real Carteiro processes (`carteiro worker`, `carteiro api`) for multi-process tests, and the bench's scripts. */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));

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
  const child = spawn(process.execPath, [script, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  let timedOut = false;
  child.stdout?.on('data', (d) => (output = (output + d).slice(-20_000)));
  child.stderr?.on('data', (d) => (output = (output + d).slice(-20_000)));
  const timer = opts.timeoutMs === undefined ? null : setTimeout(() => { timedOut = true; child.kill('SIGKILL'); }, opts.timeoutMs);
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  if (timer) clearTimeout(timer);
  return { code, output, timedOut };
}
