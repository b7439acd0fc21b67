import { Logger } from '@nestjs/common';
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { ValidationFailedError } from '../../../common/errors';
import { parseProviderAmount, toOutgoingAmount } from '../amount';
import type {
  InitiateRequest,
  InitiateResult,
  Notification,
  NotificationInput,
  PaymentProvider,
  ProviderCapabilities,
  ProviderPaymentStatus,
  RefundRequest,
  RefundResult,
  StatusResult,
} from '../payment-provider';
import { ProviderError, ProviderErrorInfo } from '../provider-errors';
import { HttpAnswer, isHttpUrl, isPlainObject, ProviderHttp, str, trimTrailingSlashes } from '../provider-http';
import { cleanCustomer, requireReference, requireText, requireUrl } from '../request-validation';
import type { FlutterwaveConfig, FlwPaymentRequest, FlwRefundRequest } from './flutterwave.types';

const LABEL = 'Flutterwave';
/** The official SDK validates tx_ref ≤ 100 characters. */
export const FLW_TX_REF_MAX_LENGTH = 100;
const TRANSACTION_ID_RE = /^\d{1,20}$/;

/**
 * Flutterwave `data.status` (verify / webhook) → our status. Exact matches only: e.g.
 * "success-pending-validation" (live M-Pesa) is pending, never completed.
 */
export function mapFlutterwaveStatus(status: unknown): ProviderPaymentStatus {
  if (typeof status !== 'string') return 'unknown';
  const s = status.trim().toLowerCase();
  switch (s) {
    case 'successful':
    case 'completed': // newer checkout spelling seen on redirects
      return 'completed';
    case 'failed':
      return 'failed';
    case 'cancelled':
    case 'canceled':
      return 'cancelled';
    case 'pending':
    case 'processing':
    case 'initiated':
    case 'success-pending-validation':
      return 'pending';
    default:
      return s.startsWith('pending') ? 'pending' : 'unknown';
  }
}

/** One Flutterwave refund as we read it (refund `data`, a list row, or the flat refund webhook). */
export interface FlwRefundState {
  providerRefundId: string;
  /** The original charge's transaction id. */
  transactionId?: string;
  status: 'pending' | 'succeeded' | 'failed' | 'unknown';
  /** Flutterwave's own word for it (completed, pending-momo, …). */
  providerStatus?: string;
  amountMinor?: bigint;
  createdAt?: Date;
}

/**
 * A Flutterwave refund `status` (flutterwave.md §7/§5c: completed, pending, pending-momo,
 * processing, …) → our refund status. Exact words only; anything unrecognised is unknown.
 */
export function mapFlutterwaveRefundStatus(status: unknown): FlwRefundState['status'] {
  if (typeof status !== 'string') return 'unknown';
  const s = status.trim().toLowerCase();
  if (s === 'completed' || s === 'successful' || s === 'success') return 'succeeded';
  if (s === 'failed' || s === 'declined' || s === 'rejected' || s === 'cancelled' || s === 'canceled') return 'failed';
  if (s === 'processing' || s === 'new' || s === 'initiated' || s === 'pending' || s.startsWith('pending-'))
    return 'pending';
  return 'unknown';
}

/**
 * Reads a refund from Flutterwave: snake_case (`data` of POST refund / GET refunds: id, tx_id,
 * amount_refunded, status, created_at) or the flat PascalCase webhook (id, TransactionId,
 * AmountRefunded, status, createdAt). Amounts are major units of the payment's `currency`.
 */
export function readFlwRefund(data: unknown, currency: string): FlwRefundState | undefined {
  if (!isPlainObject(data)) return undefined;
  const id = numericId(data.id);
  if (!id) return undefined;
  const transactionId = numericId(data.tx_id) ?? numericId(data.TransactionId);
  const amountMinor = parseProviderAmount(data.amount_refunded ?? data.AmountRefunded, currency);
  const created = str(data.created_at) ?? str(data.createdAt);
  const createdAt = created !== undefined ? new Date(created) : undefined;
  const providerStatus = str(data.status);
  return {
    providerRefundId: id,
    ...(transactionId ? { transactionId } : {}),
    status: mapFlutterwaveRefundStatus(data.status),
    ...(providerStatus ? { providerStatus } : {}),
    ...(amountMinor !== undefined ? { amountMinor } : {}),
    ...(createdAt && !Number.isNaN(createdAt.getTime()) ? { createdAt } : {}),
  };
}

