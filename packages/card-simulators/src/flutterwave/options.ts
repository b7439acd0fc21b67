/** Defaults and validation of FlutterwaveSimulatorOptions. */
import {
  optionalHttpUrl,
  requireBoolean,
  requireInteger,
  requireNonEmpty,
  requireOneOf,
  requireRetry,
  safeLogger,
} from '../shared/options';
import type { FlutterwaveSimulatorOptions, FlwSettings } from './types';

export const FLW_DEFAULT_SECRET_KEY = 'FLWSECK_TEST-smartduka-sim-X';
export const FLW_DEFAULT_SECRET_HASH = 'smartduka-sim-secret-hash';
export const FLW_DEFAULT_CLI_PORT = 4020;
export const FLW_DEFAULT_MERCHANT = 'SmartDuka Test Shop';
const OWNER = 'FlutterwaveSimulatorOptions';

export interface FlwResolvedOptions {
  port: number;
  host: string;
  publicUrl: string | undefined;
  secretKey: string;
  settings: FlwSettings;
  webhookTimeoutMs: number;
  merchantName: string;
  accountId: number;
  appFeeBasisPoints: number;
  now: () => Date;
  log: (line: string) => void;
  maxRecords: number;
}

export function validateFlwSettings(owner: string, s: Partial<FlwSettings>, base: FlwSettings): FlwSettings {
  const out: FlwSettings = { ...base, webhookRetry: { ...base.webhookRetry } };
  if (s.webhookUrl !== undefined)
    out.webhookUrl = s.webhookUrl === null ? null : (optionalHttpUrl(owner, 'webhookUrl', s.webhookUrl) ?? null);
  if (s.secretHash !== undefined) out.secretHash = requireNonEmpty(owner, 'secretHash', s.secretHash);
  if (s.webhookShape !== undefined)
    out.webhookShape = requireOneOf(owner, 'webhookShape', s.webhookShape, ['v3', 'legacy'] as const);
  if (s.webhookMeta !== undefined) out.webhookMeta = requireBoolean(owner, 'webhookMeta', s.webhookMeta);
  if (s.failedWebhooks !== undefined) out.failedWebhooks = requireBoolean(owner, 'failedWebhooks', s.failedWebhooks);
  if (s.refundWebhooks !== undefined) out.refundWebhooks = requireBoolean(owner, 'refundWebhooks', s.refundWebhooks);
  if (s.webhookRetry !== undefined) out.webhookRetry = requireRetry(owner, 'webhookRetry', s.webhookRetry);
  if (s.successRedirectStatus !== undefined) {
    out.successRedirectStatus = requireOneOf(owner, 'successRedirectStatus', s.successRedirectStatus, [
      'successful',
      'completed',
    ] as const);
  }
  return out;
}

export const FLW_BASE_SETTINGS: Readonly<FlwSettings> = Object.freeze({
  webhookUrl: null,
  secretHash: FLW_DEFAULT_SECRET_HASH,
  webhookShape: 'v3',
  webhookMeta: true,
  failedWebhooks: true,
  refundWebhooks: false,
  webhookRetry: Object.freeze({ attempts: 0, intervalMs: 30 * 60 * 1000 }),
  successRedirectStatus: 'successful',
});

export function resolveFlwOptions(opts: FlutterwaveSimulatorOptions = {}): FlwResolvedOptions {
  if (opts.now !== undefined && typeof opts.now !== 'function') throw new TypeError(`${OWNER}.now must be a function`);
  const settings = validateFlwSettings(
    OWNER,
    {
      webhookUrl: opts.webhookUrl,
      secretHash: opts.secretHash,
      webhookShape: opts.webhookShape,
      webhookMeta: opts.webhookMeta,
      failedWebhooks: opts.failedWebhooks,
      refundWebhooks: opts.refundWebhooks,
      webhookRetry: opts.webhookRetry,
      successRedirectStatus: opts.successRedirectStatus,
    },
    FLW_BASE_SETTINGS,
  );
  return {
    port: requireInteger(OWNER, 'port', opts.port ?? 0, 0, 65535),
    host: requireNonEmpty(OWNER, 'host', opts.host ?? '127.0.0.1'),
    publicUrl: optionalHttpUrl(OWNER, 'publicUrl', opts.publicUrl),
    secretKey: requireNonEmpty(OWNER, 'secretKey', opts.secretKey ?? FLW_DEFAULT_SECRET_KEY),
    settings,
    webhookTimeoutMs: requireInteger(OWNER, 'webhookTimeoutMs', opts.webhookTimeoutMs ?? 60_000, 1, 600_000),
    merchantName: requireNonEmpty(OWNER, 'merchantName', opts.merchantName ?? FLW_DEFAULT_MERCHANT),
    accountId: requireInteger(OWNER, 'accountId', opts.accountId ?? 123456, 1),
    appFeeBasisPoints: requireInteger(OWNER, 'appFeeBasisPoints', opts.appFeeBasisPoints ?? 280, 0, 10_000),
    now: opts.now ?? (() => new Date()),
    log: safeLogger(opts.log),
    maxRecords: requireInteger(OWNER, 'maxRecords', opts.maxRecords ?? 10_000, 1),
  };
}
