import { Inject, Injectable, Logger } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { NotFoundError } from '../../../common/errors';
import { safeError } from '../../../common/logging';
import type { AppConfig } from '../../../config/app-config';
import { sql } from 'drizzle-orm';
import type { DbOrTx, Tx } from '../../../database/database';
import { APP_CONFIG } from '../../../config/config.module';
import type { MerchantAccountRow, NewC2bTransactionRow } from '../../../database/schema';
import { ORDERS_PORT, OrdersPort } from '../../../orders/orders.port';
import { AccountRouteFields, MerchantAccountsRepository } from '../../merchant-accounts.repository';
import { phoneHash } from '../../phone-hash';
import { C2bMatching } from './c2b-matching.service';
import type { PulledC2bTransaction } from './mpesa-pull.service';
import { nairobiTimestamp } from './nairobi-time';
import {
  C2B_ACCEPT,
  C2B_CONFIRMATION_ACK,
  C2B_REJECT,
  C2bPayload,
  c2bReject,
  C2bValidationAnswer,
  classifyMsisdn,
  parseC2bPayload,
  withoutControlCharacters,
} from './c2b-payload';
import { C2bRepository, StoredC2b } from './c2b.repository';
import { C2B_RETRY_AFTER_SECONDS } from './c2b-retry.service';
import { verifyScopedCallbackToken } from './callback-token';

/** How long an account's route fields are taken from memory (see account()). */
const ACCOUNT_CACHE_TTL_MS = 60_000;
const ACCOUNT_CACHE_LIMIT = 20_000;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * Daraja's C2B notifications on a merchant account's capability URLs
 * (`<MPESA_C2B_URL>/<accountId>/confirmation|validation/<HMAC>`, tokens in callback-token.ts'
 * c2b-* scopes). Daraja signs nothing (daraja.md §5.1): the token is the only proof, so a wrong
 * token and an unknown account get the same 404 and change nothing.
 */
