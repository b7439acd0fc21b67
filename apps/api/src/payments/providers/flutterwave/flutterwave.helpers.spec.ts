import { ValidationFailedError } from '../../../common/errors';
import {
  chooseReturnUrl,
  displayAmount,
  escapeHtml,
  FLW_CHECKOUT_SESSION_MINUTES,
  FLW_CHECKOUT_WINDOW_SECONDS,
  flwDataStatus,
  normalizeCustomerPhone,
  parseMajorAmount,
  planLook,
  renderResultPage,
  resolveReturnUrl,
  resultTexts,
  returnLocation,
  TX_REF_RE,
  txRefFor,
} from './flutterwave.helpers';

function rejection(fn: () => unknown): ValidationFailedError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ValidationFailedError);
    return err as ValidationFailedError;
  }
  throw new Error('expected a ValidationFailedError');
}

describe('txRefFor / TX_REF_RE', () => {
  it('derives our tx_ref from the payment id and recognises only that shape', () => {
    const ref = txRefFor('3f2c9a4e-8b1d-4c6e-9f0a-7d5e2b1c4a98');
    expect(ref).toBe('SD-3f2c9a4e-8b1d-4c6e-9f0a-7d5e2b1c4a98');
    expect(ref.length).toBeLessThanOrEqual(100);
    expect(TX_REF_RE.test(ref)).toBe(true);
    for (const other of [
      'POS-1',
      'SD-',
      'SD-3f2c9a4e-8b1d-4c6e-9f0a-7d5e2b1c4a98x',
      ' SD-3f2c9a4e-8b1d-4c6e-9f0a-7d5e2b1c4a98',
      'sd-3f2c9a4e-8b1d-4c6e-9f0a-7d5e2b1c4a98',
    ]) {
      expect(TX_REF_RE.test(other)).toBe(false);
    }
  });
});

describe('parseMajorAmount', () => {
  it.each<[unknown, string, bigint]>([
    [2450, 'KES', 245000n],
    [2450.5, 'KES', 245050n],
    [0.29, 'KES', 29n],
    [0.01, 'KES', 1n],
    ['2450.50', 'KES', 245050n],
    ['2450.500', 'KES', 245050n],
    [' 100 ', 'KES', 10000n],
    ['007', 'KES', 700n],
    [1500, 'UGX', 1500n],
    ['1500.00', 'UGX', 1500n],
    [999999999999.99, 'KES', 99999999999999n],
  ])('%p %s → %p minor units, exactly', (value, currency, minor) => {
    expect(parseMajorAmount(value, currency)).toBe(minor);
  });

  it.each<[unknown, string, string]>([
    [0, 'KES', 'amount must be greater than zero'],
    ['0.00', 'KES', 'amount must be greater than zero'],
    [-5, 'KES', 'amount must be greater than zero'],
    ['-5', 'KES', 'amount must be greater than zero'],
    [1.001, 'KES', 'amount has more than 2 decimal places (KES has 2)'],
    ['10.999', 'KES', 'amount has more than 2 decimal places'],
    [10.5, 'UGX', 'UGX amounts must be whole numbers'],
    ['1e3', 'KES', 'amount must be a plain decimal in KES'],
    [1e21, 'KES', 'amount must be a plain decimal in KES'],
    [1e-7, 'KES', 'amount must be a plain decimal in KES'],
    ['12,50', 'KES', 'amount must be a plain decimal'],
    ['', 'KES', 'amount must be a plain decimal'],
    ['abc', 'KES', 'amount must be a plain decimal'],
    ['.5', 'KES', 'amount must be a plain decimal'],
    ['0x10', 'KES', 'amount must be a plain decimal'],
    [Number.NaN, 'KES', 'amount must be a finite number'],
    [Number.POSITIVE_INFINITY, 'KES', 'amount must be a finite number'],
    [true, 'KES', 'amount must be a number or a decimal string'],
    [null, 'KES', 'amount must be a number or a decimal string'],
    ['1234567890123456', 'KES', 'amount is too large'],
    [100, 'XYZ', 'currency XYZ is not supported'],
    [100, 'constructor', 'currency constructor is not supported'],
  ])('refuses %p %s with "%s"', (value, currency, message) => {
    expect(rejection(() => parseMajorAmount(value, currency)).message).toContain(message);
  });
});

