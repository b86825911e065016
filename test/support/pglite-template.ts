/**
 * A migrated PGlite data folder to copy, so an embedded test instance starts from a ledger that is
 * already there instead of running initdb and every migration itself (7-10 s of WASM per instance on
 * a 2-core machine, against well under a second for a copy).
 *
 * The template is built once per content: its folder name is a hash of everything that shapes it (the
 * migrations, the code that opens and migrates the ledger, the PGlite version, the schema name), under
 * os.tmpdir(). It is built by a child process into a scratch folder and renamed into place, so a
 * template folder that exists is complete; a lock file makes two test processes that need it at once
 * build it once (the second one waits). A changed migration makes a new hash and a fresh build.
 *
 * Functions in the ledger pin `search_path` to the schema they were created in, so a copied ledger
 * cannot be renamed to another schema: instances started from the template all use TEMPLATE_SCHEMA,
 * each in its own folder.
 */
import { closeSync, cpSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, unlinkSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const TEMPLATE_SCHEMA = 't_template';

const SRC = fileURLToPath(new URL('../../src/', import.meta.url));
const BUILDER = fileURLToPath(new URL('./build-pglite-template.ts', import.meta.url));
const PGLITE_PACKAGE = fileURLToPath(new URL('../../node_modules/@electric-sql/pglite/package.json', import.meta.url));

function templateKey(): string {
  const hash = createHash('sha256');
  const migrations = join(SRC, 'ledger', 'migrations');
  for (const file of readdirSync(migrations).sort()) hash.update(file).update(readFileSync(join(migrations, file)));
  for (const file of ['ledger/migrate.ts', 'ledger/connection.ts']) hash.update(file).update(readFileSync(join(SRC, file)));
  hash.update(readFileSync(PGLITE_PACKAGE)).update(TEMPLATE_SCHEMA).update(readFileSync(BUILDER));
  return hash.digest('hex').slice(0, 16);
}

/** 'migrated': the ledger in TEMPLATE_SCHEMA, every migration applied. 'blank': a database just created, for tests of a first migration. */
export type TemplateKind = 'migrated' | 'blank';

const cached = new Map<TemplateKind, string>();

/** The template's folder (its `pglite/` is the database), built first if needed. */
export function pgliteTemplate(kind: TemplateKind = 'migrated'): string {
  const known = cached.get(kind);
  if (known) return known;
  const root = join(tmpdir(), 'carteiro-test-templates');
  const final = join(root, `${kind}-${templateKey()}`);
  if (!existsSync(final)) {
    mkdirSync(root, { recursive: true });
    const lock = acquire(`${final}.lock`, () => existsSync(final));
    try {
      if (!existsSync(final)) build(final, kind === 'migrated' ? TEMPLATE_SCHEMA : '-');
    } finally {
      lock?.();
    }
  }
  cached.set(kind, final);
  return final;
}

/** Puts a copy of a template's database into `dataDir` (created if needed) as its `pglite/`. */
export function copyTemplateInto(dataDir: string, kind: TemplateKind = 'migrated'): void {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  cpSync(join(pgliteTemplate(kind), 'pglite'), join(dataDir, 'pglite'), { recursive: true });
}

function build(final: string, schema: string): void {
  const scratch = `${final}.build-${process.pid}`;
  rmSync(scratch, { recursive: true, force: true });
  try {
    // A child process: the caller may be synchronous (testEnv), and the child's PGlite is closed
    // cleanly, with everything on disk, once it exits.
    execFileSync(process.execPath, [BUILDER, scratch, schema], { stdio: ['ignore', 'ignore', 'inherit'] });
    renameSync(scratch, final);
  } catch (err) {
    rmSync(scratch, { recursive: true, force: true });
    if (!existsSync(final)) throw err;
  }
}

/**
 * An exclusive lock file holding the holder's PID; waits while another live process holds it (or
 * until `done()`), takes over one whose holder is gone. Returns its release, or null when `done()`.
 */
function acquire(path: string, done: () => boolean): (() => void) | null {
  const pause = new Int32Array(new SharedArrayBuffer(4));
  for (;;) {
    try {
      const fd = openSync(path, 'wx');
      writeSync(fd, String(process.pid));
      closeSync(fd);
      return () => rmSync(path, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    if (done()) return null;
    const pid = Number(readQuietly(path));
    if (pid > 0 && !running(pid)) {
      try {
        unlinkSync(path);
      } catch {
        /* someone else took it over first */
      }
      continue;
    }
    Atomics.wait(pause, 0, 0, 200);
  }
}

function readQuietly(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
