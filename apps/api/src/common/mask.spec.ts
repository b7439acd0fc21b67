import {
  maskCheckoutRequestId,
  maskCheckoutRequestIdsIn,
  maskCheckoutRequestIdsInJson,
  maskEmail,
  maskPhone,
  maskPhonesIn,
  maskSecret,
  parseMaskedCheckoutRequestId,
} from './mask';

describe('maskPhone', () => {
  it.each([
    ['254712345678', '2547******78'],
    ['254112345678', '2541******78'],
    ['+254712345678', '+2547******78'],
    [254708374149, '2547******49'],
    ['0712345678', '07******78'],
    ['712345678', '71*****78'],
    [' 254712345678 ', '2547******78'],
  ] as const)('%p -> %s', (input, expected) => {
    expect(maskPhone(input)).toBe(expected);
  });

  it.each([
    [''],
    ['abc'],
    ['0712 345 678'],
    ['12345'],
    ['2547123456789012345'],
    ['john@example.com'],
    [undefined],
    [null],
    [{}],
    [1.5],
  ])('masks non-phone %p entirely', (input) => {
    expect(maskPhone(input)).toBe('***');
  });

  it('never reveals more than 6 digits of a 12-digit number', () => {
    const masked = maskPhone('254798765432');
    expect(masked.replace(/\*/g, '')).toHaveLength(6);
    expect(masked).toHaveLength(12);
  });
});

describe('maskEmail', () => {
  it.each([
    ['wanjiku@example.com', 'w***@example.com'],
    ['jane.doe@example.com', 'j***@example.com'],
    ['a@b.co', 'a***@b.co'],
    ['x@y@example.com', 'x***@example.com'],
  ])('%s -> %s (the first letter and the domain only)', (input, expected) => {
    expect(maskEmail(input)).toBe(expected);
  });

  it.each([[''], ['@x.com'], ['@x'], ['nobody@'], ['plain'], [42], [undefined], [null]])(
    'masks %p entirely',
    (input) => {
      expect(maskEmail(input)).toBe('***');
    },
  );
});

describe('maskSecret', () => {
  it.each([['bfb279f9aa9bdbcf158e97dd71a467cd'], [''], [undefined], [123]])('%p -> ***', (s) => {
    expect(maskSecret(s)).toBe('***');
  });
});

describe('maskCheckoutRequestId (issue 8.7)', () => {
  it.each([
    ['ws_CO_13102022154520280706803305', 'ws_CO_13102022154520280*******05'],
    ['ws_CO_170820261428262708374149', 'ws_CO_170820261428262*******49'],
    ['ws_CO_27072017154747416', 'ws_CO_27072017*******16'],
    ['ws_CO_DMZ_264695293_11032019122104433', 'ws_CO_DMZ_264695293_11032019*******33'],
    ['ws_CO_1', 'ws_CO_1'],
    ['ws_CO_DOESNOTEXIST', 'ws_CO_DOESNOTEXIST'],
  ])('%s -> %s', (id, masked) => {
    expect(maskCheckoutRequestId(id)).toBe(masked);
    expect(maskCheckoutRequestIdsIn(`id=${id}, again "${id}"`)).toBe(`id=${masked}, again "${masked}"`);
  });

  it('the masked form parses back to the stamp and the last 2 digits (what stk-status looks up by)', () => {
    for (const id of ['ws_CO_13102022154520280706803305', 'ws_CO_170820261428262708374149', 'ws_CO_27072017154747416'])
      expect(parseMaskedCheckoutRequestId(maskCheckoutRequestId(id))).toEqual({
        prefix: id.slice(0, -9),
        lastTwo: id.slice(-2),
      });
    for (const bad of [
      'ws_CO_13102022154520280706803305',
      'ws_CO_13102022154520280******05',
      'ws_CO_13102022154520280*******5',
      '*******05',
      'ws_CO_1310*******2022154520280',
      `${'w'.repeat(92)}*******05`,
    ])
      expect(parseMaskedCheckoutRequestId(bad)).toBeNull();
  });

  it('masks the ids in a stored JSON answer, and leaves masked ones and everything else as they are', () => {
    const stored = {
      paymentId: '0b7c…',
      checkoutRequestId: 'ws_CO_13102022154520280706803305',
      details: { payment: { checkoutRequestId: 'ws_CO_13102022154520280*******05', amount: 100 } },
    };
    expect(maskCheckoutRequestIdsInJson(stored)).toEqual({
      paymentId: '0b7c…',
      checkoutRequestId: 'ws_CO_13102022154520280*******05',
      details: { payment: { checkoutRequestId: 'ws_CO_13102022154520280*******05', amount: 100 } },
    });
    expect(maskCheckoutRequestIdsInJson(null)).toBeNull();
  });

  it('masks every phone form in free text, not amounts, ids or decimals', () => {
    expect(maskPhonesIn('0712 345 678 / +254712345678 / 254112345678 / 712345678 / ORD-112345678')).toBe(
      '07******78 / +2547******78 / 2541******78 / 71*****78 / ORD-11*****78',
    );
    const untouched =
      'amount 1795690859969 ms 20261126104500 id 29115-171234567-1 ratio 1.712345678 sha 4bf92f3577b34da6a3ce9171234567ab';
    expect(maskPhonesIn(untouched)).toBe(untouched);
  });

  // review: letters, `_` and `.` next to a phone number are boundaries, not a reason to keep it.
  it.each([
    ['254712345678_1', '2547******78_1'],
    ['0712345678x', '07******78x'],
    ['ord_0712345678', 'ord_07******78'],
    ['ORD.254712345678', 'ORD.2547******78'],
    ['INV712345678', 'INV71*****78'],
    ['ord.712345678', 'ord.71*****78'],
    ['x_112345678_2', 'x_11*****78_2'],
    ['A0712345678 and a712345678f', 'A07******78 and a71*****78f'], // short words, even of hex letters: an id a phone was typed into
    ['254712345678.1', '2547******78.1'],
    ['line\\n712345678', 'line\\n71*****78'],
  ])('review: %s -> %s', (text, masked) => {
    expect(maskPhonesIn(text)).toBe(masked);
  });

  it.each([
    [
      'a UUID whose groups hold 9 digits',
      '3f2c9a4e-8b1d-4c6e-9f0a-712345678abc and 01712345-8b1d-4c6e-9f0a-7d5e2b1c4a98',
    ],
    [
      'hex blobs (trace id, sha256, a gateway request id)',
      '4bf92f3577b34da6a3ce9171234567ab e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 1c5b-4ba8-815c-ac45c57a3db71234567',
    ],
    ['a pnpm store path', 'node_modules/.pnpm/reflect-metadata@0.1_d94759c8e155c24588e6d6c687138335/x'],
    ['an ISO time with nanoseconds', '2026-11-26T11:01:00.171234567Z'],
    ['decimal amounts', '712345678.25 and 0.0712345678'],
    ['MerchantRequestIDs', '29115-34620561-1 12345-171234567-1 MR-98358-712345678-2'],
    ['masked CheckoutRequestIDs', 'ws_CO_02122026034130999*******78 ws_CO_13102022154520280*******05'],
    ['a 2019 DMZ CheckoutRequestID', 'ws_CO_DMZ_164695293_11032019*******33'],
  ])('review: leaves %s as it is', (_what, text) => {
    expect(maskPhonesIn(text)).toBe(text);
  });
});
