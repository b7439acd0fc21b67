import { Inject, Injectable, Logger } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import type { AuthUser } from '../../../auth/auth.types';
import { AppError, ConflictError } from '../../../common/errors';
import { safeError } from '../../../common/logging';
import { ProviderError } from '../provider-errors';
import type { AppConfig } from '../../../config/app-config';
import { APP_CONFIG } from '../../../config/config.module';
import type { C2bRegistrationRow, MerchantAccountRow } from '../../../database/schema';
import { MerchantAccountsRepository } from '../../merchant-accounts.repository';
import { MerchantAccountsService } from '../../merchant-accounts.service';
import { C2bRepository } from './c2b.repository';
import { scopedCallbackToken } from './callback-token';
import { DarajaService } from './daraja.service';
import { MpesaAccountKind } from './mpesa.account';

export interface C2bRegistrationView {
  accountId: string;
  environment: string;
  shortcode: string;
  apiVersion: string;
  responseType: string;
  validation: boolean;
  confirmationUrl: string;
  validationUrl: string | null;
  response: Record<string, unknown>;
  forced: boolean;
  registeredBy: string;
  registeredAt: string;
  /** when this registration replaced an earlier one: when that one was made (`another shop`: one of another shop's) */
  replaced?: string;
}

export interface C2bRegisterOptions {
  validation?: boolean;
  responseType?: 'Completed' | 'Cancelled';
  force?: boolean;
}

/** The URLs of one merchant account row, with their capability tokens. */
export function c2bUrls(config: AppConfig, accountId: string): { confirmation: string; validation: string } {
  const base = config.mpesa.c2b.baseUrl;
  const secret = config.mpesa.callbackSigningSecret;
  return {
    confirmation: `${base}/${accountId}/confirmation/${scopedCallbackToken(secret, 'c2b-confirmation', accountId)}`,
    validation: `${base}/${accountId}/validation/${scopedCallbackToken(secret, 'c2b-validation', accountId)}`,
  };
}

/** A URL as it is kept and shown: its last segment (the token) cut off. */
function withoutToken(url: string): string {
  return url.replace(/\/[0-9a-f]{64}$/, '/…');
}

/**
 * Registers a shop's M-Pesa account's C2B URLs with Daraja (registerurl), from the API or
 * `pnpm c2b:register`, and keeps what was registered and when. Production registration is
 * one-time at Safaricom (daraja.md §7.1: changing URLs needs them deleted on the portal or by
 * apisupport), so a second one for the same shortcode is refused unless `force`; the sandbox
 * re-registers freely, and the answer says what it replaced.
 */
