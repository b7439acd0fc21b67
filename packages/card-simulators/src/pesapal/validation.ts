/** Request validation for RegisterIPN, SubmitOrderRequest and RefundRequest, with Pesapal's error codes. */
import { isHttpUrl, isPlainObject } from '../shared/http';
import { currencyExponent, parseMajorAmount } from '../shared/money';
import type { PesapalIpnType } from './types';

export interface PesapalErrorObject {
  error_type: string;
  code: string;
  message: string;
}

export type Checked<T> = { ok: true; value: T } | { ok: false; error: PesapalErrorObject };

export const INVALID_PARAMS = 'invalid_api_request_parameters';
export const MISSING_BILLING = 'missing_mandatory_billing_address';
export const MAX_MERCHANT_REFERENCE = 50;
export const MAX_DESCRIPTION = 100;
const MERCHANT_REFERENCE = /^[A-Za-z0-9\-_.:]+$/;
const BILLING_FIELDS = [
  'email_address',
  'phone_number',
  'country_code',
  'first_name',
  'middle_name',
  'last_name',
  'line_1',
  'line_2',
  'city',
  'state',
  'postal_code',
  'zip_code',
] as const;

export function invalid<T>(message: string, code = INVALID_PARAMS, errorType = 'invalid_request_error'): Checked<T> {
  return { ok: false, error: { error_type: errorType, code, message } };
}

export interface ValidIpn {
  url: string;
  type: PesapalIpnType;
}

export function validateIpn(body: Record<string, unknown>): Checked<ValidIpn> {
  const url = body['url'];
  if (url === undefined || url === null || url === '') return invalid('url is required');
  if (!isHttpUrl(url)) return invalid('Invalid IPN URL provided. Use an absolute http(s) URL');
  const type = body['ipn_notification_type'];
  if (type === undefined || type === null || type === '')
    return invalid('ipn_notification_type is required (GET or POST)');
  if (typeof type !== 'string' || !['GET', 'POST'].includes(type.toUpperCase()))
    return invalid('ipn_notification_type must be GET or POST');
  return { ok: true, value: { url, type: type.toUpperCase() as PesapalIpnType } };
}

export interface ValidOrder {
  merchantReference: string;
  currency: string;
  amountMinor: bigint;
  description: string;
  callbackUrl: string;
  cancellationUrl: string | null;
  notificationId: string;
  branch: string | null;
  redirectMode: 'TOP_WINDOW' | 'PARENT_WINDOW';
  accountNumber: string | null;
  billingAddress: Record<string, string>;
}

function optionalString(body: Record<string, unknown>, field: string): Checked<string | null> {
  const v = body[field];
  if (v === undefined || v === null || v === '') return { ok: true, value: null };
  if (typeof v !== 'string') return invalid(`${field} must be a string`);
  return { ok: true, value: v };
}

