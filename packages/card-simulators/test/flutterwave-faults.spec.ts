import { startFlutterwaveSimulator, type FlutterwaveSimulator } from '../src';
import {
  about,
  call,
  createLink,
  eventually,
  flw,
  FLW_HASH,
  FLW_KEY,
  jsonInit,
  paymentBody,
  PHONE,
  startReceiver,
  submitForm,
  type Receiver,
} from './helpers';

describe('Flutterwave faults and quirks', () => {
  let sim: FlutterwaveSimulator;
  let receiver: Receiver;

  beforeAll(async () => {
    receiver = await startReceiver();
    sim = await startFlutterwaveSimulator({ webhookUrl: `${receiver.url}/hooks/flw` });
  });
  afterAll(async () => {
    await sim.close();
    await receiver.close();
  });
  beforeEach(() => {
    sim.reset({ full: true });
    sim.configure({ webhookUrl: `${receiver.url}/hooks/flw` });
    receiver.answer(() => ({ status: 200, body: 'ok' }));
  });

  it('webhook duplicates: identical copies, marked as duplicates in the record', async () => {
    sim.setFaults({ webhooks: { duplicates: 2 } });
    const { link } = await createLink(sim.url, 'DUPW-1');
    await submitForm(link, { outcome: 'successful' });
    const got = await receiver.waitFor(3, about('DUPW-1'));
    expect(new Set(got.map((r) => r.raw)).size).toBe(1);
    const deliveries = await sim.waitForWebhooks('DUPW-1', 3);
    expect(deliveries.map((d) => d.duplicate).sort()).toEqual([false, true, true]);
    expect(deliveries.every((d) => d.acknowledged)).toBe(true);
  });

  it('webhook drop: the next N are never sent; drop:true drops all', async () => {
    sim.setFaults({ webhooks: { drop: 1 } });
    await createLink(sim.url, 'DROP-1');
    await createLink(sim.url, 'DROP-2');
    await sim.complete('DROP-1', 'successful');
    expect(sim.stats().webhooksDropped).toBe(1);
    expect(sim.faults().webhooks).toBeUndefined();
    await sim.complete('DROP-2', 'successful');
    await sim.waitForWebhooks('DROP-2');
    expect(sim.webhooks().map((w) => w.ref)).toEqual(['DROP-2']);

    sim.setFaults({ webhooks: { drop: true } });
    await createLink(sim.url, 'DROP-3');
    await sim.complete('DROP-3', 'successful');
    expect(sim.stats()).toMatchObject({ webhooksDropped: 2, webhooksScheduled: 0 });
    // verify still tells the truth even though no webhook arrived
    expect((await flw(sim.url, '/v3/transactions/verify_by_reference?tx_ref=DROP-3')).json.data.status).toBe(
      'successful',
    );
  });

  it('webhook delay holds the webhook back until flushWebhooks() (redirect first, webhook later)', async () => {
    sim.setFaults({ webhooks: { delayMs: 600_000 } });
    const { link } = await createLink(sim.url, 'DELAY-1');
    const res = await submitForm(link, { outcome: 'successful' });
    expect(res.status).toBe(303);
    expect(sim.stats()).toMatchObject({ webhooksScheduled: 1, webhooksSent: 0 });
    expect(sim.webhooks()).toHaveLength(0);
    expect(sim.flushWebhooks()).toBe(1);
    const [delivery] = await sim.waitForWebhooks('DELAY-1');
    expect(delivery).toMatchObject({ acknowledged: true, attempt: 1 });
    await receiver.waitFor(1, about('DELAY-1'));
  });

  it('retries (when enabled) while the receiver does not answer 200; 3xx counts as a failure', async () => {
    sim.configure({ webhookRetry: { attempts: 3, intervalMs: 600_000 } });
    let calls = 0;
    receiver.answer(() => {
      calls += 1;
      if (calls === 1) return { status: 500, body: 'boom' };
      if (calls === 2) return { status: 302, body: '', headers: { Location: '/elsewhere' } };
      return { status: 200, body: 'ok' };
    });
    await createLink(sim.url, 'RETRY-1');
    await sim.complete('RETRY-1', 'successful');
    const [first] = await sim.waitForWebhooks('RETRY-1', 1);
    expect(first).toMatchObject({ attempt: 1, status: 500, acknowledged: false, response: 'boom' });
    expect(first?.problems[0]).toMatch(/HTTP 500/);
    expect(sim.stats().webhooksScheduled).toBe(1);

    sim.flushWebhooks();
    const second = (await sim.waitForWebhooks('RETRY-1', 2))[1];
    expect(second).toMatchObject({ attempt: 2, status: 302, acknowledged: false });
    expect(sim.stats().webhooksScheduled).toBe(1);

    sim.flushWebhooks();
    const third = (await sim.waitForWebhooks('RETRY-1', 3))[2];
    expect(third).toMatchObject({ attempt: 3, status: 200, acknowledged: true });
    expect(sim.stats().webhooksScheduled).toBe(0);
  });

  it('no retries by default: an unanswered webhook is simply lost', async () => {
    receiver.answer(() => ({ status: 503, body: 'down' }));
    await createLink(sim.url, 'NORETRY-1');
    await sim.complete('NORETRY-1', 'successful');
    const [only] = await sim.waitForWebhooks('NORETRY-1');
    expect(only?.acknowledged).toBe(false);
    expect(sim.stats().webhooksScheduled).toBe(0);
  });

  it('down: API 503 envelope, hosted page 503, control API still works, nothing created', async () => {
    const { link } = await createLink(sim.url, 'DOWN-1');
    sim.setFaults({ down: true });
    const create = await flw(sim.url, '/v3/payments', { body: paymentBody('DOWN-2') });
    expect(create.status).toBe(503);
    expect(create.json.status).toBe('error');
    expect((await flw(sim.url, '/v3/transactions/1/verify')).status).toBe(503);
    const page = await call(link);
    expect(page.status).toBe(503);
    expect(page.headers.get('content-type')).toContain('text/html');
    expect((await submitForm(link, { outcome: 'successful' })).status).toBe(503);
    const state = await call(`${sim.url}/__sim/state`);
    expect(state.status).toBe(200);
    expect(state.json.faults).toEqual({ down: true });
    expect(sim.getCheckout('DOWN-2')).toBeUndefined();
    expect(sim.transactions()).toHaveLength(0);
    sim.setFaults({});
    expect((await flw(sim.url, '/v3/payments', { body: paymentBody('DOWN-2') })).status).toBe(200);
  });

  it('canned errors answer the next N calls of one endpoint group, then recover', async () => {
    sim.setFaults({ errors: { verify: { count: 2, status: 429, message: 'Rate limit exceeded' } } });
    await createLink(sim.url, 'CAN-1');
    const tx = (await sim.complete('CAN-1', 'successful')).transaction!;
    for (let i = 0; i < 2; i += 1) {
      const res = await flw(sim.url, `/v3/transactions/${tx.id}/verify`);
      expect(res.status).toBe(429);
      expect(res.json).toEqual({ status: 'error', message: 'Rate limit exceeded', data: null });
    }
    expect((await flw(sim.url, `/v3/transactions/${tx.id}/verify`)).status).toBe(200);
    expect(sim.stats().verifyRequests).toBe(3);
    expect(sim.faults().errors).toBeUndefined();
    await sim.waitForWebhooks('CAN-1');
  });

  it('applied canned error: the link IS created but the answer is a 503 (verify_by_reference before retrying)', async () => {
    sim.setFaults({
      errors: { payments: { count: 1, status: 503, message: 'Service unavailable, please try again', applied: true } },
    });
    const res = await flw(sim.url, '/v3/payments', { body: paymentBody('AMB-1') });
    expect(res.status).toBe(503);
    expect(sim.getCheckout('AMB-1')?.state).toBe('open');
    const retry = await flw(sim.url, '/v3/payments', { body: paymentBody('AMB-1') });
    expect(retry.status).toBe(400);
    expect(retry.json.message).toMatch(/Duplicate/);
  });

  it('latency holds the answer back after the request took effect (a client timeout does not undo it)', async () => {
    sim.setFaults({ latencyMs: { payments: 600_000 } });
    const controller = new AbortController();
    const pending = fetch(`${sim.url}/v3/payments`, {
      ...jsonInit('POST', paymentBody('SLOW-1'), { Authorization: `Bearer ${FLW_KEY}` }),
      signal: controller.signal,
    });
    await eventually(() => sim.getCheckout('SLOW-1'));
    controller.abort();
    await expect(pending).rejects.toThrow();
    expect(sim.getCheckout('SLOW-1')?.txRef).toBe('SLOW-1');
    expect(sim.stats().paymentRequests).toBe(1);
  });

  it('reset keeps dashboard settings; reset({full}) restores the options', async () => {
    sim.configure({ secretHash: 'changed-hash', webhookShape: 'legacy' });
    sim.reset();
    expect(sim.settings()).toMatchObject({
      secretHash: 'changed-hash',
      webhookShape: 'legacy',
      webhookUrl: `${receiver.url}/hooks/flw`,
    });
    sim.reset({ full: true });
    expect(sim.settings()).toMatchObject({
      secretHash: FLW_HASH,
      webhookShape: 'v3',
      webhookUrl: `${receiver.url}/hooks/flw`,
    });
    expect(() => sim.configure({ webhookUrl: 'ftp://nope' })).toThrow(/webhookUrl/);
  });
});

