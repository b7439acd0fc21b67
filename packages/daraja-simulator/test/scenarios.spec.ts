import { MAGIC_NUMBERS, SimulatorError, startDarajaSimulator, type DarajaSimulator } from '../src';
import {
  expectEnvelope,
  pushBody,
  queryBody,
  sleep,
  startReceiver,
  stkPush,
  stkQuery,
  token,
  uniquePath,
  type Receiver,
} from './helpers';

const DELAY = 100;

interface StkCallbackJson {
  Body: {
    stkCallback: { CheckoutRequestID: string; ResultCode: unknown; ResultDesc: string; CallbackMetadata?: unknown };
  };
}

function stkOf(raw: string | undefined): StkCallbackJson['Body']['stkCallback'] {
  return (JSON.parse(raw ?? '{}') as StkCallbackJson).Body.stkCallback;
}

describe('magic phone numbers and resolve()', () => {
  let sim: DarajaSimulator;
  let receiver: Receiver;
  let accessToken: string;

  async function push(phone: number | string, label: string): Promise<string> {
    const res = await stkPush(
      sim.url,
      accessToken,
      pushBody(`${receiver.url}${uniquePath(label)}`, { PartyA: phone, PhoneNumber: phone }),
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

  it('documents exactly the twelve magic numbers', () => {
    expect(Object.keys(MAGIC_NUMBERS).sort()).toEqual([
      '254700000001',
      '254700000002',
      '254700000003',
      '254700000004',
      '254700000005',
      '254700000006',
      '254700000007',
      '254700000008',
      '254700000009',
      '254700000010',
      '254700000011',
      '254700000012',
    ]);
    for (const entry of Object.values(MAGIC_NUMBERS)) {
      expect(entry.scenario).toMatch(/^[a-z][a-z0-9_]*$/);
      expect(entry.description.length).toBeGreaterThan(10);
    }
  });

  it.each([
    ['254700000001', 'cancelled', 1032, 'Request cancelled by user'],
    ['254700000002', 'no_answer', 1037, 'DS timeout user cannot be reached'],
    ['254700000003', 'insufficient_funds', 1, 'The balance is insufficient for the transaction.'],
    ['254700000004', 'wrong_pin', 2001, 'The initiator information is invalid.'],
    // issue 8.14: the prompt never reached the SIM (wording as received in 2019, daraja-payloads/cb15)
    ['254700000012', 'prompt_not_delivered', 1036, '[STK_CB - ]SMSC ACK timeout.'],
  ])(
    '%s → %s: callback ResultCode %d (number) without CallbackMetadata; query gives the string',
    async (phone, scenario, code, desc) => {
      const id = await push(phone, scenario.replace('_', '-'));
      expect(sim.getPush(id)).toMatchObject({ scenario, state: 'awaiting_customer' });
      const [cb] = await receiver.waitFor(1);
      const stk = stkOf(cb?.raw);
      expect(stk.CheckoutRequestID).toBe(id);
      expect(stk.ResultCode).toBe(code);
      expect(stk.ResultDesc).toBe(desc);
      expect(stk).not.toHaveProperty('CallbackMetadata');
      expect(Object.keys(stk)).toEqual(['MerchantRequestID', 'CheckoutRequestID', 'ResultCode', 'ResultDesc']);
      expect(sim.getPush(id)).toMatchObject({ state: 'answered', resultCode: code, resultDesc: desc });
      expect(sim.getPush(id)?.receipt).toBeUndefined();

      const q = await stkQuery(sim.url, accessToken, queryBody(id));
      expect(q.status).toBe(200);
      expect(q.json).toMatchObject({ ResultCode: String(code), ResultDesc: desc });
    },
  );

  it('254700000005 succeeds but never sends the callback; query still reports "0"', async () => {
    const id = await push('254700000005', 'lost');
    await sleep(DELAY + 200);
    expect(receiver.received).toHaveLength(0);
    expect(sim.callbacks()).toHaveLength(0);
    expect(sim.stats().callbacksSent).toBe(0);
    const p = sim.getPush(id);
    expect(p).toMatchObject({ scenario: 'callback_lost', state: 'answered', resultCode: 0 });
    expect(p?.receipt).toMatch(/^[A-Z0-9]{10}$/);
    const q = await stkQuery(sim.url, accessToken, queryBody(id));
    expect(q.status).toBe(200);
    expect((q.json as { ResultCode: unknown }).ResultCode).toBe('0');
  });

  it('254700000006 sends the identical callback twice, ~100 ms apart', async () => {
    const id = await push(254700000006, 'dup');
    const [first, second] = await receiver.waitFor(2);
    expect(first?.raw).toBe(second?.raw);
    expect(stkOf(first?.raw).ResultCode).toBe(0);
    expect((second?.at ?? 0) - (first?.at ?? 0)).toBeGreaterThanOrEqual(80);
    expect((second?.at ?? 0) - (first?.at ?? 0)).toBeLessThan(1000);
    const deliveries = await sim.waitForCallbacks(id, 2);
    expect(deliveries).toHaveLength(2);
    expect(deliveries[0]?.body).toEqual(deliveries[1]?.body);
    await sleep(300);
    expect(receiver.received).toHaveLength(2);
    expect(sim.stats().callbacksSent).toBe(2);
  });

  it('254700000007 never answers until resolve(); query keeps saying "being processed"', async () => {
    const id = await push('254700000007', 'manual');
    await sleep(DELAY * 2 + 50);
    expect(receiver.received).toHaveLength(0);
    expect(sim.getPush(id)).toMatchObject({ scenario: 'never_answers', state: 'awaiting_customer' });
    const pending = await stkQuery(sim.url, accessToken, queryBody(id));
    expectEnvelope(pending, 500, '500.001.1001', 'The transaction is being processed');
    expect((pending.json as { requestId: string }).requestId).toBe(id);

    await sim.resolve(id, 0);
    expect(receiver.received).toHaveLength(1);
    expect(stkOf(receiver.received[0]?.raw).ResultCode).toBe(0);
    const done = await stkQuery(sim.url, accessToken, queryBody(id));
    expect(done.status).toBe(200);
    expect((done.json as { ResultCode: unknown }).ResultCode).toBe('0');
  });

  it('254700000008 is rejected at once with "Unable to lock subscriber" and stores no push', async () => {
    const res = await stkPush(
      sim.url,
      accessToken,
      pushBody(`${receiver.url}/hooks/daraja/stk/lock`, { PhoneNumber: 254700000008 }),
    );
    expectEnvelope(
      res,
      500,
      '500.001.1001',
      'Unable to lock subscriber, a transaction is already in process for the current subscriber',
    );
    expect(sim.pushes()).toHaveLength(0);
    await sleep(DELAY + 100);
    expect(receiver.received).toHaveLength(0);
  });

  it('resolve() answers early with the given code and cancels the scheduled answer', async () => {
    const id = await push(254708374149, 'early');
    await sim.resolve(id, 1032);
    expect(receiver.received).toHaveLength(1);
    expect(stkOf(receiver.received[0]?.raw)).toMatchObject({
      ResultCode: 1032,
      ResultDesc: 'Request cancelled by user',
    });
    await sleep(DELAY + 150);
    expect(receiver.received).toHaveLength(1);
    expect(sim.getPush(id)).toMatchObject({ state: 'answered', resultCode: 1032 });
  });

  it('resolve() honours a scenario that drops callbacks', async () => {
    const id = await push('254700000005', 'lost-resolve');
    await sim.resolve(id, 1);
    expect(sim.getPush(id)).toMatchObject({ state: 'answered', resultCode: 1 });
    expect(receiver.received).toHaveLength(0);
  });

  it('resolve() rejects unknown ids, already answered pushes and bad codes', async () => {
    await expect(sim.resolve('ws_CO_nope', 0)).rejects.toMatchObject({ kind: 'not_found' });
    const id = await push('254700000007', 'twice');
    await expect(sim.resolve(id, 1.5)).rejects.toBeInstanceOf(SimulatorError);
    await sim.resolve(id, 1037);
    await expect(sim.resolve(id, 0)).rejects.toMatchObject({ kind: 'already_answered' });
  });

  it('records receiver errors and non-2xx statuses without retrying', async () => {
    const failing = await startReceiver(500);
    const closedPort = await startReceiver();
    const deadUrl = `${closedPort.url}/hooks/daraja/stk/dead`;
    await closedPort.close();
    try {
      const r1 = await stkPush(sim.url, accessToken, pushBody(`${failing.url}/hooks/daraja/stk/fail`));
      const r2 = await stkPush(sim.url, accessToken, pushBody(deadUrl));
      const id1 = (r1.json as { CheckoutRequestID: string }).CheckoutRequestID;
      const id2 = (r2.json as { CheckoutRequestID: string }).CheckoutRequestID;
      const [d1] = await sim.waitForCallbacks(id1);
      const [d2] = await sim.waitForCallbacks(id2);
      expect(d1).toMatchObject({ status: 500 });
      expect(d1?.error).toBeUndefined();
      expect(d2?.status).toBeUndefined();
      expect(d2?.error).toMatch(/ECONNREFUSED/);
      await sleep(DELAY + 200);
      expect(failing.received).toHaveLength(1);
      expect(sim.callbacks()).toHaveLength(2);
    } finally {
      await failing.close();
    }
  });
});