/** Field checks of SubmitOrderRequest; IPN id existence and reference uniqueness are checked by the core. */
export function validateOrder(body: Record<string, unknown>, currencies: readonly string[]): Checked<ValidOrder> {
  const id = body['id'];
  if (id === undefined || id === null || id === '') return invalid('id (merchant reference) is required');
  if (typeof id !== 'string') return invalid('id (merchant reference) must be a string');
  if (id.length > MAX_MERCHANT_REFERENCE)
    return invalid(`id (merchant reference) must not be longer than ${MAX_MERCHANT_REFERENCE} characters`);
  if (!MERCHANT_REFERENCE.test(id))
    return invalid('id (merchant reference) may only contain letters, digits and - _ . :');

  const currency = body['currency'];
  if (currency === undefined || currency === null || currency === '') return invalid('currency is required');
  if (typeof currency !== 'string' || !currencies.includes(currency))
    return invalid(`Currency ${String(currency)} is not enabled for this merchant account`);
  const exponent = currencyExponent(currency) ?? 2;

  if (body['amount'] === undefined || body['amount'] === null) return invalid('amount is required');
  const amount = parseMajorAmount(body['amount'], Math.min(exponent, 2), false);
  if (!amount.ok) return invalid(`amount ${amount.reason}`);

  const description = body['description'];
  if (description === undefined || description === null || description === '')
    return invalid('description is required');
  if (typeof description !== 'string') return invalid('description must be a string');
  if (description.length > MAX_DESCRIPTION)
    return invalid(`description must not be longer than ${MAX_DESCRIPTION} characters`);

  const callback = body['callback_url'];
  if (callback === undefined || callback === null || callback === '') return invalid('callback_url is required');
  if (!isHttpUrl(callback)) return invalid('callback_url must be an absolute http(s) URL');

  const cancellation = body['cancellation_url'];
  let cancellationUrl: string | null = null;
  if (cancellation !== undefined && cancellation !== null && cancellation !== '') {
    if (!isHttpUrl(cancellation)) return invalid('cancellation_url must be an absolute http(s) URL');
    cancellationUrl = cancellation;
  }

  const notificationId = body['notification_id'];
  if (notificationId === undefined || notificationId === null || notificationId === '')
    return invalid('Invalid IPN URL ID provided.Check format and try again');
  if (typeof notificationId !== 'string') return invalid('Invalid IPN URL ID provided.Check format and try again');

  const redirectModeRaw = body['redirect_mode'];
  let redirectMode: ValidOrder['redirectMode'] = 'TOP_WINDOW';
  if (redirectModeRaw !== undefined && redirectModeRaw !== null && redirectModeRaw !== '') {
    if (redirectModeRaw !== 'TOP_WINDOW' && redirectModeRaw !== 'PARENT_WINDOW')
      return invalid('redirect_mode must be TOP_WINDOW or PARENT_WINDOW');
    redirectMode = redirectModeRaw;
  }
  const branch = optionalString(body, 'branch');
  if (!branch.ok) return branch;
  const accountNumber = optionalString(body, 'account_number');
  if (!accountNumber.ok) return accountNumber;

  const billing = body['billing_address'];
  if (billing === undefined || billing === null) return invalid('Billing address is required', MISSING_BILLING);
  if (!isPlainObject(billing)) return invalid('billing_address must be an object', MISSING_BILLING);
  const billingAddress: Record<string, string> = {};
  for (const field of BILLING_FIELDS) {
    const v = billing[field];
    if (v === undefined || v === null) continue;
    if (typeof v !== 'string') return invalid(`billing_address.${field} must be a string`);
    billingAddress[field] = v;
  }
  if (!billingAddress['email_address']?.trim() && !billingAddress['phone_number']?.trim()) {
    return invalid('billing_address needs an email_address or a phone_number', MISSING_BILLING);
  }
  const country = billingAddress['country_code'];
  if (country && !/^[A-Za-z]{2}$/.test(country))
    return invalid('billing_address.country_code must be an ISO 3166 alpha-2 code');

  return {
    ok: true,
    value: {
      merchantReference: id,
      currency,
      amountMinor: amount.minor,
      description,
      callbackUrl: callback,
      cancellationUrl,
      notificationId,
      branch: branch.value,
      redirectMode,
      accountNumber: accountNumber.value,
      billingAddress,
    },
  };
}

export interface ValidRefund {
  confirmationCode: string;
  amount: unknown;
  username: string;
  remarks: string;
}

/** RefundRequest answers `{status: "500", message}` on failure: these checks return that message. */
export function validateRefund(
  body: Record<string, unknown>,
): { ok: true; value: ValidRefund } | { ok: false; message: string } {
  const code = body['confirmation_code'];
  if (typeof code !== 'string' || code.trim() === '') return { ok: false, message: 'confirmation_code is required' };
  if (body['amount'] === undefined || body['amount'] === null || body['amount'] === '')
    return { ok: false, message: 'amount is required' };
  const username = body['username'];
  if (typeof username !== 'string' || username.trim() === '') return { ok: false, message: 'username is required' };
  const remarks = body['remarks'];
  if (typeof remarks !== 'string' || remarks.trim() === '') return { ok: false, message: 'remarks is required' };
  return { ok: true, value: { confirmationCode: code, amount: body['amount'], username, remarks } };
}
