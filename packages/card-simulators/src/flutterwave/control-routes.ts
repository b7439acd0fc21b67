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
import type { FlutterwaveCore } from './core';
import {
  FLW_ENDPOINTS,
  type FlwCannedError,
  type FlwFaults,
  type FlwOutcome,
  type FlwRefundPlan,
  type FlwSettlement,
  type FlwTamper,
} from './types';

const ERROR_ENDPOINTS = ['payments', 'charges', 'verify', 'transactions', 'refunds'] as const;
const OUTCOMES: readonly FlwOutcome[] = ['successful', 'failed', 'pending', 'cancelled'];

function parseCanned(name: string, value: unknown): Parsed<FlwCannedError> {
  if (!isPlainObject(value)) return { ok: false, message: `${name} must be an object` };
  const keys = rejectUnknownKeys(name, value, ['count', 'status', 'message', 'applied']);
  if (!keys.ok) return keys;
  const count = parseNonNegativeInt(`${name}.count`, value['count'], 1_000_000);
  if (!count.ok) return count;
  const status = value['status'];
  if (typeof status !== 'number' || !Number.isInteger(status) || status < 400 || status > 599)
    return { ok: false, message: `${name}.status must be an HTTP error status (400-599)` };
  if (typeof value['message'] !== 'string') return { ok: false, message: `${name}.message must be a string` };
  if (value['applied'] !== undefined && typeof value['applied'] !== 'boolean')
    return { ok: false, message: `${name}.applied must be a boolean` };
  const out: FlwCannedError = { count: count.value, status, message: value['message'] };
  if (value['applied'] === true) out.applied = true;
  return { ok: true, value: out };
}

