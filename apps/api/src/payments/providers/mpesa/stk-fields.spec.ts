import { fitAccountReference, fitTransactionDesc } from './stk-fields';

describe('fitAccountReference (issue 8.11)', () => {
  it.each([
    ['SmartDuka-Order-12345', 'kaOrder12345'],
    ['ORD-1', 'ORD1'],
    ['INV10023', 'INV10023'],
    ['ABCDEFGHIJKLM', 'BCDEFGHIJKLM'],
    ['Café 42', 'Cafe42'],
    ['１２３', '123'],
    ['ORD\u0000\u200b1', 'ORD1'],
  ])('%j -> %j', (raw, fitted) => {
    expect(fitAccountReference(raw)).toBe(fitted);
    expect(fitted).toMatch(/^[A-Za-z0-9]{1,12}$/);
  });

  it.each(['', '   ', '--#--', '💳', 'مرحبا'])('%j cannot be made to fit', (raw) => {
    expect(fitAccountReference(raw)).toBeUndefined();
  });
});

describe('fitTransactionDesc (issue 8.11)', () => {
  it.each([
    ['SmartDuka POS payment', 'SmartDuka POS'],
    ['Payment for 14', 'Payment for 1'],
    ['Duka payment', 'Duka payment'],
    ['  Pay \n\t now  ', 'Pay now'],
    ['Order #12345', 'Order 12345'],
    ['Pay <b>now</b>', 'Pay bnowb'],
    ['Ünïcödé', 'Unicode'],
    ['a.b,c_d-e', 'a.b,c_d-e'],
    ['Twelve chars X', 'Twelve chars'],
  ])('%j -> %j', (raw, fitted) => {
    expect(fitTransactionDesc(raw)).toBe(fitted);
    expect(fitted.length).toBeLessThanOrEqual(13);
    expect(fitted).toMatch(/^[A-Za-z0-9.,_-](?:[A-Za-z0-9 .,_-]*[A-Za-z0-9.,_-])?$/);
  });

  it.each(['', ' \n ', '💳💳', '<>', '\u202e'])('%j cannot be made to fit', (raw) => {
    expect(fitTransactionDesc(raw)).toBeUndefined();
  });
});
