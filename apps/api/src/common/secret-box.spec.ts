import { randomBytes } from 'node:crypto';
import { SecretBox, SecretBoxError } from './secret-box';

const k1 = { id: 'k1', key: randomBytes(32) };
const k2 = { id: 'k2', key: randomBytes(32) };

describe('SecretBox', () => {
  it('seals with the first key and opens with the ring', () => {
    const old = new SecretBox([k1]);
    const { sealed, keyId } = old.seal('passkey-value', 'ctx:a');
    expect(keyId).toBe('k1');
    expect(sealed).not.toContain('passkey-value');
    expect(SecretBox.keyIdOf(sealed)).toBe('k1');
    const rotated = new SecretBox([k2, k1]);
    expect(rotated.open(sealed, 'ctx:a')).toBe('passkey-value');
    expect(rotated.seal('x', 'ctx:a').keyId).toBe('k2');
  });

  it('never seals the same value to the same text (fresh IV)', () => {
    const box = new SecretBox([k1]);
    expect(box.seal('same', 'c').sealed).not.toBe(box.seal('same', 'c').sealed);
  });

  it('fails closed: another context, a changed byte, a missing key, a wrong key with the same id', () => {
    const box = new SecretBox([k1]);
    const { sealed } = box.seal('Sup3rS3cretPasskey', 'merchant_account:A:mpesa');
    expect(() => box.open(sealed, 'merchant_account:B:mpesa')).toThrow(SecretBoxError);
    const parts = sealed.split('.');
    const ct = Buffer.from(parts[4], 'base64url');
    ct[0] ^= 1;
    parts[4] = ct.toString('base64url');
    expect(() => box.open(parts.join('.'), 'merchant_account:A:mpesa')).toThrow(/does not open/);
    expect(() => new SecretBox([k2]).open(sealed, 'merchant_account:A:mpesa')).toThrow(/not in CREDENTIALS_KEYS/);
    const impostor = new SecretBox([{ id: 'k1', key: randomBytes(32) }]);
    try {
      impostor.open(sealed, 'merchant_account:A:mpesa');
      throw new Error('opened');
    } catch (e) {
      expect((e as SecretBoxError).reason).toBe('unauthentic');
      expect((e as Error).message).not.toContain('Sup3rS3cretPasskey');
    }
    expect(() => box.open('plain text', 'c')).toThrow(/malformed/);
  });

  it('fingerprints are short, stable per key and differ across values', () => {
    const box = new SecretBox([k1]);
    expect(box.fingerprint('abc')).toMatch(/^[0-9a-f]{8}$/);
    expect(box.fingerprint('abc')).toBe(new SecretBox([k1, k2]).fingerprint('abc'));
    expect(box.fingerprint('abc')).not.toBe(box.fingerprint('abd'));
  });

  it('refuses an empty ring or a short key', () => {
    expect(() => new SecretBox([])).toThrow();
    expect(() => new SecretBox([{ id: 'x', key: randomBytes(16) }])).toThrow();
  });
});
