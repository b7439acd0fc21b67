/**
 * Fault configuration: strict parsing/validation of SimFaults (shared by setFaults(), the control API and the
 * CLI env vars) and the seeded PRNG that makes the random faults reproducible.
 */
import { isPlainObject } from './http';
import type {
  SimCallbackFaults,
  SimFaultError,
  SimFaults,
  SimPushTimeouts,
  SimQueryTimeouts,
  SimResolveOptions,
} from './types';

/** How long a timed-out call holds the connection before dropping it, unless `holdMs` says otherwise. */
export const DEFAULT_TIMEOUT_HOLD_MS = 30_000;
/** Copies of a duplicated callback unless `callbacks.duplicateCopies` says otherwise. */
export const DEFAULT_DUPLICATE_COPIES = 2;
export const MAX_CALLBACK_COPIES = 10;
/** Largest delay setTimeout accepts. */
export const MAX_DELAY_MS = 2_147_483_647;

export type Parsed<T> = { ok: true; value: T } | { ok: false; message: string };

const FAULT_KEYS = new Set([
  'down',
  'latencyMs',
  'pushErrors',
  'queryErrors',
  'invalidateTokens',
  'seed',
  'pushServerErrorRate',
  'pushSpikeArrestRate',
  'pushTimeouts',
  'queryServerErrorRate',
  'querySpikeArrestRate',
  'queryTimeouts',
  'callbacks',
  'tokenInvalidateEveryCalls',
]);
const LATENCY_KEYS = new Set(['oauth', 'push', 'query']);
const CALLBACK_KEYS = new Set([
  'dropRate',
  'duplicateRate',
  'duplicateCopies',
  'duplicateGapMs',
  'delayRate',
  'delayMs',
]);
const PUSH_TIMEOUT_KEYS = new Set(['processedRate', 'unprocessedRate', 'holdMs']);
const QUERY_TIMEOUT_KEYS = new Set(['rate', 'holdMs']);
const RESOLVE_KEYS = new Set(['resultCode', 'callbackCopies', 'callbackDelayMs', 'duplicateGapMs']);
/** Rates are added up with floating point; allow for 0.1 + 0.2 style rounding. */
const RATE_SUM_EPSILON = 1e-9;

class FaultInputError extends Error {}

function fail(message: string): never {
  throw new FaultInputError(message);
}

function rate(name: string, v: unknown): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > 1)
    fail(`${name} must be a number between 0 and 1, got ${JSON.stringify(v)}`);
  return v;
}

function integer(name: string, v: unknown, min: number, max: number): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    fail(`${name} must be an integer between ${min} and ${max}, got ${JSON.stringify(v)}`);
  }
  return v;
}

function object(name: string, v: unknown, keys: ReadonlySet<string>): Record<string, unknown> {
  if (!isPlainObject(v)) fail(`${name} must be an object`);
  const unknownKey = Object.keys(v).find((k) => !keys.has(k));
  if (unknownKey !== undefined) {
    fail(`unknown ${name === 'faults' ? 'fault' : `${name} key`} "${unknownKey}" (allowed: ${[...keys].join(', ')})`);
  }
  return v;
}

function sumAtMostOne(names: string, ...rates: Array<number | undefined>): void {
  const sum = rates.reduce<number>((acc, r) => acc + (r ?? 0), 0);
  if (sum > 1 + RATE_SUM_EPSILON) fail(`${names} add up to ${sum}; together they must not exceed 1`);
}

/** Removes undefined properties so echoed faults contain only what was set. */
function compact<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

function parseFaultError(name: string, value: unknown): SimFaultError {
  if (!isPlainObject(value)) fail(`${name} must be an object`);
  const { count, status, errorCode, errorMessage } = value;
  if (typeof count !== 'number' || !Number.isInteger(count) || count < 0) fail(`${name}.count must be an integer >= 0`);
  if (typeof status !== 'number' || !Number.isInteger(status) || status < 100 || status > 599) {
    fail(`${name}.status must be an HTTP status (100-599)`);
  }
  if (typeof errorCode !== 'string') fail(`${name}.errorCode must be a string`);
  if (typeof errorMessage !== 'string') fail(`${name}.errorMessage must be a string`);
  return { count, status, errorCode, errorMessage };
}

