/** Validation helpers for simulator options (thrown errors name the option). */
import { isHttpUrl } from './http';

export function requireInteger(
  owner: string,
  name: string,
  value: number,
  min: number,
  max: number = Number.MAX_SAFE_INTEGER,
): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`${owner}.${name} must be an integer in [${min}, ${max}], got ${String(value)}`);
  }
  return value;
}

export function requireNonEmpty(owner: string, name: string, value: unknown): string {
  if (typeof value !== 'string' || value.trim().length === 0)
    throw new TypeError(`${owner}.${name} must be a non-empty string`);
  return value;
}

export function optionalHttpUrl(owner: string, name: string, value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (!isHttpUrl(value)) throw new TypeError(`${owner}.${name} must be an absolute http(s) URL`);
  return value.replace(/\/+$/, '');
}

export function requireBoolean(owner: string, name: string, value: unknown): boolean {
  if (typeof value !== 'boolean') throw new TypeError(`${owner}.${name} must be a boolean`);
  return value;
}

export function requireOneOf<T extends string>(owner: string, name: string, value: unknown, allowed: readonly T[]): T {
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
    throw new TypeError(`${owner}.${name} must be one of ${allowed.join(', ')}`);
  }
  return value as T;
}

export interface RetryOption {
  attempts: number;
  intervalMs: number;
}

export function requireRetry(owner: string, name: string, value: unknown): RetryOption {
  if (typeof value !== 'object' || value === null)
    throw new TypeError(`${owner}.${name} must be {attempts, intervalMs}`);
  const { attempts, intervalMs } = value as Record<string, unknown>;
  return {
    attempts: requireInteger(owner, `${name}.attempts`, attempts as number, 0, 100),
    intervalMs: requireInteger(owner, `${name}.intervalMs`, intervalMs as number, 0, 2_147_483_647),
  };
}

/** A safe logger: a throwing log function never breaks the simulator. */
export function safeLogger(log: ((line: string) => void) | undefined): (line: string) => void {
  if (!log) return () => undefined;
  return (line: string) => {
    try {
      log(line);
    } catch {
      // ignore logger failures
    }
  };
}
