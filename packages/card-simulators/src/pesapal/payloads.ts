/** Pesapal API 3.0 JSON shapes. `status` is always a *string* ("200"/"500"); failures travel in HTTP 200 bodies. */
import { createHmac } from 'node:crypto';
import { appendQuery } from '../shared/http';
import { currencyExponent, minorToMajorNumber } from '../shared/money';
import { dotNetUtc, eatLocalNoZone } from '../shared/time';
import type { PesapalIpnRegistration, PesapalOrder, PesapalSettings, PesapalStatusCode } from './types';
import type { PesapalErrorObject } from './validation';

export function errorResponse(error: PesapalErrorObject): Record<string, unknown> {
  return { error: { ...error }, status: '500' };
}

export function tokenResponse(token: string, expiresAt: Date): Record<string, unknown> {
  return {
    token,
    expiryDate: dotNetUtc(expiresAt),
    error: null,
    status: '200',
    message: 'Request processed successfully',
  };
}

/** Observed: code set, message EMPTY — clients must fall back to the code. */
export function invalidCredentialsResponse(): Record<string, unknown> {
  return errorResponse({ error_type: 'api_error', code: 'invalid_consumer_key_or_secret_provided', message: '' });
}

export function invalidTokenResponse(): Record<string, unknown> {
  return {
    error: {
      error_type: 'authentication_error',
      code: 'invalid_api_credentials_provided',
      message: 'Invalid Access Token',
    },
  };
}

function b64url(value: string | Buffer): string {
  return Buffer.from(value).toString('base64url');
}

/** An HS256 JWT shaped like Pesapal's (the claims are opaque to merchants). */
export function signJwt(secret: Buffer, issuedAt: Date, expiresAt: Date, subject: string): string {
  const header = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const iat = Math.floor(issuedAt.getTime() / 1000);
  const payload = b64url(
    JSON.stringify({
      'http://schemas.microsoft.com/ws/2008/06/identity/claims/userdata': subject,
      uniqueid: subject,
      role: 'Merchant',
      nbf: iat,
      exp: Math.floor(expiresAt.getTime() / 1000),
      iat,
      iss: 'http://cybqa.pesapal.com/',
      aud: 'http://cybqa.pesapal.com/',
    }),
  );
  const signature = b64url(createHmac('sha256', secret).update(`${header}.${payload}`).digest());
  return `${header}.${payload}.${signature}`;
}

/** RegisterIPN answer (recorded sandbox shape, misspelt `ipn_status_decription` included). */
export function ipnRegistrationResponse(r: PesapalIpnRegistration): Record<string, unknown> {
  return {
    id: r.id,
    url: r.url,
    created_date: dotNetUtc(r.createdAt),
    ipn_id: r.ipnId,
    notification_type: r.type === 'GET' ? 0 : 1,
    ipn_notification_type_description: r.type,
    ipn_status: 1,
    ipn_status_decription: 'Active',
    error: null,
    status: '200',
  };
}

/** One element of the GetIpnList array (documented fields). */
export function ipnListItem(r: PesapalIpnRegistration): Record<string, unknown> {
  return { url: r.url, created_date: dotNetUtc(r.createdAt), ipn_id: r.ipnId, error: null, status: '200' };
}

export function submitOrderResponse(o: PesapalOrder): Record<string, unknown> {
  return {
    order_tracking_id: o.orderTrackingId,
    merchant_reference: o.merchantReference,
    redirect_url: o.redirectUrl,
    error: null,
    status: '200',
  };
}

const DESCRIPTIONS: Readonly<Record<PesapalStatusCode, string>> = Object.freeze({
  0: 'INVALID',
  1: 'Completed',
  2: 'Failed',
  3: 'Reversed',
});

export function statusDescription(code: PesapalStatusCode, style: PesapalSettings['statusDescriptionStyle']): string {
  return style === 'upper' ? DESCRIPTIONS[code].toUpperCase() : DESCRIPTIONS[code];
}

export function statusCallbackUrl(o: PesapalOrder): string {
  return appendQuery(o.callbackUrl, {
    OrderTrackingId: o.orderTrackingId,
    OrderMerchantReference: o.merchantReference,
  });
}

/** GET /api/Transactions/GetTransactionStatus answer. Not paid yet ⇒ status_code 0 AND `status: "500"` with an error object. */
export function transactionStatusResponse(
  o: PesapalOrder,
  style: PesapalSettings['statusDescriptionStyle'],
): Record<string, unknown> {
  const currency = o.paidCurrency ?? o.currency;
  const amountMinor = o.paidAmountMinor ?? o.amountMinor;
  const callBack = statusCallbackUrl(o);
  const notPaid = o.statusCode === 0;
  return {
    payment_method: o.paymentMethod,
    amount: minorToMajorNumber(amountMinor, currencyExponent(currency) ?? 2),
    created_date: eatLocalNoZone(o.paidAt ?? o.createdAt),
    confirmation_code: o.confirmationCode,
    order_tracking_id: o.orderTrackingId,
    payment_status_description: statusDescription(o.statusCode, style),
    description: o.outcomeDescription,
    message: 'Request processed successfully',
    payment_account: o.paymentAccount,
    call_back_url: callBack,
    status_code: o.statusCode,
    merchant_reference: o.merchantReference,
    payment_status_code: '',
    currency,
    error: notPaid
      ? {
          error_type: 'api_error',
          code: 'payment_details_not_found',
          message: o.state === 'cancelled' ? 'Order Cancelled' : 'Pending Payment',
          call_back_url: callBack,
        }
      : { error_type: null, code: null, message: null, call_back_url: null },
    status: notPaid ? '500' : '200',
  };
}

/** RefundRequest / CancelOrder use a bare `{status, message}`. */
export function statusMessage(ok: boolean, message: string): Record<string, unknown> {
  return { status: ok ? '200' : '500', message };
}

/** What Cloudflare in front of the sandbox sends instead of JSON now and then. */
export function cloudflareBlockPage(): string {
  return `<!DOCTYPE html>
<html lang="en-US"><head><title>Attention Required! | Cloudflare</title><meta charset="UTF-8"></head>
<body><div id="cf-wrapper"><h1 data-translate="block_headline">Sorry, you have been blocked</h1>
<h2 class="cf-subheadline">You are unable to access pesapal.com</h2>
<p>This website is using a security service to protect itself from online attacks. (simulated)</p>
<p>Cloudflare Ray ID: <strong>${Date.now().toString(16)}</strong></p></div></body></html>
`;
}

export function serviceUnavailablePage(): string {
  return `<!DOCTYPE html>
<html><head><title>503 Service Temporarily Unavailable</title></head>
<body><h1>Service Temporarily Unavailable</h1><p>The server is temporarily unable to service your request. Please try again later. (simulated)</p></body></html>
`;
}
