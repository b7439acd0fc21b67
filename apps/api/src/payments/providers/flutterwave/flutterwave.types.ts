/**
 * Flutterwave v3 wire types (shared/reference/flutterwave.md). Only the fields we read or send;
 * every response field is optional because Flutterwave's payloads vary by payment method and
 * by API/dashboard version.
 */

export interface FlutterwaveConfig {
  /** https://api.flutterwave.com (a trailing /v3 is accepted too); test vs live is decided by the key. */
  baseUrl: string;
  /** FLWSECK-… / FLWSECK_TEST-…, sent as the Bearer token. */
  secretKey: string;
  /** The "secret hash" typed into the dashboard; webhooks carry it in `verif-hash`. Empty ⇒ no webhook is ever verified. */
  secretHash: string;
  /** Per HTTP call. Flutterwave itself answers 503 after ~28 s, so ≥ 30000 is sensible in production. */
  timeoutMs: number;
  /** Currencies we initiate in. Default ['KES']. */
  currencies?: readonly string[];
  /** Allow cents. Default false: M-Pesa on the hosted page cannot take them. */
  allowFractionalAmounts?: boolean;
  /** Hosted page payment options, e.g. "card, mpesa" (only honoured if the dashboard does not force a list). */
  paymentOptions?: string;
  /** Checkout link validity in minutes (1..1440). */
  sessionDurationMinutes?: number;
  /**
   * Failed attempts after which the hosted page closes (1..100). Unset = Flutterwave's default, which
   * keeps a link payable after a decline: a payment recorded as failed could then still be paid.
   */
  maxRetryAttempts?: number;
  /** Title shown on the hosted page. */
  checkoutTitle?: string;
}

/** Every v3 response: `status` is about the API call, not the payment. */
export interface FlwEnvelope<T> {
  status?: 'success' | 'error' | string;
  message?: string;
  data?: T | null;
}

/** POST /v3/payments body. */
export interface FlwPaymentRequest {
  tx_ref: string;
  amount: number;
  currency: string;
  redirect_url: string;
  customer: { email: string; phonenumber?: string; name?: string };
  customizations?: { title?: string; description?: string };
  meta?: Record<string, string>;
  payment_options?: string;
  session_duration?: number;
  max_retry_attempt?: number;
}

export interface FlwPaymentLinkData {
  link?: string;
}

/** data of GET /v3/transactions/:id/verify and verify_by_reference. */
export interface FlwTransaction {
  id?: number | string;
  tx_ref?: string;
  flw_ref?: string;
  amount?: number | string;
  charged_amount?: number | string;
  app_fee?: number | string;
  amount_settled?: number | string;
  currency?: string;
  status?: string;
  payment_type?: string;
  processor_response?: string;
  auth_model?: string;
  narration?: string;
  created_at?: string;
  meta?: Record<string, unknown> | null;
}

/** POST /v3/transactions/:id/refund body. */
export interface FlwRefundRequest {
  amount: number;
  comments: string;
}

export interface FlwRefundData {
  id?: number | string;
  tx_id?: number | string;
  flw_ref?: string;
  amount_refunded?: number | string;
  status?: string;
  destination?: string;
  created_at?: string;
}
