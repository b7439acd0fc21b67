import { sql } from 'drizzle-orm';
import { randomUUID } from 'node:crypto';
import { emptyCoreTables, openCoreDb, rowsOf } from './helpers/core-db';
import type { TestDatabase } from './helpers/test-db';
import type { AuthUser } from '../src/auth/auth.types';
import { AppError, DatabaseUnavailableError, ValidationFailedError } from '../src/common/errors';
import type { Db } from '../src/database/database';
import { orders, Payment } from '../src/database/schema';
import { InitiationCall, PaymentInitiation } from '../src/payments/payment-initiation.service';
import type { PaymentLifecycle } from '../src/payments/payment-lifecycle.service';
import type { PaymentsRepository } from '../src/payments/payments.repository';
import type { ProviderName } from '../src/payments/providers/payment-provider';
import { ProviderError } from '../src/payments/providers/provider-errors';

/**
 * PaymentInitiation (the one init path of every provider) with the real PaymentsRepository on a
 * real, migrated database (the lifecycle tier: see helpers/core-db). Each payment is opened as
 * the providers open it (PaymentLifecycle.openPayment: 'initiated', its created event and its
 * Idempotency-Key), then the provider's answer is recorded. "In one transaction" is checked in
 * the database: a write that fails at the key's answer (a trigger) leaves neither the payment's
 * transition nor its event committed. "The database is away" is a real lost connection: the
 * server ends the connection under the key's answer (pg_terminate_backend of its own backend,
 * what a failover does), so that case needs Postgres (skipped without DATABASE_URL).
 */

const SHOP = 'shop-init';
const USER: AuthUser = { sub: 'cashier-init', shopId: SHOP, role: 'cashier' } as AuthUser;

let tdb: TestDatabase;
let db: Db;
let repo: PaymentsRepository;
let lifecycle: PaymentLifecycle;
let initiation: PaymentInitiation;
let n = 0;

beforeAll(async () => {
  ({ tdb, db, repo, lifecycle } = await openCoreDb({
    callbackSigningSecret: 'initiation-tier-secret-0123456789abcdefghij',
    jwtSecret: 'initiation-tier-jwt-secret-0123456789abcde',
  }));
  initiation = new PaymentInitiation(repo);
});
beforeEach(async () => {
  await emptyCoreTables(db);
});
afterEach(async () => {
  await dropFault();
});
afterAll(async () => {
  await tdb?.dispose();
});

// ------------------------------------------------------------------ fixtures

/** A payment the provider is about to be asked for: opened as every provider opens one, with an Idempotency-Key. */
async function opened(provider: ProviderName = 'pesapal'): Promise<{ p: Payment; key: string }> {
  const k = ++n;
  const orderId = `ORD-INIT-${k}`;
  await db.insert(orders).values({ shopId: SHOP, id: orderId, totalMinor: 10_000n, currency: 'KES' });
  const id = randomUUID();
  const key = `key-init-${k}`;
  const replay = await lifecycle.openPayment(id, {
    user: USER,
    orderId,
    amountMinor: 10_000n,
    currency: 'KES',
    provider,
    providerLabel: provider === 'pesapal' ? 'Pesapal' : 'Flutterwave',
    idempotencyKey: key,
    requestHash: 'h'.repeat(64),
    fields: { providerReference: `SD-${orderId}` },
    eventData: {},
  });
  expect(replay).toBeNull();
  return { p: (await repo.findById(id))!, key };
}

/** The call a provider makes (modelled on Pesapal's): the accepted answer is its tracking id, recorded with the real repository. */
function call(
  p: Payment,
  key: string | undefined,
  send: () => Promise<string>,
  over: Partial<InitiationCall<string>> = {},
): InitiationCall<string> {
  return {
    paymentId: p.id,
    provider: p.provider as ProviderName,
    label: 'Pesapal',
    actor: 'pesapal:submit-order',
    idem: key === undefined ? undefined : { shopId: SHOP, key },
    send,
    recordAnswer: async (answer, tx, ms) => {
      const moved = await repo.transitionIf(
        p.id,
        'initiated',
        { status: 'pending', providerTransactionId: answer },
        tx,
      );
      await repo.insertEvent(
        {
          paymentId: p.id,
          type: 'provider_response',
          fromStatus: 'initiated',
          toStatus: moved ? 'pending' : null,
          actor: 'pesapal:submit-order',
          data: { orderTrackingId: answer, ms },
        },
        tx,
      );
      return { status: 201, body: { paymentId: p.id, orderTrackingId: answer } };
    },
    unknownReason: 'INIT_OUTCOME_UNKNOWN',
    texts: {
      unknownOutcome: 'It may have happened: check the payment status.',
      unexpected: 'Could not confirm the request: check the payment status.',
      doNotRepeat: 'Do not start another payment',
    },
    errorEventData: (err) => ({ providerErrorCode: err?.providerCode ?? null }),
    ...over,
  };
}

