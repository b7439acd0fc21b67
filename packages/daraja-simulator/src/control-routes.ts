/** Control API under /__sim/ (no auth: it is a local simulator) for Postman users and out-of-process tests. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { parseBehaviour } from './behaviour';
import { SimulatorError, type SimulatorCore } from './core';
import { parseFaults, parseResolveOptions } from './faults';
import { BodyTooLargeError, isPlainObject, readBody, sendJson } from './http';
import { parsePullControl } from './qr-pull';
import type { SimC2bPayment } from './c2b';
import type { SimResultControl, SimulatorAccount, SimulatorApp } from './types';

export const CONTROL_PREFIX = '/__sim';

/** Re-exported for callers that imported it from here. */
export { parseFaults };

function controlError(res: ServerResponse, status: number, message: string): void {
  sendJson(res, status, { error: message });
}

export class ControlRoutes {
  constructor(private readonly core: SimulatorCore) {}

  async handle(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const path = url.pathname.replace(/\/+$/, '');
    const method = req.method ?? 'GET';

    if (path === `${CONTROL_PREFIX}/state`) {
      if (method !== 'GET') return controlError(res, 405, 'use GET');
      return sendJson(res, 200, {
        pushes: this.core.listPushes(),
        queries: this.core.listQueries(),
        callbacks: this.core.listCallbacks(),
        stats: this.core.stats(),
        faults: this.core.currentFaults(),
        behaviour: this.core.behaviour(),
        injections: this.core.listInjections(),
      });
    }

    if (path === `${CONTROL_PREFIX}/behaviour`) {
      if (method === 'GET') return sendJson(res, 200, { behaviour: this.core.behaviour() });
      if (method !== 'POST') return controlError(res, 405, 'use GET or POST');
      const body = await this.jsonBody(req, res);
      if (!body.ok) return;
      const behaviour = parseBehaviour(body.value ?? {});
      if (!behaviour.ok) return controlError(res, 400, behaviour.message);
      this.core.setBehaviour(behaviour.value);
      return sendJson(res, 200, { behaviour: this.core.behaviour() });
    }

    if (path === `${CONTROL_PREFIX}/stats`) {
      if (method !== 'GET') return controlError(res, 405, 'use GET');
      return sendJson(res, 200, { stats: this.core.stats() });
    }

    if (path === `${CONTROL_PREFIX}/oauth-calls`) {
      if (method !== 'GET') return controlError(res, 405, 'use GET');
      return sendJson(res, 200, { oauthCalls: this.core.oauthCalls() });
    }

    if (path === `${CONTROL_PREFIX}/apps` || path === `${CONTROL_PREFIX}/accounts`) {
      const apps = path === `${CONTROL_PREFIX}/apps`;
      if (method === 'GET') {
        return sendJson(res, 200, apps ? { apps: this.core.listApps() } : { accounts: this.core.listAccounts() });
      }
      if (method !== 'POST') return controlError(res, 405, 'use GET or POST');
      const body = await this.jsonBody(req, res);
      if (!body.ok) return;
      try {
        if (apps) {
          const r = this.core.registerApp(body.value as SimulatorApp);
          return sendJson(res, r.outcome === 'created' ? 201 : 200, { outcome: r.outcome, app: r.value });
        }
        const r = this.core.registerAccount(body.value as SimulatorAccount);
        return sendJson(res, r.outcome === 'created' ? 201 : 200, { outcome: r.outcome, account: r.value });
      } catch (err: unknown) {
        if (err instanceof SimulatorError) return controlError(res, err.kind === 'conflict' ? 409 : 400, err.message);
        throw err;
      }
    }

    if (path === `${CONTROL_PREFIX}/reversals` || path === `${CONTROL_PREFIX}/status-queries`) {
      if (method !== 'GET') return controlError(res, 405, 'use GET');
      return path === `${CONTROL_PREFIX}/reversals`
        ? sendJson(res, 200, { reversals: this.core.results.listRequests('reversal') })
        : sendJson(res, 200, { statusQueries: this.core.results.listRequests('status') });
    }

    if (path === `${CONTROL_PREFIX}/results`) {
      if (method !== 'GET') return controlError(res, 405, 'use GET');
      return sendJson(res, 200, { results: this.core.results.listDeliveries() });
    }

    if (path === `${CONTROL_PREFIX}/result-controls`) {
      if (method !== 'POST') return controlError(res, 405, 'use POST');
      const body = await this.jsonBody(req, res);
      if (!body.ok) return;
      try {
        this.core.forceResult((body.value ?? {}) as SimResultControl);
      } catch (err: unknown) {
        if (err instanceof SimulatorError) return controlError(res, 400, err.message);
        throw err;
      }
      return sendJson(res, 201, { queued: true });
    }

    if (path === `${CONTROL_PREFIX}/injections`) {
      if (method !== 'GET') return controlError(res, 405, 'use GET');
      return sendJson(res, 200, { injections: this.core.listInjections() });
    }

    if (path === `${CONTROL_PREFIX}/prompts`) {
      if (method !== 'GET') return controlError(res, 405, 'use GET');
      const accountReference = url.searchParams.get('accountReference') ?? undefined;
      const phoneNumber = url.searchParams.get('phoneNumber') ?? undefined;
      try {
        return sendJson(res, 200, this.core.promptsFor({ accountReference, phoneNumber }));
      } catch (err: unknown) {
        if (err instanceof SimulatorError)
          return controlError(res, 400, 'give ?accountReference=… and/or ?phoneNumber=…');
        throw err;
      }
    }

    if (path === `${CONTROL_PREFIX}/faults`) {
      if (method !== 'POST') return controlError(res, 405, 'use POST (read the faults in force with GET /__sim/state)');
      const body = await this.jsonBody(req, res);
      if (!body.ok) return;
      const faults = parseFaults(body.value ?? {});
      if (!faults.ok) return controlError(res, 400, faults.message);
      this.core.setFaults(faults.value);
      return sendJson(res, 200, { faults: this.core.currentFaults() });
    }

    if (path === `${CONTROL_PREFIX}/pull-transactions`) {
      if (method === 'GET')
        return sendJson(res, 200, {
          registrations: this.core.qrPull.listRegistrations(),
          qrRequests: this.core.qrPull.listQrRequests(),
        });
      if (method !== 'POST') return controlError(res, 405, 'use GET or POST');
      const body = await this.jsonBody(req, res);
      if (!body.ok) return;
      try {
        const c = parsePullControl(body.value);
        if (c.pageSize !== undefined) this.core.qrPull.setPageSize(c.pageSize);
        const count = this.core.qrPull.addTransactions(c.shortcode, c.transactions);
        return sendJson(res, 201, { shortcode: c.shortcode, transactions: count });
      } catch (err: unknown) {
        if (err instanceof RangeError) return controlError(res, 400, err.message);
        throw err;
      }
    }
    if (path === `${CONTROL_PREFIX}/c2b` || path.startsWith(`${CONTROL_PREFIX}/c2b/`))
      return this.c2b(req, res, path, method);

    if (path === `${CONTROL_PREFIX}/reset`) {
      if (method !== 'POST') return controlError(res, 405, 'use POST');
      this.core.reset();
      return sendJson(res, 200, { reset: true });
    }

    const resolveMatch = /^\/__sim\/pushes\/([^/]+)\/resolve$/.exec(path);
    if (resolveMatch?.[1]) {
      if (method !== 'POST') return controlError(res, 405, 'use POST');
      const body = await this.jsonBody(req, res);
      if (!body.ok) return;
      const resultCode = isPlainObject(body.value) ? body.value['resultCode'] : undefined;
      if (typeof resultCode !== 'number') {
        return controlError(
          res,
          400,
          'body must be {"resultCode": <integer>, "callbackCopies"?: 0-10, "callbackDelayMs"?: ms, "duplicateGapMs"?: ms}',
        );
      }
      const options = parseResolveOptions(body.value, true);
      if (!options.ok) return controlError(res, 400, options.message);
      const checkoutRequestId = decodeURIComponent(resolveMatch[1]);
      try {
        await this.core.resolve(
          checkoutRequestId,
          resultCode,
          Object.keys(options.value).length ? options.value : undefined,
        );
      } catch (err: unknown) {
        if (err instanceof SimulatorError) {
          const status = { not_found: 404, already_answered: 409, invalid: 400, closed: 503, conflict: 409 }[err.kind];
          return controlError(res, status, err.message);
        }
        throw err;
      }
      return sendJson(res, 200, { push: this.core.getPush(checkoutRequestId) ?? null });
    }

    return controlError(res, 404, `unknown control route ${method} ${url.pathname}`);
  }

