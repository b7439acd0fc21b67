/** Flutterwave simulator state and behaviour, independent of HTTP: links, attempts, refunds, webhooks, faults. */
import { SimulatorError } from '../shared/control';
import { appendQuery, maskPhone } from '../shared/http';
import { DIGITS, HEX, LOWER, randomFrom, randomIntBetween, UPPER } from '../shared/ids';
import { basisPointsOf, currencyExponent, parseMajorAmount } from '../shared/money';
import { copyNotificationFaults, Notifier, type NotificationDelivery } from '../shared/notifier';
import { Sender } from '../shared/sender';
import { TimerRegistry } from '../shared/timers';
import type { FlwResolvedOptions } from './options';
import { validateFlwSettings } from './options';
import { legacyChargeWebhook, refundWebhook, v3ChargeWebhook } from './payloads';
import type {
  FlwCannedError,
  FlwCard,
  FlwCheckout,
  FlwCompletion,
  FlwEndpoint,
  FlwApiCall,
  FlwFaults,
  FlwMerchant,
  FlwPaymentType,
  FlwRefund,
  FlwRefundPlan,
  FlwRefundStatus,
  FlwSettings,
  FlwSettlement,
  FlwStats,
  FlwTamper,
  FlwTransaction,
} from './types';
import type { ValidMpesaCharge, ValidPayment } from './validation';

export const FLW_NOT_FOUND_MESSAGE = 'No transaction was found for this id';
export const FLW_LIST_PAGE_SIZE = 10;
/** The merchant whose key and hash are the simulator's own (options.secretKey, settings.secretHash). */
export const FLW_DEFAULT_MERCHANT_ID = 'default';

type Counter =
  | 'paymentRequests'
  | 'chargeRequests'
  | 'verifyRequests'
  | 'transactionRequests'
  | 'refundRequests'
  | 'checkoutViews'
  | 'checkoutSubmissions';

const COUNTER_FOR: Readonly<Record<Exclude<FlwEndpoint, 'checkout'>, Counter>> = Object.freeze({
  payments: 'paymentRequests',
  charges: 'chargeRequests',
  verify: 'verifyRequests',
  transactions: 'transactionRequests',
  refunds: 'refundRequests',
});

export type ApiFailure = { ok: false; status: number; message: string };

const SUCCESS_RESPONSE: Readonly<Record<FlwPaymentType, string>> = Object.freeze({
  card: 'Approved. Successful',
  mpesa: 'The service request is processed successfully.',
});
const FAILURE_RESPONSE: Readonly<Record<FlwPaymentType, string>> = Object.freeze({
  card: 'Declined',
  mpesa: 'The balance is insufficient for the transaction.',
});
const PENDING_RESPONSE = 'Transaction in progress';

function zeroCounters(): Record<Counter, number> {
  return {
    paymentRequests: 0,
    chargeRequests: 0,
    verifyRequests: 0,
    transactionRequests: 0,
    refundRequests: 0,
    checkoutViews: 0,
    checkoutSubmissions: 0,
  };
}

function copyCanned(e: FlwCannedError | undefined): FlwCannedError | undefined {
  if (!e || e.count <= 0) return undefined;
  const out: FlwCannedError = { count: e.count, status: e.status, message: e.message };
  if (e.applied) out.applied = true;
  return out;
}

function copyFaults(f: FlwFaults): FlwFaults {
  const out: FlwFaults = {};
  if (f.down) out.down = true;
  if (f.latencyMs) {
    const latency = Object.fromEntries(Object.entries(f.latencyMs).filter(([, v]) => typeof v === 'number' && v > 0));
    if (Object.keys(latency).length > 0) out.latencyMs = latency;
  }
  if (f.errors) {
    const errors: NonNullable<FlwFaults['errors']> = {};
    for (const [k, v] of Object.entries(f.errors) as Array<
      [keyof NonNullable<FlwFaults['errors']>, FlwCannedError | undefined]
    >) {
      const copy = copyCanned(v);
      if (copy) errors[k] = copy;
    }
    if (Object.keys(errors).length > 0) out.errors = errors;
  }
  const webhooks = copyNotificationFaults(f.webhooks);
  if (webhooks) out.webhooks = webhooks;
  return out;
}

function rescale(minor: bigint, fromExp: number, toExp: number): bigint {
  if (toExp >= fromExp) return minor * 10n ** BigInt(toExp - fromExp);
  return minor / 10n ** BigInt(fromExp - toExp);
}

