/** Control API under /__sim/ (no auth: it is a local simulator) for Postman users and out-of-process tests. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { SimulatorError, type SimulatorCore } from './core';
import { BodyTooLargeError, isPlainObject, readBody, sendJson } from './http';
import type { SimFaultError, SimFaults } from './types';

export const CONTROL_PREFIX = '/__sim';

type Parsed<T> = { ok: true; value: T } | { ok: false; message: string };

const FAULT_KEYS = new Set(['down', 'latencyMs', 'pushErrors', 'queryErrors', 'invalidateTokens']);
const LATENCY_KEYS = new Set(['oauth', 'push', 'query']);

function parseFaultError(name: string, value: unknown): Parsed<SimFaultError> {
  if (!isPlainObject(value)) return { ok: false, message: `${name} must be an object` };
  const { count, status, errorCode, errorMessage } = value;
  if (typeof count !== 'number' || !Number.isInteger(count) || count < 0) return { ok: false, message: `${name}.count must be an integer >= 0` };
  if (typeof status !== 'number' || !Number.isInteger(status) || status < 100 || status > 599) {
    return { ok: false, message: `${name}.status must be an HTTP status (100-599)` };
  }
  if (typeof errorCode !== 'string') return { ok: false, message: `${name}.errorCode must be a string` };
  if (typeof errorMessage !== 'string') return { ok: false, message: `${name}.errorMessage must be a string` };
  return { ok: true, value: { count, status, errorCode, errorMessage } };
}

/** Strict parser for a SimFaults JSON body (unknown keys are rejected to catch typos). */
export function parseFaults(value: unknown): Parsed<SimFaults> {
  if (!isPlainObject(value)) return { ok: false, message: 'faults must be a JSON object' };
  const unknownKey = Object.keys(value).find((k) => !FAULT_KEYS.has(k));
  if (unknownKey) return { ok: false, message: `unknown fault "${unknownKey}"` };
  const faults: SimFaults = {};
  for (const flag of ['down', 'invalidateTokens'] as const) {
    const v = value[flag];
    if (v === undefined) continue;
    if (typeof v !== 'boolean') return { ok: false, message: `${flag} must be a boolean` };
    faults[flag] = v;
  }
  if (value['latencyMs'] !== undefined) {
    const latency = value['latencyMs'];
    if (!isPlainObject(latency)) return { ok: false, message: 'latencyMs must be an object' };
    const out: NonNullable<SimFaults['latencyMs']> = {};
    for (const [k, v] of Object.entries(latency)) {
      if (!LATENCY_KEYS.has(k)) return { ok: false, message: `unknown latencyMs key "${k}"` };
      if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) return { ok: false, message: `latencyMs.${k} must be a number >= 0` };
      out[k as keyof typeof out] = v;
    }
    faults.latencyMs = out;
  }
  for (const key of ['pushErrors', 'queryErrors'] as const) {
    if (value[key] === undefined) continue;
    const parsed = parseFaultError(key, value[key]);
    if (!parsed.ok) return parsed;
    faults[key] = parsed.value;
  }
  return { ok: true, value: faults };
}

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
        callbacks: this.core.listCallbacks(),
        stats: this.core.stats(),
        faults: this.core.currentFaults(),
      });
    }

    if (path === `${CONTROL_PREFIX}/faults`) {
      if (method !== 'POST') return controlError(res, 405, 'use POST');
      const body = await this.jsonBody(req, res);
      if (!body.ok) return;
      const faults = parseFaults(body.value ?? {});
      if (!faults.ok) return controlError(res, 400, faults.message);
      this.core.setFaults(faults.value);
      return sendJson(res, 200, { faults: this.core.currentFaults() });
    }

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
      if (typeof resultCode !== 'number') return controlError(res, 400, 'body must be {"resultCode": <integer>}');
      const checkoutRequestId = decodeURIComponent(resolveMatch[1]);
      try {
        await this.core.resolve(checkoutRequestId, resultCode);
      } catch (err: unknown) {
        if (err instanceof SimulatorError) {
          const status = { not_found: 404, already_answered: 409, invalid: 400, closed: 503 }[err.kind];
          return controlError(res, status, err.message);
        }
        throw err;
      }
      return sendJson(res, 200, { push: this.core.getPush(checkoutRequestId) ?? null });
    }

    return controlError(res, 404, `unknown control route ${method} ${url.pathname}`);
  }

  /** Parses an optional JSON body; answers the error itself and returns ok:false on failure. */
  private async jsonBody(req: IncomingMessage, res: ServerResponse): Promise<{ ok: true; value: unknown } | { ok: false }> {
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
