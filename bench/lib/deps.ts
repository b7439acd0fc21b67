/**
 * Third-party modules the benchmarks use. They are dependencies of apps/api (pnpm does not hoist
 * them to the repo root), so they are required from there; the types come from the same place.
 */
import { createRequire } from 'node:module';
import { resolve } from 'node:path';

export const API_DIR = resolve(__dirname, '../../apps/api');
export const REPO_DIR = resolve(__dirname, '../..');
export const BENCH_DIR = resolve(__dirname, '..');

const apiRequire = createRequire(resolve(API_DIR, 'package.json'));

export const autocannon = apiRequire('autocannon') as typeof import('../../apps/api/node_modules/@types/autocannon');
export type AutocannonResult = import('../../apps/api/node_modules/@types/autocannon').Result;
export type AutocannonOptions = import('../../apps/api/node_modules/@types/autocannon').Options;
export type AutocannonRequest = import('../../apps/api/node_modules/@types/autocannon').Request;
export const pg = apiRequire('pg') as typeof import('../../apps/api/node_modules/@types/pg');
export const { sql } = apiRequire('drizzle-orm') as typeof import('../../apps/api/node_modules/drizzle-orm');

/** `node -r <this>` makes a child process run TypeScript the way `pnpm dev` does. */
export const SWC_REGISTER = apiRequire.resolve('@swc-node/register');