function parseCallbacks(value: unknown): SimCallbackFaults {
  const v = object('callbacks', value, CALLBACK_KEYS);
  const out: SimCallbackFaults = compact({
    dropRate: rate('callbacks.dropRate', v['dropRate']),
    duplicateRate: rate('callbacks.duplicateRate', v['duplicateRate']),
    duplicateCopies: integer('callbacks.duplicateCopies', v['duplicateCopies'], 2, MAX_CALLBACK_COPIES),
    duplicateGapMs: integer('callbacks.duplicateGapMs', v['duplicateGapMs'], 0, MAX_DELAY_MS),
    delayRate: rate('callbacks.delayRate', v['delayRate']),
    delayMs: integer('callbacks.delayMs', v['delayMs'], 1, MAX_DELAY_MS),
  });
  sumAtMostOne('callbacks.dropRate and callbacks.duplicateRate', out.dropRate, out.duplicateRate);
  if ((out.delayRate ?? 0) > 0 && out.delayMs === undefined)
    fail('callbacks.delayMs is required when callbacks.delayRate > 0');
  return out;
}

function parsePushTimeouts(value: unknown): SimPushTimeouts {
  const v = object('pushTimeouts', value, PUSH_TIMEOUT_KEYS);
  return compact({
    processedRate: rate('pushTimeouts.processedRate', v['processedRate']),
    unprocessedRate: rate('pushTimeouts.unprocessedRate', v['unprocessedRate']),
    holdMs: integer('pushTimeouts.holdMs', v['holdMs'], 1, MAX_DELAY_MS),
  });
}

function parseQueryTimeouts(value: unknown): SimQueryTimeouts {
  const v = object('queryTimeouts', value, QUERY_TIMEOUT_KEYS);
  return compact({
    rate: rate('queryTimeouts.rate', v['rate']),
    holdMs: integer('queryTimeouts.holdMs', v['holdMs'], 1, MAX_DELAY_MS),
  });
}

function parseFaultsOrThrow(value: unknown): SimFaults {
  const v = object('faults', value, FAULT_KEYS);
  const faults: SimFaults = {};
  for (const flag of ['down', 'invalidateTokens'] as const) {
    const f = v[flag];
    if (f === undefined) continue;
    if (typeof f !== 'boolean') fail(`${flag} must be a boolean`);
    faults[flag] = f;
  }
  if (v['latencyMs'] !== undefined) {
    const latency = v['latencyMs'];
    if (!isPlainObject(latency)) fail('latencyMs must be an object');
    const out: NonNullable<SimFaults['latencyMs']> = {};
    for (const [k, ms] of Object.entries(latency)) {
      if (!LATENCY_KEYS.has(k)) fail(`unknown latencyMs key "${k}"`);
      if (ms === undefined) continue;
      if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0 || ms > MAX_DELAY_MS)
        fail(`latencyMs.${k} must be a number between 0 and ${MAX_DELAY_MS}`);
      out[k as keyof typeof out] = ms;
    }
    faults.latencyMs = out;
  }
  for (const key of ['pushErrors', 'queryErrors'] as const) {
    if (v[key] !== undefined) faults[key] = parseFaultError(key, v[key]);
  }
  const seed = integer('seed', v['seed'], 0, 0xffff_ffff);
  if (seed !== undefined) faults.seed = seed;
  const every = integer('tokenInvalidateEveryCalls', v['tokenInvalidateEveryCalls'], 1, Number.MAX_SAFE_INTEGER);
  if (every !== undefined) faults.tokenInvalidateEveryCalls = every;

  const rates = {
    pushServerErrorRate: rate('pushServerErrorRate', v['pushServerErrorRate']),
    pushSpikeArrestRate: rate('pushSpikeArrestRate', v['pushSpikeArrestRate']),
    queryServerErrorRate: rate('queryServerErrorRate', v['queryServerErrorRate']),
    querySpikeArrestRate: rate('querySpikeArrestRate', v['querySpikeArrestRate']),
  };
  Object.assign(faults, compact(rates));
  if (v['pushTimeouts'] !== undefined) faults.pushTimeouts = parsePushTimeouts(v['pushTimeouts']);
  if (v['queryTimeouts'] !== undefined) faults.queryTimeouts = parseQueryTimeouts(v['queryTimeouts']);
  if (v['callbacks'] !== undefined) faults.callbacks = parseCallbacks(v['callbacks']);

  sumAtMostOne(
    'pushServerErrorRate, pushSpikeArrestRate, pushTimeouts.processedRate and pushTimeouts.unprocessedRate',
    faults.pushServerErrorRate,
    faults.pushSpikeArrestRate,
    faults.pushTimeouts?.processedRate,
    faults.pushTimeouts?.unprocessedRate,
  );
  sumAtMostOne(
    'queryServerErrorRate, querySpikeArrestRate and queryTimeouts.rate',
    faults.queryServerErrorRate,
    faults.querySpikeArrestRate,
    faults.queryTimeouts?.rate,
  );
  return faults;
}

