/** Flutterwave v3 JSON shapes: verify `data`, webhooks (v3 envelope, legacy flat, refund), refunds, lists. */
import { currencyExponent, minorToMajorNumber } from '../shared/money';
import { isoMillis } from '../shared/time';
import type { FlwCustomer, FlwRefund, FlwTransaction } from './types';

export interface FlwEnvelope {
  status: 'success' | 'error';
  message: string;
  data: unknown;
  meta?: unknown;
}

export function success(message: string, data: unknown, meta?: unknown): FlwEnvelope {
  return meta === undefined ? { status: 'success', message, data } : { status: 'success', message, meta, data };
}

export function errorBody(message: string): FlwEnvelope {
  return { status: 'error', message, data: null };
}

function major(minor: bigint, currency: string): number {
  return minorToMajorNumber(minor, currencyExponent(currency) ?? 2);
}

function customerJson(c: FlwCustomer): Record<string, unknown> {
  return {
    id: c.id,
    name: c.name ?? 'Anonymous customer',
    phone_number: c.phoneNumber ?? 'N/A',
    email: c.email,
    created_at: isoMillis(c.createdAt),
  };
}

export function amountSettledMinor(t: FlwTransaction): bigint {
  return t.amountMinor - t.appFeeMinor;
}

/** `data` of GET /v3/transactions/:id/verify and verify_by_reference. */
export function verifyData(t: FlwTransaction, accountId: number): Record<string, unknown> {
  const data: Record<string, unknown> = {
    id: t.id,
    tx_ref: t.txRef,
    flw_ref: t.flwRef,
    device_fingerprint: 'N/A',
    amount: major(t.amountMinor, t.currency),
    currency: t.currency,
    charged_amount: major(t.chargedAmountMinor, t.currency),
    app_fee: major(t.appFeeMinor, t.currency),
    merchant_fee: 0,
    processor_response: t.processorResponse,
    auth_model: t.authModel,
    ip: '127.0.0.1',
    narration: t.narration,
    status: t.status,
    payment_type: t.paymentType,
    created_at: isoMillis(t.createdAt),
    account_id: accountId,
  };
  if (t.card) data['card'] = { ...t.card };
  data['meta'] = t.meta ? structuredClone(t.meta) : null;
  data['amount_settled'] = major(amountSettledMinor(t), t.currency);
  data['customer'] = customerJson(t.customer);
  return data;
}

/** Initial answer of POST /v3/charges?type=mpesa. */
export function mpesaChargeData(t: FlwTransaction, accountId: number): Record<string, unknown> {
  return {
    id: t.id,
    tx_ref: t.txRef,
    flw_ref: t.flwRef,
    device_fingerprint: 'N/A',
    amount: major(t.amountMinor, t.currency),
    charged_amount: major(t.chargedAmountMinor, t.currency),
    app_fee: major(t.appFeeMinor, t.currency),
    merchant_fee: 0,
    processor_response: t.processorResponse,
    auth_model: t.authModel,
    currency: t.currency,
    ip: '127.0.0.1',
    narration: t.narration,
    status: t.status,
    auth_url: 'N/A',
    payment_type: t.paymentType,
    fraud_status: 'ok',
    charge_type: 'normal',
    created_at: isoMillis(t.createdAt),
    account_id: accountId,
    customer: customerJson(t.customer),
  };
}

function eventType(t: FlwTransaction): string {
  return t.paymentType === 'mpesa' ? 'MPESA_TRANSACTION' : 'CARD_TRANSACTION';
}

/** (a) v3 enveloped `charge.completed` (success and failure alike; the outcome is in data.status). */
export function v3ChargeWebhook(t: FlwTransaction, accountId: number, includeMeta: boolean): Record<string, unknown> {
  const data: Record<string, unknown> = {
    id: t.id,
    tx_ref: t.txRef,
    flw_ref: t.flwRef,
    device_fingerprint: 'N/A',
    amount: major(t.amountMinor, t.currency),
    currency: t.currency,
    charged_amount: major(t.chargedAmountMinor, t.currency),
    app_fee: major(t.appFeeMinor, t.currency),
    merchant_fee: 0,
    processor_response: t.processorResponse,
    auth_model: t.authModel,
    ip: '127.0.0.1',
    narration: t.narration,
    status: t.status,
    payment_type: t.paymentType,
    created_at: isoMillis(t.createdAt),
    account_id: accountId,
    customer: customerJson(t.customer),
  };
  if (t.card) data['card'] = { ...t.card };
  const body: Record<string, unknown> = { event: 'charge.completed', data };
  if (includeMeta && t.meta) body['meta_data'] = structuredClone(t.meta);
  body['event.type'] = eventType(t);
  return body;
}

