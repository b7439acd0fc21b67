/** Public types of the Pesapal API 3.0 simulator. Wire formats follow /work/shared/reference/pesapal.md. */
import type { NotificationDelivery, NotificationFaults, RetryPolicy } from '../shared/notifier';

/** Endpoint groups, used for stats, latency and canned errors. `ipn` = RegisterIPN + GetIpnList. */
export type PesapalEndpoint = 'token' | 'ipn' | 'submit' | 'status' | 'refund' | 'cancel' | 'checkout';
export const PESAPAL_ENDPOINTS: readonly PesapalEndpoint[] = Object.freeze([
  'token',
  'ipn',
  'submit',
  'status',
  'refund',
  'cancel',
  'checkout',
]);

/** What the customer does on the payment page (or a test makes them do with complete()). */
export type PesapalOutcome = 'completed' | 'failed' | 'pending' | 'cancelled';
export type PesapalPaymentMethod = 'Visa' | 'MasterCard' | 'Mpesa' | 'AirtelMoney';
export const PESAPAL_PAYMENT_METHODS: readonly PesapalPaymentMethod[] = Object.freeze([
  'Visa',
  'MasterCard',
  'Mpesa',
  'AirtelMoney',
]);
export type PesapalIpnType = 'GET' | 'POST';
/** `status_code`: 0 INVALID (also "not paid yet"), 1 COMPLETED, 2 FAILED, 3 REVERSED. */
export type PesapalStatusCode = 0 | 1 | 2 | 3;
export type PesapalOrderState = 'pending' | 'completed' | 'failed' | 'reversed' | 'cancelled';

export interface PesapalSettings {
  /** Retries while the IPN receiver does not acknowledge (Pesapal retries; count/interval unpublished). */
  ipnRetry: RetryPolicy;
  /** `payment_status_description` casing: 'mixed' = "Completed"/"Failed"/"Reversed"/"INVALID" (official sample), 'upper' = all caps. */
  statusDescriptionStyle: 'mixed' | 'upper';
  /** RequestToken fails when the client also sends an Authorization header (the trap a 2025 audit found). */
  rejectAuthorizationHeaderOnToken: boolean;
}

export interface PesapalSimulatorOptions {
  /** default 0 (random); CLI default 4030 (env PESAPAL_SIM_PORT) */
  port?: number;
  /** default '127.0.0.1' */
  host?: string;
  /** Base URL put into redirect_url, when browsers reach the simulator under another address. Default: the listen URL. */
  publicUrl?: string;
  /** default 'smartduka-pesapal-sim-key' */
  consumerKey?: string;
  /** default 'smartduka-pesapal-sim-secret' */
  consumerSecret?: string;
  /** default 300 (the docs' 5 minutes) */
  tokenTtlSeconds?: number;
  /** Currencies enabled on the merchant account. default ['KES'] */
  currencies?: string[];
  /** default {attempts: 3, intervalMs: 300_000} */
  ipnRetry?: RetryPolicy;
  /** default 'mixed' */
  statusDescriptionStyle?: 'mixed' | 'upper';
  /** default true */
  rejectAuthorizationHeaderOnToken?: boolean;
  /** default 30000 */
  ipnTimeoutMs?: number;
  /** Shown on the payment page. default 'SmartDuka Test Shop' */
  merchantName?: string;
  /** Clock (tests move it to expire tokens). default () => new Date() */
  now?: () => Date;
  /** default: no logging. Secrets, tokens and full phone numbers are never logged. */
  log?: (line: string) => void;
  /** default 10000 records of each kind kept */
  maxRecords?: number;
}

export interface PesapalIpnRegistration {
  /** numeric `id` of the RegisterIPN answer */
  id: number;
  /** The merchant whose token registered it ('default' or an addMerchant id): only that merchant's orders may name it. */
  merchant: string;
  /** GUID to pass as `notification_id` */
  ipnId: string;
  url: string;
  type: PesapalIpnType;
  createdAt: Date;
}

export interface PesapalRefundRequest {
  amountMinor: bigint;
  username: string;
  remarks: string;
  state: 'pending' | 'approved' | 'rejected';
  createdAt: Date;
  decidedAt: Date | null;
}

/** Tamper for the next settlement: the payment lands with another amount/currency than the order. */
export interface PesapalTamper {
  /** major units */
  amount?: number;
  currency?: string;
}

export interface PesapalOrder {
  orderTrackingId: string;
  /** The merchant whose token submitted it ('default': the simulator's own consumer key; else an addMerchant id). */
  merchant: string;
  merchantReference: string;
  amountMinor: bigint;
  currency: string;
  description: string;
  callbackUrl: string;
  cancellationUrl: string | null;
  notificationId: string;
  branch: string | null;
  redirectMode: 'TOP_WINDOW' | 'PARENT_WINDOW';
  accountNumber: string | null;
  billingAddress: Record<string, string>;
  redirectUrl: string;
  createdAt: Date;
  state: PesapalOrderState;
  statusCode: PesapalStatusCode;
  /** '' until the customer picked a method */
  paymentMethod: string;
  /** masked card / phone, '' until paid */
  paymentAccount: string;
  /** processor receipt, '' until COMPLETED; needed for RefundRequest */
  confirmationCode: string;
  /** What was actually paid (differs from amountMinor/currency only when tampered). */
  paidAmountMinor: bigint | null;
  paidCurrency: string | null;
  /** `description` of the status answer (decline text…) */
  outcomeDescription: string | null;
  paidAt: Date | null;
  refund: PesapalRefundRequest | null;
  tamper: PesapalTamper | null;
}

