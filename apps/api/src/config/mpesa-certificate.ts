import { X509Certificate } from 'node:crypto';

/**
 * The SecurityCredential certificate as configuration (MPESA_CERT_FILE / MPESA_CERT_PEM, read and
 * checked at boot by app-config.ts). The encryption itself is in
 * payments/providers/mpesa/security-credential.ts.
 *
 * Safaricom's published certificates are formally expired (2016 / 2018): only the public key
 * matters, so validity dates are never checked (daraja.md §5.3). What is checked is the SHA-256
 * fingerprint, when the deployment pins one (MPESA_CERT_SHA256).
 */
export interface SecurityCertificate {
  /** The certificate as configured (PEM). */
  pem: string;
  /** Where it came from, for messages: a file path or "MPESA_CERT_PEM". */
  source: string;
  /** SHA-256 fingerprint, upper-case hex pairs separated by colons (as openssl prints it). */
  sha256: string;
  /** The certificate's subject (e.g. CN=apicrypt.safaricom.co.ke), for messages. */
  subject: string;
  /** Its fingerprint was checked against a pin (MPESA_CERT_SHA256, or the sandbox certificate's published one). */
  pinned?: boolean;
}

/** Sandbox certificate subject (Safaricom's apicrypt cert): must never encrypt for production. */
export const SANDBOX_CERT_COMMON_NAME = 'apicrypt.safaricom.co.ke';
/** The Daraja simulator's test certificate subject: never against Safaricom. */
export const SIMULATOR_CERT_COMMON_NAME = 'daraja-simulator.test.invalid';

/** `a5:42 c3…`, `A542C3…` or `SHA256 Fingerprint=A5:42:…` → `A5:42:C3:…`; undefined when it is not 32 bytes of hex. */
export function normaliseFingerprint(input: string): string | undefined {
  const hex = input
    .replace(/^\s*sha-?256\s*fingerprint\s*=\s*/i, '')
    .replace(/[\s:]/g, '')
    .toUpperCase();
  if (!/^[0-9A-F]{64}$/.test(hex)) return undefined;
  return hex.match(/../g)!.join(':');
}

/**
 * Reads a certificate (PEM, or a PEM whose newlines were written as "\n" in an environment
 * variable). Throws an Error whose message says what is wrong with `source`: not a certificate, not
 * an RSA key. Dates are deliberately not checked (see above).
 */
export function loadSecurityCertificate(text: string, source: string): SecurityCertificate {
  const pem = text.includes('\\n') && !text.includes('\n') ? text.replace(/\\n/g, '\n') : text;
  if (!/-----BEGIN CERTIFICATE-----/.test(pem))
    throw new Error(`${source} is not a PEM certificate (expected "-----BEGIN CERTIFICATE-----")`);
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(pem);
  } catch {
    throw new Error(`${source} could not be read as an X.509 certificate`);
  }
  if (cert.publicKey.asymmetricKeyType !== 'rsa')
    throw new Error(`${source} does not hold an RSA public key (Daraja's SecurityCredential is RSA)`);
  return { pem, source, sha256: cert.fingerprint256.toUpperCase(), subject: cert.subject.replace(/\n/g, ', ') };
}
