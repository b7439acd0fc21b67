import { Logger } from '@nestjs/common';
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
import { HttpAnswer, HttpRequestSpec, isHttpUrl, isPlainObject, ProviderHttp, str } from '../provider-http';
import { cleanCustomer, requireReference, requireText, requireUrl } from '../request-validation';
import type {
  PesapalConfig,
  PesapalIpnAck,
  PesapalIpnType,
  PesapalOrderRequest,
  PesapalRefundRequest,
} from './pesapal.types';

const LABEL = 'Pesapal';

export const PESAPAL_PATHS = {
  token: '/api/Auth/RequestToken',
  registerIpn: '/api/URLSetup/RegisterIPN',
  ipnList: '/api/URLSetup/GetIpnList',
  submitOrder: '/api/Transactions/SubmitOrderRequest',
  status: '/api/Transactions/GetTransactionStatus',
  refund: '/api/Transactions/RefundRequest',
  cancel: '/api/Transactions/CancelOrder',
} as const;

export const PESAPAL_REFERENCE_MAX_LENGTH = 50;
export const PESAPAL_DESCRIPTION_MAX_LENGTH = 100;
/** Pesapal says a token lives at most 5 minutes; never keep one longer than this… */
export const TOKEN_MAX_CACHE_MS = 4 * 60_000;
/** …and stop using it this long before its expiryDate. */
export const TOKEN_EXPIRY_MARGIN_MS = 60_000;

const REFERENCE_RE = /^[A-Za-z0-9_-]+$/;
const TRACKING_ID_RE = /^[A-Za-z0-9-]{1,100}$/;
/** Pesapal's "not paid yet" error on GetTransactionStatus (status_code 0, message "Pending Payment"). */
const PENDING_ERROR_CODE = 'payment_details_not_found';
const AUTH_ERROR_RE =
  /access[_ ]?token|invalid[_ ]?token|token[_ ]?(has[_ ]?)?expired|expired[_ ]?token|unauthori[sz]ed/i;

interface CachedToken {
  value: string;
  /** Date.now() from which the token is no longer handed out. */
  refreshAt: number;
}

export interface PesapalIpn {
  ipnId: string;
  url: string;
  notificationType?: PesapalIpnType;
  /** true when ensureIpn had to register it. */
  created: boolean;
}

interface PesapalErrorInfo {
  type?: string;
  code?: string;
  message?: string;
}

/** The meaningful part of Pesapal's `error` object, or undefined when absent / all null. */
function pesapalError(json: unknown): PesapalErrorInfo | undefined {
  if (!isPlainObject(json) || !isPlainObject(json.error)) return undefined;
  const e = json.error;
  const info: PesapalErrorInfo = { type: str(e.error_type) ?? str(e.type), code: str(e.code), message: str(e.message) };
  return info.type || info.code || info.message ? info : undefined;
}

/** Pesapal's success rule: `status` "200" (when present) and no populated `error` object. */
function bodyOk(json: unknown): json is Record<string, unknown> {
  if (!isPlainObject(json)) return false;
  if (json.status !== undefined && json.status !== null && String(json.status) !== '200') return false;
  return pesapalError(json) === undefined;
}

/** status_code (0..3, number or numeric string), falling back to payment_status_description. */
export function mapPesapalStatus(statusCode: unknown, description: unknown): ProviderPaymentStatus | undefined {
  const code =
    typeof statusCode === 'number'
      ? statusCode
      : typeof statusCode === 'string' && /^\d+$/.test(statusCode.trim())
        ? Number(statusCode)
        : undefined;
  if (code !== undefined) {
    switch (code) {
      case 0:
        return 'pending'; // INVALID: created but not paid (yet); wait until our own expiry
      case 1:
        return 'completed';
      case 2:
        return 'failed';
      case 3:
        return 'reversed';
      default:
        return 'unknown';
    }
  }
  if (typeof description === 'string' && description.trim()) {
    switch (description.trim().toUpperCase()) {
      case 'INVALID':
        return 'pending';
      case 'COMPLETED':
        return 'completed';
      case 'FAILED':
        return 'failed';
      case 'REVERSED':
        return 'reversed';
      default:
        return 'unknown';
    }
  }
  return undefined;
}

