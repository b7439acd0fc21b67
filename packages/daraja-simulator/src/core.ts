/** Simulator state and behaviour, independent of HTTP: tokens, pushes, customer answers, callbacks, faults. */
import { CallbackSender } from './callbacks';
import { ERRORS, type DarajaError } from './errors';
import { maskPhone, redactUrl } from './http';
import { newAccessToken, newCheckoutRequestId, newMerchantRequestId, newReceiptNumber } from './ids';
import type { ResolvedOptions } from './options';
import { oauthTokenResponse, stkCallback, type OAuthTokenResponse, type StkCallbackBody } from './payloads';
import {
  DUPLICATE_CALLBACK_GAP_MS,
  resultDescription,
  scenarioByName,
  scenarioForPhone,
  type ScenarioSpec,
} from './scenarios';
import { TimerRegistry, type TimerHandle } from './timers';
import type { SimCallbackDelivery, SimFaultError, SimFaults, SimPush, SimStats, SimulatorAccount } from './types';
import type { ValidPush } from './validation';

export type EndpointKind = 'oauth' | 'push' | 'query';

export type SimulatorErrorKind = 'not_found' | 'already_answered' | 'invalid' | 'closed';

export class SimulatorError extends Error {
  constructor(
    readonly kind: SimulatorErrorKind,
    message: string,
  ) {
    super(message);
    this.name = 'SimulatorError';
  }
}

interface PushRecord {
  push: SimPush;
  answerTimer?: TimerHandle;
}

interface Waiter {
  checkoutRequestId: string;
  count: number;
  resolve: (deliveries: SimCallbackDelivery[]) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

type StoredFaults = Omit<SimFaults, 'invalidateTokens'>;

export type SubmitResult = { ok: true; push: SimPush } | { ok: false; error: DarajaError };

function zeroStats(): SimStats {
  return { oauthRequests: 0, pushRequests: 0, queryRequests: 0, callbacksSent: 0 };
}

function copyFaultError(e: SimFaultError | undefined): SimFaultError | undefined {
  return e && e.count > 0 ? { count: e.count, status: e.status, errorCode: e.errorCode, errorMessage: e.errorMessage } : undefined;
}

function copyFaults(f: SimFaults): StoredFaults {
  const out: StoredFaults = {};
  if (f.down) out.down = true;
  if (f.latencyMs) out.latencyMs = { ...f.latencyMs };
  const pushErrors = copyFaultError(f.pushErrors);
  if (pushErrors) out.pushErrors = pushErrors;
  const queryErrors = copyFaultError(f.queryErrors);
  if (queryErrors) out.queryErrors = queryErrors;
  return out;
}

export class SimulatorCore {
  readonly accounts: ReadonlyMap<string, SimulatorAccount>;
  private readonly tokens = new Map<string, { consumerKey: string; expiresAt: number }>();
  private readonly records = new Map<string, PushRecord>();
  private deliveries: SimCallbackDelivery[] = [];
  private counters: SimStats = zeroStats();
  private faults: StoredFaults = {};
  /** Customer answers and duplicate-callback gaps: cancelled by reset() and shutdown(). */
  private readonly customerTimers = new TimerRegistry();
  /** Injected request latency: cancelled by shutdown() only. */
  private readonly requestTimers = new TimerRegistry();
  private readonly waiters = new Set<Waiter>();
  private readonly sender = new CallbackSender();
  /** Bumped by reset()/shutdown() so deliveries started earlier are not recorded. */
  private generation = 0;
  private closed = false;

  constructor(readonly options: ResolvedOptions) {
    this.accounts = new Map(options.accounts.map((a) => [a.shortcode, a]));
  }

  log(line: string): void {
    try {
      this.options.log(line);
    } catch {
      // a failing logger must never break the simulator
    }
  }

  // ---------------------------------------------------------------- stats & faults

  countRequest(kind: EndpointKind): void {
    if (kind === 'oauth') this.counters.oauthRequests += 1;
    else if (kind === 'push') this.counters.pushRequests += 1;
    else this.counters.queryRequests += 1;
  }

  stats(): SimStats {
    return { ...this.counters };
  }

  setFaults(f: SimFaults): void {
    if (f.invalidateTokens) {
      this.tokens.clear();
      this.log('faults: all issued tokens invalidated');
    }
    this.faults = copyFaults(f);
    this.log(`faults: ${JSON.stringify(this.faults)}`);
  }

  currentFaults(): SimFaults {
    return copyFaults(this.faults);
  }

  isDown(): boolean {
    return this.faults.down === true;
  }

  latencyFor(kind: EndpointKind): number {
    const ms = this.faults.latencyMs?.[kind] ?? 0;
    return Number.isFinite(ms) && ms > 0 ? ms : 0;
  }

