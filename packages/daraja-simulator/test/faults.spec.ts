import { startDarajaSimulator, type DarajaSimulator } from '../src';
import { expectEnvelope, oauth, pushBody, queryBody, request, stkPush, stkQuery, token } from './helpers';

const CALLBACK = 'http://127.0.0.1:9/hooks/daraja/stk/faults';

describe('faults', () => {
  let sim: DarajaSimulator;
  let accessToken: string;

  beforeAll(async () => {
    sim = await startDarajaSimulator({ callbackDelayMs: 5000 });
  });
  afterAll(async () => {
    await sim.close();
  });
  beforeEach(async () => {
    sim.reset();
    accessToken = await token(sim.url);
  });

  it('down: every Daraja endpoint answers 503 503.001.01; the control API keeps working', async () => {
    sim.setFaults({ down: true });
    expectEnvelope(await oauth(sim.url), 503, '503.001.01', 'Service Unavailable');
    expectEnvelope(await stkPush(sim.url, accessToken, pushBody(CALLBACK)), 503, '503.001.01', 'Service Unavailable');
    expectEnvelope(
      await stkQuery(sim.url, accessToken, queryBody('ws_CO_x')),
      503,
      '503.001.01',
      'Service Unavailable',
    );
    const state = await request(`${sim.url}/__sim/state`);
    expect(state.status).toBe(200);
    expect(state.json).toMatchObject({ faults: { down: true } });
    expect(sim.pushes()).toHaveLength(0);

    sim.setFaults({});
    expect((await stkPush(sim.url, accessToken, pushBody(CALLBACK))).status).toBe(200);
  });

  it('latencyMs delays only the configured endpoint', async () => {
    sim.setFaults({ latencyMs: { push: 300 } });
    let t0 = Date.now();
    expect((await stkPush(sim.url, accessToken, pushBody(CALLBACK))).status).toBe(200);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(290);

    t0 = Date.now();
    await stkQuery(sim.url, accessToken, queryBody('ws_CO_x'));
    expect(Date.now() - t0).toBeLessThan(250);

    sim.setFaults({ latencyMs: { oauth: 250, query: 250 } });
    t0 = Date.now();
    const fresh = await token(sim.url);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(240);
    t0 = Date.now();
    await stkQuery(sim.url, fresh, queryBody('ws_CO_x'));
    expect(Date.now() - t0).toBeGreaterThanOrEqual(240);
  });

  it('pushErrors answers the next N pushes with the canned error, then recovers', async () => {
    sim.setFaults({
      pushErrors: {
        count: 2,
        status: 500,
        errorCode: '500.003.02',
        errorMessage: 'System is busy. Please try again in few minutes.',
      },
    });
    for (let i = 0; i < 2; i += 1) {
      const res = await stkPush(sim.url, accessToken, pushBody(CALLBACK));
      expectEnvelope(res, 500, '500.003.02', 'System is busy. Please try again in few minutes.');
    }
    expect(sim.pushes()).toHaveLength(0);
    expect((await stkPush(sim.url, accessToken, pushBody(CALLBACK))).status).toBe(200);
    expect(sim.pushes()).toHaveLength(1);
    expect(sim.stats().pushRequests).toBe(3);
  });

  it('pushErrors only applies to authenticated calls (an invalid token is still 404.001.03)', async () => {
    sim.setFaults({ pushErrors: { count: 1, status: 500, errorCode: '500.003.03', errorMessage: 'Quota Violation' } });
    expectEnvelope(await stkPush(sim.url, 'bogus', pushBody(CALLBACK)), 404, '404.001.03', 'Invalid Access Token');
    expectEnvelope(await stkPush(sim.url, accessToken, pushBody(CALLBACK)), 500, '500.003.03', 'Quota Violation');
  });

  it('queryErrors answers the next N queries with the canned error', async () => {
    const push = await stkPush(sim.url, accessToken, pushBody(CALLBACK));
    const id = (push.json as { CheckoutRequestID: string }).CheckoutRequestID;
    sim.setFaults({
      queryErrors: {
        count: 1,
        status: 500,
        errorCode: '500.003.02',
        errorMessage: 'Error Occurred: Spike Arrest Violation',
      },
    });
    expectEnvelope(
      await stkQuery(sim.url, accessToken, queryBody(id)),
      500,
      '500.003.02',
      'Error Occurred: Spike Arrest Violation',
    );
    expectEnvelope(
      await stkQuery(sim.url, accessToken, queryBody(id)),
      500,
      '500.001.1001',
      'The transaction is being processed',
    );
  });

  it('setFaults replaces the previous faults', async () => {
    sim.setFaults({ down: true, pushErrors: { count: 5, status: 500, errorCode: '500.003.02', errorMessage: 'busy' } });
    sim.setFaults({ latencyMs: { oauth: 1 } });
    expect((await request(`${sim.url}/__sim/state`)).json).toMatchObject({ faults: { latencyMs: { oauth: 1 } } });
    expect(((await request(`${sim.url}/__sim/state`)).json as { faults: object }).faults).not.toHaveProperty('down');
    expect((await stkPush(sim.url, accessToken, pushBody(CALLBACK))).status).toBe(200);
  });
});
