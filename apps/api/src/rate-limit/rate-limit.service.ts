import { Inject, Injectable, Logger, OnModuleDestroy, OnModuleInit } from '@nestjs/common';
import { RateLimiterAbstract, RateLimiterMemory, RateLimiterPostgres, RateLimiterRes } from 'rate-limiter-flexible';
import { safeError } from '../common/logging';
import type { AppConfig } from '../config/app-config';
import { APP_CONFIG } from '../config/config.module';
import type { DatabaseHandle } from '../database/database';
import { DB_HANDLE } from '../database/database.module';
import { PhoneBusyError, ShopRateLimitedError } from './rate-limit.errors';
import { derivePhoneKeySecret, phoneKey, retryAfterSeconds, shopKey } from './rate-limit.keys';
import {
  consumeShopThenPhone,
  deleteExpiredCounters,
  ensureRateLimitTable,
  RATE_LIMIT_TABLE,
} from './rate-limit.store';

export type LimitName = 'shop' | 'phone';
export type RateLimitStoreKind = 'memory' | 'postgres';

/** One limit: `points` per `windowSeconds`, counted in `primary`; `fallback` counts per instance while the primary store fails. */
export interface Limit {
  name: LimitName;
  points: number;
  windowSeconds: number;
  primary: RateLimiterAbstract;
  fallback?: RateLimiterAbstract;
}

/** A point taken for one request, given back with release() if the request turns out not to send a prompt. */
export interface Hold {
  limit: LimitName;
  key: string;
  limiter: RateLimiterAbstract;
  /** epoch ms when the window this point was counted in ends (after that there is nothing to give back) */
  windowEndsAt: number;
}

type Taken = { ok: true; hold: Hold } | { ok: false; msBeforeNext: number };

/** How often a store failure is logged per limit (each failure falls back, only the log is throttled). */
const STORE_WARNING_INTERVAL_MS = 60_000;
const CLEANUP_INTERVAL_MS = 5 * 60_000;
/** Rows expired longer than this are deleted (leaves room for clock differences between instances). */
const CLEANUP_GRACE_MS = 10 * 60_000;

/**
 * Per-shop and per-phone limits on STK pushes.
 *
 * Store: memory (one instance, or PGlite) or Postgres (RateLimiterPostgres on the app's own pool,
 * so every instance counts in the same rows). When the shared store fails (Postgres hiccup, pool
 * exhausted), the request is NOT refused: the limit falls back to a per-instance memory counter
 * and a warning is logged. A payments API should not stop taking money because its limiter store
 * hiccupped, and a push still needs the same database right after, so a real outage shows there.
 */