function truncateText(s: string, max: number): string {
  if (s.length <= max) return s;
  let out = '';
  for (const ch of s) {
    if (out.length + ch.length > max) break;
    out += ch;
  }
  return out;
}

/** `{a_b: 'x'}`, `{AB: ['x']}` … → lower-case keys without separators, string values only. */
function normaliseFields(source: unknown): Map<string, string> {
  const out = new Map<string, string>();
  if (!isPlainObject(source)) return out;
  for (const [k, v] of Object.entries(source)) {
    const value = typeof v === 'string' ? v : Array.isArray(v) && typeof v[0] === 'string' ? v[0] : undefined;
    if (value === undefined || value.trim() === '') continue;
    const key = k.toLowerCase().replace(/[_\-\s]/g, '');
    if (!out.has(key)) out.set(key, value.trim());
  }
  return out;
}

function parseBodyText(text: string): unknown {
  const t = text.trim();
  if (!t) return undefined;
  if (t.startsWith('{')) {
    try {
      return JSON.parse(t);
    } catch {
      return undefined;
    }
  }
  // application/x-www-form-urlencoded
  return Object.fromEntries(new URLSearchParams(t));
}

/**
 * The JSON an IPN endpoint must answer with (always with HTTP 200): the notification's three
 * identifiers echoed in lower camel case, and `status` 200 when we fetched and stored the
 * payment status, 500 when our processing failed and Pesapal should retry.
 */
export function pesapalIpnAck(
  notification: Pick<Notification, 'reference' | 'providerRef' | 'eventType'>,
  processed: boolean,
): PesapalIpnAck {
  return {
    orderNotificationType: notification.eventType ?? 'IPNCHANGE',
    orderTrackingId: notification.providerRef ?? '',
    orderMerchantReference: notification.reference ?? '',
    status: processed ? 200 : 500,
  };
}

/**
 * Pesapal API 3.0 adapter: bearer token (cached, single-flight), IPN registration, hosted order
 * (SubmitOrderRequest), GetTransactionStatus, RefundRequest, CancelOrder and IPN parsing. Pure
 * protocol, no state beyond the token and IPN-id caches.
 *
 * Pesapal answers HTTP 200 with an `error` object for failures: every answer goes through one
 * body check and becomes a ProviderError unless it is a success (or the documented "Pending
 * Payment" status answer).
 */
export class PesapalProvider implements PaymentProvider {
  readonly name = 'pesapal' as const;
  readonly capabilities: ProviderCapabilities;
  private readonly logger = new Logger(PesapalProvider.name);
  private readonly http: ProviderHttp;
  private readonly consumerKey: string;
  private readonly consumerSecret: string;
  private readonly ipnType: PesapalIpnType;
  private readonly countryCode: string;
  private readonly refundUsername: string;
  private token?: CachedToken;
  private tokenInflight?: Promise<CachedToken>;
  private readonly ipnCache = new Map<string, PesapalIpn>();
  private readonly ipnInflight = new Map<string, Promise<PesapalIpn>>();

  constructor(config: PesapalConfig) {
    if (!config || !isHttpUrl(config.baseUrl)) throw new Error('PesapalProvider: baseUrl must be an http(s) URL');
    if (typeof config.consumerKey !== 'string' || config.consumerKey.length === 0)
      throw new Error('PesapalProvider: consumerKey is required');
    if (typeof config.consumerSecret !== 'string' || config.consumerSecret.length === 0)
      throw new Error('PesapalProvider: consumerSecret is required');
    if (!Number.isFinite(config.timeoutMs) || config.timeoutMs <= 0)
      throw new Error('PesapalProvider: timeoutMs must be a positive number');
    if (
      config.ipnNotificationType !== undefined &&
      config.ipnNotificationType !== 'GET' &&
      config.ipnNotificationType !== 'POST'
    ) {
      throw new Error("PesapalProvider: ipnNotificationType must be 'GET' or 'POST'");
    }
    if (config.countryCode !== undefined && !/^[A-Z]{2}$/.test(config.countryCode))
      throw new Error('PesapalProvider: countryCode must be ISO-3166 alpha-2');
    this.consumerKey = config.consumerKey;
    this.consumerSecret = config.consumerSecret;
    this.ipnType = config.ipnNotificationType ?? 'POST';
    this.countryCode = config.countryCode ?? 'KE';
    this.refundUsername = config.refundUsername?.trim() || 'smartduka-pos';
    this.capabilities = Object.freeze({
      currencies: Object.freeze([...(config.currencies?.length ? config.currencies : ['KES'])]),
      fractionalAmounts: config.allowFractionalAmounts === true,
      refunds: 'partial', // cards partial or full; mobile money full only (Pesapal enforces)
      notification: 'ipn',
      hostedCheckout: true,
    });
    this.http = new ProviderHttp(
      'pesapal',
      LABEL,
      config.baseUrl,
      Math.ceil(config.timeoutMs),
      () => [this.consumerKey, this.consumerSecret, this.token?.value],
      this.logger,
    );
  }

