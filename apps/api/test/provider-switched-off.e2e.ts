import { startFlutterwaveSimulator, FlutterwaveSimulator } from '@smartduka/card-simulators';
import { eq, sql } from 'drizzle-orm';
import { callbackInbox } from '../src/database/schema';
import { ReconcilerService } from '../src/payments/reconciler.service';
import { ExtraTestApp, startExtraTestApp, startTestApp, TestApp } from './helpers/test-app';
import { simulatorLog } from './log-scan/sink';

/**
 * r2 finding: a stored Flutterwave notification on an instance where Flutterwave is switched off
 * must be deferred for as long as the provider is off there, never given up. Each deferral is a
 * claim (claimUnprocessedCallbacks adds 1 to attempts), and PaymentOperationsService.
 * replayStoredNotification checks `attempts > MAX_INBOX_ATTEMPTS` BEFORE it asks the registry, so
 * after 20 deferrals (20 leases, ~20 min at the default 60 s) the row is marked 'gave_up' without
 * ever having been tried, and turning Flutterwave back on never replays it.
 */
const SECRET_KEY = 'FLWSECK_TEST-e2eflutterwave000000000-X';
const SECRET_HASH = 'e2e-flutterwave-secret-hash-0123456789';

describe('a switched-off provider defers its stored notifications, never gives them up', () => {
  let sim: FlutterwaveSimulator;
  let t: TestApp;
  let off: ExtraTestApp;

  beforeAll(async () => {
    sim = await startFlutterwaveSimulator({ secretKey: SECRET_KEY, secretHash: SECRET_HASH, log: simulatorLog() });
    t = await startTestApp({
      env: {
        FLUTTERWAVE_ENABLED: 'true',
        FLUTTERWAVE_BASE_URL: sim.url,
        FLUTTERWAVE_SECRET_KEY: SECRET_KEY,
        FLUTTERWAVE_SECRET_HASH: SECRET_HASH,
        RECONCILER_ENABLED: 'false',
        RECONCILER_INBOX_RETRY_AFTER_SECONDS: '0',
      },
    });
    off = await startExtraTestApp(t, {
      FLUTTERWAVE_ENABLED: 'false',
      RECONCILER_ENABLED: 'false',
      RECONCILER_INBOX_RETRY_AFTER_SECONDS: '0',
    });
  });
  afterAll(async () => {
    await off?.close();
    await t?.close();
    await sim?.close();
  });

  it('25 passes on the switched-off instance leave the notification unprocessed (not gave_up)', async () => {
    const auth = `Bearer ${t.token()}`;
    expect((await t.http().post('/orders').set('Authorization', auth).send({ id: 'R2-OFF-1', total: 40 })).status).toBe(
      201,
    );
    const init = await t
      .http()
      .post('/payments/flutterwave/init')
      .set('Authorization', auth)
      .send({ orderId: 'R2-OFF-1', amount: 40, customer: { email: 'a@b.co' } });
    expect(init.status).toBe(201);
    const [row] = await t.db
      .insert(callbackInbox)
      .values({
        provider: 'flutterwave',
        verified: true,
        rawBody: JSON.stringify({
          event: 'charge.completed',
          data: { id: 987654, tx_ref: init.body.txRef, status: 'successful', amount: 40, currency: 'KES' },
        }),
      })
      .returning({ id: callbackInbox.id });

    const reconciler = off.app.get(ReconcilerService);
    for (let i = 0; i < 25; i++) {
      await reconciler.tick();
      // the lease of this pass's claim is over (as it would be RECONCILER_LEASE_SECONDS later)
      await t.db
        .update(callbackInbox)
        .set({ nextAttemptAt: sql`now() - interval '1 second'` })
        .where(eq(callbackInbox.id, row.id));
    }
    const [after] = await t.db.select().from(callbackInbox).where(eq(callbackInbox.id, row.id));
    expect({ outcome: after.outcome, processed: after.processedAt !== null }).toEqual({
      outcome: null,
      processed: false,
    });
  });
});