@Injectable()
export class C2bRegistrationService {
  private readonly logger = new Logger(C2bRegistrationService.name);

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly c2b: C2bRepository,
    private readonly accountsRepo: MerchantAccountsRepository,
    private readonly accounts: MerchantAccountsService,
    private readonly kind: MpesaAccountKind,
    private readonly daraja: DarajaService,
  ) {}

  async get(user: AuthUser, shopId: string): Promise<C2bRegistrationView | null> {
    this.accounts.authorize(user, shopId);
    const row = await this.ownAccount(shopId);
    // After a rotation the current row has none of its own, but the URLs registered for an older row
    // of the shop (same shortcode) stay in force at Safaricom: those are what was registered.
    const shortcode = (row.settings as Record<string, string>).shortcode;
    const reg =
      (await this.c2b.latestRegistration(row.id)) ??
      (shortcode ? await this.c2b.latestOfShop(shopId, shortcode, row.environment) : null);
    return reg ? view(reg) : null;
  }

  async register(user: AuthUser, shopId: string, options: C2bRegisterOptions): Promise<C2bRegistrationView> {
    this.accounts.authorize(user, shopId);
    return this.registerAs(`user:${user.sub} (${user.role})`, shopId, options);
  }

  /** Also the CLI's entry (actor system:cli), after its own confirmation prompt. */
  async registerAs(actor: string, shopId: string, options: C2bRegisterOptions): Promise<C2bRegistrationView> {
    const row = await this.ownAccount(shopId);
    const settings = row.settings as Record<string, string>;
    // Paybill: its number. Till: the store (head-office) number, as Daraja's portal lists a till's
    // shortcode [inferred, daraja-more.md §4: which number's URLs fire for a till is not documented].
    const shortcode = settings.shortcode;
    const production = row.environment === 'production';
    const resolved = await this.accounts.resolveForExisting(row.id, 'mpesa');
    const urls = c2bUrls(this.config, row.id);
    const validation = options.validation === true;
    const responseType = options.responseType ?? 'Completed';
    // Checked before Daraja is called, and Daraja called outside any transaction (no connection is
    // held while it answers; PGlite has only one). Two admins at the same moment may both get past
    // the check: production Daraja itself refuses the second ("Urls are already registered").
    const previous = await this.c2b.latestForShortcode(shortcode, row.environment);
    // Registrations are looked up by shortcode across shops (Safaricom keeps one set of URLs per
    // shortcode), but another shop's registration is that shop's business: only "registered
    // elsewhere" is said, never who registered it, when, or for which account.
    const ours = previous?.shopId === shopId;
    if (previous && production && !options.force) {
      const at = ours ? ` (${previous.registeredAt.toISOString()} by ${previous.registeredBy})` : '';
      const unknown = outcomeUnknown(previous);
      throw new ConflictError(
        'C2B_ALREADY_REGISTERED',
        (unknown
          ? `A registration of shortcode ${shortcode}'s C2B URLs was sent to M-Pesa${ours ? at : " by another shop's M-Pesa account"} but its answer was never recorded: they may well be registered. Check URL management on the M-Pesa portal. `
          : ours
            ? `Shortcode ${shortcode} already has C2B URLs registered${at}. `
            : `Shortcode ${shortcode} already has C2B URLs registered, by another shop's M-Pesa account. `) +
          'Production registration is one-time at Safaricom: delete the old URLs on the M-Pesa portal (URL management) or through apisupport first, then register again with force: true (the CLI: --force).',
        {
          shortcode,
          ...(ours ? { registeredAt: previous.registeredAt.toISOString(), accountId: previous.merchantAccountId } : {}),
          ...(unknown ? { outcome: 'unknown' } : {}),
        },
      );
    }
    const reg: C2bRegistrationRow = {
      id: randomUUID(),
      merchantAccountId: row.id,
      shopId,
      environment: row.environment,
      shortcode,
      apiVersion: this.config.mpesa.c2b.apiVersion,
      responseType,
      validation,
      confirmationUrl: withoutToken(urls.confirmation),
      validationUrl: validation ? withoutToken(urls.validation) : null,
      response: { outcome: SENT },
      forced: !!previous && options.force === true,
      registeredBy: actor,
      registeredAt: new Date(),
    };
    // Recorded as sent before Daraja is asked: an answer that is lost (a timeout, the database or the
    // process gone after Daraja accepted) still leaves what was sent and when, so production's
    // one-time rule refuses a silent second registration. Daraja is called outside any transaction.
    await this.c2b.insertRegistration(reg);
    let answer: Awaited<ReturnType<DarajaService['registerC2bUrls']>>;
    try {
      answer = await this.daraja.registerC2bUrls(this.kind.toDaraja(resolved), {
        shortcode,
        responseType,
        confirmationUrl: urls.confirmation,
        // Daraja's body always has a ValidationURL; without validation it is never called (off by default, §7.1).
        validationUrl: urls.validation,
        version: this.config.mpesa.c2b.apiVersion,
      });
    } catch (err) {
      // Refused before anything was done (or the sandbox, which re-registers freely): nothing to keep.
      // Otherwise the outcome is unknown and the row says so. Best effort: the database may be gone too.
      const notProcessed = err instanceof ProviderError && err.outcome === 'not_processed';
      const settle =
        notProcessed || !production
          ? this.c2b.deleteRegistration(reg.id)
          : this.c2b.setRegistrationResponse(reg.id, {
              outcome: UNKNOWN,
              error: err instanceof AppError ? err.code : 'ERROR',
            });
      await settle.catch((e: unknown) =>
        this.logger.error({ shopId, err: safeError(e) }, 'C2B registration: recording its failure failed'),
      );
      throw err;
    }
    return this.c2b.transaction(async (tx) => {
      const done: C2bRegistrationRow = { ...reg, response: answer };
      await this.c2b.setRegistrationResponse(reg.id, answer, tx);
      await this.accountsRepo.insertAudit(
        {
          shopId,
          actor,
          action: 'c2b.registered',
          target: `merchant_account:${row.id}`,
          data: {
            shortcode,
            environment: row.environment,
            validation,
            responseType,
            replaced: previous ? (ours ? previous.id : 'another shop') : null,
          },
        },
        tx,
      );
      this.logger.log({ shopId, accountId: row.id, shortcode, replaced: !!previous }, 'C2B URLs registered');
      return {
        ...view(done),
        ...(previous ? { replaced: ours ? previous.registeredAt.toISOString() : 'another shop' } : {}),
      };
    });
  }

  /**
   * What Daraja holds for the simulator environment: per shortcode, the newest registration's URLs
   * (tokens included, for this deployment's current base URL). `pnpm dev` puts them back into its
   * embedded simulator, which forgets them when it restarts (Daraja does not).
   */
  async simulatorRegistrations(): Promise<
    {
      shortcode: string;
      version: 'v1' | 'v2';
      responseType: 'Completed' | 'Cancelled';
      confirmationUrl: string;
      validationUrl: string;
    }[]
  > {
    const seen = new Set<string>();
    const out = [];
    for (const r of await this.c2b.registrationsOf('simulator')) {
      if (seen.has(r.shortcode)) continue;
      seen.add(r.shortcode);
      const urls = c2bUrls(this.config, r.merchantAccountId);
      out.push({
        shortcode: r.shortcode,
        version: r.apiVersion === 'v2' ? ('v2' as const) : ('v1' as const),
        responseType: r.responseType === 'Cancelled' ? ('Cancelled' as const) : ('Completed' as const),
        confirmationUrl: urls.confirmation,
        validationUrl: urls.validation,
      });
    }
    return out;
  }

  /** C2B URLs belong to a shop's own M-Pesa account row (its id is in them). */
  private async ownAccount(shopId: string): Promise<MerchantAccountRow> {
    const row = await this.accountsRepo.findActive(shopId, 'mpesa');
    if (!row)
      throw new AppError(
        'C2B_NOT_AVAILABLE',
        'This shop has no M-Pesa account of its own: till and paybill payments are registered per account (a manager adds it under Settings > Payments first)',
        409,
      );
    if (row.credentialsShopId)
      throw new AppError(
        'C2B_NOT_AVAILABLE',
        `This shop uses the M-Pesa account of shop ${row.credentialsShopId}: its C2B URLs are registered there`,
        409,
      );
    return row;
  }
}

/** c2b_registrations.response until Daraja's answer is recorded / when it never was. */
const SENT = 'sent';
const UNKNOWN = 'unknown';

/** A registration sent whose answer was never recorded (still `sent`, or failed with no answer). */
function outcomeUnknown(r: C2bRegistrationRow): boolean {
  const outcome = (r.response as Record<string, unknown> | null)?.outcome;
  return outcome === SENT || outcome === UNKNOWN;
}

function view(r: C2bRegistrationRow): C2bRegistrationView {
  return {
    accountId: r.merchantAccountId,
    environment: r.environment,
    shortcode: r.shortcode,
    apiVersion: r.apiVersion,
    responseType: r.responseType,
    validation: r.validation,
    confirmationUrl: r.confirmationUrl,
    validationUrl: r.validationUrl,
    response: r.response as Record<string, unknown>,
    forced: r.forced,
    registeredBy: r.registeredBy,
    registeredAt: r.registeredAt.toISOString(),
  };
}
