import { AppError } from '../common/errors';
import type { ProviderName } from './providers/payment-provider';

/**
 * Per-shop merchant accounts, the part every provider shares (merchant-accounts.service.ts). What
 * is particular to a provider (its fields, their validation, how to verify them, what the
 * platform's own account is) is its AccountKind, in its folder (providers/<name>/<name>.account.ts),
 * registered at module init.
 */

/** A validated PUT body, split into what is stored in clear and what is sealed. */
export interface AccountInput {
  environment: string;
  /** Non-secret fields, stored in clear and shown on reads. */
  settings: Record<string, string>;
  /** Secret fields (sealed at rest, never shown); null for an account that borrows a chain's credentials. */
  secrets: Record<string, string> | null;
  /** Chain: the shop whose active account lends its credentials (platform operators only). */
  credentialsShopId?: string;
}

/** The credentials a payment is made with, decrypted. Never log, never return. */
export interface ResolvedAccount {
  /** merchant_accounts.id of the row whose credentials these are; null = the platform's account from the environment. */
  accountId: string | null;
  /** The shop's own row when it is not the credentials row (a chain branch), else equal to accountId. */
  shopAccountId: string | null;
  provider: ProviderName;
  environment: string;
  /** The credentials row's settings, with the shop row's own ones (e.g. a branch's till number) on top. */
  settings: Readonly<Record<string, string>>;
  secrets: Readonly<Record<string, string>>;
}

export type VerificationResult = 'ok' | 'failed' | 'not_verifiable';

export interface VerificationPart {
  /** e.g. "consumer key and secret", "shortcode and passkey", "till number" */
  part: string;
  result: VerificationResult;
  /** For a back-office screen; never carries a secret. */
  message: string;
}

export interface AccountKind {
  provider: ProviderName;
  /** "M-Pesa", "Flutterwave", "Pesapal" */
  label: string;
  /** Secret field names, as in the PUT body. */
  secretFields: readonly string[];
  /**
   * Validates a PUT body (a plain object) into an AccountInput; throws ValidationFailedError
   * naming the field, with a message a back-office screen can show. `linked`: the body names a
   * chain's credentials (credentialsFromShopId), so no secrets may be given.
   */
  parse(body: Record<string, unknown>, linked: boolean): AccountInput;
  /** The platform's account from the environment, or null when this deployment has none for the provider. */
  platformAccount(): ResolvedAccount | null;
  /** Checks, without charging anyone, what can be checked; says what could not be. */
  verify(account: ResolvedAccount): Promise<VerificationPart[]>;
}

/** A shop has no account of its own for the provider and the deployment has no platform account to fall back on. */
export class MerchantAccountRequiredError extends AppError {
  constructor(label: string, removed = false) {
    super(
      'MERCHANT_ACCOUNT_REQUIRED',
      removed
        ? `This shop's own ${label} account was removed: a manager sets it up again before taking ${label} payments (they do not go to the platform's account)`
        : `This shop has no ${label} account set up yet: a manager adds it under Settings > Payments before taking ${label} payments`,
      409,
    );
  }
}

/**
 * A stored account whose secrets cannot be opened (its key is not in CREDENTIALS_KEYS, or the
 * ciphertext does not authenticate). Fails closed: nothing is sent to the provider.
 */
export class MerchantAccountUnreadableError extends AppError {
  constructor(label: string, accountId: string, why: string) {
    super(
      'MERCHANT_ACCOUNT_UNREADABLE',
      `The ${label} account ${accountId} of this shop cannot be read (${why}); nothing was sent to ${label}. An administrator must restore its key or set the account again.`,
      503,
      { accountId },
      { 'Retry-After': '60' },
    );
  }
}