describe('resolveReturnUrl (no open redirect)', () => {
  const POS = 'https://pos.example.co.ke/payments/done?till=2';

  it('no client URL → nothing stored', () => {
    expect(resolveReturnUrl(undefined, POS)).toBeUndefined();
    expect(resolveReturnUrl(undefined, undefined)).toBeUndefined();
  });

  it('accepts a URL on the POS_RETURN_URL origin', () => {
    expect(resolveReturnUrl('https://pos.example.co.ke/checkout/ORD-1/done', POS)).toBe(
      'https://pos.example.co.ke/checkout/ORD-1/done',
    );
    expect(resolveReturnUrl('HTTPS://POS.example.co.ke:443/x', POS)).toBe('https://pos.example.co.ke/x');
  });

  it.each<[string, string | undefined, string]>([
    ['https://evil.example.com/phish', POS, 'redirectUrl must be on https://pos.example.co.ke'],
    ['http://pos.example.co.ke/x', POS, 'redirectUrl must be on https://pos.example.co.ke'],
    ['https://pos.example.co.ke:8443/x', POS, 'redirectUrl must be on https://pos.example.co.ke'],
    ['https://pos.example.co.ke.evil.com/x', POS, 'redirectUrl must be on'],
    ['https://pos.example.co.ke@evil.com/x', POS, 'must not contain a user name or password'],
    ['https://user:pw@pos.example.co.ke/x', POS, 'must not contain a user name or password'],
    ['javascript:alert(1)', POS, 'redirectUrl must be an http(s) URL'],
    ['//evil.example.com', POS, 'redirectUrl must be an http(s) URL'],
    ['https://pos.example.co.ke/x', undefined, 'redirectUrl is not accepted on this server'],
  ])('refuses %s (POS_RETURN_URL %s)', (url, pos, message) => {
    expect(rejection(() => resolveReturnUrl(url, pos)).message).toContain(message);
  });

  it('chooseReturnUrl re-checks a stored URL against the current configuration', () => {
    expect(chooseReturnUrl('https://pos.example.co.ke/a', POS)).toBe('https://pos.example.co.ke/a');
    expect(chooseReturnUrl('https://old-pos.example.com/a', POS)).toBe(POS);
    expect(chooseReturnUrl(undefined, POS)).toBe(POS);
    expect(chooseReturnUrl(42, POS)).toBe(POS);
    expect(chooseReturnUrl('https://pos.example.co.ke/a', undefined)).toBeUndefined();
  });

  it('returnLocation sets paymentId, orderId and status and keeps the rest', () => {
    const loc = new URL(returnLocation(`${POS}#top`, { paymentId: 'p-1', orderId: 'ORD 1&x', status: 'completed' }));
    expect(loc.origin + loc.pathname).toBe('https://pos.example.co.ke/payments/done');
    expect(Object.fromEntries(loc.searchParams)).toEqual({
      till: '2',
      paymentId: 'p-1',
      orderId: 'ORD 1&x',
      status: 'completed',
    });
    expect(loc.hash).toBe('#top');
    // a status=... already in the configured URL is replaced, never duplicated
    expect(
      new URL(
        returnLocation('https://pos.example.co.ke/?status=old', { paymentId: 'p', orderId: 'o', status: 'failed' }),
      ).searchParams.getAll('status'),
    ).toEqual(['failed']);
  });
});

