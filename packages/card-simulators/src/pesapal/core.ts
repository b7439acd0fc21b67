/** Pesapal simulator state and behaviour, independent of HTTP: tokens, IPN URLs, orders, settlements, refunds, IPNs. */
import { randomBytes } from 'node:crypto';
import { SimulatorError } from '../shared/control';
import { appendQuery, isPlainObject, maskPhone, parseJson } from '../shared/http';
import { DIGITS, randomFrom, randomIntBetween, UPPER, uuid } from '../shared/ids';
import { currencyExponent, parseMajorAmount } from '../shared/money';
import {
  copyNotificationFaults,
  Notifier,
  type AckVerdict,
  type Notification,
  type NotificationDelivery,
} from '../shared/notifier';
import { Sender, type SendOutcome } from '../shared/sender';
import { TimerRegistry } from '../shared/timers';
import { validatePesapalSettings, type PesapalResolvedOptions } from './options';
import { signJwt } from './payloads';
import type {
  PesapalApiCall,
  PesapalMerchant,
  PesapalCannedError,
  PesapalCompletion,
  PesapalEndpoint,
  PesapalFaults,
  PesapalIpnRegistration,
  PesapalOrder,
  PesapalPaymentMethod,
  PesapalSettings,
  PesapalSettlement,
  PesapalStats,
  PesapalTamper,
} from './types';
import type { ValidIpn, ValidOrder } from './validation';

/** The merchant whose consumer key and secret are the simulator's own options. */
export const PESAPAL_DEFAULT_MERCHANT_ID = 'default';

type Counter =
  | 'tokenRequests'
  | 'ipnRequests'
  | 'submitRequests'
  | 'statusRequests'
  | 'refundRequests'
  | 'cancelRequests'
  | 'checkoutViews'
  | 'checkoutSubmissions';

const COUNTER_FOR: Readonly<Record<Exclude<PesapalEndpoint, 'checkout'>, Counter>> = Object.freeze({
  token: 'tokenRequests',
  ipn: 'ipnRequests',
  submit: 'submitRequests',
  status: 'statusRequests',
  refund: 'refundRequests',
  cancel: 'cancelRequests',
});

const MOBILE_MONEY: readonly string[] = ['Mpesa', 'AirtelMoney'];

function zeroCounters(): Record<Counter, number> {
  return {
    tokenRequests: 0,
    ipnRequests: 0,
    submitRequests: 0,
    statusRequests: 0,
    refundRequests: 0,
    cancelRequests: 0,
    checkoutViews: 0,
    checkoutSubmissions: 0,
  };
}

function copyCanned(e: PesapalCannedError | undefined): PesapalCannedError | undefined {
  if (!e || e.count <= 0) return undefined;
  const out: PesapalCannedError = { count: e.count, code: e.code, message: e.message };
  if (e.errorType !== undefined) out.errorType = e.errorType;
  if (e.httpStatus !== undefined) out.httpStatus = e.httpStatus;
  if (e.applied) out.applied = true;
  return out;
}

function copyFaults(f: PesapalFaults): PesapalFaults {
  const out: PesapalFaults = {};
  if (f.down) out.down = true;
  if (f.cloudflareBlocks !== undefined && f.cloudflareBlocks > 0) out.cloudflareBlocks = f.cloudflareBlocks;
  if (f.latencyMs) {
    const latency = Object.fromEntries(Object.entries(f.latencyMs).filter(([, v]) => typeof v === 'number' && v > 0));
    if (Object.keys(latency).length > 0) out.latencyMs = latency;
  }
  if (f.errors) {
    const errors: NonNullable<PesapalFaults['errors']> = {};
    for (const [k, v] of Object.entries(f.errors) as Array<
      [keyof NonNullable<PesapalFaults['errors']>, PesapalCannedError | undefined]
    >) {
      const copy = copyCanned(v);
      if (copy) errors[k] = copy;
    }
    if (Object.keys(errors).length > 0) out.errors = errors;
  }
  const ipns = copyNotificationFaults(f.ipns);
  if (ipns) out.ipns = ipns;
  return out;
}

