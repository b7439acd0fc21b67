import { Logger } from '@nestjs/common';
import type { AuthUser } from '../../../auth/auth.types';
import { ConflictError, ValidationFailedError } from '../../../common/errors';
import type { MpesaPullRegistration } from '../../../database/schema';
import { MerchantAccountsService } from '../../merchant-accounts.service';
import { PaymentsRepository } from '../../payments.repository';
import { UNVERIFIED_CALLBACK_WINDOW_SECONDS } from '../../reconcile';
import type { ResolvedAccount } from '../../merchant-accounts.types';
import { ProviderError } from '../provider-errors';
import { callbackToken, verifyCallbackToken } from './callback-token';
import { DarajaService } from './daraja.service';
import type { DarajaAccount } from './daraja.types';
import { MpesaPullRepository } from './mpesa-pull.repository';
import { formatPhoneNumber } from './phone';
import {
  buildPullQueryBody,
  buildPullRegisterBody,
  clampPullWindow,
  parsePullQueryAnswer,
  parsePullRegisterAnswer,
  PULL_MAX_PAGES,
  PULL_QUERY_PATH,
  PULL_REGISTER_PATH,
  PullWindow,
} from './pull-transactions';

/**
 * One C2B transaction as Pull Transactions reported it: the output for ingestion next to the C2B
 * confirmations (same TransID = same payment). Nothing here is trusted more than a confirmation.
 */
export interface PulledC2bTransaction {
  /** TransID: the M-Pesa receipt (the code on the payer's SMS), upper case. */
  transId: string;
  /** KES minor units (Daraja's `233.8` → 23380n). */
  amountMinor: bigint;
  currency: 'KES';
  /** trxDate as an instant (see pullTime: zone as documented, unconfirmed). */
  time: Date;
  /** The shortcode queried: the paybill, or the till number for a till account. */
  shortcode: string;
  /** billreference: what the payer typed as account number (paybill; a QR's RefNo = the order id). */
  billRefNumber: string | null;
  /** msisdn exactly as given (plain, masked or hashed: undocumented). Never log it, never show it. */
  msisdn: string | null;
  /** The payer's name: the documented rows carry none, so null today (organizationName is the shop's own). */
  name: string | null;
  /** transactiontype, e.g. `c2b-pay-bill-debit`. */
  transactionType: string | null;
  organizationName: string | null;
}

export type PullResult =
  /** Everything Daraja returned for the window (zero or more), de-duplicated by TransID across pages. */
  | {
      outcome: 'transactions';
      window: PullWindow;
      transactions: PulledC2bTransaction[];
      pages: number;
      /** Rows that could not be read (no TransID, a bad amount or time): counted, never guessed at. */
      unreadableRows: number;
      /** True when PULL_MAX_PAGES pages were read and Daraja said there were more, or a later page failed. */
      truncated: boolean;
      /** The page index whose query failed after earlier pages answered (what they listed is returned). */
      failedPage?: number;
    }
  /** `1001` for a shortcode this deployment never registered: not provisioned (or not yet), NOT "no payments". */
  | { outcome: 'not_registered'; window: PullWindow; message: string }
  /** The asked window lies wholly outside the last 48 hours (or in the future): nothing was asked. */
  | { outcome: 'outside_window' };

export interface PullRegistrationView {
  shortcode: string;
  environment: string;
  outcome: 'registered' | 'already_registered';
  description: string;
  registeredAt: string;
  registeredBy: string;
}

/** The shortcode Pull is about: a till's own number for a till account, else the paybill (daraja-more.md §2; inferred for tills). */
export function pullShortcode(account: DarajaAccount): string {
  return account.transactionType === 'till' && account.tillNumber ? account.tillNumber : account.shortcode;
}

/**
 * Pull Transactions for a shop's M-Pesa account: the one-time registration (recorded, never sent
 * twice) and the paged query of a window. 1001 answers are read by the registration: a registered
 * shortcode's 1001 is "no rows"; an unregistered one's is `not_registered`, never "0 payments".
 */