  // ---------------------------------------------------------------------------------------
  // Token
  // ---------------------------------------------------------------------------------------

  /**
   * A bearer token, cached until min(expiryDate − 60 s, issued + 4 min). Concurrent callers
   * share one RequestToken call; a failed fetch is not cached.
   */
  async getAccessToken(): Promise<string> {
    const cached = this.token;
    if (cached && Date.now() < cached.refreshAt) return cached.value;
    if (!this.tokenInflight) {
      const p: Promise<CachedToken> = this.fetchToken()
        .then((t) => {
          this.token = t;
          return t;
        })
        .finally(() => {
          if (this.tokenInflight === p) this.tokenInflight = undefined;
        });
      this.tokenInflight = p;
    }
    return (await this.tokenInflight).value;
  }

  /** Drops the cached token if it is `token` (a newer one fetched meanwhile is kept). */
  private invalidateToken(token: string): void {
    if (this.token?.value === token) this.token = undefined;
  }

  private async fetchToken(): Promise<CachedToken> {
    const issuedAt = Date.now();
    // JSON body only: a Basic Authorization header makes RequestToken fail.
    const res = await this.http.send({
      method: 'POST',
      path: PESAPAL_PATHS.token,
      body: { consumer_key: this.consumerKey, consumer_secret: this.consumerSecret },
      what: 'token request',
      tokenRequest: true,
    });
    const json = isPlainObject(res.json) ? res.json : undefined;
    if (res.status >= 200 && res.status < 300 && bodyOk(json)) {
      const token = str(json.token);
      if (!token)
        throw new ProviderError('pesapal', 'bad_response', 'Pesapal answered the token request without a token', {
          providerHttpStatus: res.status,
        });
      return { value: token, refreshAt: issuedAt + this.usableLifetimeMs(json.expiryDate, issuedAt) };
    }
    if (res.status >= 200 && res.status < 300 && json) {
      // HTTP 200 with an error object / status "500": the credentials were refused.
      const e = pesapalError(json);
      const message = e?.message ?? str(json.message);
      const safe = message ? this.http.redact(message) : undefined;
      throw new ProviderError(
        'pesapal',
        'auth',
        `Pesapal refused the consumer key/secret${safe ? `: ${safe}` : ''} (check the credentials and that they belong to this environment)`,
        { providerHttpStatus: res.status, providerCode: e?.code, providerMessage: safe },
      );
    }
    throw this.failure(res, 'token request', { authOnClientError: true });
  }

  private usableLifetimeMs(expiryDate: unknown, issuedAt: number): number {
    let lifetime: number | undefined;
    if (typeof expiryDate === 'string' && expiryDate.trim()) {
      const s = expiryDate.trim();
      // Pesapal sends UTC with a Z; a zone-less value is read as UTC too, never as local time.
      const ms = Date.parse(/(Z|[+-]\d{2}:?\d{2})$/i.test(s) ? s : `${s}Z`);
      if (Number.isFinite(ms)) lifetime = ms - issuedAt;
    }
    if (lifetime === undefined) {
      this.logger.warn('Pesapal token has no readable expiryDate; caching it for 4 minutes');
      return TOKEN_MAX_CACHE_MS;
    }
    if (lifetime > TOKEN_EXPIRY_MARGIN_MS) return Math.min(lifetime - TOKEN_EXPIRY_MARGIN_MS, TOKEN_MAX_CACHE_MS);
    this.logger.warn(
      `Pesapal token expires ${Math.round(lifetime / 1000)}s after issue (clock skew?); using it for this request only`,
    );
    return 0;
  }

