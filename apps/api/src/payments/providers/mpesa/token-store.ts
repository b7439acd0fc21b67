import { createHash } from 'node:crypto';

/**
 * An OAuth access token as shared between callers (and, with a database-backed store, between
 * API instances). `expiresAt` is epoch milliseconds after which the token must no longer be
 * handed out — it already includes the service's early-refresh margin, so it is earlier than
 * Daraja's own expiry.
 *
 * Security: the access token is a short-lived (≈1 h) bearer credential for the Daraja APIs of
 * one consumer key. It may be stored (e.g. in Postgres) so instances can share it, but it must
 * never be logged, and store keys never contain the consumer secret.
 */
export interface StoredToken {
  token: string;
  expiresAt: number;
}

export interface RefreshOptions {
  /** A token a caller has just seen rejected by Daraja: never returned, even if it looks valid. */
  rejectToken?: string;
}

/**
 * Where DarajaService keeps OAuth tokens beyond its in-process cache. Implementations must make
 * `refreshUnderLock` mutually exclusive per key (across processes for a shared store), so that N
 * instances and M concurrent requests cause one OAuth call per token lifetime (daraja.md §1.3:
 * each new token may invalidate the previous one).
 */
export interface TokenStore {
  /** The stored token for `key`, whether or not it is still valid (the caller checks), or null. */
  get(key: string): Promise<StoredToken | null>;
  /**
   * Under a lock for `key`: re-reads the stored token and returns it if it is usable (not expired
   * and not `rejectToken`); otherwise calls `fetchFresh` (once), stores and returns its result.
   * If `fetchFresh` throws, nothing is stored and the error propagates.
   */
  refreshUnderLock(key: string, fetchFresh: () => Promise<StoredToken>, opts?: RefreshOptions): Promise<StoredToken>;
  /** Deletes the stored token for `key` only if it is `token` (a newer one is kept). */
  invalidate(key: string, token: string): Promise<void>;
}

/** A stored token may be handed out: not expired, and not the one the caller saw rejected. */
export function isUsableToken(
  t: StoredToken | null | undefined,
  rejectToken: string | undefined,
  now = Date.now(),
): t is StoredToken {
  return !!t && typeof t.token === 'string' && t.token.length > 0 && t.expiresAt > now && t.token !== rejectToken;
}

/**
 * Store key for a Daraja app: base URL + sha256 of the consumer key (and, given, of the secret
 * with it). Never the key or secret themselves. With the secret in the hash a token is shared
 * only by callers holding the same key AND secret: a shop's account with another app's consumer
 * key and a wrong secret cannot ride on that app's token, and a rotated secret gets its own.
 */
export function tokenStoreKey(baseUrl: string, consumerKey: string, consumerSecret?: string): string {
  const h = createHash('sha256').update(consumerKey, 'utf8');
  if (consumerSecret !== undefined) h.update('\u0000', 'utf8').update(consumerSecret, 'utf8');
  return `${baseUrl.replace(/\/+$/, '')}|${h.digest('hex')}`;
}

/** Process-local store: the default when no shared store is configured (one instance, unit tests). */
export class MemoryTokenStore implements TokenStore {
  private readonly rows = new Map<string, StoredToken>();
  private readonly locks = new Map<string, Promise<unknown>>();

  async get(key: string): Promise<StoredToken | null> {
    const row = this.rows.get(key);
    return row ? { ...row } : null;
  }

  async refreshUnderLock(
    key: string,
    fetchFresh: () => Promise<StoredToken>,
    opts: RefreshOptions = {},
  ): Promise<StoredToken> {
    return this.withLock(key, async () => {
      const current = this.rows.get(key);
      if (isUsableToken(current, opts.rejectToken)) return { ...current };
      const fresh = await fetchFresh();
      this.rows.set(key, { token: fresh.token, expiresAt: fresh.expiresAt });
      return { ...fresh };
    });
  }

  async invalidate(key: string, token: string): Promise<void> {
    if (this.rows.get(key)?.token === token) this.rows.delete(key);
  }

  /** Per-key FIFO mutex; a failed holder releases the lock too. */
  private async withLock<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.locks.get(key) ?? Promise.resolve();
    const run = previous.then(fn, fn);
    const tail = run.then(
      () => undefined,
      () => undefined,
    );
    this.locks.set(key, tail);
    try {
      return await run;
    } finally {
      if (this.locks.get(key) === tail) this.locks.delete(key);
    }
  }
}
