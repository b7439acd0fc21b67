import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

/**
 * One process at a time on an embedded PGlite data directory. PGlite is postgres in single-user
 * mode: nothing stops a second process (a second `pnpm start` or `pnpm dev` on another PORT, a CLI
 * such as `pnpm statement` while the server runs) from opening the same folder, and two of them
 * each keep their own view and write over each other's files (split brain, then a corrupt
 * database). So the folder is claimed with a lock file beside it (`<dir>.lock`, holding the
 * owner's pid) before it is seeded or opened, and given up when the database is closed or the
 * process exits. A lock whose process is gone (a crash, SIGKILL) is taken over.
 */
export class PgliteDirInUseError extends Error {
  constructor(
    readonly dir: string,
    readonly pid: number,
  ) {
    super(
      `The embedded database in ${dir} is in use by process ${pid} (another pnpm start / pnpm dev, or a CLI): ` +
        `PGlite is for one process. Stop that process, give this one another DATA_DIR, or set DATABASE_URL ` +
        `to share a Postgres. (If process ${pid} is not SmartDuka, delete ${lockPathFor(dir)}.)`,
    );
    this.name = 'PgliteDirInUseError';
  }
}

export function lockPathFor(dir: string): string {
  return `${dir.replace(/[\\/]+$/, '')}.lock`;
}

/** Directories this process holds (a second open in the same process is refused too). */
const held = new Set<string>();

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists, owned by someone else.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Claims `dir` for this process; returns the function that gives it up (idempotent). */
export function lockPgliteDir(dir: string): () => void {
  const path = lockPathFor(dir);
  if (held.has(path)) throw new PgliteDirInUseError(dir, process.pid);
  mkdirSync(dirname(path), { recursive: true });
  for (let attempt = 0; ; attempt++) {
    try {
      writeFileSync(path, `${process.pid}\n`, { flag: 'wx', mode: 0o600 });
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || attempt >= 3) throw err;
    }
    let owner: number;
    try {
      owner = Number.parseInt(readFileSync(path, 'utf8'), 10);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue; // given up meanwhile
      throw err;
    }
    // The pid of a process that is gone, or this process's own pid from an earlier life (a
    // container's pid 1 after a restart): a stale lock.
    if (Number.isInteger(owner) && owner > 0 && owner !== process.pid && alive(owner))
      throw new PgliteDirInUseError(dir, owner);
    rmSync(path, { force: true });
  }
  held.add(path);
  let released = false;
  const release = () => {
    if (released) return;
    released = true;
    held.delete(path);
    process.removeListener('exit', release);
    try {
      if (Number.parseInt(readFileSync(path, 'utf8'), 10) === process.pid) rmSync(path, { force: true });
    } catch {
      // already gone
    }
  };
  process.once('exit', release);
  return release;
}