export class FlutterwaveCore {
  private readonly checkoutsByRef = new Map<string, FlwCheckout>();
  private readonly refByLink = new Map<string, string>();
  private readonly txs = new Map<number, FlwTransaction>();
  private readonly refundRecords = new Map<number, FlwRefund>();
  private refundPlan: (FlwRefundPlan & { left: number }) | null = null;
  private counters = zeroCounters();
  private faultState: FlwFaults = {};
  private settingsState: FlwSettings;
  private readonly requestTimers = new TimerRegistry();
  private readonly notifier: Notifier;
  private nextTxId = randomIntBetween(4_000_000, 9_000_000);
  private nextCustomerId = randomIntBetween(70_000, 90_000);
  private nextRefundId = randomIntBetween(8_000, 9_000);
  private readonly walletId = randomIntBetween(70_000, 80_000);
  private closed = false;
  /** Further merchants (addMerchant), by secret key: each sees only its own checkouts. */
  private readonly merchantsByKey = new Map<string, FlwMerchant>();
  private readonly calls: FlwApiCall[] = [];
  publicUrl = '';

  constructor(readonly options: FlwResolvedOptions) {
    this.settingsState = structuredClone(options.settings);
    this.notifier = new Notifier({
      label: 'webhook',
      sender: new Sender(options.webhookTimeoutMs),
      log: options.log,
      maxRecords: options.maxRecords,
      now: options.now,
      retry: () => this.settingsState.webhookRetry,
      // Flutterwave: only HTTP 200 counts; any other status (3xx included) is a failure. Body ignored.
      judge: (outcome) =>
        outcome.status === 200
          ? { acknowledged: true, problems: [] }
          : {
              acknowledged: false,
              problems: [
                outcome.status !== undefined
                  ? `receiver answered HTTP ${outcome.status} (only 200 counts)`
                  : `delivery failed: ${outcome.error ?? 'unknown error'}`,
              ],
            },
    });
  }

  log(line: string): void {
    this.options.log(line);
  }

  now(): Date {
    return this.options.now();
  }

  // ------------------------------------------------------------------ stats, faults, settings

  count(endpoint: FlwEndpoint, submission = false): void {
    if (endpoint === 'checkout') this.counters[submission ? 'checkoutSubmissions' : 'checkoutViews'] += 1;
    else this.counters[COUNTER_FOR[endpoint]] += 1;
  }

  stats(): FlwStats {
    const n = this.notifier.stats();
    return { ...this.counters, webhooksSent: n.sent, webhooksDropped: n.dropped, webhooksScheduled: n.scheduled };
  }

  setFaults(f: FlwFaults): void {
    this.faultState = copyFaults(f);
    this.notifier.setFaults(f.webhooks);
    this.log(`faults: ${JSON.stringify(this.currentFaults())}`);
  }

  currentFaults(): FlwFaults {
    const out = copyFaults(this.faultState);
    const webhooks = this.notifier.currentFaults();
    if (webhooks) out.webhooks = webhooks;
    else delete out.webhooks;
    return out;
  }

  isDown(): boolean {
    return this.faultState.down === true;
  }

  latencyFor(endpoint: FlwEndpoint): number {
    const ms = this.faultState.latencyMs?.[endpoint] ?? 0;
    return ms > 0 ? ms : 0;
  }

  /** Consumes one canned error of the endpoint group, if configured. */
  takeCannedError(endpoint: FlwEndpoint): FlwCannedError | undefined {
    if (endpoint === 'checkout') return undefined;
    const fault = this.faultState.errors?.[endpoint];
    if (!fault || fault.count <= 0) return undefined;
    const taken = { ...fault };
    fault.count -= 1;
    if (fault.count <= 0 && this.faultState.errors) delete this.faultState.errors[endpoint];
    return taken;
  }

  /** Waits `ms`; false when the simulator shuts down meanwhile. */
  delay(ms: number): Promise<boolean> {
    return ms > 0 ? this.requestTimers.sleep(ms) : Promise.resolve(!this.closed);
  }

  configure(partial: Partial<FlwSettings>): FlwSettings {
    this.settingsState = validateFlwSettings('FlwSettings', partial, this.settingsState);
    const s = this.settingsState;
    this.log(
      `settings: webhookUrl=${s.webhookUrl ? 'set' : 'none'} shape=${s.webhookShape} meta=${s.webhookMeta} failedWebhooks=${s.failedWebhooks} refundWebhooks=${s.refundWebhooks} retry=${s.webhookRetry.attempts}x${s.webhookRetry.intervalMs}ms`,
    );
    return this.settings();
  }

