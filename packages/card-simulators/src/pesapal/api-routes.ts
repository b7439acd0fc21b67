/** The Pesapal API 3.0 endpoints. Paths are matched case-insensitively (ASP.NET), with or without a /pesapalv3 or /v3 prefix. */
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
import type { PesapalCore } from './core';
import {
  errorResponse,
  invalidCredentialsResponse,
  invalidTokenResponse,
  ipnListItem,
  ipnRegistrationResponse,
  statusMessage,
  submitOrderResponse,
  tokenResponse,
  transactionStatusResponse,
} from './payloads';
import type { PesapalApiCall, PesapalEndpoint } from './types';
import { validateIpn, validateOrder, validateRefund, type PesapalErrorObject } from './validation';

export type PesapalApiAction = 'token' | 'registerIpn' | 'ipnList' | 'submit' | 'status' | 'refund' | 'cancel';

export interface PesapalApiRoute {
  endpoint: Exclude<PesapalEndpoint, 'checkout'>;
  method: 'GET' | 'POST';
  action: PesapalApiAction;
}

const ROUTES: Readonly<Record<string, PesapalApiRoute>> = Object.freeze({
  '/api/auth/requesttoken': { endpoint: 'token', method: 'POST', action: 'token' },
  '/api/urlsetup/registeripn': { endpoint: 'ipn', method: 'POST', action: 'registerIpn' },
  '/api/urlsetup/getipnlist': { endpoint: 'ipn', method: 'GET', action: 'ipnList' },
  '/api/transactions/submitorderrequest': { endpoint: 'submit', method: 'POST', action: 'submit' },
  '/api/transactions/gettransactionstatus': { endpoint: 'status', method: 'GET', action: 'status' },
  '/api/transactions/refundrequest': { endpoint: 'refund', method: 'POST', action: 'refund' },
  '/api/transactions/cancelorder': { endpoint: 'cancel', method: 'POST', action: 'cancel' },
} satisfies Record<string, PesapalApiRoute>);

/** `/pesapalv3/api/Auth/RequestToken`, `/v3/api/...` and `/api/...` all map to the same route. */
export function matchPesapalApiRoute(pathname: string): PesapalApiRoute | undefined {
  const normalised = pathname
    .toLowerCase()
    .replace(/\/+$/, '')
    .replace(/^\/(pesapalv3|v3)(?=\/api\/)/, '');
  return Object.prototype.hasOwnProperty.call(ROUTES, normalised) ? ROUTES[normalised] : undefined;
}

export function isPesapalApiPath(pathname: string): boolean {
  return /^\/((pesapalv3|v3)\/)?api(\/|$)/i.test(pathname);
}

/** ASP.NET Web API's own answers for unknown resources / wrong verbs. */
export function aspNetNotFound(url: string): Reply {
  return jsonReply(404, { Message: `No HTTP resource was found that matches the request URI '${url}'.` });
}

export function aspNetMethodNotAllowed(method: string): Reply {
  return jsonReply(
    405,
    { Message: `The requested resource does not support http method '${method}'.` },
    'application/json; charset=utf-8',
    { Allow: method === 'GET' ? 'POST' : 'GET' },
  );
}

type BodyResult =
  { ok: true; body: Record<string, unknown> } | { ok: false; error: PesapalErrorObject; status?: number };

/** Case-insensitive query parameter (ASP.NET model binding). */
function queryParam(url: URL, name: string): string | null {
  for (const [k, v] of url.searchParams) if (k.toLowerCase() === name.toLowerCase()) return v;
  return null;
}

export class PesapalApiRoutes {
  constructor(private readonly core: PesapalCore) {}

  async handle(req: IncomingMessage, url: URL, route: PesapalApiRoute): Promise<Reply> {
    const merchant =
      route.action === 'token' ? undefined : this.core.tokenMerchant(bearerToken(req.headers.authorization));
    const call = {
      at: this.core.now(),
      endpoint: route.endpoint,
      method: req.method ?? 'GET',
      path: url.pathname + url.search,
      merchant: merchant ?? null,
    };
    // RequestToken is recorded when its body has been read (whose credentials it carried).
    if (route.action !== 'token') this.core.recordCall(call);
    if (route.action !== 'token' && merchant === undefined) {
      req.resume();
      return jsonReply(401, invalidTokenResponse(), 'application/json; charset=utf-8', {
        'WWW-Authenticate': 'Bearer error="invalid_token"',
      });
    }
    const canned = this.core.takeCannedError(route.endpoint);
    const cannedReply = (): Reply => {
      if (!canned) throw new Error('unreachable');
      const body =
        route.action === 'refund' || route.action === 'cancel'
          ? statusMessage(false, canned.message)
          : errorResponse({ error_type: canned.errorType ?? 'api_error', code: canned.code, message: canned.message });
      return jsonReply(canned.httpStatus ?? 200, body);
    };
    if (canned && !canned.applied) {
      req.resume();
      return cannedReply();
    }
    const reply = await this.dispatch(req, url, route, merchant as string, call);
    return canned ? cannedReply() : reply;
  }