const row = async (id: string) => (await repo.findById(id))!;
const events = (id: string) => repo.listEvents(id);
const eventTypes = async (id: string) => (await events(id)).map((e) => e.type);
const keyAnswer = async (key: string) => {
  const k = (await repo.findIdempotencyKey(SHOP, key))!;
  return { status: k.responseStatus, body: k.responseBody };
};

/** The error a promise rejects with. */
async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected the call to fail');
}

// ------------------------------------------------------------------ faults in the database

/**
 * The key's answer (the last write of the transaction) meets a fault the first `times` times it
 * is written: 'lost', the server ends the connection under it (FATAL 57P01, as in a failover);
 * 'error', an ordinary error (a check violation: not the database being away). A sequence, which
 * a rollback does not undo, counts the attempts.
 */
async function faultOnKeyAnswer(kind: 'lost' | 'error', times: number): Promise<void> {
  const fault =
    kind === 'lost'
      ? `perform pg_terminate_backend(pg_backend_pid()); perform pg_sleep(5);`
      : `raise exception 'injected: the key''s answer could not be written' using errcode = '23514';`;
  await db.execute(sql.raw(`create sequence fault_key_answer`));
  await db.execute(
    sql.raw(`create function fault_key_answer() returns trigger language plpgsql as $$
    begin
      if old.response_status is null and new.response_status is not null and nextval('fault_key_answer') <= ${times} then
        ${fault}
      end if;
      return new;
    end $$`),
  );
  await db.execute(
    sql.raw(
      `create trigger fault_key_answer before update on idempotency_keys for each row execute function fault_key_answer()`,
    ),
  );
}

/** How many times the key's answer was written (attempts that reached it, rolled back or not). */
async function keyAnswerAttempts(): Promise<number> {
  return rowsOf<{ n: number }>(
    await db.execute(
      sql.raw(`select (case when is_called then last_value else 0 end)::int as n from fault_key_answer`),
    ),
  )[0].n;
}

/**
 * The transaction that records the provider's answer fails at its commit: a deferred constraint
 * trigger on its event (the first payment_events row after 'created') raises when the commit checks it.
 */
async function faultAtCommit(): Promise<void> {
  await db.execute(
    sql.raw(`create function fault_at_commit() returns trigger language plpgsql as $$
    begin
      raise exception 'injected: the commit failed' using errcode = '23514';
    end $$`),
  );
  await db.execute(
    sql.raw(
      `create constraint trigger fault_at_commit after insert on payment_events deferrable initially deferred for each row when (new.type <> 'created') execute function fault_at_commit()`,
    ),
  );
}

async function dropFault(): Promise<void> {
  await db.execute(sql.raw(`drop trigger if exists fault_at_commit on payment_events`));
  await db.execute(sql.raw(`drop function if exists fault_at_commit()`));
  await db.execute(sql.raw(`drop trigger if exists fault_key_answer on idempotency_keys`));
  await db.execute(sql.raw(`drop function if exists fault_key_answer()`));
  await db.execute(sql.raw(`drop sequence if exists fault_key_answer`));
}

/**
 * The waits PaymentInitiation asks for between attempts (its own setTimeout calls only), recorded
 * and taken at once so the ~8 s bound does not slow the suite; every other timer (node-postgres'
 * connect and idle timers) runs as asked.
 */
function takeRetryWaitsAtOnce(): { waits: number[]; restore(): void } {
  const real = global.setTimeout;
  const waits: number[] = [];
  const quick = (fn: (...args: unknown[]) => void, ms?: number, ...args: unknown[]) => {
    // [0] "Error", [1] this function, [2] its caller
    const caller = new Error().stack?.split('\n')[2] ?? '';
    if (caller.includes('payment-initiation.service')) {
      waits.push(ms ?? 0);
      return real(fn, 0, ...args);
    }
    return real(fn, ms, ...args);
  };
  global.setTimeout = quick as unknown as typeof setTimeout;
  return { waits, restore: () => void (global.setTimeout = real) };
}

// ------------------------------------------------------------------ the provider accepted