  settings(): FlwSettings {
    return structuredClone(this.settingsState);
  }

  secretKeyMatches(token: string | undefined): boolean {
    return this.merchantFor(token) !== undefined;
  }

  /** The merchant a Bearer secret key belongs to (its id), or undefined for a key no merchant has. */
  merchantFor(token: string | undefined): string | undefined {
    if (token === undefined) return undefined;
    if (token === this.options.secretKey) return FLW_DEFAULT_MERCHANT_ID;
    return this.merchantsByKey.get(token)?.id;
  }

  /** Another Flutterwave merchant (its own secret key and webhook secret hash), e.g. a second shop. */
  addMerchant(m: FlwMerchant): void {
    for (const [k, v] of [
      ['id', m?.id],
      ['secretKey', m?.secretKey],
      ['secretHash', m?.secretHash],
    ] as const)
      if (typeof v !== 'string' || v.length === 0) throw new SimulatorError('invalid', `merchant ${k} is required`);
    if (m.id === FLW_DEFAULT_MERCHANT_ID || m.secretKey === this.options.secretKey)
      throw new SimulatorError('conflict', 'that is the default merchant');
    for (const [key, other] of this.merchantsByKey) if (other.id === m.id) this.merchantsByKey.delete(key);
    this.merchantsByKey.set(m.secretKey, { id: m.id, secretKey: m.secretKey, secretHash: m.secretHash });
    this.log(`merchant ${m.id} added`);
  }

  secretKeyOf(merchant: string): string {
    if (merchant === FLW_DEFAULT_MERCHANT_ID) return this.options.secretKey;
    for (const m of this.merchantsByKey.values()) if (m.id === merchant) return m.secretKey;
    throw new SimulatorError('not_found', `no merchant ${merchant}`);
  }

  private secretHashOf(merchant: string): string {
    if (merchant === FLW_DEFAULT_MERCHANT_ID) return this.settingsState.secretHash;
    for (const m of this.merchantsByKey.values()) if (m.id === merchant) return m.secretHash;
    return this.settingsState.secretHash;
  }

  /** Records one /v3 call: which merchant's key it carried (null: no or an unknown key). */
  recordCall(call: FlwApiCall): void {
    this.calls.push(call);
    if (this.calls.length > this.options.maxRecords) this.calls.shift();
  }

  apiCalls(): FlwApiCall[] {
    return this.calls.map((c) => ({ ...c, at: new Date(c.at) }));
  }

  /** A checkout as seen by `merchant`: another merchant's does not exist for it. */
  private owned(txRef: string, merchant: string | undefined): FlwCheckout | undefined {
    const checkout = this.checkoutsByRef.get(txRef);
    return checkout && (merchant === undefined || checkout.merchant === merchant) ? checkout : undefined;
  }

  // ------------------------------------------------------------------ checkouts

  private newCustomer(
    c: { email: string; name: string | null; phoneNumber: string | null },
    at: Date,
  ): FlwCheckout['customer'] {
    this.nextCustomerId += 1;
    return { id: this.nextCustomerId, email: c.email, name: c.name, phoneNumber: c.phoneNumber, createdAt: at };
  }

  private newLinkId(): string {
    let id = `flwlnk-${randomFrom(LOWER + DIGITS, 14)}`;
    while (this.refByLink.has(id)) id = `flwlnk-${randomFrom(LOWER + DIGITS, 14)}`;
    return id;
  }

  createCheckout(
    valid: ValidPayment,
    merchant: string = FLW_DEFAULT_MERCHANT_ID,
  ): { ok: true; checkout: FlwCheckout } | ApiFailure {
    if (this.checkoutsByRef.has(valid.txRef))
      return { ok: false, status: 400, message: 'Duplicate transaction reference. Please use a unique tx_ref' };
    const now = this.now();
    const linkId = this.newLinkId();
    const checkout: FlwCheckout = {
      txRef: valid.txRef,
      merchant,
      source: 'standard',
      linkId,
      link: `${this.publicUrl}/v3/hosted/pay/${linkId}`,
      amountMinor: valid.amountMinor,
      currency: valid.currency,
      currencyDefaulted: valid.currencyDefaulted,
      redirectUrl: valid.redirectUrl,
      customer: this.newCustomer(valid.customer, now),
      customizations: { ...valid.customizations },
      meta: valid.meta,
      paymentOptions: [...valid.paymentOptions],
      sessionDurationMinutes: valid.sessionDurationMinutes,
      maxRetryAttempt: valid.maxRetryAttempt,
      createdAt: now,
      expiresAt:
        valid.sessionDurationMinutes !== null ? new Date(now.getTime() + valid.sessionDurationMinutes * 60_000) : null,
      state: 'open',
      failedAttempts: 0,
      transactionIds: [],
      tamper: null,
    };
    this.storeCheckout(checkout);
    this.log(
      `payment link created tx_ref=${checkout.txRef} amount=${checkout.amountMinor} minor ${checkout.currency}${checkout.currencyDefaulted ? ' (currency omitted: defaulted to NGN)' : ''}`,
    );
    return { ok: true, checkout: structuredClone(checkout) };
  }

