/**
 * Start-up faults for the CLI from env vars: SIM_FAULTS (a SimFaults JSON object) and one SIM_FAULT_* var per
 * setting, which win over SIM_FAULTS. Validated exactly like POST /__sim/faults.
 */
import { parseFaults } from './faults';
import { isPlainObject } from './http';
import type { SimFaults } from './types';

type Kind = 'number' | 'boolean';

/** env var → [path in SimFaults, value kind] */
export const FAULT_ENV_VARS: Readonly<Record<string, readonly [string, Kind]>> = Object.freeze({
  SIM_FAULT_SEED: ['seed', 'number'],
  SIM_FAULT_DOWN: ['down', 'boolean'],
  SIM_FAULT_LATENCY_OAUTH_MS: ['latencyMs.oauth', 'number'],
  SIM_FAULT_LATENCY_PUSH_MS: ['latencyMs.push', 'number'],
  SIM_FAULT_LATENCY_QUERY_MS: ['latencyMs.query', 'number'],
  SIM_FAULT_PUSH_SERVER_ERROR_RATE: ['pushServerErrorRate', 'number'],
  SIM_FAULT_PUSH_SPIKE_ARREST_RATE: ['pushSpikeArrestRate', 'number'],
  SIM_FAULT_PUSH_TIMEOUT_PROCESSED_RATE: ['pushTimeouts.processedRate', 'number'],
  SIM_FAULT_PUSH_TIMEOUT_UNPROCESSED_RATE: ['pushTimeouts.unprocessedRate', 'number'],
  SIM_FAULT_PUSH_TIMEOUT_HOLD_MS: ['pushTimeouts.holdMs', 'number'],
  SIM_FAULT_QUERY_SERVER_ERROR_RATE: ['queryServerErrorRate', 'number'],
  SIM_FAULT_QUERY_SPIKE_ARREST_RATE: ['querySpikeArrestRate', 'number'],
  SIM_FAULT_QUERY_TIMEOUT_RATE: ['queryTimeouts.rate', 'number'],
  SIM_FAULT_QUERY_TIMEOUT_HOLD_MS: ['queryTimeouts.holdMs', 'number'],
  SIM_FAULT_CALLBACK_DROP_RATE: ['callbacks.dropRate', 'number'],
  SIM_FAULT_CALLBACK_DUPLICATE_RATE: ['callbacks.duplicateRate', 'number'],
  SIM_FAULT_CALLBACK_DUPLICATE_COPIES: ['callbacks.duplicateCopies', 'number'],
  SIM_FAULT_CALLBACK_DUPLICATE_GAP_MS: ['callbacks.duplicateGapMs', 'number'],
  SIM_FAULT_CALLBACK_DELAY_RATE: ['callbacks.delayRate', 'number'],
  SIM_FAULT_CALLBACK_DELAY_MS: ['callbacks.delayMs', 'number'],
  SIM_FAULT_TOKEN_INVALIDATE_EVERY_CALLS: ['tokenInvalidateEveryCalls', 'number'],
});

function envValue(name: string, raw: string, kind: Kind): number | boolean {
  const text = raw.trim();
  if (kind === 'boolean') {
    if (/^(1|true|yes|on)$/i.test(text)) return true;
    if (/^(0|false|no|off)$/i.test(text)) return false;
    throw new Error(`${name} must be true or false, got "${raw}"`);
  }
  if (!/^\d+(\.\d+)?$/.test(text)) throw new Error(`${name} must be a non-negative number, got "${raw}"`);
  return Number(text);
}

/** Faults from the environment; {} when none is set. Throws an Error naming the bad variable. */
export function faultsFromEnv(env: Readonly<Record<string, string | undefined>> = process.env): SimFaults {
  let base: Record<string, unknown> = {};
  const json = env['SIM_FAULTS'];
  if (json !== undefined && json.trim() !== '') {
    let parsed: unknown;
    try {
      parsed = JSON.parse(json);
    } catch {
      throw new Error('SIM_FAULTS is not valid JSON');
    }
    if (!isPlainObject(parsed)) throw new Error('SIM_FAULTS must be a JSON object');
    base = structuredClone(parsed);
  }
  for (const [name, raw] of Object.entries(env)) {
    if (!name.startsWith('SIM_FAULT_') || raw === undefined || raw.trim() === '') continue;
    const spec = FAULT_ENV_VARS[name];
    if (!spec) throw new Error(`unknown env var ${name} (known: ${Object.keys(FAULT_ENV_VARS).join(', ')})`);
    const [path, kind] = spec;
    const value = envValue(name, raw, kind);
    const [outer, inner] = path.split('.') as [string, string | undefined];
    if (inner === undefined) {
      base[outer] = value;
    } else {
      const group = isPlainObject(base[outer]) ? base[outer] : {};
      group[inner] = value;
      base[outer] = group;
    }
  }
  const result = parseFaults(base);
  if (!result.ok) throw new Error(`invalid faults from SIM_FAULTS / SIM_FAULT_* env vars: ${result.message}`);
  return result.value;
}
