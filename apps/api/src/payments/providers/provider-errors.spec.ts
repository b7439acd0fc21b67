import { Controller, Post } from '@nestjs/common';
import { DECORATORS } from '@nestjs/swagger/dist/constants';
import { ApiErrors, ERROR_DESCRIPTIONS } from '../../common/api-errors.decorator';
import { AppError } from '../../common/errors';
import { toErrorBody } from '../../common/http-exception.filter';
import { PROVIDER_ERROR_KINDS, ProviderError, ProviderErrorKind, redact } from './provider-errors';

describe('ProviderError', () => {
  it.each<[ProviderErrorKind, string, number, string]>([
    ['auth', 'PROVIDER_AUTH_FAILED', 502, 'not_processed'],
    ['rejected', 'PROVIDER_REJECTED', 502, 'not_processed'],
    ['rate_limited', 'PROVIDER_RATE_LIMITED', 503, 'not_processed'],
    ['unreachable', 'PROVIDER_UNREACHABLE', 503, 'not_processed'],
    ['unavailable', 'PROVIDER_UNAVAILABLE', 502, 'unknown'],
    ['timeout', 'PROVIDER_TIMEOUT', 504, 'unknown'],
    ['bad_response', 'PROVIDER_BAD_RESPONSE', 502, 'unknown'],
    ['reference_mismatch', 'PROVIDER_REFERENCE_MISMATCH', 502, 'not_processed'],
    ['reference_required', 'PROVIDER_REFERENCE_REQUIRED', 409, 'not_processed'],
    ['customer_busy', 'CUSTOMER_BUSY', 409, 'not_processed'],
  ])('%s → %s, HTTP %d, outcome %s', (kind, code, status, outcome) => {
    const err = new ProviderError('pesapal', kind, 'message');
    expect(err).toBeInstanceOf(AppError);
    expect(err.code).toBe(code);
    expect(err.statusCode).toBe(status);
    expect(err.httpStatus).toBe(status);
    expect(err.outcome).toBe(outcome);
    expect(err.provider).toBe('pesapal');
    expect(err.name).toBe('ProviderError');
  });

  it('turns into the public error body with the provider and its code/message as details', () => {
    const err = new ProviderError(
      'flutterwave',
      'rejected',
      'Flutterwave rejected the payment request: Duplicate tx_ref',
      {
        providerHttpStatus: 400,
        providerCode: 'dup',
        providerMessage: 'Duplicate tx_ref',
      },
    );
    expect(toErrorBody(err, 'req-1')).toEqual({
      statusCode: 502,
      code: 'PROVIDER_REJECTED',
      message: 'Flutterwave rejected the payment request: Duplicate tx_ref',
      details: { provider: 'flutterwave', providerErrorCode: 'dup', providerErrorMessage: 'Duplicate tx_ref' },
      requestId: 'req-1',
    });
    expect(err.providerHttpStatus).toBe(400);
  });

  it('asks our client to retry later on rate limits and unreachable providers', () => {
    expect(new ProviderError('pesapal', 'rate_limited', 'm', { retryAfterSeconds: 12 }).headers).toEqual({
      'Retry-After': '12',
    });
    expect(new ProviderError('pesapal', 'rate_limited', 'm').headers).toEqual({ 'Retry-After': '30' });
    expect(new ProviderError('pesapal', 'unreachable', 'm').headers).toEqual({ 'Retry-After': '10' });
    expect(new ProviderError('mpesa', 'customer_busy', 'm').headers).toEqual({ 'Retry-After': '60' });
    expect(new ProviderError('pesapal', 'timeout', 'm').headers).toBeUndefined();
    // What the provider said stays apart from the default our client gets.
    expect(new ProviderError('mpesa', 'rate_limited', 'm').retryAfterSeconds).toBeUndefined();
  });

  it("carries the provider's request id into details, with a payer's number in it masked", () => {
    const err = new ProviderError('mpesa', 'rate_limited', 'M-Pesa is rate limiting requests', {
      providerHttpStatus: 500,
      providerCode: '500.003.02',
      providerMessage: 'Spike Arrest Violation',
      providerRequestId: '1c5b-4ba8-815c-ac45c57a3db01495926',
      retryAfterSeconds: 7,
    });
    expect(err.details).toEqual({
      provider: 'mpesa',
      providerErrorCode: '500.003.02',
      providerErrorMessage: 'Spike Arrest Violation',
      providerRequestId: '1c5b-4ba8-815c-ac45c57a3db01495926',
    });
    expect([err.providerRequestId, err.providerHttpStatus, err.retryAfterSeconds, err.headers]).toEqual([
      '1c5b-4ba8-815c-ac45c57a3db01495926',
      500,
      7,
      { 'Retry-After': '7' },
    ]);
    expect(err.asNotProcessed('x').details).toEqual(err.details);
    // Daraja's STK query answers echo the CheckoutRequestID as requestId: it ends with the payer's national number.
    const echoed = new ProviderError('mpesa', 'unavailable', 'm', {
      providerRequestId: 'ws_CO_13102022154520280706803305',
    });
    expect(echoed.details).toEqual({ provider: 'mpesa', providerRequestId: 'ws_CO_13102022154520280*******05' });
    expect(echoed.providerRequestId).toBe('ws_CO_13102022154520280*******05');
  });

  it('outcome can be overridden, and asNotProcessed keeps kind/code but marks it not processed', () => {
    const timeout = new ProviderError('pesapal', 'timeout', 'No answer from Pesapal to the token request');
    const copy = timeout.asNotProcessed('the payment request was not sent');
    expect(copy).toBeInstanceOf(ProviderError);
    expect(copy.kind).toBe('timeout');
    expect(copy.code).toBe('PROVIDER_TIMEOUT');
    expect(copy.statusCode).toBe(504);
    expect(copy.outcome).toBe('not_processed');
    expect(copy.message).toBe('No answer from Pesapal to the token request; the payment request was not sent');
    expect(timeout.outcome).toBe('unknown');
    const limited = new ProviderError('pesapal', 'rate_limited', 'm', { retryAfterSeconds: 12 }).asNotProcessed('x');
    expect(limited.headers).toEqual({ 'Retry-After': '12' });
  });
});

