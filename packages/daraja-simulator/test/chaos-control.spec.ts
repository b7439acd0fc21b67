/** Reproducibility (seed), validation, the control API for faults, start-up faults, env vars and promptsFor(). */
import {
  faultsFromEnv,
  mulberry32,
  SimulatorError,
  startDarajaSimulator,
  type DarajaSimulator,
  type SimFaults,
} from '../src';
import {
  expectEnvelope,
  outcomeOf,
  postJson,
  pushBody,
  request,
  sleep,
  startReceiver,
  stkPush,
  token,
  uniquePath,
  ZERO_STATS,
  type Envelope,
  type Receiver,
} from './helpers';

const PUSH_URL = '/mpesa/stkpush/v1/processrequest';

function post(url: string, body: unknown): ReturnType<typeof request> {
  return request(url, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

describe('mulberry32', () => {
  it('is deterministic per seed, stays in [0, 1) and is roughly uniform', () => {
    const a = mulberry32(42);
    const b = mulberry32(42);
    const c = mulberry32(43);
    const seqA = Array.from({ length: 1000 }, () => a());
    const seqB = Array.from({ length: 1000 }, () => b());
    const seqC = Array.from({ length: 1000 }, () => c());
    expect(seqA).toEqual(seqB);
    expect(seqA).not.toEqual(seqC);
    expect(seqA.every((x) => x >= 0 && x < 1)).toBe(true);
    const gen = mulberry32(7);
    const buckets = Array(10).fill(0) as number[];
    for (let i = 0; i < 100_000; i += 1) buckets[Math.floor(gen() * 10)] += 1;
    for (const n of buckets) expect(Math.abs(n - 10_000)).toBeLessThan(500);
  });
});

describe('seeded runs, control API and promptsFor', () => {
  let sim: DarajaSimulator;
  let receiver: Receiver;
  let accessToken: string;

  beforeAll(async () => {
    sim = await startDarajaSimulator({ callbackDelayMs: 20 });
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

  const CHAOS: SimFaults = {
    pushServerErrorRate: 0.1,
    pushSpikeArrestRate: 0.1,
    pushTimeouts: { processedRate: 0.1, unprocessedRate: 0.1, holdMs: 10 },
    callbacks: { dropRate: 0.2, duplicateRate: 0.2, duplicateGapMs: 0 },
  };

  /** 40 sequential pushes; returns what the client saw, in order. */
  async function run(): Promise<string[]> {
    const seen: string[] = [];
    for (let i = 0; i < 40; i += 1) {
      const o = await outcomeOf(
        postJson(
          `${sim.url}${PUSH_URL}`,
          accessToken,
          pushBody(`${receiver.url}${uniquePath('seed')}`, { AccountReference: `S${i}` }),
          {},
          10_000,
        ),
      );
      seen.push(
        o.kind === 'no_answer' ? 'no_answer' : o.res.status === 200 ? 'ok' : (o.res.json as Envelope).errorCode,
      );
    }
    for (let i = 0; i < 200 && sim.pushes().some((p) => p.state !== 'answered'); i += 1) await sleep(10);
    return seen;
  }

  /** What was injected into which payment (sorted: pushes and customer answers interleave by timing). */
  function injectionSummary(): string[] {
    return sim
      .injections()
      .map(
        (i) =>
          `${i.kind}:${i.accountReference ?? (i.checkoutRequestId ? (sim.getPush(i.checkoutRequestId)?.accountReference ?? '?') : '-')}`,
      )
      .sort();
  }

  it('the same seed makes the same choices; another seed makes different ones', async () => {
    sim.setFaults({ ...CHAOS, seed: 123 });
    const first = await run();
    const firstInjections = injectionSummary();
    // callbacksSent depends on how many deliveries finished yet; every fault counter must match
    const faultStats = (): Record<string, number> => {
      const { callbacksSent: _inFlight, ...rest } = sim.stats();
      return rest;
    };
    const firstStats = faultStats();

    sim.reset();
    accessToken = await token(sim.url);
    sim.setFaults({ ...CHAOS, seed: 123 });
    expect(await run()).toEqual(first);
    expect(injectionSummary()).toEqual(firstInjections);
    expect(faultStats()).toEqual(firstStats);

    sim.reset();
    accessToken = await token(sim.url);
    sim.setFaults({ ...CHAOS, seed: 124 });
    expect(await run()).not.toEqual(first);
  });

  it('without a seed a random one is chosen and reported, and replaying it reproduces the run', async () => {
    sim.setFaults(CHAOS);
    const seed = sim.faults().seed;
    expect(Number.isInteger(seed)).toBe(true);
    const first = await run();
    const firstInjections = injectionSummary();

    sim.reset();
    accessToken = await token(sim.url);
    sim.setFaults({ ...CHAOS, seed });
    expect(await run()).toEqual(first);
    expect(injectionSummary()).toEqual(firstInjections);
  });

  it('faults without randomness report no seed (unless one was given)', () => {
    sim.setFaults({ down: true });
    expect(sim.faults()).toEqual({ down: true });
    sim.setFaults({ seed: 5, latencyMs: { push: 1 } });
    expect(sim.faults()).toEqual({ seed: 5, latencyMs: { push: 1 } });
  });

  it('POST /__sim/faults sets the new faults and echoes them; GET /__sim/state shows them', async () => {
    const faults = {
      seed: 9,
      pushSpikeArrestRate: 0.5,
      queryTimeouts: { rate: 0.25, holdMs: 1000 },
      callbacks: { delayRate: 0.1, delayMs: 5000 },
      tokenInvalidateEveryCalls: 100,
    };
    const res = await post(`${sim.url}/__sim/faults`, faults);
    expect(res.status).toBe(200);
    expect(res.json).toEqual({ faults });
    expect(((await request(`${sim.url}/__sim/state`)).json as { faults: unknown }).faults).toEqual(faults);
    expect(sim.faults()).toEqual(faults);
  });

  it.each([
    [{ callbacks: { dropRate: 1.5 } }, 'callbacks.dropRate must be a number between 0 and 1, got 1.5'],
    [{ callbacks: { dropRate: -0.1 } }, 'callbacks.dropRate must be a number between 0 and 1'],
    [{ callbacks: { dropRate: '0.1' } }, 'callbacks.dropRate must be a number between 0 and 1, got "0.1"'],
    [
      { callbacks: { dropRate: 0.6, duplicateRate: 0.5 } },
      'callbacks.dropRate and callbacks.duplicateRate add up to 1.1',
    ],
    [{ callbacks: { delayRate: 0.5 } }, 'callbacks.delayMs is required when callbacks.delayRate > 0'],
    [
      { callbacks: { duplicateRate: 0.5, duplicateCopies: 1 } },
      'callbacks.duplicateCopies must be an integer between 2 and 10',
    ],
    [{ callbacks: { dropRatio: 0.1 } }, 'unknown callbacks key "dropRatio"'],
    [{ pushServerErrorRate: 2 }, 'pushServerErrorRate must be a number between 0 and 1'],
    [{ pushSpikeArrestRate: 0.5, pushTimeouts: { processedRate: 0.3, unprocessedRate: 0.3 } }, 'must not exceed 1'],
    [{ pushTimeouts: { processedRate: 0.1, holdMs: 0 } }, 'pushTimeouts.holdMs must be an integer between 1 and'],
    [{ pushTimeouts: { processed: true } }, 'unknown pushTimeouts key "processed"'],
    [{ queryTimeouts: { rate: 0.5, processedRate: 0.1 } }, 'unknown queryTimeouts key "processedRate"'],
    [
      { querySpikeArrestRate: 0.7, queryServerErrorRate: 0.7 },
      'queryServerErrorRate, querySpikeArrestRate and queryTimeouts.rate add up to 1.4',
    ],
    [{ seed: -1 }, 'seed must be an integer between 0 and 4294967295'],
    [{ seed: 1.5 }, 'seed must be an integer'],
    [{ seed: 4294967296 }, 'seed must be an integer'],
    [{ tokenInvalidateEveryCalls: 0 }, 'tokenInvalidateEveryCalls must be an integer between 1 and'],
    [{ chaos: true }, 'unknown fault "chaos"'],
  ])('POST /__sim/faults %j → 400 and changes nothing', async (faults, message) => {
    sim.setFaults({ seed: 1, pushSpikeArrestRate: 0.5 });
    const res = await post(`${sim.url}/__sim/faults`, faults);
    expect(res.status).toBe(400);
    expect((res.json as { error: string }).error).toContain(message);
    expect(sim.faults()).toEqual({ seed: 1, pushSpikeArrestRate: 0.5 });
  });

  it('setFaults() and startDarajaSimulator({faults}) reject bad faults with the same messages', async () => {
    expect(() => sim.setFaults({ callbacks: { dropRate: 3 } })).toThrow(SimulatorError);
    expect(() => sim.setFaults({ callbacks: { dropRate: 3 } })).toThrow(
      /invalid faults: callbacks.dropRate must be a number between 0 and 1/,
    );
    await expect(startDarajaSimulator({ faults: { pushSpikeArrestRate: -1 } })).rejects.toThrow(
      /SimulatorOptions.faults: pushSpikeArrestRate must be/,
    );
  });

  it('start-up faults apply from the start and come back after reset()', async () => {
    const chaos = await startDarajaSimulator({
      callbackDelayMs: 20,
      faults: { seed: 3, pushSpikeArrestRate: 1, invalidateTokens: true },
    });
    try {
      expect(chaos.faults()).toEqual({ seed: 3, pushSpikeArrestRate: 1 });
      const t = await token(chaos.url);
      expectEnvelope(
        await stkPush(chaos.url, t, pushBody(`${receiver.url}/hooks/startup`)),
        500,
        '500.003.02',
        'Error Occurred: Spike Arrest Violation',
      );
      chaos.setFaults({});
      expect((await stkPush(chaos.url, t, pushBody(`${receiver.url}/hooks/startup`))).status).toBe(200);
      expect((await post(`${chaos.url}/__sim/reset`, '')).status).toBe(200);
      expect(chaos.faults()).toEqual({ seed: 3, pushSpikeArrestRate: 1 });
      expect(chaos.stats()).toEqual(ZERO_STATS);
      const t2 = await token(chaos.url);
      expect((await stkPush(chaos.url, t2, pushBody(`${receiver.url}/hooks/startup`))).status).toBe(500);
    } finally {
      await chaos.close();
    }
  });

  it('GET /__sim/stats and /__sim/injections expose the counters and the log', async () => {
    sim.setFaults({ pushSpikeArrestRate: 1 });
    await stkPush(sim.url, accessToken, pushBody(`${receiver.url}/hooks/x`, { AccountReference: 'INJ1' }));
    const stats = await request(`${sim.url}/__sim/stats`);
    expect(stats.json).toEqual({ stats: { ...ZERO_STATS, oauthRequests: 1, pushRequests: 1, pushSpikeArrests: 1 } });
    const injections = await request(`${sim.url}/__sim/injections`);
    expect(injections.json).toMatchObject({
      injections: [
        {
          seq: 1,
          kind: 'push_spike_arrest',
          source: 'random',
          accountReference: 'INJ1',
          status: 500,
          errorCode: '500.003.02',
        },
      ],
    });
    expect(typeof (injections.json as { injections: Array<{ at: unknown }> }).injections[0]?.at).toBe('string');
    expect((await post(`${sim.url}/__sim/stats`, {})).status).toBe(405);
  });

  it('promptsFor counts push requests and prompts per AccountReference and phone', async () => {
    const url = `${receiver.url}/hooks/prompts`;
    // a retried payment: spike arrest first, then accepted → 2 requests, 1 prompt
    sim.setFaults({
      pushErrors: {
        count: 1,
        status: 500,
        errorCode: '500.003.02',
        errorMessage: 'Error Occurred: Spike Arrest Violation',
      },
    });
    expect(
      (await stkPush(sim.url, accessToken, pushBody(url, { AccountReference: 'ORD1', PhoneNumber: 254711000001 })))
        .status,
    ).toBe(500);
    const ok = await stkPush(
      sim.url,
      accessToken,
      pushBody(url, { AccountReference: 'ORD1', PhoneNumber: 254711000001 }),
    );
    const id1 = (ok.json as { CheckoutRequestID: string }).CheckoutRequestID;
    // a second prompt for another payment to the same phone; a push with a bad token and an invalid push for ORD3
    await stkPush(sim.url, accessToken, pushBody(url, { AccountReference: 'ORD2', PhoneNumber: '254711000001' }));
    await stkPush(sim.url, 'bogus', pushBody(url, { AccountReference: 'ORD3' }));
    await stkPush(sim.url, accessToken, pushBody(url, { AccountReference: 'ORD3', Amount: 0 }));

    expect(sim.promptsFor({ accountReference: 'ORD1' })).toEqual({
      pushRequests: 2,
      prompts: 1,
      checkoutRequestIds: [id1],
    });
    expect(sim.promptsFor({ phoneNumber: 254711000001 })).toMatchObject({ pushRequests: 3, prompts: 2 });
    expect(sim.promptsFor({ accountReference: 'ORD2', phoneNumber: '254711000001' })).toMatchObject({
      pushRequests: 1,
      prompts: 1,
    });
    expect(sim.promptsFor({ accountReference: 'ORD3' })).toEqual({
      pushRequests: 2,
      prompts: 0,
      checkoutRequestIds: [],
    });
    expect(sim.promptsFor({ accountReference: 'NOPE' })).toEqual({
      pushRequests: 0,
      prompts: 0,
      checkoutRequestIds: [],
    });
    expect(() => sim.promptsFor({})).toThrow(/accountReference and\/or a phoneNumber/);

    const viaHttp = await request(`${sim.url}/__sim/prompts?accountReference=ORD1`);
    expect(viaHttp.json).toEqual({ pushRequests: 2, prompts: 1, checkoutRequestIds: [id1] });
    expect((await request(`${sim.url}/__sim/prompts?phoneNumber=254711000001`)).json).toMatchObject({
      pushRequests: 3,
      prompts: 2,
    });
    expect((await request(`${sim.url}/__sim/prompts`)).status).toBe(400);
  });
});

describe('faultsFromEnv (CLI)', () => {
  it('returns {} when nothing is set', () => {
    expect(faultsFromEnv({ SIM_PORT: '4010' })).toEqual({});
  });

  it('builds faults from SIM_FAULT_* vars', () => {
    expect(
      faultsFromEnv({
        SIM_FAULT_SEED: '42',
        SIM_FAULT_CALLBACK_DROP_RATE: '0.1',
        SIM_FAULT_CALLBACK_DUPLICATE_RATE: '0.05',
        SIM_FAULT_CALLBACK_DUPLICATE_COPIES: '3',
        SIM_FAULT_CALLBACK_DUPLICATE_GAP_MS: '0',
        SIM_FAULT_CALLBACK_DELAY_RATE: '0.1',
        SIM_FAULT_CALLBACK_DELAY_MS: '45000',
        SIM_FAULT_PUSH_SERVER_ERROR_RATE: '0.02',
        SIM_FAULT_PUSH_SPIKE_ARREST_RATE: '0.03',
        SIM_FAULT_PUSH_TIMEOUT_PROCESSED_RATE: '0.04',
        SIM_FAULT_PUSH_TIMEOUT_UNPROCESSED_RATE: '0.01',
        SIM_FAULT_PUSH_TIMEOUT_HOLD_MS: '20000',
        SIM_FAULT_QUERY_SERVER_ERROR_RATE: '0.05',
        SIM_FAULT_QUERY_SPIKE_ARREST_RATE: '0.05',
        SIM_FAULT_QUERY_TIMEOUT_RATE: '0.05',
        SIM_FAULT_QUERY_TIMEOUT_HOLD_MS: '20000',
        SIM_FAULT_TOKEN_INVALIDATE_EVERY_CALLS: '25',
        SIM_FAULT_LATENCY_PUSH_MS: '100',
        SIM_FAULT_DOWN: 'false',
      }),
    ).toEqual({
      seed: 42,
      down: false,
      latencyMs: { push: 100 },
      callbacks: {
        dropRate: 0.1,
        duplicateRate: 0.05,
        duplicateCopies: 3,
        duplicateGapMs: 0,
        delayRate: 0.1,
        delayMs: 45000,
      },
      pushServerErrorRate: 0.02,
      pushSpikeArrestRate: 0.03,
      pushTimeouts: { processedRate: 0.04, unprocessedRate: 0.01, holdMs: 20000 },
      queryServerErrorRate: 0.05,
      querySpikeArrestRate: 0.05,
      queryTimeouts: { rate: 0.05, holdMs: 20000 },
      tokenInvalidateEveryCalls: 25,
    });
  });

  it('merges SIM_FAULTS JSON with SIM_FAULT_* (the single vars win)', () => {
    expect(
      faultsFromEnv({
        SIM_FAULTS: '{"seed":1,"callbacks":{"dropRate":0.5,"duplicateRate":0.1}}',
        SIM_FAULT_CALLBACK_DROP_RATE: '0.2',
      }),
    ).toEqual({ seed: 1, callbacks: { dropRate: 0.2, duplicateRate: 0.1 } });
  });

  it.each([
    [
      { SIM_FAULT_CALLBACK_DROP_RATE: 'ten percent' },
      'SIM_FAULT_CALLBACK_DROP_RATE must be a non-negative number, got "ten percent"',
    ],
    [{ SIM_FAULT_CALLBACK_DROP_RATE: '1.5' }, 'callbacks.dropRate must be a number between 0 and 1, got 1.5'],
    [{ SIM_FAULT_CALLBAK_DROP_RATE: '0.1' }, 'unknown env var SIM_FAULT_CALLBAK_DROP_RATE'],
    [{ SIM_FAULT_DOWN: 'maybe' }, 'SIM_FAULT_DOWN must be true or false'],
    [{ SIM_FAULTS: '{nope' }, 'SIM_FAULTS is not valid JSON'],
    [{ SIM_FAULTS: '[1]' }, 'SIM_FAULTS must be a JSON object'],
    [{ SIM_FAULTS: '{"callbacks":{"delayRate":0.5}}' }, 'callbacks.delayMs is required'],
  ])('rejects %j', (env, message) => {
    expect(() => faultsFromEnv(env)).toThrow(message);
  });
});
