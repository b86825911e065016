// A throw-away Postgres cluster of our own (initdb in a temporary folder, a spare loopback port), so
// chaos can stop and start "the database" without touching a server anyone else uses. Needs the
// server binaries (pg_config --bindir, or /usr/lib/postgresql/<v>/bin). As root, the cluster runs
// as the `postgres` OS user (Postgres refuses to run as root).
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';

export type PrivatePostgres = {
  url: string;
  port: number;
  dataDir: string;
  stop(): void;
  start(): void;
  /** Stops it for good and removes its folder. */
  destroy(): void;
};

function binDir(): string | null {
  const pc = spawnSync('pg_config', ['--bindir'], { encoding: 'utf8' });
  if (pc.status === 0 && existsSync(join(pc.stdout.trim(), 'initdb'))) return pc.stdout.trim();
  const base = '/usr/lib/postgresql';
  if (!existsSync(base)) return null;
  const versions = readdirSync(base).sort((a, b) => Number(b) - Number(a));
  for (const v of versions) if (existsSync(join(base, v, 'bin', 'initdb'))) return join(base, v, 'bin');
  return null;
}

export function privatePostgresAvailable(): boolean {
  return binDir() !== null;
}

export function startPrivatePostgres(port: number): PrivatePostgres {
  const bin = binDir();
  if (!bin) throw new Error('no Postgres server binaries (initdb) found');
  const root = mkdtempSync(join(tmpdir(), 'carteiro-chaos-pg-'));
  const dataDir = join(root, 'data');
  const asRoot = userInfo().uid === 0;
  const run = (cmd: string, args: string[]): void => {
    const full = asRoot ? (['runuser', ['-u', 'postgres', '--', join(bin, cmd), ...args]] as const) : ([join(bin, cmd), args] as const);
    const r = spawnSync(full[0], [...full[1]], { encoding: 'utf8', timeout: 120_000 });
    if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr || r.stdout}`);
  };
  if (asRoot) {
    const pw = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
    const gw = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' });
    if (pw.status !== 0) throw new Error('running as root needs a `postgres` OS user to own the private cluster');
    chownSync(root, Number(pw.stdout.trim()), Number(gw.stdout.trim()));
    chmodSync(root, 0o700);
  }
  run('initdb', ['-D', dataDir, '-U', 'postgres', '-A', 'trust', '--no-sync']);
  writeFileSync(
    join(dataDir, 'postgresql.auto.conf'),
    `port = ${port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '${root}'\nmax_connections = 200\nsynchronous_commit = on\n`,
  );
  const ctl = (action: 'start' | 'stop') =>
    run(
      'pg_ctl',
      action === 'start' ? ['-D', dataDir, '-l', join(root, 'log'), '-w', '-t', '60', 'start'] : ['-D', dataDir, '-m', 'fast', '-w', '-t', '60', 'stop'],
    );
  ctl('start');
  let running = true;
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    dataDir,
    stop() {
      ctl('stop');
      running = false;
    },
    start() {
      ctl('start');
      running = true;
    },
    destroy() {
      if (running) {
        try {
          ctl('stop');
        } catch {
          /* already gone */
        }
      }
      rmSync(root, { recursive: true, force: true });
    },
  };
}