@Injectable()
export class RateLimitService implements OnModuleInit, OnModuleDestroy {
  private readonly logger = new Logger(RateLimitService.name);
  private limits: Limit[] = [];
  private readonly phoneSecret: Buffer;
  private readonly lastStoreWarning = new Map<LimitName, number>();
  private cleanupTimer?: NodeJS.Timeout;
  private storeKind: RateLimitStoreKind = 'memory';

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(DB_HANDLE) private readonly database: Pick<DatabaseHandle, 'kind' | 'pool'>,
  ) {
    this.phoneSecret = derivePhoneKeySecret(config.mpesa.callbackSigningSecret);
  }

  async onModuleInit(): Promise<void> {
    const rl = this.config.rateLimit;
    this.storeKind = resolveStoreKind(rl.store, this.database.kind);
    const pool = this.database.pool;
    if (this.storeKind === 'postgres') {
      if (!pool)
        throw new Error(
          'RATE_LIMIT_STORE=postgres needs the app to run on Postgres (DATABASE_URL); the embedded PGlite database can only use memory',
        );
      if (rl.shopPerMinute > 0 || rl.phonePerWindow > 0) await ensureRateLimitTable(pool);
    }
    const make = (name: LimitName, points: number, windowSeconds: number): Limit => {
      const keyPrefix = `stk_${name}`;
      const memory = () => new RateLimiterMemory({ keyPrefix, points, duration: windowSeconds });
      if (this.storeKind === 'memory') return { name, points, windowSeconds, primary: memory() };
      const primary = new RateLimiterPostgres({
        storeClient: pool,
        storeType: 'pool',
        tableName: RATE_LIMIT_TABLE,
        tableCreated: true,
        clearExpiredByTimeout: false,
        keyPrefix,
        points,
        duration: windowSeconds,
      });
      return { name, points, windowSeconds, primary, fallback: memory() };
    };
    this.limits = [
      ...(rl.shopPerMinute > 0 ? [make('shop', rl.shopPerMinute, 60)] : []),
      ...(rl.phonePerWindow > 0 ? [make('phone', rl.phonePerWindow, rl.phoneWindowSeconds)] : []),
    ];
    if (this.storeKind === 'postgres' && pool && this.limits.length) {
      this.cleanupTimer = setInterval(() => {
        deleteExpiredCounters(pool, Date.now() - CLEANUP_GRACE_MS).catch((err) =>
          this.logger.warn({ err: safeError(err) }, 'could not delete expired rate-limit counters'),
        );
      }, CLEANUP_INTERVAL_MS);
      this.cleanupTimer.unref();
    }
    this.logger.log(
      {
        store: this.storeKind,
        shopPerMinute: rl.shopPerMinute,
        phonePerWindow: rl.phonePerWindow,
        phoneWindowSeconds: rl.phoneWindowSeconds,
      },
      'stk-push rate limits ready',
    );
  }

  onModuleDestroy(): void {
    if (this.cleanupTimer) clearInterval(this.cleanupTimer);
  }

  get enabled(): boolean {
    return this.limits.length > 0;
  }

  get store(): RateLimitStoreKind {
    return this.storeKind;
  }

  /**
   * Takes one point from the shop's limit and one from the phone's (in that order). Throws a 429
   * (ShopRateLimitedError / PhoneBusyError, with Retry-After) when either is used up; then nothing
   * stays taken. `msisdn` must already be normalised (2547XXXXXXXX).
   */
  async reserve(shopId: string, msisdn: string): Promise<Hold[]> {
    const keyOf = (limit: Limit) => (limit.name === 'shop' ? shopKey(shopId) : phoneKey(this.phoneSecret, msisdn));
    const both = await this.takeBothInPostgres(keyOf);
    const holds: Hold[] = [];
    for (const [i, limit] of this.limits.entries()) {
      const key = keyOf(limit);
      const taken =
        both === 'failed' ? await this.takeFromFallback(limit, key) : both ? both[i] : await this.take(limit, key);
      if (!taken) throw new Error(`rate limit: no outcome for the ${limit.name} limit`);
      if (taken.ok) {
        holds.push(taken.hold);
        continue;
      }
      await this.release(holds);
      const retryAfter = retryAfterSeconds(taken.msBeforeNext);
      this.logger.log({ limit: limit.name, shopId, retryAfterSeconds: retryAfter }, 'stk-push rate limited');
      throw limit.name === 'shop'
        ? new ShopRateLimitedError(retryAfter, limit.points)
        : new PhoneBusyError(retryAfter, limit.points, limit.windowSeconds);
    }
    return holds;
  }

  /** Gives the points back (the request did not send a prompt). Never throws. */
  async release(holds: Hold[]): Promise<void> {
    await Promise.all(holds.map((h) => this.giveBack(h.limit, h.limiter, h.key, h.windowEndsAt)));
  }

  /**
   * Both limits on the shared Postgres store: both points in one statement (consumeShopThenPhone)
   * instead of one per limit, with the same outcome as taking them one after the other (the
   * phone's only once the shop's was granted; a refused point is given back; only the shop's
   * outcome when it refused). Undefined when the limits are not exactly the two on Postgres (each
   * is then taken on its own); 'failed' when the store failed: both count in their memory
   * fallbacks, as when the store fails for each of them.
   */
  private async takeBothInPostgres(keyOf: (limit: Limit) => string): Promise<Taken[] | 'failed' | undefined> {
    const [shop, phone] = this.limits;
    const pool = this.database.pool;
    if (this.storeKind !== 'postgres' || !pool || this.limits.length !== 2 || shop.name !== 'shop') return undefined;
    const shopKeyFull = shop.primary.getKey(keyOf(shop));
    const phoneKeyFull = phone.primary.getKey(keyOf(phone));
    let counted: Awaited<ReturnType<typeof consumeShopThenPhone>>;
    try {
      counted = await consumeShopThenPhone(
        pool,
        { key: shopKeyFull, windowMs: shop.windowSeconds * 1000, points: shop.points },
        { key: phoneKeyFull, windowMs: phone.windowSeconds * 1000, points: phone.points },
      );
    } catch (err) {
      for (const limit of this.limits) this.warnStoreFailure(limit.name, err);
      return 'failed';
    }
    const outcome = async (limit: Limit, key: string, state: { points: number; expire: number }): Promise<Taken> => {
      const msBeforeNext = Math.max(state.expire - Date.now(), 0);
      if (state.points <= limit.points)
        return {
          ok: true,
          hold: { limit: limit.name, key, limiter: limit.primary, windowEndsAt: Date.now() + msBeforeNext },
        };
      // As consume: a refused point was still added; take it off again.
      await this.giveBack(limit.name, limit.primary, key, Date.now() + msBeforeNext);
      return { ok: false, msBeforeNext };
    };
    const shopTaken = await outcome(shop, keyOf(shop), counted.shop);
    if (!counted.phone) return [shopTaken];
    return [shopTaken, await outcome(phone, keyOf(phone), counted.phone)];
  }

  private takeFromFallback(limit: Limit, key: string): Promise<Taken> {
    if (!limit.fallback) throw new Error(`rate limit: the ${limit.name} limit has no fallback store`);
    return this.consume(limit, limit.fallback, key);
  }

  private async take(limit: Limit, key: string): Promise<Taken> {
    try {
      return await this.consume(limit, limit.primary, key);
    } catch (err) {
      if (!limit.fallback) throw err;
      this.warnStoreFailure(limit.name, err);
      return this.consume(limit, limit.fallback, key);
    }
  }

  /** Resolves with the outcome; rejects only when the store itself failed. */
  private async consume(limit: Limit, limiter: RateLimiterAbstract, key: string): Promise<Taken> {
    try {
      const res = await limiter.consume(key, 1);
      return {
        ok: true,
        hold: { limit: limit.name, key, limiter, windowEndsAt: Date.now() + Math.max(0, res.msBeforeNext) },
      };
    } catch (err) {
      if (!(err instanceof RateLimiterRes)) throw err;
      // A refused consume still added its point; take it off again, or an earlier request giving
      // its point back would leave the counter above the limit for the rest of the window.
      await this.giveBack(limit.name, limiter, key, Date.now() + err.msBeforeNext);
      return { ok: false, msBeforeNext: err.msBeforeNext };
    }
  }

  private async giveBack(
    name: LimitName,
    limiter: RateLimiterAbstract,
    key: string,
    windowEndsAt: number,
  ): Promise<void> {
    // Once the window is over its counter is gone; a reward now would credit the next window.
    if (Date.now() >= windowEndsAt) return;
    try {
      await limiter.reward(key, 1);
    } catch (err) {
      this.warnStoreFailure(name, err);
    }
  }

  private warnStoreFailure(name: LimitName, err: unknown): void {
    const now = Date.now();
    if (now - (this.lastStoreWarning.get(name) ?? 0) < STORE_WARNING_INTERVAL_MS) return;
    this.lastStoreWarning.set(name, now);
    this.logger.warn(
      { limit: name, err: safeError(err) },
      "rate-limit store failed: counting in this instance's memory until it recovers (requests are not refused for it)",
    );
  }
}

/** 'auto' = shared Postgres counters when the app runs on Postgres, memory on PGlite. */
export function resolveStoreKind(
  configured: AppConfig['rateLimit']['store'],
  databaseKind: DatabaseHandle['kind'],
): RateLimitStoreKind {
  if (configured === 'auto') return databaseKind === 'postgres' ? 'postgres' : 'memory';
  return configured;
}
