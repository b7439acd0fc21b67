/** Simulator state and behaviour, independent of HTTP: tokens, pushes, customer answers, callbacks, faults. */
import { randomInt } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { parseBehaviour } from './behaviour';
import { CallbackSender } from './callbacks';
import { ERRORS, type DarajaError } from './errors';
import {
  cloneFaults,
  DEFAULT_DUPLICATE_COPIES,
  DEFAULT_TIMEOUT_HOLD_MS,
  FaultDice,
  hasRandomFaults,
  parseFaults,
  parseResolveOptions,
} from './faults';
import { maskPhone, redactUrl } from './http';
import {
  maskCheckoutRequestIds,
  newAccessToken,
  newCheckoutRequestId,
  newMerchantRequestId,
  newReceiptNumber,
} from './ids';
import type { ResolvedOptions } from './options';
import { parseAccount, parseApp, RegistrationConflict, Registry } from './registry';
import { C2bApi } from './c2b';
import { ResultApi } from './result-api';
import { QrPullRoutes } from './qr-pull';
import { oauthTokenResponse, stkCallback, type OAuthTokenResponse, type StkCallbackBody } from './payloads';
import {
  DUPLICATE_CALLBACK_GAP_MS,
  resultDescription,
  scenarioByName,
  scenarioForPhone,
  type ScenarioSpec,
} from './scenarios';
import { TimerRegistry, type TimerHandle } from './timers';
import type {
  PendingQueryForm,
  SimBehaviour,
  SimCallbackDelivery,
  SimFaults,
  SimInjection,
  SimInjectionKind,
  SimInjectionSource,
  SimPromptCount,
  SimPromptQuery,
  SimPush,
  SimQuery,
  SimResolveOptions,
  SimResultControl,
  SimAccountInfo,
  SimAppInfo,
  SimRegistration,
  SimStats,
  SimulatorAccount,
  SimulatorApp,
} from './types';
import type { ValidPush, ValidQuery } from './validation';

export type EndpointKind = 'oauth' | 'push' | 'query';

export type SimulatorErrorKind = 'not_found' | 'already_answered' | 'invalid' | 'closed' | 'conflict';

export class SimulatorError extends Error {
  constructor(
    readonly kind: SimulatorErrorKind,
    message: string,
  ) {
    super(message);
    this.name = 'SimulatorError';
  }
}

/** How the callback of a push will be delivered; decided when the push is accepted. */
interface CallbackPlan {
  /** 0 = dropped, 1 = once, 2+ = duplicated */
  copies: number;
  gapMs: number;
  delayMs: number;
  dropSource?: SimInjectionSource;
  duplicateSource?: SimInjectionSource;
  delaySource?: SimInjectionSource;
}

interface PushRecord {
  push: SimPush;
  answerTimer?: TimerHandle;
  plan: CallbackPlan;
}

/** What the gateway does to an authenticated push/query call instead of (or besides) serving it. */
export type EndpointFault =
  | { kind: 'error'; error: DarajaError }
  | { kind: 'timeout'; processed: boolean; holdMs: number; source: SimInjectionSource };

/** The fields of a push request body promptsFor() matches on (taken before validation). */
export interface PushRequestFields {
  accountReference?: string;
  phoneNumber?: string;
}