function rescale(minor: bigint, fromExp: number, toExp: number): bigint {
  if (toExp >= fromExp) return minor * 10n ** BigInt(toExp - fromExp);
  return minor / 10n ** BigInt(fromExp - toExp);
}

/** Pesapal's acknowledgement rule: HTTP 200 and JSON `status: 200`; the three echoed identifiers are checked as warnings. */
export function judgeIpnAck(outcome: SendOutcome, n: Notification): AckVerdict {
  if (outcome.status === undefined)
    return { acknowledged: false, problems: [`delivery failed: ${outcome.error ?? 'unknown error'}`] };
  if (outcome.status !== 200)
    return {
      acknowledged: false,
      problems: [`receiver answered HTTP ${outcome.status} (Pesapal expects 200 with a JSON acknowledgement)`],
    };
  const parsed = parseJson(Buffer.from(outcome.response ?? '', 'utf8'));
  if (!parsed.ok || !isPlainObject(parsed.value))
    return { acknowledged: false, problems: ['acknowledgement is not a JSON object'] };
  const ack = parsed.value;
  const status = ack['status'];
  if (status !== 200 && status !== '200') {
    return {
      acknowledged: false,
      problems: [
        status === 500 || status === '500'
          ? 'receiver answered status 500 (not processed): Pesapal will retry'
          : 'acknowledgement has no status 200',
      ],
    };
  }
  const problems: string[] = [];
  if (typeof status === 'string')
    problems.push('status is the string "200"; the documented acknowledgement uses the number 200');
  const sent = (n.body ?? {}) as Record<string, string>;
  const expected: Record<string, string | undefined> = {
    orderNotificationType:
      sent['OrderNotificationType'] ?? new URL(n.url).searchParams.get('OrderNotificationType') ?? undefined,
    orderTrackingId: sent['OrderTrackingId'] ?? new URL(n.url).searchParams.get('OrderTrackingId') ?? undefined,
    orderMerchantReference:
      sent['OrderMerchantReference'] ?? new URL(n.url).searchParams.get('OrderMerchantReference') ?? undefined,
  };
  for (const [key, value] of Object.entries(expected)) {
    if (ack[key] === undefined) problems.push(`acknowledgement is missing ${key}`);
    else if (ack[key] !== value)
      problems.push(`acknowledgement ${key} does not echo the notification (${String(ack[key])} ≠ ${String(value)})`);
  }
  return { acknowledged: true, problems };
}

export type OrderResult = { ok: true; order: PesapalOrder } | { ok: false; code: string; message: string };
export type MessageResult = { ok: true; message: string } | { ok: false; message: string };

export class PesapalCore {
  /** token → expiry and the merchant it was issued to */
  private readonly tokens = new Map<string, { exp: number; merchant: string }>();
  /** Further merchants (addMerchant), by consumer key. */
  private readonly merchantsByKey = new Map<string, PesapalMerchant>();
  private readonly calls: PesapalApiCall[] = [];
  private readonly jwtSecret = randomBytes(32);
  private readonly ipnsById = new Map<string, PesapalIpnRegistration>();
  private readonly ordersById = new Map<string, PesapalOrder>();
  private readonly idByMerchantRef = new Map<string, string>();
  private counters = zeroCounters();
  private faultState: PesapalFaults = {};
  private settingsState: PesapalSettings;
  private readonly requestTimers = new TimerRegistry();
  private readonly notifier: Notifier;
  private nextIpnNumericId = randomIntBetween(4_000, 5_000);
  private closed = false;
  publicUrl = '';

  constructor(readonly options: PesapalResolvedOptions) {
    this.settingsState = structuredClone(options.settings);
    this.notifier = new Notifier({
      label: 'IPN',
      sender: new Sender(options.ipnTimeoutMs),
      log: options.log,
      maxRecords: options.maxRecords,
      now: options.now,
      retry: () => this.settingsState.ipnRetry,
      judge: judgeIpnAck,
    });
  }

  log(line: string): void {
    this.options.log(line);
  }

  now(): Date {
    return this.options.now();
  }

  // ------------------------------------------------------------------ stats, faults, settings

  count(endpoint: PesapalEndpoint, submission = false): void {
    if (endpoint === 'checkout') this.counters[submission ? 'checkoutSubmissions' : 'checkoutViews'] += 1;
    else this.counters[COUNTER_FOR[endpoint]] += 1;
  }

