import { constants, KeyObject, publicEncrypt, X509Certificate } from 'node:crypto';
import type { SecurityCertificate } from '../../../config/mpesa-certificate';

export {
  loadSecurityCertificate,
  normaliseFingerprint,
  SANDBOX_CERT_COMMON_NAME,
  SIMULATOR_CERT_COMMON_NAME,
} from '../../../config/mpesa-certificate';
export type { SecurityCertificate } from '../../../config/mpesa-certificate';

/**
 * Daraja's SecurityCredential (Reversal, Transaction Status, B2C, ...): the initiator password
 * RSA-encrypted with the public key of Safaricom's certificate for the SAME environment as the base
 * URL, PKCS#1 v1.5 padding (not OAEP), base64 (daraja.md §5.3). The certificate is configuration
 * (MPESA_CERT_FILE / MPESA_CERT_PEM, app-config.ts), never a constant in code.
 *
 * Safaricom's published certificates are formally expired (2016 / 2018): only the public key
 * matters, so validity dates are never checked. What is checked is the SHA-256 fingerprint, when
 * the deployment pins one (MPESA_CERT_SHA256).
 */

/** The certificate's RSA public key. */
export function certificatePublicKey(cert: SecurityCertificate | string): KeyObject {
  return new X509Certificate(typeof cert === 'string' ? cert : cert.pem).publicKey;
}

/** base64(RSA-PKCS#1-v1.5-encrypt(password)) with the certificate's public key. Random padding: a new value each call. */
export function securityCredential(password: string, key: KeyObject): string {
  if (typeof password !== 'string' || password.length === 0)
    throw new Error('securityCredential: the initiator password is empty');
  return publicEncrypt({ key, padding: constants.RSA_PKCS1_PADDING }, Buffer.from(password, 'utf8')).toString('base64');
}