interface Waiter {
  checkoutRequestId: string;
  count: number;
  resolve: (deliveries: SimCallbackDelivery[]) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

type StoredFaults = Omit<SimFaults, 'invalidateTokens' | 'seed'>;

export type SubmitResult = { ok: true; push: SimPush } | { ok: false; error: DarajaError };

export const SPIKE_ARREST_CODE = '500.003.02';

function zeroStats(): SimStats {
  return {
    oauthRequests: 0,
    pushRequests: 0,
    queryRequests: 0,
    callbacksSent: 0,
    promptsSent: 0,
    pushErrorsInjected: 0,
    pushSpikeArrests: 0,
    pushTimeouts: 0,
    pushTimeoutsProcessed: 0,
    queryErrorsInjected: 0,
    querySpikeArrests: 0,
    queryTimeouts: 0,
    callbacksDropped: 0,
    callbacksDuplicated: 0,
    callbacksDelayed: 0,
    tokensInvalidated: 0,
  };
}

/** Normalised copy of parsed faults: one-shot/seed removed, no-op entries (down:false, count 0) dropped. */
function storedFaults(f: SimFaults): StoredFaults {
  const out: SimFaults = cloneFaults(f);
  delete out.invalidateTokens;
  delete out.seed;
  if (!out.down) delete out.down;
  if (out.pushErrors && out.pushErrors.count <= 0) delete out.pushErrors;
  if (out.queryErrors && out.queryErrors.count <= 0) delete out.queryErrors;
  return out;
}

/** A generic 5xx, chosen by a draw in [0, 1). */
function genericServerError(draw: number): DarajaError {
  return draw < 0.5 ? ERRORS.internalError : ERRORS.serviceUnavailable;
}

export class SimulatorCore {
  /** Apps and accounts: the start-up ones and those registered while running (reset() keeps them). */
  readonly registry: Registry;
  /** OAuth calls by the consumer key they named (known apps only), since the last reset. */
  private oauthByKey = new Map<string, number>();
  private readonly tokens = new Map<string, { consumerKey: string; expiresAt: number }>();
  private readonly records = new Map<string, PushRecord>();
  private deliveries: SimCallbackDelivery[] = [];
  private queryLog: SimQuery[] = [];
  private behaviourState: SimBehaviour;
  private counters: SimStats = zeroStats();
  private faults: StoredFaults = {};
  /** Seed of the current dice and whether the caller chose it. */
  private seed = 0;
  private seedGiven = false;
  private dice = new FaultDice(0);
  /** Authenticated push/query calls since tokens were last dropped by tokenInvalidateEveryCalls. */
  private authorizedCalls = 0;
  private injectionLog: SimInjection[] = [];
  private injectionSeq = 0;
  private pushRequestLog: PushRequestFields[] = [];
  /** Connections held open by timeout faults: dropped by reset() and shutdown(). */
  private readonly heldConnections = new TimerRegistry();
  /** Customer answers and duplicate-callback gaps: cancelled by reset() and shutdown(). */
  private readonly customerTimers = new TimerRegistry();
  /** Injected request latency: cancelled by shutdown() only. */
  private readonly requestTimers = new TimerRegistry();
  private readonly waiters = new Set<Waiter>();
  private readonly sender = new CallbackSender();
  /** Bumped by reset()/shutdown() so deliveries started earlier are not recorded. */
  private generation = 0;
  private closed = false;
  /** Reversal and Transaction Status: their requests, results, controls and the payments they can see. */
  readonly results: ResultApi;
  /** Dynamic QR and Pull Transactions (qr-pull.ts): their state is cleared by reset() like the rest. */
  readonly qrPull: QrPullRoutes;
  /** C2B: registerurl, customers paying from their phones, STK payments' confirmations. */
  readonly c2b: C2bApi;

  constructor(readonly options: ResolvedOptions) {
    this.registry = new Registry(options.apps, options.accounts);
    this.qrPull = new QrPullRoutes(this);
    this.results = new ResultApi(this.registry, options.resultDelayMs, options.maxRecords, (line) => this.log(line));
    this.c2b = new C2bApi(
      this.registry,
      (line) => this.log(line),
      (shortcode, tx) => void this.qrPull.addTransactions(shortcode, [tx]),
    );
    this.behaviourState = { ...options.behaviour };
    this.applyFaults(options.faults);
  }

  // ---------------------------------------------------------------- behaviour

  behaviour(): SimBehaviour {
    return { ...this.behaviourState };
  }

  /** Changes the given fields; throws SimulatorError('invalid') with a readable message. */
  setBehaviour(b: Partial<SimBehaviour>): void {
    const parsed = parseBehaviour(b);
    if (!parsed.ok) throw new SimulatorError('invalid', `invalid behaviour: ${parsed.message}`);
    this.behaviourState = { ...this.behaviourState, ...parsed.value };
    this.log(`behaviour: ${JSON.stringify(this.behaviourState)}`);
  }

  /** How STK query answers this unanswered push: its scenario's form, else the current behaviour. */
  pendingFormFor(push: SimPush): PendingQueryForm {
    return push.pendingQueryForm ?? this.behaviourState.pendingQueryForm;
  }

