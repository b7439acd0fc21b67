import type { AppConfig } from '../../../config/app-config';
import type { DarajaServiceOptions } from './daraja.service';
import type { DarajaTokenRepository } from './daraja-token.repository';

/** The deployment's Daraja client options (MpesaModule, and the commands that call Daraja themselves). */
export function darajaOptionsFor(config: AppConfig, tokenStore: DarajaTokenRepository): DarajaServiceOptions {
  const m = config.mpesa;
  if (!m.baseUrl) throw new Error('M-Pesa base URL is not set (the embedded simulator did not start?)');
  return {
    defaultAccount: {
      id: 'default',
      baseUrl: m.baseUrl,
      consumerKey: m.consumerKey,
      consumerSecret: m.consumerSecret,
      shortcode: m.shortcode,
      passkey: m.passkey,
      transactionType: m.transactionType,
      tillNumber: m.tillNumber,
    },
    timeoutMs: m.httpTimeoutMs,
    keepAliveMs: m.httpKeepAliveMs,
    tokenRefreshMarginSeconds: 300,
    callbackBaseUrl: m.callbackUrl,
    callbackSigningSecret: m.callbackSigningSecret,
    // OAuth tokens shared by all instances via Postgres (daraja.md §1.3).
    tokenStore,
    securityCertificatePem: m.securityCertificate?.pem,
  };
}
