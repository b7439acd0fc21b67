/** The Daraja-facing endpoints: OAuth, STK push, STK query. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { EndpointKind, SimulatorCore } from './core';
import { ERRORS, transactionBeingProcessed, type DarajaError } from './errors';
import { BodyTooLargeError, isJsonContentType, parseJsonObject, readBody, sendDarajaError, sendEmpty, sendJson } from './http';
import { stkPushAccepted, stkQueryResult } from './payloads';
import { validatePush, validateQuery, type ValidationContext } from './validation';

export const OAUTH_PATH = '/oauth/v1/generate';
export const STK_PUSH_PATH = '/mpesa/stkpush/v1/processrequest';
export const STK_QUERY_PATH = '/mpesa/stkpushquery/v1/query';

const ROUTES: Readonly<Record<string, EndpointKind>> = Object.freeze({
  [OAUTH_PATH]: 'oauth',
  [STK_PUSH_PATH]: 'push',
  [STK_QUERY_PATH]: 'query',
});

const INVALID_CREDENTIALS_REASON = 'Bad Request: Invalid Credentials';

type BodyResult = { ok: true; body: Record<string, unknown> } | { ok: false; error: DarajaError };

export class DarajaRoutes {
  constructor(private readonly core: SimulatorCore) {}

  /** Handles any non-control path. */
  async handle(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const kind: EndpointKind | undefined = Object.prototype.hasOwnProperty.call(ROUTES, url.pathname) ? ROUTES[url.pathname] : undefined;
    if (kind) {
      this.core.countRequest(kind);
      // OAuth is slow before it answers. Push and query are slow *after* Daraja has acted on them
      // (a gateway timeout on the client's side does not undo the push): see slowAnswer().
      if (kind === 'oauth') {
        const latency = this.core.latencyFor(kind);
        if (latency > 0 && !(await this.core.delay(latency))) return;
      }
    }
    if (this.core.isDown()) return this.fail(req, res, ERRORS.serviceUnavailable);
    if (kind === 'oauth') return this.oauth(req, res, url);
    if (kind === 'push') return this.slowAnswer('push', res, () => this.stkPush(req, res));
    if (kind === 'query') return this.slowAnswer('query', res, () => this.stkQuery(req, res));
    return this.fail(req, res, ERRORS.resourceNotFound);
  }

  /**
   * Runs the handler (so the push is registered and the customer prompted), then holds the
   * answer back for the configured latency. A client that gave up meanwhile never sees it.
   */
  private async slowAnswer(kind: 'push' | 'query', res: ServerResponse, handler: () => Promise<void>): Promise<void> {
    const latency = this.core.latencyFor(kind);
    if (latency <= 0) return handler();
    const realWriteHead = res.writeHead.bind(res);
    const realEnd = res.end.bind(res);
    let held: { head: unknown[]; end: unknown[] } | undefined = { head: [], end: [] };
    res.writeHead = ((...args: unknown[]) => {
      if (held) held.head = args;
      return res;
    }) as typeof res.writeHead;
    res.end = ((...args: unknown[]) => {
      if (held) held.end = args;
      return res;
    }) as typeof res.end;
    await handler();
    const answer = held;
    held = undefined;
    res.writeHead = realWriteHead;
    res.end = realEnd;
    if (!(await this.core.delay(latency)) || res.destroyed) return;
    if (answer.head.length) (realWriteHead as (...a: unknown[]) => unknown)(...answer.head);
    (realEnd as (...a: unknown[]) => unknown)(...answer.end);
  }

  private oauth(req: IncomingMessage, res: ServerResponse, url: URL): void {
    if (req.method !== 'GET') return this.fail(req, res, ERRORS.methodNotAllowed);
    if (url.searchParams.get('grant_type') !== 'client_credentials') return this.fail(req, res, ERRORS.invalidGrantType);
    const match = /^Basic\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
    if (!match?.[1]) return this.fail(req, res, ERRORS.invalidAuthType);
    const decoded = Buffer.from(match[1], 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    const key = colon >= 0 ? decoded.slice(0, colon) : '';
    const secret = colon >= 0 ? decoded.slice(colon + 1) : '';
    if (colon < 0 || !this.core.credentialsMatch(key, secret)) {
      // Real Daraja: HTTP 400, empty body, reason phrase "Bad Request: Invalid Credentials".
      sendEmpty(res, 400, INVALID_CREDENTIALS_REASON);
      this.core.log(`GET ${OAUTH_PATH} -> 400 invalid credentials`);
      return;
    }
    sendJson(res, 200, this.core.issueToken(key));
    this.core.log(`GET ${OAUTH_PATH} -> 200 token issued`);
  }

  private async stkPush(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await this.productBody(req, 'push');
    if (!body.ok) return this.fail(req, res, body.error);
    const now = new Date();
    const valid = validatePush(body.body, this.context(now));
    if (!valid.ok) return this.fail(req, res, valid.error);
    const submitted = this.core.submitPush(valid.value, now);
    if (!submitted.ok) return this.fail(req, res, submitted.error);
    sendJson(res, 200, stkPushAccepted(submitted.push));
  }

  private async stkQuery(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await this.productBody(req, 'query');
    if (!body.ok) return this.fail(req, res, body.error);
    const valid = validateQuery(body.body, this.context(new Date()));
    if (!valid.ok) return this.fail(req, res, valid.error);
    const push = this.core.findPushForQuery(valid.value.shortcode, valid.value.checkoutRequestId);
    if (!push) return this.fail(req, res, ERRORS.transactionDoesNotExist);
    if (push.state !== 'answered') return this.fail(req, res, transactionBeingProcessed(push.checkoutRequestId));
    sendJson(res, 200, stkQueryResult(push));
    this.core.log(`POST ${STK_QUERY_PATH} -> 200 ${push.checkoutRequestId} ResultCode=${String(push.resultCode)}`);
  }

  /** Gateway checks shared by the product endpoints, in order: method, token, injected fault, content type, body. */
  private async productBody(req: IncomingMessage, kind: 'push' | 'query'): Promise<BodyResult> {
    if (req.method !== 'POST') return { ok: false, error: ERRORS.methodNotAllowed };
    const bearer = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
    if (!bearer?.[1] || !this.core.isTokenValid(bearer[1])) return { ok: false, error: ERRORS.invalidAccessToken };
    const injected = this.core.takeInjectedError(kind);
    if (injected) return { ok: false, error: injected };
    if (!isJsonContentType(req.headers['content-type'])) return { ok: false, error: ERRORS.missingJsonContentType };
    let raw: Buffer;
    try {
      raw = await readBody(req);
    } catch (err: unknown) {
      if (err instanceof BodyTooLargeError) return { ok: false, error: ERRORS.payloadTooLarge };
      throw err;
    }
    const body = parseJsonObject(raw);
    return body ? { ok: true, body } : { ok: false, error: ERRORS.invalidPayload };
  }

  private context(now: Date): ValidationContext {
    return {
      accounts: this.core.accounts,
      now,
      timestampToleranceSeconds: this.core.options.timestampToleranceSeconds,
    };
  }

  private fail(req: IncomingMessage, res: ServerResponse, error: DarajaError): void {
    if (error.status === 413) res.setHeader('Connection', 'close');
    sendDarajaError(res, error);
    this.core.log(`${req.method ?? '?'} ${(req.url ?? '').split('?')[0] ?? ''} -> ${error.status} ${error.errorCode} ${error.errorMessage}`);
  }
}