  /** Consumes one canned error for the endpoint, if any is configured. */
  takeInjectedError(kind: 'push' | 'query'): DarajaError | undefined {
    const key = kind === 'push' ? 'pushErrors' : 'queryErrors';
    const fault = this.faults[key];
    if (!fault || fault.count <= 0) return undefined;
    fault.count -= 1;
    if (fault.count <= 0) delete this.faults[key];
    return { status: fault.status, errorCode: fault.errorCode, errorMessage: fault.errorMessage };
  }

  /** Waits `ms`; resolves false when the simulator shuts down meanwhile. */
  delay(ms: number): Promise<boolean> {
    return ms > 0 ? this.requestTimers.sleep(ms) : Promise.resolve(!this.closed);
  }

  // ---------------------------------------------------------------- OAuth

  credentialsMatch(consumerKey: string, consumerSecret: string): boolean {
    return consumerKey === this.options.consumerKey && consumerSecret === this.options.consumerSecret;
  }

  issueToken(consumerKey: string): OAuthTokenResponse {
    const now = Date.now();
    for (const [token, info] of this.tokens) {
      if (info.expiresAt <= now || (this.options.invalidatePreviousToken && info.consumerKey === consumerKey)) {
        this.tokens.delete(token);
      }
    }
    while (this.tokens.size >= this.options.maxRecords) {
      const oldest = this.tokens.keys().next().value;
      if (oldest === undefined) break;
      this.tokens.delete(oldest);
    }
    const token = newAccessToken();
    this.tokens.set(token, { consumerKey, expiresAt: now + this.options.tokenTtlSeconds * 1000 });
    return oauthTokenResponse(token, this.options.tokenTtlSeconds);
  }

  isTokenValid(token: string): boolean {
    const info = this.tokens.get(token);
    if (!info) return false;
    if (info.expiresAt <= Date.now()) {
      this.tokens.delete(token);
      return false;
    }
    return true;
  }

  // ---------------------------------------------------------------- pushes

  /** Accepts a validated push (or rejects it per the phone's scenario) and schedules the customer's answer. */
  submitPush(valid: ValidPush, now: Date): SubmitResult {
    const phoneScenario = scenarioForPhone(valid.phoneNumber);
    if (phoneScenario.rejectsPush) return { ok: false, error: ERRORS.subscriberLocked };
    const spec: ScenarioSpec = valid.productPermitted ? phoneScenario : (scenarioByName('product_not_permitted') ?? phoneScenario);

    let checkoutRequestId = newCheckoutRequestId(now);
    while (this.records.has(checkoutRequestId)) checkoutRequestId = newCheckoutRequestId(now);

    const push: SimPush = {
      checkoutRequestId,
      merchantRequestId: newMerchantRequestId(),
      shortcode: valid.shortcode,
      transactionType: valid.transactionType,
      partyB: valid.partyB,
      phoneNumber: valid.phoneNumber,
      amount: valid.amount,
      accountReference: valid.accountReference,
      transactionDesc: valid.transactionDesc,
      callbackUrl: valid.callbackUrl,
      createdAt: now,
      scenario: spec.scenario,
      state: 'awaiting_customer',
    };
    const record: PushRecord = { push };
    this.records.set(checkoutRequestId, record);
    this.trimPushes();

    const autoCode = spec.autoResultCode;
    if (autoCode !== undefined) {
      record.answerTimer = this.customerTimers.schedule(this.options.callbackDelayMs, () => {
        record.answerTimer = undefined;
        void this.answer(record, autoCode);
      });
    }
    this.log(
      `push accepted ${checkoutRequestId} phone=${maskPhone(push.phoneNumber)} amount=${push.amount} scenario=${push.scenario}`,
    );
    return { ok: true, push: structuredClone(push) };
  }

  getPush(checkoutRequestId: string): SimPush | undefined {
    const record = this.records.get(checkoutRequestId);
    return record ? structuredClone(record.push) : undefined;
  }

  /** The push as STK query sees it: it must belong to the querying shortcode. */
  findPushForQuery(shortcode: string, checkoutRequestId: string): SimPush | undefined {
    const record = this.records.get(checkoutRequestId);
    return record && record.push.shortcode === shortcode ? structuredClone(record.push) : undefined;
  }

  listPushes(): SimPush[] {
    return [...this.records.values()].map((r) => structuredClone(r.push));
  }

  async resolve(checkoutRequestId: string, resultCode: number): Promise<void> {
    if (this.closed) throw new SimulatorError('closed', 'the simulator is closed');
    if (!Number.isSafeInteger(resultCode) || resultCode < 0) {
      throw new SimulatorError('invalid', `resultCode must be a non-negative integer, got ${String(resultCode)}`);
    }
    const record = this.records.get(checkoutRequestId);
    if (!record) throw new SimulatorError('not_found', `no push with CheckoutRequestID ${checkoutRequestId}`);
    if (record.push.state === 'answered') {
      throw new SimulatorError('already_answered', `push ${checkoutRequestId} was already answered with ${record.push.resultCode}`);
    }
    await this.answer(record, resultCode);
  }