  createMpesaCharge(
    valid: ValidMpesaCharge,
    merchant: string = FLW_DEFAULT_MERCHANT_ID,
  ): { ok: true; transaction: FlwTransaction } | ApiFailure {
    if (this.checkoutsByRef.has(valid.txRef))
      return { ok: false, status: 400, message: 'Duplicate transaction reference. Please use a unique tx_ref' };
    const now = this.now();
    const checkout: FlwCheckout = {
      txRef: valid.txRef,
      merchant,
      source: 'mpesa_charge',
      linkId: null,
      link: null,
      amountMinor: valid.amountMinor,
      currency: valid.currency,
      currencyDefaulted: false,
      redirectUrl: valid.redirectUrl,
      customer: this.newCustomer(valid.customer, now),
      customizations: {},
      meta: valid.meta,
      paymentOptions: ['mpesa'],
      sessionDurationMinutes: null,
      maxRetryAttempt: 1,
      createdAt: now,
      expiresAt: null,
      state: 'open',
      failedAttempts: 0,
      transactionIds: [],
      tamper: null,
    };
    this.storeCheckout(checkout);
    const tx = this.newTransaction(checkout, 'mpesa', checkout.amountMinor, checkout.currency, now);
    tx.status = 'pending';
    tx.processorResponse = PENDING_RESPONSE;
    this.log(
      `mpesa charge initiated tx_ref=${checkout.txRef} id=${tx.id} phone=${maskPhone(valid.customer.phoneNumber ?? '')} amount=${tx.amountMinor} minor KES`,
    );
    return { ok: true, transaction: structuredClone(tx) };
  }

  private storeCheckout(checkout: FlwCheckout): void {
    this.checkoutsByRef.set(checkout.txRef, checkout);
    if (checkout.linkId) this.refByLink.set(checkout.linkId, checkout.txRef);
    while (this.checkoutsByRef.size > this.options.maxRecords) {
      const oldest = this.checkoutsByRef.values().next().value;
      if (!oldest) break;
      this.checkoutsByRef.delete(oldest.txRef);
      if (oldest.linkId) this.refByLink.delete(oldest.linkId);
    }
  }

  checkoutByLink(linkId: string): FlwCheckout | undefined {
    const ref = this.refByLink.get(linkId);
    const checkout = ref !== undefined ? this.checkoutsByRef.get(ref) : undefined;
    return checkout ? structuredClone(checkout) : undefined;
  }

  getCheckout(txRef: string): FlwCheckout | undefined {
    const checkout = this.checkoutsByRef.get(txRef);
    return checkout ? structuredClone(checkout) : undefined;
  }

  listCheckouts(): FlwCheckout[] {
    return [...this.checkoutsByRef.values()].map((c) => structuredClone(c));
  }

  isExpired(checkout: FlwCheckout): boolean {
    return checkout.expiresAt !== null && this.now().getTime() >= checkout.expiresAt.getTime();
  }

  tamper(txRef: string, tamper: FlwTamper | null): FlwCheckout {
    const checkout = this.checkoutsByRef.get(txRef);
    if (!checkout) throw new SimulatorError('not_found', `no checkout with tx_ref ${txRef}`);
    if (tamper === null || (tamper.amount === undefined && tamper.currency === undefined)) {
      checkout.tamper = null;
    } else {
      this.resolveAmount(checkout, tamper.amount, tamper.currency); // validates
      checkout.tamper = { ...tamper };
      this.log(`tamper armed for tx_ref=${txRef}: ${JSON.stringify(tamper)}`);
    }
    return structuredClone(checkout);
  }

