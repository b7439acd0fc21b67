import { startTestApp, TestApp } from './helpers/test-app';

// A browser POS (apps/pos, a PWA till) calls the API from its own origin: the preflight must pass
// for the origins in CORS_ORIGINS only, and the headers a POS reads back must be exposed.
describe('CORS for a browser POS', () => {
  const POS = 'https://pos.example.co.ke';
  let t: TestApp;
  let closed: TestApp;

  beforeAll(async () => {
    t = await startTestApp({ env: { CORS_ORIGINS: `${POS}, http://localhost:5173` } });
    closed = await startTestApp();
  });
  afterAll(async () => {
    await t?.close();
    await closed?.close();
  });

  it('answers the preflight of an allowed origin with the POS headers', async () => {
    const res = await t
      .http()
      .options('/payments/stk-push')
      .set('Origin', POS)
      .set('Access-Control-Request-Method', 'POST')
      .set('Access-Control-Request-Headers', 'authorization,content-type,idempotency-key');
    expect(res.status).toBe(204);
    expect(res.headers['access-control-allow-origin']).toBe(POS);
    const allowed = String(res.headers['access-control-allow-headers']).toLowerCase().split(',');
    expect(allowed).toEqual(
      expect.arrayContaining(['authorization', 'content-type', 'idempotency-key', 'last-event-id']),
    );
    expect(String(res.headers['access-control-allow-methods'])).toContain('POST');
    expect(res.headers['access-control-allow-credentials']).toBeUndefined();
  });

  it('exposes X-Request-Id, Idempotent-Replayed and Retry-After on real answers, errors included', async () => {
    const ok = await t.http().get('/health').set('Origin', 'http://localhost:5173');
    expect(ok.headers['access-control-allow-origin']).toBe('http://localhost:5173');
    expect(String(ok.headers['access-control-expose-headers']).split(',')).toEqual([
      'X-Request-Id',
      'Idempotent-Replayed',
      'Retry-After',
    ]);
    const unauthorised = await t.http().get('/payments').set('Origin', POS);
    expect(unauthorised.status).toBe(401);
    expect(unauthorised.headers['access-control-allow-origin']).toBe(POS);
  });

  it('gives another site nothing to read', async () => {
    const res = await t
      .http()
      .options('/payments/stk-push')
      .set('Origin', 'https://evil.example.com')
      .set('Access-Control-Request-Method', 'POST')
      .set('Access-Control-Request-Headers', 'authorization');
    expect(res.headers['access-control-allow-origin']).toBeUndefined();
    const get = await t.http().get('/health').set('Origin', 'https://evil.example.com');
    expect(get.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('allows no origin at all when CORS_ORIGINS is unset outside development', async () => {
    const res = await closed
      .http()
      .options('/payments/stk-push')
      .set('Origin', 'http://localhost:5173')
      .set('Access-Control-Request-Method', 'POST');
    expect(res.headers['access-control-allow-origin']).toBeUndefined();
  });
});