  stats(): PesapalStats {
    const n = this.notifier.stats();
    return { ...this.counters, ipnsSent: n.sent, ipnsDropped: n.dropped, ipnsScheduled: n.scheduled };
  }

  setFaults(f: PesapalFaults): void {
    if (f.invalidateTokens) this.invalidateTokens();
    this.faultState = copyFaults(f);
    this.notifier.setFaults(f.ipns);
    this.log(`faults: ${JSON.stringify(this.currentFaults())}`);
  }

  currentFaults(): PesapalFaults {
    const out = copyFaults(this.faultState);
    const ipns = this.notifier.currentFaults();
    if (ipns) out.ipns = ipns;
    else delete out.ipns;
    return out;
  }

  isDown(): boolean {
    return this.faultState.down === true;
  }

  /** Consumes one Cloudflare block, if any is configured. */
  takeCloudflareBlock(): boolean {
    const n = this.faultState.cloudflareBlocks ?? 0;
    if (n <= 0) return false;
    if (n === 1) delete this.faultState.cloudflareBlocks;
    else this.faultState.cloudflareBlocks = n - 1;
    return true;
  }

  latencyFor(endpoint: PesapalEndpoint): number {
    const ms = this.faultState.latencyMs?.[endpoint] ?? 0;
    return ms > 0 ? ms : 0;
  }

  takeCannedError(endpoint: PesapalEndpoint): PesapalCannedError | undefined {
    if (endpoint === 'checkout') return undefined;
    const fault = this.faultState.errors?.[endpoint];
    if (!fault || fault.count <= 0) return undefined;
    const taken = { ...fault };
    fault.count -= 1;
    if (fault.count <= 0 && this.faultState.errors) delete this.faultState.errors[endpoint];
    return taken;
  }

  delay(ms: number): Promise<boolean> {
    return ms > 0 ? this.requestTimers.sleep(ms) : Promise.resolve(!this.closed);
  }

  configure(partial: Partial<PesapalSettings>): PesapalSettings {
    this.settingsState = validatePesapalSettings('PesapalSettings', partial, this.settingsState);
    this.log(`settings: ${JSON.stringify(this.settingsState)}`);
    return this.settings();
  }

  settings(): PesapalSettings {
    return structuredClone(this.settingsState);
  }

  // ------------------------------------------------------------------ tokens

  credentialsMatch(key: unknown, secret: unknown): boolean {
    return this.merchantForCredentials(key, secret) !== undefined;
  }

  /** The merchant (id) these consumer credentials belong to, or undefined. */
  merchantForCredentials(key: unknown, secret: unknown): string | undefined {
    if (key === this.options.consumerKey && secret === this.options.consumerSecret) return PESAPAL_DEFAULT_MERCHANT_ID;
    const m = typeof key === 'string' ? this.merchantsByKey.get(key) : undefined;
    return m && m.consumerSecret === secret ? m.id : undefined;
  }

  /** Another Pesapal merchant (its own consumer key and secret), e.g. a second shop. */
  addMerchant(m: PesapalMerchant): void {
    for (const [k, v] of [
      ['id', m?.id],
      ['consumerKey', m?.consumerKey],
      ['consumerSecret', m?.consumerSecret],
    ] as const)
      if (typeof v !== 'string' || v.length === 0) throw new SimulatorError('invalid', `merchant ${k} is required`);
    if (m.id === PESAPAL_DEFAULT_MERCHANT_ID || m.consumerKey === this.options.consumerKey)
      throw new SimulatorError('conflict', 'that is the default merchant');
    for (const [key, other] of this.merchantsByKey) if (other.id === m.id) this.merchantsByKey.delete(key);
    this.merchantsByKey.set(m.consumerKey, { id: m.id, consumerKey: m.consumerKey, consumerSecret: m.consumerSecret });
    this.log(`merchant ${m.id} added`);
  }

  recordCall(call: PesapalApiCall): void {
    this.calls.push(call);
    if (this.calls.length > this.options.maxRecords) this.calls.shift();
  }

  apiCalls(): PesapalApiCall[] {
    return this.calls.map((c) => ({ ...c, at: new Date(c.at) }));
  }