export class MpesaPullService {
  private readonly logger = new Logger(MpesaPullService.name);

  constructor(
    private readonly repo: MpesaPullRepository,
    private readonly accounts: MerchantAccountsService,
    private readonly daraja: DarajaService,
    private readonly toDaraja: (account: ResolvedAccount) => DarajaAccount,
    private readonly callback: { baseUrl: string; secret: string },
    private readonly inbox: PaymentsRepository,
  ) {}

  /** The capability URL given to Daraja at registration (what it POSTs there is undocumented; see the report). */
  callbackUrlFor(shortcode: string): string {
    return `${this.callback.baseUrl.replace(/\/+$/, '')}/pull/${shortcode}/${callbackToken(this.callback.secret, `smartduka:pull:${shortcode}`)}`;
  }

  /**
   * Whatever Daraja POSTs to the registration's CallBackURL (undocumented; frappe only logs it): kept
   * in callback_inbox (kind pull_notice) before the answer, never acted on; the queries are what we
   * read. A wrong token is stored coalesced, like every unverified delivery.
   */
  async receiveNotice(d: { shortcode: string; token: string; rawBody: string; sourceIp?: string }): Promise<{
    ResultCode: 0;
    ResultDesc: 'Accepted';
  }> {
    const verified =
      /^\d{5,7}$/.test(d.shortcode) &&
      verifyCallbackToken(this.callback.secret, `smartduka:pull:${d.shortcode}`, d.token);
    const row = {
      provider: 'mpesa',
      kind: 'pull_notice',
      urlPaymentId: null,
      sourceIp: d.sourceIp ?? null,
      rawBody: d.rawBody,
      attempts: 1,
      processedAt: new Date(),
    };
    if (verified) {
      const id = await this.inbox.insertCallback({ ...row, verified: true, outcome: 'recorded' });
      this.logger.log(
        `Pull Transactions notice recorded: shortcode=${d.shortcode} inboxId=${id} bytes=${d.rawBody.length}`,
      );
    } else {
      const stored = await this.inbox.storeCoalescedCallback(
        { ...row, outcome: 'rejected_unverified' },
        { group: 'mpesa|kind:pull_notice:rejected_unverified', windowSeconds: UNVERIFIED_CALLBACK_WINDOW_SECONDS },
      );
      if (stored.first) this.logger.warn('Pull Transactions notice on a URL whose token does not verify: ignored');
    }
    return { ResultCode: 0, ResultDesc: 'Accepted' };
  }

  async registration(account: ResolvedAccount): Promise<MpesaPullRegistration | null> {
    return this.repo.find(account.environment, pullShortcode(this.toDaraja(account)));
  }

