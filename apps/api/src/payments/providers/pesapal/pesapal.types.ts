/**
 * Pesapal API 3.0 (JSON) wire types (shared/reference/pesapal.md). Response fields are optional:
 * Pesapal answers HTTP 200 with `status: "500"` and an `error` object for failures, and its
 * payloads differ between documentation and recorded responses.
 */

export type PesapalIpnType = 'GET' | 'POST';

export interface PesapalConfig {
  /** Sandbox https://cybqa.pesapal.com/pesapalv3, live https://pay.pesapal.com/v3. */
  baseUrl: string;
  consumerKey: string;
  consumerSecret: string;
  /** Per HTTP call, e.g. 30000. */
  timeoutMs: number;
  /** Currencies we initiate in (must be enabled on the merchant account). Default ['KES']. */
  currencies?: readonly string[];
  /** Allow cents. Default false: M-Pesa on the payment page cannot take them. */
  allowFractionalAmounts?: boolean;
  /** How Pesapal should call IPN URLs that ensureIpn registers. Default 'POST'. */
  ipnNotificationType?: PesapalIpnType;
  /** billing_address.country_code (ISO-3166 alpha-2). Default 'KE'. */
  countryCode?: string;
  /** RefundRequest `username` when the request names nobody. Default 'smartduka-pos'. */
  refundUsername?: string;
}

/** Real responses use `error_type`; the docs say `type`. All fields null when there is no error. */
export interface PesapalErrorObject {
  error_type?: string | null;
  type?: string | null;
  code?: string | null;
  message?: string | null;
  call_back_url?: string | null;
}

export interface PesapalBase {
  error?: PesapalErrorObject | null;
  /** A string: "200" ok, "500" failure (also used for "not paid yet"). */
  status?: string | number;
  message?: string;
}

export interface PesapalTokenResponse extends PesapalBase {
  token?: string;
  /** ISO-8601 UTC, e.g. 2026-10-02T09:19:30.5177702Z. */
  expiryDate?: string;
}

export interface PesapalIpnRegistration extends PesapalBase {
  id?: number;
  url?: string;
  created_date?: string;
  ipn_id?: string;
  /** 0 = GET, 1 = POST (recorded sandbox responses). */
  notification_type?: number;
  ipn_notification_type_description?: string;
  ipn_status?: number;
  /** sic */
  ipn_status_decription?: string;
}

export interface PesapalBillingAddress {
  email_address: string;
  phone_number: string;
  country_code: string;
  first_name: string;
  middle_name: string;
  last_name: string;
  line_1: string;
  line_2: string;
  city: string;
  state: string;
  postal_code: string;
  zip_code: string;
}

/** POST /api/Transactions/SubmitOrderRequest body. */
export interface PesapalOrderRequest {
  /** Our merchant reference: unique, ≤ 50 chars. */
  id: string;
  currency: string;
  /** Major units. */
  amount: number;
  /** ≤ 100 chars. */
  description: string;
  callback_url: string;
  notification_id: string;
  billing_address: PesapalBillingAddress;
}

export interface PesapalOrderResponse extends PesapalBase {
  order_tracking_id?: string;
  merchant_reference?: string;
  redirect_url?: string;
}

export interface PesapalTransactionStatus extends PesapalBase {
  payment_method?: string;
  amount?: number | string;
  /** EAT local time without a zone (observed); not parsed. */
  created_date?: string;
  confirmation_code?: string;
  order_tracking_id?: string;
  payment_status_description?: string;
  description?: string | null;
  payment_account?: string;
  call_back_url?: string;
  /** 0 INVALID (incl. not paid yet), 1 COMPLETED, 2 FAILED, 3 REVERSED. */
  status_code?: number | string;
  merchant_reference?: string;
  payment_status_code?: string;
  currency?: string;
}

/** POST /api/Transactions/RefundRequest body. */
export interface PesapalRefundRequest {
  confirmation_code: string;
  /** Decimal string, as in Pesapal's sample ("100.00"). */
  amount: string;
  username: string;
  remarks: string;
}

/** The JSON an IPN endpoint must answer with (HTTP 200 either way). */
export interface PesapalIpnAck {
  orderNotificationType: string;
  orderTrackingId: string;
  orderMerchantReference: string;
  /** 200 processed; 500 not processed → Pesapal retries. */
  status: 200 | 500;
}