  /**
   * Sends an authorised request. A token rejected by Pesapal is dropped and the call repeated
   * once with a fresh token (Pesapal refuses such calls before processing them). A failure to
   * get a token means the request itself was never sent: its outcome is 'not_processed'.
   */
  private async authorised(spec: Omit<HttpRequestSpec, 'headers'>): Promise<HttpAnswer> {
    let refreshed = false;
    for (;;) {
      let token: string;
      try {
        token = await this.getAccessToken();
      } catch (err) {
        if (err instanceof ProviderError && err.outcome === 'unknown')
          throw err.asNotProcessed(`the ${spec.what} was not sent`);
        throw err;
      }
      const res = await this.http.send({ ...spec, headers: { Authorization: `Bearer ${token}` } });
      if (!this.isAuthFailure(res)) return res;
      this.invalidateToken(token);
      if (refreshed) {
        throw new ProviderError(
          'pesapal',
          'auth',
          `Pesapal rejected a freshly issued access token for the ${spec.what}`,
          this.info(res),
        );
      }
      this.logger.warn(
        `${spec.what}: Pesapal rejected the access token (HTTP ${res.status}); refreshing and retrying once`,
      );
      refreshed = true;
    }
  }

  private isAuthFailure(res: HttpAnswer): boolean {
    if (res.status === 401) return true;
    const e = pesapalError(res.json);
    if (!e) return false;
    return [e.code, e.type, e.message].some((v) => typeof v === 'string' && AUTH_ERROR_RE.test(v));
  }

  // ---------------------------------------------------------------------------------------
  // IPN registration
  // ---------------------------------------------------------------------------------------

  /**
   * The IPN id for `url`: reuses a registration for exactly that URL (preferring one of the
   * same notification type) from GetIpnList, else registers it with RegisterIPN. Cached per URL;
   * concurrent callers share one lookup. Our IPN endpoint must accept both GET and POST, since
   * an existing registration may use the other method.
   */
  async ensureIpn(url: string, type: PesapalIpnType = this.ipnType): Promise<PesapalIpn> {
    requireUrl(url, 'notificationUrl');
    if (type !== 'GET' && type !== 'POST')
      throw new ValidationFailedError("IPN notification type must be 'GET' or 'POST'", { field: 'type' });
    const cached = this.ipnCache.get(url);
    if (cached) return { ...cached, created: false };
    let pending = this.ipnInflight.get(url);
    if (!pending) {
      const p = this.findOrRegisterIpn(url, type)
        .then((ipn) => {
          this.ipnCache.set(url, ipn);
          return ipn;
        })
        .finally(() => {
          if (this.ipnInflight.get(url) === p) this.ipnInflight.delete(url);
        });
      this.ipnInflight.set(url, p);
      pending = p;
    }
    return { ...(await pending) };
  }

  /**
   * Drops the cached IPN id of `url`, so the next ensureIpn asks Pesapal again. For an id Pesapal
   * no longer accepts ("Invalid IPN URL ID provided": the registration was removed, or a restarted
   * simulator forgot it); without this the stale id would be handed out until the process restarts.
   */
  forgetIpn(url: string): void {
    this.ipnCache.delete(url);
  }

  /** GET /api/URLSetup/GetIpnList: a JSON array (empty when none). */
  async listIpns(): Promise<Array<{ ipnId: string; url: string; notificationType?: PesapalIpnType }>> {
    const res = await this.authorised({ method: 'GET', path: PESAPAL_PATHS.ipnList, what: 'IPN list request' });
    if (res.status >= 200 && res.status < 300 && Array.isArray(res.json)) {
      const out: Array<{ ipnId: string; url: string; notificationType?: PesapalIpnType }> = [];
      for (const item of res.json) {
        if (!isPlainObject(item) || pesapalError(item)) continue;
        const ipnId = str(item.ipn_id);
        const itemUrl = str(item.url);
        if (!ipnId || !itemUrl) continue;
        const notificationType = this.ipnTypeOf(item);
        out.push({ ipnId, url: itemUrl, ...(notificationType ? { notificationType } : {}) });
      }
      return out;
    }
    throw this.failure(res, 'IPN list request');
  }