  /**
   * Registers the shop's shortcode for Pull, once: refused (409 PULL_ALREADY_REGISTERED) when this
   * deployment already registered it, since Safaricom's registration cannot be changed or repeated.
   * Daraja's own "already Registered" is recorded too (the shortcode is provisioned; its callback
   * URL may be another integration's). A refusal is a ProviderError 'rejected' and records nothing.
   */
  async register(user: AuthUser, shopId: string, nominatedNumber: unknown): Promise<PullRegistrationView> {
    this.accounts.authorize(user, shopId);
    const resolved = await this.accounts.resolveForPayment(shopId, 'mpesa');
    // The platform's shortcode has one Pull registration at Safaricom, for ever: not one shop's to
    // spend (with a nominated number of its choosing), and the pass only pulls shops' own accounts.
    if (resolved.accountId === null)
      throw new ConflictError(
        'MERCHANT_ACCOUNT_REQUIRED',
        "This shop takes M-Pesa payments with the platform's account: Pull Transactions is registered for a shop's own M-Pesa account (a manager adds it under Settings > Payments first)",
      );
    const account = this.toDaraja(resolved);
    const shortcode = pullShortcode(account);
    const existing = await this.repo.find(resolved.environment, shortcode);
    // Registrations are kept per shortcode across shops; another shop's is that shop's business.
    if (existing && existing.shopId !== shopId)
      throw new ConflictError(
        'PULL_ALREADY_REGISTERED',
        `Shortcode ${shortcode} is already registered for Pull Transactions, by another shop's M-Pesa account; Safaricom registers a shortcode once, so it is not sent again`,
        { shortcode },
      );
    if (existing)
      throw new ConflictError(
        'PULL_ALREADY_REGISTERED',
        `Shortcode ${shortcode} was registered for Pull Transactions on ${existing.registeredAt.toISOString()}; Safaricom registers a shortcode once, so it is not sent again`,
        { registration: view(existing) },
      );
    const body = buildPullRegisterBody(shortcode, nominated(nominatedNumber), this.callbackUrlFor(shortcode));
    const { json } = await this.daraja.postProduct(account, {
      path: PULL_REGISTER_PATH,
      body: { ...body },
      what: 'Pull Transactions registration',
      logContext: `shortcode=${shortcode}`,
      secrets: [body.NominatedNumber, body.CallBackURL],
    });
    const answer = parsePullRegisterAnswer(json);
    if (answer.kind === 'refused')
      throw new ProviderError(
        'mpesa',
        'rejected',
        `M-Pesa did not register shortcode ${shortcode} for Pull Transactions: ${answer.code} ${this.daraja.redactText(answer.description, account, [body.NominatedNumber])}`.trim(),
        { providerCode: answer.code },
      );
    const row = await this.repo.insertOnce({
      environment: resolved.environment,
      shortcode,
      shopId,
      merchantAccountId: resolved.accountId,
      outcome: answer.kind,
      responseRefId: answer.responseRefId ?? null,
      description: this.daraja.redactText(answer.description, account, [body.NominatedNumber]),
      registeredBy: `user:${user.sub} (${user.role})`,
    });
    this.logger.log(`Pull Transactions: shortcode=${shortcode} ${answer.kind}`);
    return view(row);
  }

  /**
   * The C2B transactions of the account (payments.merchant_account_id; null = the platform's) in
   * [from, to], cut to the last 48 hours, every page (page index 0, 1, … until TotalPages, a page
   * with nothing new, or PULL_MAX_PAGES), de-duplicated by TransID.
   */
  async pullSince(accountId: string | null, from: Date, to: Date, now: Date = new Date()): Promise<PullResult> {
    return this.pull(await this.accounts.resolveForExisting(accountId, 'mpesa'), from, to, now);
  }

  /**
   * The same for a shop's current M-Pesa account. Use this one for a chain branch: its till number
   * is on the shop's own row, which an account id (the credentials' row) does not carry.
   */
  async pullForShop(shopId: string, from: Date, to: Date, now: Date = new Date()): Promise<PullResult> {
    return this.pull(await this.accounts.resolveForPayment(shopId, 'mpesa'), from, to, now);
  }

  /** The simulator environment's registrations with their callback URLs: `pnpm dev` puts them back into its embedded simulator. */
  async simulatorRegistrations(): Promise<{ shortcode: string; callbackUrl: string }[]> {
    return (await this.repo.listAll())
      .filter((r) => r.environment === 'simulator')
      .map((r) => ({ shortcode: r.shortcode, callbackUrl: this.callbackUrlFor(r.shortcode) }));
  }

  /** Every shortcode registered here, oldest first: what a reconciler pulls (by shopId). */
  registrations(): Promise<MpesaPullRegistration[]> {
    return this.repo.listAll();
  }