  /** Settled amount/currency: explicit values, else the armed tamper, else what the merchant asked for. */
  private resolveAmount(
    checkout: FlwCheckout,
    amount: number | undefined,
    currency: string | undefined,
  ): { minor: bigint; currency: string } {
    const cur = currency ?? checkout.currency;
    const exponent = currencyExponent(cur);
    if (exponent === undefined) throw new SimulatorError('invalid', `currency ${String(cur)} is not supported`);
    if (amount === undefined) {
      return {
        minor: rescale(checkout.amountMinor, currencyExponent(checkout.currency) ?? 2, exponent),
        currency: cur,
      };
    }
    const parsed = parseMajorAmount(amount, exponent, false);
    if (!parsed.ok) throw new SimulatorError('invalid', `amount ${parsed.reason}`);
    return { minor: parsed.minor, currency: cur };
  }

  // ------------------------------------------------------------------ attempts

  private newTransaction(
    checkout: FlwCheckout,
    paymentType: FlwPaymentType,
    amountMinor: bigint,
    currency: string,
    at: Date,
  ): FlwTransaction {
    this.nextTxId += randomIntBetween(1, 40);
    const card: FlwCard | null =
      paymentType === 'card'
        ? {
            first_6digits: '553188',
            last_4digits: '2950',
            issuer: 'MASTERCARD  CREDIT',
            country: 'NG',
            type: 'MASTERCARD',
            token: `flw-t1nf-${randomFrom(HEX, 32)}-m03k`,
            expiry: '09/32',
          }
        : null;
    const tx: FlwTransaction = {
      id: this.nextTxId,
      txRef: checkout.txRef,
      flwRef:
        paymentType === 'mpesa'
          ? randomFrom(UPPER, 3) + randomFrom(UPPER + DIGITS, 7)
          : `FLW-MOCK-${randomFrom(HEX, 32)}`,
      amountMinor,
      chargedAmountMinor: amountMinor,
      appFeeMinor: basisPointsOf(amountMinor, this.options.appFeeBasisPoints),
      currency,
      status: 'pending',
      paymentType,
      processorResponse: PENDING_RESPONSE,
      authModel: paymentType === 'mpesa' ? 'LIPA_MPESA' : 'PIN',
      narration: paymentType === 'mpesa' ? 'FLW-PBF MPESA Transaction' : 'CARD Transaction ',
      createdAt: at,
      customer: structuredClone(checkout.customer),
      card,
      meta: checkout.meta ? structuredClone(checkout.meta) : null,
      refundedMinor: 0n,
    };
    this.txs.set(tx.id, tx);
    checkout.transactionIds.push(tx.id);
    while (this.txs.size > this.options.maxRecords) {
      const oldest = this.txs.keys().next().value;
      if (oldest === undefined) break;
      this.txs.delete(oldest);
    }
    return tx;
  }

  private redirectFor(checkout: FlwCheckout, params: Record<string, string>): string | null {
    if (checkout.source !== 'standard' || checkout.redirectUrl === null) return null;
    return appendQuery(checkout.redirectUrl, params);
  }

