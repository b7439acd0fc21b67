import { Logger } from '@nestjs/common';
import type { AppConfig, HostedProviderEnv } from '../../../config/app-config';
import { ProviderError } from '../provider-errors';
import { PesapalProvider } from './pesapal.provider';
import type { PesapalIpnType } from './pesapal.types';
import { ipnSettingsKey } from './pesapal.helpers';
import { ProviderSettingsRepository } from './provider-settings.repository';

/** What provider_settings holds for one IPN registration (no secrets). */
export interface StoredIpn {
  ipnId: string;
  url: string;
  /** how Pesapal calls it (our endpoint accepts both) */
  type: PesapalIpnType;
  /** the Pesapal API it was registered with: a registration is only valid there */
  baseUrl: string;
  registeredAt: string;
}

export interface PesapalIpnOptions {
  env: HostedProviderEnv;
  baseUrl: string;
  /** `${PUBLIC_BASE_URL}/payments/pesapal/callback` */
  ipnUrl: string;
  type: PesapalIpnType;
  /** Whose registration: a merchant_accounts id, or 'platform' (the default) for the deployment's own account. */
  account?: string;
}

export interface EnsuredIpn {
  ipn: StoredIpn;
  /** where the id came from: this process, the database (another instance / an earlier run) or Pesapal just now */
  source: 'memory' | 'database' | 'pesapal';
}

/** Where Pesapal must send IPNs and the customer's browser for this deployment. */
export function pesapalUrls(config: Pick<AppConfig, 'publicBaseUrl'>): { ipnUrl: string; returnUrl: string } {
  return {
    ipnUrl: `${config.publicBaseUrl}/payments/pesapal/callback`,
    returnUrl: `${config.publicBaseUrl}/payments/pesapal/return`,
  };
}

/** The Pesapal adapter for this configuration, or null when Pesapal is switched off. */
export function createPesapalProvider(config: AppConfig): PesapalProvider | null {
  const c = config.pesapal;
  if (!c.enabled) return null;
  if (!c.baseUrl) {
    throw new Error(
      'Pesapal base URL is not set: with PESAPAL_ENV=simulator the embedded simulator must be started first (pnpm dev does it), or set PESAPAL_BASE_URL',
    );
  }
  return new PesapalProvider({
    baseUrl: c.baseUrl,
    consumerKey: c.consumerKey,
    consumerSecret: c.consumerSecret,
    timeoutMs: c.timeoutMs,
    allowFractionalAmounts: c.allowFractionalAmounts,
    ipnNotificationType: c.ipnNotificationType,
  });
}

export function ipnOptionsFor(config: AppConfig): PesapalIpnOptions {
  if (!config.pesapal.baseUrl) throw new Error('Pesapal base URL is not set');
  return {
    env: config.pesapal.env,
    baseUrl: config.pesapal.baseUrl,
    ipnUrl: pesapalUrls(config).ipnUrl,
    type: config.pesapal.ipnNotificationType,
  };
}

/**
 * The IPN registration every SubmitOrderRequest carries (`notification_id`): a notification_id
 * belongs to the Pesapal merchant that registered it, so there is one per merchant account
 * (a shop's own, or the platform's), environment and IPN URL, stored in provider_settings under
 * `pesapal:ipn:<env>:<account id | platform>:<sha256 of the URL>` and reused by every instance
 * and every restart.
 *
 * Lookup order: this process's copy → the database → Pesapal (GetIpnList, and RegisterIPN only if
 * the URL is not registered yet). The Pesapal step runs under an advisory lock on the key, so
 * instances booting together register once. Concurrent callers in one process share one lookup.
 * A failure is not remembered: the next caller tries again (boot never fails because Pesapal is
 * briefly unreachable).
 */
export class PesapalIpnService {
  private readonly logger = new Logger(PesapalIpnService.name);
  private current?: StoredIpn;
  private inflight?: Promise<EnsuredIpn>;
  readonly key: string;

