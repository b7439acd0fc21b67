/** Control API under /__sim (no auth: local simulator only) for out-of-process tests and manual runs. */
import type { IncomingMessage } from 'node:http';
import {
  CONTROL_PREFIX,
  controlError,
  decodeSegment,
  parseLatency,
  parseNonNegativeInt,
  parseNotificationFaults,
  readControlJson,
  rejectUnknownKeys,
  simulatorErrorReply,
  type Parsed,
} from '../shared/control';
import { isPlainObject, jsonReply, type Reply } from '../shared/http';
import type { PesapalCore } from './core';
import {
  PESAPAL_ENDPOINTS,
  PESAPAL_PAYMENT_METHODS,
  type PesapalCannedError,
  type PesapalFaults,
  type PesapalOutcome,
  type PesapalPaymentMethod,
  type PesapalSettlement,
  type PesapalTamper,
} from './types';

const ERROR_ENDPOINTS = ['token', 'ipn', 'submit', 'status', 'refund', 'cancel'] as const;
const OUTCOMES: readonly PesapalOutcome[] = ['completed', 'failed', 'pending', 'cancelled'];

function parseCanned(name: string, value: unknown): Parsed<PesapalCannedError> {
  if (!isPlainObject(value)) return { ok: false, message: `${name} must be an object` };
  const keys = rejectUnknownKeys(name, value, ['count', 'code', 'message', 'errorType', 'httpStatus', 'applied']);
  if (!keys.ok) return keys;
  const count = parseNonNegativeInt(`${name}.count`, value['count'], 1_000_000);
  if (!count.ok) return count;
  if (typeof value['code'] !== 'string' || value['code'] === '')
    return { ok: false, message: `${name}.code must be a non-empty string` };
  if (typeof value['message'] !== 'string') return { ok: false, message: `${name}.message must be a string` };
  const out: PesapalCannedError = { count: count.value, code: value['code'], message: value['message'] };
  if (value['errorType'] !== undefined) {
    if (typeof value['errorType'] !== 'string') return { ok: false, message: `${name}.errorType must be a string` };
    out.errorType = value['errorType'];
  }
  if (value['httpStatus'] !== undefined) {
    const s = value['httpStatus'];
    if (typeof s !== 'number' || !Number.isInteger(s) || s < 200 || s > 599)
      return { ok: false, message: `${name}.httpStatus must be an HTTP status (200-599)` };
    out.httpStatus = s;
  }
  if (value['applied'] !== undefined) {
    if (typeof value['applied'] !== 'boolean') return { ok: false, message: `${name}.applied must be a boolean` };
    if (value['applied']) out.applied = true;
  }
  return { ok: true, value: out };
}

/** Strict parser for a PesapalFaults JSON body (unknown keys are rejected to catch typos). */
export function parsePesapalFaults(value: unknown): Parsed<PesapalFaults> {
  if (!isPlainObject(value)) return { ok: false, message: 'faults must be a JSON object' };
  const keys = rejectUnknownKeys('fault', value, [
    'down',
    'cloudflareBlocks',
    'latencyMs',
    'errors',
    'ipns',
    'invalidateTokens',
  ]);
  if (!keys.ok) return keys;
  const faults: PesapalFaults = {};
  for (const flag of ['down', 'invalidateTokens'] as const) {
    if (value[flag] === undefined) continue;
    if (typeof value[flag] !== 'boolean') return { ok: false, message: `${flag} must be a boolean` };
    faults[flag] = value[flag];
  }
  if (value['cloudflareBlocks'] !== undefined) {
    const n = parseNonNegativeInt('cloudflareBlocks', value['cloudflareBlocks'], 1_000_000);
    if (!n.ok) return n;
    faults.cloudflareBlocks = n.value;
  }
  if (value['latencyMs'] !== undefined) {
    const latency = parseLatency(value['latencyMs'], PESAPAL_ENDPOINTS);
    if (!latency.ok) return latency;
    faults.latencyMs = latency.value;
  }
  if (value['errors'] !== undefined) {
    const errors = value['errors'];
    if (!isPlainObject(errors)) return { ok: false, message: 'errors must be an object' };
    const unknown = rejectUnknownKeys('errors', errors, ERROR_ENDPOINTS);
    if (!unknown.ok) return unknown;
    faults.errors = {};
    for (const endpoint of ERROR_ENDPOINTS) {
      if (errors[endpoint] === undefined) continue;
      const canned = parseCanned(`errors.${endpoint}`, errors[endpoint]);
      if (!canned.ok) return canned;
      faults.errors[endpoint] = canned.value;
    }
  }
  if (value['ipns'] !== undefined) {
    const ipns = parseNotificationFaults('ipns', value['ipns']);
    if (!ipns.ok) return ipns;
    faults.ipns = ipns.value;
  }
  return { ok: true, value: faults };
}

