import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

/**
 * apps/api, found from where this code runs rather than by a fixed number of `..`: src/ and
 * dist/ keep one file per module (src/config/paths.ts, dist/config/paths.js), but `pnpm build`
 * also bundles the API into one file (dist/main.bundle.js), one level higher. The folder that
 * holds drizzle/meta/_journal.json (the migrations) is the API's.
 */
function findApiDir(from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'drizzle', 'meta', '_journal.json')) && existsSync(join(dir, 'package.json'))) return dir;
    if (dirname(dir) === dir) throw new Error(`apps/api not found above ${from} (no drizzle/meta/_journal.json)`);
  }
}

export const API_DIR = findApiDir(__dirname);
/** The monorepo root (apps/api/../..). */
export const REPO_ROOT = resolve(API_DIR, '../..');
export const MIGRATIONS_FOLDER = join(API_DIR, 'drizzle');