  private async findOrRegisterIpn(url: string, type: PesapalIpnType): Promise<PesapalIpn> {
    const same = (await this.listIpns()).filter((i) => i.url.trim() === url);
    const match = same.find((i) => i.notificationType === type) ?? same[0];
    if (match)
      return {
        ipnId: match.ipnId,
        url,
        ...(match.notificationType ? { notificationType: match.notificationType } : {}),
        created: false,
      };

    const res = await this.authorised({
      method: 'POST',
      path: PESAPAL_PATHS.registerIpn,
      body: { url, ipn_notification_type: type },
      what: 'IPN registration',
    });
    if (res.status >= 200 && res.status < 300 && bodyOk(res.json)) {
      const ipnId = str(res.json.ipn_id);
      if (!ipnId)
        throw new ProviderError(
          'pesapal',
          'bad_response',
          'Pesapal registered the IPN URL but sent no ipn_id',
          this.info(res),
        );
      this.logger.log(`Registered Pesapal IPN ${ipnId} (${type})`);
      return { ipnId, url, notificationType: this.ipnTypeOf(res.json) ?? type, created: true };
    }
    throw this.failure(res, 'IPN registration');
  }

  private ipnTypeOf(item: Record<string, unknown>): PesapalIpnType | undefined {
    const d =
      str(item.ipn_notification_type_description)?.toUpperCase() ?? str(item.ipn_notification_type)?.toUpperCase();
    if (d === 'GET' || d === 'POST') return d;
    if (item.notification_type === 0) return 'GET';
    if (item.notification_type === 1) return 'POST';
    return undefined;
  }

  // ---------------------------------------------------------------------------------------
  // Orders
  // ---------------------------------------------------------------------------------------

  /**
   * POST /api/Transactions/SubmitOrderRequest. Uses `notificationId`, or finds/registers the IPN
   * for `notificationUrl`. Never retried (except once after a rejected token): Pesapal has no
   * idempotency key, so a timeout leaves the order 'unknown' and a retry needs a new reference.
   */
  async initiate(req: InitiateRequest): Promise<InitiateResult> {
    const order = this.validateOrder(req);
    let notificationId = req.notificationId;
    if (notificationId === undefined || notificationId === '') {
      if (!req.notificationUrl) {
        throw new ValidationFailedError(
          'Pesapal needs an IPN: give notificationId (registered IPN id) or notificationUrl',
          { field: 'notificationId' },
        );
      }
      requireUrl(req.notificationUrl, 'notificationUrl');
      try {
        notificationId = (await this.ensureIpn(req.notificationUrl)).ipnId;
      } catch (err) {
        if (err instanceof ProviderError && err.outcome === 'unknown')
          throw err.asNotProcessed('the payment request was not sent');
        throw err;
      }
    }
    const body = this.buildOrderRequest(req, notificationId, order);
    const res = await this.authorised({
      method: 'POST',
      path: PESAPAL_PATHS.submitOrder,
      body,
      what: 'payment request',
    });
    if (res.status >= 200 && res.status < 300 && bodyOk(res.json)) {
      const trackingId = str(res.json.order_tracking_id);
      const redirectUrl = res.json.redirect_url;
      const echoed = str(res.json.merchant_reference);
      if (!trackingId || !isHttpUrl(redirectUrl) || (echoed !== undefined && echoed !== body.id)) {
        throw new ProviderError(
          'pesapal',
          'bad_response',
          'Pesapal accepted the payment request but its answer is incomplete or names another order; outcome unknown',
          this.info(res),
        );
      }
      this.logger.log(`Pesapal order created: reference=${body.id} orderTrackingId=${trackingId}`);
      return { providerRef: trackingId, redirectUrl, raw: res.json };
    }
    throw this.failure(res, 'payment request');
  }

  /** The exact SubmitOrderRequest body (billing address keys always present, empty strings when unknown). */
  buildOrderRequest(
    req: InitiateRequest,
    notificationId: string,
    validated?: Omit<PesapalOrderRequest, 'notification_id'>,
  ): PesapalOrderRequest {
    const order = validated ?? this.validateOrder(req);
    if (typeof notificationId !== 'string' || !TRACKING_ID_RE.test(notificationId)) {
      throw new ValidationFailedError('notificationId must be the IPN id Pesapal returned (a GUID)', {
        field: 'notificationId',
      });
    }
    const { billing_address, ...rest } = order;
    return { ...rest, notification_id: notificationId, billing_address };
  }