/** Flutterwave's answer for an unknown id / tx_ref: "No transaction was found for this id". */
function isNotFoundMessage(message: unknown): boolean {
  return typeof message === 'string' && /no transaction (was )?found/i.test(message);
}

/** Constant-time comparison of two strings of any length: both are hashed to 32 bytes first. */
export function constantTimeEquals(a: string, b: string): boolean {
  const ha = createHash('sha256').update(a, 'utf8').digest();
  const hb = createHash('sha256').update(b, 'utf8').digest();
  return timingSafeEqual(ha, hb);
}

function headerValue(headers: NotificationInput['headers'] | undefined, name: string): string | undefined {
  if (!isPlainObject(headers)) return undefined;
  for (const [k, v] of Object.entries(headers)) {
    if (k.toLowerCase() !== name) continue;
    if (typeof v === 'string') return v;
    if (Array.isArray(v) && v.length === 1 && typeof v[0] === 'string') return v[0];
    return undefined;
  }
  return undefined;
}

/** A v3 transaction id (numeric); v4 ids like "chg_…" cannot be verified through v3. */
function numericId(v: unknown): string | undefined {
  const s =
    typeof v === 'number' && Number.isSafeInteger(v) && v > 0
      ? String(v)
      : typeof v === 'string'
        ? v.trim()
        : undefined;
  return s !== undefined && TRANSACTION_ID_RE.test(s) ? s : undefined;
}

/**
 * Flutterwave v3 adapter: hosted checkout (POST /v3/payments), verification by transaction id
 * or tx_ref, webhook authentication (verif-hash) and refunds. Pure protocol, no state.
 */
export class FlutterwaveProvider implements PaymentProvider {
  readonly name = 'flutterwave' as const;
  readonly capabilities: ProviderCapabilities;
  private readonly logger = new Logger(FlutterwaveProvider.name);
  private readonly http: ProviderHttp;
  private readonly secretKey: string;
  private readonly secretHash: string;
  private readonly paymentOptions?: string;
  private readonly sessionDuration?: number;
  private readonly maxRetryAttempts?: number;
  private readonly checkoutTitle?: string;

  constructor(config: FlutterwaveConfig) {
    if (!config || typeof config.baseUrl !== 'string' || !isHttpUrl(config.baseUrl))
      throw new Error('FlutterwaveProvider: baseUrl must be an http(s) URL');
    if (typeof config.secretKey !== 'string' || config.secretKey.length === 0)
      throw new Error('FlutterwaveProvider: secretKey is required');
    if (!Number.isFinite(config.timeoutMs) || config.timeoutMs <= 0)
      throw new Error('FlutterwaveProvider: timeoutMs must be a positive number');
    if (config.secretHash !== undefined && typeof config.secretHash !== 'string')
      throw new Error('FlutterwaveProvider: secretHash must be a string');
    if (
      config.sessionDurationMinutes !== undefined &&
      (!Number.isInteger(config.sessionDurationMinutes) ||
        config.sessionDurationMinutes < 1 ||
        config.sessionDurationMinutes > 1440)
    ) {
      throw new Error('FlutterwaveProvider: sessionDurationMinutes must be an integer between 1 and 1440');
    }
    if (
      config.maxRetryAttempts !== undefined &&
      (!Number.isInteger(config.maxRetryAttempts) || config.maxRetryAttempts < 1 || config.maxRetryAttempts > 100)
    ) {
      throw new Error('FlutterwaveProvider: maxRetryAttempts must be an integer between 1 and 100');
    }
    this.secretKey = config.secretKey;
    this.secretHash = config.secretHash ?? '';
    this.paymentOptions = config.paymentOptions?.trim() || undefined;
    this.sessionDuration = config.sessionDurationMinutes;
    this.maxRetryAttempts = config.maxRetryAttempts;
    this.checkoutTitle = config.checkoutTitle?.trim() || undefined;
    this.capabilities = Object.freeze({
      currencies: Object.freeze([...(config.currencies?.length ? config.currencies : ['KES'])]),
      fractionalAmounts: config.allowFractionalAmounts === true,
      refunds: 'partial',
      notification: 'webhook',
      hostedCheckout: true,
    });
    // The base URL in the reference includes /v3; our paths carry it themselves.
    const base = trimTrailingSlashes(config.baseUrl).replace(/\/v3$/i, '');
    this.http = new ProviderHttp(
      'flutterwave',
      LABEL,
      base,
      Math.ceil(config.timeoutMs),
      () => [this.secretKey, this.secretHash],
      this.logger,
    );
    if (!this.secretHash) this.logger.warn('No Flutterwave secret hash configured: webhooks will never be verified');
  }