export function parsePesapalSettlement(value: unknown): Parsed<PesapalSettlement> {
  if (typeof value === 'string') value = { outcome: value };
  if (!isPlainObject(value))
    return { ok: false, message: 'body must be {"outcome": "completed"|"failed"|"pending"|"cancelled", ...}' };
  const keys = rejectUnknownKeys('settlement', value, [
    'outcome',
    'paymentMethod',
    'amount',
    'currency',
    'description',
  ]);
  if (!keys.ok) return keys;
  const outcome = value['outcome'];
  if (typeof outcome !== 'string' || !(OUTCOMES as readonly string[]).includes(outcome))
    return { ok: false, message: `outcome must be one of ${OUTCOMES.join(', ')}` };
  const out: PesapalSettlement = { outcome: outcome as PesapalOutcome };
  const method = value['paymentMethod'];
  if (method !== undefined) {
    if (typeof method !== 'string' || !(PESAPAL_PAYMENT_METHODS as readonly string[]).includes(method)) {
      return { ok: false, message: `paymentMethod must be one of ${PESAPAL_PAYMENT_METHODS.join(', ')}` };
    }
    out.paymentMethod = method as PesapalPaymentMethod;
  }
  if (value['amount'] !== undefined) {
    if (typeof value['amount'] !== 'number') return { ok: false, message: 'amount must be a number (major units)' };
    out.amount = value['amount'];
  }
  if (value['currency'] !== undefined) {
    if (typeof value['currency'] !== 'string') return { ok: false, message: 'currency must be a string' };
    out.currency = value['currency'];
  }
  if (value['description'] !== undefined) {
    if (typeof value['description'] !== 'string') return { ok: false, message: 'description must be a string' };
    out.description = value['description'];
  }
  return { ok: true, value: out };
}

function parseTamper(value: unknown): Parsed<PesapalTamper | null> {
  if (value === undefined || value === null) return { ok: true, value: null };
  if (!isPlainObject(value))
    return { ok: false, message: 'body must be {"amount"?: number, "currency"?: string} or null' };
  const keys = rejectUnknownKeys('tamper', value, ['amount', 'currency']);
  if (!keys.ok) return keys;
  const out: PesapalTamper = {};
  if (value['amount'] !== undefined) {
    if (typeof value['amount'] !== 'number') return { ok: false, message: 'amount must be a number (major units)' };
    out.amount = value['amount'];
  }
  if (value['currency'] !== undefined) {
    if (typeof value['currency'] !== 'string') return { ok: false, message: 'currency must be a string' };
    out.currency = value['currency'];
  }
  return { ok: true, value: out };
}

export class PesapalControlRoutes {
  constructor(private readonly core: PesapalCore) {}

  async handle(req: IncomingMessage, url: URL): Promise<Reply> {
    const path = url.pathname.replace(/\/+$/, '');
    const method = req.method ?? 'GET';
    const post = async (fn: (body: unknown) => Reply | Promise<Reply>): Promise<Reply> => {
      if (method !== 'POST') {
        req.resume();
        return controlError(405, 'use POST');
      }
      const body = await readControlJson(req);
      if (!body.ok) return controlError(400, body.message);
      try {
        return await fn(body.value);
      } catch (err: unknown) {
        return simulatorErrorReply(err);
      }
    };

    if (path === `${CONTROL_PREFIX}/state`) {
      if (method !== 'GET') return controlError(405, 'use GET');
      return jsonReply(200, {
        settings: this.core.settings(),
        ipnRegistrations: this.core.listIpns(),
        orders: this.core.listOrders(),
        ipns: this.core.ipnDeliveries(),
        stats: this.core.stats(),
        faults: this.core.currentFaults(),
      });
    }
    if (path === `${CONTROL_PREFIX}/faults`) {
      return post((body) => {
        const faults = parsePesapalFaults(body ?? {});
        if (!faults.ok) return controlError(400, faults.message);
        this.core.setFaults(faults.value);
        return jsonReply(200, { faults: this.core.currentFaults() });
      });
    }
    if (path === `${CONTROL_PREFIX}/settings`) {
      return post((body) => {
        if (!isPlainObject(body)) return controlError(400, 'settings must be a JSON object');
        const keys = rejectUnknownKeys('settings', body, [
          'ipnRetry',
          'statusDescriptionStyle',
          'rejectAuthorizationHeaderOnToken',
        ]);
        if (!keys.ok) return controlError(400, keys.message);
        try {
          return jsonReply(200, { settings: this.core.configure(body) });
        } catch (err: unknown) {
          if (err instanceof TypeError || err instanceof RangeError) return controlError(400, err.message);
          throw err;
        }
      });
    }
    if (path === `${CONTROL_PREFIX}/reset`) {
      return post((body) => {
        const full = isPlainObject(body) && body['full'] === true;
        this.core.reset(full);
        return jsonReply(200, { reset: true, full });
      });
    }
    if (path === `${CONTROL_PREFIX}/flush`) return post(() => jsonReply(200, { fired: this.core.flushIpns() }));
    if (path === `${CONTROL_PREFIX}/tokens/invalidate`) {
      return post(() => {
        this.core.invalidateTokens();
        return jsonReply(200, { invalidated: true });
      });
    }

    const m = /^\/__sim\/orders\/([^/]+)\/(complete|tamper|reverse|refund)$/.exec(path);
    if (m?.[1] && m[2]) {
      const ref = decodeSegment(m[1]);
      if (ref === undefined) return controlError(400, 'malformed order reference in path');
      switch (m[2]) {
        case 'complete':
          return post((body) => {
            const settlement = parsePesapalSettlement(body);
            if (!settlement.ok) return controlError(400, settlement.message);
            return jsonReply(200, this.core.settle(ref, settlement.value));
          });
        case 'tamper':
          return post((body) => {
            const tamper = parseTamper(body);
            if (!tamper.ok) return controlError(400, tamper.message);
            return jsonReply(200, { order: this.core.tamper(ref, tamper.value) });
          });
        case 'reverse':
          return post(() => jsonReply(200, { order: this.core.reverse(ref) }));
        default:
          return post((body) => {
            const decision = isPlainObject(body) ? body['decision'] : undefined;
            if (decision !== 'approve' && decision !== 'reject')
              return controlError(400, 'body must be {"decision": "approve" | "reject"}');
            return jsonReply(200, { order: this.core.decideRefund(ref, decision) });
          });
      }
    }
    req.resume();
    return controlError(404, `unknown control route ${method} ${url.pathname}`);
  }
}