describe('Flutterwave control API over HTTP', () => {
  let sim: FlutterwaveSimulator;

  beforeAll(async () => {
    sim = await startFlutterwaveSimulator();
  });
  afterAll(async () => {
    await sim.close();
  });
  beforeEach(() => sim.reset({ full: true }));

  it('GET /__sim/state reports settings, checkouts, transactions, webhooks, stats and faults (minor units as strings)', async () => {
    await createLink(sim.url, 'ST-1', { amount: 12.5 });
    const state = await call(`${sim.url}/__sim/state`);
    expect(state.status).toBe(200);
    expect(Object.keys(state.json).sort()).toEqual([
      'checkouts',
      'faults',
      'refunds',
      'settings',
      'stats',
      'transactions',
      'webhooks',
    ]);
    expect(state.json.checkouts[0]).toMatchObject({ txRef: 'ST-1', amountMinor: '1250', currency: 'KES' });
    expect(state.json.stats.paymentRequests).toBe(1);
  });

  it('POST /__sim/faults validates strictly and replaces the faults', async () => {
    const typo = await call(`${sim.url}/__sim/faults`, jsonInit('POST', { dwon: true }));
    expect(typo.status).toBe(400);
    expect(typo.json.error).toMatch(/unknown fault key "dwon"/);
    const badStatus = await call(
      `${sim.url}/__sim/faults`,
      jsonInit('POST', { errors: { verify: { count: 1, status: 200, message: 'x' } } }),
    );
    expect(badStatus.status).toBe(400);
    const badLatency = await call(`${sim.url}/__sim/faults`, jsonInit('POST', { latencyMs: { everything: 5 } }));
    expect(badLatency.status).toBe(400);
    const ok = await call(
      `${sim.url}/__sim/faults`,
      jsonInit('POST', { webhooks: { duplicates: 1, drop: 2 }, latencyMs: { verify: 5 } }),
    );
    expect(ok.status).toBe(200);
    expect(ok.json.faults).toEqual({ latencyMs: { verify: 5 }, webhooks: { duplicates: 1, drop: 2 } });
    expect(sim.faults()).toEqual(ok.json.faults);
    expect((await call(`${sim.url}/__sim/faults`)).status).toBe(405);
  });

  it('POST /__sim/checkouts/:tx_ref/complete settles (with tamper fields), 404 unknown, 409 twice, 400 bad body', async () => {
    await createLink(sim.url, 'CTL-1');
    const done = await call(
      `${sim.url}/__sim/checkouts/CTL-1/complete`,
      jsonInit('POST', { outcome: 'successful', paymentType: 'mpesa', amount: 2000 }),
    );
    expect(done.status).toBe(200);
    expect(done.json.redirectUrl).toMatch(/status=successful&tx_ref=CTL-1&transaction_id=\d+$/);
    expect(done.json.transaction).toMatchObject({ amountMinor: '200000', paymentType: 'mpesa', status: 'successful' });
    expect(
      (await call(`${sim.url}/__sim/checkouts/CTL-1/complete`, jsonInit('POST', { outcome: 'successful' }))).status,
    ).toBe(409);
    expect(
      (await call(`${sim.url}/__sim/checkouts/NOPE/complete`, jsonInit('POST', { outcome: 'successful' }))).status,
    ).toBe(404);
    expect(
      (await call(`${sim.url}/__sim/checkouts/CTL-1/complete`, jsonInit('POST', { outcome: 'paid' }))).status,
    ).toBe(400);
    expect(
      (
        await call(
          `${sim.url}/__sim/checkouts/CTL-1/complete`,
          jsonInit('POST', { outcome: 'successful', amount: 1.234 }),
        )
      ).status,
    ).toBe(409);
    await createLink(sim.url, 'CTL-2');
    expect(
      (
        await call(
          `${sim.url}/__sim/checkouts/CTL-2/complete`,
          jsonInit('POST', { outcome: 'successful', amount: 1.234 }),
        )
      ).status,
    ).toBe(400);
    expect(
      (await call(`${sim.url}/__sim/checkouts/CTL-2/tamper`, jsonInit('POST', { amount: 1 }))).json.checkout.tamper,
    ).toEqual({ amount: 1 });
  });

  it('POST /__sim/settings changes the webhook URL and rejects bad values; unknown routes 404', async () => {
    const bad = await call(`${sim.url}/__sim/settings`, jsonInit('POST', { webhookUrl: 'nope' }));
    expect(bad.status).toBe(400);
    const typo = await call(`${sim.url}/__sim/settings`, jsonInit('POST', { webhookURL: 'http://x.test/' }));
    expect(typo.status).toBe(400);
    const ok = await call(
      `${sim.url}/__sim/settings`,
      jsonInit('POST', { webhookUrl: 'http://127.0.0.1:9/hooks', webhookRetry: { attempts: 3, intervalMs: 1800000 } }),
    );
    expect(ok.json.settings).toMatchObject({
      webhookUrl: 'http://127.0.0.1:9/hooks',
      webhookRetry: { attempts: 3, intervalMs: 1800000 },
    });
    expect((await call(`${sim.url}/__sim/nothing`)).status).toBe(404);
    const reset = await call(`${sim.url}/__sim/reset`, jsonInit('POST', { full: true }));
    expect(reset.json).toEqual({ reset: true, full: true });
    expect(sim.settings().webhookUrl).toBeNull();
  });
});

