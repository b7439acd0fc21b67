import { Inject, Injectable, Logger } from '@nestjs/common';
import type { AxiosInstance } from 'axios';
import { AppError, ValidationFailedError } from '../../../common/errors';
import { isPlainObject } from '../../../common/json';
import { maskCheckoutRequestId, maskPhone } from '../../../common/mask';
import { FORBIDDEN_CALLBACK_WORDS } from '../../../config/app-config';
import { ProviderError, ProviderErrorInfo } from '../provider-errors';
import { HttpRequestSpec, ProviderEnvelope, ProviderHttp, trimTrailingSlashes } from '../provider-http';
import { parseStkCallback } from './callback-parser';
import { callbackToken, CallbackScope, scopedCallbackToken, verifyCallbackToken } from './callback-token';
import type {
  AsyncAccepted,
  CallbackValidation,
  DarajaAccount,
  ReversalRequest,
  StkPushRequest,
  StkPushResult,
  StkQueryResult,
  TransactionStatusRequest,
} from './daraja.types';
import { certificatePublicKey, securityCredential } from './security-credential';
import type { KeyObject } from 'node:crypto';
import { nairobiTimestamp } from './nairobi-time';
import { stkPassword } from './password';
import { formatPhoneNumber as formatPhone, isDarajaMsisdn } from './phone';
import { mapResultCode, normaliseResultCode } from './result-codes';
import { isUsableToken, MemoryTokenStore, StoredToken, TokenStore, tokenStoreKey } from './token-store';

export const DARAJA_OPTIONS = Symbol('DARAJA_OPTIONS');

export interface DarajaServiceOptions {
  defaultAccount: DarajaAccount;
  /** Per HTTP call, e.g. 15000. */
  timeoutMs: number;
  /** Refresh the OAuth token this many seconds early, e.g. 300 (never below 0; if expires_in <= margin, half of expires_in is used). */
  tokenRefreshMarginSeconds: number;
  /** e.g. https://pay.example.com/payments/callback (no trailing slash needed). */
  callbackBaseUrl: string;
  callbackSigningSecret: string;
  /** Spike-arrest / quota retries for STK query. Default {retries: 2, baseDelayMs: 500, maxDelayMs: 5000}, jittered. */
  queryRetry?: { retries: number; baseDelayMs: number; maxDelayMs: number };
  /**
   * Optional axios instance (tests). Per-request options (timeout, validateStatus, text body...) are
   * always set by the service; keepAliveMs is then ignored.
   */
  httpClient?: AxiosInstance;
  /** Keep a connection to Daraja open this long for the next call (ProviderHttp); default 0 = a new connection per call. */
  keepAliveMs?: number;
  /**
   * Where OAuth tokens are shared beyond this process's cache (e.g. PgTokenStore: one token per
   * Daraja app for all API instances, refreshed under a lock). Default: a process-local store.
   */
  tokenStore?: TokenStore;
  /**
   * Safaricom's certificate (PEM) for the environment of the accounts' base URLs: encrypts the
   * SecurityCredential of reversals and Transaction Status queries. Without it those calls are refused.
   */
  securityCertificatePem?: string;
}

/** Daraja's per-transaction limits for M-Pesa Express (whole shillings). */
export const STK_MIN_AMOUNT = 1;
export const STK_MAX_AMOUNT = 250_000;
export const ACCOUNT_REFERENCE_MAX_LENGTH = 12;
export const TRANSACTION_DESC_MAX_LENGTH = 13;

const OAUTH_PATH = '/oauth/v1/generate?grant_type=client_credentials';
const STK_PUSH_PATH = '/mpesa/stkpush/v1/processrequest';
const STK_QUERY_PATH = '/mpesa/stkpushquery/v1/query';
export const REVERSAL_PATH = '/mpesa/reversal/v1/request';
export const TRANSACTION_STATUS_PATH = '/mpesa/transactionstatus/v1/query';
/** Where each scoped capability URL lives under the callback base (no word Daraja refuses: not "mpesa", not "query"). */
const SCOPED_PATHS: Record<Exclude<CallbackScope, 'c2b-confirmation' | 'c2b-validation'>, [string, string]> = {
  'refund-result': ['refunds', 'result'],
  'refund-timeout': ['refunds', 'timeout'],
  'refund-status': ['refunds', 'status'],
  'payment-status': ['payments', 'status'],
};

/** "Invalid Access Token" in its per-product-family spellings. */
const TOKEN_INVALID_CODES = new Set(['404.001.03', '400.003.01', '401.002.01']);
/** Spike arrest / system busy, quota violation. */
const RATE_LIMIT_CODES = new Set(['500.003.02', '500.003.03']);

const DEFAULT_QUERY_RETRY = { retries: 2, baseDelayMs: 500, maxDelayMs: 5000 };
const DEFAULT_EXPIRES_IN_SECONDS = 3599;
const MPESA = 'mpesa' as const;

type Json = Record<string, unknown>;

interface CachedToken {
  token: string;
  /** Date.now() after which the token is no longer handed out. */
  refreshAt: number;
}

/** A Daraja answer: its JSON object body (if any) and its error envelope (message redacted). */
interface HttpResult {
  status: number;
  json: Json | undefined;
  envelope: ProviderEnvelope;
  retryAfterSeconds?: number;
}

type SendSpec = Omit<HttpRequestSpec, 'baseUrl'>;

function str(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  return undefined;
}