@Injectable()
export class C2bIngestService {
  private readonly logger = new Logger(C2bIngestService.name);
  /** accountId → its route fields (account()); oldest first out. */
  private readonly accountCache = new Map<string, { fields: AccountRouteFields; until: number }>();

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly c2b: C2bRepository,
    private readonly accounts: MerchantAccountsRepository,
    private readonly matching: C2bMatching,
    @Inject(ORDERS_PORT) private readonly orders: OrdersPort,
  ) {}

  /**
   * A confirmation: stored (one row per account and TransID; a repeat is counted on its row) and
   * matched once (C2bMatching.matchIn) before the answer. A body that is not a bookable payment (an
   * amount with cents, no TransID) is stored as `invalid` and acknowledged all the same: the
   * confirmation reports money that already moved, Daraja does not send it again, a person looks.
   */
  async confirm(accountId: string, token: string, body: unknown): Promise<typeof C2B_CONFIRMATION_ACK> {
    const account = await this.account(accountId, token, 'c2b-confirmation');
    const c = parseC2bPayload(body);
    const row: NewC2bTransactionRow = {
      id: randomUUID(),
      merchantAccountId: account.id,
      shopId: account.shopId,
      transId: c.transId,
      transactionType: c.transactionType,
      transTime: c.transTime,
      amountMinor: c.amountMinor,
      businessShortcode: c.businessShortcode,
      billRefNumber: c.billRefNumber,
      invoiceNumber: c.invoiceNumber,
      thirdPartyTransId: c.thirdPartyTransId,
      ...this.msisdnColumns(c),
      customerName: c.customerName,
      status: c.problem ? 'invalid' : 'received',
      statusReason: c.problem,
    };
    if (c.problem)
      this.logger.warn(
        { accountId: account.id, receipt: c.transId, problem: c.problem },
        'C2B confirmation stored as invalid',
      );
    // One autocommit write when nothing but the receipt needs checking and the shop has this one
    // account row. With others (credentials rotated: the Pull pass stores under the current row,
    // confirmations keep arriving on the old one's URLs) storeAndMatch takes the shop's lock of the
    // TransID and looks under every row.
    const decided = this.matching.unclaimedUnlessHeld(row);
    const simple = decided !== null || row.status !== 'received';
    if (simple && !(await this.accounts.hasOtherRows(account.shopId, 'mpesa', account.id)))
      await this.storeDecided(row, decided);
    else await this.storeAndMatch(row, 'confirmation');
    return C2B_CONFIRMATION_ACK;
  }

  /**
   * A confirmation whose matching needs no transaction: an invalid one (nothing to match), or one
   * whose matching is only its receipt check (C2bMatching.unclaimedUnlessHeld, e.g. a till payment):
   * ONE autocommit statement stores it in its final state, and a repeat is counted by that same
   * statement. Only a row that comes back `received` (its receipt is held by a payment, or an
   * earlier delivery's matching failed) is matched after, in its own transaction under its row lock
   * (C2bMatching.match, exactly once); should that fail, it is stored already and the retry pass
   * (C2bRetryService) matches it.
   */
  private async storeDecided(
    row: NewC2bTransactionRow,
    decided: { status: string; statusReason: string } | null,
  ): Promise<void> {
    const stored =
      decided && row.transId
        ? await this.c2b.storeDecided({ ...row, transId: row.transId }, decided)
        : await this.c2b.store(row);
    let status = stored.row.status;
    const log = { accountId: row.merchantAccountId, receipt: row.transId, source: 'confirmation' as const };
    if (status === 'received') {
      try {
        status = await this.matching.match(stored.row.id);
      } catch (err) {
        this.logger.error(
          { ...log, c2bPaymentId: stored.row.id, err: safeError(err) },
          'C2B confirmation matching failed; stored, the retry pass matches it',
        );
      }
    }
    const logged = { ...log, c2bPaymentId: stored.row.id, deliveries: stored.row.deliveries, status };
    if (stored.first) this.logger.log(logged, 'C2B confirmation stored and matched');
    else this.logger.log(logged, 'C2B confirmation delivered again: counted, not applied again');
  }

  /**
   * A transaction Pull Transactions listed for the account (C2bPullService): the same row and the
   * same matching as its confirmation would have made, MSISDN through the same plain / masked /
   * hashed handling. A TransID the shop already has, under this account row or an older one
   * (its confirmation came, or an earlier pass), is left exactly as it is. `deliveries` stays 0:
   * no confirmation was delivered; a late one counts 1.
   * Returns whether a new row was stored.
   */
  async ingestPulled(account: MerchantAccountRow, t: PulledC2bTransaction): Promise<boolean> {
    const ref = (t.billRefNumber && withoutControlCharacters(t.billRefNumber).trim().slice(0, 40)) || null;
    // The confirmation's own rule (parseC2bAmount): M-Pesa C2B moves whole shillings; an amount with
    // cents is parked for a person, never booked (its confirmation would be stored invalid).
    const problem = t.amountMinor % 100n !== 0n ? 'AMOUNT_NOT_WHOLE_SHILLINGS' : null;
    const row: NewC2bTransactionRow = {
      id: randomUUID(),
      merchantAccountId: account.id,
      shopId: account.shopId,
      transId: t.transId,
      transactionType: t.transactionType ? withoutControlCharacters(t.transactionType).slice(0, 60) : null,
      transTime: nairobiTimestamp(t.time),
      amountMinor: t.amountMinor,
      businessShortcode: t.shortcode,
      billRefNumber: ref,
      invoiceNumber: null,
      thirdPartyTransId: null,
      ...this.msisdnColumns({ msisdn: classifyMsisdn(t.msisdn) }),
      customerName: null,
      status: problem ? 'invalid' : 'received',
      statusReason: problem,
      deliveries: 0,
    };
    return this.storeAndMatch(row, 'pull');
  }

  /**
   * Stored and matched in ONE commit (the common case): either both commit, or neither does and it
   * is stored alone (durable; the retry pass, C2bRetryService, matches it). A confirmation's repeat
   * is counted on its row; a pulled transaction already stored is not touched at all.
   */
  private async storeAndMatch(row: NewC2bTransactionRow, source: 'confirmation' | 'pull'): Promise<boolean> {
    const log = { accountId: row.merchantAccountId, receipt: row.transId, source };
    const put = async (tx: Tx): Promise<StoredC2b | null> => {
      // Already stored under another of the shop's account rows (credentials rotated since the URLs
      // were registered): a pulled one is left as it is, a confirmation is counted there. Under the
      // shop's lock of the TransID, or the same TransID arriving at once on two of its rows makes two.
      if (row.transId) await this.c2b.lockTransIdOfShop(tx, row.shopId, row.transId);
      const other = row.transId
        ? await this.c2b.inOtherAccount(row.shopId, row.merchantAccountId, row.transId, tx)
        : null;
      if (other) return source === 'pull' ? null : this.c2b.countDelivery(other.id, tx);
      return source === 'pull' ? this.c2b.storeIfNew(row, tx) : this.c2b.store(row, tx);
    };
    try {
      const { stored, status, afterCommit } = await this.c2b.transaction(async (tx) => {
        const stored = await put(tx);
        if (!stored) return { stored, status: undefined, afterCommit: undefined };
        // A repeat of a row still `received` (its matching failed before) is matched now too.
        const matched = stored.row.status === 'received' ? await this.matching.matchIn(tx, stored.row) : undefined;
        return { stored, status: matched?.status ?? stored.row.status, afterCommit: matched?.afterCommit };
      });
      afterCommit?.();
      if (!stored) return false;
      const logged = { ...log, c2bPaymentId: stored.row.id, deliveries: stored.row.deliveries, status };
      if (stored.first) this.logger.log(logged, `C2B ${source} stored and matched`);
      else this.logger.log(logged, 'C2B confirmation delivered again: counted, not applied again');
      return stored.first;
    } catch (err) {
      this.logger.error(
        { ...log, err: safeError(err) },
        `C2B ${source} matching failed; storing it for the retry pass`,
      );
      const stored = await this.c2b.transaction((tx) => put(tx));
      if (stored?.row.status === 'received')
        await this.c2b
          .releaseForRetry(stored.row.id, C2B_RETRY_AFTER_SECONDS)
          .catch((e: unknown) =>
            this.logger.warn(
              { ...log, err: safeError(e) },
              'C2B: could not hand the row to the retry pass at once; it takes it after its lease',
            ),
          );
      return stored?.first ?? false;
    }
  }

  /**
   * Validation (only when Safaricom enabled it for the shortcode and we registered the URL):
   * Daraja waits about 8 s, then applies the registered ResponseType. We decide within
   * MPESA_C2B_VALIDATION_BUDGET_MS; past it we ACCEPT: a real customer's payment refused because
   * our database was slow is a lost sale and a confused customer at the till, while an accepted
   * payment that fits no order still lands in the shop's feed (a cashier claims it, or a refund).
   */
  async validate(accountId: string, token: string, body: unknown): Promise<C2bValidationAnswer> {
    // The token is checked before anything else (no database: a forged URL is 404 at once); the
    // account's lookup is inside the budget like the rest, since a locked or slow merchant_accounts
    // (a migration, a pool waiting for a connection) would otherwise hold Daraja past its ~8 s.
    const tokenOk = this.tokenValid(accountId, token, 'c2b-validation');
    if (!tokenOk) this.refuse('c2b-validation', false);
    const c = parseC2bPayload(body);
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => {
      timer = setTimeout(() => resolve('late'), this.config.mpesa.c2b.validationBudgetMs);
    });
    const decision = this.decideWithin(accountId, token, c);
    // Settled after the budget: nobody awaits it any more; its failure is not an unhandled rejection.
    decision.catch(() => undefined);
    try {
      const decided = await Promise.race([decision, late]);
      if (decided === 'late') {
        this.logger.warn({ accountId }, 'C2B validation could not decide in time: accepted');
        return C2B_ACCEPT;
      }
      if (decided.ResultCode !== '0')
        this.logger.log({ accountId, resultCode: decided.ResultCode }, 'C2B validation rejected a payment');
      return decided;
    } catch (err) {
      // An unknown account (its token is ours, the row is gone) stays the same 404 as a forged URL.
      if (err instanceof NotFoundError) throw err;
      this.logger.error({ accountId, err: safeError(err) }, 'C2B validation failed: accepted');
      return C2B_ACCEPT;
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * The decision's lookups in one transaction whose statements may not outlive the budget
   * (statement_timeout, lock waits included): a validation answered "accepted" at the budget must
   * not keep its connection waiting behind a lock until the pool's own timeout, or a burst of them
   * on a slow database takes every connection the confirmations need to be stored.
   */
  private decideWithin(accountId: string, token: string, c: C2bPayload): Promise<C2bValidationAnswer> {
    const budgetMs = Math.max(1, Math.floor(this.config.mpesa.c2b.validationBudgetMs));
    return this.c2b.transaction(async (tx) => {
      await tx.execute(sql.raw(`set local statement_timeout = ${budgetMs}`));
      const account = await this.account(accountId, token, 'c2b-validation', tx);
      return this.decide(account, c, tx);
    });
  }

  /** The documented codes (daraja.md §7.3): a bad amount C2B00013; a paybill reference naming no open order of the shop C2B00012. */
  private async decide(account: AccountRouteFields, c: C2bPayload, tx: Tx): Promise<C2bValidationAnswer> {
    if (c.amountMinor === null) return c2bReject(C2B_REJECT.invalidAmount);
    const registration = await this.c2b.latestRegistration(account.id, tx);
    // Not registered with validation: nothing to check (Daraja should not be asking).
    if (!registration?.validation) return C2B_ACCEPT;
    const settings = account.settings as Record<string, string>;
    if (settings.type !== 'paybill') return C2B_ACCEPT;
    const ref = c.billRefNumber?.trim();
    if (!ref) return c2bReject(C2B_REJECT.invalidAccountNumber);
    // In the transaction (the order row is locked for its few milliseconds, within the budget).
    const balance = await this.orders.getBalance(account.shopId, ref, tx);
    if (!balance || balance.outstandingMinor <= 0n || balance.currency !== 'KES')
      return c2bReject(C2B_REJECT.invalidAccountNumber);
    // More than the order owes: refused before the money moves (the customer pays the right amount).
    if (c.amountMinor > balance.outstandingMinor) return c2bReject(C2B_REJECT.invalidAmount);
    return C2B_ACCEPT;
  }

  /**
   * The account behind a capability URL, or the same 404 for a wrong token and an unknown account.
   * The token is checked on every request (it is the HMAC of the account id under the server's
   * signing secret: nothing stored). The account's route fields (never its secrets) are cached for
   * ACCOUNT_CACHE_TTL_MS: they never change for a row (a changed account is a new row, new id, new
   * URLs), a retired row keeps taking its confirmations, and the TTL bounds how long a row removed
   * behind the API's back is still taken. Only found rows are cached, and only behind a valid token.
   */
  private async account(
    accountId: string,
    token: string,
    scope: 'c2b-confirmation' | 'c2b-validation',
    tx?: DbOrTx,
  ): Promise<AccountRouteFields> {
    const ok = this.tokenValid(accountId, token, scope);
    const row = ok ? await this.routeFields(accountId, tx) : null;
    if (!row || row.provider !== 'mpesa') this.refuse(scope, ok);
    // A retired row still takes confirmations: the URLs registered for it stay in force at Safaricom.
    return row;
  }

  private tokenValid(accountId: string, token: string, scope: 'c2b-confirmation' | 'c2b-validation'): boolean {
    return (
      UUID.test(accountId) &&
      verifyScopedCallbackToken(this.config.mpesa.callbackSigningSecret, scope, accountId, token)
    );
  }

  private refuse(scope: 'c2b-confirmation' | 'c2b-validation', tokenValid: boolean): never {
    this.logger.warn({ scope, tokenValid }, 'C2B notification on an unknown capability URL: refused, nothing stored');
    throw new NotFoundError('C2B URL');
  }

  /** `tx`: a lookup the database must answer within the caller's transaction (validation's budget). */
  private async routeFields(accountId: string, tx?: DbOrTx): Promise<AccountRouteFields | null> {
    const now = Date.now();
    const hit = this.accountCache.get(accountId);
    if (hit && hit.until > now) return hit.fields;
    const fields = await this.accounts.findRouteFields(accountId, tx);
    this.accountCache.delete(accountId);
    if (fields) {
      if (this.accountCache.size >= ACCOUNT_CACHE_LIMIT)
        this.accountCache.delete(this.accountCache.keys().next().value as string);
      this.accountCache.set(accountId, { fields, until: now + ACCOUNT_CACHE_TTL_MS });
    }
    return fields;
  }

  /** Never the number: our keyed hash of a plain one, Safaricom's SHA-256 as it came, a masked one as it came. */
  private msisdnColumns(c: Pick<C2bPayload, 'msisdn'>) {
    const m = c.msisdn;
    return {
      msisdnForm: m.form,
      phoneHash: m.form === 'plain' ? phoneHash(this.config.mpesa.callbackSigningSecret, m.plain) : null,
      msisdnSha256: m.form === 'sha256' ? m.sha256 : null,
      phoneMasked: m.form === 'masked' ? m.masked : null,
    };
  }
}
