import { randomUUID } from 'node:crypto';
import { accountEnvironment, refuseUnknownFields } from '../../merchant-account-fields';
import { ValidationFailedError } from '../../../common/errors';
import { AppConfig, FLUTTERWAVE_BASE_URLS, HostedProviderEnv } from '../../../config/app-config';
import type { AccountInput, AccountKind, ResolvedAccount, VerificationPart } from '../../merchant-accounts.types';
import { ProviderError } from '../provider-errors';
import { FlutterwaveProvider } from './flutterwave.provider';
import { FLW_CHECKOUT_SESSION_MINUTES, FLW_MAX_RETRY_ATTEMPTS } from './flutterwave.helpers';

const FIELDS = ['environment', 'secretKey', 'secretHash'];
/** A chain branch (credentialsFromShopId) pays into its head office's Flutterwave account: it brings nothing else. */
const LINKED_FIELDS = ['environment'];
/** flutterwave.md §1: live secret keys are FLWSECK-…, test-mode ones FLWSECK_TEST-… (the key decides the mode). */
const LIVE_KEY = /^FLWSECK-[\x21-\x7e]{8,200}$/;
const TEST_KEY = /^FLWSECK_TEST-[\x21-\x7e]{8,200}$/;
const HASH = /^[\x21-\x7e]{1,200}$/;
/** FLUTTERWAVE_SECRET_HASH's rule (app-config.ts): the hash is all that authenticates a webhook. */
const HASH_MIN_LENGTH = 16;
/** Adapters kept (one per account used lately); rows are immutable, so an account id's adapter never goes stale. */
const ADAPTER_CACHE_LIMIT = 1000;

/**
 * Flutterwave v3 merchant accounts: the shop's secret key (every API call) and the secret hash it
 * set on its dashboard (the verif-hash of its webhooks). A chain branch (credentialsFromShopId, set
 * by an operator) uses its head office's key and hash: its payments are that merchant's.
 */
export class FlutterwaveAccountKind implements AccountKind {
  readonly provider = 'flutterwave' as const;
  readonly label = 'Flutterwave';
  readonly secretFields = ['secretKey', 'secretHash'] as const;
  private readonly adapters = new Map<string, FlutterwaveProvider>();

  constructor(private readonly config: AppConfig) {}

  /**
   * The adapter (request builder / parser) for an account, built once per account id and kept:
   * a merchant_accounts row never changes (a change is a new row with a new id), and the
   * platform's account is fixed for the life of the process. Each adapter redacts its own
   * account's key and hash from whatever it logs or reports.
   */
  adapterFor(account: ResolvedAccount): FlutterwaveProvider {
    const key = account.accountId ?? 'platform';
    const hit = this.adapters.get(key);
    if (hit) return hit;
    const adapter = new FlutterwaveProvider(this.adapterConfig(account));
    if (this.adapters.size >= ADAPTER_CACHE_LIMIT) this.adapters.delete(this.adapters.keys().next().value as string);
    this.adapters.set(key, adapter);
    return adapter;
  }

  parse(body: Record<string, unknown>, linked: boolean): AccountInput {
    refuseUnknownFields(body, { own: FIELDS, linked: LINKED_FIELDS }, linked, 'Flutterwave');
    const environment = accountEnvironment(body.environment, this.config.flutterwave.env);
    if (linked) return { environment, settings: {}, secrets: null };
    return {
      environment,
      settings: {},
      secrets: {
        secretKey: secretKey(body.secretKey, environment),
        secretHash: secretHash(body.secretHash, environment),
      },
    };
  }

  platformAccount(): ResolvedAccount | null {
    const f = this.config.flutterwave;
    if (!f.enabled || !f.secretKey) return null;
    return {
      accountId: null,
      shopAccountId: null,
      provider: 'flutterwave',
      environment: f.env,
      settings: {},
      secrets: { secretKey: f.secretKey, secretHash: f.secretHash },
    };
  }

  /** The base URL for an account's environment: the deployment's own one (a proxy, the simulator) for its own environment, else Flutterwave's. */
  baseUrlFor(environment: string): string {
    const f = this.config.flutterwave;
    if (environment === f.env && f.baseUrl) return f.baseUrl;
    if (environment === 'simulator')
      throw new Error('a simulator Flutterwave account needs the deployment to run the simulator');
    return FLUTTERWAVE_BASE_URLS[environment as Exclude<HostedProviderEnv, 'simulator'>];
  }

