/**
 * Daraja apps (consumer key/secret, the shortcodes they went live for) and Lipa-na-M-Pesa accounts
 * (shortcode, passkey, tills): the start-up ones and those registered while running.
 */
import type { SimAccountInfo, SimAppInfo, SimInitiatorRole, SimRegistration, SimulatorAccount } from './types';

/** The initiator (API operator) every account has unless it names its own (the Daraja sandbox's test operator). */
export const DEFAULT_INITIATOR_NAME = 'testapi';
export const DEFAULT_INITIATOR_PASSWORD = 'Safaricom999!*!';
export const INITIATOR_ROLES: readonly SimInitiatorRole[] = Object.freeze(['reversal', 'status']);

const SHORTCODE_PATTERN = /^\d{5,7}$/;

export type Parsed<T> = { ok: true; value: T } | { ok: false; message: string };

/** An app as stored: shortcodes sorted and de-duplicated, empty = may use any shortcode. */
export interface StoredApp {
  consumerKey: string;
  consumerSecret: string;
  shortcodes: string[];
}

export interface StoredAccount {
  shortcode: string;
  passkey: string;
  tillNumbers: string[];
  initiatorName: string;
  /** never listed, logged or recorded */
  initiatorPassword: string;
  /** sorted, de-duplicated */
  initiatorRoles: SimInitiatorRole[];
  initiatorLocked: boolean;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function nonEmptyString(v: unknown): v is string {
  return typeof v === 'string' && v.length > 0;
}

function shortcodeList(v: unknown, name: string): Parsed<string[]> {
  if (v === undefined) return { ok: true, value: [] };
  if (!Array.isArray(v)) return { ok: false, message: `${name} must be an array of 5-7 digit strings` };
  for (const [i, s] of v.entries()) {
    if (typeof s !== 'string' || !SHORTCODE_PATTERN.test(s)) {
      return { ok: false, message: `${name}[${i}] must be a 5-7 digit string` };
    }
  }
  return { ok: true, value: [...new Set(v as string[])].sort() };
}

function unknownKeys(v: Record<string, unknown>, allowed: readonly string[], name: string): string | undefined {
  const extra = Object.keys(v).filter((k) => !allowed.includes(k));
  return extra.length ? `${name}: unknown field(s) ${extra.join(', ')}` : undefined;
}

export function parseApp(v: unknown, name = 'app'): Parsed<StoredApp> {
  if (!isRecord(v)) return { ok: false, message: `${name} must be {"consumerKey", "consumerSecret", "shortcodes"?}` };
  const extra = unknownKeys(v, ['consumerKey', 'consumerSecret', 'shortcodes'], name);
  if (extra) return { ok: false, message: extra };
  if (!nonEmptyString(v['consumerKey']))
    return { ok: false, message: `${name}.consumerKey must be a non-empty string` };
  if (!nonEmptyString(v['consumerSecret'])) {
    return { ok: false, message: `${name}.consumerSecret must be a non-empty string` };
  }
  if (v['consumerKey'].includes(':')) return { ok: false, message: `${name}.consumerKey must not contain ":"` };
  const shortcodes = shortcodeList(v['shortcodes'], `${name}.shortcodes`);
  if (!shortcodes.ok) return shortcodes;
  return {
    ok: true,
    value: { consumerKey: v['consumerKey'], consumerSecret: v['consumerSecret'], shortcodes: shortcodes.value },
  };
}

export function parseAccount(v: unknown, name = 'account'): Parsed<StoredAccount> {
  if (!isRecord(v)) {
    return {
      ok: false,
      message: `${name} must be {"shortcode", "passkey", "tillNumbers"?, "initiatorName"?, "initiatorPassword"?, "initiatorRoles"?, "initiatorLocked"?}`,
    };
  }
  const extra = unknownKeys(
    v,
    ['shortcode', 'passkey', 'tillNumbers', 'initiatorName', 'initiatorPassword', 'initiatorRoles', 'initiatorLocked'],
    name,
  );
  if (extra) return { ok: false, message: extra };
  const shortcode = v['shortcode'];
  if (typeof shortcode !== 'string' || !SHORTCODE_PATTERN.test(shortcode)) {
    return { ok: false, message: `${name}.shortcode must be 5-7 digits` };
  }
  if (!nonEmptyString(v['passkey'])) return { ok: false, message: `${name}.passkey must be a non-empty string` };
  const tills = shortcodeList(v['tillNumbers'], `${name}.tillNumbers`);
  if (!tills.ok) return tills;
  const initiatorName = v['initiatorName'] ?? DEFAULT_INITIATOR_NAME;
  if (!nonEmptyString(initiatorName)) return { ok: false, message: `${name}.initiatorName must be a non-empty string` };
  const initiatorPassword = v['initiatorPassword'] ?? DEFAULT_INITIATOR_PASSWORD;
  if (!nonEmptyString(initiatorPassword)) {
    return { ok: false, message: `${name}.initiatorPassword must be a non-empty string` };
  }
  const roles = v['initiatorRoles'] ?? INITIATOR_ROLES;
  if (!Array.isArray(roles) || !roles.every((r) => INITIATOR_ROLES.includes(r as SimInitiatorRole))) {
    return { ok: false, message: `${name}.initiatorRoles must be an array of ${INITIATOR_ROLES.join(', ')}` };
  }
  const locked = v['initiatorLocked'] ?? false;
  if (typeof locked !== 'boolean') return { ok: false, message: `${name}.initiatorLocked must be a boolean` };
  return {
    ok: true,
    value: {
      shortcode,
      passkey: v['passkey'],
      tillNumbers: tills.value,
      initiatorName,
      initiatorPassword,
      initiatorRoles: [...new Set(roles as SimInitiatorRole[])].sort(),
      initiatorLocked: locked,
    },
  };
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function appInfo(a: StoredApp): SimAppInfo {
  return { consumerKey: a.consumerKey, shortcodes: [...a.shortcodes] };
}

function accountInfo(a: StoredAccount): SimAccountInfo {
  return { shortcode: a.shortcode, tillNumbers: [...a.tillNumbers] };
}

/** Thrown by register*() when the key / shortcode is already defined with other values. */
export class RegistrationConflict extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RegistrationConflict';
  }
}