  /**
   * C2B: GET /__sim/c2b (registrations and payments made), POST /__sim/c2b/payments (a customer pays a till or
   * paybill from their phone: answers once the confirmations were delivered), POST /__sim/c2b/validation
   * {shortcode, enabled}, POST /__sim/c2b/settings {oneTimeRegistration?, stkConfirmations?: null|plain|masked|hashed}.
   */
  private async c2b(req: IncomingMessage, res: ServerResponse, path: string, method: string): Promise<void> {
    const c2b = this.core.c2b;
    if (path === `${CONTROL_PREFIX}/c2b`) {
      if (method !== 'GET') return controlError(res, 405, 'use GET');
      return sendJson(res, 200, {
        registrations: c2b.listRegistrations(),
        payments: c2b.payments(),
        oneTimeRegistration: c2b.oneTimeRegistration,
        stkConfirmations: c2b.stkConfirmations,
      });
    }
    if (method !== 'POST') return controlError(res, 405, 'use POST');
    const body = await this.jsonBody(req, res);
    if (!body.ok) return;
    const v = isPlainObject(body.value) ? body.value : {};
    if (path === `${CONTROL_PREFIX}/c2b/payments`) {
      try {
        return sendJson(res, 201, await c2b.pay(v as unknown as SimC2bPayment));
      } catch (err: unknown) {
        if (err instanceof RangeError) return controlError(res, 400, err.message);
        throw err;
      }
    }
    if (path === `${CONTROL_PREFIX}/c2b/validation`) {
      if (typeof v['shortcode'] !== 'string' || typeof v['enabled'] !== 'boolean')
        return controlError(res, 400, 'body must be {"shortcode": "<shortcode>", "enabled": true|false}');
      c2b.setValidation(v['shortcode'], v['enabled']);
      return sendJson(res, 200, { shortcode: v['shortcode'], validation: v['enabled'] });
    }
    if (path === `${CONTROL_PREFIX}/c2b/settings`) {
      if (v['oneTimeRegistration'] !== undefined) {
        if (typeof v['oneTimeRegistration'] !== 'boolean')
          return controlError(res, 400, 'oneTimeRegistration must be true or false');
        c2b.oneTimeRegistration = v['oneTimeRegistration'];
      }
      if (v['stkConfirmations'] !== undefined) {
        const form = v['stkConfirmations'];
        if (form !== null && form !== 'plain' && form !== 'masked' && form !== 'hashed')
          return controlError(res, 400, 'stkConfirmations must be null, "plain", "masked" or "hashed"');
        c2b.stkConfirmations = form;
      }
      return sendJson(res, 200, {
        oneTimeRegistration: c2b.oneTimeRegistration,
        stkConfirmations: c2b.stkConfirmations,
      });
    }
    return controlError(res, 404, `unknown control route ${method} ${path}`);
  }

  /** Parses an optional JSON body; answers the error itself and returns ok:false on failure. */
  private async jsonBody(
    req: IncomingMessage,
    res: ServerResponse,
  ): Promise<{ ok: true; value: unknown } | { ok: false }> {
    let raw: Buffer;
    try {
      raw = await readBody(req);
    } catch (err: unknown) {
      if (err instanceof BodyTooLargeError) {
        res.setHeader('Connection', 'close');
        controlError(res, 413, err.message);
        return { ok: false };
      }
      throw err;
    }
    const text = raw.toString('utf8').trim();
    if (text === '') return { ok: true, value: undefined };
    try {
      return { ok: true, value: JSON.parse(text) as unknown };
    } catch {
      controlError(res, 400, 'body is not valid JSON');
      return { ok: false };
    }
  }
}