  log(line: string): void {
    try {
      // CheckoutRequestIDs end with the payer's national number: never logged in full.
      this.options.log(maskCheckoutRequestIds(line));
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

  /** Validates and replaces the faults; throws SimulatorError('invalid') with a readable message. */
  setFaults(f: SimFaults): void {
    const parsed = parseFaults(f);
    if (!parsed.ok) throw new SimulatorError('invalid', `invalid faults: ${parsed.message}`);
    this.applyFaults(parsed.value);
  }

  private applyFaults(f: SimFaults): void {
    if (f.invalidateTokens) this.invalidateAllTokens('one_shot');
    this.faults = storedFaults(f);
    this.seedGiven = f.seed !== undefined;
    this.seed = f.seed ?? randomInt(0, 0x1_0000_0000);
    this.dice = new FaultDice(this.seed);
    this.authorizedCalls = 0;
    this.log(`faults: ${JSON.stringify(this.currentFaults())}`);
  }

  currentFaults(): SimFaults {
    const out: SimFaults = cloneFaults(this.faults);
    if (this.seedGiven || hasRandomFaults(this.faults)) out.seed = this.seed;
    return out;
  }

  isDown(): boolean {
    return this.faults.down === true;
  }

  latencyFor(kind: EndpointKind): number {
    const ms = this.faults.latencyMs?.[kind] ?? 0;
    return Number.isFinite(ms) && ms > 0 ? ms : 0;
  }

  /** Consumes one canned error for the endpoint, if any is configured. */
  private takeInjectedError(kind: 'push' | 'query'): DarajaError | undefined {
    const key = kind === 'push' ? 'pushErrors' : 'queryErrors';
    const fault = this.faults[key];
    if (!fault || fault.count <= 0) return undefined;
    fault.count -= 1;
    if (fault.count <= 0) delete this.faults[key];
    return { status: fault.status, errorCode: fault.errorCode, errorMessage: fault.errorMessage };
  }

  /**
   * Called once per authenticated push/query call, before it is served: returns the fault to inject, if any.
   * A canned pushErrors/queryErrors wins; otherwise one seeded draw picks among the configured rates.
   * Errors are recorded here; timeouts are recorded by recordTimeout() once the outcome is known.
   */
  decideFault(kind: 'push' | 'query', accountReference?: string): EndpointFault | undefined {
    const canned = this.takeInjectedError(kind);
    if (canned) {
      this.recordError(kind, canned, 'canned', accountReference);
      return { kind: 'error', error: canned };
    }
    const f = this.faults;
    const serverRate = (kind === 'push' ? f.pushServerErrorRate : f.queryServerErrorRate) ?? 0;
    const spikeRate = (kind === 'push' ? f.pushSpikeArrestRate : f.querySpikeArrestRate) ?? 0;
    const unprocessedRate = (kind === 'push' ? f.pushTimeouts?.unprocessedRate : f.queryTimeouts?.rate) ?? 0;
    const processedRate = (kind === 'push' ? f.pushTimeouts?.processedRate : 0) ?? 0;
    if (serverRate + spikeRate + unprocessedRate + processedRate <= 0) return undefined;
    const roll = this.dice.next(kind);
    const pick = this.dice.next(kind);
    let edge = serverRate;
    if (roll < edge) {
      const error = genericServerError(pick);
      this.recordError(kind, error, 'random', accountReference);
      return { kind: 'error', error };
    }
    edge += spikeRate;
    if (roll < edge) {
      const error: DarajaError = { ...ERRORS.spikeArrest };
      this.recordError(kind, error, 'random', accountReference);
      return { kind: 'error', error };
    }
    edge += unprocessedRate;
    if (roll < edge) return { kind: 'timeout', processed: false, holdMs: this.timeoutHoldMs(kind), source: 'random' };
    edge += processedRate;
    if (roll < edge) return { kind: 'timeout', processed: true, holdMs: this.timeoutHoldMs(kind), source: 'random' };
    return undefined;
  }

  timeoutHoldMs(kind: 'push' | 'query'): number {
    return (
      (kind === 'push' ? this.faults.pushTimeouts?.holdMs : this.faults.queryTimeouts?.holdMs) ??
      DEFAULT_TIMEOUT_HOLD_MS
    );
  }

  private recordError(
    kind: 'push' | 'query',
    error: DarajaError,
    source: SimInjectionSource,
    accountReference?: string,
  ): void {
    const spike = error.errorCode === SPIKE_ARREST_CODE;
    if (kind === 'push') {
      if (spike) this.counters.pushSpikeArrests += 1;
      else this.counters.pushErrorsInjected += 1;
    } else if (spike) this.counters.querySpikeArrests += 1;
    else this.counters.queryErrorsInjected += 1;
    this.recordInjection({
      kind: (kind === 'push'
        ? spike
          ? 'push_spike_arrest'
          : 'push_error'
        : spike
          ? 'query_spike_arrest'
          : 'query_error') satisfies SimInjectionKind,
      source,
      accountReference,
      status: error.status,
      errorCode: error.errorCode,
    });
  }

  /** A push/query whose answer is never sent; `checkoutRequestId` when a push was recorded anyway. */
  recordTimeout(
    kind: 'push' | 'query',
    t: {
      processed: boolean;
      holdMs: number;
      source: SimInjectionSource;
      accountReference?: string;
      checkoutRequestId?: string;
    },
  ): void {
    if (kind === 'query') this.counters.queryTimeouts += 1;
    else {
      this.counters.pushTimeouts += 1;
      if (t.processed) this.counters.pushTimeoutsProcessed += 1;
    }
    this.recordInjection({
      kind: kind === 'query' ? 'query_timeout' : t.processed ? 'push_timeout_processed' : 'push_timeout_unprocessed',
      source: t.source,
      accountReference: t.accountReference,
      checkoutRequestId: t.checkoutRequestId,
      holdMs: t.holdMs,
    });
  }

  /** Keeps the connection open `holdMs` without answering, then drops it. Resolves when it is gone. */
  holdConnection(res: ServerResponse, holdMs: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const drop = (): void => {
        res.destroy();
        resolve();
      };
      const handle = this.heldConnections.schedule(holdMs, drop, drop);
      res.once('close', () => {
        this.heldConnections.cancel(handle);
        resolve();
      });
    });
  }

