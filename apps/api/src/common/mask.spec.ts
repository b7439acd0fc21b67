import { maskPhone, maskSecret } from './mask';

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
