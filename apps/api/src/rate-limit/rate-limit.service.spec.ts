import { Logger } from '@nestjs/common';
import type { Pool } from 'pg';
import { AppError } from '../common/errors';
import { loadConfig } from '../config/app-config';
import type { DatabaseHandle } from '../database/database';
import { PhoneBusyError, ShopRateLimitedError } from './rate-limit.errors';
import { RateLimitService, resolveStoreKind } from './rate-limit.service';

const PHONE_A = '254712345678';
const PHONE_B = '254712345679';

function config(env: Record<string, string>) {
  return loadConfig({ NODE_ENV: 'test', CALLBACK_SIGNING_SECRET: 'c'.repeat(40), ...env });
}

async function service(
  env: Record<string, string>,
  database: Pick<DatabaseHandle, 'kind' | 'pool'> = { kind: 'pglite' },
): Promise<RateLimitService> {
  const svc = new RateLimitService(config(env), database);
  await svc.onModuleInit();
  return svc;
}

async function refusal(p: Promise<unknown>): Promise<AppError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof AppError) return err;
    throw err;
  }
  throw new Error('expected a 429');
}

/** A pg Pool whose DDL works and whose every limiter query fails (Postgres gone after boot). */
function failingPool(): { pool: Pool; queries: string[] } {
  const queries: string[] = [];
  const pool = {
    connect: async () => ({ query: async (q: string) => (queries.push(q), { rows: [] }), release: () => undefined }),
    query: async () => {
      throw Object.assign(new Error('Connection terminated unexpectedly'), { code: '57P01' });
    },
  };
  return { pool: pool as unknown as Pool, queries };
}

beforeEach(() => jest.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined));
afterEach(() => jest.restoreAllMocks());

describe('RateLimitService (memory store)', () => {
  it('is off when both limits are 0 (the NODE_ENV=test default)', async () => {
    const svc = await service({});
    expect(svc.enabled).toBe(false);
    for (let i = 0; i < 5; i++) await expect(svc.reserve('shop-1', PHONE_A)).resolves.toEqual([]);
  });

  it('refuses the second prompt to a phone inside its window with PHONE_BUSY, Retry-After and a readable message', async () => {
    const svc = await service({ RATE_LIMIT_PHONE_PER_WINDOW: '1', RATE_LIMIT_PHONE_WINDOW_SECONDS: '30' });
    expect(svc.store).toBe('memory');
    await svc.reserve('shop-1', PHONE_A);
    const err = await refusal(svc.reserve('shop-1', PHONE_A));
    expect(err).toBeInstanceOf(PhoneBusyError);
    expect(err.statusCode).toBe(429);
    expect(err.code).toBe('PHONE_BUSY');
    const retryAfter = Number(err.headers?.['Retry-After']);
    expect(Number.isInteger(retryAfter)).toBe(true);
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(30);
    expect(err.message).toBe(
      `This phone already has an M-Pesa prompt open (sent less than 30 s ago): ask the customer to answer it on their phone, or try again in ${retryAfter} s`,
    );
    expect(err.details).toEqual({ retryAfterSeconds: retryAfter, limit: 1, windowSeconds: 30 });
    expect(JSON.stringify(err.details) + err.message).not.toContain('712345678');
    // another phone, and the same phone in another shop's name, are separate... the phone is the phone:
    await expect(svc.reserve('shop-1', PHONE_B)).resolves.toHaveLength(1);
    await expect(refusal(svc.reserve('shop-2', PHONE_A))).resolves.toBeInstanceOf(PhoneBusyError);
  });

  it('refuses a shop over its per-minute limit with RATE_LIMITED_SHOP; other shops are not affected', async () => {
    const svc = await service({ RATE_LIMIT_SHOP_PER_MINUTE: '2' });
    await svc.reserve('shop-1', PHONE_A);
    await svc.reserve('shop-1', PHONE_B);
    const err = await refusal(svc.reserve('shop-1', '254712345670'));
    expect(err).toBeInstanceOf(ShopRateLimitedError);
    expect(err).toMatchObject({ statusCode: 429, code: 'RATE_LIMITED_SHOP', details: { limit: 2, windowSeconds: 60 } });
    const retryAfter = Number(err.headers?.['Retry-After']);
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect(err.message).toBe(
      `This shop has sent too many M-Pesa requests (limit 2 a minute); try again in ${retryAfter} s`,
    );
    await expect(svc.reserve('shop-2', PHONE_A)).resolves.toHaveLength(1);
  });

  it('gives points back on release', async () => {
    const svc = await service({
      RATE_LIMIT_SHOP_PER_MINUTE: '1',
      RATE_LIMIT_PHONE_PER_WINDOW: '1',
      RATE_LIMIT_PHONE_WINDOW_SECONDS: '3600',
    });
    const holds = await svc.reserve('shop-1', PHONE_A);
    expect(holds.map((h) => h.limit)).toEqual(['shop', 'phone']);
    expect(holds.map((h) => h.key).join()).not.toContain('712345678');
    await svc.release(holds);
    await expect(svc.reserve('shop-1', PHONE_A)).resolves.toHaveLength(2);
  });

  it('a refused request leaves nothing taken: a busy phone gives the shop point back, and its own over-count is undone', async () => {
    const svc = await service({
      RATE_LIMIT_SHOP_PER_MINUTE: '2',
      RATE_LIMIT_PHONE_PER_WINDOW: '1',
      RATE_LIMIT_PHONE_WINDOW_SECONDS: '3600',
    });
    const first = await svc.reserve('shop-1', PHONE_A);
    // Refused on the phone: the shop point it took is returned, so shop-1 still has 1 left.
    await expect(refusal(svc.reserve('shop-1', PHONE_A))).resolves.toBeInstanceOf(PhoneBusyError);
    await expect(refusal(svc.reserve('shop-1', PHONE_A))).resolves.toBeInstanceOf(PhoneBusyError);
    // The first request turns out not to send a prompt: the phone is free again at once
    // (the two refused attempts did not leave the counter above the limit).
    await svc.release(first);
    const second = await svc.reserve('shop-1', PHONE_A);
    expect(second).toHaveLength(2);
    await expect(svc.reserve('shop-1', PHONE_B)).resolves.toHaveLength(2);
    await expect(refusal(svc.reserve('shop-1', '254712345670'))).resolves.toBeInstanceOf(ShopRateLimitedError);
  });

  it('refuses RATE_LIMIT_STORE=postgres on the embedded PGlite database at boot', async () => {
    const svc = new RateLimitService(
      config({
        RATE_LIMIT_STORE: 'postgres',
        DATABASE_URL: 'postgres://x@127.0.0.1/db',
        RATE_LIMIT_PHONE_PER_WINDOW: '1',
      }),
      { kind: 'pglite' },
    );
    await expect(svc.onModuleInit()).rejects.toThrow(/RATE_LIMIT_STORE=postgres needs the app to run on Postgres/);
  });

  it('auto picks Postgres on Postgres and memory on PGlite; explicit choices win', () => {
    expect(resolveStoreKind('auto', 'postgres')).toBe('postgres');
    expect(resolveStoreKind('auto', 'pglite')).toBe('memory');
    expect(resolveStoreKind('memory', 'postgres')).toBe('memory');
    expect(resolveStoreKind('postgres', 'postgres')).toBe('postgres');
  });
});

