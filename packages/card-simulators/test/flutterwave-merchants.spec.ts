import { startFlutterwaveSimulator, type FlutterwaveSimulator } from '../src';
import { about, FLW_HASH, flw, paymentBody, startReceiver, uniqueRef, type Receiver } from './helpers';

const SHOP_KEY = 'FLWSECK_TEST-shop-b-000000000000-X';
const SHOP_HASH = 'shop-b-secret-hash-0123456789';

describe('Flutterwave: several merchants (one secret key and secret hash each)', () => {
  let sim: FlutterwaveSimulator;
  let receiver: Receiver;

  beforeAll(async () => {
    receiver = await startReceiver();
    sim = await startFlutterwaveSimulator({ webhookUrl: `${receiver.url}/webhooks/flutterwave` });
  });
  afterAll(async () => {
    await sim.close();
    await receiver.close();
  });
  beforeEach(() => {
    sim.reset();
    sim.addMerchant({ id: 'shop-b', secretKey: SHOP_KEY, secretHash: SHOP_HASH });
    receiver.received.length = 0;
  });

  it("accepts an added merchant's key, records whose key each call carried, and shows no merchant another's transactions", async () => {
    const ref = uniqueRef('B');
    const created = await flw(sim.url, '/v3/payments', { key: SHOP_KEY, body: paymentBody(ref) });
    expect(created.status).toBe(200);
    expect(sim.getCheckout(ref)?.merchant).toBe('shop-b');
    await sim.complete(ref, 'successful');

    const own = await flw(sim.url, `/v3/transactions/verify_by_reference?tx_ref=${ref}`, { key: SHOP_KEY });
    expect(own.json.data.tx_ref).toBe(ref);
    // The default merchant's key: Flutterwave answers as for an id it never issued.
    const other = await flw(sim.url, `/v3/transactions/verify_by_reference?tx_ref=${ref}`);
    expect(other.status).toBe(400);
    expect(other.json).toEqual({ status: 'error', message: 'No transaction was found for this id', data: null });
    const id = sim.transactions()[0].id;
    expect((await flw(sim.url, `/v3/transactions/${id}/verify`)).json.message).toBe(
      'No transaction was found for this id',
    );
    expect((await flw(sim.url, `/v3/transactions/${id}/verify`, { key: SHOP_KEY })).json.status).toBe('success');
    expect((await flw(sim.url, `/v3/transactions/${id}/refund`, { body: { amount: 1 } })).json.message).toBe(
      'No transaction was found for this id',
    );

    const wrong = await flw(sim.url, '/v3/transactions/verify_by_reference?tx_ref=x', { key: 'FLWSECK_TEST-nope-X' });
    expect(wrong.status).toBe(401);
    expect(wrong.json.message).toBe('Invalid authorization key');

    expect(sim.apiCalls().map((c) => [c.endpoint, c.merchant])).toEqual([
      ['payments', 'shop-b'],
      ['verify', 'shop-b'],
      ['verify', 'default'],
      ['verify', 'default'],
      ['verify', 'shop-b'],
      ['refunds', 'default'],
      ['verify', null],
    ]);
    expect(sim.apiCalls()[1].path).toBe(`/v3/transactions/verify_by_reference?tx_ref=${ref}`);
  });

  it("signs each checkout's webhook with its own merchant's secret hash", async () => {
    const mine = uniqueRef('B');
    const theirs = uniqueRef('D');
    await flw(sim.url, '/v3/payments', { key: SHOP_KEY, body: paymentBody(mine) });
    await flw(sim.url, '/v3/payments', { body: paymentBody(theirs) });
    await sim.complete(mine, 'successful');
    await sim.complete(theirs, 'successful');
    const [b] = await receiver.waitFor(1, about(mine));
    const [d] = await receiver.waitFor(1, about(theirs));
    expect(b.headers['verif-hash']).toBe(SHOP_HASH);
    expect(d.headers['verif-hash']).toBe(FLW_HASH);
  });

  it('refuses a merchant without a key, or with the default key; replaces one by id; reset({full}) forgets them', async () => {
    expect(() => sim.addMerchant({ id: 'x', secretKey: '', secretHash: 'h' })).toThrow(/secretKey is required/);
    expect(() => sim.addMerchant({ id: 'x', secretKey: 'FLWSECK_TEST-smartduka-sim-X', secretHash: 'h' })).toThrow(
      /default merchant/,
    );
    sim.addMerchant({ id: 'shop-b', secretKey: 'FLWSECK_TEST-shop-b-rotated-X', secretHash: SHOP_HASH });
    expect((await flw(sim.url, '/v3/transactions/verify_by_reference?tx_ref=x', { key: SHOP_KEY })).status).toBe(401);
    sim.reset({ full: true });
    expect(
      (await flw(sim.url, '/v3/transactions/verify_by_reference?tx_ref=x', { key: 'FLWSECK_TEST-shop-b-rotated-X' }))
        .status,
    ).toBe(401);
  });
});
