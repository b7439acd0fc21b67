/** The Flutterwave v3 endpoints (Bearer secret key): payments, M-Pesa charge, verify, transactions, refunds. */
import type { IncomingMessage } from 'node:http';
import {
  BodyTooLargeError,
  bearerToken,
  isJsonContentType,
  isPlainObject,
  jsonReply,
  parseJson,
  readBody,
  type Reply,
} from '../shared/http';
import { FLW_LIST_PAGE_SIZE, FLW_NOT_FOUND_MESSAGE, type FlutterwaveCore } from './core';
import { errorBody, listItem, mpesaChargeData, pageInfo, refundData, success, verifyData } from './payloads';
import type { FlwEndpoint, FlwTransaction } from './types';
import { validateMpesaCharge, validatePayment } from './validation';

export type FlwApiAction =
  | { kind: 'payments' }
  | { kind: 'charges' }
  | { kind: 'verifyById'; id: string }
  | { kind: 'verifyByRef' }
  | { kind: 'listTransactions' }
  | { kind: 'resendHook'; id: string }
  | { kind: 'refund'; id: string }
  | { kind: 'listRefunds' }
  | { kind: 'getRefund'; id: string };

export interface FlwApiRoute {
  endpoint: Exclude<FlwEndpoint, 'checkout'>;
  method: 'GET' | 'POST';
  action: FlwApiAction;
}

/** Maps a /v3 path to its route (method not checked here). Trailing slashes are ignored. */
export function matchApiRoute(pathname: string): FlwApiRoute | undefined {
  const path = pathname.replace(/\/+$/, '');
  if (path === '/v3/payments') return { endpoint: 'payments', method: 'POST', action: { kind: 'payments' } };
  if (path === '/v3/charges') return { endpoint: 'charges', method: 'POST', action: { kind: 'charges' } };
  if (path === '/v3/transactions/verify_by_reference')
    return { endpoint: 'verify', method: 'GET', action: { kind: 'verifyByRef' } };
  if (path === '/v3/transactions')
    return { endpoint: 'transactions', method: 'GET', action: { kind: 'listTransactions' } };
  if (path === '/v3/refunds') return { endpoint: 'refunds', method: 'GET', action: { kind: 'listRefunds' } };
  let m = /^\/v3\/transactions\/([^/]+)\/verify$/.exec(path);
  if (m?.[1]) return { endpoint: 'verify', method: 'GET', action: { kind: 'verifyById', id: m[1] } };
  m = /^\/v3\/transactions\/([^/]+)\/resend-hook$/.exec(path);
  if (m?.[1]) return { endpoint: 'transactions', method: 'POST', action: { kind: 'resendHook', id: m[1] } };
  m = /^\/v3\/transactions\/([^/]+)\/refund$/.exec(path);
  if (m?.[1]) return { endpoint: 'refunds', method: 'POST', action: { kind: 'refund', id: m[1] } };
  m = /^\/v3\/refunds\/([^/]+)$/.exec(path);
  if (m?.[1]) return { endpoint: 'refunds', method: 'GET', action: { kind: 'getRefund', id: m[1] } };
  return undefined;
}

function flwError(status: number, message: string): Reply {
  return jsonReply(status, errorBody(message));
}

function numericId(raw: string): number | undefined {
  if (!/^\d{1,15}$/.test(raw)) return undefined;
  return Number(raw);
}

const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;

function parseDay(value: string | null, endOfDay: boolean): number | undefined | 'invalid' {
  if (value === null || value === '') return undefined;
  const m = DATE.exec(value);
  if (!m) return 'invalid';
  const t = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]));
  if (Number.isNaN(t) || new Date(t).toISOString().slice(0, 10) !== value) return 'invalid';
  return endOfDay ? t + 86_400_000 - 1 : t;
}

type BodyResult = { ok: true; body: Record<string, unknown> } | { ok: false; reply: Reply };

export class FlwApiRoutes {
  constructor(private readonly core: FlutterwaveCore) {}