  private validateOrder(req: InitiateRequest): Omit<PesapalOrderRequest, 'notification_id'> {
    if (!isPlainObject(req)) throw new ValidationFailedError('payment request is required');
    requireText(req.paymentId, 'paymentId', 200);
    const id = requireReference(
      req.reference,
      PESAPAL_REFERENCE_MAX_LENGTH,
      REFERENCE_RE,
      'letters, digits, "-" and "_"',
    );
    const amount = toOutgoingAmount(req.amountMinor, req.currency, {
      supportedCurrencies: this.capabilities.currencies,
      wholeUnitsOnly: !this.capabilities.fractionalAmounts,
      providerLabel: LABEL,
    });
    const callbackUrl = requireUrl(req.redirectUrl, 'redirectUrl');
    const customer = cleanCustomer(req.customer);
    if (!customer.email && !customer.phoneNumber) {
      throw new ValidationFailedError('Pesapal needs the customer email address or phone number', {
        field: 'customer',
      });
    }
    let firstName = customer.firstName ?? '';
    let lastName = customer.lastName ?? '';
    if (!firstName && !lastName && customer.fullName) {
      const parts = customer.fullName.split(/\s+/);
      firstName = parts[0];
      lastName = parts.slice(1).join(' ');
    }
    const description = truncateText(
      (typeof req.description === 'string' ? req.description.trim() : '') || `Payment ${id}`,
      PESAPAL_DESCRIPTION_MAX_LENGTH,
    );
    return {
      id,
      currency: req.currency,
      amount: amount.number,
      description,
      callback_url: callbackUrl,
      billing_address: {
        email_address: customer.email ?? '',
        phone_number: customer.phoneNumber ?? '',
        country_code: this.countryCode,
        first_name: firstName,
        middle_name: '',
        last_name: lastName,
        line_1: '',
        line_2: '',
        city: '',
        state: '',
        postal_code: '',
        zip_code: '',
      },
    };
  }

  /**
   * GET /api/Transactions/GetTransactionStatus?orderTrackingId=. Pesapal has no lookup by
   * merchant reference, so `providerRef` (the order tracking id) is required. status_code 0
   * ("INVALID", also sent as HTTP 200 + status "500" + error payment_details_not_found
   * "Pending Payment") is 'pending'. A different merchant reference / tracking id in the answer
   * throws 'reference_mismatch'; amount and currency are reported for the service to compare.
   */
  async fetchStatus(q: { reference: string; providerRef?: string }): Promise<StatusResult> {
    if (!isPlainObject(q)) throw new ValidationFailedError('status query is required');
    const reference = requireText(q.reference, 'reference', PESAPAL_REFERENCE_MAX_LENGTH);
    if (q.providerRef === undefined || q.providerRef === '') {
      throw new ProviderError(
        'pesapal',
        'reference_required',
        'Pesapal can only report on a payment once its order tracking id is known; wait for Pesapal to notify us about this payment',
      );
    }
    const trackingId = q.providerRef;
    if (typeof trackingId !== 'string' || !TRACKING_ID_RE.test(trackingId)) {
      throw new ValidationFailedError('Pesapal order tracking id is not valid', { field: 'providerRef' });
    }
    const res = await this.authorised({
      method: 'GET',
      path: `${PESAPAL_PATHS.status}?orderTrackingId=${encodeURIComponent(trackingId)}`,
      what: 'status check',
    });
    const json = isPlainObject(res.json) ? res.json : undefined;
    const err = pesapalError(json);
    const pendingQuirk = err?.code === PENDING_ERROR_CODE;
    if (!(res.status >= 200 && res.status < 300 && json && (bodyOk(json) || pendingQuirk))) {
      throw this.failure(res, 'status check');
    }
    const status = mapPesapalStatus(json.status_code, json.payment_status_description);
    if (status === undefined || (pendingQuirk && status !== 'pending')) {
      throw new ProviderError(
        'pesapal',
        'bad_response',
        'Pesapal answered the status check without a usable payment status',
        this.info(res),
      );
    }
    const reportedRef = str(json.merchant_reference);
    const reportedTracking = str(json.order_tracking_id);
    if (
      (reportedRef !== undefined && reportedRef !== reference) ||
      (reportedTracking !== undefined && reportedTracking !== trackingId)
    ) {
      this.logger.warn(
        `Status check mismatch: asked reference=${reference} orderTrackingId=${trackingId}, got reference=${reportedRef ?? '-'} orderTrackingId=${reportedTracking ?? '-'}`,
      );
      throw new ProviderError(
        'pesapal',
        'reference_mismatch',
        'Pesapal reports an order that belongs to a different payment reference; it cannot confirm this payment',
        this.info(res),
      );
    }
    const currency = str(json.currency);
    const description = str(json.description) ?? str(json.payment_status_description);
    return {
      status,
      providerRef: reportedTracking ?? trackingId,
      reference: reportedRef,
      amountMinor: parseProviderAmount(json.amount, currency),
      currency,
      receipt: str(json.confirmation_code),
      paymentMethod: str(json.payment_method),
      description,
      raw: res.json,
    };
  }

