import { InvalidPhoneNumberError } from './mpesa.errors';
import { formatPhoneNumber, isDarajaMsisdn } from './phone';

describe('formatPhoneNumber', () => {
  it.each([
    ['+254 712 345 678', '254712345678'],
    ['+254712345678', '254712345678'],
    ['254712345678', '254712345678'],
    ['0712345678', '254712345678'],
    ['712345678', '254712345678'],
    ['0112345678', '254112345678'],
    ['112345678', '254112345678'],
    ['+254112345678', '254112345678'],
    ['0712-345-678', '254712345678'],
    ['0712 345 678', '254712345678'],
    ['(0712) 345-678', '254712345678'],
    ['(+254) 712 345 678', '254712345678'],
    ['  254 708 374 149  ', '254708374149'],
    ['0733123456', '254733123456'], // Airtel range: format only, portability
    ['0100123456', '254100123456'],
    ['254799999999', '254799999999'],
  ])('%p -> %s', (input, expected) => {
    expect(formatPhoneNumber(input)).toBe(expected);
  });

  it.each([
    [''],
    ['   '],
    ['07123'],
    ['+255712345678'], // Tanzania
    ['255712345678'],
    ['0812345678'], // not a 07/01 mobile
    ['0212345678'],
    ['07123456789'], // too long
    ['2547123456789'],
    ['25471234567'], // too short
    ['07l2345678'], // letter l
    ['abc'],
    ['+0712345678'],
    ['2540712345678'],
    ['0712.345.678'],
    ['0712345678'.repeat(4)],
    ['٠٧١٢٣٤٥٦٧٨'], // non-ASCII digits
  ])('rejects %p', (input) => {
    expect(() => formatPhoneNumber(input)).toThrow(InvalidPhoneNumberError);
  });

  it.each([[712345678], [254712345678], [null], [undefined], [{}], [['0712345678']], [true]])(
    'rejects non-string %p',
    (input) => {
      expect(() => formatPhoneNumber(input)).toThrow(InvalidPhoneNumberError);
    },
  );

  it('throws an AppError with code INVALID_PHONE_NUMBER and a masked echo', () => {
    try {
      formatPhoneNumber('0812345678');
      throw new Error('should have thrown');
    } catch (e) {
      expect(e).toBeInstanceOf(InvalidPhoneNumberError);
      const err = e as InvalidPhoneNumberError;
      expect(err.code).toBe('INVALID_PHONE_NUMBER');
      expect(err.statusCode).toBe(400);
      expect(JSON.stringify(err.details)).not.toContain('0812345678');
    }
  });

  it('isDarajaMsisdn only accepts the normalised form', () => {
    expect(isDarajaMsisdn('254712345678')).toBe(true);
    expect(isDarajaMsisdn('254112345678')).toBe(true);
    expect(isDarajaMsisdn('0712345678')).toBe(false);
    expect(isDarajaMsisdn(254712345678)).toBe(false);
  });
});