  /** Counts an authenticated push/query call for tokenInvalidateEveryCalls (the Nth call itself is served). */
  noteAuthorizedCall(): void {
    const every = this.faults.tokenInvalidateEveryCalls;
    if (every === undefined) return;
    this.authorizedCalls += 1;
    if (this.authorizedCalls >= every) {
      this.authorizedCalls = 0;
      this.invalidateAllTokens('every_n_calls');
    }
  }

  private invalidateAllTokens(source: SimInjectionSource): void {
    this.tokens.clear();
    this.counters.tokensInvalidated += 1;
    this.recordInjection({ kind: 'tokens_invalidated', source });
  }

  private recordInjection(entry: Omit<SimInjection, 'seq' | 'at'>): void {
    this.injectionSeq += 1;
    const injection: SimInjection = { seq: this.injectionSeq, at: new Date(), kind: entry.kind, source: entry.source };
    for (const key of [
      'checkoutRequestId',
      'accountReference',
      'status',
      'errorCode',
      'holdMs',
      'copies',
      'delayMs',
    ] as const) {
      if (entry[key] !== undefined) (injection as unknown as Record<string, unknown>)[key] = entry[key];
    }
    this.injectionLog.push(injection);
    if (this.injectionLog.length > this.options.maxRecords) {
      this.injectionLog.splice(0, this.injectionLog.length - this.options.maxRecords);
    }
    if (entry.checkoutRequestId !== undefined) {
      const push = this.records.get(entry.checkoutRequestId)?.push;
      if (push) push.injected = [...(push.injected ?? []), entry.kind];
    }
    const detail = [
      entry.checkoutRequestId,
      entry.status !== undefined ? `HTTP ${entry.status} ${entry.errorCode ?? ''}`.trim() : undefined,
      entry.holdMs !== undefined ? `held ${entry.holdMs} ms` : undefined,
      entry.copies !== undefined ? `${entry.copies} copies` : undefined,
      entry.delayMs !== undefined ? `+${entry.delayMs} ms` : undefined,
    ].filter((d) => d !== undefined);
    this.log(
      `fault injected #${injection.seq} ${entry.kind} (${entry.source})${detail.length ? ` ${detail.join(' ')}` : ''}`,
    );
  }