  /**
   * POST /api/Transactions/CancelOrder: stops a pending order from being paid later (only
   * pending/failed orders, only once). Returns false when Pesapal refuses (e.g. already paid).
   */
  async cancelOrder(orderTrackingId: string): Promise<{ cancelled: boolean; message?: string; raw: unknown }> {
    if (typeof orderTrackingId !== 'string' || !TRACKING_ID_RE.test(orderTrackingId)) {
      throw new ValidationFailedError('Pesapal order tracking id is not valid', { field: 'orderTrackingId' });
    }
    const res = await this.authorised({
      method: 'POST',
      path: PESAPAL_PATHS.cancel,
      body: { order_tracking_id: orderTrackingId },
      what: 'order cancellation',
    });
    const json = isPlainObject(res.json) ? res.json : undefined;
    if (res.status >= 200 && res.status < 300 && json && json.status !== undefined) {
      const message = str(json.message) ?? pesapalError(json)?.message;
      return { cancelled: bodyOk(json), ...(message ? { message: this.http.redact(message) } : {}), raw: res.json };
    }
    throw this.failure(res, 'order cancellation');
  }

  // ---------------------------------------------------------------------------------------
  // Refunds
  // ---------------------------------------------------------------------------------------

  /**
   * POST /api/Transactions/RefundRequest. Needs the payment's confirmation_code: `receipt`, or
   * read from GetTransactionStatus. "accepted" only means Pesapal queued it for its finance
   * team; the reversal later shows as status 'reversed'. Pesapal allows one refund per payment,
   * in full for mobile money.
   */
  async refund(req: RefundRequest): Promise<RefundResult> {
    if (!isPlainObject(req)) throw new ValidationFailedError('refund request is required');
    const remarks = requireText(req.reason, 'reason', 500, 'refund reason').trim();
    const username = requireText(req.initiatedBy ?? this.refundUsername, 'initiatedBy', 100);
    const amount = toOutgoingAmount(req.amountMinor, req.currency, {
      supportedCurrencies: this.capabilities.currencies,
      wholeUnitsOnly: !this.capabilities.fractionalAmounts,
      providerLabel: LABEL,
    });
    let confirmationCode = typeof req.receipt === 'string' && req.receipt.trim() ? req.receipt.trim() : undefined;
    if (!confirmationCode) {
      let status: StatusResult;
      try {
        status = await this.fetchStatus({ reference: req.reference, providerRef: req.providerRef });
      } catch (err) {
        if (err instanceof ProviderError && err.outcome === 'unknown')
          throw err.asNotProcessed('the refund request was not sent');
        throw err;
      }
      if (status.status !== 'completed' || !status.receipt) {
        return {
          status: 'rejected',
          message: `Pesapal only refunds completed payments; this payment is ${status.status}${status.receipt ? '' : ' and has no confirmation code'}`,
          raw: status.raw,
        };
      }
      confirmationCode = status.receipt;
    }
    const body: PesapalRefundRequest = { confirmation_code: confirmationCode, amount: amount.text, username, remarks };
    const res = await this.authorised({ method: 'POST', path: PESAPAL_PATHS.refund, body, what: 'refund request' });
    const json = isPlainObject(res.json) ? res.json : undefined;
    if (res.status >= 200 && res.status < 300 && json) {
      // Documented as `error` (integer 200/500); the sample and real clients use `status` ("200"/"500").
      const outcome =
        json.status ?? (typeof json.error === 'number' || typeof json.error === 'string' ? json.error : undefined);
      const message = str(json.message) ?? pesapalError(json)?.message;
      const safeMessage = message ? this.http.redact(message) : undefined;
      if (outcome !== undefined && String(outcome) === '200' && pesapalError(json) === undefined) {
        this.logger.log(`Pesapal refund request accepted: reference=${req.reference}`);
        return { status: 'accepted', raw: res.json };
      }
      if (outcome !== undefined || pesapalError(json)) {
        return { status: 'rejected', message: safeMessage ?? 'refund rejected', raw: res.json };
      }
    }
    throw this.failure(res, 'refund request');
  }

