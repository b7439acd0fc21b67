import type { ErrorCode } from '../../common/error-codes';
import { AppError } from '../../common/errors';
import { maskPhonesIn } from '../../common/mask';
import type { ProviderName } from './payment-provider';

/**
 * Whether the provider could have acted on the request:
 * - 'not_processed': provably not acted upon (never sent, refused, rejected before processing);
 *   safe to mark failed / retry with a new attempt.
 * - 'unknown': sent, but we do not know what happened (timeout, 5xx, unreadable answer). Never
 *   blindly retry a payment or refund (an STK push is not idempotent): resolve it through the
 *   status API first.
 * For read-only calls (status, IPN list) the outcome is informational only.
 */
export type ProviderCallOutcome = 'not_processed' | 'unknown';

export type ProviderErrorKind =
  /** Credentials refused (bad secret key / consumer key, token rejected twice, app lacks the API product). */
  | 'auth'
  /** The provider refused the request (validation, duplicate reference, business rule, wrong shortcode/passkey). */
  | 'rejected'
  /** 429 / throttled (Daraja spike arrest, quota): rejected before processing, retry later. */
  | 'rate_limited'
  /** Blocked before reaching the provider (connection refused, DNS, TLS, CDN firewall, no token to send with). */
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
  | 'reference_required'
  /** The customer already has an open prompt (Daraja "Unable to lock subscriber"): wait about a minute. */
  | 'customer_busy';

export interface ProviderErrorKindSpec {
  code: ErrorCode;
  /** HTTP status our own client gets. */
  status: number;
  outcome: ProviderCallOutcome;
  /** When set, our client gets a Retry-After header: the provider's own value, else this many seconds. */
  retryAfterSeconds?: number;
}

/**
 * Every kind's code, status and outcome. What the statuses tell our client (also in the OpenAPI
 * document, common/api-errors.decorator.ts):
 * - 502: the provider answered badly or refused; details.status says whether the payment failed
 *   (nothing was done) or is unresolved (outcome unknown: check it, never retry blindly);
 * - 503 + Retry-After: not processed, try again later (rate limited, provider unreachable);
 * - 504: no answer in time, outcome unknown;
 * - 409: not possible now (the customer has an open prompt: Retry-After; a reference we lack).
 */
export const PROVIDER_ERROR_KINDS: Readonly<Record<ProviderErrorKind, Readonly<ProviderErrorKindSpec>>> = {
  auth: { code: 'PROVIDER_AUTH_FAILED', status: 502, outcome: 'not_processed' },
  rejected: { code: 'PROVIDER_REJECTED', status: 502, outcome: 'not_processed' },
  rate_limited: { code: 'PROVIDER_RATE_LIMITED', status: 503, outcome: 'not_processed', retryAfterSeconds: 30 },
  unreachable: { code: 'PROVIDER_UNREACHABLE', status: 503, outcome: 'not_processed', retryAfterSeconds: 10 },
  unavailable: { code: 'PROVIDER_UNAVAILABLE', status: 502, outcome: 'unknown' },
  timeout: { code: 'PROVIDER_TIMEOUT', status: 504, outcome: 'unknown' },
  bad_response: { code: 'PROVIDER_BAD_RESPONSE', status: 502, outcome: 'unknown' },
  reference_mismatch: { code: 'PROVIDER_REFERENCE_MISMATCH', status: 502, outcome: 'not_processed' },
  reference_required: { code: 'PROVIDER_REFERENCE_REQUIRED', status: 409, outcome: 'not_processed' },
  customer_busy: { code: 'CUSTOMER_BUSY', status: 409, outcome: 'not_processed', retryAfterSeconds: 60 },
};

export interface ProviderErrorInfo {
  /** The provider's HTTP status, when it answered. */
  providerHttpStatus?: number;
  /** The provider's own error code (Daraja errorCode or a push's ResponseCode, Pesapal error.code; Flutterwave has none in v3). */
  providerCode?: string;
  /** The provider's own error message, already redacted. */
  providerMessage?: string;
  /**
   * The provider's id for its answer, for its support desk (Daraja requestId, or the
   * MerchantRequestID of a push it did not accept). Not a secret; phone numbers in it are masked
   * (Daraja's STK query echoes the CheckoutRequestID, which ends with the payer's number).
   */
  providerRequestId?: string;
  /** Seconds the provider asked us to wait before retrying (its Retry-After). */
  retryAfterSeconds?: number;
  /** Overrides the kind's default outcome (e.g. a token failure before a payment was sent). */
  outcome?: ProviderCallOutcome;
}

/**
 * Every failed provider call becomes a ProviderError (M-Pesa, Flutterwave and Pesapal alike).
 * `statusCode`/`httpStatus` is what our own client receives (see PROVIDER_ERROR_KINDS); `message`
 * is readable by a cashier and never contains secrets (provider texts are redacted and truncated
 * before they get here); `details` (sent to our client) carry the provider name and the
 * provider's code, message and request id (providerErrorCode, providerErrorMessage,
 * providerRequestId) when it sent them.
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
  readonly providerRequestId?: string;
  /** What the provider asked for (its Retry-After); the header our client gets falls back to the kind's default. */
  readonly retryAfterSeconds?: number;

  constructor(provider: ProviderName, kind: ProviderErrorKind, rawMessage: string, rawInfo: ProviderErrorInfo = {}) {
    const spec = PROVIDER_ERROR_KINDS[kind];
    // Provider texts can name the payer ("Invalid PhoneNumber 2547…", a CheckoutRequestID ending in
    // the number): whatever reaches our client, the key's stored answer or result_desc is masked here.
    const message = maskPhonesIn(rawMessage);
    const info =
      rawInfo.providerMessage === undefined
        ? rawInfo
        : { ...rawInfo, providerMessage: maskPhonesIn(rawInfo.providerMessage) };
    const providerRequestId = info.providerRequestId === undefined ? undefined : maskPhonesIn(info.providerRequestId);
    const details: Record<string, unknown> = { provider };
    if (info.providerCode !== undefined) details.providerErrorCode = info.providerCode;
    if (info.providerMessage !== undefined) details.providerErrorMessage = info.providerMessage;
    if (providerRequestId !== undefined) details.providerRequestId = providerRequestId;
    const headers =
      spec.retryAfterSeconds !== undefined
        ? { 'Retry-After': String(info.retryAfterSeconds ?? spec.retryAfterSeconds) }
        : undefined;
    super(spec.code, message, spec.status, details, headers);
    this.provider = provider;
    this.kind = kind;
    this.outcome = info.outcome ?? spec.outcome;
    this.httpStatus = spec.status;
    this.providerHttpStatus = info.providerHttpStatus;
    this.providerCode = info.providerCode;
    this.providerMessage = info.providerMessage;
    this.providerRequestId = providerRequestId;
    this.retryAfterSeconds = info.retryAfterSeconds;
  }

  /** Same error, but known not to have been acted upon (e.g. it happened before the payment request was sent). */
  asNotProcessed(suffix: string): ProviderError {
    const copy = new ProviderError(this.provider, this.kind, `${this.message}; ${suffix}`, {
      providerHttpStatus: this.providerHttpStatus,
      providerCode: this.providerCode,
      providerMessage: this.providerMessage,
      providerRequestId: this.providerRequestId,
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
