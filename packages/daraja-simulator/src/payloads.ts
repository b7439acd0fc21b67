/** Success bodies exactly as Daraja puts them on the wire (daraja.md §1.2, §2.3, §2.5, §3). */
import { formatNairobiTimestamp } from './time';
import type { SimPush } from './types';

export interface OAuthTokenResponse {
  access_token: string;
  /** A string on the wire ("3599"). */
  expires_in: string;
}

export interface StkPushAcceptedResponse {
  MerchantRequestID: string;
  CheckoutRequestID: string;
  ResponseCode: '0';
  ResponseDescription: string;
  CustomerMessage: string;
}

export interface StkQueryResultResponse {
  ResponseCode: '0';
  ResponseDescription: string;
  MerchantRequestID: string;
  CheckoutRequestID: string;
  /** A string here, unlike the callback. */
  ResultCode: string;
  ResultDesc: string;
}

export type CallbackItem =
  | { Name: 'Amount'; Value: number }
  | { Name: 'MpesaReceiptNumber'; Value: string }
  | { Name: 'Balance' }
  | { Name: 'TransactionDate'; Value: number }
  | { Name: 'PhoneNumber'; Value: number };

export interface StkCallbackBody {
  Body: {
    stkCallback: {
      MerchantRequestID: string;
      CheckoutRequestID: string;
      /** A number here, unlike the query. */
      ResultCode: number;
      ResultDesc: string;
      CallbackMetadata?: { Item: CallbackItem[] };
    };
  };
}

const ACCEPTED = 'Success. Request accepted for processing';
const QUERY_ACCEPTED = 'The service request has been accepted successfully';

export function oauthTokenResponse(accessToken: string, ttlSeconds: number): OAuthTokenResponse {
  return { access_token: accessToken, expires_in: String(ttlSeconds) };
}

export function stkPushAccepted(push: SimPush): StkPushAcceptedResponse {
  return {
    MerchantRequestID: push.merchantRequestId,
    CheckoutRequestID: push.checkoutRequestId,
    ResponseCode: '0',
    ResponseDescription: ACCEPTED,
    CustomerMessage: ACCEPTED,
  };
}

/** Only valid for answered pushes (resultCode/resultDesc set). */
export function stkQueryResult(push: SimPush): StkQueryResultResponse {
  return {
    ResponseCode: '0',
    ResponseDescription: QUERY_ACCEPTED,
    MerchantRequestID: push.merchantRequestId,
    CheckoutRequestID: push.checkoutRequestId,
    ResultCode: String(push.resultCode),
    ResultDesc: push.resultDesc ?? '',
  };
}

/**
 * The 2026 sandbox's "still pending" STK query answer (HTTP 200), exactly as recorded in
 * daraja-payloads/q04-pending-200-4999-2026.json: only these two fields. (daraja.md §3 sketches it with
 * ResponseCode and ids as well; the recorded body has none of them, and the simulator follows the recording.)
 */
export interface StkQueryStillProcessingResponse {
  ResultCode: '4999';
  ResultDesc: string;
}

export const STILL_UNDER_PROCESSING_CODE = '4999';

export function stkQueryStillProcessing(): StkQueryStillProcessingResponse {
  return { ResultCode: STILL_UNDER_PROCESSING_CODE, ResultDesc: 'The transaction is still under processing' };
}

/**
 * The STK callback for an answered push. Success carries CallbackMetadata (Balance without Value,
 * numeric TransactionDate/PhoneNumber); every other result carries no CallbackMetadata at all.
 */
export function stkCallback(push: SimPush, answeredAt: Date): StkCallbackBody {
  const resultCode = push.resultCode ?? 0;
  const stk: StkCallbackBody['Body']['stkCallback'] = {
    MerchantRequestID: push.merchantRequestId,
    CheckoutRequestID: push.checkoutRequestId,
    ResultCode: resultCode,
    ResultDesc: push.resultDesc ?? '',
  };
  if (resultCode === 0) {
    stk.CallbackMetadata = {
      Item: [
        { Name: 'Amount', Value: push.amount },
        { Name: 'MpesaReceiptNumber', Value: push.receipt ?? '' },
        { Name: 'Balance' },
        { Name: 'TransactionDate', Value: Number(formatNairobiTimestamp(answeredAt)) },
        { Name: 'PhoneNumber', Value: Number(push.phoneNumber) },
      ],
    };
  }
  return { Body: { stkCallback: stk } };
}