  /**
   * The customer's answer (hosted page) or a test's complete(). Creates a new attempt, or settles the
   * pending one (M-Pesa awaiting approval). Sends the webhook for final outcomes. Never waits for it.
   */
  settle(txRef: string, settlement: FlwSettlement): FlwCompletion {
    if (this.closed) throw new SimulatorError('closed', 'the simulator is closed');
    const checkout = this.checkoutsByRef.get(txRef);
    if (!checkout) throw new SimulatorError('not_found', `no checkout with tx_ref ${txRef}`);
    const { outcome } = settlement;
    if (checkout.state === 'paid') throw new SimulatorError('conflict', `tx_ref ${txRef} is already paid`);
    if (checkout.state === 'closed')
      throw new SimulatorError(
        'conflict',
        `tx_ref ${txRef} is closed after ${checkout.failedAttempts} failed attempt(s)`,
      );

    if (outcome === 'cancelled') {
      this.log(`checkout cancelled by customer tx_ref=${txRef}`);
      return {
        outcome,
        redirectUrl: this.redirectFor(checkout, { status: 'cancelled', tx_ref: txRef }),
        transaction: null,
      };
    }

    const pendingId = [...checkout.transactionIds].reverse().find((id) => this.txs.get(id)?.status === 'pending');
    let tx = pendingId !== undefined ? this.txs.get(pendingId) : undefined;
    const tamper = checkout.tamper;
    const settled = this.resolveAmount(
      checkout,
      settlement.amount ?? tamper?.amount,
      settlement.currency ?? tamper?.currency,
    );
    if (!tx) {
      if (this.isExpired(checkout))
        throw new SimulatorError('conflict', `the checkout link for tx_ref ${txRef} has expired`);
      const type = settlement.paymentType ?? checkout.paymentOptions[0] ?? 'card';
      if (!checkout.paymentOptions.includes(type))
        throw new SimulatorError(
          'invalid',
          `payment type ${type} is not offered on this checkout (${checkout.paymentOptions.join(', ')})`,
        );
      tx = this.newTransaction(checkout, type, settled.minor, settled.currency, this.now());
    } else {
      if (outcome === 'pending') return { outcome, redirectUrl: null, transaction: structuredClone(tx) };
      tx.amountMinor = settled.minor;
      tx.chargedAmountMinor = settled.minor;
      tx.appFeeMinor = basisPointsOf(settled.minor, this.options.appFeeBasisPoints);
      tx.currency = settled.currency;
    }

    tx.status = outcome;
    tx.processorResponse =
      settlement.processorResponse ??
      (outcome === 'successful'
        ? SUCCESS_RESPONSE[tx.paymentType]
        : outcome === 'failed'
          ? FAILURE_RESPONSE[tx.paymentType]
          : PENDING_RESPONSE);
    if (outcome === 'successful') {
      checkout.state = 'paid';
      checkout.tamper = null;
    } else if (outcome === 'failed') {
      checkout.failedAttempts += 1;
      if (checkout.maxRetryAttempt !== null && checkout.failedAttempts >= checkout.maxRetryAttempt)
        checkout.state = 'closed';
    }
    this.log(
      `attempt ${tx.id} tx_ref=${txRef} ${tx.paymentType} -> ${outcome} amount=${tx.amountMinor} minor ${tx.currency}`,
    );
    if (outcome !== 'pending') this.sendChargeWebhook(tx);

    let redirectUrl: string | null = null;
    if (outcome === 'successful')
      redirectUrl = this.redirectFor(checkout, {
        status: this.settingsState.successRedirectStatus,
        tx_ref: txRef,
        transaction_id: String(tx.id),
      });
    else if (outcome === 'failed')
      redirectUrl = this.redirectFor(checkout, { status: 'failed', tx_ref: txRef, transaction_id: String(tx.id) });
    return { outcome, redirectUrl, transaction: structuredClone(tx) };
  }

  // ------------------------------------------------------------------ lookups

  /** `merchant` given: only a transaction of that merchant's checkouts (Flutterwave shows no one another's). */
  getTransaction(id: number, merchant?: string): FlwTransaction | undefined {
    const tx = this.txs.get(id);
    if (tx && merchant !== undefined && !this.owned(tx.txRef, merchant)) return undefined;
    return tx ? structuredClone(tx) : undefined;
  }

  listTransactions(): FlwTransaction[] {
    return [...this.txs.values()].map((t) => structuredClone(t));
  }

  /** verify_by_reference: the successful attempt if any, else the latest attempt. */
  transactionForRef(txRef: string, merchant?: string): FlwTransaction | undefined {
    const ids = this.owned(txRef, merchant)?.transactionIds ?? [];
    const attempts = ids.map((id) => this.txs.get(id)).filter((t): t is FlwTransaction => t !== undefined);
    const chosen = attempts.find((t) => t.status === 'successful') ?? attempts[attempts.length - 1];
    return chosen ? structuredClone(chosen) : undefined;
  }

  // ------------------------------------------------------------------ webhooks

  private sendChargeWebhook(tx: FlwTransaction): void {
    const s = this.settingsState;
    if (!s.webhookUrl) {
      this.log(`no webhook URL configured: charge.completed for ${tx.txRef} not sent`);
      return;
    }
    if (tx.status === 'failed' && !s.failedWebhooks) {
      this.log(`failed-transaction webhooks are off: charge.completed for ${tx.txRef} not sent`);
      return;
    }
    const body =
      s.webhookShape === 'legacy'
        ? legacyChargeWebhook(tx, this.options.accountId)
        : v3ChargeWebhook(tx, this.options.accountId, s.webhookMeta);
    this.notifier.dispatch({
      ref: tx.txRef,
      event: 'charge.completed',
      method: 'POST',
      url: s.webhookUrl,
      headers: {
        'Content-Type': 'application/json',
        'verif-hash': this.secretHashOf(this.checkoutsByRef.get(tx.txRef)?.merchant ?? FLW_DEFAULT_MERCHANT_ID),
        'User-Agent': 'flutterwave-simulator',
      },
      body,
    });
  }

