/**
 * An exclusive lock on the embedded data folder. PGlite does not refuse a second instance on a folder
 * another one has open: two of them abort, or worse, write over each other's files, and the second
 * used to delete the first one's socket. So whoever opens the embedded ledger first takes this lock;
 * everyone else is refused with the holder's PID until it is released.
 *
 * The lock is a file, `carteiro.lock`, holding the holder's PID. It is written whole beside its final
 * name and then hard-linked into place, which fails if the name exists: the lock is never seen
 * half-written, and of two processes starting at once exactly one gets it. A lock whose PID no longer
 * runs (kill -9, a crash, a power cut) is stale and is taken over instead of blocking for ever.
 */
import { linkSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';

export const LOCK_FILE = 'carteiro.lock';

type Holder = { pid: number; command: string; since: string; token: string };

/** The data folder is held by a running process; the message names it and says what to do. */
export class DataFolderInUseError extends Error {
  readonly pid: number;
  readonly dir: string;
  constructor(dir: string, holder: Holder) {
    super(
      `the data folder ${dir} is in use by PID ${holder.pid}${holder.pid === process.pid ? ' (this very process)' : ''}` +
        ` (carteiro ${holder.command || 'start'}, since ${holder.since}). Embedded PGlite allows one process per data folder:` +
        ` stop that process first, or use the running server's API. If no such process runs, delete ${join(dir, LOCK_FILE)}.`,
    );
    this.name = 'DataFolderInUseError';
    this.dir = dir;
    this.pid = holder.pid;
  }
}

export type DataFolderLock = { release(): void };

/** Locks this process holds, by lock path: a second open in the same process is refused too. */
const held = new Map<string, string>();

/** Takes the lock on `dir` (which must exist) or throws DataFolderInUseError. */
export function lockDataFolder(dir: string): DataFolderLock {
  const path = join(dir, LOCK_FILE);
  const ownToken = held.get(path);
  if (ownToken) throw new DataFolderInUseError(dir, readHolder(path) ?? { pid: process.pid, command: '', since: 'now', token: ownToken });
  const me: Holder = { pid: process.pid, command: process.argv.slice(2).join(' '), since: new Date().toISOString(), token: randomUUID() };
  // A few rounds: each failed one either refuses (a live holder) or removes a stale lock and tries again.
  for (let round = 0; round < 5; round++) {
    if (tryCreate(path, me)) {
      held.set(path, me.token);
      return {
        release() {
          if (held.get(path) !== me.token) return;
          held.delete(path);
          // Only our own lock: never one a later process took over after ours was judged stale.
          if (readHolder(path)?.token === me.token) unlinkQuietly(path);
        },
      };
    }
    const holder = readHolder(path);
    if (holder && isRunning(holder.pid)) throw new DataFolderInUseError(dir, holder);
    removeStale(path, holder);
  }
  throw new Error(`could not lock the data folder ${dir}: its lock file ${path} keeps changing`);
}

function tryCreate(path: string, me: Holder): boolean {
  const draft = `${path}.${me.token}`;
  writeFileSync(draft, JSON.stringify(me) + '\n', { mode: 0o600 });
  try {
    linkSync(draft, path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  } finally {
    unlinkQuietly(draft);
  }
}

/** The holder recorded in the lock; null when it vanished meanwhile or is not a lock we wrote. */
function readHolder(path: string): Holder | null {
  try {
    const h = JSON.parse(readFileSync(path, 'utf8')) as Partial<Holder>;
    return typeof h.pid === 'number' && typeof h.token === 'string' ? (h as Holder) : null;
  } catch {
    return null;
  }
}

/**
 * Whether `pid` is a running process. Our own PID counts as not running: this process holds no lock
 * there (see `held`), so the lock was left by an earlier process that had our PID (a container
 * restarted, where the server is always PID 1).
 */
function isRunning(pid: number): boolean {
  if (pid === process.pid || !Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it runs, as another user.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes the stale lock judged from `seen`, and only that one: it is first moved aside, and if what
 * was moved turns out to be a newer lock (another process took the stale one over in between), it is
 * put back for the next round to refuse on.
 */
function removeStale(path: string, seen: Holder | null): void {
  const aside = `${path}.stale.${randomUUID()}`;
  try {
    renameSync(path, aside);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  const moved = readHolder(aside);
  if (moved && moved.token !== seen?.token) {
    try {
      linkSync(aside, path);
    } catch {
      // A third process locked meanwhile: its lock stands, and the next round sees it.
    }
  }
  unlinkQuietly(aside);
}

function unlinkQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // Already gone.
  }
}