describe('PaymentInitiation: the provider accepted', () => {
  it("the provider's answer, its event and the key's answer are committed together", async () => {
    const { p, key } = await opened();
    const r = await initiation.run(call(p, key, async () => 'tracking-1'));
    expect(r).toEqual({ status: 201, body: { paymentId: p.id, orderTrackingId: 'tracking-1' } });
    expect(await row(p.id)).toMatchObject({ status: 'pending', providerTransactionId: 'tracking-1' });
    const [, answered] = await events(p.id);
    expect(await eventTypes(p.id)).toEqual(['created', 'provider_response']);
    expect(answered).toMatchObject({
      fromStatus: 'initiated',
      toStatus: 'pending',
      actor: 'pesapal:submit-order',
      data: { orderTrackingId: 'tracking-1' },
    });
    expect(typeof (answered.data as { ms: unknown }).ms).toBe('number');
    expect(await keyAnswer(key)).toEqual({ status: 201, body: { paymentId: p.id, orderTrackingId: 'tracking-1' } });
  });

  it("without an Idempotency-Key in the call nothing is stored as a key's answer", async () => {
    const { p, key } = await opened();
    await initiation.run(call(p, undefined, async () => 'tracking-1'));
    expect(await row(p.id)).toMatchObject({ status: 'pending' });
    expect(await keyAnswer(key)).toEqual({ status: null, body: null });
  });

  it("an error while recording the provider's answer is thrown as it is; what it had written is rolled back, the key unanswered", async () => {
    const { p, key } = await opened();
    const boom = new Error('recording failed half-way');
    const c = call(p, key, async () => 'tracking-1');
    const record = c.recordAnswer!;
    c.recordAnswer = async (answer, tx, ms) => {
      await record(answer, tx, ms);
      throw boom;
    };
    await expect(initiation.run(c)).rejects.toBe(boom);
    expect(await row(p.id)).toMatchObject({ status: 'initiated', providerTransactionId: null });
    expect(await eventTypes(p.id)).toEqual(['created']);
    expect(await keyAnswer(key)).toEqual({ status: null, body: null });
  });
});

// ------------------------------------------------------------------ the provider did not accept