  async handle(req: IncomingMessage, url: URL, route: FlwApiRoute): Promise<Reply> {
    const merchant = this.core.merchantFor(bearerToken(req.headers.authorization));
    this.core.recordCall({
      at: this.core.now(),
      endpoint: route.endpoint,
      method: req.method ?? 'GET',
      path: url.pathname + url.search,
      merchant: merchant ?? null,
    });
    if (merchant === undefined) {
      req.resume();
      return flwError(401, req.headers.authorization ? 'Invalid authorization key' : 'Authorization required');
    }
    const canned = this.core.takeCannedError(route.endpoint);
    if (canned && !canned.applied) {
      req.resume();
      return flwError(canned.status, canned.message);
    }
    const reply = await this.dispatch(req, url, route, merchant);
    return canned ? flwError(canned.status, canned.message) : reply;
  }

  private async dispatch(req: IncomingMessage, url: URL, route: FlwApiRoute, merchant: string): Promise<Reply> {
    const action = route.action;
    switch (action.kind) {
      case 'payments':
        return this.payments(req, merchant);
      case 'charges':
        return this.charges(req, url, merchant);
      case 'verifyById':
        return this.verifyById(action.id, merchant);
      case 'verifyByRef':
        return this.verifyByRef(url, merchant);
      case 'listTransactions':
        return this.listTransactions(url);
      case 'resendHook':
        return this.resendHook(action.id);
      case 'refund':
        return this.refund(req, action.id, merchant);
      case 'listRefunds':
        return this.listRefunds(url, merchant);
      case 'getRefund':
        return this.getRefund(action.id, merchant);
    }
  }

  /** JSON object body. A non-JSON Content-Type is read as an empty body (so validation reports the missing fields). */
  private async body(req: IncomingMessage): Promise<BodyResult> {
    let raw: Buffer;
    try {
      raw = await readBody(req);
    } catch (err: unknown) {
      if (err instanceof BodyTooLargeError)
        return {
          ok: false,
          reply: {
            ...flwError(413, 'Request body too large'),
            headers: { 'Content-Type': 'application/json; charset=utf-8', Connection: 'close' },
          },
        };
      throw err;
    }
    if (!isJsonContentType(req.headers['content-type'])) return { ok: true, body: {} };
    if (raw.length === 0) return { ok: true, body: {} };
    const parsed = parseJson(raw);
    if (!parsed.ok || !isPlainObject(parsed.value)) return { ok: false, reply: flwError(400, 'Invalid JSON payload') };
    return { ok: true, body: parsed.value };
  }

  private async payments(req: IncomingMessage, merchant: string): Promise<Reply> {
    const body = await this.body(req);
    if (!body.ok) return body.reply;
    const valid = validatePayment(body.body, this.core.secretKeyOf(merchant));
    if (!valid.ok) return flwError(400, valid.message);
    const created = this.core.createCheckout(valid.value, merchant);
    if (!created.ok) return flwError(created.status, created.message);
    return jsonReply(200, success('Hosted Link', { link: created.checkout.link }));
  }

  private async charges(req: IncomingMessage, url: URL, merchant: string): Promise<Reply> {
    const body = await this.body(req);
    if (!body.ok) return body.reply;
    const type = url.searchParams.get('type');
    if (type === null || type === '') return flwError(400, 'type is required');
    if (type !== 'mpesa')
      return flwError(400, `Charge type ${type} is not supported by the simulator (only type=mpesa)`);
    const valid = validateMpesaCharge(body.body);
    if (!valid.ok) return flwError(400, valid.message);
    const created = this.core.createMpesaCharge(valid.value, merchant);
    if (!created.ok) return flwError(created.status, created.message);
    return jsonReply(
      200,
      success('Charge initiated', mpesaChargeData(created.transaction, this.core.options.accountId)),
    );
  }

  private verified(tx: FlwTransaction | undefined): Reply {
    if (!tx) return flwError(400, FLW_NOT_FOUND_MESSAGE);
    return jsonReply(200, success('Transaction fetched successfully', verifyData(tx, this.core.options.accountId)));
  }

  private verifyById(rawId: string, merchant: string): Reply {
    const id = numericId(rawId);
    return this.verified(id === undefined ? undefined : this.core.getTransaction(id, merchant));
  }

  private verifyByRef(url: URL, merchant: string): Reply {
    const txRef = url.searchParams.get('tx_ref');
    if (txRef === null || txRef === '') return flwError(400, 'tx_ref is required');
    return this.verified(this.core.transactionForRef(txRef, merchant));
  }

