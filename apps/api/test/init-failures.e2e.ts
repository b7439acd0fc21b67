import { sql } from 'drizzle-orm';
import { AllProviders, startWithAllProviders } from './helpers/all-providers';
import type { TestApp } from './helpers/test-app';

/**
 * The one init path of the payment core (PaymentInitiation), through HTTP for all three
 * providers: the provider's answer and the Idempotency-Key's answer are stored in one transaction
 * (a database failover in between is retried with both), and an unexpected error leaves the key
 * unanswered, so a replay later returns the payment itself, never a stored error.
 * Faults are injected in the database (triggers on the test database only).
 */

const FLW_SECRET_KEY = 'FLWSECK_TEST-e2einitfailures00000000-X';
const FLW_SECRET_HASH = 'e2e-init-failures-secret-hash-0123456';

type Rows<T> = { rows: T[] };
const rowsOf = <T>(r: unknown): T[] => (r as Rows<T>).rows;

describe('payment init: one failure path for M-Pesa, Flutterwave and Pesapal', () => {
  let t: TestApp;
  let auth: string;
  let n = 0;

  let all: AllProviders | undefined;
  beforeAll(async () => {
    all = await startWithAllProviders({
      flwSecretKey: FLW_SECRET_KEY,
      flwSecretHash: FLW_SECRET_HASH,
      env: { FLUTTERWAVE_HTTP_TIMEOUT_MS: '1500', PESAPAL_HTTP_TIMEOUT_MS: '1500' },
    });
    ({ t } = all);
    auth = `Bearer ${t.token()}`;
  });
  afterAll(async () => {
    await all?.close();
  });

  async function order(total: number): Promise<string> {
    const id = `INIT-${++n}`;
    const res = await t.http().post('/orders').set('Authorization', auth).send({ id, total });
    expect(res.status).toBe(201);
    return id;
  }

  const routes = {
    mpesa: {
      path: '/payments/stk-push',
      body: (orderId: string, amount: number) => ({ orderId, amount, phoneNumber: '0712345678' }),
    },
    flutterwave: {
      path: '/payments/flutterwave/init',
      body: (orderId: string, amount: number) => ({
        orderId,
        amount,
        customer: { email: 'wanjiku@example.com', phoneNumber: '0712345678', name: 'Wanjiku' },
      }),
    },
    pesapal: {
      path: '/payments/pesapal/init',
      body: (orderId: string, amount: number) => ({ orderId, amount, customer: { phoneNumber: '0712345678' } }),
    },
  } as const;
  type Provider = keyof typeof routes;

  function init(provider: Provider, orderId: string, amount: number, key: string) {
    const r = routes[provider];
    return t.http().post(r.path).set('Authorization', auth).set('Idempotency-Key', key).send(r.body(orderId, amount));
  }

  async function paymentOf(orderId: string) {
    return rowsOf<{ id: string; status: string; provider_answered: boolean }>(
      await t.db.execute(
        sql`select id, status, (checkout_request_id is not null or provider_transaction_id is not null or checkout_url is not null) as provider_answered from payments where order_id = ${orderId}`,
      ),
    );
  }

  async function keyOf(key: string) {
    return rowsOf<{ response_status: number | null }>(
      await t.db.execute(sql`select response_status from idempotency_keys where key = ${key}`),
    )[0];
  }

  async function eventCount(paymentId: string, type: string): Promise<number> {
    return rowsOf<{ c: number }>(
      await t.db.execute(
        sql`select count(*)::int as c from payment_events where payment_id = ${paymentId} and type = ${type}`,
      ),
    )[0].c;
  }

  it.each<Provider>(['mpesa', 'flutterwave', 'pesapal'])(
    "%s: the provider's answer and the Idempotency-Key's answer are one transaction: a failover while storing the key is retried with both (201, one provider_response)",
    async (provider) => {
      const key = `atomic-${provider}`;
      // The first write of this key's answer fails as if the database had been shut down under
      // it; a sequence (not rolled back with the transaction) lets exactly one attempt fail.
      await t.db.execute(sql.raw(`create sequence fault_${provider}`));
      await t.db.execute(
        sql.raw(`create function fault_${provider}() returns trigger language plpgsql as $$
        begin
          if new.key = '${key}' and new.response_status is not null and nextval('fault_${provider}') = 1 then
            raise exception 'injected: terminating connection due to administrator command' using errcode = '57P01';
          end if;
          return new;
        end $$`),
      );
      await t.db.execute(
        sql.raw(
          `create trigger fault_${provider} before update on idempotency_keys for each row execute function fault_${provider}()`,
        ),
      );
      try {
        const orderId = await order(100);
        const res = await init(provider, orderId, 100, key);
        expect(res.status).toBe(201);
        const [p] = await paymentOf(orderId);
        expect(p).toMatchObject({ id: res.body.paymentId, provider_answered: true });
        expect(await keyOf(key)).toEqual({ response_status: 201 });
        // The failed attempt's provider answer was rolled back with the key's: recorded once.
        expect(await eventCount(p.id, 'provider_response')).toBe(1);
        const replay = await init(provider, orderId, 100, key);
        expect(replay.status).toBe(201);
        expect(replay.headers['idempotent-replayed']).toBe('true');
        expect(replay.body).toEqual(res.body);
      } finally {
        await t.db.execute(
          sql.raw(
            `drop trigger fault_${provider} on idempotency_keys; drop function fault_${provider}(); drop sequence fault_${provider}`,
          ),
        );
      }
    },
  );

  it('Pesapal (named fix): an unexpected error leaves the Idempotency-Key unanswered; a replay returns the payment, never a stored 502', async () => {
    const orderId = await order(120);
    const key = 'unexpected-pesapal';
    // Recording Pesapal's answer fails with an error that is neither Pesapal's nor a lost database.
    await t.db.execute(
      sql.raw(`create function fault_unexpected() returns trigger language plpgsql as $$
      begin
        if new.type = 'provider_response' and exists (select 1 from payments where id = new.payment_id and order_id = '${orderId}') then
          raise exception 'injected: not a provider error';
        end if;
        return new;
      end $$`),
    );
    await t.db.execute(
      sql.raw(
        `create trigger fault_unexpected before insert on payment_events for each row execute function fault_unexpected()`,
      ),
    );
    let first;
    try {
      first = await init('pesapal', orderId, 120, key);
    } finally {
      await t.db.execute(sql.raw(`drop trigger fault_unexpected on payment_events; drop function fault_unexpected()`));
    }
    expect(first.status).toBeGreaterThanOrEqual(500);
    const [p] = await paymentOf(orderId);
    // Not answered: no request can have stored what the error was.
    expect(await keyOf(key)).toEqual({ response_status: null });
    // While the first request could still be running, the key is "in progress"...
    const soon = await init('pesapal', orderId, 120, key);
    expect(soon.status).toBe(409);
    expect(soon.body.code).toBe('IDEMPOTENCY_REQUEST_IN_PROGRESS');
    // ...and once no request can be, the payment itself is the answer (it says what really happened).
    await t.db.execute(sql`update idempotency_keys set created_at = now() - interval '10 minutes' where key = ${key}`);
    const later = await init('pesapal', orderId, 120, key);
    expect(later.status).toBe(200);
    expect(later.headers['idempotent-replayed']).toBe('true');
    expect(later.body).toMatchObject({ paymentId: p.id, provider: 'pesapal', orderId, status: p.status });
  });
});