describe('Flutterwave logging', () => {
  it('never logs the secret key, the secret hash, full phone numbers, emails or webhook paths', async () => {
    const lines: string[] = [];
    const receiver = await startReceiver();
    const sim = await startFlutterwaveSimulator({
      webhookUrl: `${receiver.url}/hooks/secret-path-token`,
      log: (l) => lines.push(l),
    });
    try {
      await createLink(sim.url, 'LOG-1');
      await flw(sim.url, '/v3/charges?type=mpesa', {
        body: { tx_ref: 'LOG-2', amount: 10, currency: 'KES', email: 'x@y.co', phone_number: PHONE },
      });
      await sim.complete('LOG-1', 'successful');
      await sim.waitForWebhooks('LOG-1');
      await flw(sim.url, '/v3/transactions/1/verify', { key: 'FLWSECK_TEST-wrong-key' });
      sim.configure({ secretHash: 'another-secret-hash' });
      expect(lines.length).toBeGreaterThan(5);
      const all = lines.join('\n');
      for (const secret of [
        FLW_KEY,
        FLW_HASH,
        'another-secret-hash',
        'FLWSECK_TEST-wrong-key',
        PHONE,
        'walkin+0712345678',
        'x@y.co',
        'secret-path-token',
      ]) {
        expect(all).not.toContain(secret);
      }
      expect(all).toContain('2547******78');
    } finally {
      await sim.close();
      await receiver.close();
    }
  });
});