/** A canned error for the next `count` calls of an endpoint group (answered Pesapal-style: HTTP 200 + error in the body). */
export interface PesapalCannedError {
  count: number;
  /** `error.code`, e.g. 'invalid_api_request_parameters' */
  code: string;
  message: string;
  /** `error.error_type`; default 'api_error' */
  errorType?: string;
  /** default 200 — Pesapal reports failures in the body */
  httpStatus?: number;
  /** true: the request is carried out first, then answered with the error (lost answer). */
  applied?: boolean;
}

export interface PesapalFaults {
  /** Every API endpoint and the payment page answer HTTP 503 with an HTML page; the control API keeps working. */
  down?: boolean;
  /** The next N API calls get Cloudflare's HTML 403 "Attention Required" page instead of JSON. */
  cloudflareBlocks?: number;
  /** Extra latency per endpoint group; the answer is held back *after* the request took effect. */
  latencyMs?: Partial<Record<PesapalEndpoint, number>>;
  errors?: Partial<Record<Exclude<PesapalEndpoint, 'checkout'>, PesapalCannedError>>;
  ipns?: NotificationFaults;
  /** One-shot: drop every issued token now (not stored). */
  invalidateTokens?: boolean;
}

export interface PesapalStats {
  tokenRequests: number;
  ipnRequests: number;
  submitRequests: number;
  statusRequests: number;
  refundRequests: number;
  cancelRequests: number;
  checkoutViews: number;
  checkoutSubmissions: number;
  ipnsSent: number;
  ipnsDropped: number;
  /** IPNs waiting on a delay fault or a retry */
  ipnsScheduled: number;
}

export interface PesapalSettlement {
  outcome: PesapalOutcome;
  /** default: the method already chosen, else 'Visa' ('Mpesa' for `pending`) */
  paymentMethod?: PesapalPaymentMethod;
  /** Tamper: settle with this amount (major units). */
  amount?: number;
  /** Tamper: settle in this currency. */
  currency?: string;
  /** `description` in the status answer (e.g. a decline reason). */
  description?: string;
}

export interface PesapalCompletion {
  outcome: PesapalOutcome;
  /** Where the browser goes next (callback_url, or cancellation_url for `cancelled`). */
  redirectUrl: string;
  order: PesapalOrder;
}

export type PesapalIpnDelivery = NotificationDelivery;

export interface PesapalSimulator {
  readonly url: string;
  readonly port: number;
  /** Base of the redirect_url handed out. */
  readonly publicUrl: string;
  close(): Promise<void>;
  stats(): PesapalStats;
  /** Clears orders, IPN deliveries, stats and faults. IPN registrations and tokens survive unless `full`. */
  reset(opts?: { full?: boolean }): void;
  setFaults(faults: PesapalFaults): void;
  faults(): PesapalFaults;
  configure(settings: Partial<PesapalSettings>): PesapalSettings;
  settings(): PesapalSettings;
  /**
   * Adds (or replaces, by id) a merchant with its own consumer key and secret: its tokens see only
   * its own IPN registrations and orders. The simulator's own credentials are the merchant
   * 'default'. Kept by reset() unless full.
   */
  addMerchant(merchant: PesapalMerchant): void;
  /** Every API call received (oldest first), with the merchant whose token (or, for RequestToken, credentials) it carried. */
  apiCalls(): PesapalApiCall[];
  ipnRegistrations(): PesapalIpnRegistration[];
  orders(): PesapalOrder[];
  /** By order_tracking_id or merchant reference. */
  getOrder(ref: string): PesapalOrder | undefined;
  /** Every IPN attempt with the receiver's answer. */
  ipns(): PesapalIpnDelivery[];
  waitForIpns(orderTrackingId: string, count?: number, timeoutMs?: number): Promise<PesapalIpnDelivery[]>;
  /** Sends delayed IPNs and pending retries now. Returns how many fired. */
  flushIpns(): number;
  /** Settles an order as if the customer used the payment page. `ref` = order_tracking_id or merchant reference. */
  complete(ref: string, outcome: PesapalOutcome | PesapalSettlement): Promise<PesapalCompletion>;
  /** The next settlement of `ref` from the payment page lands with this amount/currency. */
  tamper(ref: string, tamper: PesapalTamper | null): PesapalOrder;
  /** A COMPLETED order becomes REVERSED (chargeback) and an IPN is sent. */
  reverse(ref: string): Promise<PesapalOrder>;
  /** Pesapal finance approves (→ REVERSED + IPN) or rejects a pending RefundRequest. */
  decideRefund(ref: string, decision: 'approve' | 'reject'): Promise<PesapalOrder>;
  /** Drops every issued token (the next call with an old token gets 401). */
  invalidateTokens(): void;
}

/** A further Pesapal merchant account (addMerchant). */
export interface PesapalMerchant {
  id: string;
  consumerKey: string;
  consumerSecret: string;
}

/** One API call as received. merchant: whose token (RequestToken: whose key and secret) it carried; null for none that works. */
export interface PesapalApiCall {
  at: Date;
  endpoint: PesapalEndpoint;
  method: string;
  /** path and query */
  path: string;
  merchant: string | null;
}
