import { describeFailure, describePayment, money, nairobiTime, nairobiToday } from '../web/describe';

const err = (status: number, code: string, message = 'x', details?: Record<string, unknown>) => ({
  status,
  body: { statusCode: status, code, message, details, requestId: 'req-1' },
});

describe('describeFailure: the safe next action', () => {
  it('CUSTOMER_BUSY waits for Retry-After before a resend', () => {
    const p = describeFailure({ ...err(409, 'CUSTOMER_BUSY'), retryAfter: '60' });
    expect(p).toMatchObject({ action: 'resend', retryAfterSeconds: 60, requestId: 'req-1' });
    expect(p.message).toContain('busy with another M-Pesa prompt');
  });

  it('PHONE_BUSY takes the wait from details when the header is missing', () => {
    expect(describeFailure({ ...err(429, 'PHONE_BUSY', 'x', { retryAfterSeconds: 12.2 }) })).toMatchObject({
      action: 'resend',
      retryAfterSeconds: 13,
    });
  });

  it('PAYMENT_IN_PROGRESS follows the open payment and never resends', () => {
    expect(describeFailure(err(409, 'PAYMENT_IN_PROGRESS', 'x', { payment: { paymentId: 'p-open' } }))).toMatchObject({
      action: 'follow',
      paymentId: 'p-open',
    });
  });

  it('a 504 or an unresolved 502 may have left a prompt open: follow, no resend', () => {
    const timeout = describeFailure({
      ...err(504, 'PROVIDER_TIMEOUT', 'x', { paymentId: 'p1', status: 'unresolved' }),
      method: 'mpesa',
    });
    expect(timeout).toMatchObject({ action: 'follow', paymentId: 'p1' });
    expect(timeout.message).toContain('M-Pesa did not give a clear answer in time');
    expect(
      describeFailure(err(502, 'PROVIDER_UNAVAILABLE', 'x', { paymentId: 'p2', status: 'unresolved' })),
    ).toMatchObject({
      action: 'follow',
    });
    // Without a payment to follow it still never offers a resend.
    expect(describeFailure(err(502, 'PROVIDER_BAD_RESPONSE')).action).toBe('manager');
  });

  it('a 502 with status failed is a final failure: resend', () => {
    const p = describeFailure(
      err(502, 'PROVIDER_REJECTED', 'Invalid Access Token', { status: 'failed', provider: 'mpesa' }),
    );
    expect(p.action).toBe('resend');
    expect(p.message).toContain('M-Pesa refused the payment: Invalid Access Token');
  });

  it('503 PROVIDER_UNREACHABLE / PROVIDER_RATE_LIMITED sent nothing: resend after Retry-After', () => {
    expect(describeFailure({ ...err(503, 'PROVIDER_UNREACHABLE'), retryAfter: '5', method: 'card' })).toMatchObject({
      action: 'resend',
      retryAfterSeconds: 5,
    });
    expect(describeFailure({ ...err(503, 'PROVIDER_RATE_LIMITED'), retryAfter: '30' }).message).toContain(
      'Nothing was sent',
    );
  });

  it('DATABASE_UNAVAILABLE and a lost answer repeat the same request (same Idempotency-Key)', () => {
    expect(describeFailure({ ...err(503, 'DATABASE_UNAVAILABLE'), retryAfter: '2' })).toMatchObject({
      action: 'retry-same',
      retryAfterSeconds: 2,
    });
    expect(describeFailure({ status: undefined }).action).toBe('retry-same');
  });

  it('validation messages are shown verbatim, with every field problem', () => {
    const p = describeFailure(
      err(400, 'VALIDATION_FAILED', 'amount must be a whole number of shillings; phoneNumber is required', {
        problems: [
          { param: 'amount', message: 'amount must be a whole number of shillings' },
          'phoneNumber is required',
        ],
      }),
    );
    expect(p).toMatchObject({
      action: 'fix-input',
      message: 'amount must be a whole number of shillings; phoneNumber is required',
      problems: ['amount must be a whole number of shillings', 'phoneNumber is required'],
    });
  });

  it("MERCHANT_ACCOUNT_REQUIRED: the API's words as a sentence, then what the cashier can do", () => {
    const p = describeFailure(
      err(
        409,
        'MERCHANT_ACCOUNT_REQUIRED',
        'This shop has no M-Pesa account set up yet: a manager adds it under Settings > Payments before taking M-Pesa payments',
      ),
    );
    expect(p).toMatchObject({ action: 'other-method' });
    expect(p.message).toBe(
      'This shop has no M-Pesa account set up yet: a manager adds it under Settings > Payments before taking M-Pesa payments. Ask a manager to set up the account, or use another payment method.',
    );
    expect(describeFailure(err(409, 'MERCHANT_ACCOUNT_REQUIRED', 'No account.')).message).toMatch(/^No account\. Ask/);
  });

  it('an unknown outcome blocks the order: a manager, not a resend', () => {
    expect(describeFailure(err(409, 'PAYMENT_OUTCOME_UNKNOWN')).action).toBe('manager');
    expect(describeFailure(err(401, 'TOKEN_EXPIRED')).action).toBe('reload');
    expect(describeFailure(err(409, 'ORDER_ALREADY_PAID')).action).toBe('new-sale');
    expect(describeFailure({ ...err(503, 'PROVIDER_DISABLED'), method: 'pesapal' }).message).toContain(
      'Pesapal is switched off',
    );
  });
});

describe('describePayment', () => {
  const p = (status: string, extra: Record<string, string> = {}) => ({ status, provider: 'mpesa', ...extra });
  it('resend only after a final failure', () => {
    expect(describePayment(p('cancelled')).action).toBe('resend');
    expect(describePayment(p('expired')).action).toBe('resend');
    expect(
      describePayment(p('failed', { resultDesc: 'The balance is insufficient for the transaction.' })),
    ).toMatchObject({
      action: 'resend',
      message: expect.stringContaining('The balance is insufficient'),
    });
    for (const open of ['initiated', 'pending', 'unresolved']) expect(describePayment(p(open)).action).toBe('wait');
    expect(describePayment(p('review', { statusReason: 'OUTCOME_UNKNOWN' })).action).toBe('manager');
    expect(describePayment(p('completed')).action).toBe('done');
  });
});

describe('time and money at the till', () => {
  it('today in Nairobi (UTC+3) and its first instant', () => {
    expect(nairobiToday(new Date('2026-12-02T21:30:00Z'))).toEqual({
      date: '2026-12-03',
      from: '2026-12-03T00:00:00+03:00',
    });
    expect(nairobiToday(new Date('2026-12-02T20:59:59Z')).date).toBe('2026-12-02');
    expect(nairobiTime('2026-12-02T21:05:00Z')).toBe('00:05');
  });
  it('money with thousands separators and cents', () => {
    expect(money(2450.5)).toBe('KES 2,450.50');
    expect(money(1234567)).toBe('KES 1,234,567.00');
    expect(money(5, 'USD')).toBe('USD 5.00');
  });
});
