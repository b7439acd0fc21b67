import { ProviderError } from '../provider-errors';
import {
  CONSUMER_KEY,
  CONSUMER_SECRET,
  darajaError,
  deadBaseUrl,
  FakeDaraja,
  makeAccount,
  makeService,
  mpesaError,
  OAUTH_PATH,
  okPush,
  PUSH_PATH,
  validPush,
  withFakeDaraja,
} from './fake-daraja.testing';

describe('DarajaService OAuth token cache', () => {
  let fake: FakeDaraja;

  withFakeDaraja((f) => {
    fake = f;
  });

  it('fetches with GET + Basic auth + grant_type and caches the token', async () => {
    const svc = makeService(fake.baseUrl);
    await expect(svc.getAccessToken()).resolves.toBe('tok-1');
    await expect(svc.getAccessToken()).resolves.toBe('tok-1');
    expect(fake.count(OAUTH_PATH)).toBe(1);
    const [req] = fake.of(OAUTH_PATH);
    expect(req.method).toBe('GET');
    expect(req.url).toBe('/oauth/v1/generate?grant_type=client_credentials');
    expect(req.headers.authorization).toBe(
      `Basic ${Buffer.from(`${CONSUMER_KEY}:${CONSUMER_SECRET}`).toString('base64')}`,
    );
  });

  it('accepts expires_in as the string "3599" and refreshes at expires_in - margin', async () => {
    const t0 = 1_750_000_000_000;
    const now = jest.spyOn(Date, 'now').mockReturnValue(t0);
    const svc = makeService(fake.baseUrl); // margin 300 s → usable 3299 s
    expect(await svc.getAccessToken()).toBe('tok-1');
    now.mockReturnValue(t0 + 3_298_999);
    expect(await svc.getAccessToken()).toBe('tok-1');
    expect(fake.count(OAUTH_PATH)).toBe(1);
    now.mockReturnValue(t0 + 3_299_000);
    expect(await svc.getAccessToken()).toBe('tok-2');
    expect(fake.count(OAUTH_PATH)).toBe(2);
  });

  it('accepts expires_in as a number too', async () => {
    fake.oauth = () => ({ status: 200, body: { access_token: fake.nextToken(), expires_in: 3599 } });
    const t0 = 1_750_000_000_000;
    const now = jest.spyOn(Date, 'now').mockReturnValue(t0);
    const svc = makeService(fake.baseUrl, { tokenRefreshMarginSeconds: 60 });
    expect(await svc.getAccessToken()).toBe('tok-1');
    now.mockReturnValue(t0 + 3_538_999);
    expect(await svc.getAccessToken()).toBe('tok-1');
    now.mockReturnValue(t0 + 3_539_000);
    expect(await svc.getAccessToken()).toBe('tok-2');
  });

  it('uses half of expires_in when expires_in <= margin', async () => {
    fake.oauth = () => ({ status: 200, body: { access_token: fake.nextToken(), expires_in: '100' } });
    const t0 = 1_750_000_000_000;
    const now = jest.spyOn(Date, 'now').mockReturnValue(t0);
    const svc = makeService(fake.baseUrl, { tokenRefreshMarginSeconds: 300 });
    expect(await svc.getAccessToken()).toBe('tok-1');
    now.mockReturnValue(t0 + 49_999);
    expect(await svc.getAccessToken()).toBe('tok-1');
    now.mockReturnValue(t0 + 50_000);
    expect(await svc.getAccessToken()).toBe('tok-2');
  });

  it('treats a negative margin as 0', async () => {
    const t0 = 1_750_000_000_000;
    const now = jest.spyOn(Date, 'now').mockReturnValue(t0);
    const svc = makeService(fake.baseUrl, { tokenRefreshMarginSeconds: -50 });
    expect(await svc.getAccessToken()).toBe('tok-1');
    now.mockReturnValue(t0 + 3_598_999);
    expect(await svc.getAccessToken()).toBe('tok-1');
    now.mockReturnValue(t0 + 3_599_000);
    expect(await svc.getAccessToken()).toBe('tok-2');
  });

  it('single-flight: 100 concurrent callers cause exactly 1 OAuth request', async () => {
    fake.oauth = () => ({ status: 200, body: { access_token: fake.nextToken(), expires_in: '3599' }, delayMs: 50 });
    const svc = makeService(fake.baseUrl);
    const tokens = await Promise.all(Array.from({ length: 100 }, () => svc.getAccessToken()));
    expect(new Set(tokens)).toEqual(new Set(['tok-1']));
    expect(fake.count(OAUTH_PATH)).toBe(1);
  });

  it('single-flight failures reach every waiter and are not cached', async () => {
    fake.oauth = (_r, nth) =>
      nth === 1
        ? { status: 503, body: '<html>busy</html>', delayMs: 30 }
        : { status: 200, body: { access_token: fake.nextToken(), expires_in: '3599' } };
    const svc = makeService(fake.baseUrl);
    const results = await Promise.allSettled(Array.from({ length: 10 }, () => svc.getAccessToken()));
    expect(
      results.every(
        (r) => r.status === 'rejected' && r.reason instanceof ProviderError && r.reason.kind === 'unavailable',
      ),
    ).toBe(true);
    expect(fake.count(OAUTH_PATH)).toBe(1);
    await expect(svc.getAccessToken()).resolves.toBe('tok-1');
    expect(fake.count(OAUTH_PATH)).toBe(2);
  });

  it('caches per account (baseUrl + consumerKey)', async () => {
    const svc = makeService(fake.baseUrl);
    const other = makeAccount(fake.baseUrl, { id: 'other', consumerKey: 'another-key' });
    expect(await svc.getAccessToken()).toBe('tok-1');
    expect(await svc.getAccessToken(other)).toBe('tok-2');
    expect(await svc.getAccessToken()).toBe('tok-1');
    expect(await svc.getAccessToken(other)).toBe('tok-2');
    expect(fake.count(OAUTH_PATH)).toBe(2);
  });

  it('invalidateToken only drops the cache when the failing token is the cached one', async () => {
    const svc = makeService(fake.baseUrl);
    expect(await svc.getAccessToken()).toBe('tok-1');
    svc.invalidateToken(undefined, 'tok-0-stale');
    expect(await svc.getAccessToken()).toBe('tok-1');
    svc.invalidateToken(undefined, 'tok-1');
    expect(await svc.getAccessToken()).toBe('tok-2');
    svc.invalidateToken();
    expect(await svc.getAccessToken()).toBe('tok-3');
    expect(fake.count(OAUTH_PATH)).toBe(3);
  });

  it('wrong credentials: HTTP 400 with an empty body -> ProviderError auth (not cached)', async () => {
    fake.oauth = () => ({ status: 400 });
    const svc = makeService(fake.baseUrl);
    const err = await svc.getAccessToken().catch((e) => e);
    expect(err).toEqual(mpesaError('auth'));
    expect(err.code).toBe('PROVIDER_AUTH_FAILED');
    expect(err.outcome).toBe('not_processed');
    expect(err.providerHttpStatus).toBe(400);
    expect(err.message).toMatch(/^M-Pesa rejected the consumer key\/secret/);
    await expect(svc.getAccessToken()).rejects.toEqual(mpesaError('auth'));
    expect(fake.count(OAUTH_PATH)).toBe(2);
  });

  it('wrong credentials: HTTP 400 with a non-JSON body -> ProviderError auth', async () => {
    fake.oauth = () => ({ status: 400, body: 'Bad Request: Invalid Credentials' });
    const err = await makeService(fake.baseUrl)
      .getAccessToken()
      .catch((e) => e);
    expect(err).toEqual(mpesaError('auth'));
    expect(err.message).toMatch(/consumer key\/secret/);
  });

  it.each([
    ['400.008.02', 'Invalid grant type passed'],
    ['400.008.01', 'Invalid authentication type passed'],
  ])('HTTP 400 JSON %s -> ProviderError auth with Daraja code', async (code, message) => {
    fake.oauth = () => darajaError(400, code, message);
    const err = await makeService(fake.baseUrl)
      .getAccessToken()
      .catch((e) => e);
    expect(err).toEqual(mpesaError('auth'));
    expect(err.providerCode).toBe(code);
    expect(err.providerMessage).toBe(message);
    expect(err.details).toEqual({
      provider: 'mpesa',
      providerErrorCode: code,
      providerErrorMessage: message,
      providerRequestId: '1c5b-4ba8-815c-ac45c57a3db01495926',
    });
  });

  it('HTTP 5xx -> ProviderError unavailable', async () => {
    fake.oauth = () => ({ status: 503, body: '<html>Service Unavailable</html>' });
    const err = await makeService(fake.baseUrl)
      .getAccessToken()
      .catch((e) => e);
    expect(err).toEqual(mpesaError('unavailable'));
    expect(err.providerHttpStatus).toBe(503);
  });

  it('HTTP 429 -> ProviderError rate_limited', async () => {
    fake.oauth = () => ({ status: 429, headers: { 'retry-after': '7' } });
    const err = await makeService(fake.baseUrl)
      .getAccessToken()
      .catch((e) => e);
    expect(err).toEqual(mpesaError('rate_limited'));
    expect(err.headers).toEqual({ 'Retry-After': '7' });
  });

  it('200 without access_token -> ProviderError unavailable', async () => {
    fake.oauth = () => ({ status: 200, body: { expires_in: '3599' } });
    await expect(makeService(fake.baseUrl).getAccessToken()).rejects.toEqual(mpesaError('unavailable'));
  });

  it('connection refused -> ProviderError unreachable', async () => {
    const err = await makeService(await deadBaseUrl())
      .getAccessToken()
      .catch((e) => e);
    expect(err).toEqual(mpesaError('unreachable'));
    expect(err.outcome).toBe('not_processed');
  });

  it('timeout -> ProviderError timeout', async () => {
    fake.oauth = () => 'hang';
    const err = await makeService(fake.baseUrl, { timeoutMs: 100 })
      .getAccessToken()
      .catch((e) => e);
    expect(err).toEqual(mpesaError('timeout'));
    expect(err.code).toBe('PROVIDER_TIMEOUT');
  });

  describe('token-invalid answers on API calls', () => {
    it('404.001.03 on the push -> exactly one refresh + one retry, then success', async () => {
      fake.push = (req) =>
        req.headers.authorization === 'Bearer tok-1'
          ? darajaError(404, '404.001.03', 'Invalid Access Token')
          : okPush();
      const svc = makeService(fake.baseUrl);
      const res = await svc.initiateStkPush(validPush());
      expect(res.checkoutRequestId).toBe('ws_CO_1007202409152617172396192');
      expect(fake.count(OAUTH_PATH)).toBe(2);
      expect(fake.count(PUSH_PATH)).toBe(2);
      expect(fake.of(PUSH_PATH).map((r) => r.headers.authorization)).toEqual(['Bearer tok-1', 'Bearer tok-2']);
      // The retry re-sends the very same body (same Timestamp/Password).
      expect(fake.of(PUSH_PATH)[1].rawBody).toBe(fake.of(PUSH_PATH)[0].rawBody);
      // And the new token is cached.
      expect(await svc.getAccessToken()).toBe('tok-2');
      expect(fake.count(OAUTH_PATH)).toBe(2);
    });

    it.each([
      ['400.003.01', 400],
      ['401.002.01', 401],
    ])('%s is also treated as token-invalid', async (code, status) => {
      fake.push = (_r, nth) => (nth === 1 ? darajaError(status, code, 'Invalid Access Token') : okPush());
      await expect(makeService(fake.baseUrl).initiateStkPush(validPush())).resolves.toMatchObject({
        responseCode: '0',
      });
      expect(fake.count(OAUTH_PATH)).toBe(2);
      expect(fake.count(PUSH_PATH)).toBe(2);
    });

    it('bare HTTP 401 (no body) is treated as token-invalid', async () => {
      fake.push = (_r, nth) => (nth === 1 ? { status: 401 } : okPush());
      await expect(makeService(fake.baseUrl).initiateStkPush(validPush())).resolves.toMatchObject({
        responseCode: '0',
      });
      expect(fake.count(PUSH_PATH)).toBe(2);
    });

    it('repeated token-invalid -> ProviderError auth, no loop', async () => {
      fake.push = () => darajaError(404, '404.001.03', 'Invalid Access Token');
      const svc = makeService(fake.baseUrl);
      const err = await svc.initiateStkPush(validPush()).catch((e) => e);
      expect(err).toEqual(mpesaError('auth'));
      expect(err.providerCode).toBe('404.001.03');
      expect(err.outcome).toBe('not_processed');
      expect(fake.count(OAUTH_PATH)).toBe(2);
      expect(fake.count(PUSH_PATH)).toBe(2);
      // The rejected token is not kept either.
      expect(await svc.getAccessToken()).toBe('tok-3');
    });

    it('concurrent token-invalid answers cause a single refresh', async () => {
      fake.push = (req) =>
        req.headers.authorization === 'Bearer tok-1'
          ? darajaError(404, '404.001.03', 'Invalid Access Token')
          : okPush();
      const svc = makeService(fake.baseUrl);
      await svc.getAccessToken();
      const results = await Promise.all(Array.from({ length: 20 }, () => svc.initiateStkPush(validPush())));
      expect(results).toHaveLength(20);
      expect(fake.count(OAUTH_PATH)).toBe(2);
      expect(fake.count(PUSH_PATH)).toBe(40);
    });
  });
});