  private async dispatch(
    req: IncomingMessage,
    url: URL,
    route: PesapalApiRoute,
    merchant: string,
    call: PesapalApiCall,
  ): Promise<Reply> {
    switch (route.action) {
      case 'token':
        return this.token(req, call);
      case 'registerIpn':
        return this.registerIpn(req, merchant);
      case 'ipnList':
        return jsonReply(200, this.core.listIpns(merchant).map(ipnListItem));
      case 'submit':
        return this.submit(req, merchant);
      case 'status':
        return this.status(url, merchant);
      case 'refund':
        return this.refund(req, merchant);
      case 'cancel':
        return this.cancel(req, merchant);
    }
  }

  private async body(req: IncomingMessage): Promise<BodyResult> {
    let raw: Buffer;
    try {
      raw = await readBody(req);
    } catch (err: unknown) {
      if (err instanceof BodyTooLargeError)
        return {
          ok: false,
          error: { error_type: 'invalid_request_error', code: 'request_too_large', message: err.message },
          status: 413,
        };
      throw err;
    }
    if (!isJsonContentType(req.headers['content-type'])) {
      return {
        ok: false,
        error: {
          error_type: 'invalid_request_error',
          code: 'invalid_api_request_parameters',
          message: 'Send the request as JSON with Content-Type: application/json',
        },
      };
    }
    const parsed = parseJson(raw);
    if (!parsed.ok || !isPlainObject(parsed.value)) {
      return {
        ok: false,
        error: {
          error_type: 'invalid_request_error',
          code: 'invalid_api_request_parameters',
          message: 'The request body is not a valid JSON object',
        },
      };
    }
    return { ok: true, body: parsed.value };
  }

  private async token(req: IncomingMessage, call: PesapalApiCall): Promise<Reply> {
    const body = await this.body(req);
    const merchant = body.ok
      ? this.core.merchantForCredentials(body.body['consumer_key'], body.body['consumer_secret'])
      : undefined;
    this.core.recordCall({ ...call, merchant: merchant ?? null });
    if (!body.ok) return jsonReply(body.status ?? 200, errorResponse(body.error));
    if (this.core.settings().rejectAuthorizationHeaderOnToken && req.headers.authorization !== undefined) {
      this.core.log(
        'RequestToken refused: the request carried an Authorization header (send the key/secret in the JSON body only)',
      );
      return jsonReply(200, invalidCredentialsResponse());
    }
    if (merchant === undefined) return jsonReply(200, invalidCredentialsResponse());
    const issued = this.core.issueToken(merchant);
    return jsonReply(200, tokenResponse(issued.token, issued.expiresAt));
  }

  private async registerIpn(req: IncomingMessage, merchant: string): Promise<Reply> {
    const body = await this.body(req);
    if (!body.ok) return jsonReply(body.status ?? 200, errorResponse(body.error));
    const valid = validateIpn(body.body);
    if (!valid.ok) return jsonReply(200, errorResponse(valid.error));
    return jsonReply(200, ipnRegistrationResponse(this.core.registerIpn(valid.value, merchant)));
  }

  private async submit(req: IncomingMessage, merchant: string): Promise<Reply> {
    const body = await this.body(req);
    if (!body.ok) return jsonReply(body.status ?? 200, errorResponse(body.error));
    const valid = validateOrder(body.body, this.core.options.currencies);
    if (!valid.ok) return jsonReply(200, errorResponse(valid.error));
    const result = this.core.submitOrder(valid.value, merchant);
    if (!result.ok)
      return jsonReply(
        200,
        errorResponse({ error_type: 'invalid_request_error', code: result.code, message: result.message }),
      );
    return jsonReply(200, submitOrderResponse(result.order));
  }

  private status(url: URL, merchant: string): Reply {
    const trackingId = queryParam(url, 'orderTrackingId');
    if (trackingId === null || trackingId === '') {
      return jsonReply(
        200,
        errorResponse({
          error_type: 'invalid_request_error',
          code: 'invalid_api_request_parameters',
          message: 'orderTrackingId is required',
        }),
      );
    }
    const order = this.core.orderByTrackingId(trackingId, merchant);
    if (!order) {
      return jsonReply(
        200,
        errorResponse({
          error_type: 'api_error',
          code: 'payment_details_not_found',
          message: 'No order was found for the orderTrackingId provided',
        }),
      );
    }
    return jsonReply(200, transactionStatusResponse(order, this.core.settings().statusDescriptionStyle));
  }

  private async refund(req: IncomingMessage, merchant: string): Promise<Reply> {
    const body = await this.body(req);
    if (!body.ok) return jsonReply(body.status ?? 200, statusMessage(false, body.error.message));
    const valid = validateRefund(body.body);
    if (!valid.ok) return jsonReply(200, statusMessage(false, valid.message));
    const v = valid.value;
    const result = this.core.requestRefund(v.confirmationCode, v.amount, v.username, v.remarks, merchant);
    return jsonReply(200, statusMessage(result.ok, result.message));
  }

  private async cancel(req: IncomingMessage, merchant: string): Promise<Reply> {
    const body = await this.body(req);
    if (!body.ok) return jsonReply(body.status ?? 200, statusMessage(false, body.error.message));
    const result = this.core.cancelOrder(body.body['order_tracking_id'], merchant);
    return jsonReply(200, statusMessage(result.ok, result.message));
  }
}
