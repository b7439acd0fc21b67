import { AppError } from '../../common/errors';
import type { ProviderName } from './payment-provider';

/**
 * Whether the provider could have acted on the request (same meaning as DarajaError.outcome):
 * - 'not_processed': provably not acted upon (never sent, refused, rejected before processing);
 *   safe to mark failed / retry with a new attempt.
 * - 'unknown': sent, but we do not know what happened (timeout, 5xx, unreadable answer). Never
 *   blindly retry a payment or refund: resolve it through the status API first.
 * For read-only calls (status, IPN list) the outcome is informational only.
 */
export type ProviderCallOutcome = 'not_processed' | 'unknown';

export type ProviderErrorKind =
  /** Credentials refused (bad secret key / consumer key, token rejected twice). */
  | 'auth'
  /** The provider refused the request (validation, duplicate reference, business rule). */
  | 'rejected'
  /** 429 / throttled: rejected before processing, retry later. */
  | 'rate_limited'
  /** Blocked before reaching the provider (connection refused, DNS, TLS, CDN firewall). */
  | 'unreachable'
  /** 5xx or broken connection after the request was sent. */
  | 'unavailable'
  /** No answer within the configured timeout. */
  | 'timeout'
  /** An answer we cannot read or that contradicts itself. */
  | 'bad_response'
  /** The provider reports a different reference/tracking id than the one we asked about. */
  | 'reference_mismatch'
  /** The call needs a provider reference we do not have (e.g. Pesapal tracking id). */
  | 'reference_required';

interface KindSpec {
  code: string;
  /** HTTP status our own client gets. */
  status: number;
  outcome: ProviderCallOutcome;
}

const KINDS: Record<ProviderErrorKind, KindSpec> = {
  auth: { code: 'PROVIDER_AUTH_FAILED', status: 502, outcome: 'not_processed' },
  rejected: { code: 'PROVIDER_REJECTED', status: 502, outcome: 'not_processed' },
  rate_limited: { code: 'PROVIDER_RATE_LIMITED', status: 503, outcome: 'not_processed' },
  unreachable: { code: 'PROVIDER_UNREACHABLE', status: 503, outcome: 'not_processed' },
  unavailable: { code: 'PROVIDER_UNAVAILABLE', status: 502, outcome: 'unknown' },
  timeout: { code: 'PROVIDER_TIMEOUT', status: 504, outcome: 'unknown' },
  bad_response: { code: 'PROVIDER_BAD_RESPONSE', status: 502, outcome: 'unknown' },
  reference_mismatch: { code: 'PROVIDER_REFERENCE_MISMATCH', status: 502, outcome: 'not_processed' },
  reference_required: { code: 'PROVIDER_REFERENCE_REQUIRED', status: 409, outcome: 'not_processed' },
};

export interface ProviderErrorInfo {
  /** The provider's HTTP status, when it answered. */
  providerHttpStatus?: number;
  /** The provider's own error code (Pesapal error.code, Flutterwave has none in v3). */
  providerCode?: string;
  /** The provider's own error message, already redacted. */
  providerMessage?: string;
  /** Seconds to wait before retrying (rate limits). */
  retryAfterSeconds?: number;
  /** Overrides the kind's default outcome (e.g. a token failure before a payment was sent). */
  outcome?: ProviderCallOutcome;
}

/**
 * Every failed provider call becomes a ProviderError. `statusCode`/`httpStatus` is what our own
 * client receives (502 bad gateway, 503 retry later, 504 provider timeout, 409 not possible yet);
 * `message` is readable by a cashier and never contains secrets (provider texts are redacted and
 * truncated before they get here); `details` (sent to our client) carry the provider name and
 * the provider's code/message.
 */
export class ProviderError extends AppError {
  readonly provider: ProviderName;
  readonly kind: ProviderErrorKind;
  readonly outcome: ProviderCallOutcome;
  /** HTTP status for our client (same as `statusCode`). */
  readonly httpStatus: number;
  readonly providerHttpStatus?: number;
  readonly providerCode?: string;
  readonly providerMessage?: string;
  readonly retryAfterSeconds?: number;

  constructor(provider: ProviderName, kind: ProviderErrorKind, message: string, info: ProviderErrorInfo = {}) {
    const spec = KINDS[kind];
    const details: Record<string, unknown> = { provider };
    if (info.providerCode !== undefined) details.providerErrorCode = info.providerCode;
    if (info.providerMessage !== undefined) details.providerErrorMessage = info.providerMessage;
    const headers =
      kind === 'rate_limited' || kind === 'unreachable'
        ? { 'Retry-After': String(info.retryAfterSeconds ?? (kind === 'rate_limited' ? 30 : 10)) }
        : undefined;
    super(spec.code, message, spec.status, details, headers);
    this.provider = provider;
    this.kind = kind;
    this.outcome = info.outcome ?? spec.outcome;
    this.httpStatus = spec.status;
    this.providerHttpStatus = info.providerHttpStatus;
    this.providerCode = info.providerCode;
    this.providerMessage = info.providerMessage;
    this.retryAfterSeconds = info.retryAfterSeconds;
  }

  /** Same error, but known not to have been acted upon (e.g. it happened before the payment request was sent). */
  asNotProcessed(suffix: string): ProviderError {
    const copy = new ProviderError(this.provider, this.kind, `${this.message}; ${suffix}`, {
      providerHttpStatus: this.providerHttpStatus,
      providerCode: this.providerCode,
      providerMessage: this.providerMessage,
      retryAfterSeconds: this.retryAfterSeconds,
      outcome: 'not_processed',
    });
    return copy;
  }
}

const MAX_PROVIDER_TEXT = 200;

/**
 * Removes every configured secret (and the current access token) from a provider-supplied text
 * before it goes into an error or a log line, and truncates it. Secrets shorter than 4
 * characters are ignored (they would redact ordinary words).
 */
export function redact(text: string, secrets: ReadonlyArray<string | undefined>): string {
  let out = text;
  for (const s of secrets) {
    if (typeof s === 'string' && s.length >= 4) out = out.split(s).join('***');
  }
  out = out
    // Flutterwave secret keys and JWT-shaped bearer tokens, even ones we were not told about.
    .replace(/FLWSECK[\w-]*/g, '***')
    .replace(/eyJ[\w-]+\.[\w-]+\.[\w-]*/g, '***')
    .replace(/\s+/g, ' ')
    .trim();
  return out.length > MAX_PROVIDER_TEXT ? `${out.slice(0, MAX_PROVIDER_TEXT)}…` : out;
}