  // ---------------------------------------------------------------------------------------
  // Hosted checkout
  // ---------------------------------------------------------------------------------------

  /** POST /v3/payments. Never retried: tx_ref uniqueness is Flutterwave's only idempotency guard. */
  async initiate(req: InitiateRequest): Promise<InitiateResult> {
    const body = this.buildPaymentRequest(req);
    const res = await this.http.send({
      method: 'POST',
      path: '/v3/payments',
      headers: this.auth(),
      body,
      what: 'payment request',
    });
    const env = isPlainObject(res.json) ? res.json : undefined;
    if (this.isSuccess(res, env)) {
      const link = isPlainObject(env!.data) ? env!.data.link : undefined;
      if (!isHttpUrl(link)) {
        throw new ProviderError(
          'flutterwave',
          'bad_response',
          'Flutterwave accepted the payment request but sent no checkout link; outcome unknown',
          {
            providerHttpStatus: res.status,
          },
        );
      }
      this.logger.log(`Checkout link created: reference=${body.tx_ref}`);
      return { redirectUrl: link, raw: res.json };
    }
    throw this.failure(res, env, 'payment request');
  }

  /** The exact body of POST /v3/payments (exported behaviour for tests and logs-free debugging). */
  buildPaymentRequest(req: InitiateRequest): FlwPaymentRequest {
    if (!isPlainObject(req)) throw new ValidationFailedError('payment request is required');
    requireText(req.paymentId, 'paymentId', 200);
    const txRef = requireReference(req.reference, FLW_TX_REF_MAX_LENGTH);
    const amount = toOutgoingAmount(req.amountMinor, req.currency, {
      supportedCurrencies: this.capabilities.currencies,
      wholeUnitsOnly: !this.capabilities.fractionalAmounts,
      providerLabel: LABEL,
    });
    const redirectUrl = requireUrl(req.redirectUrl, 'redirectUrl');
    const customer = cleanCustomer(req.customer);
    if (!customer.email) {
      throw new ValidationFailedError(
        'Flutterwave needs a customer email address (use a stable walk-in address for anonymous customers)',
        {
          field: 'customer.email',
        },
      );
    }
    const description = typeof req.description === 'string' ? req.description.trim() : '';
    const body: FlwPaymentRequest = {
      tx_ref: txRef,
      amount: amount.number,
      // Flutterwave defaults to NGN when the currency is omitted: always send it.
      currency: req.currency,
      redirect_url: redirectUrl,
      customer: {
        email: customer.email,
        ...(customer.phoneNumber ? { phonenumber: customer.phoneNumber } : {}),
        ...(customer.fullName ? { name: customer.fullName } : {}),
      },
      meta: { payment_id: req.paymentId },
    };
    if (description || this.checkoutTitle) {
      body.customizations = {
        ...(this.checkoutTitle ? { title: this.checkoutTitle } : {}),
        ...(description ? { description } : {}),
      };
    }
    if (this.paymentOptions) body.payment_options = this.paymentOptions;
    if (this.sessionDuration !== undefined) body.session_duration = this.sessionDuration;
    if (this.maxRetryAttempts !== undefined) body.max_retry_attempt = this.maxRetryAttempts;
    return body;
  }

  // ---------------------------------------------------------------------------------------
  // Verification
  // ---------------------------------------------------------------------------------------

