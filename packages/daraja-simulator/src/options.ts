/** Defaults and validation of SimulatorOptions. */
import { DEFAULT_BEHAVIOUR, parseBehaviour } from './behaviour';
import { parseFaults } from './faults';
import { parseAccount, parseApp, type StoredAccount, type StoredApp } from './registry';
import type { SimBehaviour, SimFaults, SimulatorAccount, SimulatorOptions } from './types';

export const DEFAULT_CONSUMER_KEY = 'smartduka-sim-key';
export const DEFAULT_CONSUMER_SECRET = 'smartduka-sim-secret';
export const SANDBOX_SHORTCODE = '174379';
export const SANDBOX_PASSKEY = 'bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919';
export const SANDBOX_TILL = '174380';
export const DEFAULT_ACCOUNTS: readonly SimulatorAccount[] = Object.freeze([
  Object.freeze({ shortcode: SANDBOX_SHORTCODE, passkey: SANDBOX_PASSKEY, tillNumbers: [SANDBOX_TILL] }),
]);
export const DEFAULT_CLI_PORT = 4010;
export const DEFAULT_MAX_RECORDS = 10_000;

export interface ResolvedOptions {
  port: number;
  host: string;
  consumerKey: string;
  consumerSecret: string;
  /** every start-up app, the consumerKey/consumerSecret one included (first unless `apps` redefines it) */
  apps: StoredApp[];
  /** initiator defaults filled in, tills sorted */
  accounts: StoredAccount[];
  /** ms before a Reversal / Transaction Status Result is POSTed (default: callbackDelayMs) */
  resultDelayMs: number;
  tokenTtlSeconds: number;
  invalidatePreviousToken: boolean;
  callbackDelayMs: number;
  /** Start-up behaviour (Timestamp window, pending query form): applied at start and by reset(). */
  behaviour: SimBehaviour;
  log: (line: string) => void;
  maxRecords: number;
  /** Start-up faults (validated; the one-shot invalidateTokens is dropped): applied at start and by reset(). */
  faults: SimFaults;
}

function requireInteger(name: string, value: number, min: number, max: number = Number.MAX_SAFE_INTEGER): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`SimulatorOptions.${name} must be an integer in [${min}, ${max}], got ${String(value)}`);
  }
  return value;
}

function requireNonEmpty(name: string, value: string): string {
  if (typeof value !== 'string' || value.length === 0)
    throw new TypeError(`SimulatorOptions.${name} must be a non-empty string`);
  return value;
}

function normaliseAccounts(accounts: readonly SimulatorAccount[]): StoredAccount[] {
  if (accounts.length === 0) throw new RangeError('SimulatorOptions.accounts must not be empty');
  const seen = new Set<string>();
  return accounts.map((a, i) => {
    if (!/^\d{5,7}$/.test(a.shortcode)) throw new RangeError(`accounts[${i}].shortcode must be 5-7 digits`);
    requireNonEmpty(`accounts[${i}].passkey`, a.passkey);
    if (seen.has(a.shortcode)) throw new RangeError(`accounts[${i}].shortcode ${a.shortcode} is duplicated`);
    seen.add(a.shortcode);
    const tills = a.tillNumbers ?? [];
    tills.forEach((t, j) => {
      if (!/^\d{5,7}$/.test(t)) throw new RangeError(`accounts[${i}].tillNumbers[${j}] must be 5-7 digits`);
    });
    const parsed = parseAccount({ ...a, tillNumbers: [...tills] }, `SimulatorOptions.accounts[${i}]`);
    if (!parsed.ok) throw new RangeError(parsed.message);
    return parsed.value;
  });
}

/** The consumerKey/consumerSecret app (may use any shortcode), then `apps`; an `apps` entry with the same key replaces it. */
function normaliseApps(consumerKey: string, consumerSecret: string, apps: readonly unknown[] | undefined): StoredApp[] {
  if (apps !== undefined && !Array.isArray(apps)) throw new TypeError('SimulatorOptions.apps must be an array');
  const parsed = (apps ?? []).map((a, i) => {
    const p = parseApp(a, `SimulatorOptions.apps[${i}]`);
    if (!p.ok) throw new RangeError(p.message);
    return p.value;
  });
  const seen = new Set<string>();
  parsed.forEach((a, i) => {
    if (seen.has(a.consumerKey)) throw new RangeError(`SimulatorOptions.apps[${i}].consumerKey is duplicated`);
    seen.add(a.consumerKey);
  });
  const legacy: StoredApp = { consumerKey, consumerSecret, shortcodes: [] };
  return seen.has(consumerKey) ? parsed : [legacy, ...parsed];
}

function startupFaults(faults: SimFaults | undefined): SimFaults {
  const parsed = parseFaults(faults ?? {});
  if (!parsed.ok) throw new RangeError(`SimulatorOptions.faults: ${parsed.message}`);
  const { invalidateTokens: _oneShot, ...rest } = parsed.value;
  return rest;
}

function startupBehaviour(opts: SimulatorOptions): SimBehaviour {
  const given: Record<string, unknown> = {};
  if (opts.timestampToleranceSeconds !== undefined) given['timestampToleranceSeconds'] = opts.timestampToleranceSeconds;
  if (opts.pendingQueryForm !== undefined) given['pendingQueryForm'] = opts.pendingQueryForm;
  const parsed = parseBehaviour(given);
  if (!parsed.ok) throw new RangeError(`SimulatorOptions.${parsed.message}`);
  return { ...DEFAULT_BEHAVIOUR, ...parsed.value };
}

export function resolveOptions(opts: SimulatorOptions = {}): ResolvedOptions {
  const consumerKey = requireNonEmpty('consumerKey', opts.consumerKey ?? DEFAULT_CONSUMER_KEY);
  const consumerSecret = requireNonEmpty('consumerSecret', opts.consumerSecret ?? DEFAULT_CONSUMER_SECRET);
  const callbackDelayMs = requireInteger('callbackDelayMs', opts.callbackDelayMs ?? 2000, 0, 2_147_483_647);
  return {
    port: requireInteger('port', opts.port ?? 0, 0, 65535),
    host: requireNonEmpty('host', opts.host ?? '127.0.0.1'),
    consumerKey,
    consumerSecret,
    apps: normaliseApps(consumerKey, consumerSecret, opts.apps),
    accounts: normaliseAccounts(opts.accounts ?? DEFAULT_ACCOUNTS),
    tokenTtlSeconds: requireInteger('tokenTtlSeconds', opts.tokenTtlSeconds ?? 3599, 1),
    invalidatePreviousToken: opts.invalidatePreviousToken ?? true,
    callbackDelayMs,
    resultDelayMs: requireInteger('resultDelayMs', opts.resultDelayMs ?? callbackDelayMs, 0, 2_147_483_647),
    behaviour: startupBehaviour(opts),
    log: opts.log ?? (() => undefined),
    maxRecords: requireInteger('maxRecords', opts.maxRecords ?? DEFAULT_MAX_RECORDS, 1),
    faults: startupFaults(opts.faults),
  };
}