  issueToken(merchant: string = PESAPAL_DEFAULT_MERCHANT_ID): { token: string; expiresAt: Date } {
    const now = this.now();
    for (const [token, t] of this.tokens) if (t.exp <= now.getTime()) this.tokens.delete(token);
    while (this.tokens.size >= this.options.maxRecords) {
      const oldest = this.tokens.keys().next().value;
      if (oldest === undefined) break;
      this.tokens.delete(oldest);
    }
    const expiresAt = new Date(now.getTime() + this.options.tokenTtlSeconds * 1000);
    const token = signJwt(this.jwtSecret, now, expiresAt, uuid());
    this.tokens.set(token, { exp: expiresAt.getTime(), merchant });
    return { token, expiresAt };
  }

  tokenValid(token: string | undefined): boolean {
    return this.tokenMerchant(token) !== undefined;
  }

  /** The merchant a live token was issued to, or undefined (unknown or expired). */
  tokenMerchant(token: string | undefined): string | undefined {
    if (token === undefined) return undefined;
    const t = this.tokens.get(token);
    if (t === undefined) return undefined;
    if (t.exp <= this.now().getTime()) {
      this.tokens.delete(token);
      return undefined;
    }
    return t.merchant;
  }

  invalidateTokens(): void {
    this.tokens.clear();
    this.log('all issued tokens invalidated');
  }

  // ------------------------------------------------------------------ IPN registrations

  registerIpn(valid: ValidIpn, merchant: string = PESAPAL_DEFAULT_MERCHANT_ID): PesapalIpnRegistration {
    this.nextIpnNumericId += 1;
    const registration: PesapalIpnRegistration = {
      id: this.nextIpnNumericId,
      merchant,
      ipnId: uuid(),
      url: valid.url,
      type: valid.type,
      createdAt: this.now(),
    };
    this.ipnsById.set(registration.ipnId, registration);
    this.log(`IPN URL registered ${registration.ipnId} ${valid.type}`);
    return structuredClone(registration);
  }

  /** `merchant` given: only that merchant's registrations (GetIpnList shows a merchant its own). */
  listIpns(merchant?: string): PesapalIpnRegistration[] {
    return [...this.ipnsById.values()]
      .filter((r) => merchant === undefined || r.merchant === merchant)
      .map((r) => structuredClone(r));
  }

  // ------------------------------------------------------------------ orders

  submitOrder(valid: ValidOrder, merchant: string = PESAPAL_DEFAULT_MERCHANT_ID): OrderResult {
    if (this.ipnsById.get(valid.notificationId)?.merchant !== merchant)
      return {
        ok: false,
        code: 'invalid_api_request_parameters',
        message: 'Invalid IPN URL ID provided.Check format and try again',
      };
    if (this.idByMerchantRef.has(valid.merchantReference)) {
      return {
        ok: false,
        code: 'invalid_api_request_parameters',
        message: `Merchant reference ${valid.merchantReference} has already been used. Use a unique id for every order`,
      };
    }
    let trackingId = uuid();
    while (this.ordersById.has(trackingId)) trackingId = uuid();
    const order: PesapalOrder = {
      orderTrackingId: trackingId,
      merchant,
      merchantReference: valid.merchantReference,
      amountMinor: valid.amountMinor,
      currency: valid.currency,
      description: valid.description,
      callbackUrl: valid.callbackUrl,
      cancellationUrl: valid.cancellationUrl,
      notificationId: valid.notificationId,
      branch: valid.branch,
      redirectMode: valid.redirectMode,
      accountNumber: valid.accountNumber,
      billingAddress: { ...valid.billingAddress },
      redirectUrl: `${this.publicUrl}/pesapaliframe/PesapalIframe3/Index?OrderTrackingId=${trackingId}`,
      createdAt: this.now(),
      state: 'pending',
      statusCode: 0,
      paymentMethod: '',
      paymentAccount: '',
      confirmationCode: '',
      paidAmountMinor: null,
      paidCurrency: null,
      outcomeDescription: null,
      paidAt: null,
      refund: null,
      tamper: null,
    };
    this.ordersById.set(trackingId, order);
    this.idByMerchantRef.set(order.merchantReference, trackingId);
    while (this.ordersById.size > this.options.maxRecords) {
      const oldest = this.ordersById.values().next().value;
      if (!oldest) break;
      this.ordersById.delete(oldest.orderTrackingId);
      this.idByMerchantRef.delete(oldest.merchantReference);
    }
    this.log(
      `order submitted ${trackingId} ref=${order.merchantReference} amount=${order.amountMinor} minor ${order.currency}`,
    );
    return { ok: true, order: structuredClone(order) };
  }

