/**
 * Contract of the Daraja client (DarajaService). Pure protocol: no database.
 * Amounts here are whole Kenyan shillings (Daraja's unit), never minor units.
 */

import type { MpesaTransactionType } from '../../../config/app-config';
export type { MpesaEnvironment, MpesaTransactionType } from '../../../config/app-config';

/** One set of Daraja credentials + the shortcode they pay into. */
export interface DarajaAccount {
  /** Stable label used as the token-cache key together with the consumer key, e.g. "default". */
  id: string;
  /** e.g. https://sandbox.safaricom.co.ke (no trailing slash). */
  baseUrl: string;
  consumerKey: string;
  consumerSecret: string;
  /** BusinessShortCode: the paybill number, or for tills the store / head-office number. */
  shortcode: string;
  passkey: string;
  transactionType: MpesaTransactionType;
  /** Required when transactionType = 'till': sent as PartyB. */
  tillNumber?: string;
  /** The API operator of Reversal / Transaction Status calls (M-Pesa org portal), when the account has one. */
  initiatorName?: string;
  /** Its password: encrypted into the SecurityCredential, never sent or logged as is. */
  initiatorPassword?: string;
}

/** A Reversal of a C2B / STK payment (daraja.md §6.1). */
export interface ReversalRequest {
  /** The M-Pesa receipt of the payment to reverse. */
  transactionId: string;
  /** Whole shillings, at least 1. */
  amount: number;
  /** 2 to 100 characters. */
  remarks: string;
  resultUrl: string;
  queueTimeOutUrl: string;
}

/** A Transaction Status query (daraja.md §6.2): by receipt, or by the OriginatorConversationID of our own request. */
export interface TransactionStatusRequest {
  transactionId?: string;
  originalConversationId?: string;
  remarks: string;
  resultUrl: string;
  queueTimeOutUrl: string;
}

/** Daraja accepted an asynchronous request: its Result comes later, to ResultURL (or a notice to QueueTimeOutURL). */
export interface AsyncAccepted {
  originatorConversationId: string;
  conversationId: string;
  responseCode: string;
  responseDescription: string;
}

export interface StkPushRequest {
  /** Already normalised: 2547XXXXXXXX or 2541XXXXXXXX. */
  phoneNumber: string;
  /** Whole shillings, 1..250000. */
  amount: number;
  /** ≤ 12 characters (validated by the caller's DTO; the client rejects longer). */
  accountReference: string;
  /** ≤ 13 characters. */
  transactionDesc: string;
  /** The full per-payment callback URL. */
  callbackUrl: string;
}

export interface StkPushResult {
  merchantRequestId: string;
  checkoutRequestId: string;
  responseCode: string;
  responseDescription: string;
  customerMessage: string;
  /** The Nairobi timestamp used for Timestamp and Password (yyyyMMddHHmmss). */
  timestamp: string;
}

/** Final outcome of an STK transaction as reported by a callback or a query. */
export type StkOutcome = 'completed' | 'failed' | 'cancelled' | 'expired';

export type StkQueryResult =
  /** HTTP 500 500.001.1001 "The transaction is being processed": customer has not answered. */
  | { kind: 'pending'; errorCode: string; errorMessage: string }
  /** HTTP 500 500.001.1001 "The transaction does not exist". */
  | { kind: 'not_found'; errorCode: string; errorMessage: string }
  | {
      kind: 'final';
      outcome: StkOutcome;
      /** Always a string (Daraja sends a string here). */
      resultCode: string;
      resultDesc: string;
      merchantRequestId: string;
      checkoutRequestId: string;
    };

export interface StkCallbackMetadata {
  /** As sent (may be 1 or 1.00); compare with Math.round / integer checks. */
  amount?: number;
  mpesaReceiptNumber?: string;
  /** yyyyMMddHHmmss in Nairobi time, as a string. */
  transactionDate?: string;
  /** 2547XXXXXXXX as a string. */
  phoneNumber?: string;
}

export interface ParsedStkCallback {
  merchantRequestId: string;
  checkoutRequestId: string;
  /** Normalised to a string (Daraja sends a number in callbacks). */
  resultCode: string;
  resultDesc: string;
  outcome: StkOutcome;
  /** Present only on success callbacks. */
  metadata?: StkCallbackMetadata;
}

export interface CallbackValidation {
  /** True when the capability token in the URL is valid for the payment id. */
  verified: boolean;
  callback: ParsedStkCallback;
}