  private sendRefundWebhook(refund: FlwRefund): void {
    const s = this.settingsState;
    if (!s.refundWebhooks || !s.webhookUrl) return;
    this.notifier.dispatch({
      ref: refund.txRef,
      event: 'refund.completed',
      method: 'POST',
      url: s.webhookUrl,
      headers: {
        'Content-Type': 'application/json',
        'verif-hash': this.secretHashOf(this.checkoutsByRef.get(refund.txRef)?.merchant ?? FLW_DEFAULT_MERCHANT_ID),
        'User-Agent': 'flutterwave-simulator',
      },
      body: refundWebhook(refund, this.options.accountId),
    });
  }

  /** POST /v3/transactions/:id/resend-hook */
  resendHook(id: number): { ok: true } | ApiFailure {
    const tx = this.txs.get(id);
    if (!tx) return { ok: false, status: 400, message: FLW_NOT_FOUND_MESSAGE };
    if (tx.status === 'pending')
      return { ok: false, status: 400, message: 'Cannot resend a hook for a pending transaction' };
    if (!this.settingsState.webhookUrl)
      return { ok: false, status: 400, message: 'No webhook url has been set for this account' };
    this.sendChargeWebhook(tx);
    return { ok: true };
  }

  webhooks(): NotificationDelivery[] {
    return this.notifier.list();
  }

  waitForWebhooks(txRef: string, count: number, timeoutMs: number): Promise<NotificationDelivery[]> {
    return this.notifier.waitFor(txRef, count, timeoutMs);
  }

  flushWebhooks(): number {
    return this.notifier.flush();
  }

  // ------------------------------------------------------------------ refunds

  refund(
    id: number,
    amount: unknown,
    comments: unknown,
    merchant?: string,
  ): { ok: true; refund: FlwRefund } | ApiFailure {
    const tx = this.txs.get(id);
    if (!tx || (merchant !== undefined && !this.owned(tx.txRef, merchant)))
      return { ok: false, status: 400, message: FLW_NOT_FOUND_MESSAGE };
    if (tx.status !== 'successful')
      return { ok: false, status: 400, message: `Cannot refund a ${tx.status} transaction` };
    const remaining = tx.amountMinor - tx.refundedMinor;
    if (remaining <= 0n) return { ok: false, status: 400, message: 'Transaction has been fully refunded' };
    const exponent = currencyExponent(tx.currency) ?? 2;
    let refundMinor = remaining;
    if (amount !== undefined && amount !== null && amount !== '') {
      const parsed = parseMajorAmount(amount, exponent, true);
      if (!parsed.ok) return { ok: false, status: 400, message: `amount ${parsed.reason}` };
      if (parsed.minor > remaining)
        return {
          ok: false,
          status: 400,
          message: 'Refund amount cannot be greater than the amount left to refund on this transaction',
        };
      refundMinor = parsed.minor;
    }
    if (comments !== undefined && comments !== null && typeof comments !== 'string')
      return { ok: false, status: 400, message: 'comments must be a string' };
    const plan = this.takeRefundPlan();
    if (plan?.outcome === 'refuse') {
      const message = plan.message ?? 'Refund is not available for this transaction at the moment';
      this.log(`refund on transaction ${tx.id} refused (planned): ${message}`);
      return { ok: false, status: 400, message };
    }
    const now = this.now();
    this.nextRefundId += 1;
    const status: FlwRefundStatus =
      plan?.outcome === 'pending'
        ? tx.paymentType === 'mpesa'
          ? 'pending-momo'
          : 'pending'
        : plan?.outcome === 'completed' || tx.paymentType !== 'mpesa'
          ? 'completed'
          : 'pending-momo';
    const refund: FlwRefund = {
      id: this.nextRefundId,
      txId: tx.id,
      txRef: tx.txRef,
      flwRef: `URF_${now.getTime()}_${randomFrom(DIGITS, 7)}`,
      amountMinor: refundMinor,
      currency: tx.currency,
      status,
      comments: typeof comments === 'string' ? comments : '',
      walletId: this.walletId,
      createdAt: now,
      updatedAt: now,
      merchant: this.checkoutsByRef.get(tx.txRef)?.merchant ?? FLW_DEFAULT_MERCHANT_ID,
    };
    tx.refundedMinor += refundMinor;
    this.refundRecords.set(refund.id, refund);
    while (this.refundRecords.size > this.options.maxRecords) {
      const oldest = this.refundRecords.keys().next().value;
      if (oldest === undefined) break;
      this.refundRecords.delete(oldest);
    }
    this.log(`refund ${refund.id} of ${refundMinor} minor ${tx.currency} on transaction ${tx.id} -> ${refund.status}`);
    if (refund.status === 'completed') this.sendRefundWebhook(refund);
    return { ok: true, refund: structuredClone(refund) };
  }