  private find(ref: string): PesapalOrder | undefined {
    return this.ordersById.get(ref) ?? this.ordersById.get(this.idByMerchantRef.get(ref) ?? '');
  }

  private require(ref: string): PesapalOrder {
    if (this.closed) throw new SimulatorError('closed', 'the simulator is closed');
    const order = this.find(ref);
    if (!order) throw new SimulatorError('not_found', `no order with order_tracking_id or merchant reference ${ref}`);
    return order;
  }

  getOrder(ref: string): PesapalOrder | undefined {
    const order = this.find(ref);
    return order ? structuredClone(order) : undefined;
  }

  /** GetTransactionStatus looks up by tracking id only (API 3.0 has no lookup by merchant reference). */
  orderByTrackingId(trackingId: string, merchant?: string): PesapalOrder | undefined {
    const order = this.ordersById.get(trackingId);
    if (order && merchant !== undefined && order.merchant !== merchant) return undefined;
    return order ? structuredClone(order) : undefined;
  }

  listOrders(): PesapalOrder[] {
    return [...this.ordersById.values()].map((o) => structuredClone(o));
  }

  tamper(ref: string, tamper: PesapalTamper | null): PesapalOrder {
    const order = this.require(ref);
    if (tamper === null || (tamper.amount === undefined && tamper.currency === undefined)) {
      order.tamper = null;
    } else {
      this.resolveAmount(order, tamper.amount, tamper.currency);
      order.tamper = { ...tamper };
      this.log(`tamper armed for ${order.orderTrackingId}: ${JSON.stringify(tamper)}`);
    }
    return structuredClone(order);
  }

  private resolveAmount(
    order: PesapalOrder,
    amount: number | undefined,
    currency: string | undefined,
  ): { minor: bigint; currency: string } {
    const cur = currency ?? order.currency;
    const exponent = currencyExponent(cur);
    if (exponent === undefined) throw new SimulatorError('invalid', `currency ${String(cur)} is not supported`);
    if (amount === undefined)
      return { minor: rescale(order.amountMinor, currencyExponent(order.currency) ?? 2, exponent), currency: cur };
    const parsed = parseMajorAmount(amount, exponent, false);
    if (!parsed.ok) throw new SimulatorError('invalid', `amount ${parsed.reason}`);
    return { minor: parsed.minor, currency: cur };
  }

  private callbackRedirect(order: PesapalOrder): string {
    return appendQuery(order.callbackUrl, {
      OrderTrackingId: order.orderTrackingId,
      OrderMerchantReference: order.merchantReference,
      OrderNotificationType: 'CALLBACKURL',
    });
  }

  private paymentAccountFor(order: PesapalOrder, method: string): string {
    if (MOBILE_MONEY.includes(method)) {
      const phone = (order.billingAddress['phone_number'] ?? '').replace(/\D/g, '');
      return phone ? maskPhone(phone) : '2547******00';
    }
    return method === 'MasterCard' ? '553188**2950' : '476173**0010';
  }

