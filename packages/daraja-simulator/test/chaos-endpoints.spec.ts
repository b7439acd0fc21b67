/** Seeded push/query faults: generic 5xx, spike arrest, timeouts (processed / unprocessed), token invalidation. */
import { startDarajaSimulator, type DarajaSimulator } from '../src';
import {
  expectEnvelope,
  outcomeOf,
  postJson,
  pushBody,
  queryBody,
  startReceiver,
  stkPush,
  stkQuery,
  token,
  uniquePath,
  ZERO_STATS,
  type Envelope,
  type Receiver,
} from './helpers';

const PUSH_URL = '/mpesa/stkpush/v1/processrequest';
const QUERY_URL = '/mpesa/stkpushquery/v1/query';

describe('push and query faults', () => {
  let sim: DarajaSimulator;
  let receiver: Receiver;
  let accessToken: string;

  beforeAll(async () => {
    sim = await startDarajaSimulator({ callbackDelayMs: 50 });
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

  function body(label: string, overrides: Record<string, unknown> = {}): Record<string, unknown> {
    return pushBody(`${receiver.url}${uniquePath(label)}`, overrides);
  }

  it('pushServerErrorRate 1: every authenticated push gets a generic 500/503 envelope and nothing is processed', async () => {
    sim.setFaults({ seed: 11, pushServerErrorRate: 1 });
    const statuses = new Set<number>();
    for (let i = 0; i < 12; i += 1) {
      const res = await stkPush(sim.url, accessToken, body('p5xx', { AccountReference: `ORD${i}` }));
      const env = res.json as Envelope;
      if (res.status === 500) expectEnvelope(res, 500, '500.003.1001', 'Internal Server Error');
      else expectEnvelope(res, 503, '503.001.01', 'Service Unavailable');
      expect(env.requestId).not.toMatch(/^ws_CO_/);
      statuses.add(res.status);
    }
    expect([...statuses].sort()).toEqual([500, 503]);
    expect(sim.pushes()).toHaveLength(0);
    expect(sim.stats()).toEqual({ ...ZERO_STATS, oauthRequests: 1, pushRequests: 12, pushErrorsInjected: 12 });
    const injections = sim.injections();
    expect(injections).toHaveLength(12);
    expect(injections.map((i) => i.kind)).toEqual(Array(12).fill('push_error'));
    expect(injections.map((i) => i.accountReference)).toEqual(Array.from({ length: 12 }, (_, i) => `ORD${i}`));
    expect(injections.map((i) => i.seq)).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
    expect(injections.every((i) => i.source === 'random' && (i.status === 500 || i.status === 503))).toBe(true);
  });

  it('pushSpikeArrestRate 1: HTTP 500 500.003.02 "Error Occurred: Spike Arrest Violation"', async () => {
    sim.setFaults({ pushSpikeArrestRate: 1 });
    const res = await stkPush(sim.url, accessToken, body('spike'));
    expectEnvelope(res, 500, '500.003.02', 'Error Occurred: Spike Arrest Violation');
    expect(sim.pushes()).toHaveLength(0);
    expect(sim.stats()).toMatchObject({ pushSpikeArrests: 1, pushErrorsInjected: 0, promptsSent: 0 });
    expect(sim.injections()).toMatchObject([
      { kind: 'push_spike_arrest', source: 'random', status: 500, errorCode: '500.003.02' },
    ]);
  });

  it('a canned pushErrors with 500.003.02 counts as a spike arrest; other canned codes as injected errors', async () => {
    sim.setFaults({
      pushErrors: {
        count: 1,
        status: 500,
        errorCode: '500.003.02',
        errorMessage: 'System is busy. Please try again in few minutes.',
      },
    });
    expectEnvelope(
      await stkPush(sim.url, accessToken, body('canned')),
      500,
      '500.003.02',
      'System is busy. Please try again in few minutes.',
    );
    sim.setFaults({ pushErrors: { count: 1, status: 500, errorCode: '500.003.03', errorMessage: 'Quota Violation' } });
    expectEnvelope(await stkPush(sim.url, accessToken, body('canned')), 500, '500.003.03', 'Quota Violation');
    expect(sim.stats()).toMatchObject({ pushSpikeArrests: 1, pushErrorsInjected: 1 });
    expect(sim.injections().map((i) => [i.kind, i.source])).toEqual([
      ['push_spike_arrest', 'canned'],
      ['push_error', 'canned'],
    ]);
  });

  it('faults apply only to authenticated calls; an invalid token is not counted as an injection', async () => {
    sim.setFaults({ pushServerErrorRate: 1 });
    expectEnvelope(await stkPush(sim.url, 'bogus', body('auth')), 404, '404.001.03', 'Invalid Access Token');
    expect(sim.injections()).toHaveLength(0);
    expect(sim.stats().pushErrorsInjected).toBe(0);
  });

  it('unprocessed push timeout: the client never gets an answer and nothing happened at Daraja', async () => {
    sim.setFaults({ pushTimeouts: { unprocessedRate: 1, holdMs: 60_000 } });
    const seen = await outcomeOf(
      postJson(`${sim.url}${PUSH_URL}`, accessToken, body('tu', { AccountReference: 'TU1' }), {}, 300),
    );
    expect(seen).toEqual({ kind: 'no_answer', error: 'client timeout' });
    expect(sim.pushes()).toHaveLength(0);
    expect(sim.stats()).toMatchObject({ pushRequests: 1, promptsSent: 0, pushTimeouts: 1, pushTimeoutsProcessed: 0 });
    expect(sim.injections()).toMatchObject([
      { kind: 'push_timeout_unprocessed', source: 'random', accountReference: 'TU1', holdMs: 60_000 },
    ]);
    expect(sim.injections()[0]?.checkoutRequestId).toBeUndefined();
    expect(sim.promptsFor({ accountReference: 'TU1' })).toEqual({
      pushRequests: 1,
      prompts: 0,
      checkoutRequestIds: [],
    });
  });

  it('processed push timeout: no answer, but the push is recorded, the customer pays and the callback arrives', async () => {
    sim.setFaults({ pushTimeouts: { processedRate: 1, holdMs: 60_000 } });
    const seen = await outcomeOf(
      postJson(`${sim.url}${PUSH_URL}`, accessToken, body('tp', { AccountReference: 'TP1' }), {}, 300),
    );
    expect(seen).toEqual({ kind: 'no_answer', error: 'client timeout' });
    const [push] = sim.pushes();
    expect(push).toMatchObject({ accountReference: 'TP1', injected: ['push_timeout_processed'] });
    const id = push?.checkoutRequestId ?? '';
    const [delivery] = await sim.waitForCallbacks(id, 1, 5000);
    expect(delivery).toMatchObject({ status: 200, copy: 1 });
    expect(sim.getPush(id)).toMatchObject({ state: 'answered', resultCode: 0 });
    expect(sim.stats()).toMatchObject({
      pushRequests: 1,
      promptsSent: 1,
      pushTimeouts: 1,
      pushTimeoutsProcessed: 1,
      callbacksSent: 1,
    });
    expect(sim.injections()).toMatchObject([
      { kind: 'push_timeout_processed', checkoutRequestId: id, accountReference: 'TP1' },
    ]);

    // STK query knows the push even though the client never learnt its CheckoutRequestID
    sim.setFaults({});
    const q = await stkQuery(sim.url, accessToken, queryBody(id));
    expect(q.status).toBe(200);
    expect((q.json as { ResultCode: string }).ResultCode).toBe('0');
  });

  it('after holdMs the held connection is dropped without any HTTP answer', async () => {
    sim.setFaults({ pushTimeouts: { processedRate: 1, holdMs: 50 } });
    const seen = await outcomeOf(postJson(`${sim.url}${PUSH_URL}`, accessToken, body('drop'), {}, 10_000));
    expect(seen.kind).toBe('no_answer');
    expect(seen.kind === 'no_answer' ? seen.error : '').toMatch(/socket hang up|ECONNRESET/);
    expect(sim.pushes()).toHaveLength(1);
  });

  it('a processed timeout of an invalid push loses the error answer and records no push', async () => {
    sim.setFaults({ pushTimeouts: { processedRate: 1, holdMs: 50 } });
    const seen = await outcomeOf(
      postJson(`${sim.url}${PUSH_URL}`, accessToken, body('bad', { Amount: 0 }), {}, 10_000),
    );
    expect(seen.kind).toBe('no_answer');
    expect(sim.pushes()).toHaveLength(0);
    expect(sim.stats()).toMatchObject({ pushTimeouts: 1, pushTimeoutsProcessed: 1, promptsSent: 0 });
  });

  it('mixed push rates split a seeded run between the outcomes, and the client sees exactly what stats() reports', async () => {
    sim.setFaults({
      seed: 2024,
      pushServerErrorRate: 0.15,
      pushSpikeArrestRate: 0.15,
      pushTimeouts: { processedRate: 0.15, unprocessedRate: 0.15, holdMs: 20 },
    });
    const seen = { ok: 0, serverError: 0, spike: 0, noAnswer: 0 };
    for (let i = 0; i < 80; i += 1) {
      const outcome = await outcomeOf(
        postJson(`${sim.url}${PUSH_URL}`, accessToken, body('mix', { AccountReference: `MIX${i}` }), {}, 10_000),
      );
      if (outcome.kind === 'no_answer') seen.noAnswer += 1;
      else if (outcome.res.status === 200) seen.ok += 1;
      else if ((outcome.res.json as Envelope).errorCode === '500.003.02') seen.spike += 1;
      else seen.serverError += 1;
    }
    const stats = sim.stats();
    expect(seen.serverError).toBe(stats.pushErrorsInjected);
    expect(seen.spike).toBe(stats.pushSpikeArrests);
    expect(seen.noAnswer).toBe(stats.pushTimeouts);
    expect(seen.ok + stats.pushTimeoutsProcessed).toBe(stats.promptsSent);
    expect(sim.pushes()).toHaveLength(stats.promptsSent);
    // with 80 draws every bucket is hit (deterministic for this seed)
    for (const n of [
      seen.ok,
      seen.serverError,
      seen.spike,
      stats.pushTimeoutsProcessed,
      stats.pushTimeouts - stats.pushTimeoutsProcessed,
    ]) {
      expect(n).toBeGreaterThan(0);
    }
    const byKind = (k: string): number => sim.injections().filter((i) => i.kind === k).length;
    expect(byKind('push_error')).toBe(stats.pushErrorsInjected);
    expect(byKind('push_spike_arrest')).toBe(stats.pushSpikeArrests);
    expect(byKind('push_timeout_processed')).toBe(stats.pushTimeoutsProcessed);
    expect(byKind('push_timeout_unprocessed')).toBe(stats.pushTimeouts - stats.pushTimeoutsProcessed);
    // each lost-answer push is marked, and carries the AccountReference it was sent with
    for (const p of sim.pushes().filter((x) => x.injected?.includes('push_timeout_processed'))) {
      expect(sim.injections().find((i) => i.checkoutRequestId === p.checkoutRequestId)?.accountReference).toBe(
        p.accountReference,
      );
    }
  });

  it('query faults: generic 5xx, spike arrest and timeouts, counted separately from push faults', async () => {
    const push = await stkPush(sim.url, accessToken, body('q', { PhoneNumber: 254700000007 }));
    const id = (push.json as { CheckoutRequestID: string }).CheckoutRequestID;

    sim.setFaults({ queryServerErrorRate: 1 });
    const e = await stkQuery(sim.url, accessToken, queryBody(id));
    expect([500, 503]).toContain(e.status);
    expect(['500.003.1001', '503.001.01']).toContain((e.json as Envelope).errorCode);

    sim.setFaults({ querySpikeArrestRate: 1 });
    expectEnvelope(
      await stkQuery(sim.url, accessToken, queryBody(id)),
      500,
      '500.003.02',
      'Error Occurred: Spike Arrest Violation',
    );

    sim.setFaults({ queryTimeouts: { rate: 1, holdMs: 60_000 } });
    expect(await outcomeOf(postJson(`${sim.url}${QUERY_URL}`, accessToken, queryBody(id), {}, 300))).toEqual({
      kind: 'no_answer',
      error: 'client timeout',
    });

    expect(sim.stats()).toMatchObject({
      queryErrorsInjected: 1,
      querySpikeArrests: 1,
      queryTimeouts: 1,
      pushErrorsInjected: 0,
      pushSpikeArrests: 0,
      pushTimeouts: 0,
    });
    expect(sim.injections().map((i) => i.kind)).toEqual(['query_error', 'query_spike_arrest', 'query_timeout']);

    sim.setFaults({});
    expectEnvelope(
      await stkQuery(sim.url, accessToken, queryBody(id)),
      500,
      '500.001.1001',
      'The transaction is being processed',
    );
  });

  it('254700000009 (answer_lost): processed, answer held then dropped, customer pays, callback sent', async () => {
    sim.setFaults({ pushTimeouts: { holdMs: 50 } });
    const seen = await outcomeOf(
      postJson(
        `${sim.url}${PUSH_URL}`,
        accessToken,
        body('lost9', { PhoneNumber: 254700000009, AccountReference: 'AL9' }),
        {},
        10_000,
      ),
    );
    expect(seen.kind).toBe('no_answer');
    const [push] = sim.pushes();
    expect(push).toMatchObject({
      scenario: 'answer_lost',
      accountReference: 'AL9',
      injected: ['push_timeout_processed'],
    });
    await sim.waitForCallbacks(push?.checkoutRequestId ?? '', 1, 5000);
    expect(sim.getPush(push?.checkoutRequestId ?? '')).toMatchObject({ state: 'answered', resultCode: 0 });
    expect(sim.injections()).toMatchObject([{ kind: 'push_timeout_processed', source: 'phone', holdMs: 50 }]);
    expect(sim.stats()).toMatchObject({ pushTimeouts: 1, pushTimeoutsProcessed: 1, promptsSent: 1 });
  });

  it('254700000010 (push_timeout): not processed, answer held then dropped, no push, no callback', async () => {
    sim.setFaults({ pushTimeouts: { holdMs: 50 } });
    const seen = await outcomeOf(
      postJson(
        `${sim.url}${PUSH_URL}`,
        accessToken,
        body('lost10', { PhoneNumber: '254700000010', AccountReference: 'PT10' }),
        {},
        10_000,
      ),
    );
    expect(seen.kind).toBe('no_answer');
    expect(sim.pushes()).toHaveLength(0);
    expect(sim.injections()).toMatchObject([
      { kind: 'push_timeout_unprocessed', source: 'phone', accountReference: 'PT10' },
    ]);
    expect(sim.promptsFor({ phoneNumber: '254700000010' })).toEqual({
      pushRequests: 1,
      prompts: 0,
      checkoutRequestIds: [],
    });
  });

  it('tokenInvalidateEveryCalls: the Nth authenticated call succeeds, then every token is dropped', async () => {
    sim.setFaults({ tokenInvalidateEveryCalls: 3 });
    for (let i = 0; i < 3; i += 1)
      expect((await stkQuery(sim.url, accessToken, queryBody('ws_CO_none'))).status).toBe(500);
    expectEnvelope(await stkPush(sim.url, accessToken, body('tok')), 404, '404.001.03', 'Invalid Access Token');
    expect(sim.stats().tokensInvalidated).toBe(1);

    const fresh = await token(sim.url);
    expect((await stkPush(sim.url, fresh, body('tok'))).status).toBe(200);
    expect((await stkPush(sim.url, fresh, body('tok'))).status).toBe(200);
    expect((await stkPush(sim.url, fresh, body('tok'))).status).toBe(200);
    expectEnvelope(await stkPush(sim.url, fresh, body('tok')), 404, '404.001.03', 'Invalid Access Token');
    expect(sim.stats().tokensInvalidated).toBe(2);
    expect(sim.injections()).toMatchObject([
      { kind: 'tokens_invalidated', source: 'every_n_calls' },
      { kind: 'tokens_invalidated', source: 'every_n_calls' },
    ]);
  });

  it('the one-shot invalidateTokens is counted and recorded too', async () => {
    sim.setFaults({ invalidateTokens: true });
    expect(sim.stats().tokensInvalidated).toBe(1);
    expect(sim.injections()).toMatchObject([{ kind: 'tokens_invalidated', source: 'one_shot' }]);
    expectEnvelope(await stkPush(sim.url, accessToken, body('one')), 404, '404.001.03', 'Invalid Access Token');
  });

  it('reset() and close() drop connections held by timeouts', async () => {
    sim.setFaults({ pushTimeouts: { unprocessedRate: 1, holdMs: 600_000 } });
    const pending = outcomeOf(postJson(`${sim.url}${PUSH_URL}`, accessToken, body('held'), {}, 600_000));
    // wait until the simulator has received it
    for (let i = 0; i < 200 && sim.stats().pushTimeouts === 0; i += 1) await new Promise((r) => setTimeout(r, 10));
    expect(sim.stats().pushTimeouts).toBe(1);
    sim.reset();
    const seen = await pending;
    expect(seen.kind).toBe('no_answer');
  });
});
