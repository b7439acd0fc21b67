/** Public types of the Flutterwave v3 simulator. Wire formats follow /work/shared/reference/flutterwave.md. */
import type { NotificationDelivery, NotificationFaults, RetryPolicy } from '../shared/notifier';

/** Endpoint groups, used for stats, latency and canned errors. */
export type FlwEndpoint = 'payments' | 'charges' | 'verify' | 'transactions' | 'refunds' | 'checkout';
export const FLW_ENDPOINTS: readonly FlwEndpoint[] = Object.freeze([
  'payments',
  'charges',
  'verify',
  'transactions',
  'refunds',
  'checkout',
]);

export type FlwPaymentType = 'card' | 'mpesa';
/** What the customer does on the hosted page (or what a test makes them do with complete()). */
export type FlwOutcome = 'successful' | 'failed' | 'pending' | 'cancelled';
/** `data.status` on verify / webhooks. */
export type FlwTransactionStatus = 'successful' | 'failed' | 'pending';
/** v3 enveloped `{event, data}` or the legacy flat camelCase shape. */
export type FlwWebhookShape = 'v3' | 'legacy';
/** `completed` at once for cards, `pending-momo` for M-Pesa, `pending` when held (holdRefunds), `failed` (failRefund). */
export type FlwRefundStatus = 'completed' | 'pending' | 'pending-momo' | 'failed';

/**
 * What the next refund requests do (planRefunds): `pending` = taken but held (cards too) until
 * completeRefund / failRefund; `completed` = done at once (M-Pesa too); `refuse` = answered 400 with
 * `message`, nothing recorded. `count` requests (default: every one until planRefunds(null)).
 */
export interface FlwRefundPlan {
  outcome: 'pending' | 'completed' | 'refuse';
  message?: string;
  count?: number;
}

/** Dashboard-like settings; changeable at runtime with configure() / POST /__sim/settings. */
export interface FlwSettings {
  /** Dashboard webhook URL; null = none configured (no webhook is ever sent). */
  webhookUrl: string | null;
  /** Dashboard "secret hash": sent verbatim in the `verif-hash` header. */
  secretHash: string;
  webhookShape: FlwWebhookShape;
  /** "Add meta to webhook": top-level `meta_data` in v3 webhooks. */
  webhookMeta: boolean;
  /** "Webhooks for failed transactions". */
  failedWebhooks: boolean;
  /** Refund webhooks (off by default on real accounts). */
  refundWebhooks: boolean;
  /** "Webhook retries": Flutterwave retries 3 times, 30 min apart, when the receiver does not answer 200. */
  webhookRetry: RetryPolicy;
  /** `status` in the success redirect: `successful` (documented) or `completed` (newer checkout). */
  successRedirectStatus: 'successful' | 'completed';
}

export interface FlutterwaveSimulatorOptions {
  /** default 0 (random); CLI default 4020 (env FLW_SIM_PORT) */
  port?: number;
  /** default '127.0.0.1' */
  host?: string;
  /** Base URL put into checkout links, when browsers reach the simulator under another address. Default: the listen URL. */
  publicUrl?: string;
  /** Bearer secret key. default 'FLWSECK_TEST-smartduka-sim-X' */
  secretKey?: string;
  /** default 'smartduka-sim-secret-hash' */
  secretHash?: string;
  /** default none */
  webhookUrl?: string;
  /** default 'v3' */
  webhookShape?: FlwWebhookShape;
  /** default true */
  webhookMeta?: boolean;
  /** default true */
  failedWebhooks?: boolean;
  /** default false */
  refundWebhooks?: boolean;
  /** default {attempts: 0, intervalMs: 1_800_000} (retries are a dashboard switch) */
  webhookRetry?: RetryPolicy;
  /** default 'successful' */
  successRedirectStatus?: 'successful' | 'completed';
  /** default 60000 (Flutterwave's webhook timeout) */
  webhookTimeoutMs?: number;
  /** Shown on the checkout page when the merchant sends no customizations.title. default 'SmartDuka Test Shop' */
  merchantName?: string;
  /** `account_id` in payloads. default 123456 */
  accountId?: number;
  /** Flutterwave fee as basis points of the amount (`app_fee`). default 280 (2.8 %, as in the reference's M-Pesa sample) */
  appFeeBasisPoints?: number;
  /** Clock (tests can move time to expire links). default () => new Date() */
  now?: () => Date;
  /** default: no logging. Secrets and full phone numbers are never logged. */
  log?: (line: string) => void;
  /** default 10000 records of each kind kept (oldest dropped first) */
  maxRecords?: number;
}