  private trimPushes(): void {
    while (this.records.size > this.options.maxRecords) {
      const oldestId = this.records.keys().next().value;
      if (oldestId === undefined) break;
      this.customerTimers.cancel(this.records.get(oldestId)?.answerTimer);
      this.records.delete(oldestId);
    }
  }

  /** The customer answers: the push becomes final, then the callback is delivered per the scenario. */
  private async answer(record: PushRecord, resultCode: number): Promise<void> {
    this.customerTimers.cancel(record.answerTimer);
    record.answerTimer = undefined;
    const { push } = record;
    const answeredAt = new Date();
    push.state = 'answered';
    push.resultCode = resultCode;
    push.resultDesc = resultDescription(resultCode);
    if (resultCode === 0) push.receipt = newReceiptNumber();
    this.log(`push answered ${push.checkoutRequestId} ResultCode=${resultCode}`);

    const copies = scenarioByName(push.scenario)?.callbackCopies ?? 1;
    if (copies === 0) {
      this.log(`callback for ${push.checkoutRequestId} dropped (scenario ${push.scenario})`);
      return;
    }
    const body = stkCallback(push, answeredAt);
    const generation = this.generation;
    const deliveries: Promise<void>[] = [this.deliver(push, body, generation)];
    for (let i = 1; i < copies; i += 1) {
      deliveries.push(
        this.customerTimers.sleep(DUPLICATE_CALLBACK_GAP_MS * i).then((fired) => (fired ? this.deliver(push, body, generation) : undefined)),
      );
    }
    await Promise.all(deliveries);
  }

  // ---------------------------------------------------------------- callbacks

  private async deliver(push: SimPush, body: StkCallbackBody, generation: number): Promise<void> {
    const at = new Date();
    const outcome = await this.sender.send(push.callbackUrl, body, { BusinessShortCode: push.shortcode });
    if (this.closed || generation !== this.generation) return;
    const delivery: SimCallbackDelivery = { checkoutRequestId: push.checkoutRequestId, url: push.callbackUrl, body, at };
    if (outcome.status !== undefined) delivery.status = outcome.status;
    if (outcome.error !== undefined) delivery.error = outcome.error;
    this.deliveries.push(delivery);
    if (this.deliveries.length > this.options.maxRecords) {
      this.deliveries.splice(0, this.deliveries.length - this.options.maxRecords);
    }
    this.counters.callbacksSent += 1;
    this.log(
      `callback ${push.checkoutRequestId} -> ${redactUrl(push.callbackUrl)} ${outcome.status !== undefined ? `HTTP ${outcome.status}` : `failed: ${outcome.error ?? 'unknown error'}`}`,
    );
    this.notifyWaiters(push.checkoutRequestId);
  }

  listCallbacks(): SimCallbackDelivery[] {
    return this.deliveries.map((d) => structuredClone(d));
  }

  private callbacksFor(checkoutRequestId: string): SimCallbackDelivery[] {
    return this.deliveries.filter((d) => d.checkoutRequestId === checkoutRequestId).map((d) => structuredClone(d));
  }

  waitForCallbacks(checkoutRequestId: string, count = 1, timeoutMs?: number): Promise<SimCallbackDelivery[]> {
    const existing = this.callbacksFor(checkoutRequestId);
    if (existing.length >= count) return Promise.resolve(existing);
    if (this.closed) return Promise.reject(new SimulatorError('closed', 'the simulator is closed'));
    const limit = timeoutMs ?? this.options.callbackDelayMs + 5000;
    return new Promise<SimCallbackDelivery[]>((resolve, reject) => {
      const waiter: Waiter = {
        checkoutRequestId,
        count,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.waiters.delete(waiter);
          const got = this.callbacksFor(checkoutRequestId).length;
          reject(new Error(`timed out after ${limit} ms waiting for ${count} callback(s) for ${checkoutRequestId} (got ${got})`));
        }, limit),
      };
      this.waiters.add(waiter);
    });
  }

  private notifyWaiters(checkoutRequestId: string): void {
    for (const waiter of [...this.waiters]) {
      if (waiter.checkoutRequestId !== checkoutRequestId) continue;
      const found = this.callbacksFor(checkoutRequestId);
      if (found.length < waiter.count) continue;
      clearTimeout(waiter.timer);
      this.waiters.delete(waiter);
      waiter.resolve(found);
    }
  }

  // ---------------------------------------------------------------- lifecycle

  reset(): void {
    this.generation += 1;
    this.customerTimers.cancelAll();
    this.records.clear();
    this.deliveries = [];
    this.counters = zeroStats();
    this.faults = {};
    this.tokens.clear();
    this.log('reset: pushes, callbacks, stats, faults and tokens cleared');
  }

  shutdown(): void {
    if (this.closed) return;
    this.closed = true;
    this.generation += 1;
    this.customerTimers.cancelAll();
    this.requestTimers.cancelAll();
    this.sender.abortAll();
    for (const waiter of this.waiters) {
      clearTimeout(waiter.timer);
      waiter.reject(new SimulatorError('closed', 'the simulator was closed'));
    }
    this.waiters.clear();
  }
}