  /**
   * The customer's action on the payment page, or a test's complete(). COMPLETED/FAILED change the
   * status and send an IPN; `pending` only records the chosen method (mobile money awaiting approval);
   * `cancelled` changes nothing. Never waits for the IPN.
   */
  settle(ref: string, settlement: PesapalSettlement): PesapalCompletion {
    const order = this.require(ref);
    if (order.state === 'cancelled')
      throw new SimulatorError('conflict', `order ${order.orderTrackingId} was cancelled`);
    if (order.state === 'completed' || order.state === 'reversed')
      throw new SimulatorError('conflict', `order ${order.orderTrackingId} is already paid`);
    const { outcome } = settlement;

    if (outcome === 'cancelled') {
      this.log(`payment page cancelled by customer ${order.orderTrackingId}`);
      const target = order.cancellationUrl
        ? appendQuery(order.cancellationUrl, {
            OrderTrackingId: order.orderTrackingId,
            OrderMerchantReference: order.merchantReference,
          })
        : this.callbackRedirect(order);
      return { outcome, redirectUrl: target, order: structuredClone(order) };
    }

    const method: PesapalPaymentMethod | string =
      settlement.paymentMethod ?? (order.paymentMethod || (outcome === 'pending' ? 'Mpesa' : 'Visa'));
    order.paymentMethod = method;
    if (outcome === 'pending') {
      order.paymentAccount = this.paymentAccountFor(order, method);
      this.log(`payment pending on the customer's phone ${order.orderTrackingId} (${method})`);
      return { outcome, redirectUrl: this.callbackRedirect(order), order: structuredClone(order) };
    }

    const paid = this.resolveAmount(
      order,
      settlement.amount ?? order.tamper?.amount,
      settlement.currency ?? order.tamper?.currency,
    );
    order.paymentAccount = this.paymentAccountFor(order, method);
    order.paidAt = this.now();
    if (outcome === 'completed') {
      order.state = 'completed';
      order.statusCode = 1;
      order.confirmationCode = MOBILE_MONEY.includes(method)
        ? `${randomFrom(UPPER, 2)}${randomFrom(UPPER + DIGITS, 8)}`
        : randomFrom(DIGITS, 22);
      order.paidAmountMinor = paid.minor;
      order.paidCurrency = paid.currency;
      order.outcomeDescription = settlement.description ?? null;
      order.tamper = null;
    } else {
      order.state = 'failed';
      order.statusCode = 2;
      order.confirmationCode = '';
      order.paidAmountMinor = null;
      order.paidCurrency = null;
      order.outcomeDescription =
        settlement.description ??
        (MOBILE_MONEY.includes(method) ? 'Insufficient funds' : 'Transaction declined by issuer');
    }
    this.log(`order ${order.orderTrackingId} -> ${order.state.toUpperCase()} (${method})`);
    this.sendIpn(order);
    return { outcome, redirectUrl: this.callbackRedirect(order), order: structuredClone(order) };
  }

  reverse(ref: string): PesapalOrder {
    const order = this.require(ref);
    if (order.state !== 'completed')
      throw new SimulatorError('conflict', `only a COMPLETED order can be reversed (order is ${order.state})`);
    order.state = 'reversed';
    order.statusCode = 3;
    order.outcomeDescription = 'Payment reversed';
    this.log(`order ${order.orderTrackingId} -> REVERSED`);
    this.sendIpn(order);
    return structuredClone(order);
  }

  cancelOrder(trackingId: unknown, merchant?: string): MessageResult {
    if (typeof trackingId !== 'string' || trackingId === '')
      return { ok: false, message: 'order_tracking_id is required' };
    const order = this.ordersById.get(trackingId);
    if (!order || (merchant !== undefined && order.merchant !== merchant))
      return { ok: false, message: 'Order not found' };
    if (order.state === 'cancelled') return { ok: false, message: 'Order has already been cancelled.' };
    if (order.state === 'completed' || order.state === 'reversed')
      return { ok: false, message: 'Order cannot be cancelled: it has already been paid.' };
    order.state = 'cancelled';
    order.statusCode = 0;
    order.outcomeDescription = 'Order cancelled by merchant';
    this.log(`order ${order.orderTrackingId} cancelled by merchant`);
    return { ok: true, message: 'Order successfully cancelled.' };
  }

  // ------------------------------------------------------------------ refunds