describe('PaymentInitiation: the call failed', () => {
  it("refused by the provider (not processed): failed, provider_error, and the error answer stored as the key's", async () => {
    const { p, key } = await opened();
    const err = new ProviderError('pesapal', 'rejected', 'Pesapal refused the order', {
      providerCode: 'invalid_currency',
      providerMessage: 'KES not enabled',
    });
    const r = await initiation.run(call(p, key, () => Promise.reject(err)));
    const body = {
      statusCode: 502,
      code: 'PROVIDER_REJECTED',
      message: 'Pesapal refused the order',
      details: {
        provider: 'pesapal',
        providerErrorCode: 'invalid_currency',
        providerErrorMessage: 'KES not enabled',
        paymentId: p.id,
        status: 'failed',
      },
    };
    expect(r).toEqual({ status: 502, body, headers: undefined });
    expect(await row(p.id)).toMatchObject({
      status: 'failed',
      statusReason: 'PROVIDER_REJECTED',
      resultCode: 'invalid_currency',
      resultDesc: 'KES not enabled',
    });
    const [, failed] = await events(p.id);
    expect(await eventTypes(p.id)).toEqual(['created', 'provider_error']);
    expect(failed).toMatchObject({
      fromStatus: 'initiated',
      toStatus: 'failed',
      actor: 'pesapal:submit-order',
      data: { code: 'PROVIDER_REJECTED', message: 'Pesapal refused the order', providerErrorCode: 'invalid_currency' },
    });
    expect(await keyAnswer(key)).toEqual({ status: 502, body });
  });

  it('outcome unknown (timeout): unresolved, the message says so; a rate limit keeps its Retry-After', async () => {
    const { p, key } = await opened();
    const r = await initiation.run(
      call(p, key, () => Promise.reject(new ProviderError('pesapal', 'timeout', 'No answer from Pesapal'))),
    );
    expect(r.status).toBe(504);
    expect(r.body).toMatchObject({
      code: 'PROVIDER_TIMEOUT',
      message: 'No answer from Pesapal. It may have happened: check the payment status.',
      details: { paymentId: p.id, status: 'unresolved' },
    });
    expect(await row(p.id)).toMatchObject({
      status: 'unresolved',
      statusReason: 'PROVIDER_TIMEOUT',
      resultCode: null,
      resultDesc: 'No answer from Pesapal',
    });
    expect(await keyAnswer(key)).toEqual({ status: 504, body: r.body });

    const limited = await opened();
    const slow = await initiation.run(
      call(limited.p, limited.key, () =>
        Promise.reject(new ProviderError('pesapal', 'rate_limited', 'Slow down', { retryAfterSeconds: 7 })),
      ),
    );
    expect(slow).toMatchObject({
      status: 503,
      headers: { 'Retry-After': '7' },
      body: { code: 'PROVIDER_RATE_LIMITED', details: { status: 'failed' } },
    });
    expect(await row(limited.p.id)).toMatchObject({ status: 'failed' });
  });

  it('our own refusal (a 4xx AppError before anything was sent): failed with its code and answer', async () => {
    const { p, key } = await opened();
    const r = await initiation.run(
      call(p, key, () =>
        Promise.reject(new ValidationFailedError('amount must be whole shillings', { field: 'amount' })),
      ),
    );
    expect(r).toMatchObject({
      status: 400,
      body: {
        code: 'VALIDATION_FAILED',
        message: 'amount must be whole shillings',
        details: { field: 'amount', paymentId: p.id, status: 'failed' },
      },
    });
    expect(await row(p.id)).toMatchObject({
      status: 'failed',
      statusReason: 'VALIDATION_FAILED',
      resultCode: null,
      resultDesc: 'amount must be whole shillings',
    });
    expect((await events(p.id))[1]).toMatchObject({
      type: 'provider_error',
      toStatus: 'failed',
      data: { code: 'VALIDATION_FAILED', providerErrorCode: null },
    });
    expect(await keyAnswer(key)).toMatchObject({ status: 400 });
  });

  it('an unexpected error: unresolved with its event, the key left UNANSWERED, and a 502 thrown', async () => {
    const { p, key } = await opened();
    const err = await rejection(
      initiation.run(call(p, key, () => Promise.reject(new TypeError('cannot read properties of undefined')))),
    );
    expect(err).toBeInstanceOf(AppError);
    expect(err).toMatchObject({
      code: 'PROVIDER_UNAVAILABLE',
      statusCode: 502,
      message: 'Could not confirm the request: check the payment status.',
      details: { provider: 'pesapal', paymentId: p.id, status: 'unresolved' },
    });
    expect(await row(p.id)).toMatchObject({
      status: 'unresolved',
      statusReason: 'INIT_OUTCOME_UNKNOWN',
      resultCode: null,
      resultDesc: null,
    });
    expect((await events(p.id))[1]).toMatchObject({
      type: 'provider_error',
      fromStatus: 'initiated',
      toStatus: 'unresolved',
      data: { code: 'INIT_OUTCOME_UNKNOWN', providerErrorCode: null },
    });
    expect(await keyAnswer(key)).toEqual({ status: null, body: null });
  });

  it("a late answer overtaken by a notification reports the payment's real status and leaves it as it is", async () => {
    const { p, key } = await opened();
    // The IPN settles the payment while the submit call is still waiting for Pesapal.
    const send = async (): Promise<string> => {
      const report = {
        outcome: 'completed',
        resultCode: 'COMPLETED',
        resultDesc: 'Paid',
        source: 'ipn',
        amountRequired: true,
        amountMinor: 10_000n,
        currency: 'KES',
        reference: p.providerReference!,
        providerTransactionId: 'TRK-LATE',
        receipt: 'CONF-LATE',
        paymentMethod: 'card',
      } as const;
      expect(await lifecycle.applyOutcome(p.id, report, 'pesapal:ipn')).toBe('applied');
      throw new ProviderError('pesapal', 'timeout', 'No answer');
    };
    const r = await initiation.run(call(p, key, send));
    expect(r.body).toMatchObject({ code: 'PROVIDER_TIMEOUT', details: { paymentId: p.id, status: 'completed' } });
    expect(await row(p.id)).toMatchObject({ status: 'completed', statusReason: 'PAID' });
    const last = (await events(p.id)).at(-1)!;
    expect(last).toMatchObject({ type: 'provider_error', fromStatus: 'initiated', toStatus: null });
    expect(await keyAnswer(key)).toEqual({ status: 504, body: r.body });
  });

  it("result_code may be the provider's own rule (Flutterwave: HTTP_<status> when it sent no code)", async () => {
    const { p, key } = await opened('flutterwave');
    const err = new ProviderError('flutterwave', 'rejected', 'Flutterwave refused', { providerHttpStatus: 400 });
    await initiation.run(
      call(p, key, () => Promise.reject(err), {
        label: 'Flutterwave',
        resultCode: (e) => e.providerCode ?? `HTTP_${e.providerHttpStatus}`,
      }),
    );
    expect(await row(p.id)).toMatchObject({
      status: 'failed',
      resultCode: 'HTTP_400',
      resultDesc: 'Flutterwave refused',
    });
  });
});