  constructor(
    private readonly provider: PesapalProvider,
    private readonly settings: ProviderSettingsRepository,
    readonly options: PesapalIpnOptions,
  ) {
    this.key = ipnSettingsKey(options.env, options.ipnUrl, options.account ?? 'platform');
  }

  /** The notification_id to send with an order. */
  async ipnId(): Promise<string> {
    if (this.current) return this.current.ipnId;
    return (await this.ensure()).ipn.ipnId;
  }

  /** Makes sure a registration exists (single-flight in this process, locked across instances). */
  ensure(): Promise<EnsuredIpn> {
    if (this.current) return Promise.resolve({ ipn: this.current, source: 'memory' });
    if (!this.inflight) {
      const p = this.load().finally(() => {
        if (this.inflight === p) this.inflight = undefined;
      });
      this.inflight = p;
    }
    return this.inflight;
  }

  /**
   * Pesapal refused `staleId` ("Invalid IPN URL ID provided"): forget it here, in the adapter and in
   * the database (unless another instance already stored a different one), and get a valid id.
   */
  async replaceStale(staleId: string): Promise<string> {
    if (this.current?.ipnId === staleId) this.current = undefined;
    this.logger.warn(`Pesapal no longer accepts IPN id ${staleId}; looking it up again`);
    this.provider.forgetIpn(this.options.ipnUrl);
    const { value } = await this.settings.getOrProduce<StoredIpn>(
      this.key,
      (cur) => this.usable(cur) && cur!.ipnId !== staleId,
      () => this.fromPesapal(staleId),
    );
    this.current = value;
    return value.ipnId;
  }

  /**
   * For the CLI: checks the stored id against Pesapal's GetIpnList and replaces it when Pesapal
   * does not list it any more.
   */
  async verifyWithPesapal(): Promise<{ ipn: StoredIpn; listed: boolean; replaced: boolean }> {
    const { ipn } = await this.ensure();
    const listed = (await this.provider.listIpns()).some((i) => i.ipnId === ipn.ipnId);
    if (listed) return { ipn, listed, replaced: false };
    await this.replaceStale(ipn.ipnId);
    return { ipn: this.current as StoredIpn, listed, replaced: true };
  }

  private async load(): Promise<EnsuredIpn> {
    const stored = await this.settings.get<StoredIpn>(this.key);
    if (this.usable(stored)) {
      this.current = stored!;
      return { ipn: stored!, source: 'database' };
    }
    const { value, produced } = await this.settings.getOrProduce<StoredIpn>(
      this.key,
      (cur) => this.usable(cur),
      () => this.fromPesapal(),
    );
    this.current = value;
    if (produced) this.logger.log(`Pesapal IPN ${value.ipnId} (${value.type}) stored for ${this.options.env}`);
    return { ipn: value, source: produced ? 'pesapal' : 'database' };
  }

  /** A stored registration is used only for the same URL and the same Pesapal API. */
  private usable(v: StoredIpn | null): boolean {
    return (
      !!v &&
      typeof v.ipnId === 'string' &&
      v.ipnId.length > 0 &&
      v.url === this.options.ipnUrl &&
      v.baseUrl === this.options.baseUrl
    );
  }

  private async fromPesapal(staleId?: string): Promise<StoredIpn> {
    const found = await this.provider.ensureIpn(this.options.ipnUrl, this.options.type);
    if (staleId && found.ipnId === staleId) {
      // GetIpnList still lists the id SubmitOrderRequest just refused: nothing we can fix from here.
      this.provider.forgetIpn(this.options.ipnUrl);
      throw new ProviderError(
        'pesapal',
        'rejected',
        `Pesapal refuses IPN id ${staleId} but still lists it for this URL; check the IPN settings in the Pesapal dashboard`,
      );
    }
    return {
      ipnId: found.ipnId,
      url: this.options.ipnUrl,
      type: found.notificationType ?? this.options.type,
      baseUrl: this.options.baseUrl,
      registeredAt: new Date().toISOString(),
    };
  }
}
