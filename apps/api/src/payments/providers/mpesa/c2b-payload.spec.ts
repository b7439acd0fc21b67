import { createHash } from 'node:crypto';
import { classifyMsisdn, maskCustomerName, parseC2bAmount, parseC2bPayload } from './c2b-payload';

describe('C2B payload', () => {
  it.each([
    ['10', 1000n],
    ['100.00', 10000n],
    ['1,000.00', 100000n],
    [' 250000 ', 25000000n],
    ['5.0', 500n],
  ])('amount %p → %p minor', (raw, minor) => {
    expect(parseC2bAmount(raw)).toEqual({ minor });
  });

  it.each([
    ['100.50', 'AMOUNT_NOT_WHOLE_SHILLINGS'],
    ['0.01', 'AMOUNT_NOT_WHOLE_SHILLINGS'],
    ['0', 'AMOUNT_NOT_POSITIVE'],
    ['0.00', 'AMOUNT_NOT_POSITIVE'],
    ['-5', 'AMOUNT_INVALID'],
    ['1e3', 'AMOUNT_INVALID'],
    ['10.001', 'AMOUNT_INVALID'],
    ['1,00', 'AMOUNT_INVALID'],
    ['ten', 'AMOUNT_INVALID'],
    ['1234567890', 'AMOUNT_INVALID'],
    ['', 'AMOUNT_MISSING'],
    [undefined, 'AMOUNT_MISSING'],
    [null, 'AMOUNT_MISSING'],
  ])('amount %p is refused (%s)', (raw, problem) => {
    expect(parseC2bAmount(raw)).toEqual({ problem });
  });

  it('tells the three MSISDN forms apart and never keeps a plain one as anything but plain', () => {
    const hash = createHash('sha256').update('254712345678').digest('hex');
    expect(hash).toBe('7132104d6aae9c3fac82095a42c2817952bca48e09d98d5bf4ac08218982fb90');
    expect(classifyMsisdn(hash.toUpperCase())).toEqual({ form: 'sha256', sha256: hash });
    expect(classifyMsisdn('254712345678')).toEqual({ form: 'plain', plain: '254712345678' });
    expect(classifyMsisdn('254112345678')).toEqual({ form: 'plain', plain: '254112345678' });
    expect(classifyMsisdn('25470****149')).toEqual({ form: 'masked', masked: '25470****149' });
    expect(classifyMsisdn('2547 ***** 126')).toEqual({ form: 'masked', masked: '2547*****126' });
    // a "mask" that shows the whole number is not a mask
    expect(classifyMsisdn('254712345678*')).toEqual({ form: 'unknown' });
    expect(classifyMsisdn('')).toEqual({ form: 'none' });
    expect(classifyMsisdn(undefined)).toEqual({ form: 'none' });
    expect(classifyMsisdn('abc')).toEqual({ form: 'unknown' });
  });

  it('masks the customer name to the first name and an initial, and drops digits', () => {
    expect(maskCustomerName('John', 'Doe')).toBe('John D.');
    expect(maskCustomerName('John', '')).toBe('John');
    expect(maskCustomerName('', 'doe')).toBe('D.');
    expect(maskCustomerName('0712345678', 'x')).toBe('X.');
    expect(maskCustomerName(undefined, undefined)).toBeNull();
  });

  it('reads a confirmation and says why one cannot be booked', () => {
    const ok = parseC2bPayload({
      TransID: ' rktqdm7w6s ',
      TransAmount: '10.00',
      TransTime: '20191122063845',
      BillRefNumber: ' ORD-1 ',
      MSISDN: '25470****149',
      FirstName: 'John',
      LastName: 'Doe',
    });
    expect(ok).toMatchObject({
      transId: 'RKTQDM7W6S',
      amountMinor: 1000n,
      billRefNumber: 'ORD-1',
      problem: null,
      customerName: 'John D.',
    });
    expect(parseC2bPayload({ TransID: 'RKTQDM7W6S', TransAmount: '10.50' }).problem).toBe('AMOUNT_NOT_WHOLE_SHILLINGS');
    expect(parseC2bPayload({ TransID: 'x', TransAmount: '10' }).problem).toBe('TRANS_ID_INVALID');
    expect(parseC2bPayload([1, 2]).problem).toBe('NOT_A_C2B_BODY');
    expect(parseC2bPayload({ TransID: 'RKTQDM7W6S', TransAmount: '10', TransTime: 'yesterday' }).transTime).toBeNull();
  });
});
