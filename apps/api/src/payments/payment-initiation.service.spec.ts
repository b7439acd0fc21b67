import { Logger } from '@nestjs/common';
import { AppError, DatabaseUnavailableError, ValidationFailedError } from '../common/errors';
import type { Tx } from '../database/database';
import { InitiationCall, PaymentInitiation } from './payment-initiation.service';
import type { PaymentsRepository } from './payments.repository';
import { ProviderError } from './providers/provider-errors';

/**
 * PaymentInitiation against a repository fake whose transactions commit all of their writes or
 * none: "in one transaction" is checked as "in one commit".
 */
type Write = { op: string; args: unknown[] };

class FakeRepo {
  status = 'initiated';
  commits: Write[][] = [];
  /** errors thrown by the next transactions' first write, in order */
  failures: unknown[] = [];

  async transaction<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
    const staged: Write[] = [];
    const saved = this.status;
    const tx = { staged } as unknown as Tx;
    try {
      const failure = this.failures.shift();
      if (failure) throw failure;
      const r = await fn(tx);
      this.commits.push(staged);
      return r;
    } catch (err) {
      this.status = saved;
      throw err;
    }
  }

  private stage(tx: unknown, op: string, args: unknown[]): void {
    if (!tx) throw new Error(`${op} outside a transaction`);
    (tx as { staged: Write[] }).staged.push({ op, args });
  }

  async transitionIf(id: string, from: string, patch: { status: string }, tx: Tx): Promise<boolean> {
    if (this.status !== from) return false;
    this.status = patch.status;
    this.stage(tx, 'transitionIf', [id, from, patch]);
    return true;
  }

  async insertEvent(e: unknown, tx: Tx): Promise<void> {
    this.stage(tx, 'insertEvent', [e]);
  }

  async storeIdempotentResponse(shopId: string, key: string, status: number, body: unknown, tx: Tx): Promise<void> {
    this.stage(tx, 'storeIdempotentResponse', [shopId, key, status, body]);
  }

  async findById(id: string, tx: Tx): Promise<{ id: string; status: string }> {
    if (!tx) throw new Error('findById outside the transaction');
    return { id, status: this.status };
  }

  ops(): string[][] {
    return this.commits.map((c) => c.map((w) => w.op));
  }
}

const lostConnection = () => Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' });

function call(repo: FakeRepo, send: () => Promise<string>, over: Partial<InitiationCall<string>> = {}): InitiationCall<string> {
  return {
    paymentId: 'pay-1',
    provider: 'pesapal',
    label: 'Pesapal',
    actor: 'pesapal:submit-order',
    idem: { shopId: 'shop-1', key: 'key-1' },
    send,
    recordAnswer: async (answer, tx, ms) => {
      await repo.transitionIf('pay-1', 'initiated', { status: 'pending' }, tx);
      await repo.insertEvent({ type: 'provider_response', answer, ms }, tx);
      return { status: 201, body: { paymentId: 'pay-1', answer } };
    },
    unknownReason: 'INIT_OUTCOME_UNKNOWN',
    texts: { unknownOutcome: 'It may have happened: check the payment status.', unexpected: 'Could not confirm the request: check the payment status.', doNotRepeat: 'Do not start another payment' },
    errorEventData: (err) => ({ providerErrorCode: err?.providerCode ?? null }),
    ...over,
  };
}