  listInjections(): SimInjection[] {
    return this.injectionLog.map((i) => structuredClone(i));
  }

  // ---------------------------------------------------------------- push requests per payment

  recordPushRequest(fields: PushRequestFields): void {
    this.pushRequestLog.push(fields);
    if (this.pushRequestLog.length > this.options.maxRecords) {
      this.pushRequestLog.splice(0, this.pushRequestLog.length - this.options.maxRecords);
    }
  }

  promptsFor(query: SimPromptQuery): SimPromptCount {
    const ref = query.accountReference;
    const phone = query.phoneNumber === undefined ? undefined : String(query.phoneNumber);
    if ((ref === undefined || ref === '') && (phone === undefined || phone === '')) {
      throw new SimulatorError('invalid', 'promptsFor needs an accountReference and/or a phoneNumber');
    }
    const matches = (r: string | undefined, p: string | undefined): boolean =>
      (ref === undefined || r === ref) && (phone === undefined || p === phone);
    const prompted = [...this.records.values()].filter((rec) =>
      matches(rec.push.accountReference, rec.push.phoneNumber),
    );
    return {
      pushRequests: this.pushRequestLog.filter((f) => matches(f.accountReference, f.phoneNumber)).length,
      prompts: prompted.length,
      checkoutRequestIds: prompted.map((rec) => rec.push.checkoutRequestId),
    };
  }

  /** Waits `ms`; resolves false when the simulator shuts down meanwhile. */
  delay(ms: number): Promise<boolean> {
    return ms > 0 ? this.requestTimers.sleep(ms) : Promise.resolve(!this.closed);
  }

  // ---------------------------------------------------------------- OAuth

  credentialsMatch(consumerKey: string, consumerSecret: string): boolean {
    return this.registry.credentialsMatch(consumerKey, consumerSecret);
  }

  /** Counts an OAuth call under the consumer key it named, when that key belongs to an app (whatever the secret). */
  countOAuthCall(consumerKey: string): void {
    if (!this.registry.hasApp(consumerKey)) return;
    this.oauthByKey.set(consumerKey, (this.oauthByKey.get(consumerKey) ?? 0) + 1);
  }

  oauthCalls(): Record<string, number> {
    return Object.fromEntries(this.oauthByKey);
  }

  // ---------------------------------------------------------------- apps & accounts

  /** Adds an app (idempotent); SimulatorError 'invalid' on bad input, 'conflict' on a different definition. */
  registerApp(app: SimulatorApp): SimRegistration<SimAppInfo> {
    const parsed = parseApp(app);
    if (!parsed.ok) throw new SimulatorError('invalid', parsed.message);
    const result = this.withConflicts(() => this.registry.registerApp(parsed.value));
    // The consumer key is a credential: not logged.
    this.log(
      `app ${result.outcome === 'created' ? 'registered' : 'already registered'} (shortcodes: ${result.value.shortcodes.join(', ') || 'any'})`,
    );
    return result;
  }

  registerAccount(account: SimulatorAccount): SimRegistration<SimAccountInfo> {
    const parsed = parseAccount(account);
    if (!parsed.ok) throw new SimulatorError('invalid', parsed.message);
    const result = this.withConflicts(() => this.registry.registerAccount(parsed.value));
    this.log(
      `account ${result.value.shortcode} ${result.outcome === 'created' ? 'registered' : 'already registered'} (tills: ${result.value.tillNumbers.join(', ') || 'none'})`,
    );
    return result;
  }

  private withConflicts<T>(register: () => T): T {
    try {
      return register();
    } catch (err: unknown) {
      if (err instanceof RegistrationConflict) throw new SimulatorError('conflict', err.message);
      throw err;
    }
  }

  listApps(): SimAppInfo[] {
    return this.registry.listApps();
  }

