import { constants, createPrivateKey, privateDecrypt, publicEncrypt } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigValidationError, loadConfig, REPO_ROOT, SANDBOX_CERT_SHA256 } from '../../../config/app-config';
import {
  certificatePublicKey,
  loadSecurityCertificate,
  normaliseFingerprint,
  securityCredential,
} from './security-credential';

const CERTS = join(REPO_ROOT, 'packages/daraja-simulator/certs');
const TEST_CERT = readFileSync(join(CERTS, 'simulator-test-cert.pem'), 'utf8');
const TEST_KEY = createPrivateKey(readFileSync(join(CERTS, 'simulator-test-key.pem'), 'utf8'));
const TEST_SHA256 = '46:B2:82:FE:0D:67:B2:80:A8:35:AA:37:90:4F:0A:65:AD:1E:08:5E:FC:2C:F3:F0:35:BA:43:A1:BA:A0:EF:55';
const SANDBOX_FILE = join(REPO_ROOT, 'apps/api/certs/mpesa-sandbox.cer');

/** Raw RSA, then the PKCS#1 v1.5 type-2 block by hand (Node 20 refuses RSA_PKCS1_PADDING private decryption). */
function decryptPkcs1(b64: string): string {
  const block = privateDecrypt({ key: TEST_KEY, padding: constants.RSA_NO_PADDING }, Buffer.from(b64, 'base64'));
  expect(block[0]).toBe(0x00);
  expect(block[1]).toBe(0x02);
  const sep = block.indexOf(0x00, 2);
  expect(sep).toBeGreaterThanOrEqual(10);
  // every padding byte is non-zero
  expect([...block.subarray(2, sep)].every((b) => b !== 0)).toBe(true);
  return block.subarray(sep + 1).toString('utf8');
}

function problemsOf(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigValidationError) return err.problems;
    throw err;
  }
  return [];
}

const SANDBOX_ENV = {
  MPESA_ENV: 'sandbox',
  MPESA_CONSUMER_KEY: 'k',
  MPESA_CONSUMER_SECRET: 's',
  MPESA_SHORTCODE: '174379',
  MPESA_PASSKEY: 'bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919',
  MPESA_CALLBACK_URL: 'https://pay.example.com/payments/callback',
  CALLBACK_SIGNING_SECRET: 'x'.repeat(40),
};

describe('securityCredential', () => {
  const key = certificatePublicKey(loadSecurityCertificate(TEST_CERT, 'test'));

  it('is the password RSA-encrypted with PKCS#1 v1.5: the matching private key gets it back', () => {
    const c = securityCredential('Safaricom999!*!', key);
    expect(c).toMatch(/^[A-Za-z0-9+/]+={0,2}$/);
    expect(Buffer.from(c, 'base64')).toHaveLength(256);
    expect(decryptPkcs1(c)).toBe('Safaricom999!*!');
  });

  it('is not OAEP: an OAEP decryption of it fails, and an OAEP ciphertext is not a type-2 block', () => {
    const c = securityCredential('pa55word', key);
    expect(() =>
      privateDecrypt({ key: TEST_KEY, padding: constants.RSA_PKCS1_OAEP_PADDING }, Buffer.from(c, 'base64')),
    ).toThrow();
    const oaep = publicEncrypt({ key, padding: constants.RSA_PKCS1_OAEP_PADDING }, Buffer.from('pa55word'));
    const block = privateDecrypt({ key: TEST_KEY, padding: constants.RSA_NO_PADDING }, oaep);
    expect(block[0] === 0 && block[1] === 2 && block.includes('pa55word')).toBe(false);
  });

  it('differs every call (random padding) and refuses an empty password', () => {
    expect(securityCredential('same', key)).not.toBe(securityCredential('same', key));
    expect(() => securityCredential('', key)).toThrow(/empty/);
  });
});