export interface FlwCustomer {
  id: number;
  email: string;
  name: string | null;
  phoneNumber: string | null;
  createdAt: Date;
}

export interface FlwCustomizations {
  title?: string;
  description?: string;
  logo?: string;
}

/** Tamper for the next settlement: the payment lands with another amount/currency than requested. */
export interface FlwTamper {
  /** major units */
  amount?: number;
  currency?: string;
}

export type FlwCheckoutState = 'open' | 'paid' | 'closed';

/** One `tx_ref`: a hosted payment link (or an M-Pesa direct charge) and the attempts made on it. */
export interface FlwCheckout {
  txRef: string;
  /** The merchant whose secret key created it ('default': the simulator's own key; else an addMerchant id). */
  merchant: string;
  source: 'standard' | 'mpesa_charge';
  /** `flwlnk-…` (standard only). */
  linkId: string | null;
  link: string | null;
  amountMinor: bigint;
  currency: string;
  /** True when the merchant omitted `currency` and Flutterwave fell back to NGN. */
  currencyDefaulted: boolean;
  redirectUrl: string | null;
  customer: FlwCustomer;
  customizations: FlwCustomizations;
  meta: Record<string, unknown> | null;
  paymentOptions: FlwPaymentType[];
  sessionDurationMinutes: number | null;
  maxRetryAttempt: number | null;
  createdAt: Date;
  expiresAt: Date | null;
  /** paid after a successful charge; closed after max_retry_attempt failures. */
  state: FlwCheckoutState;
  failedAttempts: number;
  transactionIds: number[];
  tamper: FlwTamper | null;
}

export interface FlwCard {
  first_6digits: string;
  last_4digits: string;
  issuer: string;
  country: string;
  type: string;
  token: string;
  expiry: string;
}

/** One charge attempt (`data` of verify). Amounts are integer minor units of `currency`. */
export interface FlwTransaction {
  id: number;
  txRef: string;
  flwRef: string;
  amountMinor: bigint;
  chargedAmountMinor: bigint;
  appFeeMinor: bigint;
  currency: string;
  status: FlwTransactionStatus;
  paymentType: FlwPaymentType;
  processorResponse: string;
  authModel: string;
  narration: string;
  createdAt: Date;
  customer: FlwCustomer;
  card: FlwCard | null;
  meta: Record<string, unknown> | null;
  refundedMinor: bigint;
}

export interface FlwRefund {
  id: number;
  txId: number;
  txRef: string;
  flwRef: string;
  amountMinor: bigint;
  currency: string;
  status: FlwRefundStatus;
  comments: string;
  walletId: number;
  createdAt: Date;
  updatedAt: Date;
  /** The merchant whose key asked for it ('default' = the simulator's own): another key cannot see it. */
  merchant: string;
}

/** A canned error for the next `count` calls of an endpoint group. */
export interface FlwCannedError {
  count: number;
  /** HTTP status, e.g. 500, 503, 429 */
  status: number;
  message: string;
  /**
   * true: the request is carried out first, then answered with the error — the ambiguous
   * "503 after ~28 s, may still be processing" case the reference warns about.
   */
  applied?: boolean;
}

export interface FlwFaults {
  /** Every /v3 endpoint and the hosted page answer 503; the control API keeps working. */
  down?: boolean;
  /** Extra latency per endpoint group; the answer is held back *after* the request took effect. */
  latencyMs?: Partial<Record<FlwEndpoint, number>>;
  errors?: Partial<Record<Exclude<FlwEndpoint, 'checkout'>, FlwCannedError>>;
  webhooks?: NotificationFaults;
}

