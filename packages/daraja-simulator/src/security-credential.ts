/**
 * SecurityCredential = base64(RSA-encrypt(initiatorPassword)) with the public key of the certificate, PKCS#1 v1.5
 * padding (daraja.md §5.3). The simulator holds the private key of its own TEST certificate (certs/, test-only).
 */
import { constants, createPrivateKey, privateDecrypt, X509Certificate, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const CERTS_DIR = join(__dirname, '..', 'certs');

/** The simulator's self-signed TEST certificate (PEM): configure it as the "sandbox certificate" of a client. */
export const SIMULATOR_CERTIFICATE_PEM: string = readFileSync(join(CERTS_DIR, 'simulator-test-cert.pem'), 'utf8');

/** SHA-256 fingerprint of SIMULATOR_CERTIFICATE_PEM, `AA:BB:…` upper-case as openssl prints it. */
export const SIMULATOR_CERTIFICATE_SHA256: string = new X509Certificate(SIMULATOR_CERTIFICATE_PEM).fingerprint256;

let privateKey: KeyObject | undefined;

function simulatorPrivateKey(): KeyObject {
  privateKey ??= createPrivateKey(readFileSync(join(CERTS_DIR, 'simulator-test-key.pem'), 'utf8'));
  return privateKey;
}

/**
 * Removes PKCS#1 v1.5 type-2 padding: 00 02 <≥8 non-zero bytes> 00 <message>. Node 20 refuses
 * privateDecrypt(RSA_PKCS1_PADDING) (CVE-2023-46809), and OpenSSL's implicit rejection would turn a bad padding into
 * random bytes, so the simulator decrypts raw (RSA_NO_PADDING) and checks the padding itself. Timing side channels do
 * not matter for a test key.
 */
function unpadPkcs1Type2(block: Buffer): Buffer | undefined {
  if (block.length < 11 || block[0] !== 0x00 || block[1] !== 0x02) return undefined;
  const separator = block.indexOf(0x00, 2);
  if (separator < 10) return undefined;
  return block.subarray(separator + 1);
}

/** Printable text only: anything else is not a password someone typed (and OAEP/garbage almost never passes). */
const PASSWORD_TEXT = /^[\x20-\x7e\u00a0-\uffff]{1,128}$/u;

/**
 * The initiator password inside a SecurityCredential, or undefined when it does not decrypt with the simulator's key
 * (another certificate, OAEP padding, not base64, garbage). The result must never be stored or logged.
 */
export function decryptSecurityCredential(credential: string): string | undefined {
  const trimmed = credential.trim();
  if (trimmed === '' || !/^[A-Za-z0-9+/]+={0,2}$/.test(trimmed)) return undefined;
  const cipher = Buffer.from(trimmed, 'base64');
  const key = simulatorPrivateKey();
  const modulusBytes = Math.ceil((key.asymmetricKeyDetails?.modulusLength ?? 2048) / 8);
  if (cipher.length !== modulusBytes) return undefined;
  let block: Buffer;
  try {
    block = privateDecrypt({ key, padding: constants.RSA_NO_PADDING }, cipher);
  } catch {
    return undefined;
  }
  const message = unpadPkcs1Type2(block);
  if (!message) return undefined;
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(message);
  } catch {
    return undefined;
  }
  return PASSWORD_TEXT.test(text) ? text : undefined;
}
