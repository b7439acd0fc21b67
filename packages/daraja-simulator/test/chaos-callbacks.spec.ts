/** Callback faults: drop, duplicate (sequential / concurrent), delay; per-push overrides through resolve(). */
import { startDarajaSimulator, type DarajaSimulator, type SimPush } from '../src';
import {
  pushBody,
  queryBody,
  request,
  sleep,
  startReceiver,
  stkPush,
  stkQuery,
  token,
  uniquePath,
  type Receiver,
} from './helpers';

const DELAY = 30;

function post(url: string, body: unknown): ReturnType<typeof request> {
  return request(url, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
}

describe('callback faults', () => {
  let sim: DarajaSimulator;
  let receiver: Receiver;
  let accessToken: string;

  async function push(label: string, overrides: Record<string, unknown> = {}): Promise<string> {
    const res = await stkPush(sim.url, accessToken, pushBody(`${receiver.url}${uniquePath(label)}`, overrides));
    expect(res.status).toBe(200);
    return (res.json as { CheckoutRequestID: string }).CheckoutRequestID;
  }

  /** Callbacks the receiver got for one push. */
  function receivedFor(id: string): string[] {
    return receiver.received.filter((r) => r.raw.includes(id)).map((r) => r.raw);
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

  it('dropRate 1: the payment completes and STK query reports it, but no callback is POSTed', async () => {
    sim.setFaults({ callbacks: { dropRate: 1 } });
    const id = await push('drop');
    await expect(sim.waitForCallbacks(id, 1, DELAY + 300)).rejects.toThrow(/timed out/);
    expect(receivedFor(id)).toHaveLength(0);
    expect(sim.getPush(id)).toMatchObject({ state: 'answered', resultCode: 0, injected: ['callback_dropped'] });
    const q = await stkQuery(sim.url, accessToken, queryBody(id));
    expect(q.status).toBe(200);
    expect((q.json as { ResultCode: string }).ResultCode).toBe('0');
    expect(sim.stats()).toMatchObject({ callbacksDropped: 1, callbacksSent: 0, promptsSent: 1 });
    expect(sim.injections()).toMatchObject([{ kind: 'callback_dropped', source: 'random', checkoutRequestId: id }]);
  });

  it('duplicateRate 1 with duplicateCopies 3: the identical callback arrives three times', async () => {
    sim.setFaults({ callbacks: { duplicateRate: 1, duplicateCopies: 3, duplicateGapMs: 20 } });
    const id = await push('dup3');
    const deliveries = await sim.waitForCallbacks(id, 3, 3000);
    expect(deliveries.map((d) => d.copy)).toEqual([1, 2, 3]);
    await receiver.waitFor(3);
    const raws = receivedFor(id);
    expect(raws).toHaveLength(3);
    expect(new Set(raws).size).toBe(1);
    expect(sim.stats()).toMatchObject({ callbacksDuplicated: 1, callbacksSent: 3 });
    expect(sim.injections()).toMatchObject([
      { kind: 'callback_duplicated', source: 'random', copies: 3, checkoutRequestId: id },
    ]);
  });

  it('duplicateGapMs 0 sends all copies at once (concurrently)', async () => {
    sim.setFaults({ callbacks: { duplicateRate: 1, duplicateCopies: 4, duplicateGapMs: 0 } });
    const id = await push('dup-concurrent');
    const deliveries = await sim.waitForCallbacks(id, 4, 3000);
    expect(deliveries.map((d) => d.copy).sort()).toEqual([1, 2, 3, 4]);
    await receiver.waitFor(4);
    expect(receivedFor(id)).toHaveLength(4);
  });

  it('delayRate 1: the push is answered on time (query says so) and the callback is POSTed delayMs later', async () => {
    sim.setFaults({ callbacks: { delayRate: 1, delayMs: 1500 } });
    const id = await push('late');
    // answered, but the callback is still held back
    for (let i = 0; i < 100 && sim.getPush(id)?.state !== 'answered'; i += 1) await sleep(10);
    expect(sim.getPush(id)).toMatchObject({ state: 'answered', injected: ['callback_delayed'] });
    const q = await stkQuery(sim.url, accessToken, queryBody(id));
    expect((q.json as { ResultCode: string }).ResultCode).toBe('0');
    expect(receivedFor(id)).toHaveLength(0);
    expect(sim.stats()).toMatchObject({ callbacksDelayed: 1, callbacksSent: 0 });

    await sim.waitForCallbacks(id, 1, 5000);
    expect(receivedFor(id)).toHaveLength(1);
    expect(sim.injections()).toMatchObject([{ kind: 'callback_delayed', delayMs: 1500, checkoutRequestId: id }]);
  });

  it('reset() cancels delayed callbacks', async () => {
    sim.setFaults({ callbacks: { delayRate: 1, delayMs: 300 } });
    const id = await push('late-reset');
    for (let i = 0; i < 100 && sim.getPush(id)?.state !== 'answered'; i += 1) await sleep(10);
    sim.reset();
    await sleep(500);
    expect(receivedFor(id)).toHaveLength(0);
  });

  it('the magic callback numbers are reported as injections with source "phone"', async () => {
    const lost = await push('p5', { PhoneNumber: 254700000005 });
    const dup = await push('p6', { PhoneNumber: 254700000006 });
    await sim.waitForCallbacks(dup, 2, 3000);
    for (let i = 0; i < 100 && sim.getPush(lost)?.state !== 'answered'; i += 1) await sleep(10);
    expect(sim.stats()).toMatchObject({ callbacksDropped: 1, callbacksDuplicated: 1, callbacksSent: 2 });
    const kinds = sim.injections().map((i) => [i.kind, i.source, i.checkoutRequestId]);
    expect(kinds).toEqual(
      expect.arrayContaining([
        ['callback_dropped', 'phone', lost],
        ['callback_duplicated', 'phone', dup],
      ]),
    );
  });

  it('resolve() options override the callback per push: drop, duplicates, delay', async () => {
    sim.setFaults({ callbacks: { dropRate: 1 } }); // overridden below
    const a = await push('r-a', { PhoneNumber: 254700000007 });
    const b = await push('r-b', { PhoneNumber: 254700000007 });
    const c = await push('r-c', { PhoneNumber: 254700000007 });

    await sim.resolve(a, 0, { callbackCopies: 2, duplicateGapMs: 0 });
    expect(receivedFor(a)).toHaveLength(2);

    await sim.resolve(b, 1032, { callbackCopies: 0 });
    expect(sim.getPush(b)).toMatchObject({ state: 'answered', resultCode: 1032, injected: ['callback_dropped'] });

    await sim.resolve(c, 0, { callbackCopies: 1, callbackDelayMs: 1000 });
    expect(receivedFor(c)).toHaveLength(0); // resolve() does not wait for a delayed callback
    await sim.waitForCallbacks(c, 1, 3000);
    expect(receivedFor(c)).toHaveLength(1);

    expect(sim.injections().map((i) => [i.kind, i.source])).toEqual([
      ['callback_duplicated', 'resolve'],
      ['callback_dropped', 'resolve'],
      ['callback_delayed', 'resolve'],
    ]);
    await expect(
      sim.resolve(await push('r-d', { PhoneNumber: 254700000007 }), 0, { callbackCopies: 11 }),
    ).rejects.toMatchObject({
      kind: 'invalid',
    });
  });

  it('POST /__sim/pushes/:id/resolve accepts the same options and rejects bad ones with 400', async () => {
    const id = await push('r-http', { PhoneNumber: 254700000007 });
    const bad = await post(`${sim.url}/__sim/pushes/${id}/resolve`, { resultCode: 0, callbackCopies: -1 });
    expect(bad.status).toBe(400);
    expect((bad.json as { error: string }).error).toMatch(/callbackCopies must be an integer between 0 and 10/);
    expect((await post(`${sim.url}/__sim/pushes/${id}/resolve`, { resultCode: 0, copies: 2 })).status).toBe(400);
    expect(sim.getPush(id)?.state).toBe('awaiting_customer'); // a rejected request changes nothing

    const ok = await post(`${sim.url}/__sim/pushes/${id}/resolve`, {
      resultCode: 0,
      callbackCopies: 3,
      duplicateGapMs: 0,
    });
    expect(ok.status).toBe(200);
    expect(receivedFor(id)).toHaveLength(3);
  });

  it('a seeded mix: every answered push gets exactly the planned number of callbacks', async () => {
    sim.setFaults({
      seed: 77,
      callbacks: {
        dropRate: 0.2,
        duplicateRate: 0.2,
        duplicateCopies: 2,
        duplicateGapMs: 0,
        delayRate: 0.2,
        delayMs: 150,
      },
    });
    const ids: string[] = [];
    for (let i = 0; i < 60; i += 1) ids.push(await push('mix', { AccountReference: `CB${i}` }));
    for (let i = 0; i < 300 && sim.pushes().some((p) => p.state !== 'answered'); i += 1) await sleep(10);

    const injections = sim.injections();
    const expectedFor = (p: SimPush): number => {
      if (p.injected?.includes('callback_dropped')) return 0;
      return (
        injections.find((i) => i.kind === 'callback_duplicated' && i.checkoutRequestId === p.checkoutRequestId)
          ?.copies ?? 1
      );
    };
    const expected = sim.pushes().reduce((n, p) => n + expectedFor(p), 0);
    await receiver.waitFor(expected, 5000);
    await sleep(300); // nothing more is coming
    expect(receiver.received).toHaveLength(expected);
    for (const p of sim.pushes()) expect(receivedFor(p.checkoutRequestId)).toHaveLength(expectedFor(p));

    const stats = sim.stats();
    expect(stats.callbacksSent).toBe(expected);
    expect(stats.callbacksDropped + stats.callbacksDuplicated).toBeLessThanOrEqual(60);
    for (const n of [stats.callbacksDropped, stats.callbacksDuplicated, stats.callbacksDelayed])
      expect(n).toBeGreaterThan(0);
    expect(injections.filter((i) => i.kind === 'callback_dropped')).toHaveLength(stats.callbacksDropped);
    expect(injections.filter((i) => i.kind === 'callback_duplicated')).toHaveLength(stats.callbacksDuplicated);
    expect(injections.filter((i) => i.kind === 'callback_delayed')).toHaveLength(stats.callbacksDelayed);
    // a dropped callback is never also delayed
    for (const p of sim.pushes())
      expect(p.injected?.includes('callback_dropped') && p.injected.includes('callback_delayed')).toBeFalsy();
  });
});
