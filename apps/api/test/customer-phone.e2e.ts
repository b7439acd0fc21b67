import type { FlutterwaveSimulator, PesapalSimulator } from '@smartduka/card-simulators';
import { sql } from 'drizzle-orm';
import { phoneHash } from '../src/payments/phone-hash';
import { AllProviders, startWithAllProviders } from './helpers/all-providers';
import { TEST_CALLBACK_SECRET, TestApp } from './helpers/test-app';

/**
 * The customer's phone number through each provider's init, over HTTP (one app with M-Pesa,
 * Flutterwave and Pesapal, each against its simulator):
 * - the Idempotency-Key's request hash covers the phone: the same key with another customer's
 *   number is another request (409 IDEMPOTENCY_KEY_REUSED), never a replay of the first answer;
 * - what is stored (payments.phone_masked, the audit events) and what is answered (the init
 *   answer, GET /payments/:id) holds the masked number only; the phone hash is the keyed one.
 */

const FLW_SECRET_KEY = 'FLWSECK_TEST-e2ephone0000000000000000-X';
const FLW_SECRET_HASH = 'e2e-phone-flutterwave-secret-hash-012345';

type Rows<T> = { rows: T[] };
const rowsOf = <T>(r: unknown): T[] => (r as Rows<T>).rows ?? (r as T[]);

describe('the customer phone through M-Pesa, Flutterwave and Pesapal init', () => {
  let t: TestApp;
  let flw: FlutterwaveSimulator;
  let pesapal: PesapalSimulator;
  let auth: string;
  let n = 0;

  let all: AllProviders | undefined;
  beforeAll(async () => {
    all = await startWithAllProviders({
      flwSecretKey: FLW_SECRET_KEY,
      flwSecretHash: FLW_SECRET_HASH,
      flwWebhooks: true,
    });
    ({ t, flw, pesapal } = all);
    auth = `Bearer ${t.token('shop-phone')}`;
  });
  afterAll(async () => {
    await all?.close();
  });

  async function order(total: number): Promise<string> {
    const id = `PHONE-${++n}`;
    expect((await t.http().post('/orders').set('Authorization', auth).send({ id, total })).status).toBe(201);
    return id;
  }

  interface Provider {
    name: string;
    /** the init request for `orderId` paid from `phone` */
    init(orderId: string, phone: string, key?: string): ReturnType<ReturnType<TestApp['http']>['post']>;
    /** requests the provider's simulator has received so far */
    calls(): number;
    /** how `0712345678` is stored, masked */
    masked: string;
  }

  const providers: Provider[] = [
    {
      name: 'M-Pesa',
      init: (orderId, phone, key) =>
        t
          .http()
          .post('/payments/stk-push')
          .set('Authorization', auth)
          .set(key ? { 'Idempotency-Key': key } : {})
          .send({ orderId, amount: 50, phoneNumber: phone }),
      calls: () => t.sim.stats().pushRequests,
      masked: '2547******78',
    },
    {
      name: 'Flutterwave',
      init: (orderId, phone, key) =>
        t
          .http()
          .post('/payments/flutterwave/init')
          .set('Authorization', auth)
          .set(key ? { 'Idempotency-Key': key } : {})
          .send({
            orderId,
            amount: 50,
            customer: { email: 'wanjiku@example.com', phoneNumber: phone, name: 'Wanjiku' },
          }),
      calls: () => flw.stats().paymentRequests,
      masked: '2547******78',
    },
    {
      name: 'Pesapal',
      init: (orderId, phone, key) =>
        t
          .http()
          .post('/payments/pesapal/init')
          .set('Authorization', auth)
          .set(key ? { 'Idempotency-Key': key } : {})
          .send({ orderId, amount: 50, customer: { phoneNumber: phone } }),
      calls: () => pesapal.stats().submitRequests,
      masked: '07******78',
    },
  ];

  describe.each(providers)('$name', (provider) => {
    it('an Idempotency-Key reused for another customer’s phone is refused (409 IDEMPOTENCY_KEY_REUSED), not answered with the first payment', async () => {
      const orderId = await order(50);
      const key = `phone-key-${provider.name}-${orderId}`;
      const first = await provider.init(orderId, '0712345678', key);
      expect(first.status).toBe(201);
      const calls = provider.calls();

      const same = await provider.init(orderId, '0712345678', key);
      expect({ status: same.status, replayed: same.headers['idempotent-replayed'], body: same.body }).toEqual({
        status: 201,
        replayed: 'true',
        body: first.body,
      });

      const other = await provider.init(orderId, '0798765432', key);
      expect({ status: other.status, code: other.body.code, replayed: other.headers['idempotent-replayed'] }).toEqual({
        status: 409,
        code: 'IDEMPOTENCY_KEY_REUSED',
        replayed: undefined,
      });
      expect(other.body.paymentId).toBeUndefined();
      expect(provider.calls()).toBe(calls);
      const rows = rowsOf<{ c: number }>(
        await t.db.execute(
          sql`select count(*)::int as c from payments where shop_id = 'shop-phone' and order_id = ${orderId}`,
        ),
      );
      expect(rows[0].c).toBe(1);
    });

    it('stores and answers the masked phone only; the hash is the keyed one every provider shares', async () => {
      const orderId = await order(50);
      const res = await provider.init(orderId, '0712345678');
      expect(res.status).toBe(201);
      const paymentId = res.body.paymentId as string;

      const [stored] = rowsOf<{ phone_masked: string | null; phone_hash: string | null }>(
        await t.db.execute(sql`select phone_masked, phone_hash from payments where id = ${paymentId}`),
      );
      expect(stored).toEqual({
        phone_masked: provider.masked,
        phone_hash: phoneHash(TEST_CALLBACK_SECRET, '254712345678'),
      });

      const view = await t.http().get(`/payments/${paymentId}`).set('Authorization', auth);
      expect(view.status).toBe(200);
      expect(view.body.phone).toBe(provider.masked);

      // Nowhere in what was answered: the number in any form (07…, 2547…, the bare 7…), also not at
      // the end of Daraja's CheckoutRequestID (answered masked: ws_CO_…*******78).
      for (const text of [JSON.stringify(res.body), JSON.stringify(view.body)]) expect(text).not.toContain('712345678');
      // Nor in what was stored or audited, but for Daraja's own id (it ends with the national number).
      const events = rowsOf<{ data: unknown }>(
        await t.db.execute(sql`select data from payment_events where payment_id = ${paymentId}`),
      );
      expect(events.length).toBeGreaterThan(0);
      const [{ checkout_request_id: checkoutRequestId }] = rowsOf<{ checkout_request_id: string | null }>(
        await t.db.execute(sql`select checkout_request_id from payments where id = ${paymentId}`),
      );
      for (const text of [JSON.stringify(events), JSON.stringify(stored)]) {
        expect(checkoutRequestId ? text.split(checkoutRequestId).join('<checkoutRequestId>') : text).not.toContain(
          '712345678',
        );
      }
    });
  });
});