// ------------------------------------------------------------------ in one transaction

describe("PaymentInitiation: the answer, its event and the key's answer are one transaction", () => {
  const answers: Array<[string, () => Promise<string>]> = [
    ['accepted', async () => 'tracking-1'],
    ['refused', () => Promise.reject(new ProviderError('pesapal', 'rejected', 'Pesapal refused the order'))],
  ];

  it.each(answers)(
    "%s: when the key's answer cannot be written, the error is thrown as it is and neither the transition nor the event is committed",
    async (_case, send) => {
      const { p, key } = await opened();
      await faultOnKeyAnswer('error', 1);
      const err = await rejection(initiation.run(call(p, key, send)));
      expect(err).not.toBeInstanceOf(AppError);
      expect(String((err as Error).cause ?? err)).toContain("injected: the key's answer could not be written");
      expect(await keyAnswerAttempts()).toBe(1); // not retried: the database was there
      expect(await row(p.id)).toMatchObject({ status: 'initiated', statusReason: null, providerTransactionId: null });
      expect(await eventTypes(p.id)).toEqual(['created']);
      expect(await keyAnswer(key)).toEqual({ status: null, body: null });
    },
  );

  it.each(answers)("%s: when the commit fails, the key's answer is not committed either", async (_case, send) => {
    const { p, key } = await opened();
    await faultAtCommit();
    const err = await rejection(initiation.run(call(p, key, send)));
    expect(err).not.toBeInstanceOf(AppError);
    expect(String((err as Error).cause ?? err)).toContain('injected: the commit failed');
    expect(await keyAnswer(key)).toEqual({ status: null, body: null });
    expect(await row(p.id)).toMatchObject({ status: 'initiated', statusReason: null, providerTransactionId: null });
    expect(await eventTypes(p.id)).toEqual(['created']);
  });
});

// ------------------------------------------------------------------ the database is away

(process.env.DATABASE_URL ? describe : describe.skip)(
  'PaymentInitiation: the database is away while the answer is recorded (Postgres)',
  () => {
    let waits: ReturnType<typeof takeRetryWaitsAtOnce> | undefined;
    afterEach(() => {
      waits?.restore();
      waits = undefined;
    });

    it.each<[string, () => Promise<string>, number, string]>([
      ['accepted', async () => 'tracking-1', 201, 'provider_response'],
      [
        'refused',
        () => Promise.reject(new ProviderError('pesapal', 'rejected', 'Pesapal refused the order')),
        502,
        'provider_error',
      ],
    ])(
      "%s, the connection lost twice: the whole transaction is retried and committed once, with the key's answer",
      async (_case, send, status, eventType) => {
        const { p, key } = await opened();
        await faultOnKeyAnswer('lost', 2);
        waits = takeRetryWaitsAtOnce();
        const r = await initiation.run(call(p, key, send));
        expect(r.status).toBe(status);
        expect(waits.waits).toEqual([250, 500]);
        expect(await keyAnswerAttempts()).toBe(3);
        // The two lost attempts' writes were rolled back with them: one transition, one event.
        expect(await row(p.id)).toMatchObject({ status: status === 201 ? 'pending' : 'failed' });
        expect(await eventTypes(p.id)).toEqual(['created', eventType]);
        expect(await keyAnswer(key)).toEqual({ status, body: r.body });
      },
    );

    it('away for longer than the bounded ~8 s: a 503 naming the payment, saying not to start it again; nothing committed', async () => {
      const { p, key } = await opened();
      await faultOnKeyAnswer('lost', 1000);
      waits = takeRetryWaitsAtOnce();
      const err = await rejection(initiation.run(call(p, key, async () => 'tracking-1')));
      expect(err).toBeInstanceOf(DatabaseUnavailableError);
      expect(err).toMatchObject({
        code: 'DATABASE_UNAVAILABLE',
        statusCode: 503,
        message:
          "The Pesapal request was sent but could not be recorded (the database is unavailable). Do not start another payment: check this payment's status in a minute.",
        details: { paymentId: p.id },
      });
      expect(waits.waits).toEqual([250, 500, 1000, 2000, 4000]); // 7.75 s in all
      expect(await keyAnswerAttempts()).toBe(6);
      expect(await row(p.id)).toMatchObject({ status: 'initiated', providerTransactionId: null });
      expect(await eventTypes(p.id)).toEqual(['created']);
      expect(await keyAnswer(key)).toEqual({ status: null, body: null });
    });
  },
);