  requestRefund(
    confirmationCode: string,
    amount: unknown,
    username: string,
    remarks: string,
    merchant?: string,
  ): MessageResult {
    const order = [...this.ordersById.values()].find(
      (o) =>
        o.confirmationCode !== '' &&
        o.confirmationCode === confirmationCode &&
        (merchant === undefined || o.merchant === merchant),
    );
    if (!order) return { ok: false, message: 'No payment was found for the confirmation code provided' };
    if (order.state !== 'completed') return { ok: false, message: 'Only COMPLETED payments can be refunded' };
    if (order.refund)
      return {
        ok: false,
        message: 'A refund has already been requested for this payment: only one refund per payment is allowed',
      };
    const currency = order.paidCurrency ?? order.currency;
    const paidMinor = order.paidAmountMinor ?? order.amountMinor;
    const parsed = parseMajorAmount(amount, currencyExponent(currency) ?? 2, true);
    if (!parsed.ok) return { ok: false, message: `amount ${parsed.reason}` };
    if (parsed.minor > paidMinor) return { ok: false, message: 'Refund amount cannot be more than the amount paid' };
    if (MOBILE_MONEY.includes(order.paymentMethod) && parsed.minor !== paidMinor)
      return { ok: false, message: 'Mobile money payments can only be refunded in full' };
    order.refund = {
      amountMinor: parsed.minor,
      username,
      remarks,
      state: 'pending',
      createdAt: this.now(),
      decidedAt: null,
    };
    this.log(`refund requested on ${order.orderTrackingId}: ${parsed.minor} minor ${currency}`);
    return { ok: true, message: 'Refund request successfully' };
  }

  decideRefund(ref: string, decision: 'approve' | 'reject'): PesapalOrder {
    const order = this.require(ref);
    if (!order.refund) throw new SimulatorError('conflict', `order ${order.orderTrackingId} has no refund request`);
    if (order.refund.state !== 'pending')
      throw new SimulatorError(
        'conflict',
        `the refund request of ${order.orderTrackingId} was already ${order.refund.state}`,
      );
    order.refund.state = decision === 'approve' ? 'approved' : 'rejected';
    order.refund.decidedAt = this.now();
    this.log(`refund on ${order.orderTrackingId} ${order.refund.state}`);
    if (decision === 'approve') {
      order.state = 'reversed';
      order.statusCode = 3;
      order.outcomeDescription = 'Payment refunded';
      this.sendIpn(order);
    }
    return structuredClone(order);
  }

  // ------------------------------------------------------------------ IPNs

  private sendIpn(order: PesapalOrder): void {
    const registration = this.ipnsById.get(order.notificationId);
    if (!registration) {
      this.log(`IPN for ${order.orderTrackingId} not sent: IPN id no longer registered`);
      return;
    }
    const fields = {
      OrderTrackingId: order.orderTrackingId,
      OrderMerchantReference: order.merchantReference,
      OrderNotificationType: 'IPNCHANGE',
    };
    const base: Omit<Notification, 'method' | 'url' | 'headers'> = { ref: order.orderTrackingId, event: 'IPNCHANGE' };
    if (registration.type === 'GET') {
      this.notifier.dispatch({
        ...base,
        method: 'GET',
        url: appendQuery(registration.url, fields),
        headers: { Accept: 'application/json', 'User-Agent': 'pesapal-simulator' },
      });
    } else {
      this.notifier.dispatch({
        ...base,
        method: 'POST',
        url: registration.url,
        headers: { Accept: 'application/json', 'Content-Type': 'application/json', 'User-Agent': 'pesapal-simulator' },
        body: fields,
      });
    }
  }

  ipnDeliveries(): NotificationDelivery[] {
    return this.notifier.list();
  }

  waitForIpns(trackingId: string, count: number, timeoutMs: number): Promise<NotificationDelivery[]> {
    return this.notifier.waitFor(trackingId, count, timeoutMs);
  }

  flushIpns(): number {
    return this.notifier.flush();
  }

  // ------------------------------------------------------------------ lifecycle

  reset(full: boolean): void {
    this.ordersById.clear();
    this.idByMerchantRef.clear();
    this.counters = zeroCounters();
    this.faultState = {};
    this.notifier.reset();
    this.calls.length = 0;
    if (full) {
      this.ipnsById.clear();
      this.tokens.clear();
      this.merchantsByKey.clear();
      this.settingsState = structuredClone(this.options.settings);
    }
    this.log(
      `reset${full ? ' (full: IPN registrations, tokens and settings too)' : ''}: orders, IPNs, stats and faults cleared`,
    );
  }

  shutdown(): void {
    if (this.closed) return;
    this.closed = true;
    this.requestTimers.cancelAll();
    this.notifier.shutdown();
  }
}
