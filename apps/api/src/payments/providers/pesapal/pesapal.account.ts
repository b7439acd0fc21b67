import { ValidationFailedError } from '../../../common/errors';
import { accountEnvironment, refuseUnknownFields } from '../../merchant-account-fields';
import { AppConfig, HostedProviderEnv, PESAPAL_BASE_URLS } from '../../../config/app-config';
import type { AccountInput, AccountKind, ResolvedAccount, VerificationPart } from '../../merchant-accounts.types';
import { ProviderError } from '../provider-errors';
import { PesapalIpnService, pesapalUrls } from './pesapal-ipn.service';
import { PesapalProvider } from './pesapal.provider';
import type { PesapalConfig } from './pesapal.types';
import { ProviderSettingsRepository } from './provider-settings.repository';

const FIELDS = ['environment', 'consumerKey', 'consumerSecret'];
/** A chain branch (credentialsFromShopId) pays into its head office's Pesapal account: it brings nothing else. */
const LINKED_FIELDS = ['environment'];
/** Pesapal's keys and secrets are opaque printable strings (e.g. 28-character base64): no spaces. */
const CREDENTIAL = /^[\x21-\x7e]{8,200}$/;
/** Clients kept (one per account used lately); rows are immutable, so an account id's client never goes stale. */
const CLIENT_CACHE_LIMIT = 1000;

/** What every call for one account goes through: its adapter (token cache) and its IPN registration. */
export interface PesapalClient {
  provider: PesapalProvider;
  ipn: PesapalIpnService;
}

/**
 * Pesapal API 3.0 merchant accounts: the consumer key and secret Pesapal emailed the merchant.
 * Each account has its own token and its own IPN registration (a notification_id belongs to the
 * merchant that registered it), stored in provider_settings under a key naming the account. A chain
 * branch (credentialsFromShopId, set by an operator) uses its head office's account, token and IPN
 * registration: its payments are that merchant's.
 */
export class PesapalAccountKind implements AccountKind {
  readonly provider = 'pesapal' as const;
  readonly label = 'Pesapal';
  readonly secretFields = ['consumerKey', 'consumerSecret'] as const;
  private readonly clients = new Map<string, PesapalClient>();

  constructor(
    private readonly config: AppConfig,
    private readonly settings: ProviderSettingsRepository,
    /** The platform account's adapter and IPN registration (built by the module), or null when Pesapal is off. */
    private readonly platform: PesapalClient | null,
  ) {}

  parse(body: Record<string, unknown>, linked: boolean): AccountInput {
    refuseUnknownFields(body, { own: FIELDS, linked: LINKED_FIELDS }, linked, 'Pesapal');
    const environment = accountEnvironment(body.environment, this.config.pesapal.env);
    if (linked) return { environment, settings: {}, secrets: null };
    return {
      environment,
      settings: {},
      secrets: {
        consumerKey: credential(body.consumerKey, 'consumerKey', 'consumer key'),
        consumerSecret: credential(body.consumerSecret, 'consumerSecret', 'consumer secret'),
      },
    };
  }

  platformAccount(): ResolvedAccount | null {
    const c = this.config.pesapal;
    if (!c.enabled || !c.consumerKey || !c.consumerSecret) return null;
    return {
      accountId: null,
      shopAccountId: null,
      provider: 'pesapal',
      environment: c.env,
      settings: {},
      secrets: { consumerKey: c.consumerKey, consumerSecret: c.consumerSecret },
    };
  }

  /**
   * The adapter and IPN registration of an account, built once per account id and kept (a
   * merchant_accounts row never changes: a change is a new row). The platform's are the module's.
   */
  clientFor(account: ResolvedAccount): PesapalClient {
    if (account.accountId === null) {
      if (!this.platform) throw new Error('Pesapal is switched off: there is no platform account');
      return this.platform;
    }
    const hit = this.clients.get(account.accountId);
    if (hit) return hit;
    const provider = new PesapalProvider(this.adapterConfig(account));
    const client: PesapalClient = {
      provider,
      ipn: new PesapalIpnService(provider, this.settings, {
        env: account.environment as HostedProviderEnv,
        baseUrl: this.baseUrlFor(account.environment),
        ipnUrl: pesapalUrls(this.config).ipnUrl,
        type: this.config.pesapal.ipnNotificationType,
        account: account.accountId,
      }),
    };
    if (this.clients.size >= CLIENT_CACHE_LIMIT) this.clients.delete(this.clients.keys().next().value as string);
    this.clients.set(account.accountId, client);
    return client;
  }

  /**
   * Without charging anyone: RequestToken with the key and secret, on a fresh adapter (never a
   * cached token), so the answer is Pesapal's about these credentials now.
   */
  async verify(account: ResolvedAccount): Promise<VerificationPart[]> {
    const part = 'consumer key and secret';
    try {
      await new PesapalProvider(this.adapterConfig(account)).getAccessToken();
      return [{ part, result: 'ok', message: 'Pesapal issued an access token for this consumer key and secret' }];
    } catch (err) {
      if (err instanceof ProviderError && (err.kind === 'auth' || err.kind === 'rejected'))
        return [
          {
            part,
            result: 'failed',
            message: `Pesapal did not issue a token (${err.providerCode ?? err.kind}): check the consumer key and secret, and that they are ${account.environment === 'production' ? 'live' : 'sandbox'} ones`,
          },
        ];
      return [
        {
          part,
          result: 'not_verifiable',
          message: `Pesapal could not be asked just now (${err instanceof ProviderError ? err.kind : 'error'}): try again`,
        },
      ];
    }
  }

  private adapterConfig(account: ResolvedAccount): PesapalConfig {
    const c = this.config.pesapal;
    return {
      baseUrl: this.baseUrlFor(account.environment),
      consumerKey: account.secrets.consumerKey,
      consumerSecret: account.secrets.consumerSecret,
      timeoutMs: c.timeoutMs,
      allowFractionalAmounts: c.allowFractionalAmounts,
      ipnNotificationType: c.ipnNotificationType,
    };
  }

  /** The deployment's own base URL for its own environment (a proxy, the simulator), else Pesapal's. */
  private baseUrlFor(environment: string): string {
    const c = this.config.pesapal;
    if (environment === c.env && c.baseUrl) return c.baseUrl;
    if (environment === 'simulator')
      throw new Error('a simulator Pesapal account needs the deployment to run the simulator');
    return PESAPAL_BASE_URLS[environment as Exclude<HostedProviderEnv, 'simulator'>];
  }
}

function credential(v: unknown, field: string, what: string): string {
  if (typeof v !== 'string' || v === '')
    throw new ValidationFailedError(`${field} is required: the ${what} Pesapal sent the merchant`, { field });
  if (!CREDENTIAL.test(v))
    throw new ValidationFailedError(
      `${field} must be the ${what} Pesapal sent the merchant: 8 to 200 characters, no spaces (got ${v.length} characters)`,
      { field },
    );
  return v;
}
