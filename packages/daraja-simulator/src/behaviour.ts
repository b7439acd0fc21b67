/**
 * Behaviour switches that are not faults: the Timestamp window and the pending STK query form.
 * Shared by SimulatorOptions, setBehaviour() / POST /__sim/behaviour and the CLI (flags and env vars).
 */
import type { PendingQueryForm, SimBehaviour } from './types';

export const PENDING_QUERY_FORMS: readonly PendingQueryForm[] = Object.freeze(['http500', 'result4999']);

/**
 * No Timestamp window by default: Safaricom documents only the format (daraja.md §2.2), its own npm client
 * (mpesa-node) sends UTC and ran its sandbox integration test that way, and no primary source shows Daraja
 * refusing a Timestamp whose Password matches. The Password check still ties the Timestamp to the request.
 */
export const DEFAULT_BEHAVIOUR: Readonly<SimBehaviour> = Object.freeze({
  timestampToleranceSeconds: null,
  pendingQueryForm: 'http500',
});

/** Ten years: anything larger is a typo, not a window. */
const MAX_TOLERANCE_SECONDS = 10 * 365 * 24 * 60 * 60;

export type BehaviourParse = { ok: true; value: Partial<SimBehaviour> } | { ok: false; message: string };

export function isPendingQueryForm(v: unknown): v is PendingQueryForm {
  return typeof v === 'string' && (PENDING_QUERY_FORMS as readonly string[]).includes(v);
}

/** Validates a partial behaviour object (unknown keys, wrong types and out-of-range values are errors). */
export function parseBehaviour(input: unknown): BehaviourParse {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    return {
      ok: false,
      message:
        'behaviour must be an object like {"timestampToleranceSeconds": 300 | null, "pendingQueryForm": "http500" | "result4999"}',
    };
  }
  const out: Partial<SimBehaviour> = {};
  for (const [key, value] of Object.entries(input as Record<string, unknown>)) {
    if (key === 'timestampToleranceSeconds') {
      if (
        value !== null &&
        !(Number.isSafeInteger(value) && (value as number) >= 0 && (value as number) <= MAX_TOLERANCE_SECONDS)
      ) {
        return {
          ok: false,
          message: `timestampToleranceSeconds must be null (no window) or an integer in [0, ${MAX_TOLERANCE_SECONDS}], got ${JSON.stringify(value)}`,
        };
      }
      out.timestampToleranceSeconds = value as number | null;
    } else if (key === 'pendingQueryForm') {
      if (!isPendingQueryForm(value))
        return {
          ok: false,
          message: `pendingQueryForm must be one of ${PENDING_QUERY_FORMS.join(', ')}, got ${JSON.stringify(value)}`,
        };
      out.pendingQueryForm = value;
    } else {
      return { ok: false, message: `unknown behaviour "${key}" (known: timestampToleranceSeconds, pendingQueryForm)` };
    }
  }
  return { ok: true, value: out };
}

/** A tolerance as written on the command line / in an env var: seconds, or `off` / `none` for no window. */
export function parseToleranceText(name: string, raw: string): number | null {
  const text = raw.trim().toLowerCase();
  if (text === 'off' || text === 'none') return null;
  if (!/^\d+$/.test(text)) throw new Error(`${name} must be a whole number of seconds or "off", got "${raw}"`);
  const parsed = parseBehaviour({ timestampToleranceSeconds: Number(text) });
  if (!parsed.ok) throw new Error(`${name}: ${parsed.message}`);
  return parsed.value.timestampToleranceSeconds ?? null;
}

export function parsePendingFormText(name: string, raw: string): PendingQueryForm {
  const text = raw.trim();
  if (!isPendingQueryForm(text))
    throw new Error(`${name} must be one of ${PENDING_QUERY_FORMS.join(', ')}, got "${raw}"`);
  return text;
}

/**
 * Behaviour for the CLI: env vars SIM_TIMESTAMP_TOLERANCE_SECONDS / SIM_PENDING_QUERY_FORM, overridden by the
 * flags --timestamp-tolerance-seconds / --pending-query-form (`--flag value` or `--flag=value`). Unknown flags
 * and bad values throw with a message.
 */
export function behaviourFromCli(env: NodeJS.ProcessEnv, argv: readonly string[]): Partial<SimBehaviour> {
  const out: Partial<SimBehaviour> = {};
  const tolEnv = env['SIM_TIMESTAMP_TOLERANCE_SECONDS'];
  if (tolEnv !== undefined && tolEnv.trim() !== '')
    out.timestampToleranceSeconds = parseToleranceText('SIM_TIMESTAMP_TOLERANCE_SECONDS', tolEnv);
  const formEnv = env['SIM_PENDING_QUERY_FORM'];
  if (formEnv !== undefined && formEnv.trim() !== '')
    out.pendingQueryForm = parsePendingFormText('SIM_PENDING_QUERY_FORM', formEnv);

  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i] ?? '';
    if (arg === '--') continue; // `pnpm sim -- --flag value` may pass the separator through
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(arg);
    if (!m)
      throw new Error(
        `unexpected argument "${arg}" (flags: --timestamp-tolerance-seconds <seconds|off>, --pending-query-form <${PENDING_QUERY_FORMS.join('|')}>)`,
      );
    const flag = m[1] ?? '';
    if (flag !== 'timestamp-tolerance-seconds' && flag !== 'pending-query-form') {
      throw new Error(`unknown flag --${flag} (flags: --timestamp-tolerance-seconds, --pending-query-form)`);
    }
    let value = m[2];
    if (value === undefined) {
      value = argv[i + 1];
      i += 1;
      if (value === undefined || value.startsWith('--')) throw new Error(`--${flag} needs a value`);
    }
    if (flag === 'timestamp-tolerance-seconds') out.timestampToleranceSeconds = parseToleranceText(`--${flag}`, value);
    else out.pendingQueryForm = parsePendingFormText(`--${flag}`, value);
  }
  return out;
}
