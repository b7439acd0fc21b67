import { createCipheriv, createDecipheriv, createHmac, randomBytes } from 'node:crypto';

/**
 * Secrets at rest: AES-256-GCM under a key ring (CREDENTIALS_KEYS). The first key of the ring
 * seals, every key opens, so a new key can be added in front, everything re-sealed
 * (`pnpm credentials:reencrypt`), and the old key dropped.
 *
 * Sealed form: `v1.<key id>.<iv>.<tag>.<ciphertext>` (base64url parts). The caller's `context`
 * (e.g. "merchant_account:<id>:mpesa") is bound as additional authenticated data: a ciphertext
 * copied onto another row does not open there. A wrong key, a changed byte or another context
 * fails closed with SecretBoxError: there is no plaintext fallback.
 */
export interface RingKey {
  id: string;
  key: Buffer;
}

export class SecretBoxError extends Error {
  constructor(
    message: string,
    readonly reason: 'unknown_key' | 'malformed' | 'unauthentic',
    readonly keyId?: string,
  ) {
    super(message);
    this.name = 'SecretBoxError';
  }
}

const VERSION = 'v1';
const IV_BYTES = 12;

export class SecretBox {
  private readonly keys: Map<string, Buffer>;
  private readonly sealing: RingKey;
  private readonly fingerprintKey: Buffer;

  constructor(ring: readonly RingKey[]) {
    if (ring.length === 0) throw new Error('SecretBox needs at least one key');
    for (const k of ring) if (k.key.length !== 32) throw new Error(`key ${k.id} is not 32 bytes`);
    this.keys = new Map(ring.map((k) => [k.id, k.key]));
    this.sealing = ring[0];
    // Fingerprints are keyed by the sealing key, so re-encryption under a new key re-makes them.
    this.fingerprintKey = createHmac('sha256', this.sealing.key).update('smartduka:fingerprint:v1').digest();
  }

  /** The id of the key that seals (the newest). */
  get sealingKeyId(): string {
    return this.sealing.id;
  }

  hasKey(id: string): boolean {
    return this.keys.has(id);
  }

  seal(plaintext: string, context: string): { sealed: string; keyId: string } {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.sealing.key, iv);
    cipher.setAAD(Buffer.from(context, 'utf8'));
    const ct = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    const tag = cipher.getAuthTag();
    const sealed = [VERSION, this.sealing.id, b64(iv), b64(tag), b64(ct)].join('.');
    return { sealed, keyId: this.sealing.id };
  }

  open(sealed: string, context: string): string {
    const parts = sealed.split('.');
    if (parts.length !== 5 || parts[0] !== VERSION) throw new SecretBoxError('sealed secret is malformed', 'malformed');
    const [, keyId, ivB64, tagB64, ctB64] = parts;
    const key = this.keys.get(keyId);
    if (!key)
      throw new SecretBoxError(`sealed with key "${keyId}", which is not in CREDENTIALS_KEYS`, 'unknown_key', keyId);
    const iv = Buffer.from(ivB64, 'base64url');
    const tag = Buffer.from(tagB64, 'base64url');
    if (iv.length !== IV_BYTES || tag.length !== 16)
      throw new SecretBoxError('sealed secret is malformed', 'malformed', keyId);
    try {
      const decipher = createDecipheriv('aes-256-gcm', key, iv);
      decipher.setAAD(Buffer.from(context, 'utf8'));
      decipher.setAuthTag(tag);
      return Buffer.concat([decipher.update(Buffer.from(ctB64, 'base64url')), decipher.final()]).toString('utf8');
    } catch {
      throw new SecretBoxError(`sealed secret does not open with key "${keyId}"`, 'unauthentic', keyId);
    }
  }

  /** The key id a sealed value names (without opening it). */
  static keyIdOf(sealed: string): string | undefined {
    const parts = sealed.split('.');
    return parts.length === 5 && parts[0] === VERSION ? parts[1] : undefined;
  }

  /**
   * A short, non-reversible fingerprint of a secret (8 hex characters of an HMAC under a key
   * derived from the sealing key): enough for a back-office screen to tell "is this the key I
   * pasted?", far too short and keyed to test guesses offline.
   */
  fingerprint(secret: string): string {
    return createHmac('sha256', this.fingerprintKey).update(secret, 'utf8').digest('hex').slice(0, 8);
  }
}

function b64(b: Buffer): string {
  return b.toString('base64url');
}