  // ---------------------------------------------------------------------------------------
  // IPN
  // ---------------------------------------------------------------------------------------

  /**
   * Reads an IPN (GET query or POST JSON / form body; PascalCase, camelCase or snake_case keys)
   * or a callback redirect. Pesapal does not sign IPNs: `verified` is always false and the only
   * safe use is to fetch the status for the tracking id.
   */
  parseNotification(input: NotificationInput): Notification {
    let body: unknown = input?.body;
    if (!isPlainObject(body)) {
      const text = typeof body === 'string' ? body : typeof input?.rawBody === 'string' ? input.rawBody : undefined;
      body = text !== undefined ? parseBodyText(text) : undefined;
    }
    const fromBody = normaliseFields(body);
    const fromQuery = normaliseFields(input?.query);
    const pick = (key: string) => fromBody.get(key) ?? fromQuery.get(key);
    const providerRef = pick('ordertrackingid');
    const reference = pick('ordermerchantreference');
    const eventType = pick('ordernotificationtype');
    return {
      verified: false,
      ...(reference ? { reference } : {}),
      ...(providerRef ? { providerRef } : {}),
      ...(eventType ? { eventType } : {}),
      raw: { query: input?.query ?? {}, body: body ?? input?.body ?? null },
    };
  }

  // ---------------------------------------------------------------------------------------
  // Errors
  // ---------------------------------------------------------------------------------------

  private info(res: HttpAnswer): ProviderErrorInfo {
    const e = pesapalError(res.json);
    const message = e?.message ?? (isPlainObject(res.json) ? str(res.json.message) : undefined);
    return {
      providerHttpStatus: res.status,
      providerCode: e?.code,
      providerMessage: message ? this.http.redact(message) : undefined,
      retryAfterSeconds: res.retryAfterSeconds,
    };
  }

  /** Any answer that is not a success: HTTP errors, Cloudflare HTML pages, 200 + error object. */
  private failure(res: HttpAnswer, what: string, opts: { authOnClientError?: boolean } = {}): ProviderError {
    const info = this.info(res);
    const detail = info.providerMessage ? `: ${info.providerMessage}` : ` (HTTP ${res.status})`;
    const s = res.status;
    const isJson = res.json !== undefined;
    if (
      s === 401 ||
      (s === 403 && isJson) ||
      (opts.authOnClientError && s >= 400 && s < 500 && s !== 429 && s !== 403)
    ) {
      return new ProviderError('pesapal', 'auth', `Pesapal refused our credentials for the ${what}${detail}`, info);
    }
    if (s === 403) {
      // Cloudflare in front of Pesapal blocks some requests with an HTML page: never reached Pesapal.
      return new ProviderError(
        'pesapal',
        'unreachable',
        `Pesapal's firewall blocked the ${what} (HTTP 403); it was not processed, try again shortly`,
        info,
      );
    }
    if (s === 429) {
      return new ProviderError(
        'pesapal',
        'rate_limited',
        `Pesapal is limiting requests; the ${what} was not processed, try again shortly`,
        info,
      );
    }
    if (s >= 500) {
      return new ProviderError(
        'pesapal',
        'unavailable',
        `Pesapal failed while handling the ${what}${detail}; outcome unknown`,
        info,
      );
    }
    if (
      s >= 400 ||
      (s >= 200 && s < 300 && pesapalError(res.json)) ||
      (s < 300 && isPlainObject(res.json) && res.json.status !== undefined && String(res.json.status) !== '200')
    ) {
      return new ProviderError('pesapal', 'rejected', `Pesapal rejected the ${what}${detail}`, info);
    }
    return new ProviderError(
      'pesapal',
      'bad_response',
      `Unexpected answer from Pesapal to the ${what} (HTTP ${s}); outcome unknown`,
      info,
    );
  }
}
