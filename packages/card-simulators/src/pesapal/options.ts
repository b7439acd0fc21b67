/** Defaults and validation of PesapalSimulatorOptions. */
import { currencyExponent } from '../shared/money';
import {
  optionalHttpUrl,
  requireBoolean,
  requireInteger,
  requireNonEmpty,
  requireOneOf,
  requireRetry,
  safeLogger,
} from '../shared/options';
import type { PesapalSettings, PesapalSimulatorOptions } from './types';

export const PESAPAL_DEFAULT_CONSUMER_KEY = 'smartduka-pesapal-sim-key';
export const PESAPAL_DEFAULT_CONSUMER_SECRET = 'smartduka-pesapal-sim-secret';
export const PESAPAL_DEFAULT_CLI_PORT = 4030;
const OWNER = 'PesapalSimulatorOptions';

export interface PesapalResolvedOptions {
  port: number;
  host: string;
  publicUrl: string | undefined;
  consumerKey: string;
  consumerSecret: string;
  tokenTtlSeconds: number;
  currencies: string[];
  settings: PesapalSettings;
  ipnTimeoutMs: number;
  merchantName: string;
  now: () => Date;
  log: (line: string) => void;
  maxRecords: number;
}

export const PESAPAL_BASE_SETTINGS: Readonly<PesapalSettings> = Object.freeze({
  ipnRetry: Object.freeze({ attempts: 3, intervalMs: 5 * 60 * 1000 }),
  statusDescriptionStyle: 'mixed',
  rejectAuthorizationHeaderOnToken: true,
});

export function validatePesapalSettings(
  owner: string,
  s: Partial<PesapalSettings>,
  base: PesapalSettings,
): PesapalSettings {
  const out: PesapalSettings = { ...base, ipnRetry: { ...base.ipnRetry } };
  if (s.ipnRetry !== undefined) out.ipnRetry = requireRetry(owner, 'ipnRetry', s.ipnRetry);
  if (s.statusDescriptionStyle !== undefined) {
    out.statusDescriptionStyle = requireOneOf(owner, 'statusDescriptionStyle', s.statusDescriptionStyle, [
      'mixed',
      'upper',
    ] as const);
  }
  if (s.rejectAuthorizationHeaderOnToken !== undefined) {
    out.rejectAuthorizationHeaderOnToken = requireBoolean(
      owner,
      'rejectAuthorizationHeaderOnToken',
      s.rejectAuthorizationHeaderOnToken,
    );
  }
  return out;
}

export function resolvePesapalOptions(opts: PesapalSimulatorOptions = {}): PesapalResolvedOptions {
  if (opts.now !== undefined && typeof opts.now !== 'function') throw new TypeError(`${OWNER}.now must be a function`);
  const currencies = opts.currencies ?? ['KES'];
  if (!Array.isArray(currencies) || currencies.length === 0)
    throw new RangeError(`${OWNER}.currencies must be a non-empty array`);
  currencies.forEach((c, i) => {
    if (typeof c !== 'string' || currencyExponent(c) === undefined)
      throw new RangeError(`${OWNER}.currencies[${i}] is not a supported ISO currency code`);
  });
  return {
    port: requireInteger(OWNER, 'port', opts.port ?? 0, 0, 65535),
    host: requireNonEmpty(OWNER, 'host', opts.host ?? '127.0.0.1'),
    publicUrl: optionalHttpUrl(OWNER, 'publicUrl', opts.publicUrl),
    consumerKey: requireNonEmpty(OWNER, 'consumerKey', opts.consumerKey ?? PESAPAL_DEFAULT_CONSUMER_KEY),
    consumerSecret: requireNonEmpty(OWNER, 'consumerSecret', opts.consumerSecret ?? PESAPAL_DEFAULT_CONSUMER_SECRET),
    tokenTtlSeconds: requireInteger(OWNER, 'tokenTtlSeconds', opts.tokenTtlSeconds ?? 300, 1, 86_400),
    currencies: [...new Set(currencies)],
    settings: validatePesapalSettings(
      OWNER,
      {
        ipnRetry: opts.ipnRetry,
        statusDescriptionStyle: opts.statusDescriptionStyle,
        rejectAuthorizationHeaderOnToken: opts.rejectAuthorizationHeaderOnToken,
      },
      PESAPAL_BASE_SETTINGS,
    ),
    ipnTimeoutMs: requireInteger(OWNER, 'ipnTimeoutMs', opts.ipnTimeoutMs ?? 30_000, 1, 600_000),
    merchantName: requireNonEmpty(OWNER, 'merchantName', opts.merchantName ?? 'SmartDuka Test Shop'),
    now: opts.now ?? (() => new Date()),
    log: safeLogger(opts.log),
    maxRecords: requireInteger(OWNER, 'maxRecords', opts.maxRecords ?? 10_000, 1),
  };
}
