import { createHash, createHmac } from 'node:crypto';
import { phoneHash } from './phone-hash';

const SECRET = 'phone-hash-spec-secret-0123456789abcdefgh';

describe('phoneHash', () => {
  it('is the keyed HMAC-SHA256 of the normalised number, under a key derived from the server secret', () => {
    const key = createHmac('sha256', SECRET).update('smartduka/payments/phone-hash/v1').digest();
    expect(phoneHash(SECRET, '254712345678')).toBe(createHmac('sha256', key).update('254712345678').digest('hex'));
    // Never the plain SHA-256 (reversible by trying every Kenyan number) nor an HMAC under the secret itself.
    expect(phoneHash(SECRET, '254712345678')).not.toBe(createHash('sha256').update('254712345678').digest('hex'));
    expect(phoneHash(SECRET, '254712345678')).not.toBe(
      createHmac('sha256', SECRET).update('254712345678').digest('hex'),
    );
  });

  it('one customer, one hash: every form of a Kenyan number hashes as 2547…', () => {
    const h = phoneHash(SECRET, '254712345678');
    for (const form of [
      '0712345678',
      '+254712345678',
      '712345678',
      '0712 345 678',
      '+254-712-345-678',
      '(0712) 345678',
    ])
      expect(phoneHash(SECRET, form)).toBe(h);
    expect(phoneHash(SECRET, '0112345678')).toBe(phoneHash(SECRET, '254112345678'));
    expect(phoneHash(SECRET, '0712345679')).not.toBe(h);
  });

  it('another secret, another hash', () => {
    expect(phoneHash(`${SECRET}x`, '254712345678')).not.toBe(phoneHash(SECRET, '254712345678'));
  });

  it('a number that is not Kenyan hashes as its digits', () => {
    const key = createHmac('sha256', SECRET).update('smartduka/payments/phone-hash/v1').digest();
    expect(phoneHash(SECRET, '+1 (415) 555-0100')).toBe(createHmac('sha256', key).update('14155550100').digest('hex'));
    expect(phoneHash(SECRET, '+44 20 7946 0958')).toBe(phoneHash(SECRET, '442079460958'));
  });

  it('refuses to hash without a server secret', () => {
    expect(() => phoneHash('', '254712345678')).toThrow('a server secret is needed to hash phone numbers');
  });
});