  /**
   * GET /v3/transactions/:id/verify when the transaction id is known, else
   * GET /v3/transactions/verify_by_reference?tx_ref=. The reported tx_ref (and id) must be the
   * ones asked about, otherwise a ProviderError 'reference_mismatch' is thrown (a redirect or
   * webhook can name someone else's paid transaction). Amount and currency are reported, not
   * judged: the service compares them with what it stored.
   */
  async fetchStatus(q: { reference: string; providerRef?: string }): Promise<StatusResult> {
    if (!isPlainObject(q)) throw new ValidationFailedError('status query is required');
    const reference = requireText(q.reference, 'reference', FLW_TX_REF_MAX_LENGTH);
    let providerRef: string | undefined;
    if (q.providerRef !== undefined && q.providerRef !== '') {
      providerRef = numericId(q.providerRef);
      if (!providerRef)
        throw new ValidationFailedError('Flutterwave transaction id must be a number', { field: 'providerRef' });
    }
    const path = providerRef
      ? `/v3/transactions/${providerRef}/verify`
      : `/v3/transactions/verify_by_reference?tx_ref=${encodeURIComponent(reference)}`;
    const res = await this.http.send({ method: 'GET', path, headers: this.auth(), what: 'status check' });
    const env = isPlainObject(res.json) ? res.json : undefined;

    if (
      env &&
      env.status === 'error' &&
      isNotFoundMessage(env.message) &&
      (res.status < 300 || res.status === 400 || res.status === 404)
    ) {
      return { status: 'not_found', reference, ...(providerRef ? { providerRef } : {}), raw: res.json };
    }
    if (!this.isSuccess(res, env)) throw this.failure(res, env, 'status check');

    const data = env!.data;
    if (!isPlainObject(data) || typeof data.status !== 'string') {
      throw new ProviderError(
        'flutterwave',
        'bad_response',
        'Flutterwave answered the status check without a transaction status',
        {
          providerHttpStatus: res.status,
        },
      );
    }
    const reportedRef = str(data.tx_ref);
    const reportedId = numericId(data.id);
    if (reportedRef === undefined) {
      throw new ProviderError(
        'flutterwave',
        'bad_response',
        'Flutterwave answered the status check without the transaction reference (tx_ref)',
        {
          providerHttpStatus: res.status,
        },
      );
    }
    if (reportedRef !== reference || (providerRef !== undefined && reportedId !== providerRef)) {
      this.logger.warn(
        `Status check mismatch: asked reference=${reference} id=${providerRef ?? '-'}, got reference=${reportedRef ?? '-'} id=${reportedId ?? '-'}`,
      );
      throw new ProviderError(
        'flutterwave',
        'reference_mismatch',
        'Flutterwave reports a transaction that belongs to a different payment reference; it cannot confirm this payment',
        { providerHttpStatus: res.status },
      );
    }
    const currency = str(data.currency);
    return {
      status: mapFlutterwaveStatus(data.status),
      providerRef: reportedId,
      reference: reportedRef,
      amountMinor: parseProviderAmount(data.amount, currency),
      currency,
      receipt: str(data.flw_ref),
      paymentMethod: str(data.payment_type),
      description: str(data.processor_response),
      raw: res.json,
    };
  }

  // ---------------------------------------------------------------------------------------
  // Webhooks
  // ---------------------------------------------------------------------------------------

  /**
   * Authenticates and reads a webhook. `verified` is true when `verif-hash` equals the
   * configured secret hash (v3), or `flutterwave-signature` equals it or is the base64
   * HMAC-SHA256 of the raw body under it (v4-style); all comparisons are constant-time. The
   * body only says *which* transaction to verify — it handles the enveloped v3 shape, the
   * legacy flat camelCase shape, the flat PascalCase refund shape and the v4 shape.
   */
  parseNotification(input: NotificationInput): Notification {
    const verified = this.verifyWebhook(input?.headers, input?.rawBody);
    let body: unknown = input?.body;
    if (!isPlainObject(body)) {
      const text = typeof body === 'string' ? body : typeof input?.rawBody === 'string' ? input.rawBody : undefined;
      if (text !== undefined) {
        try {
          body = JSON.parse(text);
        } catch {
          body = undefined;
        }
      }
    }
    const raw = body ?? input?.body;
    if (!isPlainObject(body)) return { verified, raw };

    if (isPlainObject(body.data)) {
      // (a) {event, data:{id, tx_ref…}, "event.type"} and (d) v4 {type, data:{id:"chg_…", reference}}.
      const d = body.data;
      return {
        verified,
        reference: str(d.tx_ref) ?? str(d.txRef) ?? str(d.reference),
        providerRef: numericId(d.id),
        eventType: str(body.event) ?? str(body.type) ?? str(body['event.type']),
        raw,
      };
    }
    if ('TransactionId' in body || 'AmountRefunded' in body) {
      // (c) refund: `id` is the refund's, `TransactionId` the original charge.
      return { verified, providerRef: numericId(body.TransactionId), eventType: 'refund', raw };
    }
    // (b) legacy flat: {id, txRef, flwRef, status, "event.type"}.
    return {
      verified,
      reference: str(body.txRef) ?? str(body.tx_ref),
      providerRef: numericId(body.id),
      eventType: str(body['event.type']) ?? str(body.event),
      raw,
    };
  }