export class Registry {
  private readonly apps = new Map<string, StoredApp>();
  private readonly accounts = new Map<string, StoredAccount>();

  constructor(apps: readonly StoredApp[], accounts: readonly StoredAccount[]) {
    for (const a of apps) this.apps.set(a.consumerKey, a);
    for (const a of accounts) this.accounts.set(a.shortcode, a);
  }

  credentialsMatch(consumerKey: string, consumerSecret: string): boolean {
    return this.apps.get(consumerKey)?.consumerSecret === consumerSecret;
  }

  hasApp(consumerKey: string): boolean {
    return this.apps.has(consumerKey);
  }

  /** Whether the app may use this BusinessShortCode (an app with no shortcodes may use any). */
  appMayUse(consumerKey: string, shortcode: string): boolean {
    const app = this.apps.get(consumerKey);
    if (!app) return false;
    return app.shortcodes.length === 0 || app.shortcodes.includes(shortcode);
  }

  /** The account with its initiator (password included): for the simulator's own checks only, never to be listed. */
  storedAccount(shortcode: string): StoredAccount | undefined {
    const a = this.accounts.get(shortcode);
    return a ? { ...a, tillNumbers: [...a.tillNumbers], initiatorRoles: [...a.initiatorRoles] } : undefined;
  }

  account(shortcode: string): SimulatorAccount | undefined {
    const a = this.accounts.get(shortcode);
    return a ? { shortcode: a.shortcode, passkey: a.passkey, tillNumbers: [...a.tillNumbers] } : undefined;
  }

  listApps(): SimAppInfo[] {
    return [...this.apps.values()].map(appInfo);
  }

  listAccounts(): SimAccountInfo[] {
    return [...this.accounts.values()].map(accountInfo);
  }

  /** Adds the app; the same values again are a no-op ('unchanged'); other values for a known key throw. */
  registerApp(app: StoredApp): SimRegistration<SimAppInfo> {
    const existing = this.apps.get(app.consumerKey);
    if (existing) {
      if (existing.consumerSecret !== app.consumerSecret || !sameList(existing.shortcodes, app.shortcodes)) {
        // Never echo either secret.
        throw new RegistrationConflict(
          `an app with this consumerKey is already registered with a different ${existing.consumerSecret !== app.consumerSecret ? 'consumerSecret' : 'shortcodes list'}`,
        );
      }
      return { outcome: 'unchanged', value: appInfo(existing) };
    }
    const stored: StoredApp = { ...app, shortcodes: [...app.shortcodes] };
    this.apps.set(app.consumerKey, stored);
    return { outcome: 'created', value: appInfo(stored) };
  }

  registerAccount(account: StoredAccount): SimRegistration<SimAccountInfo> {
    const existing = this.accounts.get(account.shortcode);
    if (existing) {
      const differs =
        existing.passkey !== account.passkey
          ? 'passkey'
          : !sameList(existing.tillNumbers, account.tillNumbers)
            ? 'tillNumbers list'
            : existing.initiatorName !== account.initiatorName ||
                existing.initiatorPassword !== account.initiatorPassword
              ? 'initiator'
              : !sameList(existing.initiatorRoles, account.initiatorRoles) ||
                  existing.initiatorLocked !== account.initiatorLocked
                ? 'initiator roles/lock'
                : undefined;
      if (differs) {
        // Never echo a passkey or initiator password.
        throw new RegistrationConflict(
          `shortcode ${account.shortcode} is already registered with a different ${differs}`,
        );
      }
      return { outcome: 'unchanged', value: accountInfo(existing) };
    }
    const stored: StoredAccount = {
      ...account,
      tillNumbers: [...account.tillNumbers],
      initiatorRoles: [...account.initiatorRoles],
    };
    this.accounts.set(account.shortcode, stored);
    return { outcome: 'created', value: accountInfo(stored) };
  }
}
