import { maskCheckoutRequestId, maskCheckoutRequestIdsIn, maskPhone, maskPhonesIn, maskSecret } from './mask';

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

  it.each([[''], ['abc'], ['0712 345 678'], ['12345'], ['2547123456789012345'], ['john@example.com'], [undefined], [null], [{}], [1.5]])(
    'masks non-phone %p entirely',
    (input) => {
      expect(maskPhone(input)).toBe('***');
    },
  );

  it('never reveals more than 6 digits of a 12-digit number', () => {
    const masked = maskPhone('254798765432');
    expect(masked.replace(/\*/g, '')).toHaveLength(6);
    expect(masked).toHaveLength(12);
  });
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

  it('masks every phone form in free text, not amounts, ids or decimals', () => {
    expect(maskPhonesIn('0712 345 678 / +254712345678 / 254112345678 / 712345678 / ORD-112345678')).toBe('07******78 / +2547******78 / 2541******78 / 71*****78 / ORD-11*****78');
    const untouched = 'amount 1795690859969 ms 20261126104500 id 29115-171234567-1 ratio 1.712345678 hex a712345678f';
    expect(maskPhonesIn(untouched)).toBe(untouched);
  });
});
