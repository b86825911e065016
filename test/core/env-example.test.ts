/**
 * `.env.example` copied to `.env` must leave the embedded default running (no DATABASE_URL), and
 * name only variables Carteiro reads: a newcomer's first `cp .env.example .env && npm start`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFile, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { CONFIG_VARIABLES } from '../../src/config/config.ts';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const EXAMPLE = join(ROOT, '.env.example');

/** Every NAME= line, commented out or not. */
function namedVariables(text: string): { name: string; set: boolean }[] {
  return [...text.matchAll(/^(#\s*)?([A-Z][A-Z0-9_]*)=/gm)].map((m) => ({ name: m[2] as string, set: m[1] === undefined }));
}

test('.env.example names only variables config.ts reads, and sets none that leave the embedded default', async () => {
  const vars = namedVariables(await readFile(EXAMPLE, 'utf8'));
  assert.ok(vars.length > 20, 'the parser found the variables');
  const known = new Set(CONFIG_VARIABLES);
  assert.deepEqual(
    vars.filter((v) => !known.has(v.name)).map((v) => v.name),
    [],
    'variables Carteiro does not read',
  );
  const set = vars.filter((v) => v.set).map((v) => v.name);
  for (const name of ['DATABASE_URL', 'REDIS_URL', 'CARTEIRO_ADMIN_KEY', 'CARTEIRO_ENCRYPTION_KEYS', 'N8N_WEBHOOK_URL', 'N8N_API_URL']) {
    assert.ok(!set.includes(name), `${name} is set`);
  }
});

test('.env.example names no host but example.com and loopback', async () => {
  const text = await readFile(EXAMPLE, 'utf8');
  const hosts = [...text.matchAll(/[a-z]+:\/\/(?:[^@/\s]*@)?([^:/\s"]+)/g)].map((m) => m[1] as string);
  assert.ok(hosts.length > 0);
  assert.deepEqual(
    hosts.filter((h) => h !== '127.0.0.1' && h !== 'localhost' && !/(^|\.)example\.com$/.test(h)),
    [],
  );
});

test('cp .env.example .env: the loader and loadConfig give the embedded default', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'carteiro-env-'));
  try {
    await copyFile(EXAMPLE, join(dir, '.env'));
    // As `npm start` does: the loader first (it reads ./.env of the working directory), then loadConfig.
    const script = `
      const { loadConfig } = await import(${JSON.stringify(join(ROOT, 'src/config/config.ts'))});
      const c = loadConfig();
      console.log(JSON.stringify({ loaded: process.env.CARTEIRO_DATA_DIR ?? null, database: c.database, redis: c.redis.url ?? null, n8n: c.n8n.webhookUrl ?? null, host: c.http.host, port: c.http.port }));`;
    const { stdout, stderr } = await run(process.execPath, ['--import', join(ROOT, 'src/config/dotenv.ts'), '--input-type=module', '-e', script], {
      cwd: dir,
      env: { PATH: process.env.PATH ?? '' },
      timeout: 60_000,
    });
    assert.equal(stderr, '');
    const out = JSON.parse(stdout) as {
      loaded: string | null;
      database: { url?: string; dataDir: string };
      redis: string | null;
      n8n: string | null;
      host: string;
      port: number;
    };
    assert.equal(out.loaded, '.carteiro-data', 'the file was read');
    assert.equal(out.database.url, undefined, 'no DATABASE_URL: embedded PGlite');
    assert.equal(out.database.dataDir, '.carteiro-data');
    assert.equal(out.redis, null);
    assert.equal(out.n8n, null);
    assert.deepEqual([out.host, out.port], ['127.0.0.1', 3000]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