export interface FlwStats {
  paymentRequests: number;
  chargeRequests: number;
  verifyRequests: number;
  transactionRequests: number;
  refundRequests: number;
  checkoutViews: number;
  checkoutSubmissions: number;
  webhooksSent: number;
  webhooksDropped: number;
  /** webhooks waiting on a delay fault or a retry */
  webhooksScheduled: number;
}

export interface FlwSettlement {
  outcome: FlwOutcome;
  /** default: the pending attempt's type, else the first of the link's payment options */
  paymentType?: FlwPaymentType;
  /** Tamper: settle with this amount (major units) instead of the requested one. */
  amount?: number;
  /** Tamper: settle in this currency instead of the requested one. */
  currency?: string;
  /** Override `processor_response`. */
  processorResponse?: string;
}

export interface FlwCompletion {
  outcome: FlwOutcome;
  /** Where the browser goes next (null: no redirect_url, a pending attempt, or a direct charge). */
  redirectUrl: string | null;
  /** The attempt created/settled (null for `cancelled`). */
  transaction: FlwTransaction | null;
}

export type FlwWebhookDelivery = NotificationDelivery;

/** A further Flutterwave merchant account (addMerchant): its own secret key and dashboard secret hash. */
export interface FlwMerchant {
  id: string;
  secretKey: string;
  secretHash: string;
}

/** One /v3 API call as received: which merchant's secret key it carried (null: none, or a key no merchant has). */
export interface FlwApiCall {
  at: Date;
  endpoint: Exclude<FlwEndpoint, 'checkout'>;
  method: string;
  /** path and query, e.g. /v3/transactions/verify_by_reference?tx_ref=… */
  path: string;
  merchant: string | null;
}

export interface FlutterwaveSimulator {
  readonly url: string;
  readonly port: number;
  /** Base of the checkout links handed out. */
  readonly publicUrl: string;
  /** Stops the server and cancels pending webhooks. */
  close(): Promise<void>;
  stats(): FlwStats;
  /** Clears checkouts, transactions, refunds, webhooks, stats and faults. Settings survive unless `full`. */
  reset(opts?: { full?: boolean }): void;
  /** Replaces the current faults. */
  setFaults(faults: FlwFaults): void;
  faults(): FlwFaults;
  /** Changes dashboard-like settings (webhook URL, secret hash…). */
  configure(settings: Partial<FlwSettings>): FlwSettings;
  settings(): FlwSettings;
  /**
   * Adds (or replaces, by id) a merchant with its own secret key and secret hash: its checkouts are
   * invisible to other keys (verify answers "No transaction was found"), and their webhooks carry
   * its hash. The simulator's own key and hash are the merchant 'default'. Kept by reset() unless full.
   */
  addMerchant(merchant: FlwMerchant): void;
  /** Every /v3 call received (oldest first), with the merchant whose key it carried. Cleared by reset(). */
  apiCalls(): FlwApiCall[];
  checkouts(): FlwCheckout[];
  getCheckout(txRef: string): FlwCheckout | undefined;
  transactions(): FlwTransaction[];
  getTransaction(id: number): FlwTransaction | undefined;
  refunds(): FlwRefund[];
  /** Every webhook attempt with the receiver's answer. */
  webhooks(): FlwWebhookDelivery[];
  waitForWebhooks(txRef: string, count?: number, timeoutMs?: number): Promise<FlwWebhookDelivery[]>;
  /** Sends delayed webhooks and pending retries now. Returns how many fired. */
  flushWebhooks(): number;
  /** Settles a checkout as if the customer used the hosted page (or approved the M-Pesa prompt). */
  complete(txRef: string, outcome: FlwOutcome | FlwSettlement): Promise<FlwCompletion>;
  /** The next settlement of `txRef` from the hosted page lands with this amount/currency. */
  tamper(txRef: string, tamper: FlwTamper | null): FlwCheckout;
  /** Completes a pending refund (and sends the refund webhook when enabled). */
  completeRefund(refundId: number): Promise<FlwRefund>;
  /** Fails a pending refund: its amount is refundable again; the refund webhook says `failed`. */
  failRefund(refundId: number): Promise<FlwRefund>;
  /** How the next refund requests are answered (null: normal again). */
  planRefunds(plan: FlwRefundPlan | null): void;
}
