import { startDarajaSimulator, type DarajaSimulator } from '../src';
import {
  expectEnvelope,
  KEY,
  oauth,
  PASSKEY,
  PHONE,
  postJson,
  pushBody,
  queryBody,
  request,
  SECRET,
  sleep,
  startReceiver,
  stkPush,
  stkQuery,
  token,
  uniquePath,
  ZERO_STATS,
  type Receiver,
} from './helpers';

const DELAY = 100;

function post(url: string, body?: string): ReturnType<typeof request> {
  return request(url, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body });
}

describe('control API and lifecycle', () => {
  let sim: DarajaSimulator;
  let receiver: Receiver;
  let accessToken: string;

  async function push(phone: number, label: string): Promise<string> {
    const res = await stkPush(
      sim.url,
      accessToken,
      pushBody(`${receiver.url}${uniquePath(label)}`, { PhoneNumber: phone }),
    );
    expect(res.status).toBe(200);
    return (res.json as { CheckoutRequestID: string }).CheckoutRequestID;
  }

  beforeAll(async () => {
    sim = await startDarajaSimulator({ callbackDelayMs: DELAY });
    receiver = await startReceiver();
  });
  afterAll(async () => {
    await sim.close();
    await receiver.close();
  });
  beforeEach(async () => {
    sim.reset();
    receiver.received.length = 0;
    accessToken = await token(sim.url);
  });

  it('GET /__sim/state returns pushes, callbacks, stats and faults', async () => {
    const id = await push(254708374149, 'state');
    await sim.waitForCallbacks(id);
    const res = await request(`${sim.url}/__sim/state`);
    expect(res.status).toBe(200);
    const state = res.json as {
      pushes: Array<Record<string, unknown>>;
      callbacks: Array<Record<string, unknown>>;
      stats: unknown;
      faults: unknown;
      injections: unknown;
    };
    expect(Object.keys(state).sort()).toEqual([
      'behaviour',
      'callbacks',
      'faults',
      'injections',
      'pushes',
      'queries',
      'stats',
    ]);
    expect(state.pushes).toHaveLength(1);
    expect(state.pushes[0]).toMatchObject({ checkoutRequestId: id, state: 'answered', resultCode: 0 });
    expect(typeof state.pushes[0]?.['createdAt']).toBe('string');
    expect(state.callbacks).toHaveLength(1);
    expect(state.callbacks[0]).toMatchObject({ checkoutRequestId: id, status: 200 });
    expect(state.stats).toEqual({ ...ZERO_STATS, oauthRequests: 1, pushRequests: 1, callbacksSent: 1, promptsSent: 1 });
    expect(state.faults).toEqual({});
    expect(state.injections).toEqual([]);
    expect((state as unknown as { queries: unknown }).queries).toEqual([]);
    expect((state as unknown as { behaviour: unknown }).behaviour).toEqual({
      timestampToleranceSeconds: null,
      pendingQueryForm: 'http500',
    });
  });

  it('GET/POST /__sim/behaviour reads and changes the behaviour, and rejects malformed values without changing anything', async () => {
    expect((await request(`${sim.url}/__sim/behaviour`)).json).toEqual({
      behaviour: { timestampToleranceSeconds: null, pendingQueryForm: 'http500' },
    });
    const set = await post(
      `${sim.url}/__sim/behaviour`,
      JSON.stringify({ timestampToleranceSeconds: 300, pendingQueryForm: 'result4999' }),
    );
    expect(set.status).toBe(200);
    expect(set.json).toEqual({ behaviour: { timestampToleranceSeconds: 300, pendingQueryForm: 'result4999' } });
    for (const bad of [
      '{"pendingQueryForm":"http200"}',
      '{"timestampToleranceSeconds":-5}',
      '{"timestampToleranceSeconds":"300"}',
      '{"tolerance":300}',
      '[]',
      '{not json',
    ]) {
      const res = await post(`${sim.url}/__sim/behaviour`, bad);
      expect(res.status).toBe(400);
      expect(typeof (res.json as { error: string }).error).toBe('string');
    }
    expect(sim.behaviour()).toEqual({ timestampToleranceSeconds: 300, pendingQueryForm: 'result4999' });
    expect(
      (await post(`${sim.url}/__sim/behaviour`, JSON.stringify({ timestampToleranceSeconds: null }))).json,
    ).toEqual({ behaviour: { timestampToleranceSeconds: null, pendingQueryForm: 'result4999' } });
    expect((await request(`${sim.url}/__sim/behaviour`, { method: 'DELETE' })).status).toBe(405);
  });

  it('POST /__sim/faults sets faults and rejects malformed ones', async () => {
    const ok = await post(`${sim.url}/__sim/faults`, JSON.stringify({ down: true }));
    expect(ok.status).toBe(200);
    expect(ok.json).toEqual({ faults: { down: true } });
    expectEnvelope(await oauth(sim.url), 503, '503.001.01', 'Service Unavailable');

    expect((await post(`${sim.url}/__sim/faults`, JSON.stringify({ dwn: true }))).status).toBe(400);
    expect((await post(`${sim.url}/__sim/faults`, JSON.stringify({ pushErrors: { count: 1 } }))).status).toBe(400);
    expect((await post(`${sim.url}/__sim/faults`, JSON.stringify({ latencyMs: { push: -1 } }))).status).toBe(400);
    expect((await post(`${sim.url}/__sim/faults`, '{not json')).status).toBe(400);
    expect((await request(`${sim.url}/__sim/faults`)).status).toBe(405);

    const clear = await post(`${sim.url}/__sim/faults`, '{}');
    expect(clear.json).toEqual({ faults: {} });
    expect((await oauth(sim.url)).status).toBe(200);
  });

  it('POST /__sim/faults with pushErrors and invalidateTokens', async () => {
    const res = await post(
      `${sim.url}/__sim/faults`,
      JSON.stringify({
        invalidateTokens: true,
        pushErrors: { count: 1, status: 500, errorCode: '500.003.02', errorMessage: 'System is busy' },
      }),
    );
    expect(res.json).toEqual({
      faults: { pushErrors: { count: 1, status: 500, errorCode: '500.003.02', errorMessage: 'System is busy' } },
    });
    expectEnvelope(
      await stkPush(sim.url, accessToken, pushBody(`${receiver.url}/hooks/x`)),
      404,
      '404.001.03',
      'Invalid Access Token',
    );
    const fresh = await token(sim.url);
    expectEnvelope(
      await stkPush(sim.url, fresh, pushBody(`${receiver.url}/hooks/x`)),
      500,
      '500.003.02',
      'System is busy',
    );
  });

  it('POST /__sim/pushes/:id/resolve answers the push and sends the callback', async () => {
    const id = await push(254700000007, 'resolve-api');
    const res = await post(
      `${sim.url}/__sim/pushes/${encodeURIComponent(id)}/resolve`,
      JSON.stringify({ resultCode: 1032 }),
    );
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ push: { checkoutRequestId: id, state: 'answered', resultCode: 1032 } });
    expect(receiver.received).toHaveLength(1);
    expect(JSON.parse(receiver.received[0]?.raw ?? '{}')).toMatchObject({
      Body: { stkCallback: { ResultCode: 1032 } },
    });

    expect((await post(`${sim.url}/__sim/pushes/${id}/resolve`, JSON.stringify({ resultCode: 0 }))).status).toBe(409);
    expect(
      (await post(`${sim.url}/__sim/pushes/ws_CO_unknown/resolve`, JSON.stringify({ resultCode: 0 }))).status,
    ).toBe(404);
    expect((await post(`${sim.url}/__sim/pushes/${id}/resolve`, JSON.stringify({ code: 0 }))).status).toBe(400);
    expect((await post(`${sim.url}/__sim/pushes/${id}/resolve`, JSON.stringify({ resultCode: 'x' }))).status).toBe(400);
  });

  it('POST /__sim/reset clears everything, including tokens and pending answers', async () => {
    await push(254708374149, 'reset-api');
    sim.setFaults({ latencyMs: { query: 1 } });
    const res = await post(`${sim.url}/__sim/reset`);
    expect(res.status).toBe(200);
    await sleep(DELAY + 150);
    expect(receiver.received).toHaveLength(0);
    const state = (await request(`${sim.url}/__sim/state`)).json;
    expect(state).toEqual({
      pushes: [],
      queries: [],
      callbacks: [],
      stats: ZERO_STATS,
      faults: {},
      behaviour: { timestampToleranceSeconds: null, pendingQueryForm: 'http500' },
      injections: [],
    });
    expectEnvelope(
      await stkQuery(sim.url, accessToken, queryBody('ws_CO_x')),
      404,
      '404.001.03',
      'Invalid Access Token',
    );
  });

  it('reset() clears pushes, callbacks, stats, faults and tokens', async () => {
    const id = await push(254708374149, 'reset-fn');
    await sim.waitForCallbacks(id);
    const pending = await push(254708374149, 'reset-pending');
    sim.setFaults({ down: true });
    sim.reset();
    expect(sim.pushes()).toEqual([]);
    expect(sim.getPush(id)).toBeUndefined();
    expect(sim.callbacks()).toEqual([]);
    expect(sim.stats()).toEqual(ZERO_STATS);
    await sleep(DELAY + 150);
    expect(receiver.received.filter((r) => r.raw.includes(pending))).toHaveLength(0);
    expectEnvelope(await stkQuery(sim.url, accessToken, queryBody(id)), 404, '404.001.03', 'Invalid Access Token');
    expect((await oauth(sim.url)).status).toBe(200);
  });

  it('unknown control routes answer 404 JSON', async () => {
    const res = await request(`${sim.url}/__sim/nothing`);
    expect(res.status).toBe(404);
    expect(res.json).toHaveProperty('error');
  });

  it('waitForCallbacks times out with a helpful error', async () => {
    const id = await push(254700000007, 'wait');
    await expect(sim.waitForCallbacks(id, 1, 100)).rejects.toThrow(/timed out after 100 ms/);
  });
});

