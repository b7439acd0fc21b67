/** The Daraja-facing endpoints: OAuth, STK push, STK query. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { EndpointFault, EndpointKind, PushRequestFields, SimulatorCore } from './core';
import { ERRORS, transactionBeingProcessed, type DarajaError } from './errors';
import {
  BodyTooLargeError,
  isJsonContentType,
  parseJsonObject,
  readBody,
  sendDarajaError,
  sendEmpty,
  sendJson,
} from './http';
import { stkPushAccepted, stkQueryResult, stkQueryStillProcessing } from './payloads';
import { QR_PULL_PATHS } from './qr-pull';
import { scenarioForPhone } from './scenarios';
import type { SimResultApi } from './types';
import { validatePush, validateQuery, type ValidationContext } from './validation';

export const OAUTH_PATH = '/oauth/v1/generate';
export const STK_PUSH_PATH = '/mpesa/stkpush/v1/processrequest';
export const STK_QUERY_PATH = '/mpesa/stkpushquery/v1/query';
export const REVERSAL_PATH = '/mpesa/reversal/v1/request';
export const TRANSACTION_STATUS_PATH = '/mpesa/transactionstatus/v1/query';

export const C2B_REGISTER_PATH = /^\/mpesa\/c2b\/(v1|v2)\/registerurl$/;

const RESULT_ROUTES: Readonly<Record<string, SimResultApi>> = Object.freeze({
  [REVERSAL_PATH]: 'reversal',
  [TRANSACTION_STATUS_PATH]: 'status',
});

const ROUTES: Readonly<Record<string, EndpointKind>> = Object.freeze({
  [OAUTH_PATH]: 'oauth',
  [STK_PUSH_PATH]: 'push',
  [STK_QUERY_PATH]: 'query',
});

const INVALID_CREDENTIALS_REASON = 'Bad Request: Invalid Credentials';

/** The raw request body, read up front so the push can be attributed whatever the gateway answers. */
type RawBody = { kind: 'ok'; raw: Buffer } | { kind: 'too_large' } | { kind: 'failed'; error: unknown };

/** What a product endpoint does with a call: answer it (after any latency), or never answer it. */
type Answer =
  | { kind: 'json'; status: number; body: unknown; log?: string }
  | { kind: 'error'; error: DarajaError }
  | { kind: 'hold'; holdMs: number };

type BodyResult = { ok: true; body: Record<string, unknown> } | { ok: false; error: DarajaError };

async function readRawBody(req: IncomingMessage): Promise<RawBody> {
  try {
    return { kind: 'ok', raw: await readBody(req) };
  } catch (error: unknown) {
    return error instanceof BodyTooLargeError ? { kind: 'too_large' } : { kind: 'failed', error };
  }
}

/** AccountReference / PhoneNumber as sent (number or string), before any validation. */
function pushFields(raw: RawBody): PushRequestFields {
  if (raw.kind !== 'ok') return {};
  const body = parseJsonObject(raw.raw);
  if (!body) return {};
  const text = (v: unknown): string | undefined =>
    typeof v === 'string' ? v : typeof v === 'number' && Number.isFinite(v) ? String(v) : undefined;
  const fields: PushRequestFields = {};
  const accountReference = text(body['AccountReference']);
  if (accountReference !== undefined) fields.accountReference = accountReference;
  const phoneNumber = text(body['PhoneNumber']);
  if (phoneNumber !== undefined) fields.phoneNumber = phoneNumber;
  return fields;
}

function errorAnswer(error: DarajaError): Answer {
  return { kind: 'error', error };
}

export class DarajaRoutes {
  constructor(private readonly core: SimulatorCore) {}

  /** Handles any non-control path. */
  async handle(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const kind: EndpointKind | undefined = Object.prototype.hasOwnProperty.call(ROUTES, url.pathname)
      ? ROUTES[url.pathname]
      : undefined;
    if (kind) {
      this.core.countRequest(kind);
      // OAuth is slow before it answers. Push and query are slow *after* Daraja has acted on them
      // (a gateway timeout on the client's side does not undo the push): see product().
      if (kind === 'oauth') {
        const latency = this.core.latencyFor(kind);
        if (latency > 0 && !(await this.core.delay(latency))) return;
      }
    }
    if (this.core.isDown()) return this.fail(req, res, ERRORS.serviceUnavailable);
    if (QR_PULL_PATHS.has(url.pathname)) return this.core.qrPull.handle(req, res, url.pathname);
    const resultApi = Object.prototype.hasOwnProperty.call(RESULT_ROUTES, url.pathname)
      ? RESULT_ROUTES[url.pathname]
      : undefined;
    if (resultApi) return this.resultApi(resultApi, req, res, url.pathname);
    const c2b = C2B_REGISTER_PATH.exec(url.pathname);
    if (c2b) return this.c2bRegister(c2b[1] as 'v1' | 'v2', req, res);
    if (kind === 'oauth') return this.oauth(req, res, url);
    if (kind === 'push' || kind === 'query') return this.product(kind, req, res);
    return this.fail(req, res, ERRORS.resourceNotFound);
  }

