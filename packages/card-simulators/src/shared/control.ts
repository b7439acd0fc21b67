/** Control API plumbing (/__sim/*) shared by both simulators: JSON bodies, errors, strict fault parsing. */
import type { IncomingMessage } from 'node:http';
import { BodyTooLargeError, isPlainObject, jsonReply, readBody, type Reply } from './http';
import type { NotificationFaults, RetryPolicy } from './notifier';

export const CONTROL_PREFIX = '/__sim';

export type Parsed<T> = { ok: true; value: T } | { ok: false; message: string };

export type SimulatorErrorKind = 'not_found' | 'conflict' | 'invalid' | 'closed';

/** Thrown by the JS control methods (complete, reverse…); the control API maps kinds to 404/409/400/503. */
export class SimulatorError extends Error {
  constructor(
    readonly kind: SimulatorErrorKind,
    message: string,
  ) {
    super(message);
    this.name = 'SimulatorError';
  }
}

export const SIMULATOR_ERROR_STATUS: Readonly<Record<SimulatorErrorKind, number>> = Object.freeze({
  not_found: 404,
  conflict: 409,
  invalid: 400,
  closed: 503,
});

export function controlError(status: number, message: string): Reply {
  return jsonReply(status, { error: message });
}

export function simulatorErrorReply(err: unknown): Reply {
  if (err instanceof SimulatorError) return controlError(SIMULATOR_ERROR_STATUS[err.kind], err.message);
  throw err;
}

/** Optional JSON body of a control call (empty → undefined). */
export async function readControlJson(req: IncomingMessage): Promise<Parsed<unknown>> {
  let raw: Buffer;
  try {
    raw = await readBody(req);
  } catch (err: unknown) {
    if (err instanceof BodyTooLargeError) return { ok: false, message: err.message };
    throw err;
  }
  const text = raw.toString('utf8').trim();
  if (text === '') return { ok: true, value: undefined };
  try {
    return { ok: true, value: JSON.parse(text) as unknown };
  } catch {
    return { ok: false, message: 'body is not valid JSON' };
  }
}

export function rejectUnknownKeys(
  name: string,
  value: Record<string, unknown>,
  allowed: readonly string[],
): Parsed<true> {
  const unknown = Object.keys(value).find((k) => !allowed.includes(k));
  return unknown ? { ok: false, message: `unknown ${name} key "${unknown}"` } : { ok: true, value: true };
}

export function parseNonNegativeInt(name: string, value: unknown, max = 2_147_483_647): Parsed<number> {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > max) {
    return { ok: false, message: `${name} must be an integer in [0, ${max}]` };
  }
  return { ok: true, value };
}

export function parseLatency<K extends string>(value: unknown, keys: readonly K[]): Parsed<Partial<Record<K, number>>> {
  if (!isPlainObject(value)) return { ok: false, message: 'latencyMs must be an object' };
  const out: Partial<Record<K, number>> = {};
  for (const [k, v] of Object.entries(value)) {
    if (!(keys as readonly string[]).includes(k))
      return { ok: false, message: `unknown latencyMs key "${k}" (use ${keys.join(', ')})` };
    const ms = parseNonNegativeInt(`latencyMs.${k}`, v);
    if (!ms.ok) return ms;
    out[k as K] = ms.value;
  }
  return { ok: true, value: out };
}

export function parseNotificationFaults(name: string, value: unknown): Parsed<NotificationFaults> {
  if (!isPlainObject(value)) return { ok: false, message: `${name} must be an object` };
  const keys = rejectUnknownKeys(name, value, ['duplicates', 'delayMs', 'drop']);
  if (!keys.ok) return keys;
  const out: NotificationFaults = {};
  if (value['duplicates'] !== undefined) {
    const d = parseNonNegativeInt(`${name}.duplicates`, value['duplicates'], 20);
    if (!d.ok) return d;
    out.duplicates = d.value;
  }
  if (value['delayMs'] !== undefined) {
    const d = parseNonNegativeInt(`${name}.delayMs`, value['delayMs']);
    if (!d.ok) return d;
    out.delayMs = d.value;
  }
  if (value['drop'] !== undefined) {
    const drop = value['drop'];
    if (typeof drop === 'boolean') out.drop = drop;
    else {
      const d = parseNonNegativeInt(`${name}.drop`, drop);
      if (!d.ok) return { ok: false, message: `${name}.drop must be a boolean or a non-negative integer` };
      out.drop = d.value;
    }
  }
  return { ok: true, value: out };
}

export function parseRetryPolicy(name: string, value: unknown): Parsed<RetryPolicy> {
  if (!isPlainObject(value)) return { ok: false, message: `${name} must be {attempts, intervalMs}` };
  const keys = rejectUnknownKeys(name, value, ['attempts', 'intervalMs']);
  if (!keys.ok) return keys;
  const attempts = parseNonNegativeInt(`${name}.attempts`, value['attempts'], 100);
  if (!attempts.ok) return attempts;
  const intervalMs = parseNonNegativeInt(`${name}.intervalMs`, value['intervalMs']);
  if (!intervalMs.ok) return intervalMs;
  return { ok: true, value: { attempts: attempts.value, intervalMs: intervalMs.value } };
}

/** Decodes one path segment of a control route; undefined when malformed. */
export function decodeSegment(segment: string): string | undefined {
  try {
    return decodeURIComponent(segment);
  } catch {
    return undefined;
  }
}
