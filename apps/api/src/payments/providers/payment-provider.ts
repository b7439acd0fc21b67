/**
 * The contract every payment provider adapter implements (hyperswitch "connector" / medusa
 * "payment provider" style): an adapter builds provider requests and parses provider answers.
 * It never touches the database, never decides payment state transitions and never logs
 * secrets, bodies or full phone numbers. The payments service owns state, persistence,
 * idempotency and the "verify before giving value" integrity checks (reference, amount,
 * currency), using what `fetchStatus` reports.
 *
 * Money crosses this boundary only as bigint minor units + ISO currency code; adapters convert
 * to and from the providers' decimal major-unit amounts exactly (see ./amount.ts).
 *
 * Every failed provider call throws a ProviderError (./provider-errors.ts) whose `outcome` says
 * whether the provider could have acted on the request. Bad input from our side is rejected
 * before anything is sent, with a ValidationFailedError (HTTP 400).
 */

export type ProviderName = 'mpesa' | 'flutterwave' | 'pesapal';

/**
 * Normalised payment status as reported by the provider's status API:
 * - pending: not final yet (includes Pesapal status_code 0 "INVALID" = created, not paid yet)
 * - completed: the provider says the money was collected (the service must still check
 *   reference, amount and currency before giving value)
 * - failed / cancelled: final, no money collected
 * - expired: final, the customer never answered (M-Pesa prompt timed out, 1037)
 * - reversed: money was collected and later returned (refund, chargeback)
 * - not_found: the provider has no transaction for this reference (Flutterwave creates one
 *   only when the customer attempts to pay on the hosted page) — keep waiting until our own
 *   expiry, then treat as abandoned
 * - unknown: the provider answered with a status we do not recognise (never give value)
 */
export type ProviderPaymentStatus =
  'pending' | 'completed' | 'failed' | 'cancelled' | 'expired' | 'reversed' | 'not_found' | 'unknown';

export interface ProviderCapabilities {
  /** ISO 4217 codes this adapter will initiate payments in. */
  currencies: readonly string[];
  /** May an amount carry minor units (KES cents)? false ⇒ whole major units only (M-Pesa cannot take cents). */
  fractionalAmounts: boolean;
  refunds: 'full' | 'partial' | 'none';
  /** How the provider tells us about changes: Daraja callback, Flutterwave webhook, Pesapal IPN. */
  notification: 'callback' | 'webhook' | 'ipn';
  /** initiate() returns a hosted checkout link for the customer. */
  hostedCheckout: boolean;
}

export interface InitiateCustomer {
  email?: string;
  phoneNumber?: string;
  name?: string;
  firstName?: string;
  lastName?: string;
}

export interface InitiateRequest {
  /** Our payment id (sent as metadata where the provider has a place for it). */
  paymentId: string;
  /** Ours and unique per attempt: Flutterwave tx_ref, Pesapal merchant reference (`id`). */
  reference: string;
  amountMinor: bigint;
  currency: string;
  /** Shown to the payer. */
  description: string;
  customer: InitiateCustomer;
  /** Where the customer's browser goes after paying (Flutterwave redirect_url, Pesapal callback_url); required by hosted-checkout providers. */
  redirectUrl?: string;
  /** Pesapal: the IPN URL; used to find/register the IPN when `notificationId` is not given. */
  notificationUrl?: string;
  /** Pesapal: the registered IPN id (notification_id). */
  notificationId?: string;
}

export interface InitiateResult {
  /** Pesapal order_tracking_id, M-Pesa CheckoutRequestID; Flutterwave has none until the customer pays. */
  providerRef?: string;
  /** The provider's second id for the request, when it gives one (M-Pesa MerchantRequestID). */
  providerRequestId?: string;
  /** Hosted checkout link to send the customer to (or render as a QR code); absent for a push to the phone (M-Pesa). */
  redirectUrl?: string;
  /** The provider's own code and text for accepting the request (M-Pesa ResponseCode / ResponseDescription). */
  providerCode?: string;
  description?: string;
  /** What the provider says the customer is shown (M-Pesa CustomerMessage). */
  customerMessage?: string;
  /** The provider's parsed answer, for persistence (never log it). */
  raw: unknown;
}