describe('RateLimitService (Postgres store failing)', () => {
  it('creates its table under an advisory lock at boot, then never issues DDL through the limiter', async () => {
    const { pool, queries } = failingPool();
    await service({ RATE_LIMIT_PHONE_PER_WINDOW: '1' }, { kind: 'postgres', pool });
    expect(queries[0]).toBe('begin');
    expect(queries[1]).toMatch(/pg_advisory_xact_lock/);
    expect(queries[2]).toMatch(/create table if not exists rate_limit_counters/);
    expect(queries[3]).toBe('commit');
  });

  it('fails open to per-instance memory counting, logs one warning per minute without the phone, and still limits', async () => {
    const warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const { pool } = failingPool();
    const svc = await service(
      { RATE_LIMIT_PHONE_PER_WINDOW: '1', RATE_LIMIT_PHONE_WINDOW_SECONDS: '3600' },
      { kind: 'postgres', pool },
    );
    expect(svc.store).toBe('postgres');

    const holds = await svc.reserve('shop-1', PHONE_A);
    expect(holds).toHaveLength(1);
    // counted in memory meanwhile: the same phone is still refused on this instance
    await expect(refusal(svc.reserve('shop-1', PHONE_A))).resolves.toBeInstanceOf(PhoneBusyError);
    await expect(svc.reserve('shop-1', PHONE_B)).resolves.toHaveLength(1);
    await svc.release(holds);
    await expect(svc.reserve('shop-1', PHONE_A)).resolves.toHaveLength(1);

    expect(warn).toHaveBeenCalledTimes(1);
    const [fields, message] = warn.mock.calls[0] as [Record<string, unknown>, string];
    expect(message).toMatch(/rate-limit store failed/);
    expect(fields).toMatchObject({ limit: 'phone', err: { code: '57P01' } });
    expect(JSON.stringify(warn.mock.calls)).not.toContain('712345678');
  });

  it('a release against a failing store does not throw', async () => {
    jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const svc = await service({ RATE_LIMIT_SHOP_PER_MINUTE: '5' }, { kind: 'pglite' });
    const holds = await svc.reserve('shop-1', PHONE_A);
    const broken = {
      ...holds[0],
      limiter: { reward: () => Promise.reject(new Error('store down')) } as unknown as (typeof holds)[0]['limiter'],
    };
    await expect(svc.release([broken])).resolves.toBeUndefined();
  });
});