  private verifyWebhook(headers: NotificationInput['headers'] | undefined, rawBody: string | undefined): boolean {
    if (!this.secretHash) return false;
    let ok = false;
    const verifHash = headerValue(headers, 'verif-hash');
    if (verifHash !== undefined) ok = constantTimeEquals(verifHash, this.secretHash);
    const signature = headerValue(headers, 'flutterwave-signature');
    if (!ok && signature !== undefined) {
      ok = constantTimeEquals(signature, this.secretHash);
      if (!ok && typeof rawBody === 'string') {
        const hmac = createHmac('sha256', this.secretHash).update(rawBody, 'utf8').digest('base64');
        ok = constantTimeEquals(signature, hmac);
      }
    }
    return ok;
  }

  // ---------------------------------------------------------------------------------------
  // Refunds
  // ---------------------------------------------------------------------------------------

  /**
   * POST /v3/transactions/:id/refund with an explicit amount. "accepted" means Flutterwave took
   * the request (its refund status may still be pending / pending-momo); a refusal by Flutterwave
   * is "rejected" with its message. Auth, 5xx, timeouts and network failures throw.
   */
  async refund(req: RefundRequest): Promise<RefundResult> {
    if (!isPlainObject(req)) throw new ValidationFailedError('refund request is required');
    const id = numericId(req.providerRef);
    if (!id) throw new ValidationFailedError('Flutterwave transaction id must be a number', { field: 'providerRef' });
    const comments = requireText(req.reason, 'reason', 500, 'refund reason').trim();
    const amount = toOutgoingAmount(req.amountMinor, req.currency, {
      supportedCurrencies: this.capabilities.currencies,
      wholeUnitsOnly: !this.capabilities.fractionalAmounts,
      providerLabel: LABEL,
    });
    const body: FlwRefundRequest = { amount: amount.number, comments };
    const res = await this.http.send({
      method: 'POST',
      path: `/v3/transactions/${id}/refund`,
      headers: this.auth(),
      body,
      what: 'refund request',
    });
    const env = isPlainObject(res.json) ? res.json : undefined;
    if (this.isSuccess(res, env)) {
      const data = isPlainObject(env!.data) ? env!.data : undefined;
      if (!data) {
        throw new ProviderError(
          'flutterwave',
          'bad_response',
          'Flutterwave answered the refund request without refund details; outcome unknown',
          {
            providerHttpStatus: res.status,
          },
        );
      }
      const providerRefundRef = str(data.id);
      if (typeof data.status === 'string' && data.status.trim().toLowerCase() === 'failed') {
        return {
          status: 'rejected',
          providerRefundRef,
          message: this.providerMessage(env) ?? 'refund failed',
          raw: res.json,
        };
      }
      this.logger.log(
        `Refund accepted: reference=${req.reference} refundId=${providerRefundRef ?? '-'} status=${str(data.status) ?? '-'}`,
      );
      return { status: 'accepted', providerRefundRef, raw: res.json };
    }
    const refusedByFlutterwave =
      env?.status === 'error' &&
      ((res.status >= 200 && res.status < 300) ||
        (res.status >= 400 && res.status < 500 && ![401, 403, 429].includes(res.status)));
    if (refusedByFlutterwave) {
      return { status: 'rejected', message: this.providerMessage(env) ?? `HTTP ${res.status}`, raw: res.json };
    }
    throw this.failure(res, env, 'refund request');
  }