describe('planLook', () => {
  const W = FLW_CHECKOUT_WINDOW_SECONDS;
  it('the window is the link life plus a margin', () => {
    expect(W).toBeGreaterThan(FLW_CHECKOUT_SESSION_MINUTES * 60);
  });

  it.each(['completed', 'failed', 'cancelled', 'expired'] as const)(
    'a final answer (%s) is applied at any age and in any state',
    (status) => {
      expect(planLook({ status, inFlight: true, hasLink: true, ageSeconds: 1, windowSeconds: W })).toBe('apply');
      expect(planLook({ status, inFlight: false, hasLink: true, ageSeconds: 1, windowSeconds: W })).toBe('apply');
      expect(planLook({ status, inFlight: true, hasLink: false, ageSeconds: W * 10, windowSeconds: W })).toBe('apply');
    },
  );

  it.each(['pending', 'not_found', 'unknown', 'reversed'] as const)('%s inside the window → wait', (status) => {
    expect(planLook({ status, inFlight: true, hasLink: true, ageSeconds: W - 1, windowSeconds: W })).toBe('wait');
  });

  it('after the window: never seen → expire (link) or fail (no link); pending or unknown → review', () => {
    expect(planLook({ status: 'not_found', inFlight: true, hasLink: true, ageSeconds: W, windowSeconds: W })).toBe(
      'expire',
    );
    expect(planLook({ status: 'not_found', inFlight: true, hasLink: false, ageSeconds: 300, windowSeconds: 300 })).toBe(
      'fail_not_found',
    );
    expect(planLook({ status: 'pending', inFlight: true, hasLink: true, ageSeconds: W + 1, windowSeconds: W })).toBe(
      'review',
    );
    expect(planLook({ status: 'unknown', inFlight: true, hasLink: false, ageSeconds: 301, windowSeconds: 300 })).toBe(
      'review',
    );
  });

  it('a payment that is no longer open only takes final answers', () => {
    for (const status of ['pending', 'not_found', 'unknown'] as const) {
      expect(planLook({ status, inFlight: false, hasLink: true, ageSeconds: W * 2, windowSeconds: W })).toBe('wait');
    }
  });
});

describe('small helpers', () => {
  it('flwDataStatus reads data.status as sent', () => {
    expect(flwDataStatus({ status: 'success', data: { status: 'successful' } })).toBe('successful');
    expect(flwDataStatus({ data: { status: 'x'.repeat(80) } })).toHaveLength(50);
    for (const raw of [undefined, null, 'x', {}, { data: null }, { data: { status: 3 } }, { data: { status: '' } }])
      expect(flwDataStatus(raw)).toBeUndefined();
  });

  it('normalizeCustomerPhone', () => {
    expect(normalizeCustomerPhone('0712 345-678')).toBe('254712345678');
    expect(normalizeCustomerPhone('0112345678')).toBe('254112345678');
    expect(normalizeCustomerPhone('+254712345678')).toBe('254712345678');
    expect(normalizeCustomerPhone('+256 772 123456')).toBe('+256772123456');
    expect(normalizeCustomerPhone(' ')).toBeUndefined();
    expect(normalizeCustomerPhone(undefined)).toBeUndefined();
  });

  it('displayAmount groups thousands and keeps the currency decimals', () => {
    expect(displayAmount(245050n, 'KES')).toBe('KES 2,450.50');
    expect(displayAmount(123456789n, 'KES')).toBe('KES 1,234,567.89');
    expect(displayAmount(5n, 'KES')).toBe('KES 0.05');
    expect(displayAmount(1500n, 'UGX')).toBe('UGX 1,500');
  });

  it('escapeHtml and the result page escape everything they are given', () => {
    expect(escapeHtml(`<script>"'&\``)).toBe('&#60;script&#62;&#34;&#39;&#38;&#96;');
    const html = renderResultPage({
      state: 'pending"><x',
      title: '<b>t</b>',
      message: 'm & <i>',
      rows: [['Order', '<img src=x onerror=alert(1)>']],
    });
    expect(html).not.toMatch(/<img|<b>|<i>|<x/);
    expect(html).toContain('&#60;img src=x onerror=alert(1)&#62;');
    expect(html).toContain('id="payment-result"');
    expect(html.startsWith('<!doctype html>')).toBe(true);
    expect(renderResultPage({ state: 'completed', title: 't', message: 'm' })).not.toContain('<table>');
  });

  it('resultTexts: a redirect status is only a hint for an open payment', () => {
    expect(resultTexts('completed', 'cancelled').title).toBe('Payment received');
    expect(resultTexts('pending', 'successful').title).toBe('Waiting for confirmation');
    expect(resultTexts('pending', 'cancelled').title).toBe('Payment not completed');
    expect(resultTexts('failed', 'successful').title).toBe('Payment failed');
    expect(resultTexts('review', undefined).title).toBe('Payment being checked');
    expect(resultTexts('expired', undefined).message).toContain('nothing was charged');
  });
});