describe('loadSecurityCertificate', () => {
  it("reads the sandbox certificate despite its 2016 expiry, with Safaricom's published fingerprint", () => {
    const c = loadSecurityCertificate(readFileSync(SANDBOX_FILE, 'utf8'), 'sandbox');
    expect(c.sha256).toBe(SANDBOX_CERT_SHA256);
    expect(c.subject).toContain('CN=apicrypt.safaricom.co.ke');
  });

  it('accepts a PEM whose newlines are written as \\n (an environment variable)', () => {
    expect(loadSecurityCertificate(TEST_CERT.replace(/\n/g, '\\n'), 'env').sha256).toBe(TEST_SHA256);
  });

  it('says what is wrong with something that is not a certificate', () => {
    expect(() => loadSecurityCertificate('hello', 'X')).toThrow('X is not a PEM certificate');
    expect(() =>
      loadSecurityCertificate('-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n', 'X'),
    ).toThrow('X could not be read as an X.509 certificate');
  });

  it('normalises fingerprints in the usual spellings', () => {
    const plain = TEST_SHA256.replace(/:/g, '').toLowerCase();
    expect(normaliseFingerprint(plain)).toBe(TEST_SHA256);
    expect(normaliseFingerprint(`SHA256 Fingerprint=${TEST_SHA256}`)).toBe(TEST_SHA256);
    expect(normaliseFingerprint('abcd')).toBeUndefined();
  });
});

describe('M-Pesa certificate configuration', () => {
  it("simulator: the simulator's test certificate by default", () => {
    expect(loadConfig({}).mpesa.securityCertificate?.sha256).toBe(TEST_SHA256);
  });

  it('sandbox: the shipped sandbox certificate, pinned to its fingerprint', () => {
    expect(loadConfig(SANDBOX_ENV).mpesa.securityCertificate).toMatchObject({ sha256: SANDBOX_CERT_SHA256 });
  });

  it('production: none unless configured (refunds are refused, payments boot)', () => {
    const c = loadConfig({ ...SANDBOX_ENV, MPESA_ENV: 'production', MPESA_PASSKEY: 'a'.repeat(64) });
    expect(c.mpesa.securityCertificate).toBeNull();
  });

  it('MPESA_CERT_FILE and MPESA_CERT_PEM, with a matching pin', () => {
    const file = join(CERTS, 'simulator-test-cert.pem');
    expect(
      loadConfig({ MPESA_CERT_FILE: file, MPESA_CERT_SHA256: TEST_SHA256 }).mpesa.securityCertificate?.source,
    ).toBe(`MPESA_CERT_FILE (${file})`);
    expect(loadConfig({ MPESA_CERT_PEM: TEST_CERT }).mpesa.securityCertificate?.sha256).toBe(TEST_SHA256);
    // Whether it was pinned (production warns at boot when it is not).
    expect(loadConfig({ MPESA_CERT_PEM: TEST_CERT }).mpesa.securityCertificate?.pinned).toBe(false);
    expect(
      loadConfig({ MPESA_CERT_PEM: TEST_CERT, MPESA_CERT_SHA256: TEST_SHA256 }).mpesa.securityCertificate?.pinned,
    ).toBe(true);
  });

  it('refuses to boot on a pin mismatch, naming both fingerprints', () => {
    const problems = problemsOf({ MPESA_CERT_PEM: TEST_CERT, MPESA_CERT_SHA256: SANDBOX_CERT_SHA256 });
    expect(problems).toEqual([
      `The M-Pesa certificate from MPESA_CERT_PEM has SHA-256 fingerprint ${TEST_SHA256}, but MPESA_CERT_SHA256 is ${SANDBOX_CERT_SHA256}: wrong file, or the pin is out of date`,
    ]);
  });

  it('refuses a bad pin, a missing file, both variables, and a certificate of another environment', () => {
    expect(problemsOf({ MPESA_CERT_SHA256: 'nope' })).toEqual([
      'MPESA_CERT_SHA256 must be a SHA-256 fingerprint: 64 hex digits (colons allowed)',
    ]);
    expect(problemsOf({ MPESA_CERT_FILE: '/nonexistent/cert.pem' })).toEqual([
      'MPESA_CERT_FILE (/nonexistent/cert.pem) does not exist',
    ]);
    expect(problemsOf({ MPESA_CERT_FILE: SANDBOX_FILE, MPESA_CERT_PEM: TEST_CERT })).toEqual([
      'Set MPESA_CERT_PEM or MPESA_CERT_FILE, not both',
    ]);
    expect(
      problemsOf({
        ...SANDBOX_ENV,
        MPESA_ENV: 'production',
        MPESA_PASSKEY: 'a'.repeat(64),
        MPESA_CERT_FILE: SANDBOX_FILE,
      }),
    ).toEqual([expect.stringContaining("is Safaricom's SANDBOX certificate but MPESA_ENV=production")]);
    expect(problemsOf({ ...SANDBOX_ENV, MPESA_CERT_PEM: TEST_CERT })).toEqual([
      expect.stringContaining("is the Daraja simulator's test certificate but MPESA_ENV=sandbox"),
    ]);
  });
});
