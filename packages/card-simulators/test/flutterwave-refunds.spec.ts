import { startFlutterwaveSimulator, type FlutterwaveSimulator } from '../src';
import { call, createLink, flw, FLW_HASH, jsonInit, paymentBody, startReceiver, type Receiver } from './helpers';

const SHOP_KEY = 'FLWSECK_TEST-shop-r-000000000000-X';
const SHOP_HASH = 'shop-r-secret-hash-0123456789';

describe('Flutterwave v3 refunds: held, completed later, failed, refused, per merchant, webhooks', () => {
  let sim: FlutterwaveSimulator;
  let receiver: Receiver;

  beforeAll(async () => {
    receiver = await startReceiver();
    sim = await startFlutterwaveSimulator({ webhookUrl: `${receiver.url}/hook`, refundWebhooks: true });
  });
  afterAll(async () => {
    await sim.close();
    await receiver.close();
  });
  beforeEach(() => {
    sim.reset();
    sim.addMerchant({ id: 'shop-r', secretKey: SHOP_KEY, secretHash: SHOP_HASH });
    receiver.received.length = 0;
  });

  const refundHooks = () => receiver.received.filter((r) => r.json && 'AmountRefunded' in r.json);

  it('a card refund completes at once and its webhook is the flat PascalCase shape with verif-hash', async () => {
    await createLink(sim.url, 'RFW-1', { amount: 1000 });
    const tx = (await sim.complete('RFW-1', 'successful')).transaction!;
    const res = await flw(sim.url, `/v3/transactions/${tx.id}/refund`, { body: { amount: 400, comments: 'returned' } });
    expect(res.json.data).toMatchObject({ tx_id: tx.id, amount_refunded: 400, status: 'completed' });
    const [hook] = await receiver.waitFor(1, (r) => r.json?.id === res.json.data.id && 'AmountRefunded' in r.json);
    expect(hook.headers['verif-hash']).toBe(FLW_HASH);
    expect(hook.json).toMatchObject({
      id: res.json.data.id,
      AmountRefunded: 400,
      status: 'completed',
      TransactionId: tx.id,
      comments: 'returned',
    });
    expect(typeof hook.json.meta).toBe('string');
    expect(hook.json.event).toBeUndefined();
  });

  it('planRefunds pending holds a card refund until completeRefund, then GET and the webhook say completed', async () => {
    await createLink(sim.url, 'RFW-2', { amount: 1000 });
    const tx = (await sim.complete('RFW-2', 'successful')).transaction!;
    sim.planRefunds({ outcome: 'pending', count: 1 });
    const held = await flw(sim.url, `/v3/transactions/${tx.id}/refund`, { body: {} });
    expect(held.json.data.status).toBe('pending');
    expect((await flw(sim.url, `/v3/refunds/${held.json.data.id}`)).json.data.status).toBe('pending');
    expect(refundHooks()).toHaveLength(0);
    // Held money still counts: nothing is left to refund.
    expect((await flw(sim.url, `/v3/transactions/${tx.id}/refund`, { body: {} })).json.message).toBe(
      'Transaction has been fully refunded',
    );
    await sim.completeRefund(held.json.data.id);
    expect((await flw(sim.url, `/v3/refunds/${held.json.data.id}`)).json.data.status).toBe('completed');
    const [hook] = await receiver.waitFor(1, (r) => r.json?.id === held.json.data.id && 'AmountRefunded' in r.json);
    expect(hook.json).toMatchObject({ id: held.json.data.id, status: 'completed', AmountRefunded: 1000 });
  });

  it('failRefund fails a held refund: the amount is refundable again and the webhook says failed', async () => {
    await createLink(sim.url, 'RFW-3', { amount: 1000 });
    const tx = (await sim.complete('RFW-3', 'successful')).transaction!;
    sim.planRefunds({ outcome: 'pending' });
    const held = await flw(sim.url, `/v3/transactions/${tx.id}/refund`, { body: { amount: 600 } });
    sim.planRefunds(null);
    const failed = await sim.failRefund(held.json.data.id);
    expect(failed.status).toBe('failed');
    const [hook] = await receiver.waitFor(1, (r) => r.json?.id === held.json.data.id && 'AmountRefunded' in r.json);
    expect(hook.json).toMatchObject({ id: held.json.data.id, status: 'failed' });
    await expect(sim.completeRefund(held.json.data.id)).rejects.toMatchObject({ kind: 'conflict' });
    const again = await flw(sim.url, `/v3/transactions/${tx.id}/refund`, { body: {} });
    expect(again.json.data).toMatchObject({ amount_refunded: 1000, status: 'completed' });
  });

  it('planRefunds refuse answers 400 with the message and records nothing; count runs out', async () => {
    await createLink(sim.url, 'RFW-4', { amount: 1000 });
    const tx = (await sim.complete('RFW-4', 'successful')).transaction!;
    sim.planRefunds({ outcome: 'refuse', message: 'Insufficient balance to process refund', count: 1 });
    const refused = await flw(sim.url, `/v3/transactions/${tx.id}/refund`, { body: {} });
    expect(refused.status).toBe(400);
    expect(refused.json).toEqual({ status: 'error', message: 'Insufficient balance to process refund', data: null });
    expect(sim.refunds()).toHaveLength(0);
    const next = await flw(sim.url, `/v3/transactions/${tx.id}/refund`, { body: {} });
    expect(next.json.data.status).toBe('completed');
  });

  it('an M-Pesa refund planned completed is completed at once', async () => {
    await createLink(sim.url, 'RFW-5');
    const tx = (await sim.complete('RFW-5', { outcome: 'successful', paymentType: 'mpesa' })).transaction!;
    sim.planRefunds({ outcome: 'completed' });
    expect((await flw(sim.url, `/v3/transactions/${tx.id}/refund`, { body: {} })).json.data.status).toBe('completed');
  });

  it("another merchant's key sees neither the refund nor it in the list; its webhook carries its own hash", async () => {
    await flw(sim.url, '/v3/payments', { key: SHOP_KEY, body: paymentBody('RFW-6', { amount: 500 }) });
    const tx = (await sim.complete('RFW-6', 'successful')).transaction!;
    const own = await flw(sim.url, `/v3/transactions/${tx.id}/refund`, { key: SHOP_KEY, body: {} });
    const id = own.json.data.id;
    expect((await flw(sim.url, `/v3/refunds/${id}`, { key: SHOP_KEY })).json.data.id).toBe(id);
    const other = await flw(sim.url, `/v3/refunds/${id}`);
    expect(other.status).toBe(400);
    expect(other.json).toEqual({ status: 'error', message: 'No refund was found for this id', data: null });
    expect((await flw(sim.url, '/v3/refunds')).json.data).toHaveLength(0);
    expect((await flw(sim.url, '/v3/refunds', { key: SHOP_KEY })).json.data).toHaveLength(1);
    const [hook] = await receiver.waitFor(1, (r) => r.json?.id === id && 'AmountRefunded' in r.json);
    expect(hook.headers['verif-hash']).toBe(SHOP_HASH);
  });

  it('control routes: refund-plan, fail; bad plans are 400', async () => {
    await createLink(sim.url, 'RFW-7', { amount: 100 });
    const tx = (await sim.complete('RFW-7', 'successful')).transaction!;
    expect((await call(`${sim.url}/__sim/refund-plan`, jsonInit('POST', { outcome: 'later' }))).status).toBe(400);
    expect((await call(`${sim.url}/__sim/refund-plan`, jsonInit('POST', { outcome: 'pending', x: 1 }))).status).toBe(
      400,
    );
    expect((await call(`${sim.url}/__sim/refund-plan`, jsonInit('POST', { outcome: 'pending' }))).status).toBe(200);
    const held = await flw(sim.url, `/v3/transactions/${tx.id}/refund`, { body: {} });
    expect(held.json.data.status).toBe('pending');
    expect((await call(`${sim.url}/__sim/refund-plan`, jsonInit('POST', null))).status).toBe(200);
    const failed = await call(`${sim.url}/__sim/refunds/${held.json.data.id}/fail`, jsonInit('POST', {}));
    expect(failed.status).toBe(200);
    expect(failed.json.refund.status).toBe('failed');
    expect((await call(`${sim.url}/__sim/refunds/${held.json.data.id}/fail`, jsonInit('POST', {}))).status).toBe(409);
  });
});