describe('bounded memory, close() and logging', () => {
  it('keeps only the last maxRecords pushes and callbacks', async () => {
    const receiver = await startReceiver();
    const sim = await startDarajaSimulator({ callbackDelayMs: 0, maxRecords: 3 });
    try {
      const accessToken = await token(sim.url);
      const ids: string[] = [];
      for (let i = 0; i < 5; i += 1) {
        const res = await stkPush(sim.url, accessToken, pushBody(`${receiver.url}/hooks/cap/${i}`));
        ids.push((res.json as { CheckoutRequestID: string }).CheckoutRequestID);
      }
      expect(sim.pushes().map((p) => p.checkoutRequestId)).toEqual(ids.slice(2));
      expect(sim.getPush(ids[0] ?? '')).toBeUndefined();
      await receiver.waitFor(3);
      await sleep(100);
      expect(sim.callbacks().length).toBeLessThanOrEqual(3);
    } finally {
      await sim.close();
      await receiver.close();
    }
  });

  it('close() cancels pending callbacks and rejects waiters', async () => {
    const receiver = await startReceiver();
    const sim = await startDarajaSimulator({ callbackDelayMs: 150 });
    try {
      const accessToken = await token(sim.url);
      const res = await stkPush(sim.url, accessToken, pushBody(`${receiver.url}/hooks/close`));
      const id = (res.json as { CheckoutRequestID: string }).CheckoutRequestID;
      const waiting = sim.waitForCallbacks(id, 1, 5000);
      await sim.close();
      await expect(waiting).rejects.toThrow(/closed/);
      await sleep(300);
      expect(receiver.received).toHaveLength(0);
      await expect(request(`${sim.url}/__sim/state`)).rejects.toThrow();
      await expect(sim.close()).resolves.toBeUndefined();
    } finally {
      await sim.close();
      await receiver.close();
    }
  });

  it('logs requests with masked phones and never logs secrets', async () => {
    const lines: string[] = [];
    const receiver = await startReceiver();
    const sim = await startDarajaSimulator({ callbackDelayMs: 0, log: (l) => lines.push(l) });
    try {
      const accessToken = await token(sim.url);
      const body = pushBody(`${receiver.url}/hooks/daraja/stk/capability-secret-token`);
      const res = await stkPush(sim.url, accessToken, body);
      await sim.waitForCallbacks((res.json as { CheckoutRequestID: string }).CheckoutRequestID);
      await oauth(sim.url, `Basic ${Buffer.from(`${KEY}:wrong-secret`).toString('base64')}`);
      await postJson(`${sim.url}/mpesa/stkpush/v1/processrequest`, accessToken, { ...body, Amount: 1.5 });
      const all = lines.join('\n');
      expect(all).toContain('2547******49');
      // issue 8.7: the CheckoutRequestID ends with the national number; logged masked
      const id = (res.json as { CheckoutRequestID: string }).CheckoutRequestID;
      expect(all).toContain(`push accepted ${id.slice(0, -9)}*******49`);
      expect(all).not.toContain('708374149');
      for (const secret of [
        PHONE,
        accessToken,
        SECRET,
        'wrong-secret',
        PASSKEY,
        String(body['Password']),
        'capability-secret-token',
      ]) {
        expect(all).not.toContain(secret);
      }
    } finally {
      await sim.close();
      await receiver.close();
    }
  });

  it('rejects invalid options', async () => {
    await expect(startDarajaSimulator({ port: -1 })).rejects.toThrow(/port/);
    await expect(startDarajaSimulator({ accounts: [] })).rejects.toThrow(/accounts/);
    await expect(startDarajaSimulator({ accounts: [{ shortcode: 'abc', passkey: 'x' }] })).rejects.toThrow(/shortcode/);
  });
});