  private page(url: URL): number | 'invalid' {
    const raw = url.searchParams.get('page');
    if (raw === null || raw === '') return 1;
    return /^[1-9]\d{0,5}$/.test(raw) ? Number(raw) : 'invalid';
  }

  private listTransactions(url: URL): Reply {
    const from = parseDay(url.searchParams.get('from'), false);
    const to = parseDay(url.searchParams.get('to'), true);
    if (from === 'invalid' || to === 'invalid')
      return flwError(400, 'from and to must be dates in the format YYYY-MM-DD');
    const page = this.page(url);
    if (page === 'invalid') return flwError(400, 'page must be a positive whole number');
    const status = url.searchParams.get('status');
    const txRef = url.searchParams.get('tx_ref');
    const currency = url.searchParams.get('currency');
    const email = url.searchParams.get('customer_email');
    const rows = this.core
      .listTransactions()
      .filter(
        (t) =>
          (from === undefined || t.createdAt.getTime() >= from) && (to === undefined || t.createdAt.getTime() <= to),
      )
      .filter((t) => !status || t.status === status)
      .filter((t) => !txRef || t.txRef === txRef)
      .filter((t) => !currency || t.currency === currency)
      .filter((t) => !email || t.customer.email === email)
      .sort((a, b) => b.id - a.id);
    const slice = rows.slice((page - 1) * FLW_LIST_PAGE_SIZE, page * FLW_LIST_PAGE_SIZE);
    return jsonReply(
      200,
      success(
        'Transactions fetched',
        slice.map((t) => listItem(t, this.core.options.accountId)),
        pageInfo(rows.length, page, FLW_LIST_PAGE_SIZE),
      ),
    );
  }

  private resendHook(rawId: string): Reply {
    const id = numericId(rawId);
    if (id === undefined) return flwError(400, FLW_NOT_FOUND_MESSAGE);
    const result = this.core.resendHook(id);
    if (!result.ok) return flwError(result.status, result.message);
    return jsonReply(200, success('hook sent successfully', 'hook sent'));
  }

  private async refund(req: IncomingMessage, rawId: string, merchant: string): Promise<Reply> {
    const body = await this.body(req);
    if (!body.ok) return body.reply;
    const id = numericId(rawId);
    if (id === undefined) return flwError(400, FLW_NOT_FOUND_MESSAGE);
    const result = this.core.refund(id, body.body['amount'], body.body['comments'], merchant);
    if (!result.ok) return flwError(result.status, result.message);
    return jsonReply(
      200,
      success('Transaction refund initiated', refundData(result.refund, this.core.options.accountId)),
    );
  }

  private listRefunds(url: URL, merchant: string): Reply {
    const from = parseDay(url.searchParams.get('from'), false);
    const to = parseDay(url.searchParams.get('to'), true);
    if (from === 'invalid' || to === 'invalid')
      return flwError(400, 'from and to must be dates in the format YYYY-MM-DD');
    const page = this.page(url);
    if (page === 'invalid') return flwError(400, 'page must be a positive whole number');
    const rows = this.core
      .listRefunds(merchant)
      .filter(
        (r) =>
          (from === undefined || r.createdAt.getTime() >= from) && (to === undefined || r.createdAt.getTime() <= to),
      )
      .sort((a, b) => b.id - a.id);
    const slice = rows.slice((page - 1) * FLW_LIST_PAGE_SIZE, page * FLW_LIST_PAGE_SIZE);
    return jsonReply(
      200,
      success(
        'Refunds fetched',
        slice.map((r) => refundData(r, this.core.options.accountId)),
        pageInfo(rows.length, page, FLW_LIST_PAGE_SIZE),
      ),
    );
  }

  /** Another merchant's refund does not exist for this key (as for transactions). */
  private getRefund(rawId: string, merchant: string): Reply {
    const id = numericId(rawId);
    const refund = id === undefined ? undefined : this.core.getRefund(id, merchant);
    if (!refund) return flwError(400, 'No refund was found for this id');
    return jsonReply(200, success('Refund fetched', refundData(refund, this.core.options.accountId)));
  }
}