export interface StatusResult {
  status: ProviderPaymentStatus;
  /** Flutterwave transaction id (data.id), Pesapal order tracking id, M-Pesa CheckoutRequestID. */
  providerRef?: string;
  /** The provider's second id for the request (M-Pesa MerchantRequestID, on a final answer). */
  providerRequestId?: string;
  /** Our tx_ref / merchant reference as the provider reports it. */
  reference?: string;
  /**
   * Exact amount the provider reports, in minor units of `currency`. Undefined when the provider
   * sent none, or one that cannot be represented exactly in that currency: never give value
   * without it.
   */
  amountMinor?: bigint;
  currency?: string;
  /** Provider confirmation code: Flutterwave flw_ref, Pesapal confirmation_code (M-Pesa receipt / card auth). */
  receipt?: string;
  paymentMethod?: string;
  /** Provider's human-readable outcome (decline reason, processor response). */
  description?: string;
  /** Provider's own result/error code as a string (M-Pesa ResultCode or errorCode). */
  providerCode?: string;
  raw: unknown;
}

export interface Notification {
  /** Authenticated (e.g. Flutterwave verif-hash matched, M-Pesa capability URL valid). Pesapal IPNs can never be verified. */
  verified: boolean;
  reference?: string;
  providerRef?: string;
  /** The provider's second id for the request (M-Pesa MerchantRequestID). */
  providerRequestId?: string;
  eventType?: string;
  /**
   * The outcome the notification itself reports, when it carries one (M-Pesa callbacks). Acted on
   * only when `verified`; otherwise it is only a reason to ask fetchStatus. Flutterwave webhooks
   * and Pesapal IPNs carry none the service uses: it always asks.
   */
  report?: NotificationReport;
  raw: unknown;
}

export interface NotificationReport {
  status: 'completed' | 'failed' | 'cancelled' | 'expired';
  /** The provider's own result code and text (M-Pesa ResultCode / ResultDesc). */
  providerCode: string;
  description: string;
  /**
   * What a success says was paid (M-Pesa CallbackMetadata). Absent when the notification carries
   * nothing: then the success cannot be checked and must be confirmed with fetchStatus.
   * `amountMinor` is undefined when the provider sent no amount, or one not exact in minor units.
   */
  paid?: { amountMinor?: bigint; receipt?: string; transactionDate?: string };
}

export interface NotificationInput {
  headers: Record<string, string | string[] | undefined>;
  /** Path parameters of the notification URL (M-Pesa: paymentId and capability token). */
  params?: Record<string, string | undefined>;
  query: Record<string, unknown>;
  body: unknown;
  /** The request body exactly as received (NestJS `rawBody: true`). */
  rawBody?: string;
}

export interface RefundRequest {
  /** Flutterwave transaction id; Pesapal order tracking id. */
  providerRef: string;
  reference: string;
  amountMinor: bigint;
  currency: string;
  reason: string;
  /** Provider confirmation code from StatusResult.receipt (Pesapal needs it; fetched when absent). */
  receipt?: string;
  /** Who asked for the refund (Pesapal `username`); defaults to the adapter's configured name. */
  initiatedBy?: string;
}

export interface RefundResult {
  /**
   * accepted: the provider took the request (Pesapal: queued for its finance team's approval;
   * the reversal later shows as status 'reversed'). rejected: the provider said no — see raw.
   */
  status: 'accepted' | 'rejected' | 'not_supported';
  providerRefundRef?: string;
  /** Provider's message for a rejection (already free of secrets). */
  message?: string;
  raw: unknown;
}

export interface PaymentProvider {
  readonly name: ProviderName;
  readonly capabilities: ProviderCapabilities;
  initiate(req: InitiateRequest): Promise<InitiateResult>;
  fetchStatus(q: { reference: string; providerRef?: string }): Promise<StatusResult>;
  parseNotification(input: NotificationInput): Notification;
  refund(req: RefundRequest): Promise<RefundResult>;
}
