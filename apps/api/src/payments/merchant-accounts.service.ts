import { Inject, Injectable, Logger, OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import type { AuthUser } from '../auth/auth.types';
import { AppError, NotFoundError, ValidationFailedError } from '../common/errors';
import { isPlainObject } from '../common/json';
import { SecretBox, SecretBoxError } from '../common/secret-box';
import type { AppConfig } from '../config/app-config';
import { APP_CONFIG } from '../config/config.module';
import type { ChangeFeed, DatabaseHandle } from '../database/database';
import { DB_HANDLE } from '../database/database.module';
import type { MerchantAccountRow } from '../database/schema';
import { MERCHANT_ACCOUNTS_CHANNEL, MerchantAccountsRepository } from './merchant-accounts.repository';
import {
  AccountKind,
  MerchantAccountRequiredError,
  MerchantAccountUnreadableError,
  ResolvedAccount,
  VerificationPart,
} from './merchant-accounts.types';
import type { ProviderName } from './providers/payment-provider';

/** What a read shows of an account: never a secret, only which are set and a short fingerprint. */
export interface MerchantAccountView {
  provider: ProviderName;
  /** own: the shop's own credentials; chain: a chain's credentials (credentialsFromShopId); platform: the deployment's account; none. */
  source: 'own' | 'chain' | 'platform' | 'none';
  accountId: string | null;
  environment: string | null;
  settings: Record<string, string>;
  secretsSet: string[];
  fingerprints: Record<string, string>;
  credentialsFromShopId: string | null;
  verification: { checkedAt: string; parts: VerificationPart[] } | null;
  /** How many other shops (chain branches) take payments with these credentials. */
  lentToShops: number;
  /** Set when the account cannot be used as stored (its secrets do not open): payments fail closed until it is set again or its key restored. */
  problem: string | null;
  createdAt: string | null;
  createdBy: string | null;
}

const MANAGING_ROLES = new Set(['manager', 'admin', 'operator']);
/** A shop that had its own account and removed it (cached like an active row id). */
const REMOVED = 'removed' as const;
const VERIFY_COOLDOWN_MS = 10_000;
const LENDER_GONE =
  'The shop whose credentials it uses has no account of its own any more: payments with it fail until an operator links it again';
const UNREADABLE_PROBLEM =
  'Its sealed credentials do not open with the keys this server has: payments with it fail until it is set again or its key is restored';
const ROW_CACHE_LIMIT = 20_000;
/** Shops whose account choice is cached (oldest first out). */
const SHOP_CACHE_LIMIT = 100_000;

/**
 * What a row's sealed secrets are bound to (AES-GCM additional data): that row, and where its
 * money goes (environment and settings: shortcode, till). Secrets copied to another row, or a
 * till number changed in the table behind the API's back, fail closed.
 */
export function sealContext(row: {
  id: string;
  provider: string;
  shopId: string;
  environment: string;
  settings: unknown;
}): string {
  const settings = (row.settings ?? {}) as Record<string, unknown>;
  const sorted = Object.fromEntries(
    Object.keys(settings)
      .sort()
      .map((k) => [k, settings[k]]),
  );
  return `merchant_account:${row.id}:${row.provider}:${row.shopId}:${row.environment}:${JSON.stringify(sorted)}`;
}

/**
 * Per-shop merchant accounts: the shop's own provider credentials, sealed at rest, resolved for
 * every provider call. Rows are immutable (a change retires the old row), so a decrypted row is
 * cached for good; which row is a shop's active one is cached only while the change feed
 * (LISTEN merchant_accounts_changed) is live, and forgotten on every notification: a change on
 * one instance is seen by all at its commit.
 */
@Injectable()
export class MerchantAccountsService implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger(MerchantAccountsService.name);
  private readonly kinds = new Map<string, AccountKind>();
  private readonly box: SecretBox;
  private readonly opened = new Map<string, { row: MerchantAccountRow; secrets: Record<string, string> | null }>();
  private readonly activeByShop = new Map<string, string | null>();
  /** Last verify per shop and provider on this instance (verify calls the provider: not on every click). */
  private readonly lastVerify = new Map<string, number>();
  private feed: ChangeFeed | undefined;
  /** Bumped by every notification: a lookup that started before one does not fill the cache. */
  private generation = 0;

  constructor(
    private readonly repo: MerchantAccountsRepository,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(DB_HANDLE) private readonly database: DatabaseHandle,
  ) {
    this.box = new SecretBox(config.merchantAccounts.keys);
  }

  async onModuleInit(): Promise<void> {
    if (this.config.merchantAccounts.keysGenerated)
      this.logger.warn(
        "CREDENTIALS_KEYS is not set: shops' provider secrets are sealed with a generated development key (kept in DATA_DIR); set CREDENTIALS_KEYS before real use",
      );
    await this.checkKeys();
    this.feed = await this.database.listen(MERCHANT_ACCOUNTS_CHANNEL, {
      onNotify: (payload) => this.forget(payload),
      onLive: (live) => {
        this.forgetAll();
        if (!live)
          this.logger.warn('merchant account change feed lost: reading accounts from the database until it is back');
      },
    });
  }

  async onApplicationShutdown(): Promise<void> {
    await this.feed?.close();
  }

  /** Whether which-account-is-active is being cached (the change feed is listening). */
  get cacheLive(): boolean {
    return this.feed?.live === true;
  }

  /**
   * Boot check: every key of the ring that has sealed rows must open at least one of its newest
   * rows. A key id with the wrong key material behind it would otherwise start healthy and seal
   * new rows no other instance can open. Rows under a key id missing from the ring are logged.
   */
  private async checkKeys(): Promise<void> {
    const byKey = await this.repo.countByKey();
    for (const [keyId, n] of Object.entries(byKey)) {
      if (!this.box.hasKey(keyId)) {
        this.logger.error(
          `${n} merchant account(s) are sealed with key "${keyId}", which is not in CREDENTIALS_KEYS: their payments fail until it is restored`,
        );
        continue;
      }
      const sample = await this.repo.newestSealedWith(keyId, 3);
      const opens = sample.some((row) => {
        try {
          this.box.open(row.secrets as string, sealContext(row));
          return true;
        } catch {
          return false;
        }
      });
      if (sample.length && !opens)
        throw new Error(
          `CREDENTIALS_KEYS: key "${keyId}" does not open the accounts sealed with it (tried the newest ${sample.length}): this is not the key that sealed them`,
        );
    }
  }

  registerKind(kind: AccountKind): void {
    this.kinds.set(kind.provider, kind);
  }

  // --- the API (merchant-accounts.controller.ts) -------------------------------------------

  async list(user: AuthUser, shopId: string): Promise<MerchantAccountView[]> {
    this.authorize(user, shopId);
    return Promise.all([...this.kinds.keys()].map((p) => this.view(shopId, p as ProviderName)));
  }

  async get(user: AuthUser, shopId: string, provider: string): Promise<MerchantAccountView> {
    this.authorize(user, shopId);
    return this.view(shopId, this.kindOf(provider).provider);
  }

  async put(user: AuthUser, shopId: string, provider: string, body: unknown): Promise<MerchantAccountView> {
    this.authorize(user, shopId);
    const kind = this.kindOf(provider);
    if (!isPlainObject(body)) throw new ValidationFailedError('The body must be a JSON object');
    const { credentialsFromShopId, ...fields } = body;
    let linkShop: string | undefined;
    if (credentialsFromShopId !== undefined) {
      if (user.role !== 'operator')
        throw new AppError('FORBIDDEN', "Only a platform operator can point a shop at another shop's credentials", 403);
      if (typeof credentialsFromShopId !== 'string' || !/^[A-Za-z0-9._:@-]{1,64}$/.test(credentialsFromShopId))
        throw new ValidationFailedError('credentialsFromShopId must be a shop id', { field: 'credentialsFromShopId' });
      if (credentialsFromShopId === shopId)
        throw new ValidationFailedError('A shop cannot borrow its own credentials', { field: 'credentialsFromShopId' });
      linkShop = credentialsFromShopId;
    }
    const input = kind.parse(fields, linkShop !== undefined);
    const id = randomUUID();
    const changed = await this.repo.transaction(async (tx) => {
      // Both the shop and the one it borrows from (in one order: no deadlock), so a concurrent
      // link or removal on either side sees this one's outcome.
      for (const shop of [shopId, linkShop].filter((x): x is string => !!x).sort())
        await this.repo.lockShopProvider(shop, kind.provider, tx);
      if (linkShop) {
        const lender = await this.repo.findActive(linkShop, kind.provider, tx);
        if (!lender || lender.credentialsShopId)
          throw new ValidationFailedError(`Shop ${linkShop} has no ${kind.label} credentials of its own to share`, {
            field: 'credentialsFromShopId',
          });
        if (lender.environment !== input.environment)
          throw new ValidationFailedError(
            `Shop ${linkShop}'s ${kind.label} account is ${lender.environment}, not ${input.environment}`,
            { field: 'environment' },
          );
      }
      // A shop others borrow from keeps lending: its branches follow its new secrets, so what
      // their payments depend on (environment, type, shortcode) must stay while they borrow.
      const previous = await this.repo.findActive(shopId, kind.provider, tx);
      const borrowers = await this.repo.countLinkedTo(shopId, kind.provider, tx);
      if (borrowers > 0) {
        if (linkShop)
          throw new AppError(
            'ACCOUNT_IN_USE',
            `${borrowers} other shop(s) take ${kind.label} payments with this shop's credentials: it cannot borrow another shop's`,
            409,
            { linkedShops: borrowers },
          );
        const before = (previous?.settings ?? {}) as Record<string, string>;
        const moved = [
          previous?.environment !== input.environment ? 'environment' : undefined,
          ...['type', 'shortcode'].filter((k) => before[k] !== input.settings[k]),
        ].filter((x): x is string => !!x);
        if (moved.length)
          throw new AppError(
            'ACCOUNT_IN_USE',
            `${borrowers} other shop(s) take ${kind.label} payments with this shop's credentials: ${moved.join(', ')} cannot change while they do (their tills depend on it); move them first`,
            409,
            { linkedShops: borrowers, fields: moved },
          );
      }
      // Compared with what is stored, value by value (fingerprints change with the sealing key).
      const fieldsChanged = changedFields(previous, input, previous ? this.tryOpen(previous) : null, linkShop);
      if (previous && fieldsChanged.length === 0) return null; // the same account again: nothing to write
      let sealed: { sealed: string; keyId: string } | null = null;
      const fingerprints: Record<string, string> = {};
      if (input.secrets) {
        for (const [k, v] of Object.entries(input.secrets)) fingerprints[k] = this.box.fingerprint(v);
        sealed = this.box.seal(
          JSON.stringify(input.secrets),
          sealContext({
            id,
            provider: kind.provider,
            shopId,
            environment: input.environment,
            settings: input.settings,
          }),
        );
      }
      await this.repo.replaceActive(
        {
          id,
          shopId,
          provider: kind.provider,
          environment: input.environment,
          settings: input.settings,
          credentialsShopId: linkShop ?? null,
          secrets: sealed?.sealed ?? null,
          keyId: sealed?.keyId ?? null,
          fingerprints,
          createdBy: actorOf(user),
        },
        tx,
      );
      await this.repo.insertAudit(
        {
          shopId,
          actor: actorOf(user),
          action: previous ? 'merchant_account.replaced' : 'merchant_account.created',
          target: `merchant_account:${id}`,
          data: { provider: kind.provider, fields: fieldsChanged, previousAccountId: previous?.id ?? null },
        },
        tx,
      );
      await this.repo.notifyChanged(shopId, kind.provider, tx);
      return fieldsChanged;
    });
    if (changed) this.logger.log(`merchant account ${kind.provider} of shop ${shopId} set (${changed.join(', ')})`);
    this.forget(`${shopId}|${kind.provider}`);
    this.lastVerify.delete(`${shopId}|${kind.provider}`); // a new account may be checked at once
    return this.view(shopId, kind.provider);
  }

  async remove(user: AuthUser, shopId: string, provider: string): Promise<MerchantAccountView> {
    this.authorize(user, shopId);
    const kind = this.kindOf(provider);
    await this.repo.transaction(async (tx) => {
      await this.repo.lockShopProvider(shopId, kind.provider, tx);
      const active = await this.repo.findActive(shopId, kind.provider, tx);
      if (!active) throw new NotFoundError(`This shop's ${kind.label} account`);
      const borrowers = await this.repo.countLinkedTo(shopId, kind.provider, tx);
      if (borrowers > 0)
        throw new AppError(
          'ACCOUNT_IN_USE',
          `${borrowers} other shop(s) take ${kind.label} payments with this shop's credentials: move them first`,
          409,
          { linkedShops: borrowers },
        );
      await this.repo.retireActive(shopId, kind.provider, tx);
      await this.repo.insertAudit(
        {
          shopId,
          actor: actorOf(user),
          action: 'merchant_account.removed',
          target: `merchant_account:${active.id}`,
          data: { provider: kind.provider },
        },
        tx,
      );
      await this.repo.notifyChanged(shopId, kind.provider, tx);
    });
    this.forget(`${shopId}|${kind.provider}`);
    return this.view(shopId, kind.provider);
  }

  /** Checks the shop's account for real (no one is charged), stores the result and when. */
  async verify(user: AuthUser, shopId: string, provider: string): Promise<MerchantAccountView> {
    this.authorize(user, shopId);
    const kind = this.kindOf(provider);
    const row = await this.repo.findActive(shopId, kind.provider);
    // The platform's account is the platform's to check, not every shop's (each check costs an OAuth call).
    if (!row) throw new NotFoundError(`This shop's own ${kind.label} account`);
    const key = `${shopId}|${kind.provider}`;
    const wait = (this.lastVerify.get(key) ?? 0) + VERIFY_COOLDOWN_MS - Date.now();
    if (wait > 0)
      throw new AppError(
        'VERIFY_TOO_SOON',
        `This account was just checked: try again in ${Math.ceil(wait / 1000)} s`,
        429,
        undefined,
        { 'Retry-After': String(Math.ceil(wait / 1000)) },
      );
    this.lastVerify.set(key, Date.now());
    const account = await this.resolveRow(row, kind, true);
    const parts = await kind.verify(account);
    await this.repo.transaction(async (tx) => {
      await this.repo.recordVerification(row.id, { parts }, tx);
      await this.repo.insertAudit(
        {
          shopId,
          actor: actorOf(user),
          action: 'merchant_account.verified',
          target: `merchant_account:${row.id}`,
          data: { provider: kind.provider, results: Object.fromEntries(parts.map((p) => [p.part, p.result])) },
        },
        tx,
      );
    });
    return this.view(shopId, kind.provider);
  }

  // --- for the payment flows -----------------------------------------------------------------

  /** The account a new payment of this shop is made with: its own, its chain's, or the platform's. */
  async resolveForPayment(shopId: string, provider: ProviderName): Promise<ResolvedAccount> {
    const kind = this.kindOf(provider);
    const row = await this.activeRow(shopId, provider);
    if (row && row !== REMOVED) return this.resolveRow(row, kind, false);
    // A shop whose own account was removed does not silently pay into the platform's.
    const platform = this.config.merchantAccounts.platformDefault && !row ? kind.platformAccount() : null;
    if (!platform) throw new MerchantAccountRequiredError(kind.label, row === REMOVED);
    return platform;
  }

  /**
   * The account a payment was made with (payments.merchant_account_id; null = the platform's),
   * for every later call about it: whatever the shop's account is now.
   */
  async resolveForExisting(accountId: string | null, provider: ProviderName): Promise<ResolvedAccount> {
    const kind = this.kindOf(provider);
    if (accountId === null) {
      const platform = kind.platformAccount();
      if (!platform) throw new MerchantAccountRequiredError(kind.label);
      return platform;
    }
    const row = await this.rowById(accountId);
    if (!row) throw new MerchantAccountUnreadableError(kind.label, accountId, 'it no longer exists');
    return this.openRow(row, kind, row);
  }

  // --- re-encryption (pnpm credentials:reencrypt) ----------------------------------------------

  /** Re-seals every row not under the newest key. Returns how many were re-sealed and what is left per key. */
  async reencryptAll(
    actor = 'system:reencrypt',
  ): Promise<{ resealed: number; unreadable: string[]; byKey: Record<string, number> }> {
    let resealed = 0;
    const unreadable: string[] = [];
    let after: string | null = null;
    for (;;) {
      const page = await this.repo.pageSealedNotUnder(this.box.sealingKeyId, after, 200);
      if (page.length === 0) break;
      for (const row of page) {
        after = row.id;
        let plain: string;
        try {
          plain = this.openSecrets(row);
        } catch (err) {
          // One damaged row does not hold the others back; it is reported (and keeps its old key).
          if (!(err instanceof MerchantAccountUnreadableError)) throw err;
          unreadable.push(row.id);
          continue;
        }
        const secrets = JSON.parse(plain) as Record<string, string>;
        const fingerprints: Record<string, string> = {};
        for (const [k, v] of Object.entries(secrets)) fingerprints[k] = this.box.fingerprint(v);
        const next = this.box.seal(plain, sealContext(row));
        const done = await this.repo.transaction(async (tx) => {
          const ok = await this.repo.reseal(
            row.id,
            row.secrets as string,
            { secrets: next.sealed, keyId: next.keyId, fingerprints },
            tx,
          );
          if (ok)
            await this.repo.insertAudit(
              {
                shopId: row.shopId,
                actor,
                action: 'merchant_account.reencrypted',
                target: `merchant_account:${row.id}`,
                data: { provider: row.provider, fromKey: row.keyId, toKey: next.keyId },
              },
              tx,
            );
          return ok;
        });
        if (done) resealed++;
      }
    }
    return { resealed, unreadable, byKey: await this.repo.countByKey() };
  }

  // --- internals -------------------------------------------------------------------------------

  private kindOf(provider: string): AccountKind {
    const kind = this.kinds.get(provider);
    if (!kind)
      throw new NotFoundError(`Provider "${provider}"`, {
        providers: [...this.kinds.keys()],
      });
    return kind;
  }

  /** Managers and admins of the shop, or a platform operator; anyone else sees and changes nothing. */
  authorize(user: AuthUser, shopId: string): void {
    if (!MANAGING_ROLES.has(user.role))
      throw new AppError('FORBIDDEN', "Only a manager or admin can see or change the shop's payment accounts", 403);
    if (user.role !== 'operator' && user.shopId !== shopId)
      throw new AppError('FORBIDDEN', "You can only manage your own shop's payment accounts", 403);
  }

  private async view(shopId: string, provider: ProviderName): Promise<MerchantAccountView> {
    const kind = this.kindOf(provider);
    const row = await this.repo.findActive(shopId, provider);
    if (!row) {
      const removed = await this.repo.hadAccount(shopId, provider);
      const platform = this.config.merchantAccounts.platformDefault && !removed ? kind.platformAccount() : null;
      return {
        provider,
        source: platform ? 'platform' : 'none',
        accountId: null,
        environment: platform?.environment ?? null,
        settings: platform ? { ...platform.settings } : {},
        secretsSet: [],
        fingerprints: {},
        credentialsFromShopId: null,
        verification: null,
        lentToShops: 0,
        problem: null,
        createdAt: null,
        createdBy: null,
      };
    }
    const fingerprints = (row.fingerprints ?? {}) as Record<string, string>;
    const verification = row.verification as { parts?: VerificationPart[] } | null;
    // A chain branch pays into its head office's shortcode: show where its money goes.
    const lender = row.credentialsShopId ? await this.repo.findActive(row.credentialsShopId, provider) : undefined;
    const settings = {
      ...((lender?.settings ?? {}) as Record<string, string>),
      ...(row.settings as Record<string, string>),
    };
    return {
      provider,
      source: row.credentialsShopId ? 'chain' : 'own',
      accountId: row.id,
      environment: row.environment,
      settings,
      secretsSet: Object.keys(fingerprints).sort(),
      fingerprints,
      credentialsFromShopId: row.credentialsShopId,
      verification:
        verification?.parts && row.verifiedAt
          ? { checkedAt: row.verifiedAt.toISOString(), parts: verification.parts }
          : null,
      lentToShops: await this.repo.countLinkedTo(shopId, provider),
      problem: row.secrets && !this.tryOpen(row) ? UNREADABLE_PROBLEM : lender === null ? LENDER_GONE : null,
      createdAt: row.createdAt.toISOString(),
      createdBy: row.createdBy,
    };
  }

  /**
   * The shop's active row (REMOVED: none, but it had one), from the cache while the change feed
   * is live, else from the database.
   */
  private async activeRow(shopId: string, provider: string): Promise<MerchantAccountRow | typeof REMOVED | null> {
    const key = `${shopId}|${provider}`;
    const live = this.feed?.live === true;
    if (live && this.activeByShop.has(key)) {
      const id = this.activeByShop.get(key);
      return id === REMOVED ? REMOVED : id ? this.rowById(id) : null;
    }
    const generation = this.generation;
    const row = await this.repo.findActive(shopId, provider);
    if (row) this.remember(row, undefined);
    const found = row ?? ((await this.repo.hadAccount(shopId, provider)) ? REMOVED : null);
    if (live && this.feed?.live && generation === this.generation) {
      if (this.activeByShop.size >= SHOP_CACHE_LIMIT)
        this.activeByShop.delete(this.activeByShop.keys().next().value as string);
      this.activeByShop.set(key, found === REMOVED ? REMOVED : (found?.id ?? null));
    }
    return found;
  }

  private async rowById(id: string): Promise<MerchantAccountRow | null> {
    const hit = this.opened.get(id);
    if (hit) return hit.row;
    const row = await this.repo.findById(id);
    if (row) this.remember(row, undefined);
    return row;
  }

  /** A shop row → the credentials it pays with (its own, or its lender's active row). */
  private async resolveRow(row: MerchantAccountRow, kind: AccountKind, fresh: boolean): Promise<ResolvedAccount> {
    if (!row.credentialsShopId) return this.openRow(row, kind, row);
    const lender = fresh
      ? await this.repo.findActive(row.credentialsShopId, row.provider)
      : await this.activeRow(row.credentialsShopId, row.provider);
    if (!lender || lender === REMOVED || lender.credentialsShopId) {
      this.logger.error(
        `merchant account ${row.id} (${row.provider}, shop ${row.shopId}) borrows from shop ${row.credentialsShopId}, which has no account of its own`,
      );
      throw new MerchantAccountUnreadableError(kind.label, row.id, 'the account whose credentials it uses is gone');
    }
    return this.openRow(lender, kind, row);
  }

  private openRow(credentials: MerchantAccountRow, kind: AccountKind, shopRow: MerchantAccountRow): ResolvedAccount {
    let cached = this.opened.get(credentials.id);
    if (!cached || cached.secrets === null) {
      const secrets = JSON.parse(this.openSecrets(credentials, kind)) as Record<string, string>;
      cached = { row: credentials, secrets };
      this.remember(credentials, secrets);
    }
    const settings = { ...(credentials.settings as Record<string, string>) };
    if (shopRow.id !== credentials.id) Object.assign(settings, shopRow.settings as Record<string, string>);
    return {
      accountId: credentials.id,
      shopAccountId: shopRow.id,
      provider: kind.provider,
      environment: credentials.environment,
      settings,
      secrets: cached.secrets as Record<string, string>,
    };
  }

  /** The row's secrets, or null when it has none or they do not open. */
  private tryOpen(row: MerchantAccountRow): Record<string, string> | null {
    if (!row.secrets) return null;
    try {
      return JSON.parse(this.box.open(row.secrets, sealContext(row))) as Record<string, string>;
    } catch {
      return null;
    }
  }

  private openSecrets(row: MerchantAccountRow, kind?: AccountKind): string {
    const label = kind?.label ?? this.kinds.get(row.provider)?.label ?? row.provider;
    if (!row.secrets) throw new MerchantAccountUnreadableError(label, row.id, 'it holds no credentials');
    try {
      return this.box.open(row.secrets, sealContext(row));
    } catch (err) {
      if (err instanceof SecretBoxError) {
        this.logger.error(
          `merchant account ${row.id} (${row.provider}, shop ${row.shopId}) cannot be opened: ${err.message}`,
        );
        throw new MerchantAccountUnreadableError(label, row.id, 'its sealed credentials do not open');
      }
      throw err;
    }
  }

  private remember(row: MerchantAccountRow, secrets: Record<string, string> | null | undefined): void {
    const existing = this.opened.get(row.id);
    if (existing && secrets === undefined) return;
    if (this.opened.size >= ROW_CACHE_LIMIT) this.opened.delete(this.opened.keys().next().value as string);
    this.opened.set(row.id, { row, secrets: secrets ?? existing?.secrets ?? null });
  }

  private forget(payload: string): void {
    this.generation++;
    this.activeByShop.delete(payload);
  }

  private forgetAll(): void {
    this.generation++;
    this.activeByShop.clear();
  }
}

function actorOf(user: AuthUser): string {
  return `user:${user.sub} (${user.role})`;
}

/** Field names that differ from the previous account (values never recorded). */
function changedFields(
  previous: MerchantAccountRow | null,
  input: { environment: string; settings: Record<string, string>; secrets: Record<string, string> | null },
  previousSecrets: Record<string, string> | null,
  linkShop: string | undefined,
): string[] {
  const fields = new Set<string>();
  const prevSettings = (previous?.settings ?? {}) as Record<string, string>;
  if (!previous || previous.environment !== input.environment) fields.add('environment');
  for (const k of new Set([...Object.keys(prevSettings), ...Object.keys(input.settings)]))
    if (prevSettings[k] !== input.settings[k]) fields.add(k);
  const now = input.secrets ?? {};
  const before = previousSecrets ?? {};
  // A previous row that does not open: every secret given counts as changed.
  const unknown = previous?.secrets != null && previousSecrets === null;
  for (const k of new Set([...Object.keys(before), ...Object.keys(now)]))
    if (unknown || before[k] !== now[k]) fields.add(k);
  if ((previous?.credentialsShopId ?? undefined) !== linkShop) fields.add('credentialsFromShopId');
  return [...fields].sort();
}