  private async pull(resolved: ResolvedAccount, from: Date, to: Date, now: Date): Promise<PullResult> {
    const account = this.toDaraja(resolved);
    const shortcode = pullShortcode(account);
    const window = clampPullWindow(from, to, now);
    if (!window) return { outcome: 'outside_window' };
    const seen = new Map<string, PulledC2bTransaction>();
    let unreadableRows = 0;
    let page = 0;
    let truncated = false;
    let failedPage: number | undefined;
    for (; page < PULL_MAX_PAGES; page++) {
      let json;
      try {
        ({ json } = await this.daraja.postProduct(account, {
          path: PULL_QUERY_PATH,
          body: { ...buildPullQueryBody(shortcode, window, page) },
          what: 'Pull Transactions query',
          readOnly: true,
          logContext: `shortcode=${shortcode} page=${page}`,
        }));
      } catch (err) {
        // A later page failing (a 5xx, a spike arrest, a timeout) keeps what the earlier pages listed:
        // thrown away, the same failure on every pass would leave them never ingested. The next pass
        // asks the window again from page 0 (what is stored already is a no-op).
        if (page === 0) throw err;
        this.logger.warn(
          `Pull Transactions: shortcode=${shortcode} page ${page} failed (${err instanceof Error ? err.message : 'error'}); keeping the ${seen.size} transaction(s) of the pages before it`,
        );
        truncated = true;
        failedPage = page;
        break;
      }
      const answer = parsePullQueryAnswer(json);
      if (answer.kind === 'no_rows_or_not_provisioned') {
        if (page === 0 && !(await this.repo.find(resolved.environment, shortcode))) {
          this.logger.warn(
            `Pull Transactions: shortcode=${shortcode} answered 1001 and is not registered here: not provisioned, not "no payments"`,
          );
          return { outcome: 'not_registered', window, message: answer.message };
        }
        break;
      }
      unreadableRows += answer.unreadableRows;
      let added = 0;
      for (const r of answer.rows) {
        if (seen.has(r.transactionId)) continue;
        added++;
        seen.set(r.transactionId, {
          transId: r.transactionId,
          amountMinor: r.amountMinor,
          currency: 'KES',
          time: r.time,
          shortcode,
          billRefNumber: r.billReference,
          msisdn: r.msisdn,
          name: null,
          transactionType: r.transactionType,
          organizationName: r.organizationName,
        });
      }
      const last = answer.totalPages !== null ? page + 1 >= answer.totalPages : added === 0;
      if (last || added === 0) break;
      if (page + 1 === PULL_MAX_PAGES) truncated = true;
    }
    if (unreadableRows)
      this.logger.warn(`Pull Transactions: shortcode=${shortcode} ${unreadableRows} unreadable row(s) skipped`);
    this.logger.log(
      `Pull Transactions: shortcode=${shortcode} ${seen.size} transaction(s) in ${failedPage ?? Math.min(page + 1, PULL_MAX_PAGES)} page(s)${window.clamped ? ' (window cut to the last 48 h)' : ''}`,
    );
    return {
      outcome: 'transactions',
      window,
      transactions: [...seen.values()],
      pages: failedPage ?? Math.min(page + 1, PULL_MAX_PAGES),
      unreadableRows,
      truncated,
      ...(failedPage !== undefined ? { failedPage } : {}),
    };
  }
}

/** The nominated number as 2547XXXXXXXX, or a 400 naming nominatedNumber (never echoing it). */
function nominated(v: unknown): string {
  try {
    return formatPhoneNumber(v);
  } catch {
    throw new ValidationFailedError(
      "nominatedNumber must be the Safaricom number on the shortcode's KYC (M-Pesa Org portal > Details), e.g. 0722000000",
      { field: 'nominatedNumber' },
    );
  }
}

function view(r: MpesaPullRegistration): PullRegistrationView {
  return {
    shortcode: r.shortcode,
    environment: r.environment,
    outcome: r.outcome as PullRegistrationView['outcome'],
    description: r.description,
    registeredAt: r.registeredAt.toISOString(),
    registeredBy: r.registeredBy,
  };
}
