import { startDarajaSimulator, type DarajaSimulator } from '../src';
import { basic, expectEnvelope, KEY, oauth, queryBody, request, SECRET, sleep, stkQuery, token } from './helpers';

/** A token is accepted when the product endpoint gets past the gateway (unknown id → "does not Exist"). */
async function tokenAccepted(sim: DarajaSimulator, accessToken: string): Promise<boolean> {
  const res = await stkQuery(sim.url, accessToken, queryBody('ws_CO_00000000000000000'));
  const code = (res.json as { errorCode?: string }).errorCode;
  if (res.status === 404 && code === '404.001.03') return false;
  expect(res.status).toBe(500);
  return true;
}

describe('OAuth /oauth/v1/generate', () => {
  let sim: DarajaSimulator;

  beforeAll(async () => {
    sim = await startDarajaSimulator({ callbackDelayMs: 100 });
  });
  afterAll(async () => {
    await sim.close();
  });
  beforeEach(() => sim.reset());

  it('issues a 28-char alphanumeric token with expires_in as the STRING "3599"', async () => {
    const res = await oauth(sim.url);
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    const body = res.json as Record<string, unknown>;
    expect(Object.keys(body).sort()).toEqual(['access_token', 'expires_in']);
    expect(body['access_token']).toMatch(/^[A-Za-z0-9]{28}$/);
    expect(body['expires_in']).toBe('3599');
    expect(typeof body['expires_in']).toBe('string');
    expect(res.text).toContain('"expires_in":"3599"');
    expect(sim.stats().oauthRequests).toBe(1);
  });

  it('answers wrong secret / wrong key / malformed Basic with HTTP 400 and an EMPTY body', async () => {
    for (const authorization of [
      basic(KEY, 'nope'),
      basic('nope', SECRET),
      `Basic ${Buffer.from('no-colon').toString('base64')}`,
    ]) {
      const res = await oauth(sim.url, authorization);
      expect(res.status).toBe(400);
      expect(res.text).toBe('');
      expect(res.statusMessage).toBe('Bad Request: Invalid Credentials');
    }
  });

  it('rejects a missing or wrong grant_type with 400.008.02', async () => {
    expectEnvelope(
      await oauth(sim.url, basic(KEY, SECRET), 'password'),
      400,
      '400.008.02',
      'Invalid grant type passed',
    );
    const missing = await request(`${sim.url}/oauth/v1/generate`, { headers: { Authorization: basic(KEY, SECRET) } });
    expectEnvelope(missing, 400, '400.008.02', 'Invalid grant type passed');
  });

  it('rejects non-Basic or missing Authorization with 400.008.01', async () => {
    expectEnvelope(await oauth(sim.url, 'Bearer abc'), 400, '400.008.01', 'Invalid authentication type passed');
    const missing = await request(`${sim.url}/oauth/v1/generate?grant_type=client_credentials`);
    expectEnvelope(missing, 400, '400.008.01', 'Invalid authentication type passed');
  });

  it('answers other methods with 405.001', async () => {
    const res = await request(`${sim.url}/oauth/v1/generate?grant_type=client_credentials`, {
      method: 'POST',
      headers: { Authorization: basic(KEY, SECRET) },
    });
    expectEnvelope(res, 405, '405.001', 'Method Not Allowed');
  });

  it('a newer token invalidates the previous one (default)', async () => {
    const first = await token(sim.url);
    const second = await token(sim.url);
    expect(second).not.toBe(first);
    expect(await tokenAccepted(sim, first)).toBe(false);
    expect(await tokenAccepted(sim, second)).toBe(true);
  });

  it('faults.invalidateTokens kills every issued token once and is not persisted', async () => {
    const before = await token(sim.url);
    sim.setFaults({ invalidateTokens: true });
    expect(await tokenAccepted(sim, before)).toBe(false);
    const after = await token(sim.url);
    expect(await tokenAccepted(sim, after)).toBe(true);
    expect((await request(`${sim.url}/__sim/state`)).json).toMatchObject({ faults: {} });
  });
});

describe('OAuth options', () => {
  it('keeps older tokens valid when invalidatePreviousToken is false and honours tokenTtlSeconds', async () => {
    const sim = await startDarajaSimulator({ invalidatePreviousToken: false, tokenTtlSeconds: 1 });
    try {
      const res = await oauth(sim.url);
      expect((res.json as { expires_in: string }).expires_in).toBe('1');
      const first = (res.json as { access_token: string }).access_token;
      const second = await token(sim.url);
      expect(await tokenAccepted(sim, first)).toBe(true);
      expect(await tokenAccepted(sim, second)).toBe(true);
      await sleep(1100);
      expect(await tokenAccepted(sim, first)).toBe(false);
      expect(await tokenAccepted(sim, second)).toBe(false);
    } finally {
      await sim.close();
    }
  });

  it('uses custom consumer credentials', async () => {
    const sim = await startDarajaSimulator({ consumerKey: 'k1', consumerSecret: 's1' });
    try {
      expect((await oauth(sim.url, basic('k1', 's1'))).status).toBe(200);
      const wrong = await oauth(sim.url);
      expect(wrong.status).toBe(400);
      expect(wrong.text).toBe('');
    } finally {
      await sim.close();
    }
  });
});