/** Strict parser for a SimFaults value (unknown keys are rejected to catch typos). */
export function parseFaults(value: unknown): Parsed<SimFaults> {
  try {
    return { ok: true, value: parseFaultsOrThrow(value) };
  } catch (err: unknown) {
    if (err instanceof FaultInputError) return { ok: false, message: err.message };
    throw err;
  }
}

/** Parser for the per-push callback overrides of resolve(). */
export function parseResolveOptions(value: unknown, allowResultCode = false): Parsed<SimResolveOptions> {
  try {
    const keys = allowResultCode ? RESOLVE_KEYS : new Set([...RESOLVE_KEYS].filter((k) => k !== 'resultCode'));
    const v = object('resolve options', value, keys);
    return {
      ok: true,
      value: compact({
        callbackCopies: integer('callbackCopies', v['callbackCopies'], 0, MAX_CALLBACK_COPIES),
        callbackDelayMs: integer('callbackDelayMs', v['callbackDelayMs'], 0, MAX_DELAY_MS),
        duplicateGapMs: integer('duplicateGapMs', v['duplicateGapMs'], 0, MAX_DELAY_MS),
      }),
    };
  } catch (err: unknown) {
    if (err instanceof FaultInputError) return { ok: false, message: err.message };
    throw err;
  }
}

/** True when any fault needs random draws (so the seed matters). */
export function hasRandomFaults(f: SimFaults): boolean {
  const c = f.callbacks;
  return [
    f.pushServerErrorRate,
    f.pushSpikeArrestRate,
    f.pushTimeouts?.processedRate,
    f.pushTimeouts?.unprocessedRate,
    f.queryServerErrorRate,
    f.querySpikeArrestRate,
    f.queryTimeouts?.rate,
    c?.dropRate,
    c?.duplicateRate,
    c?.delayRate,
  ].some((r) => (r ?? 0) > 0);
}

/** Deep copy of a (parsed) SimFaults value. */
export function cloneFaults(f: SimFaults): SimFaults {
  return structuredClone(f);
}

// ---------------------------------------------------------------- seeded PRNG

/** mulberry32: a tiny, fast 32-bit PRNG; the same seed always gives the same sequence in [0, 1). */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/** 32-bit FNV-1a, to derive one independent stream seed per decision kind. */
function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i += 1) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

export type DiceStream = 'push' | 'query' | 'callback';

/**
 * One PRNG stream per decision kind, so e.g. how often the API polls STK query does not shift which pushes
 * fail. Same seed + same order of calls on a stream ⇒ same choices.
 */
export class FaultDice {
  private readonly streams: Record<DiceStream, () => number>;

  constructor(readonly seed: number) {
    this.streams = {
      push: mulberry32(seed ^ fnv1a('push')),
      query: mulberry32(seed ^ fnv1a('query')),
      callback: mulberry32(seed ^ fnv1a('callback')),
    };
  }

  next(stream: DiceStream): number {
    return this.streams[stream]();
  }
}