describe('PaymentInitiation (the one init path of every provider)', () => {
  let repo: FakeRepo;
  let initiation: PaymentInitiation;

  beforeAll(() => Logger.overrideLogger(false));
  beforeEach(() => {
    repo = new FakeRepo();
    initiation = new PaymentInitiation(repo as unknown as PaymentsRepository);
  });
  afterEach(() => jest.useRealTimers());

  it("accepted: the provider's answer, its event and the key's answer commit together", async () => {
    const r = await initiation.run(call(repo, async () => 'tracking-1'));
    expect(r).toEqual({ status: 201, body: { paymentId: 'pay-1', answer: 'tracking-1' } });
    expect(repo.ops()).toEqual([['transitionIf', 'insertEvent', 'storeIdempotentResponse']]);
    expect(repo.commits[0][2].args).toEqual(['shop-1', 'key-1', 201, { paymentId: 'pay-1', answer: 'tracking-1' }]);
  });

  it('without an Idempotency-Key nothing is stored for one', async () => {
    await initiation.run(call(repo, async () => 'tracking-1', { idem: undefined }));
    expect(repo.ops()).toEqual([['transitionIf', 'insertEvent']]);
  });

  it('refused by the provider (not processed): failed, provider_error, and the error answer stored as the key\'s, in one commit', async () => {
    const err = new ProviderError('pesapal', 'rejected', 'Pesapal refused the order', { providerCode: 'invalid_currency', providerMessage: 'KES not enabled' });
    const r = await initiation.run(call(repo, () => Promise.reject(err)));
    expect(repo.status).toBe('failed');
    expect(r).toEqual({
      status: 502,
      body: { statusCode: 502, code: 'PROVIDER_REJECTED', message: 'Pesapal refused the order', details: { provider: 'pesapal', providerErrorCode: 'invalid_currency', providerErrorMessage: 'KES not enabled', paymentId: 'pay-1', status: 'failed' } },
      headers: undefined,
    });
    expect(repo.ops()).toEqual([['transitionIf', 'insertEvent', 'storeIdempotentResponse']]);
    expect(repo.commits[0][0].args[2]).toEqual({ status: 'failed', statusReason: 'PROVIDER_REJECTED', resultCode: 'invalid_currency', resultDesc: 'KES not enabled' });
    expect(repo.commits[0][1].args[0]).toMatchObject({ type: 'provider_error', fromStatus: 'initiated', toStatus: 'failed', actor: 'pesapal:submit-order', data: { code: 'PROVIDER_REJECTED', providerErrorCode: 'invalid_currency' } });
    expect(repo.commits[0][2].args.slice(0, 3)).toEqual(['shop-1', 'key-1', 502]);
  });

  it('outcome unknown (timeout): unresolved, the message says so, headers kept', async () => {
    const err = new ProviderError('pesapal', 'timeout', 'No answer from Pesapal');
    const r = await initiation.run(call(repo, () => Promise.reject(err)));
    expect(repo.status).toBe('unresolved');
    expect(r.status).toBe(504);
    expect(r.body).toMatchObject({ code: 'PROVIDER_TIMEOUT', message: 'No answer from Pesapal. It may have happened: check the payment status.', details: { status: 'unresolved' } });
    const limited = new ProviderError('pesapal', 'rate_limited', 'Slow down', { retryAfterSeconds: 7 });
    repo.status = 'initiated';
    expect((await initiation.run(call(repo, () => Promise.reject(limited)))).headers).toEqual({ 'Retry-After': '7' });
  });

  it('our own refusal (a 4xx AppError before anything was sent): failed with its code and answer', async () => {
    const r = await initiation.run(call(repo, () => Promise.reject(new ValidationFailedError('amount must be whole shillings', { field: 'amount' }))));
    expect(repo.status).toBe('failed');
    expect(r).toMatchObject({ status: 400, body: { code: 'VALIDATION_FAILED', details: { field: 'amount', paymentId: 'pay-1', status: 'failed' } } });
    expect(repo.commits[0][0].args[2]).toEqual({ status: 'failed', statusReason: 'VALIDATION_FAILED', resultCode: null, resultDesc: 'amount must be whole shillings' });
  });

  it('an unexpected error: unresolved with its event, the key left UNANSWERED, and a 502 thrown', async () => {
    const err = await initiation.run(call(repo, () => Promise.reject(new TypeError('cannot read properties of undefined')))).catch((e) => e);
    expect(err).toBeInstanceOf(AppError);
    expect(err).toMatchObject({ code: 'PROVIDER_UNAVAILABLE', statusCode: 502, message: 'Could not confirm the request: check the payment status.', details: { provider: 'pesapal', paymentId: 'pay-1', status: 'unresolved' } });
    expect(repo.status).toBe('unresolved');
    expect(repo.ops()).toEqual([['transitionIf', 'insertEvent']]);
    expect(repo.commits[0][0].args[2]).toEqual({ status: 'unresolved', statusReason: 'INIT_OUTCOME_UNKNOWN', resultCode: null, resultDesc: null });
    expect(repo.commits[0][1].args[0]).toMatchObject({ type: 'provider_error', data: { code: 'INIT_OUTCOME_UNKNOWN', providerErrorCode: null } });
  });

  it('an error while recording the accepted answer is thrown as it is, the key unanswered, nothing committed', async () => {
    const boom = new Error('constraint violated');
    const c = call(repo, async () => 'tracking-1', { recordAnswer: () => Promise.reject(boom) });
    await expect(initiation.run(c)).rejects.toBe(boom);
    expect(repo.commits).toEqual([]);
  });

  it("a late answer overtaken by a notification reports the payment's real status", async () => {
    repo.status = 'completed';
    const r = await initiation.run(call(repo, () => Promise.reject(new ProviderError('pesapal', 'timeout', 'No answer'))));
    expect(r.body).toMatchObject({ details: { status: 'completed' } });
    expect(repo.commits[0].map((w) => w.op)).toEqual(['insertEvent', 'storeIdempotentResponse']);
    expect(repo.commits[0][0].args[0]).toMatchObject({ toStatus: null });
  });

  it('result_code may be the provider\'s own rule (Flutterwave: HTTP_<status> when it sent no code)', async () => {
    const err = new ProviderError('flutterwave', 'rejected', 'Flutterwave refused', { providerHttpStatus: 400 });
    await initiation.run(call(repo, () => Promise.reject(err), { resultCode: (e) => e.providerCode ?? `HTTP_${e.providerHttpStatus}` }));
    expect(repo.commits[0][0].args[2]).toMatchObject({ resultCode: 'HTTP_400' });
  });

  it('a database away for a moment: the whole transaction is retried (one commit with both answers)', async () => {
    jest.useFakeTimers();
    repo.failures = [lostConnection(), lostConnection()];
    const done = initiation.run(call(repo, async () => 'tracking-1'));
    await jest.advanceTimersByTimeAsync(250 + 500);
    await expect(done).resolves.toMatchObject({ status: 201 });
    expect(repo.ops()).toEqual([['transitionIf', 'insertEvent', 'storeIdempotentResponse']]);
  });

  it('a database away for longer than ~8 s: 503 naming the payment, saying not to start it again', async () => {
    jest.useFakeTimers();
    repo.failures = Array.from({ length: 10 }, lostConnection);
    const done = initiation.run(call(repo, async () => 'tracking-1')).catch((e) => e);
    await jest.advanceTimersByTimeAsync(250 + 500 + 1000 + 2000 + 4000);
    const err = await done;
    expect(err).toBeInstanceOf(DatabaseUnavailableError);
    expect(err.message).toBe("The Pesapal request was sent but could not be recorded (the database is unavailable). Do not start another payment: check this payment's status in a minute.");
    expect(err.details).toEqual({ paymentId: 'pay-1' });
    expect(repo.failures).toHaveLength(4); // 6 attempts
    expect(repo.commits).toEqual([]);
  });
});