/** Strict parser for a FlwFaults JSON body (unknown keys are rejected to catch typos). */
export function parseFlwFaults(value: unknown): Parsed<FlwFaults> {
  if (!isPlainObject(value)) return { ok: false, message: 'faults must be a JSON object' };
  const keys = rejectUnknownKeys('fault', value, ['down', 'latencyMs', 'errors', 'webhooks']);
  if (!keys.ok) return keys;
  const faults: FlwFaults = {};
  if (value['down'] !== undefined) {
    if (typeof value['down'] !== 'boolean') return { ok: false, message: 'down must be a boolean' };
    faults.down = value['down'];
  }
  if (value['latencyMs'] !== undefined) {
    const latency = parseLatency(value['latencyMs'], FLW_ENDPOINTS);
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
  if (value['webhooks'] !== undefined) {
    const webhooks = parseNotificationFaults('webhooks', value['webhooks']);
    if (!webhooks.ok) return webhooks;
    faults.webhooks = webhooks.value;
  }
  return { ok: true, value: faults };
}

export function parseFlwSettlement(value: unknown): Parsed<FlwSettlement> {
  if (typeof value === 'string') value = { outcome: value };
  if (!isPlainObject(value))
    return { ok: false, message: 'body must be {"outcome": "successful"|"failed"|"pending"|"cancelled", ...}' };
  const keys = rejectUnknownKeys('settlement', value, [
    'outcome',
    'paymentType',
    'amount',
    'currency',
    'processorResponse',
  ]);
  if (!keys.ok) return keys;
  const outcome = value['outcome'];
  if (typeof outcome !== 'string' || !(OUTCOMES as readonly string[]).includes(outcome))
    return { ok: false, message: `outcome must be one of ${OUTCOMES.join(', ')}` };
  const out: FlwSettlement = { outcome: outcome as FlwOutcome };
  const type = value['paymentType'];
  if (type !== undefined) {
    if (type !== 'card' && type !== 'mpesa') return { ok: false, message: 'paymentType must be card or mpesa' };
    out.paymentType = type;
  }
  if (value['amount'] !== undefined) {
    if (typeof value['amount'] !== 'number') return { ok: false, message: 'amount must be a number (major units)' };
    out.amount = value['amount'];
  }
  if (value['currency'] !== undefined) {
    if (typeof value['currency'] !== 'string') return { ok: false, message: 'currency must be a string' };
    out.currency = value['currency'];
  }
  if (value['processorResponse'] !== undefined) {
    if (typeof value['processorResponse'] !== 'string')
      return { ok: false, message: 'processorResponse must be a string' };
    out.processorResponse = value['processorResponse'];
  }
  return { ok: true, value: out };
}

function parseTamper(value: unknown): Parsed<FlwTamper | null> {
  if (value === undefined || value === null) return { ok: true, value: null };
  if (!isPlainObject(value))
    return { ok: false, message: 'body must be {"amount"?: number, "currency"?: string} or null' };
  const keys = rejectUnknownKeys('tamper', value, ['amount', 'currency']);
  if (!keys.ok) return keys;
  const out: FlwTamper = {};
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

export class FlwControlRoutes {
  constructor(private readonly core: FlutterwaveCore) {}

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
        checkouts: this.core.listCheckouts(),
        transactions: this.core.listTransactions(),
        refunds: this.core.listRefunds(),
        webhooks: this.core.webhooks(),
        stats: this.core.stats(),
        faults: this.core.currentFaults(),
      });
    }
    if (path === `${CONTROL_PREFIX}/faults`) {
      return post((body) => {
        const faults = parseFlwFaults(body ?? {});
        if (!faults.ok) return controlError(400, faults.message);
        this.core.setFaults(faults.value);
        return jsonReply(200, { faults: this.core.currentFaults() });
      });
    }
    if (path === `${CONTROL_PREFIX}/settings`) {
      return post((body) => {
        if (!isPlainObject(body)) return controlError(400, 'settings must be a JSON object');
        const keys = rejectUnknownKeys('settings', body, [
          'webhookUrl',
          'secretHash',
          'webhookShape',
          'webhookMeta',
          'failedWebhooks',
          'refundWebhooks',
          'webhookRetry',
          'successRedirectStatus',
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
    if (path === `${CONTROL_PREFIX}/flush`) {
      return post(() => jsonReply(200, { fired: this.core.flushWebhooks() }));
    }

    let m = /^\/__sim\/checkouts\/([^/]+)\/(complete|tamper)$/.exec(path);
    if (m?.[1] && m[2]) {
      const txRef = decodeSegment(m[1]);
      if (txRef === undefined) return controlError(400, 'malformed tx_ref in path');
      if (m[2] === 'complete') {
        return post((body) => {
          const settlement = parseFlwSettlement(body);
          if (!settlement.ok) return controlError(400, settlement.message);
          return jsonReply(200, this.core.settle(txRef, settlement.value));
        });
      }
      return post((body) => {
        const tamper = parseTamper(body);
        if (!tamper.ok) return controlError(400, tamper.message);
        return jsonReply(200, { checkout: this.core.tamper(txRef, tamper.value) });
      });
    }
    m = /^\/__sim\/refunds\/(\d{1,15})\/(complete|fail)$/.exec(path);
    if (m?.[1] && m[2]) {
      const id = Number(m[1]);
      const fail = m[2] === 'fail';
      return post(() => jsonReply(200, { refund: fail ? this.core.failRefund(id) : this.core.completeRefund(id) }));
    }
    if (path === `${CONTROL_PREFIX}/refund-plan`) {
      return post((body) => {
        if (body === undefined || (body !== null && !isPlainObject(body)))
          return controlError(400, 'refund plan must be a JSON object or null');
        if (body !== null) {
          const keys = rejectUnknownKeys('refund plan', body, ['outcome', 'message', 'count']);
          if (!keys.ok) return controlError(400, keys.message);
        }
        this.core.planRefunds(body as FlwRefundPlan | null);
        return jsonReply(200, { planned: body });
      });
    }
    req.resume();
    return controlError(404, `unknown control route ${method} ${url.pathname}`);
  }
}