function lower(v: string | undefined): string {
  return (v ?? '').toLowerCase();
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Daraja's error envelope `{requestId, errorCode, errorMessage}` (daraja.md §2.3), or the API
 * gateway's `{fault: {faultstring, detail: {errorcode}}}`.
 */
function darajaEnvelope(json: unknown): ProviderEnvelope {
  if (!isPlainObject(json)) return {};
  const envelope: ProviderEnvelope = {
    code: str(json.errorCode),
    message: str(json.errorMessage),
    requestId: str(json.requestId),
  };
  const fault = json.fault;
  if (isPlainObject(fault)) {
    envelope.message ??= str(fault.faultstring);
    envelope.code ??= isPlainObject(fault.detail) ? str(fault.detail.errorcode) : undefined;
  }
  return envelope;
}

/** Daraja's specifics for a ProviderError: its errorCode, errorMessage, requestId and HTTP status. */
function envelopeInfo(res: HttpResult): ProviderErrorInfo {
  return {
    providerCode: res.envelope.code,
    providerMessage: res.envelope.message,
    providerRequestId: res.envelope.requestId,
    providerHttpStatus: res.status,
  };
}

function describe(res: HttpResult): string {
  const parts = [res.envelope.code, res.envelope.message].filter(Boolean);
  return parts.length ? parts.join(' ') : `HTTP ${res.status}`;
}

function isTokenInvalid(res: HttpResult): boolean {
  const code = res.envelope.code;
  const msg = lower(res.envelope.message);
  if (code && TOKEN_INVALID_CODES.has(code)) return true;
  if (msg.includes('invalid access token')) return true;
  // 401.003.01 "no apiproduct match found" is an app/product configuration problem, not an expired token.
  return res.status === 401 && !msg.includes('apiproduct');
}

function isRateLimited(res: HttpResult): boolean {
  const code = res.envelope.code;
  const msg = lower(res.envelope.message);
  return (
    res.status === 429 ||
    (code !== undefined && RATE_LIMIT_CODES.has(code)) ||
    msg.includes('spike arrest') ||
    msg.includes('spikearrest') ||
    msg.includes('quota violation') ||
    msg.includes('quotaviolation')
  );
}

/** Log-safe one-line description of an unexpected (non-Daraja) error. */
function describeError(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  const name = err instanceof Error ? err.name : 'error';
  return typeof code === 'string' ? `${name} ${code}` : name;
}

/**
 * Pure Daraja (Safaricom M-Pesa) HTTP client: OAuth token cache, STK push, STK query,
 * callback URL signing and callback parsing. No database, no payment state. Sends through
 * ProviderHttp like every provider (timeouts, no keep-alive, network failures classified).
 *
 * Error contract: every failed call is a ProviderError('mpesa', kind, ...) whose `outcome` says
 * whether Safaricom could have acted on the request ('unknown' ⇒ never blind-retry an STK push),
 * carrying Daraja's errorCode (providerCode), errorMessage (providerMessage), requestId
 * (providerRequestId) and HTTP status (providerHttpStatus).
 */
@Injectable()
export class DarajaService {
  private readonly logger = new Logger(DarajaService.name);
  private readonly http: ProviderHttp;
  private readonly defaultAccount: DarajaAccount;
  private readonly timeoutMs: number;
  private readonly marginSeconds: number;
  private readonly callbackBaseUrl: string;
  private readonly callbackSecret: string;
  private readonly queryRetry: { retries: number; baseDelayMs: number; maxDelayMs: number };
  private readonly tokens = new Map<string, CachedToken>();
  private readonly inflight = new Map<string, Promise<CachedToken>>();
  /** Per cache key: the token last seen rejected by Daraja, never to be re-used from the store. */
  private readonly rejected = new Map<string, string>();
  private readonly tokenStore: TokenStore;
  private readonly certificateKey?: KeyObject;

  constructor(@Inject(DARAJA_OPTIONS) options: DarajaServiceOptions) {
    if (!options || !isPlainObject(options.defaultAccount))
      throw new Error('DarajaService: defaultAccount is required');
    if (!Number.isFinite(options.timeoutMs) || options.timeoutMs <= 0) {
      throw new Error('DarajaService: timeoutMs must be a positive number');
    }
    if (typeof options.callbackBaseUrl !== 'string' || !/^https?:\/\/\S+$/i.test(options.callbackBaseUrl)) {
      throw new Error('DarajaService: callbackBaseUrl must be an http(s) URL');
    }
    if (typeof options.callbackSigningSecret !== 'string' || options.callbackSigningSecret.length === 0) {
      throw new Error('DarajaService: callbackSigningSecret is required');
    }
    this.defaultAccount = options.defaultAccount;
    this.timeoutMs = Math.ceil(options.timeoutMs);
    const margin = Number(options.tokenRefreshMarginSeconds);
    this.marginSeconds = Number.isFinite(margin) && margin > 0 ? margin : 0;
    this.callbackBaseUrl = trimTrailingSlashes(options.callbackBaseUrl);
    this.callbackSecret = options.callbackSigningSecret;
    const qr = options.queryRetry ?? DEFAULT_QUERY_RETRY;
    const retries = Number.isFinite(qr.retries)
      ? Math.min(Math.max(0, Math.floor(qr.retries)), 10)
      : DEFAULT_QUERY_RETRY.retries;
    const baseDelayMs = Number.isFinite(qr.baseDelayMs) ? Math.max(0, qr.baseDelayMs) : DEFAULT_QUERY_RETRY.baseDelayMs;
    const maxDelayMs = Number.isFinite(qr.maxDelayMs)
      ? Math.max(baseDelayMs, qr.maxDelayMs)
      : DEFAULT_QUERY_RETRY.maxDelayMs;
    this.queryRetry = { retries, baseDelayMs, maxDelayMs };
    this.tokenStore = options.tokenStore ?? new MemoryTokenStore();
    if (options.securityCertificatePem) this.certificateKey = certificatePublicKey(options.securityCertificatePem);
    // Each call names its account's base URL (send); the account's credentials and the token sent
    // are scrubbed from Daraja's texts per call, the callback secret always.
    this.http = new ProviderHttp(MPESA, 'M-Pesa', '', this.timeoutMs, () => [this.callbackSecret], this.logger, {
      // Keep-alive saves a TLS handshake per call. A kept socket that Safaricom closed while idle
      // fails with ECONNRESET after we wrote: a push is then outcome 'unknown' (settled by STK
      // query, never pushed again); a token request or STK query is asked again (readOnly).
      client: options.httpClient,
      keepAliveMs: options.keepAliveMs,
      envelope: darajaEnvelope,
      // Every non-2xx Daraja answer is worth a warning (a rejected token, a refused push, spike arrest).
      warnFromStatus: 300,
    });

    if (options.callbackSigningSecret.length < 32) {
      this.logger.warn('callbackSigningSecret is shorter than 32 characters; use a long random secret');
    }
    const base = lower(this.callbackBaseUrl);
    const banned = FORBIDDEN_CALLBACK_WORDS.filter((w) => base.includes(w));
    if (banned.length) {
      this.logger.warn(`callbackBaseUrl contains words Safaricom rejects in callback URLs: ${banned.join(', ')}`);
    }
    if (/^https?:\/\/[^/]*[A-Z]/.test(this.callbackBaseUrl)) {
      this.logger.warn('callbackBaseUrl host has uppercase letters; Daraja has been seen rejecting such URLs');
    }
  }

  // ---------------------------------------------------------------------------------------
  // OAuth
  // ---------------------------------------------------------------------------------------

  /**
   * A valid access token for `account`, cached per (baseUrl, consumerKey) until
   * `expires_in - margin`. Lookup order: in-process cache → token store (shared by all
   * instances when a PgTokenStore is configured) → OAuth under the store's per-account lock.
   * Concurrent callers in this process share one in-flight lookup; a failed fetch is not cached.
   */
  async getAccessToken(account: DarajaAccount = this.defaultAccount): Promise<string> {
    const key = this.cacheKey(account);
    const cached = this.tokens.get(key);
    if (cached && Date.now() < cached.refreshAt) return cached.token;

    let pending = this.inflight.get(key);
    if (!pending) {
      const p: Promise<CachedToken> = this.loadToken(account, key)
        .then((t) => {
          this.tokens.set(key, t);
          return t;
        })
        .finally(() => {
          if (this.inflight.get(key) === p) this.inflight.delete(key);
        });
      this.inflight.set(key, p);
      pending = p;
    }
    return (await pending).token;
  }

  /**
   * Checks `account`'s consumer key and secret with a real OAuth call, whatever token is cached
   * or stored for that key (a token got with another secret proves nothing about this one). The
   * new token becomes the stored, shared one: Daraja may invalidate the previous token of a key
   * when it issues a new one (daraja.md §1.3), so it must not be thrown away. Throws the
   * ProviderError of a refused or failed OAuth call.
   */
  async verifyCredentials(account: DarajaAccount): Promise<void> {
    const key = this.cacheKey(account);
    const storeKey = this.storeKey(account);
    let fresh: StoredToken | undefined;
    const fetchFresh = async (): Promise<StoredToken> => {
      const t = await this.fetchToken(account);
      fresh = { token: t.token, expiresAt: t.refreshAt };
      return fresh;
    };
    try {
      const current = await this.tokenStore.get(storeKey);
      const stored = await this.tokenStore.refreshUnderLock(storeKey, fetchFresh, { rejectToken: current?.token });
      if (fresh) this.tokens.set(key, { token: stored.token, refreshAt: stored.expiresAt });
    } catch (err) {
      if (err instanceof ProviderError) throw err;
      this.logger.warn(`M-Pesa token store failed during a credentials check (${describeError(err)})`);
    }
    // Another caller refreshed under the lock first (or the store failed): ask OAuth ourselves.
    if (!fresh) await fetchFresh();
  }

  /**
   * Drops the cached token of `account`. With `token`, only when the cached token is that
   * one, so a fresh token fetched meanwhile by another caller is not thrown away. The dropped
   * token is also removed from the token store (if it is still the stored one) and is never
   * re-used from the store by this process, even if another instance has not yet noticed.
   */
  invalidateToken(account: DarajaAccount = this.defaultAccount, token?: string): void {
    const key = this.cacheKey(account);
    const cached = this.tokens.get(key);
    if (cached && token !== undefined && cached.token !== token) return;
    const dropped = token ?? cached?.token;
    if (cached) this.tokens.delete(key);
    if (dropped === undefined) return;
    this.rejected.set(key, dropped);
    this.tokenStore.invalidate(this.storeKey(account), dropped).catch((err: unknown) => {
      this.logger.warn(`Could not drop the rejected M-Pesa token from the token store (${describeError(err)})`);
    });
  }

  /** Per (base URL, consumer key, consumer secret): see tokenStoreKey. */
  private cacheKey(account: DarajaAccount): string {
    return this.storeKey(account);
  }

  /** Token store key: base URL + sha256(consumer key, consumer secret); never the key or secret. */
  private storeKey(account: DarajaAccount): string {
    return tokenStoreKey(trimTrailingSlashes(account.baseUrl), account.consumerKey, account.consumerSecret);
  }

  /** Token store → (under the store's lock) OAuth. Called single-flight per cache key. */
  private async loadToken(account: DarajaAccount, key: string): Promise<CachedToken> {
    const storeKey = this.storeKey(account);
    const rejectToken = this.rejected.get(key);
    let fetched: StoredToken | undefined;
    const fetchFresh = async (): Promise<StoredToken> => {
      const t = await this.fetchToken(account);
      fetched = { token: t.token, expiresAt: t.refreshAt };
      return fetched;
    };

    let result: StoredToken;
    try {
      const stored = await this.tokenStore.get(storeKey);
      result = isUsableToken(stored, rejectToken)
        ? stored
        : await this.tokenStore.refreshUnderLock(storeKey, fetchFresh, { rejectToken });
    } catch (err) {
      if (err instanceof ProviderError) throw err;
      // The store itself failed (e.g. database unavailable): keep payments working with a
      // process-local token rather than failing every call. Never log the token.
      this.logger.warn(`M-Pesa token store failed (${describeError(err)}); using a process-local token`);
      result = fetched ?? (await fetchFresh());
    }
    if (this.rejected.get(key) === rejectToken && result.token !== rejectToken) this.rejected.delete(key);
    return { token: result.token, refreshAt: result.expiresAt };
  }

  private async fetchToken(account: DarajaAccount): Promise<CachedToken> {
    if (!account.consumerKey || !account.consumerSecret) {
      throw new ProviderError(MPESA, 'auth', 'M-Pesa consumer key/secret are not configured');
    }
    const issuedAt = Date.now();
    const basic = Buffer.from(`${account.consumerKey}:${account.consumerSecret}`, 'utf8').toString('base64');
    const res = await this.send(account, {
      method: 'GET',
      path: OAUTH_PATH,
      headers: { Authorization: `Basic ${basic}` },
      what: 'access token request',
      secrets: [basic],
      tokenRequest: true,
      readOnly: true,
    });

    if (res.status >= 200 && res.status < 300) {
      const token = res.json?.access_token;
      if (typeof token !== 'string' || token.length === 0) {
        throw new ProviderError(
          MPESA,
          'unavailable',
          'M-Pesa OAuth answered without an access_token',
          envelopeInfo(res),
        );
      }
      let expiresIn = Number(res.json?.expires_in);
      if (
        res.json?.expires_in === undefined ||
        res.json?.expires_in === null ||
        res.json?.expires_in === '' ||
        !Number.isFinite(expiresIn)
      ) {
        this.logger.warn(`OAuth response has no usable expires_in; assuming ${DEFAULT_EXPIRES_IN_SECONDS}s`);
        expiresIn = DEFAULT_EXPIRES_IN_SECONDS;
      }
      const lifetime = Math.max(0, expiresIn);
      const usable = lifetime > this.marginSeconds ? lifetime - this.marginSeconds : lifetime / 2;
      return { token, refreshAt: issuedAt + usable * 1000 };
    }

    const info = envelopeInfo(res);
    if (isRateLimited(res)) {
      throw new ProviderError(MPESA, 'rate_limited', `M-Pesa OAuth is rate limiting requests (${describe(res)})`, {
        ...info,
        retryAfterSeconds: res.retryAfterSeconds,
      });
    }
    if (res.status >= 500) {
      throw new ProviderError(MPESA, 'unavailable', `M-Pesa OAuth is unavailable (${describe(res)})`, info);
    }
    if (res.status === 400 && !res.envelope.code) {
      throw new ProviderError(
        MPESA,
        'auth',
        'M-Pesa rejected the consumer key/secret (HTTP 400 from OAuth): check the credentials and that they belong to this environment',
        info,
      );
    }
    throw new ProviderError(MPESA, 'auth', `M-Pesa OAuth rejected the request (${describe(res)})`, info);
  }

  // ---------------------------------------------------------------------------------------
  // STK push
  // ---------------------------------------------------------------------------------------

  /**
   * Sends an M-Pesa Express (STK push) request. Not idempotent on Safaricom's side, so it is
   * never retried automatically — except once after a token-invalid answer, which Daraja
   * gives before processing anything.
   */
  async initiateStkPush(request: StkPushRequest, account: DarajaAccount = this.defaultAccount): Promise<StkPushResult> {
    this.validatePushRequest(request);
    this.assertAccount(account);

    const timestamp = nairobiTimestamp();
    const isTill = account.transactionType === 'till';
    const body = {
      BusinessShortCode: account.shortcode,
      Password: stkPassword(account.shortcode, account.passkey, timestamp),
      Timestamp: timestamp,
      TransactionType: isTill ? 'CustomerBuyGoodsOnline' : 'CustomerPayBillOnline',
      Amount: request.amount,
      PartyA: request.phoneNumber,
      PartyB: isTill ? (account.tillNumber as string) : account.shortcode,
      PhoneNumber: request.phoneNumber,
      CallBackURL: request.callbackUrl,
      AccountReference: request.accountReference,
      TransactionDesc: request.transactionDesc,
    };
    const logContext = `phone=${maskPhone(request.phoneNumber)} amount=${request.amount} type=${account.transactionType} shortcode=${account.shortcode}`;

    const send = (token: string) =>
      this.send(account, {
        method: 'POST',
        path: STK_PUSH_PATH,
        headers: { Authorization: `Bearer ${token}` },
        body,
        what: 'STK push',
        logContext,
        secrets: [token, body.Password],
      });

    let token = await this.tokenForPush(account);
    let res = await send(token);
    if (isTokenInvalid(res)) {
      this.logger.warn(`STK push: access token rejected (${describe(res)}); refreshing and retrying once`);
      this.invalidateToken(account, token);
      token = await this.tokenForPush(account);
      res = await send(token);
      if (isTokenInvalid(res)) {
        this.invalidateToken(account, token);
        throw new ProviderError(
          MPESA,
          'auth',
          `M-Pesa rejected a freshly issued access token (${describe(res)})`,
          envelopeInfo(res),
        );
      }
    }

    if (res.status >= 200 && res.status < 300) {
      const json = res.json;
      if (!json) {
        throw new ProviderError(
          MPESA,
          'unavailable',
          'M-Pesa answered the STK push with an unreadable body; outcome unknown',
          envelopeInfo(res),
        );
      }
      const responseCode = str(json.ResponseCode);
      const rawDescription = str(json.ResponseDescription);
      const responseDescription = rawDescription
        ? this.http.redact(rawDescription, this.secretsOf(account, [token, body.Password]))
        : '';
      if (responseCode === undefined) {
        throw new ProviderError(
          MPESA,
          'unavailable',
          'M-Pesa answered the STK push without a ResponseCode; outcome unknown',
          envelopeInfo(res),
        );
      }
      if (normaliseResultCode(responseCode) !== '0') {
        throw new ProviderError(
          MPESA,
          'rejected',
          `M-Pesa did not accept the STK push: ${responseDescription || responseCode}`,
          {
            providerCode: responseCode,
            providerMessage: responseDescription || undefined,
            providerRequestId: str(json.MerchantRequestID),
            providerHttpStatus: res.status,
          },
        );
      }
      const checkoutRequestId = str(json.CheckoutRequestID);
      const merchantRequestId = str(json.MerchantRequestID);
      if (!checkoutRequestId || !merchantRequestId) {
        throw new ProviderError(
          MPESA,
          'unavailable',
          'M-Pesa accepted the STK push but sent no CheckoutRequestID; outcome unknown',
          envelopeInfo(res),
        );
      }
      // Its last 9 digits are the payer's national number: logged masked (maskCheckoutRequestId).
      this.logger.log(`STK push accepted: checkoutRequestId=${maskCheckoutRequestId(checkoutRequestId)} ${logContext}`);
      return {
        merchantRequestId,
        checkoutRequestId,
        responseCode,
        responseDescription: rawDescription ?? '',
        customerMessage: str(json.CustomerMessage) ?? '',
        timestamp,
      };
    }
    throw this.mapProductError('STK push', res);
  }

  /**
   * Token for a push: a failure here means the push was never sent, so its outcome is
   * 'not_processed'; one whose own outcome is unknown (OAuth timed out or failed) becomes
   * 'unreachable' (503, try again later): M-Pesa could not be reached for the push.
   */
  private async tokenForPush(account: DarajaAccount): Promise<string> {
    try {
      return await this.getAccessToken(account);
    } catch (err) {
      if (err instanceof ProviderError && err.outcome === 'unknown') {
        throw new ProviderError(
          MPESA,
          'unreachable',
          `Could not obtain an M-Pesa access token (${err.message}); the STK push was not sent`,
          {
            providerCode: err.providerCode,
            providerMessage: err.providerMessage,
            providerRequestId: err.providerRequestId,
            providerHttpStatus: err.providerHttpStatus,
          },
        );
      }
      throw err;
    }
  }

  private validatePushRequest(request: StkPushRequest): void {
    if (!isPlainObject(request)) throw new ValidationFailedError('STK push request is required');
    const { amount, phoneNumber, accountReference, transactionDesc, callbackUrl } = request;
    if (typeof amount !== 'number' || !Number.isInteger(amount) || amount < STK_MIN_AMOUNT || amount > STK_MAX_AMOUNT) {
      throw new ValidationFailedError(
        `amount must be a whole number of shillings between ${STK_MIN_AMOUNT} and ${STK_MAX_AMOUNT}`,
        {
          field: 'amount',
        },
      );
    }
    if (!isDarajaMsisdn(phoneNumber)) {
      throw new ValidationFailedError(
        'phoneNumber must be normalised to 2547XXXXXXXX or 2541XXXXXXXX (use formatPhoneNumber)',
        {
          field: 'phoneNumber',
          received: maskPhone(phoneNumber),
        },
      );
    }
    if (
      typeof accountReference !== 'string' ||
      accountReference.length < 1 ||
      accountReference.length > ACCOUNT_REFERENCE_MAX_LENGTH
    ) {
      throw new ValidationFailedError(`accountReference must be 1-${ACCOUNT_REFERENCE_MAX_LENGTH} characters`, {
        field: 'accountReference',
      });
    }
    if (
      typeof transactionDesc !== 'string' ||
      transactionDesc.length < 1 ||
      transactionDesc.length > TRANSACTION_DESC_MAX_LENGTH
    ) {
      throw new ValidationFailedError(`transactionDesc must be 1-${TRANSACTION_DESC_MAX_LENGTH} characters`, {
        field: 'transactionDesc',
      });
    }
    if (typeof callbackUrl !== 'string' || callbackUrl.length > 1024 || !/^https?:\/\/\S+$/i.test(callbackUrl)) {
      throw new ValidationFailedError('callbackUrl must be an http(s) URL without spaces', { field: 'callbackUrl' });
    }
  }

  private assertAccount(account: DarajaAccount): void {
    const problems: string[] = [];
    if (!isPlainObject(account)) throw new AppError('DARAJA_MISCONFIGURED', 'M-Pesa account is not configured', 500);
    if (typeof account.baseUrl !== 'string' || !/^https?:\/\/\S+$/i.test(account.baseUrl)) problems.push('baseUrl');
    if (typeof account.shortcode !== 'string' || !/^\d{1,10}$/.test(account.shortcode)) problems.push('shortcode');
    if (typeof account.passkey !== 'string' || account.passkey.length === 0) problems.push('passkey');
    if (account.transactionType !== 'paybill' && account.transactionType !== 'till') problems.push('transactionType');
    if (
      account.transactionType === 'till' &&
      (typeof account.tillNumber !== 'string' || !/^\d{1,10}$/.test(account.tillNumber))
    ) {
      problems.push('tillNumber');
    }
    if (problems.length) {
      throw new AppError(
        'DARAJA_MISCONFIGURED',
        `M-Pesa account "${String(account.id)}" is misconfigured: ${problems.join(', ')}`,
        500,
        {
          fields: problems,
        },
      );
    }
  }

  // ---------------------------------------------------------------------------------------
  // STK query
  // ---------------------------------------------------------------------------------------

  /**
   * STK query. "being processed" (HTTP 500 500.001.1001) → pending; "does not exist" →
   * not_found; HTTP 200 → final. Spike arrest / quota are retried with jittered exponential
   * backoff; a token-invalid answer triggers one refresh + retry (queries are safe to repeat).
   */
  async queryStkStatus(
    checkoutRequestId: string,
    account: DarajaAccount = this.defaultAccount,
  ): Promise<StkQueryResult> {
    if (
      typeof checkoutRequestId !== 'string' ||
      checkoutRequestId.trim().length === 0 ||
      checkoutRequestId.length > 200
    ) {
      throw new ValidationFailedError('checkoutRequestId must be a non-empty string', { field: 'checkoutRequestId' });
    }
    this.assertAccount(account);

    let rateLimitedRetries = 0;
    let tokenRefreshed = false;
    for (;;) {
      const token = await this.getAccessToken(account);
      const timestamp = nairobiTimestamp();
      const body = {
        BusinessShortCode: account.shortcode,
        Password: stkPassword(account.shortcode, account.passkey, timestamp),
        Timestamp: timestamp,
        CheckoutRequestID: checkoutRequestId,
      };
      const res = await this.send(account, {
        method: 'POST',
        path: STK_QUERY_PATH,
        headers: { Authorization: `Bearer ${token}` },
        body,
        what: 'STK query',
        readOnly: true,
        logContext: `checkoutRequestId=${maskCheckoutRequestId(checkoutRequestId)}`,
        secrets: [token, body.Password],
      });

      if (isTokenInvalid(res)) {
        this.invalidateToken(account, token);
        if (tokenRefreshed) {
          throw new ProviderError(
            MPESA,
            'auth',
            `M-Pesa rejected a freshly issued access token (${describe(res)})`,
            envelopeInfo(res),
          );
        }
        this.logger.warn(`STK query: access token rejected (${describe(res)}); refreshing and retrying once`);
        tokenRefreshed = true;
        continue;
      }

      try {
        return this.interpretQuery(res, this.secretsOf(account, [token, body.Password]));
      } catch (err) {
        if (
          err instanceof ProviderError &&
          err.kind === 'rate_limited' &&
          rateLimitedRetries < this.queryRetry.retries
        ) {
          const delay = this.backoffDelay(rateLimitedRetries);
          rateLimitedRetries += 1;
          this.logger.warn(
            `STK query rate limited (${describe(res)}); retry ${rateLimitedRetries}/${this.queryRetry.retries} in ${delay}ms`,
          );
          await sleep(delay);
          continue;
        }
        throw err;
      }
    }
  }

  private interpretQuery(res: HttpResult, secrets: ReadonlyArray<string | undefined>): StkQueryResult {
    const json = res.json;
    if (res.status >= 200 && res.status < 300) {
      if (!json)
        throw new ProviderError(
          MPESA,
          'unavailable',
          'M-Pesa answered the STK query with an unreadable body',
          envelopeInfo(res),
        );
      const rawResultCode = str(json.ResultCode);
      const resultDesc = str(json.ResultDesc) ?? '';
      if (rawResultCode === undefined || rawResultCode.trim() === '') {
        const responseCode = str(json.ResponseCode);
        if (responseCode !== undefined && normaliseResultCode(responseCode) !== '0') {
          const rawDescription = str(json.ResponseDescription);
          const description = rawDescription === undefined ? undefined : this.http.redact(rawDescription, secrets);
          throw new ProviderError(
            MPESA,
            'rejected',
            `M-Pesa did not accept the STK query: ${description ?? responseCode}`,
            {
              providerCode: responseCode,
              providerMessage: description,
              providerHttpStatus: res.status,
            },
          );
        }
        throw new ProviderError(
          MPESA,
          'unavailable',
          'M-Pesa answered the STK query without a ResultCode',
          envelopeInfo(res),
        );
      }
      const resultCode = normaliseResultCode(rawResultCode);
      // Defensive: a 200 that says "still processing" must not become a failure.
      const d = lower(resultDesc);
      if (resultCode === '4999' || d.includes('being processed') || d.includes('under processing')) {
        return { kind: 'pending', errorCode: resultCode, errorMessage: resultDesc };
      }
      return {
        kind: 'final',
        outcome: mapResultCode(resultCode),
        resultCode,
        resultDesc,
        merchantRequestId: str(json.MerchantRequestID) ?? '',
        checkoutRequestId: str(json.CheckoutRequestID) ?? '',
      };
    }

    const msg = lower(res.envelope.message);
    const errorCode = res.envelope.code ?? '';
    const errorMessage = res.envelope.message ?? '';
    if (!isRateLimited(res)) {
      if (msg.includes('being processed') || msg.includes('under processing')) {
        return { kind: 'pending', errorCode, errorMessage };
      }
      if (msg.includes('does not exist') && !msg.includes('merchant')) {
        return { kind: 'not_found', errorCode, errorMessage };
      }
    }
    throw this.mapProductError('STK query', res);
  }

  private backoffDelay(attempt: number): number {
    const { baseDelayMs, maxDelayMs } = this.queryRetry;
    const ceiling = Math.min(maxDelayMs, baseDelayMs * 2 ** attempt);
    // "Equal jitter": at least half the exponential delay, plus a random share of the rest.
    return Math.round(ceiling / 2 + Math.random() * (ceiling / 2));
  }

  // ---------------------------------------------------------------------------------------
  // Result API: Reversal, Transaction Status (daraja.md §6)
  // ---------------------------------------------------------------------------------------

  /** Whether reversals / Transaction Status can be sent at all (a certificate is configured). */
  get canEncryptCredentials(): boolean {
    return this.certificateKey !== undefined;
  }

  /**
   * Sends a Reversal of a payment (`TransactionReversal`, receiver identifier type "11", the
   * account's shortcode as ReceiverParty). Not idempotent: never retried here, except once after a
   * token-invalid answer (given before anything is processed). Accepted means only that: the
   * outcome comes to `resultUrl` / `queueTimeOutUrl`.
   */
  async sendReversal(request: ReversalRequest, account: DarajaAccount = this.defaultAccount): Promise<AsyncAccepted> {
    const amount = request?.amount;
    if (typeof amount !== 'number' || !Number.isSafeInteger(amount) || amount < 1)
      throw new ValidationFailedError('amount must be a whole number of shillings, at least 1', { field: 'amount' });
    if (typeof request.transactionId !== 'string' || !/^[A-Z0-9]{6,20}$/i.test(request.transactionId))
      throw new ValidationFailedError('transactionId must be an M-Pesa receipt', { field: 'transactionId' });
    return this.sendResultRequest('reversal', REVERSAL_PATH, account, request, (initiator, credential) => ({
      Initiator: initiator,
      SecurityCredential: credential,
      CommandID: 'TransactionReversal',
      TransactionID: request.transactionId,
      Amount: String(amount),
      ReceiverParty: account.shortcode,
      // sic: Daraja's own spelling (daraja.md §6)
      RecieverIdentifierType: '11',
      ResultURL: request.resultUrl,
      QueueTimeOutURL: request.queueTimeOutUrl,
      Remarks: request.remarks,
      Occasion: '',
    }));
  }

  /**
   * Asks where a transaction stands (`TransactionStatusQuery`, PartyA = the account's shortcode,
   * IdentifierType "4"), by receipt or by the OriginatorConversationID of our own request. Safe to
   * repeat; the answer comes to `resultUrl`.
   */
  async queryTransactionStatus(
    request: TransactionStatusRequest,
    account: DarajaAccount = this.defaultAccount,
  ): Promise<AsyncAccepted> {
    if (!request?.transactionId && !request?.originalConversationId)
      throw new ValidationFailedError('A Transaction Status query needs a receipt or an OriginalConversationID');
    return this.sendResultRequest('transaction status query', TRANSACTION_STATUS_PATH, account, request, (i, c) => {
      const body: Record<string, string> = {
        Initiator: i,
        SecurityCredential: c,
        CommandID: 'TransactionStatusQuery',
        PartyA: account.shortcode,
        IdentifierType: '4',
        ResultURL: request.resultUrl,
        QueueTimeOutURL: request.queueTimeOutUrl,
        Remarks: request.remarks,
        Occasion: '',
      };
      if (request.transactionId) body.TransactionID = request.transactionId;
      if (request.originalConversationId) body.OriginalConversationID = request.originalConversationId;
      return body;
    });
  }

  /**
   * C2B registerurl (daraja.md §7.1, daraja-more.md §3) for the account's `shortcode`: safe to
   * repeat on the sandbox; in production Safaricom keeps the first registration (the caller
   * refuses a second one unless forced). Accepted = a ResponseCode of zeros ("0", "00000000").
   * The URLs carry capability tokens: never logged.
   */
  async registerC2bUrls(
    account: DarajaAccount,
    request: {
      shortcode: string;
      responseType: 'Completed' | 'Cancelled';
      confirmationUrl: string;
      validationUrl: string;
      version: 'v1' | 'v2';
    },
  ): Promise<{ originatorConversationId: string | null; responseCode: string; responseDescription: string }> {
    this.assertAccount(account);
    const what = 'C2B URL registration';
    const body = {
      ShortCode: request.shortcode,
      ResponseType: request.responseType,
      ConfirmationURL: request.confirmationUrl,
      ValidationURL: request.validationUrl,
    };
    const secrets = [request.confirmationUrl, request.validationUrl];
    for (let attempt = 0; ; attempt++) {
      const token = await this.tokenForResultRequest(account, what);
      const res = await this.send(account, {
        method: 'POST',
        path: `/mpesa/c2b/${request.version}/registerurl`,
        headers: { Authorization: `Bearer ${token}` },
        body,
        what,
        logContext: `shortcode=${request.shortcode} version=${request.version}`,
        secrets: [token, ...secrets],
      });
      if (isTokenInvalid(res)) {
        this.invalidateToken(account, token);
        if (attempt === 0) continue;
        throw new ProviderError(
          MPESA,
          'auth',
          `M-Pesa rejected a freshly issued access token (${describe(res)})`,
          envelopeInfo(res),
        );
      }
      if (res.status < 200 || res.status >= 300) throw this.mapProductError(what, res);
      const responseCode = str(res.json?.ResponseCode);
      const raw = str(res.json?.ResponseDescription) ?? '';
      const responseDescription = this.http.redact(raw, this.secretsOf(account, [token, ...secrets]));
      if (responseCode === undefined || !/^0+$/.test(responseCode))
        throw new ProviderError(
          MPESA,
          'rejected',
          `M-Pesa did not register the C2B URLs: ${responseDescription || responseCode || 'no ResponseCode'}`,
          {
            providerCode: responseCode,
            providerMessage: responseDescription || undefined,
            providerHttpStatus: res.status,
          },
        );
      this.logger.log(`${what} accepted: shortcode=${request.shortcode}`);
      // sic: Daraja's own spelling "OriginatorCoversationID" (daraja.md §7.1); the other spelling too.
      const originator = str(res.json?.OriginatorCoversationID) ?? str(res.json?.OriginatorConversationID) ?? null;
      return { originatorConversationId: originator, responseCode, responseDescription };
    }
  }

  /** `${callbackBaseUrl}/refunds/<id>/result/<token>` and its kin: a capability URL only for `scope` and `id`. */
  scopedCallbackUrl(scope: keyof typeof SCOPED_PATHS, id: string): string {
    if (typeof id !== 'string' || id.length === 0)
      throw new ValidationFailedError('id is required to build a result URL');
    const [what, kind] = SCOPED_PATHS[scope];
    return `${this.callbackBaseUrl}/${what}/${encodeURIComponent(id)}/${kind}/${scopedCallbackToken(this.callbackSecret, scope, id)}`;
  }

  private async sendResultRequest(
    what: string,
    path: string,
    account: DarajaAccount,
    request: { remarks: string; resultUrl: string; queueTimeOutUrl: string },
    build: (initiator: string, credential: string) => Record<string, string>,
  ): Promise<AsyncAccepted> {
    this.assertAccount(account);
    if (typeof request.remarks !== 'string' || request.remarks.length < 2 || request.remarks.length > 100)
      throw new ValidationFailedError('remarks must be 2 to 100 characters', { field: 'remarks' });
    for (const [field, url] of [
      ['resultUrl', request.resultUrl],
      ['queueTimeOutUrl', request.queueTimeOutUrl],
    ] as const) {
      if (typeof url !== 'string' || url.length > 1024 || !/^https?:\/\/\S+$/i.test(url))
        throw new ValidationFailedError(`${field} must be an http(s) URL without spaces`, { field });
    }
    if (!account.initiatorName || !account.initiatorPassword)
      throw new ProviderError(MPESA, 'auth', `The M-Pesa account has no initiator: the ${what} was not sent`);
    if (!this.certificateKey)
      throw new ProviderError(
        MPESA,
        'auth',
        `No M-Pesa certificate is configured for this environment (MPESA_CERT_FILE): the ${what} was not sent`,
      );
    const credential = securityCredential(account.initiatorPassword, this.certificateKey);
    const body = build(account.initiatorName, credential);
    const secrets = [credential, account.initiatorPassword];
    const logContext = `shortcode=${account.shortcode}`;
    let refreshed = false;
    for (;;) {
      const token = await this.tokenForResultRequest(account, what);
      const res = await this.send(account, {
        method: 'POST',
        path,
        headers: { Authorization: `Bearer ${token}` },
        body,
        what,
        logContext,
        secrets: [token, ...secrets],
      });
      if (isTokenInvalid(res)) {
        this.invalidateToken(account, token);
        if (refreshed)
          throw new ProviderError(
            MPESA,
            'auth',
            `M-Pesa rejected a freshly issued access token (${describe(res)})`,
            envelopeInfo(res),
          );
        this.logger.warn(`${what}: access token rejected (${describe(res)}); refreshing and retrying once`);
        refreshed = true;
        continue;
      }
      return this.interpretAsyncAnswer(what, res, this.secretsOf(account, [token, ...secrets]));
    }
  }

  /** A token for a Result API call: failing to get one means nothing was sent (not_processed). */
  private async tokenForResultRequest(account: DarajaAccount, what: string): Promise<string> {
    try {
      return await this.getAccessToken(account);
    } catch (err) {
      if (err instanceof ProviderError && err.outcome === 'unknown')
        throw new ProviderError(
          MPESA,
          'unreachable',
          `Could not obtain an M-Pesa access token (${err.message}); the ${what} was not sent`,
          {
            providerCode: err.providerCode,
            providerMessage: err.providerMessage,
            providerRequestId: err.providerRequestId,
            providerHttpStatus: err.providerHttpStatus,
          },
        );
      throw err;
    }
  }

  private interpretAsyncAnswer(
    what: string,
    res: HttpResult,
    secrets: ReadonlyArray<string | undefined>,
  ): AsyncAccepted {
    if (res.status >= 200 && res.status < 300) {
      const json = res.json;
      const responseCode = str(json?.ResponseCode);
      const rawDescription = str(json?.ResponseDescription);
      const description = rawDescription === undefined ? '' : this.http.redact(rawDescription, secrets);
      if (!json || responseCode === undefined)
        throw new ProviderError(
          MPESA,
          'bad_response',
          `M-Pesa answered the ${what} without a ResponseCode; outcome unknown`,
          envelopeInfo(res),
        );
      if (normaliseResultCode(responseCode) !== '0')
        throw new ProviderError(
          MPESA,
          'rejected',
          `M-Pesa did not accept the ${what}: ${description || responseCode}`,
          {
            providerCode: responseCode,
            providerMessage: description || undefined,
            providerHttpStatus: res.status,
          },
        );
      const conversationId = str(json.ConversationID);
      const originatorConversationId = str(json.OriginatorConversationID);
      if (!conversationId || !originatorConversationId)
        throw new ProviderError(
          MPESA,
          'bad_response',
          `M-Pesa accepted the ${what} without its ConversationID; outcome unknown`,
          envelopeInfo(res),
        );
      this.logger.log(`${what} accepted: conversationId=${conversationId}`);
      return { conversationId, originatorConversationId, responseCode, responseDescription: description };
    }
    const msg = lower(res.envelope.message);
    // 400.002.02 is Daraja's generic "Bad Request - Invalid <field>": only the SecurityCredential one is about the initiator.
    if (msg.includes('invalid securitycredential') || msg.includes('invalid security credential'))
      return this.throwInvalidCredential(what, res);
    throw this.mapProductError(what, res);
  }

  private throwInvalidCredential(what: string, res: HttpResult): never {
    throw new ProviderError(
      MPESA,
      'rejected',
      `M-Pesa could not read the initiator's SecurityCredential (${describe(res)}): check the initiator password on the shop's M-Pesa account, and that the M-Pesa certificate is the one for this environment; the ${what} was not processed`,
      envelopeInfo(res),
    );
  }

  // ---------------------------------------------------------------------------------------
  // Synchronous products (Dynamic QR, Pull Transactions: dynamic-qr.ts, pull-transactions.ts)
  // ---------------------------------------------------------------------------------------

  /**
   * One authorised POST of a synchronous Daraja product whose request and answer are built and read
   * by the caller (a pure module per product). The token is refreshed and the call repeated once
   * after a token-invalid answer (given before anything is processed). Returns a 2xx answer's JSON
   * object (undefined when the body is not one); any other answer is the ProviderError of
   * mapProductError, with Daraja's texts scrubbed of the account's credentials and the token.
   */
  async postProduct(
    account: DarajaAccount,
    request: {
      path: string;
      body: Record<string, unknown>;
      what: string;
      logContext?: string;
      secrets?: string[];
      /** Only asks (Pull Transactions query, a QR image): see HttpRequestSpec.readOnly. */
      readOnly?: boolean;
    },
  ): Promise<{ status: number; json: Json | undefined }> {
    let refreshed = false;
    for (;;) {
      const token = await this.tokenForResultRequest(account, request.what);
      const res = await this.send(account, {
        method: 'POST',
        path: request.path,
        headers: { Authorization: `Bearer ${token}` },
        body: request.body,
        what: request.what,
        readOnly: request.readOnly,
        logContext: request.logContext ?? `shortcode=${account.shortcode}`,
        secrets: [token, ...(request.secrets ?? [])],
      });
      if (isTokenInvalid(res)) {
        this.invalidateToken(account, token);
        if (refreshed)
          throw new ProviderError(
            MPESA,
            'auth',
            `M-Pesa rejected a freshly issued access token (${describe(res)})`,
            envelopeInfo(res),
          );
        this.logger.warn(`${request.what}: access token rejected (${describe(res)}); refreshing and retrying once`);
        refreshed = true;
        continue;
      }
      if (res.status >= 200 && res.status < 300) return { status: res.status, json: res.json };
      throw this.mapProductError(request.what, res);
    }
  }

  /** Daraja's text without the account's credentials (and `extra`): safe for an error message. */
  redactText(text: string, account: DarajaAccount, extra: ReadonlyArray<string | undefined> = []): string {
    return this.http.redact(text, this.secretsOf(account, extra));
  }

  // ---------------------------------------------------------------------------------------
  // Callbacks
  // ---------------------------------------------------------------------------------------

  /** `${callbackBaseUrl}/${paymentId}/${token}` — the per-payment capability URL given to Daraja. */
  callbackUrlFor(paymentId: string): string {
    if (typeof paymentId !== 'string' || paymentId.length === 0) {
      throw new ValidationFailedError('paymentId is required to build a callback URL');
    }
    return `${this.callbackBaseUrl}/${encodeURIComponent(paymentId)}/${callbackToken(this.callbackSecret, paymentId)}`;
  }

  /**
   * Parses an STK callback body (throws CallbackShapeError on a bad shape) and checks the
   * capability token from the URL. `verified` is false when either is missing or wrong.
   */
  validateCallback(input: { paymentId?: string; token?: string; body: unknown }): CallbackValidation {
    const callback = parseStkCallback(input?.body);
    const verified =
      typeof input.paymentId === 'string' &&
      input.paymentId.length > 0 &&
      typeof input.token === 'string' &&
      input.token.length > 0 &&
      verifyCallbackToken(this.callbackSecret, input.paymentId, input.token);
    return { verified, callback };
  }

  /** See phone.ts: normalises to 2547XXXXXXXX / 2541XXXXXXXX or throws InvalidPhoneNumberError. */
  formatPhoneNumber(input: unknown): string {
    return formatPhone(input);
  }

  // ---------------------------------------------------------------------------------------
  // HTTP
  // ---------------------------------------------------------------------------------------

  private mapProductError(what: string, res: HttpResult): ProviderError {
    const info = envelopeInfo(res);
    const msg = lower(res.envelope.message);
    const detail = describe(res);
    if (isRateLimited(res)) {
      return new ProviderError(
        MPESA,
        'rate_limited',
        `M-Pesa is rate limiting requests (${detail}); ${what} was not processed`,
        {
          ...info,
          retryAfterSeconds: res.retryAfterSeconds,
        },
      );
    }
    if (msg.includes('unable to lock subscriber')) {
      return new ProviderError(
        MPESA,
        'customer_busy',
        'The customer already has an M-Pesa prompt open; wait about a minute before trying again',
        info,
      );
    }
    if (msg.includes('wrong credentials')) {
      return new ProviderError(
        MPESA,
        'rejected',
        `M-Pesa rejected the ${what}: wrong credentials (shortcode/passkey/timestamp mismatch) (${detail})`,
        info,
      );
    }
    if (msg.includes('merchant does not exist')) {
      return new ProviderError(
        MPESA,
        'rejected',
        `M-Pesa rejected the ${what}: merchant does not exist (shortcode/environment) (${detail})`,
        info,
      );
    }
    if (res.status === 401 || res.status === 403) {
      // e.g. 401.003.01 "no apiproduct match found": the Daraja app lacks this product.
      return new ProviderError(MPESA, 'auth', `M-Pesa refused the credentials for the ${what} (${detail})`, info);
    }
    if (res.status >= 500) {
      return new ProviderError(
        MPESA,
        'unavailable',
        `M-Pesa failed while handling the ${what} (${detail}); outcome unknown`,
        info,
      );
    }
    if (res.status >= 200 && res.status < 300) {
      return new ProviderError(MPESA, 'unavailable', `Unexpected M-Pesa response to the ${what} (${detail})`, info);
    }
    return new ProviderError(MPESA, 'rejected', `M-Pesa rejected the ${what} (${detail})`, info);
  }

  /** The account's credentials and the call's own secrets: what must never come back in a Daraja text. */
  private secretsOf(account: DarajaAccount, extra: ReadonlyArray<string | undefined> = []): Array<string | undefined> {
    return [account.consumerKey, account.consumerSecret, account.passkey, ...extra];
  }

  /**
   * One HTTP exchange through ProviderHttp, to the account's base URL. Never throws on HTTP
   * status; throws a ProviderError only when no response was received (refused / DNS / TLS:
   * 'unreachable', not processed; no answer in time: 'timeout'; reset after sending: 'unavailable';
   * both outcome unknown). Daraja's errorMessage comes back without the account's credentials or
   * the token sent. Logs endpoint, status, duration, errorCode and errorMessage (phones masked) —
   * never headers or bodies (they carry credentials, passwords, tokens and phone numbers).
   */
  private async send(account: DarajaAccount, spec: SendSpec): Promise<HttpResult> {
    const answer = await this.http.send({
      ...spec,
      baseUrl: account.baseUrl,
      secrets: this.secretsOf(account, spec.secrets),
    });
    return {
      status: answer.status,
      json: isPlainObject(answer.json) ? answer.json : undefined,
      envelope: answer.envelope,
      retryAfterSeconds: answer.retryAfterSeconds,
    };
  }
}
