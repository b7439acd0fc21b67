import { PGlite } from '@electric-sql/pglite';
import { drizzle } from 'drizzle-orm/pglite';
import { migrate } from 'drizzle-orm/pglite/migrator';
import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
  constants,
  promises as fsp,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { API_DIR, MIGRATIONS_FOLDER } from '../config/paths';

/**
 * A pre-migrated PGlite database, made once per install (`postinstall`) and by `pnpm build`, in
 * two forms:
 *   - a data directory, cleanly shut down: a first start on an empty DATA_DIR copies it (about
 *     1,000 files, 40 MB, copied in parallel off the main thread) and opens it as a restart would,
 *     instead of running initdb and every migration (1.3-3 s) or unpacking the tarball into
 *     PGlite's file system (about 0.8 s more than the copy);
 *   - a tarball of the same database, for in-memory databases (tests without DATABASE_URL), which
 *     PGlite can only load from a tarball (`loadDataDir`).
 * Keyed by the PGlite version and the migrations, so a stale template is never used (the server
 * then starts the slow way, and `migrate()` runs as always).
 */
const CACHE_DIR = join(API_DIR, 'node_modules', '.cache', 'smartduka');

let key: string | undefined;
function templateKey(): string {
  if (key) return key;
  const h = createHash('sha256');
  const pkg = JSON.parse(
    readFileSync(join(API_DIR, 'node_modules', '@electric-sql', 'pglite', 'package.json'), 'utf8'),
  ) as { version: string };
  h.update(`pglite@${pkg.version}\n`);
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const p = join(dir, name.name);
      if (name.isDirectory()) walk(p);
      else h.update(`${p.slice(MIGRATIONS_FOLDER.length)}\n`).update(readFileSync(p));
    }
  };
  walk(MIGRATIONS_FOLDER);
  return (key = h.digest('hex').slice(0, 16));
}

export function pgliteTemplatePath(): string {
  return join(CACHE_DIR, `pglite-${templateKey()}.tar`);
}

/** The template as a data directory (a folder holding PG_VERSION). */
export function pgliteTemplateDir(): string {
  return join(CACHE_DIR, `pglite-${templateKey()}`);
}

/** The tarball template for the current PGlite + migrations, if it was built. */
export function loadPgliteTemplate(): Blob | undefined {
  const path = pgliteTemplatePath();
  return existsSync(path) ? new Blob([readFileSync(path)]) : undefined;
}

/**
 * Builds both templates (a PGlite database in a scratch folder, migrated, dumped to the tarball,
 * closed, then moved into place). Returns the directory's path.
 */
export async function buildPgliteTemplate(): Promise<string> {
  const dir = pgliteTemplateDir();
  const tar = pgliteTemplatePath();
  if (existsSync(join(dir, 'PG_VERSION')) && existsSync(tar)) return dir;
  mkdirSync(CACHE_DIR, { recursive: true });
  const scratch = `${dir}.${process.pid}.tmp`;
  rmSync(scratch, { recursive: true, force: true });
  const db = new PGlite(scratch);
  try {
    await db.waitReady;
    await migrate(drizzle(db), { migrationsFolder: MIGRATIONS_FOLDER });
    // Uncompressed (about 40 MB): loads about 0.4 s faster than the 4.6 MB gzip.
    const dump = await db.dumpDataDir('none');
    writeFileSync(`${tar}.${process.pid}.tmp`, Buffer.from(await dump.arrayBuffer()));
  } finally {
    // A clean shutdown (checkpoint): a copy opens without recovery.
    await db.close();
  }
  // Atomic: a concurrent start never sees half a template.
  renameSync(`${tar}.${process.pid}.tmp`, tar);
  try {
    renameSync(scratch, dir);
  } catch (err) {
    // Another install built it meanwhile.
    rmSync(scratch, { recursive: true, force: true });
    if (!existsSync(join(dir, 'PG_VERSION'))) throw err;
  }
  // Templates of older migrations or PGlite versions (40 MB each, twice) are never used again.
  for (const name of readdirSync(CACHE_DIR))
    if (name.startsWith('pglite-') && !name.startsWith(`pglite-${templateKey()}`))
      rmSync(join(CACHE_DIR, name), { recursive: true, force: true });
  return dir;
}

/** Removes both templates (one that did not open): the next install or build makes them again. */
export function discardPgliteTemplate(): void {
  rmSync(pgliteTemplateDir(), { recursive: true, force: true });
  rmSync(pgliteTemplatePath(), { force: true });
}

/** True when `dir` holds no PGlite cluster yet (the first start). */
export function isEmptyPgliteDir(dir: string): boolean {
  return !existsSync(join(dir, 'PG_VERSION'));
}

/** Copies a folder tree, every file and folder at once (libuv's thread pool does the work; a copy-on-write clone where the file system has them). */
async function copyTree(from: string, to: string): Promise<void> {
  await fsp.mkdir(to, { mode: 0o700 });
  const entries = await fsp.readdir(from, { withFileTypes: true });
  await Promise.all(
    entries.map((e) =>
      e.isDirectory()
        ? copyTree(join(from, e.name), join(to, e.name))
        : fsp.copyFile(join(from, e.name), join(to, e.name), constants.COPYFILE_FICLONE),
    ),
  );
}

/**
 * First start: when `dir` does not exist or is empty and the directory template is built,
 * makes `dir` a copy of it (copied beside it, then renamed into place, so an interrupted copy never
 * leaves a half database behind). Returns whether it did; false leaves `dir` untouched.
 */
export async function seedPgliteDir(dir: string): Promise<boolean> {
  const existing = await fsp.readdir(dir).catch((err: NodeJS.ErrnoException) => {
    ignoreMissing(err);
    return [];
  });
  if (existing.length > 0) return false;
  const template = pgliteTemplateDir();
  if (!existsSync(join(template, 'PG_VERSION'))) return false;
  const scratch = `${dir}.seed-${process.pid}.tmp`;
  await fsp.mkdir(dirname(dir), { recursive: true });
  await fsp.rm(scratch, { recursive: true, force: true });
  try {
    await copyTree(template, scratch);
    await fsp.rmdir(dir).catch(ignoreMissing); // the empty folder, if there is one
    await fsp.rename(scratch, dir);
    return true;
  } catch (err) {
    await fsp.rm(scratch, { recursive: true, force: true }).catch(() => undefined);
    // Another process seeded it first: it is opened as it is.
    if (!isEmptyPgliteDir(dir)) return false;
    throw err;
  }
}

function ignoreMissing(err: NodeJS.ErrnoException): void {
  if (err.code !== 'ENOENT') throw err;
}