  /**
   * GET /v3/refunds/:id: where one refund stands. 'not_found' when Flutterwave has no such refund
   * for this account ("No refund was found for this id"). Auth, 5xx, timeouts throw.
   */
  async fetchRefund(refundId: string, currency: string): Promise<FlwRefundState | 'not_found'> {
    const id = numericId(refundId);
    if (!id) throw new ValidationFailedError('Flutterwave refund id must be a number', { field: 'providerRefundId' });
    const res = await this.http.send({
      method: 'GET',
      path: `/v3/refunds/${id}`,
      headers: this.auth(),
      what: 'refund lookup',
    });
    const env = isPlainObject(res.json) ? res.json : undefined;
    if (
      env?.status === 'error' &&
      typeof env.message === 'string' &&
      /no refund (was )?found/i.test(env.message) &&
      (res.status < 300 || res.status === 400 || res.status === 404)
    )
      return 'not_found';
    if (!this.isSuccess(res, env)) throw this.failure(res, env, 'refund lookup');
    const state = readFlwRefund(env!.data, currency);
    if (!state || state.providerRefundId !== id)
      throw new ProviderError(
        'flutterwave',
        'bad_response',
        'Flutterwave answered the refund lookup without that refund',
        {
          providerHttpStatus: res.status,
        },
      );
    return state;
  }

  /**
   * GET /v3/refunds?from=YYYY-MM-DD&page=n (newest first, paged): this account's refunds since
   * `from` (a day, UTC). Used to find a refund whose submission answer was lost.
   */
  async listRefunds(
    q: { from: string; page: number },
    currency: string,
  ): Promise<{ refunds: FlwRefundState[]; totalPages: number }> {
    if (!/^\d{4}-\d{2}-\d{2}$/.test(q.from)) throw new ValidationFailedError('from must be a YYYY-MM-DD day');
    if (!Number.isInteger(q.page) || q.page < 1)
      throw new ValidationFailedError('page must be a positive whole number');
    const res = await this.http.send({
      method: 'GET',
      path: `/v3/refunds?from=${q.from}&page=${q.page}`,
      headers: this.auth(),
      what: 'refund list',
    });
    const env = isPlainObject(res.json) ? res.json : undefined;
    if (!this.isSuccess(res, env) || !Array.isArray(env!.data)) throw this.failure(res, env, 'refund list');
    const refunds = (env!.data as unknown[])
      .map((d) => readFlwRefund(d, currency))
      .filter((r): r is FlwRefundState => r !== undefined);
    const meta = isPlainObject(env!.meta) && isPlainObject(env!.meta.page_info) ? env!.meta.page_info : undefined;
    const totalPages =
      typeof meta?.total_pages === 'number' && Number.isInteger(meta.total_pages) ? meta.total_pages : 1;
    return { refunds, totalPages };
  }

  // ---------------------------------------------------------------------------------------
  // Helpers
  // ---------------------------------------------------------------------------------------

  private auth(): Record<string, string> {
    return { Authorization: `Bearer ${this.secretKey}` };
  }

  private isSuccess(res: HttpAnswer, env: Record<string, unknown> | undefined): boolean {
    return res.status >= 200 && res.status < 300 && env !== undefined && env.status === 'success';
  }

  private providerMessage(env: Record<string, unknown> | undefined): string | undefined {
    const m = env ? str(env.message) : undefined;
    return m ? this.http.redact(m) : undefined;
  }

  /** Maps a non-success answer to a ProviderError (Flutterwave error bodies: {status:"error", message, data:null}). */
  private failure(res: HttpAnswer, env: Record<string, unknown> | undefined, what: string): ProviderError {
    const providerMessage = this.providerMessage(env);
    const info: ProviderErrorInfo = {
      providerHttpStatus: res.status,
      providerMessage,
      retryAfterSeconds: res.retryAfterSeconds,
    };
    const detail = providerMessage ? `: ${providerMessage}` : ` (HTTP ${res.status})`;
    const s = res.status;
    if (s === 401 || s === 403) {
      return new ProviderError(
        'flutterwave',
        'auth',
        `Flutterwave refused our credentials for the ${what}${detail} (check the secret key and test/live mode)`,
        info,
      );
    }
    if (s === 429) {
      return new ProviderError(
        'flutterwave',
        'rate_limited',
        `Flutterwave is limiting requests; the ${what} was not processed, try again shortly`,
        info,
      );
    }
    if (s >= 500) {
      return new ProviderError(
        'flutterwave',
        'unavailable',
        `Flutterwave failed while handling the ${what}${detail}; outcome unknown`,
        info,
      );
    }
    if (s >= 400 || env?.status === 'error') {
      return new ProviderError('flutterwave', 'rejected', `Flutterwave rejected the ${what}${detail}`, info);
    }
    return new ProviderError(
      'flutterwave',
      'bad_response',
      `Unexpected answer from Flutterwave to the ${what} (HTTP ${s}); outcome unknown`,
      info,
    );
  }
}
