import {
  FlutterwaveSimulator,
  PESAPAL_DEFAULT_CONSUMER_KEY,
  PESAPAL_DEFAULT_CONSUMER_SECRET,
  PesapalSimulator,
  startFlutterwaveSimulator,
  startPesapalSimulator,
} from '@smartduka/card-simulators';
import { eq } from 'drizzle-orm';
import { payments } from '../src/database/schema';
import { PESAPAL_IPN } from '../src/payments/providers/pesapal/pesapal.constants';
import { ReconcilerService } from '../src/payments/reconciler.service';
import { terminateBackends } from './helpers/test-db';
import { startTestApp, TestApp } from './helpers/test-app';
import { recordSecrets, simulatorLog } from './log-scan/sink';

/** r2: connections dropped while Flutterwave / Pesapal init waits on a slow provider, and during reconciler passes. */
const SECRET_KEY = 'FLWSECK_TEST-e2eflutterwave000000000-X';
const SECRET_HASH = 'e2e-flutterwave-secret-hash-0123456789';

(process.env.DATABASE_URL ? describe : describe.skip)(
  'r2: dropped database connections during hosted init and reconciler passes',
  () => {
    let flw: FlutterwaveSimulator;
    let pp: PesapalSimulator;
    let t: TestApp;
    let auth: string;
    let n = 0;

    beforeAll(async () => {
      recordSecrets([
        { kind: 'consumer-key', value: PESAPAL_DEFAULT_CONSUMER_KEY },
        { kind: 'consumer-secret', value: PESAPAL_DEFAULT_CONSUMER_SECRET, pair: PESAPAL_DEFAULT_CONSUMER_KEY },
      ]);
      flw = await startFlutterwaveSimulator({ secretKey: SECRET_KEY, secretHash: SECRET_HASH, log: simulatorLog() });
      pp = await startPesapalSimulator({ ipnRetry: { attempts: 0, intervalMs: 100 }, log: simulatorLog() });
      t = await startTestApp({
        env: {
          FLUTTERWAVE_ENABLED: 'true',
          FLUTTERWAVE_BASE_URL: flw.url,
          FLUTTERWAVE_SECRET_KEY: SECRET_KEY,
          FLUTTERWAVE_SECRET_HASH: SECRET_HASH,
          FLUTTERWAVE_HTTP_TIMEOUT_MS: '5000',
          PESAPAL_ENABLED: 'true',
          PESAPAL_ENV: 'simulator',
          PESAPAL_BASE_URL: pp.url,
          PESAPAL_CONSUMER_KEY: PESAPAL_DEFAULT_CONSUMER_KEY,
          PESAPAL_CONSUMER_SECRET: PESAPAL_DEFAULT_CONSUMER_SECRET,
          PESAPAL_HTTP_TIMEOUT_MS: '5000',
          RECONCILER_ENABLED: 'false',
          RECONCILER_PENDING_GRACE_SECONDS: '0',
          RECONCILER_BACKOFF_BASE_SECONDS: '0',
          RECONCILER_BACKOFF_MAX_SECONDS: '0',
          RECONCILER_INBOX_RETRY_AFTER_SECONDS: '0',
        },
      });
      auth = `Bearer ${t.token()}`;
      await t.app.get<{ ensure(): Promise<unknown> }>(PESAPAL_IPN).ensure();
    });
    afterAll(async () => {
      await t?.close();
      await flw?.close();
      await pp?.close();
    });

    async function order(total: number): Promise<string> {
      const id = `R2DB-${++n}`;
      expect((await t.http().post('/orders').set('Authorization', auth).send({ id, total })).status).toBe(201);
      return id;
    }

    it.each([
      [
        'flutterwave',
        () => flw.setFaults({ latencyMs: { payments: 1500 } }),
        (orderId: string) => ({ orderId, amount: 30, customer: { email: 'a@b.co' } }),
      ],
      [
        'pesapal',
        () => pp.setFaults({ latencyMs: { submit: 1500 } }),
        (orderId: string) => ({ orderId, amount: 30, customer: { email: 'a@b.co' } }),
      ],
    ] as const)(
      '%s init: backends terminated while the provider is slow: 201 and the provider ids are recorded',
      async (provider, slow, body) => {
        const orderId = await order(30);
        slow();
        const pending = t
          .http()
          .post(`/payments/${provider}/init`)
          .set('Authorization', auth)
          .send(body(orderId))
          .then((r) => r);
        await new Promise((r) => setTimeout(r, 600));
        await terminateBackends(t.database.url!);
        const res = await pending;
        flw.setFaults({});
        pp.setFaults({});
        expect({ status: res.status, code: res.body.code }).toEqual({ status: 201, code: undefined });
        const [row] = await t.db.select().from(payments).where(eq(payments.id, res.body.paymentId));
        expect(row.status).toBe('pending');
      },
    );

    it('reconciler passes with backends terminated mid-pass: no throw, and the next pass still settles open payments of both hosted providers', async () => {
      const reconciler = t.app.get(ReconcilerService);
      flw.setFaults({ latencyMs: { verify: 800 } });
      pp.setFaults({ latencyMs: { status: 800 } });
      const pass = reconciler.tick();
      await new Promise((r) => setTimeout(r, 300));
      await terminateBackends(t.database.url!);
      await expect(pass).resolves.toBeDefined();
      flw.setFaults({});
      pp.setFaults({});
      await expect(reconciler.tick()).resolves.toBeDefined();
      expect((await t.http().get('/health')).status).toBe(200);
    });
  },
);