describe('the OpenAPI document', () => {
  @Controller('x')
  class Documented {
    @Post()
    @ApiErrors(409, 502, 503, 504)
    route(): void {}
  }
  const responses = Reflect.getMetadata(DECORATORS.API_RESPONSE, Documented.prototype.route) as Record<
    string,
    { description: string; headers?: Record<string, unknown> }
  >;

  it.each(Object.entries(PROVIDER_ERROR_KINDS))(
    'names %s under its status, with Retry-After where it is sent',
    (_kind, spec) => {
      expect(ERROR_DESCRIPTIONS[spec.status]).toContain(spec.code);
      expect(responses[spec.status].description).toContain(spec.code);
      if (spec.retryAfterSeconds !== undefined) expect(responses[spec.status].headers).toHaveProperty('Retry-After');
    },
  );

  it('says what 502, 503 and 504 mean for a client', () => {
    expect(ERROR_DESCRIPTIONS[502]).toMatch(/answered badly or refused/);
    expect(ERROR_DESCRIPTIONS[503]).toMatch(/^Not processed; try again after Retry-After/);
    expect(ERROR_DESCRIPTIONS[504]).toMatch(/outcome unknown/);
  });
});

describe('redact', () => {
  it('removes configured secrets, Flutterwave keys and JWTs, and truncates', () => {
    const text =
      'bad key cs_SECRET_123 and FLWSECK_TEST-abc123-X and eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig_part-1 here';
    const out = redact(text, ['cs_SECRET_123', undefined, 'ab']);
    expect(out).toBe('bad key *** and *** and *** here');
    expect(redact('x'.repeat(500), []).length).toBe(201);
    expect(redact('line1\n  line2', [])).toBe('line1 line2');
  });

  it('ignores secrets shorter than 4 characters (they would redact ordinary words)', () => {
    expect(redact('the abc', ['abc'])).toBe('the abc');
  });
});