  /** The plan for this refund request (counted down), or null for normal behaviour. */
  private takeRefundPlan(): FlwRefundPlan | null {
    const plan = this.refundPlan;
    if (!plan) return null;
    if (plan.count !== undefined) {
      plan.left -= 1;
      if (plan.left <= 0) this.refundPlan = null;
    }
    return plan;
  }

  planRefunds(plan: FlwRefundPlan | null): void {
    if (plan === null) {
      this.refundPlan = null;
      return;
    }
    if (!['pending', 'completed', 'refuse'].includes(plan.outcome))
      throw new SimulatorError('invalid', 'refund plan outcome must be pending, completed or refuse');
    if (plan.count !== undefined && (!Number.isInteger(plan.count) || plan.count < 1))
      throw new SimulatorError('invalid', 'refund plan count must be a positive whole number');
    if (plan.message !== undefined && (typeof plan.message !== 'string' || plan.message.length === 0))
      throw new SimulatorError('invalid', 'refund plan message must be a non-empty string');
    this.refundPlan = { ...plan, left: plan.count ?? 0 };
    this.log(`refund plan: ${plan.outcome}${plan.count !== undefined ? ` for ${plan.count} request(s)` : ''}`);
  }

  private pendingRefund(refundId: number): FlwRefund {
    if (this.closed) throw new SimulatorError('closed', 'the simulator is closed');
    const refund = this.refundRecords.get(refundId);
    if (!refund) throw new SimulatorError('not_found', `no refund with id ${refundId}`);
    if (refund.status === 'completed' || refund.status === 'failed')
      throw new SimulatorError('conflict', `refund ${refundId} is already ${refund.status}`);
    return refund;
  }

  completeRefund(refundId: number): FlwRefund {
    const refund = this.pendingRefund(refundId);
    refund.status = 'completed';
    refund.updatedAt = this.now();
    this.log(`refund ${refundId} completed`);
    this.sendRefundWebhook(refund);
    return structuredClone(refund);
  }

  /** A held refund that did not go through: the money stays with the merchant and can be refunded again. */
  failRefund(refundId: number): FlwRefund {
    const refund = this.pendingRefund(refundId);
    refund.status = 'failed';
    refund.updatedAt = this.now();
    const tx = this.txs.get(refund.txId);
    if (tx) tx.refundedMinor -= refund.amountMinor;
    this.log(`refund ${refundId} failed`);
    this.sendRefundWebhook(refund);
    return structuredClone(refund);
  }

  /** `merchant` given: only that merchant's refunds exist for it. */
  getRefund(id: number, merchant?: string): FlwRefund | undefined {
    const refund = this.refundRecords.get(id);
    if (refund && merchant !== undefined && refund.merchant !== merchant) return undefined;
    return refund ? structuredClone(refund) : undefined;
  }

  listRefunds(merchant?: string): FlwRefund[] {
    return [...this.refundRecords.values()]
      .filter((r) => merchant === undefined || r.merchant === merchant)
      .map((r) => structuredClone(r));
  }

  // ------------------------------------------------------------------ lifecycle

  reset(full: boolean): void {
    this.checkoutsByRef.clear();
    this.refByLink.clear();
    this.txs.clear();
    this.refundRecords.clear();
    this.refundPlan = null;
    this.counters = zeroCounters();
    this.faultState = {};
    this.notifier.reset();
    this.calls.length = 0;
    if (full) {
      this.settingsState = structuredClone(this.options.settings);
      this.merchantsByKey.clear();
    }
    this.log(
      `reset${full ? ' (full: settings restored)' : ''}: checkouts, transactions, refunds, webhooks, stats and faults cleared`,
    );
  }

  shutdown(): void {
    if (this.closed) return;
    this.closed = true;
    this.requestTimers.cancelAll();
    this.notifier.shutdown();
  }
}