/** (b) legacy flat camelCase shape (no envelope), still seen from the sandbox and some payment methods. */
export function legacyChargeWebhook(t: FlwTransaction, accountId: number): Record<string, unknown> {
  const created = isoMillis(t.createdAt);
  return {
    id: t.id,
    txRef: t.txRef,
    flwRef: t.flwRef,
    orderRef: `URF_${t.createdAt.getTime()}_${t.id}`,
    paymentPlan: null,
    paymentPage: null,
    createdAt: created,
    amount: major(t.amountMinor, t.currency),
    charged_amount: major(t.chargedAmountMinor, t.currency),
    status: t.status,
    IP: '127.0.0.1',
    currency: t.currency,
    appfee: major(t.appFeeMinor, t.currency),
    merchantfee: 0,
    merchantbearsfee: 1,
    customer: {
      id: t.customer.id,
      phone: t.customer.phoneNumber,
      fullName: t.customer.name ?? 'Anonymous customer',
      customertoken: null,
      email: t.customer.email,
      createdAt: isoMillis(t.customer.createdAt),
      updatedAt: isoMillis(t.customer.createdAt),
      deletedAt: null,
      AccountId: accountId,
    },
    entity: t.card
      ? {
          card6: t.card.first_6digits,
          card_last4: t.card.last_4digits,
          card_country_iso: t.card.country,
          createdAt: created,
        }
      : { id: t.customer.id, createdAt: created },
    'event.type': eventType(t),
  };
}

/** `data` of POST /v3/transactions/:id/refund and GET /v3/refunds[/:id]. */
export function refundData(r: FlwRefund, accountId: number): Record<string, unknown> {
  return {
    id: r.id,
    account_id: accountId,
    tx_id: r.txId,
    flw_ref: r.flwRef,
    wallet_id: r.walletId,
    amount_refunded: major(r.amountMinor, r.currency),
    status: r.status,
    destination: 'payment_source',
    meta: { source: 'availablebalance' },
    created_at: isoMillis(r.createdAt),
  };
}

/** (c) refund webhook: flat, PascalCase, `meta` as a JSON string. */
export function refundWebhook(r: FlwRefund, accountId: number): Record<string, unknown> {
  return {
    id: r.id,
    AmountRefunded: major(r.amountMinor, r.currency),
    status: r.status,
    FlwRef: r.flwRef,
    destination: 'payment_source',
    comments: r.comments,
    settlement_id: 'NEW',
    meta: JSON.stringify({ source: 'availablebalance' }),
    createdAt: isoMillis(r.createdAt),
    updatedAt: isoMillis(r.updatedAt),
    walletId: r.walletId,
    AccountId: accountId,
    TransactionId: r.txId,
  };
}

/** One row of GET /v3/transactions (ids and account_id are strings there, as in the official sample). */
export function listItem(t: FlwTransaction, accountId: number): Record<string, unknown> {
  const item: Record<string, unknown> = {
    id: String(t.id),
    tx_ref: t.txRef,
    flw_ref: t.flwRef,
    device_fingerprint: 'N/A',
    amount: major(t.amountMinor, t.currency),
    currency: t.currency,
    charged_amount: major(t.chargedAmountMinor, t.currency),
    app_fee: major(t.appFeeMinor, t.currency),
    merchant_fee: 0,
    processor_response: t.processorResponse,
    auth_model: t.authModel,
    ip: '127.0.0.1',
    narration: t.narration,
    status: t.status,
    payment_type: t.paymentType,
    created_at: isoMillis(t.createdAt),
    amount_settled: t.status === 'successful' ? major(amountSettledMinor(t), t.currency) : null,
  };
  if (t.card) item['card'] = { ...t.card };
  item['customer_name'] = t.customer.name ?? 'Anonymous customer';
  item['customer_email'] = t.customer.email;
  item['account_id'] = String(accountId);
  return item;
}

export function pageInfo(total: number, page: number, pageSize: number): Record<string, unknown> {
  return { page_info: { total, current_page: page, total_pages: Math.ceil(total / pageSize) } };
}