  /**
   * Push / query: works out the answer (so a push is registered and the customer prompted), then either
   * holds the connection without answering (timeout faults) or answers after the configured latency.
   * A client that gave up meanwhile never sees the answer.
   */
  private async product(kind: 'push' | 'query', req: IncomingMessage, res: ServerResponse): Promise<void> {
    const raw = await readRawBody(req);
    const answer = kind === 'push' ? this.stkPush(req, raw) : this.stkQuery(req, raw);
    if (answer.kind === 'hold') {
      this.core.log(
        `${req.method ?? '?'} ${kind === 'push' ? STK_PUSH_PATH : STK_QUERY_PATH} -> no answer (connection held ${answer.holdMs} ms, then dropped)`,
      );
      return this.core.holdConnection(res, answer.holdMs);
    }
    const latency = this.core.latencyFor(kind);
    if (latency > 0 && (!(await this.core.delay(latency)) || res.destroyed)) return;
    if (answer.kind === 'error') return this.fail(req, res, answer.error);
    sendJson(res, answer.status, answer.body);
    if (answer.log) this.core.log(answer.log);
  }

  private oauth(req: IncomingMessage, res: ServerResponse, url: URL): void {
    if (req.method !== 'GET') return this.fail(req, res, ERRORS.methodNotAllowed);
    if (url.searchParams.get('grant_type') !== 'client_credentials')
      return this.fail(req, res, ERRORS.invalidGrantType);
    const match = /^Basic\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
    if (!match?.[1]) return this.fail(req, res, ERRORS.invalidAuthType);
    const decoded = Buffer.from(match[1], 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    const key = colon >= 0 ? decoded.slice(0, colon) : '';
    const secret = colon >= 0 ? decoded.slice(colon + 1) : '';
    if (colon >= 0) this.core.countOAuthCall(key);
    if (colon < 0 || !this.core.credentialsMatch(key, secret)) {
      // Real Daraja: HTTP 400, empty body, reason phrase "Bad Request: Invalid Credentials".
      sendEmpty(res, 400, INVALID_CREDENTIALS_REASON);
      this.core.log(`GET ${OAUTH_PATH} -> 400 invalid credentials`);
      return;
    }
    sendJson(res, 200, this.core.issueToken(key));
    this.core.log(`GET ${OAUTH_PATH} -> 200 token issued`);
  }

  private stkPush(req: IncomingMessage, raw: RawBody): Answer {
    const fields = pushFields(raw);
    this.core.recordPushRequest(fields);
    const gate = this.gateway(req, 'push', fields.accountReference);
    if (gate.kind === 'error') return gate;
    const fault = gate.kind === 'pass' ? gate.fault : undefined;
    if (fault?.kind === 'timeout' && !fault.processed) {
      this.core.recordTimeout('push', { ...fault, accountReference: fields.accountReference });
      return { kind: 'hold', holdMs: fault.holdMs };
    }

    const answer = this.acceptPush(req, raw, gate.consumerKey);
    if (answer.kind === 'hold') return answer; // a magic-phone timeout, already recorded
    if (fault?.kind === 'timeout') {
      // Daraja acted on the push (or rejected it); only its answer is lost.
      const checkoutRequestId =
        answer.kind === 'json' ? (answer.body as { CheckoutRequestID?: string }).CheckoutRequestID : undefined;
      this.core.recordTimeout('push', { ...fault, accountReference: fields.accountReference, checkoutRequestId });
      return { kind: 'hold', holdMs: fault.holdMs };
    }
    return answer;
  }

  /** Content type, body, field validation, magic-phone timeouts and the push itself. */
  private acceptPush(req: IncomingMessage, raw: RawBody, consumerKey: string): Answer {
    const body = this.jsonBody(req, raw);
    if (!body.ok) return errorAnswer(body.error);
    const now = new Date();
    const valid = validatePush(body.body, this.context(now, consumerKey));
    if (!valid.ok) return errorAnswer(valid.error);
    this.noteSkew('push', valid.value.timestampSkewSeconds);

    const phoneTimeout = scenarioForPhone(valid.value.phoneNumber).timeout;
    const holdMs = this.core.timeoutHoldMs('push');
    if (phoneTimeout === 'unprocessed') {
      this.core.recordTimeout('push', {
        processed: false,
        holdMs,
        source: 'phone',
        accountReference: valid.value.accountReference,
      });
      return { kind: 'hold', holdMs };
    }
    const submitted = this.core.submitPush(valid.value, now);
    if (!submitted.ok) return errorAnswer(submitted.error);
    if (phoneTimeout === 'processed') {
      this.core.recordTimeout('push', {
        processed: true,
        holdMs,
        source: 'phone',
        accountReference: valid.value.accountReference,
        checkoutRequestId: submitted.push.checkoutRequestId,
      });
      return { kind: 'hold', holdMs };
    }
    return { kind: 'json', status: 200, body: stkPushAccepted(submitted.push) };
  }

  private stkQuery(req: IncomingMessage, raw: RawBody): Answer {
    const gate = this.gateway(req, 'query');
    if (gate.kind === 'error') return gate;
    const fault = gate.kind === 'pass' ? gate.fault : undefined;
    if (fault?.kind === 'timeout') {
      this.core.recordTimeout('query', fault);
      return { kind: 'hold', holdMs: fault.holdMs };
    }
    const body = this.jsonBody(req, raw);
    if (!body.ok) return errorAnswer(body.error);
    const now = new Date();
    const valid = validateQuery(body.body, this.context(now, gate.consumerKey));
    if (!valid.ok) return errorAnswer(valid.error);
    this.noteSkew('query', valid.value.timestampSkewSeconds);
    const push = this.core.findPushForQuery(valid.value.shortcode, valid.value.checkoutRequestId);
    if (!push) {
      this.core.recordQuery(valid.value, now, { answer: 'not_found' });
      return errorAnswer(ERRORS.transactionDoesNotExist);
    }
    if (push.state !== 'answered') {
      const form = this.core.pendingFormFor(push);
      this.core.recordQuery(valid.value, now, { answer: 'pending', pendingForm: form });
      if (form === 'result4999') {
        return {
          kind: 'json',
          status: 200,
          body: stkQueryStillProcessing(),
          log: `POST ${STK_QUERY_PATH} -> 200 ${push.checkoutRequestId} ResultCode=4999 (still under processing)`,
        };
      }
      return errorAnswer(transactionBeingProcessed(push.checkoutRequestId));
    }
    this.core.recordQuery(valid.value, now, { answer: 'final', resultCode: push.resultCode });
    return {
      kind: 'json',
      status: 200,
      body: stkQueryResult(push),
      log: `POST ${STK_QUERY_PATH} -> 200 ${push.checkoutRequestId} ResultCode=${String(push.resultCode)}`,
    };
  }

  /**
   * Reversal / Transaction Status: method, Bearer token, JSON body, then the Result API validates, records and
   * acknowledges the request (the Result follows asynchronously). The STK fault rates do not apply here.
   */
  private async resultApi(api: SimResultApi, req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    const raw = await readRawBody(req);
    if (req.method !== 'POST') return this.fail(req, res, ERRORS.methodNotAllowed);
    const bearer = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
    const consumerKey = bearer?.[1] ? this.core.tokenConsumerKey(bearer[1]) : undefined;
    if (consumerKey === undefined) return this.fail(req, res, ERRORS.invalidAccessToken);
    this.core.noteAuthorizedCall();
    if (!isJsonContentType(req.headers['content-type'])) return this.fail(req, res, ERRORS.invalidPayload);
    if (raw.kind === 'too_large') return this.fail(req, res, ERRORS.payloadTooLarge);
    if (raw.kind === 'failed') throw raw.error;
    const body = parseJsonObject(raw.raw);
    if (!body) return this.fail(req, res, ERRORS.invalidPayload);
    const answer = this.core.results.handle(api, body, consumerKey);
    if (!answer.ok) return this.fail(req, res, answer.error);
    sendJson(res, 200, answer.body);
    this.core.log(`POST ${path} -> 200 accepted ${answer.body.ConversationID}`);
  }

  /** C2B registerurl (v1 or v2): method, Bearer token, JSON body, then the C2B module registers the URLs. */
  private async c2bRegister(version: 'v1' | 'v2', req: IncomingMessage, res: ServerResponse): Promise<void> {
    const raw = await readRawBody(req);
    if (req.method !== 'POST') return this.fail(req, res, ERRORS.methodNotAllowed);
    const bearer = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
    if (!bearer?.[1] || this.core.tokenConsumerKey(bearer[1]) === undefined)
      return this.fail(req, res, ERRORS.invalidAccessToken);
    this.core.noteAuthorizedCall();
    if (!isJsonContentType(req.headers['content-type'])) return this.fail(req, res, ERRORS.invalidPayload);
    if (raw.kind === 'too_large') return this.fail(req, res, ERRORS.payloadTooLarge);
    if (raw.kind === 'failed') throw raw.error;
    const body = parseJsonObject(raw.raw);
    if (!body) return this.fail(req, res, ERRORS.invalidPayload);
    const answer = this.core.c2b.register(version, body);
    if (!answer.ok) return this.fail(req, res, answer.error);
    sendJson(res, 200, answer.body);
  }

  /**
   * Gateway checks shared by the product endpoints, in order: method, token, then injected faults
   * (canned errors, seeded errors/timeouts). Every authenticated call counts for tokenInvalidateEveryCalls.
   */
  private gateway(
    req: IncomingMessage,
    kind: 'push' | 'query',
    accountReference?: string,
  ):
    | { kind: 'error'; error: DarajaError }
    | { kind: 'pass'; consumerKey: string; fault?: Extract<EndpointFault, { kind: 'timeout' }> } {
    if (req.method !== 'POST') return { kind: 'error', error: ERRORS.methodNotAllowed };
    const bearer = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
    const consumerKey = bearer?.[1] ? this.core.tokenConsumerKey(bearer[1]) : undefined;
    if (consumerKey === undefined) return { kind: 'error', error: ERRORS.invalidAccessToken };
    this.core.noteAuthorizedCall();
    const fault = this.core.decideFault(kind, accountReference);
    if (fault?.kind === 'error') return { kind: 'error', error: fault.error };
    return { kind: 'pass', consumerKey, fault };
  }

  /** After the gateway: content type, body size, JSON object. */
  private jsonBody(req: IncomingMessage, raw: RawBody): BodyResult {
    if (!isJsonContentType(req.headers['content-type'])) return { ok: false, error: ERRORS.missingJsonContentType };
    if (raw.kind === 'too_large') return { ok: false, error: ERRORS.payloadTooLarge };
    if (raw.kind === 'failed') throw raw.error;
    const body = parseJsonObject(raw.raw);
    return body ? { ok: true, body } : { ok: false, error: ERRORS.invalidPayload };
  }

  private context(now: Date, consumerKey: string): ValidationContext {
    const { registry } = this.core;
    return {
      account: (shortcode) => registry.account(shortcode),
      consumerKey,
      appMayUse: (shortcode) => registry.appMayUse(consumerKey, shortcode),
      now,
      timestampToleranceSeconds: this.core.behaviour().timestampToleranceSeconds,
    };
  }

  /** Accepted, but worth a line: a Timestamp far from Nairobi now usually means a UTC (or server-local) clock. */
  private noteSkew(kind: 'push' | 'query', skewSeconds: number): void {
    if (Math.abs(skewSeconds) < 600) return;
    const hours = Math.round((Math.abs(skewSeconds) / 3600) * 10) / 10;
    this.core.log(
      `${kind} Timestamp is ${hours} h ${skewSeconds < 0 ? 'behind' : 'ahead of'} Nairobi time${Math.abs(skewSeconds + 10800) <= 120 ? ' (a UTC clock?)' : ''}; accepted`,
    );
  }

  private fail(req: IncomingMessage, res: ServerResponse, error: DarajaError): void {
    if (error.status === 413) res.setHeader('Connection', 'close');
    sendDarajaError(res, error);
    this.core.log(
      `${req.method ?? '?'} ${(req.url ?? '').split('?')[0] ?? ''} -> ${error.status} ${error.errorCode} ${error.errorMessage}`,
    );
  }
}