  /** What FlutterwaveProvider is built with for this account. */
  adapterConfig(account: ResolvedAccount): ConstructorParameters<typeof FlutterwaveProvider>[0] {
    const f = this.config.flutterwave;
    return {
      baseUrl: this.baseUrlFor(account.environment),
      secretKey: account.secrets.secretKey,
      secretHash: account.secrets.secretHash,
      timeoutMs: f.timeoutMs,
      currencies: ['KES'],
      allowFractionalAmounts: f.allowFractionalAmounts,
      sessionDurationMinutes: FLW_CHECKOUT_SESSION_MINUTES,
      maxRetryAttempts: FLW_MAX_RETRY_ATTEMPTS,
    };
  }

  /**
   * Without charging anyone: a verify_by_reference for a tx_ref we never issued needs the secret
   * key (401 "Invalid authorization key" for a wrong one) and answers "No transaction was found"
   * for a good one. The secret hash is only ever sent by Flutterwave with a webhook: it cannot be
   * checked from here.
   */
  async verify(account: ResolvedAccount): Promise<VerificationPart[]> {
    const part = 'secret key';
    let keyPart: VerificationPart;
    try {
      const st = await this.adapterFor(account).fetchStatus({ reference: `smartduka-verify-${randomUUID()}` });
      keyPart =
        st.status === 'not_found'
          ? { part, result: 'ok', message: 'Flutterwave accepted the secret key (a status check reached the lookup)' }
          : { part, result: 'not_verifiable', message: `Flutterwave answered the check unexpectedly (${st.status})` };
    } catch (err) {
      if (err instanceof ProviderError && err.kind === 'auth')
        keyPart = {
          part,
          result: 'failed',
          message: `Flutterwave refused the secret key (HTTP ${err.providerHttpStatus ?? '?'}): check it, and that it is a ${account.environment === 'production' ? 'live' : 'test'} key`,
        };
      else if (err instanceof ProviderError && err.kind === 'rejected')
        keyPart = { part, result: 'failed', message: 'Flutterwave refused the check: check the secret key' };
      else
        keyPart = {
          part,
          result: 'not_verifiable',
          message: `Flutterwave could not be asked just now (${err instanceof ProviderError ? err.kind : 'error'}): try again`,
        };
    }
    return [
      keyPart,
      {
        part: 'secret hash',
        result: 'not_verifiable',
        message:
          "Flutterwave sends the secret hash only with webhooks: it must equal the one on the shop's Flutterwave dashboard (Settings > Webhooks); the first webhook confirms it",
      },
    ];
  }
}

function secretKey(v: unknown, environment: string): string {
  if (typeof v !== 'string' || v === '')
    throw new ValidationFailedError(
      "secretKey is required: the secret key from the shop's Flutterwave dashboard (Settings > API keys)",
      { field: 'secretKey' },
    );
  const live = LIVE_KEY.test(v);
  const test = TEST_KEY.test(v);
  if (!live && !test)
    throw new ValidationFailedError(
      'secretKey must be a Flutterwave secret key: FLWSECK-… (live) or FLWSECK_TEST-… (test mode), no spaces (not the public key FLWPUBK-… or the encryption key)',
      { field: 'secretKey' },
    );
  if (environment === 'production' && !live)
    throw new ValidationFailedError(
      'secretKey is a test-mode key (FLWSECK_TEST-…): a production account needs the live key (FLWSECK-…)',
      { field: 'secretKey' },
    );
  if (environment === 'sandbox' && !test)
    throw new ValidationFailedError(
      'secretKey is a live key (FLWSECK-…): a sandbox account needs the test-mode key (FLWSECK_TEST-…)',
      { field: 'secretKey' },
    );
  return v;
}

function secretHash(v: unknown, environment: string): string {
  if (typeof v !== 'string' || v === '')
    throw new ValidationFailedError(
      "secretHash is required: the secret hash set on the shop's Flutterwave dashboard (Settings > Webhooks)",
      { field: 'secretHash' },
    );
  if (!HASH.test(v))
    throw new ValidationFailedError('secretHash must be up to 200 characters without spaces', { field: 'secretHash' });
  if (environment !== 'simulator' && v.length < HASH_MIN_LENGTH)
    throw new ValidationFailedError(
      `secretHash must be at least ${HASH_MIN_LENGTH} characters (got ${v.length}): it is all that proves a webhook comes from Flutterwave; set a longer one on the dashboard`,
      { field: 'secretHash' },
    );
  return v;
}
