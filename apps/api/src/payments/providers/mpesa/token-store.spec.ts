import {
  captureLogs,
  FakeDaraja,
  makeService,
  OAUTH_PATH,
  okPush,
  PUSH_PATH,
  darajaError,
  validPush,
  withFakeDaraja,
} from './fake-daraja.testing';
import { MemoryTokenStore, StoredToken, tokenStoreKey } from './token-store';

const later = (ms = 60_000) => Date.now() + ms;

describe('MemoryTokenStore', () => {
  it('get returns null for an unknown key and a copy of the stored token otherwise', async () => {
    const store = new MemoryTokenStore();
    expect(await store.get('k')).toBeNull();
    const t = await store.refreshUnderLock('k', async () => ({ token: 'a', expiresAt: later() }));
    expect(t.token).toBe('a');
    const got = await store.get('k');
    expect(got).toEqual(t);
    got!.token = 'mutated';
    expect((await store.get('k'))!.token).toBe('a');
  });

  it('refreshUnderLock returns a valid stored token without fetching', async () => {
    const store = new MemoryTokenStore();
    await store.refreshUnderLock('k', async () => ({ token: 'a', expiresAt: later() }));
    const fetch = jest.fn(async () => ({ token: 'b', expiresAt: later() }));
    expect((await store.refreshUnderLock('k', fetch)).token).toBe('a');
    expect(fetch).not.toHaveBeenCalled();
  });

  it('refreshUnderLock fetches when the stored token is expired', async () => {
    const store = new MemoryTokenStore();
    await store.refreshUnderLock('k', async () => ({ token: 'a', expiresAt: Date.now() - 1 }));
    expect((await store.refreshUnderLock('k', async () => ({ token: 'b', expiresAt: later() }))).token).toBe('b');
    expect((await store.get('k'))!.token).toBe('b');
  });

  it('refreshUnderLock fetches when the stored token is the rejected one, not when another one is', async () => {
    const store = new MemoryTokenStore();
    await store.refreshUnderLock('k', async () => ({ token: 'a', expiresAt: later() }));
    expect(
      (await store.refreshUnderLock('k', async () => ({ token: 'x', expiresAt: later() }), { rejectToken: 'old' }))
        .token,
    ).toBe('a');
    expect(
      (await store.refreshUnderLock('k', async () => ({ token: 'b', expiresAt: later() }), { rejectToken: 'a' })).token,
    ).toBe('b');
  });

  it('concurrent refreshes of one key fetch once (the lock serialises and the re-read sees the new token)', async () => {
    const store = new MemoryTokenStore();
    let n = 0;
    const fetch = async (): Promise<StoredToken> => {
      n += 1;
      await new Promise((r) => setTimeout(r, 20));
      return { token: `t${n}`, expiresAt: later() };
    };
    const results = await Promise.all(
      Array.from({ length: 20 }, () => store.refreshUnderLock('k', fetch, { rejectToken: 'stale' })),
    );
    expect(new Set(results.map((r) => r.token))).toEqual(new Set(['t1']));
    expect(n).toBe(1);
  });

  it('keys are independent', async () => {
    const store = new MemoryTokenStore();
    await store.refreshUnderLock('k1', async () => ({ token: 'a', expiresAt: later() }));
    expect((await store.refreshUnderLock('k2', async () => ({ token: 'b', expiresAt: later() }))).token).toBe('b');
    expect((await store.get('k1'))!.token).toBe('a');
  });

  it('a failed fetch stores nothing, propagates and releases the lock', async () => {
    const store = new MemoryTokenStore();
    await expect(store.refreshUnderLock('k', async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(await store.get('k')).toBeNull();
    expect((await store.refreshUnderLock('k', async () => ({ token: 'a', expiresAt: later() }))).token).toBe('a');
  });

  it('invalidate deletes only when the stored token is the given one', async () => {
    const store = new MemoryTokenStore();
    await store.refreshUnderLock('k', async () => ({ token: 'a', expiresAt: later() }));
    await store.invalidate('k', 'other');
    expect((await store.get('k'))!.token).toBe('a');
    await store.invalidate('k', 'a');
    expect(await store.get('k')).toBeNull();
    await expect(store.invalidate('missing', 'a')).resolves.toBeUndefined();
  });

  it('tokenStoreKey: base URL (no trailing slash) + sha256 of the consumer key, never the raw key', () => {
    const k = tokenStoreKey('https://sandbox.safaricom.co.ke/', 'my-consumer-key');
    expect(k).toMatch(/^https:\/\/sandbox\.safaricom\.co\.ke\|[0-9a-f]{64}$/);
    expect(k).not.toContain('my-consumer-key');
    expect(tokenStoreKey('https://sandbox.safaricom.co.ke', 'my-consumer-key')).toBe(k);
    expect(tokenStoreKey('https://sandbox.safaricom.co.ke', 'other')).not.toBe(k);
    // With the secret: a token is shared only by holders of the same key and secret.
    const withSecret = tokenStoreKey('https://sandbox.safaricom.co.ke', 'my-consumer-key', 'my-secret');
    expect(withSecret).not.toBe(k);
    expect(withSecret).not.toContain('my-secret');
    expect(tokenStoreKey('https://sandbox.safaricom.co.ke', 'my-consumer-key', 'other-secret')).not.toBe(withSecret);
  });
});

describe('DarajaService with a shared token store (two instances)', () => {
  let fake: FakeDaraja;
  let logs: ReturnType<typeof captureLogs>;

  withFakeDaraja((f, l) => {
    fake = f;
    logs = l;
  });

  it('concurrent callers on two services sharing a store cause one OAuth request', async () => {
    fake.oauth = () => ({ status: 200, body: { access_token: fake.nextToken(), expires_in: '3599' }, delayMs: 30 });
    const store = new MemoryTokenStore();
    const s1 = makeService(fake.baseUrl, { tokenStore: store });
    const s2 = makeService(fake.baseUrl, { tokenStore: store });
    const tokens = await Promise.all(Array.from({ length: 40 }, (_, i) => (i % 2 ? s1 : s2).getAccessToken()));
    expect(new Set(tokens)).toEqual(new Set(['tok-1']));
    expect(fake.count(OAUTH_PATH)).toBe(1);
  });

  it('a token rejected on one instance is replaced once; the other instance picks up the new one', async () => {
    const store = new MemoryTokenStore();
    const s1 = makeService(fake.baseUrl, { tokenStore: store });
    const s2 = makeService(fake.baseUrl, { tokenStore: store });
    expect(await s1.getAccessToken()).toBe('tok-1');
    expect(await s2.getAccessToken()).toBe('tok-1');
    fake.push = (req) =>
      req.headers.authorization === 'Bearer tok-1' ? darajaError(404, '404.001.03', 'Invalid Access Token') : okPush();
    await Promise.all([
      s1.initiateStkPush(validPush()),
      s2.initiateStkPush(validPush()),
      s1.initiateStkPush(validPush()),
    ]);
    expect(fake.count(OAUTH_PATH)).toBe(2);
    expect(fake.count(PUSH_PATH)).toBe(6);
    expect(await s1.getAccessToken()).toBe('tok-2');
    expect(await s2.getAccessToken()).toBe('tok-2');
  });

  it('a stale token still in the store is not re-used after this instance saw it rejected', async () => {
    const store = new MemoryTokenStore();
    const s1 = makeService(fake.baseUrl, { tokenStore: store });
    expect(await s1.getAccessToken()).toBe('tok-1');
    const invalidate = jest.spyOn(store, 'invalidate').mockResolvedValue(undefined); // delete lost / not yet applied
    s1.invalidateToken(undefined, 'tok-1');
    expect(invalidate).toHaveBeenCalledWith(expect.stringMatching(/\|[0-9a-f]{64}$/), 'tok-1');
    expect(await s1.getAccessToken()).toBe('tok-2');
    expect(fake.count(OAUTH_PATH)).toBe(2);
  });

  it('falls back to a process-local token when the store fails, without logging the token', async () => {
    const store = new MemoryTokenStore();
    jest
      .spyOn(store, 'get')
      .mockRejectedValue(Object.assign(new Error('connection refused'), { code: 'ECONNREFUSED' }));
    const s1 = makeService(fake.baseUrl, { tokenStore: store });
    expect(await s1.getAccessToken()).toBe('tok-1');
    expect(await s1.getAccessToken()).toBe('tok-1');
    expect(fake.count(OAUTH_PATH)).toBe(1);
    expect(logs.lines.some((l) => /token store failed/.test(l))).toBe(true);
    expect(logs.lines.join('\n')).not.toContain('tok-1');
  });
});