  listAccounts(): SimAccountInfo[] {
    return this.registry.listAccounts();
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

  /** The consumer key a live token was issued to; undefined for an unknown or expired token. */
  tokenConsumerKey(token: string): string | undefined {
    const info = this.tokens.get(token);
    if (!info) return undefined;
    if (info.expiresAt <= Date.now()) {
      this.tokens.delete(token);
      return undefined;
    }
    return info.consumerKey;
  }

  // ---------------------------------------------------------------- pushes

  /** Accepts a validated push (or rejects it per the phone's scenario) and schedules the customer's answer. */
  submitPush(valid: ValidPush, now: Date): SubmitResult {
    const phoneScenario = scenarioForPhone(valid.phoneNumber);
    if (phoneScenario.rejectsPush) return { ok: false, error: ERRORS.subscriberLocked };
    const spec: ScenarioSpec = valid.productPermitted
      ? phoneScenario
      : (scenarioByName('product_not_permitted') ?? phoneScenario);

    // Two pushes to one phone in the same millisecond: the next millisecond, as ids stay unique.
    let stampedAt = now;
    let checkoutRequestId = newCheckoutRequestId(stampedAt, valid.phoneNumber);
    while (this.records.has(checkoutRequestId)) {
      stampedAt = new Date(stampedAt.getTime() + 1);
      checkoutRequestId = newCheckoutRequestId(stampedAt, valid.phoneNumber);
    }

    const push: SimPush = {
      checkoutRequestId,
      merchantRequestId: newMerchantRequestId(),
      consumerKey: valid.consumerKey,
      shortcode: valid.shortcode,
      transactionType: valid.transactionType,
      partyB: valid.partyB,
      phoneNumber: valid.phoneNumber,
      amount: valid.amount,
      accountReference: valid.accountReference,
      transactionDesc: valid.transactionDesc,
      callbackUrl: valid.callbackUrl,
      timestamp: valid.timestamp,
      timestampSkewSeconds: valid.timestampSkewSeconds,
      createdAt: now,
      scenario: spec.scenario,
      state: 'awaiting_customer',
    };
    if (spec.pendingQueryForm !== undefined) push.pendingQueryForm = spec.pendingQueryForm;
    const record: PushRecord = { push, plan: this.planCallback(spec) };
    this.records.set(checkoutRequestId, record);
    this.trimPushes();
    this.counters.promptsSent += 1;

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

  /** The phone scenario's callback behaviour, then the seeded callback faults (drop/duplicate draw, delay draw). */
  private planCallback(spec: ScenarioSpec): CallbackPlan {
    const plan: CallbackPlan = { copies: spec.callbackCopies, gapMs: DUPLICATE_CALLBACK_GAP_MS, delayMs: 0 };
    if (spec.callbackCopies === 0) plan.dropSource = 'phone';
    if (spec.callbackCopies > 1) plan.duplicateSource = 'phone';
    const cb = this.faults.callbacks;
    if (!cb || spec.callbackCopies === 0) return plan;
    const dropRate = cb.dropRate ?? 0;
    const duplicateRate = cb.duplicateRate ?? 0;
    if (dropRate + duplicateRate > 0) {
      const roll = this.dice.next('callback');
      if (roll < dropRate) {
        plan.copies = 0;
        plan.dropSource = 'random';
        plan.duplicateSource = undefined;
      } else if (roll < dropRate + duplicateRate) {
        plan.copies = Math.max(spec.callbackCopies, cb.duplicateCopies ?? DEFAULT_DUPLICATE_COPIES);
        plan.gapMs = cb.duplicateGapMs ?? DUPLICATE_CALLBACK_GAP_MS;
        plan.duplicateSource = 'random';
      }
    }
    if ((cb.delayRate ?? 0) > 0) {
      const roll = this.dice.next('callback');
      if (plan.copies > 0 && roll < (cb.delayRate ?? 0)) {
        plan.delayMs = cb.delayMs ?? 0;
        plan.delaySource = 'random';
      }
    }
    return plan;
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

  /** Records a validated STK query and how it was answered. */
  recordQuery(valid: ValidQuery, at: Date, answer: Pick<SimQuery, 'answer' | 'pendingForm' | 'resultCode'>): void {
    const entry: SimQuery = {
      checkoutRequestId: valid.checkoutRequestId,
      consumerKey: valid.consumerKey,
      shortcode: valid.shortcode,
      timestamp: valid.timestamp,
      timestampSkewSeconds: valid.timestampSkewSeconds,
      at,
      answer: answer.answer,
    };
    if (answer.pendingForm !== undefined) entry.pendingForm = answer.pendingForm;
    if (answer.resultCode !== undefined) entry.resultCode = answer.resultCode;
    this.queryLog.push(entry);
    if (this.queryLog.length > this.options.maxRecords)
      this.queryLog.splice(0, this.queryLog.length - this.options.maxRecords);
  }

  listQueries(): SimQuery[] {
    return this.queryLog.map((q) => structuredClone(q));
  }

  listPushes(): SimPush[] {
    return [...this.records.values()].map((r) => structuredClone(r.push));
  }

  async resolve(checkoutRequestId: string, resultCode: number, options?: SimResolveOptions): Promise<void> {
    if (this.closed) throw new SimulatorError('closed', 'the simulator is closed');
    if (!Number.isSafeInteger(resultCode) || resultCode < 0) {
      throw new SimulatorError('invalid', `resultCode must be a non-negative integer, got ${String(resultCode)}`);
    }
    let override: SimResolveOptions | undefined;
    if (options !== undefined) {
      const parsed = parseResolveOptions(options);
      if (!parsed.ok) throw new SimulatorError('invalid', parsed.message);
      override = parsed.value;
    }
    const record = this.records.get(checkoutRequestId);
    if (!record) throw new SimulatorError('not_found', `no push with CheckoutRequestID ${checkoutRequestId}`);
    if (record.push.state === 'answered') {
      throw new SimulatorError(
        'already_answered',
        `push ${checkoutRequestId} was already answered with ${record.push.resultCode}`,
      );
    }
    await this.answer(record, resultCode, override);
  }

  private trimPushes(): void {
    while (this.records.size > this.options.maxRecords) {
      const oldestId = this.records.keys().next().value;
      if (oldestId === undefined) break;
      this.customerTimers.cancel(this.records.get(oldestId)?.answerTimer);
      this.records.delete(oldestId);
    }
  }

  /**
   * The customer answers: the push becomes final, then the callback is delivered per its plan (or `override`).
   * Resolves once the callbacks that are not delayed have been delivered.
   */
  private async answer(record: PushRecord, resultCode: number, override?: SimResolveOptions): Promise<void> {
    this.customerTimers.cancel(record.answerTimer);
    record.answerTimer = undefined;
    const { push } = record;
    const answeredAt = new Date();
    push.state = 'answered';
    push.resultCode = resultCode;
    push.resultDesc = resultDescription(resultCode);
    if (resultCode === 0) {
      push.receipt = newReceiptNumber();
      this.results.recordPayment({
        receipt: push.receipt,
        shortcode: push.shortcode,
        partyB: push.partyB,
        transactionType: push.transactionType,
        phoneNumber: push.phoneNumber,
        amount: push.amount,
        initiatedAt: push.createdAt,
        completedAt: answeredAt,
      });
      // Its C2B twin, when switched on (daraja-more.md §4): independent of the STK callback's plan.
      void this.c2b.stkPaid({ ...push, receipt: push.receipt, answeredAt });
    }
    this.log(`push answered ${push.checkoutRequestId} ResultCode=${resultCode}`);

    const plan = override ? withOverride(record.plan, override) : record.plan;
    const id = push.checkoutRequestId;
    if (plan.copies === 0) {
      this.counters.callbacksDropped += 1;
      this.recordInjection({ kind: 'callback_dropped', source: plan.dropSource ?? 'random', checkoutRequestId: id });
      return;
    }
    if (plan.copies > 1) {
      this.counters.callbacksDuplicated += 1;
      this.recordInjection({
        kind: 'callback_duplicated',
        source: plan.duplicateSource ?? 'random',
        checkoutRequestId: id,
        copies: plan.copies,
      });
    }
    if (plan.delayMs > 0) {
      this.counters.callbacksDelayed += 1;
      this.recordInjection({
        kind: 'callback_delayed',
        source: plan.delaySource ?? 'random',
        checkoutRequestId: id,
        delayMs: plan.delayMs,
      });
    }
    const body = stkCallback(push, answeredAt);
    const generation = this.generation;
    const sendAll = async (): Promise<void> => {
      const deliveries: Promise<void>[] = [this.deliver(push, body, generation, 1)];
      for (let i = 1; i < plan.copies; i += 1) {
        const copy = i + 1;
        deliveries.push(
          plan.gapMs === 0
            ? this.deliver(push, body, generation, copy)
            : this.customerTimers
                .sleep(plan.gapMs * i)
                .then((fired) => (fired ? this.deliver(push, body, generation, copy) : undefined)),
        );
      }
      await Promise.all(deliveries);
    };
    if (plan.delayMs > 0) {
      this.customerTimers.schedule(plan.delayMs, () => void sendAll());
      return;
    }
    await sendAll();
  }

  // ---------------------------------------------------------------- callbacks

  private async deliver(push: SimPush, body: StkCallbackBody, generation: number, copy: number): Promise<void> {
    const at = new Date();
    const outcome = await this.sender.send(push.callbackUrl, body, { BusinessShortCode: push.shortcode });
    if (this.closed || generation !== this.generation) return;
    const delivery: SimCallbackDelivery = {
      checkoutRequestId: push.checkoutRequestId,
      url: push.callbackUrl,
      body,
      at,
      copy,
    };
    if (outcome.status !== undefined) delivery.status = outcome.status;
    if (outcome.error !== undefined) delivery.error = outcome.error;
    this.deliveries.push(delivery);
    if (this.deliveries.length > this.options.maxRecords) {
      this.deliveries.splice(0, this.deliveries.length - this.options.maxRecords);
    }
    this.counters.callbacksSent += 1;
    this.log(
      `callback ${push.checkoutRequestId}${copy > 1 ? ` (copy ${copy})` : ''} -> ${redactUrl(push.callbackUrl)} ${outcome.status !== undefined ? `HTTP ${outcome.status}` : `failed: ${outcome.error ?? 'unknown error'}`}`,
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
          reject(
            new Error(
              `timed out after ${limit} ms waiting for ${count} callback(s) for ${checkoutRequestId} (got ${got})`,
            ),
          );
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

  /** Queues a Reversal / Transaction Status control; SimulatorError 'invalid' on a bad value. */
  forceResult(control: SimResultControl): void {
    try {
      this.results.addControl(control);
    } catch (err: unknown) {
      if (err instanceof RangeError) throw new SimulatorError('invalid', `invalid result control: ${err.message}`);
      throw err;
    }
  }

  // ---------------------------------------------------------------- lifecycle

  reset(): void {
    this.generation += 1;
    this.customerTimers.cancelAll();
    this.heldConnections.cancelAll();
    this.records.clear();
    this.deliveries = [];
    this.queryLog = [];
    this.behaviourState = { ...this.options.behaviour };
    this.counters = zeroStats();
    this.oauthByKey = new Map();
    this.injectionLog = [];
    this.injectionSeq = 0;
    this.pushRequestLog = [];
    this.tokens.clear();
    this.results.reset();
    this.qrPull.reset();
    this.c2b.reset();
    this.log(
      'reset: pushes, queries, callbacks, stats, injections, tokens, reversals and status queries cleared; faults and behaviour back to the start-up options; apps and accounts kept',
    );
    this.applyFaults(this.options.faults);
  }

  shutdown(): void {
    if (this.closed) return;
    this.closed = true;
    this.generation += 1;
    this.customerTimers.cancelAll();
    this.requestTimers.cancelAll();
    this.heldConnections.cancelAll();
    this.sender.abortAll();
    this.results.shutdown();
    this.c2b.shutdown();
    for (const waiter of this.waiters) {
      clearTimeout(waiter.timer);
      waiter.reject(new SimulatorError('closed', 'the simulator was closed'));
    }
    this.waiters.clear();
  }
}

/** resolve() options layered over the push's callback plan. */
function withOverride(plan: CallbackPlan, o: SimResolveOptions): CallbackPlan {
  const out: CallbackPlan = { ...plan };
  if (o.callbackCopies !== undefined) {
    out.copies = o.callbackCopies;
    out.dropSource = o.callbackCopies === 0 ? 'resolve' : undefined;
    out.duplicateSource = o.callbackCopies > 1 ? 'resolve' : undefined;
  }
  if (o.duplicateGapMs !== undefined) out.gapMs = o.duplicateGapMs;
  if (o.callbackDelayMs !== undefined) {
    out.delayMs = o.callbackDelayMs;
    out.delaySource = o.callbackDelayMs > 0 ? 'resolve' : undefined;
  }
  return out;
}
