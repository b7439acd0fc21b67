import type { SimPullRegistration, SimPullTransaction, SimQrRequest } from './qr-pull';
/** Public types of the Daraja simulator. Wire formats follow /work/shared/reference/daraja.md. */
import type { C2bMsisdnForm, SimC2bOutcome, SimC2bPayment, SimC2bRegistration } from './c2b';

export interface SimulatorAccount {
  /** Lipa-na-M-Pesa shortcode (PayBill number or till store number). */
  shortcode: string;
  /** Passkey used in Password = base64(BusinessShortCode + passkey + Timestamp). */
  passkey: string;
  /** Till numbers that may appear as PartyB of a CustomerBuyGoodsOnline push. */
  tillNumbers?: string[];
  /** The API operator ("Initiator") of Reversal / Transaction Status calls; default 'testapi'. */
  initiatorName?: string;
  /** Its password (what the SecurityCredential encrypts); default 'Safaricom999!*!'. Never listed or logged. */
  initiatorPassword?: string;
  /** Org portal roles of the initiator; default both. Missing role → Result code 21. */
  initiatorRoles?: SimInitiatorRole[];
  /** A locked initiator credential → Result code 8006. Default false. */
  initiatorLocked?: boolean;
}

/** 'reversal' = "Org Reversals Initiator", 'status' = "Transaction Status query ORG API" (daraja.md §5.3). */
export type SimInitiatorRole = 'reversal' | 'status';

/**
 * A Daraja app (the consumer key/secret pair a developer gets on the portal). At go-live an app is authorised for
 * its shortcodes: a token of this app may only push/query those BusinessShortCodes (anything else is answered
 * HTTP 500 `500.001.1001` "Merchant does not exist", daraja.md §2.3). No shortcodes (or an empty list) = any.
 */
export interface SimulatorApp {
  consumerKey: string;
  consumerSecret: string;
  shortcodes?: string[];
}

/** An app as the simulator reports it: never its secret. `shortcodes` empty = may use any shortcode. */
export interface SimAppInfo {
  consumerKey: string;
  shortcodes: string[];
}

/** An account as the simulator reports it: never its passkey. */
export interface SimAccountInfo {
  shortcode: string;
  tillNumbers: string[];
}

/** 'created' = new; 'unchanged' = the same values were already registered (registration is idempotent). */
export type SimRegistrationOutcome = 'created' | 'unchanged';

export interface SimRegistration<T> {
  outcome: SimRegistrationOutcome;
  value: T;
}

export interface SimulatorOptions {
  /** default 0 (random); CLI default 4010 (env SIM_PORT) */
  port?: number;
  /** default '127.0.0.1' */
  host?: string;
  /** default 'smartduka-sim-key' */
  consumerKey?: string;
  /** default 'smartduka-sim-secret' */
  consumerSecret?: string;
  /**
   * More Daraja apps, besides the one of `consumerKey`/`consumerSecret` (which is always there, may use any shortcode,
   * unless an entry here has the same consumerKey: then that entry defines it). More can be added while running
   * (registerApp(), POST /__sim/apps).
   */
  apps?: SimulatorApp[];
  /** default: the public sandbox account 174379 with till 174380 */
  accounts?: SimulatorAccount[];
  /** default 3599, sent as the STRING "3599" */
  tokenTtlSeconds?: number;
  /** default true: a new OAuth token for a consumer key invalidates the previous one (Daraja 3.0 FAQ) */
  invalidatePreviousToken?: boolean;
  /** default 2000: time the "customer" takes to answer */
  callbackDelayMs?: number;
  /** default: callbackDelayMs. Time before a Reversal / Transaction Status Result is POSTed. CLI: SIM_RESULT_DELAY_MS. */
  resultDelayMs?: number;
  /**
   * default null: no window. Timestamp must be a real `yyyyMMddHHmmss` date and the Password must match it,
   * but it may be any distance from Nairobi now (public clients send UTC; no primary source shows Daraja
   * refusing that, daraja.md §2.2). A number = reject a Timestamp more than that many seconds from Nairobi now.
   * CLI: --timestamp-tolerance-seconds / SIM_TIMESTAMP_TOLERANCE_SECONDS.
   */
  timestampToleranceSeconds?: number | null;
  /**
   * default 'http500': how STK query answers a push the customer has not answered yet. 'http500' = HTTP 500
   * `500.001.1001` "The transaction is being processed" (the documented/2018 form); 'result4999' = HTTP 200
   * `{"ResultCode":"4999","ResultDesc":"The transaction is still under processing"}` (the 2026 sandbox).
   * CLI: --pending-query-form / SIM_PENDING_QUERY_FORM. A scenario (magic number) may fix it per push.
   */
  pendingQueryForm?: PendingQueryForm;
  /** default: no logging. Secrets are never logged; phones are masked 2547******78. */
  log?: (line: string) => void;
  /** default 10000: how many pushes, queries, callback deliveries, injections and push requests are kept (oldest dropped first). */
  maxRecords?: number;
  /** Faults active from the start (e.g. a chaos run); reset() restores them. Validated like setFaults(). */
  faults?: SimFaults;
}

export type SimPushState = 'awaiting_customer' | 'answered';

/** How STK query says "the customer has not answered yet" (see SimulatorOptions.pendingQueryForm). */
export type PendingQueryForm = 'http500' | 'result4999';

/** Behaviour that can be changed while the simulator runs (setBehaviour(), POST /__sim/behaviour); reset() restores the start-up options. */
export interface SimBehaviour {
  timestampToleranceSeconds: number | null;
  pendingQueryForm: PendingQueryForm;
}

export interface SimPush {
  checkoutRequestId: string;
  merchantRequestId: string;
  /** consumer key of the app whose token made the push (never the secret) */
  consumerKey: string;
  shortcode: string;
  transactionType: string;
  partyB: string;
  phoneNumber: string;
  amount: number;
  accountReference: string;
  transactionDesc: string;
  callbackUrl: string;
  /** Timestamp exactly as the client sent it */
  timestamp: string;
  /** Timestamp read as Nairobi wall-clock time, minus the simulator's clock, in whole seconds (a UTC Timestamp ≈ -10800) */
  timestampSkewSeconds: number;
  createdAt: Date;
  scenario: string;
  /** set when the push's scenario fixes the pending STK query form (otherwise the current behaviour decides) */
  pendingQueryForm?: PendingQueryForm;
  state: SimPushState;
  resultCode?: number;
  resultDesc?: string;
  receipt?: string;
  /** Faults the simulator injected into this push, in the order they happened (absent when none). */
  injected?: SimInjectionKind[];
}

/** One STK query that passed validation, as the simulator answered it. */
export interface SimQuery {
  checkoutRequestId: string;
  /** consumer key of the app whose token made the query */
  consumerKey: string;
  shortcode: string;
  /** Timestamp exactly as the client sent it */
  timestamp: string;
  /** as SimPush.timestampSkewSeconds */
  timestampSkewSeconds: number;
  at: Date;
  answer: 'final' | 'pending' | 'not_found';
  /** the form of a 'pending' answer */
  pendingForm?: PendingQueryForm;
  /** the ResultCode of a 'final' answer */
  resultCode?: number;
}

export interface SimCallbackDelivery {
  checkoutRequestId: string;
  url: string;
  body: unknown;
  /** HTTP status answered by the receiver (absent when the delivery failed at network level). */
  status?: number;
  /** Network error / timeout text (absent when the receiver answered). */
  error?: string;
  /** When the delivery was started. */
  at: Date;
  /** 1 for the first POST of this callback, 2+ for duplicates. */
  copy: number;
}

/** A canned gateway error for the next `count` calls of an endpoint. */
export interface SimFaultError {
  count: number;
  status: number;
  errorCode: string;
  errorMessage: string;
}

/**
 * Callback faults, decided when the push is accepted (one seeded draw for drop/duplicate, one for delay).
 * The push itself is unaffected: it is answered on time and STK query reports the true result.
 */
export interface SimCallbackFaults {
  /** share (0..1) of callbacks never POSTed */
  dropRate?: number;
  /** share (0..1) of callbacks POSTed `duplicateCopies` times; dropRate + duplicateRate ≤ 1 */
  duplicateRate?: number;
  /** total POSTs of a duplicated callback, 2..10 (default 2) */
  duplicateCopies?: number;
  /** gap between the copies in ms (default 100); 0 = all copies at once, concurrently, in no guaranteed order */
  duplicateGapMs?: number;
  /** share (0..1) of (not dropped) callbacks POSTed `delayMs` late */
  delayRate?: number;
  /** extra delay in ms (required when delayRate > 0), e.g. longer than the API's status grace period */
  delayMs?: number;
}

/**
 * Pushes whose HTTP answer never arrives: the connection is held `holdMs`, then dropped without a response.
 * processed = Daraja acted on it (push recorded, customer prompted, callback follows) and only the answer was lost;
 * unprocessed = nothing happened at Daraja's side (no push, no prompt, no callback).
 */
export interface SimPushTimeouts {
  processedRate?: number;
  unprocessedRate?: number;
  /** default 30000; set it above the client's timeout */
  holdMs?: number;
}

/** STK queries whose answer never arrives (held `holdMs`, default 30000, then dropped). */
export interface SimQueryTimeouts {
  rate?: number;
  holdMs?: number;
}

export interface SimFaults {
  /** every endpoint answers HTTP 503 with a Daraja-style error envelope */
  down?: boolean;
  /** added latency per endpoint in ms */
  latencyMs?: { oauth?: number; push?: number; query?: number };
  /** the next N push calls answer with this HTTP status+errorCode+errorMessage (e.g. 500, '500.003.02', 'System is busy...') */
  pushErrors?: SimFaultError;
  queryErrors?: SimFaultError;
  /** invalidate all currently issued tokens now (one-shot; not persisted) */
  invalidateTokens?: boolean;
  /** 32-bit unsigned seed for the random faults; same seed + same call order ⇒ same choices. Default: a random seed (reported by the state). */
  seed?: number;
  /** share (0..1) of authenticated pushes answered, unprocessed, with a generic 5xx (500 500.003.1001 or 503 503.001.01) */
  pushServerErrorRate?: number;
  /** share (0..1) of authenticated pushes answered, unprocessed, with 500 500.003.02 "Error Occurred: Spike Arrest Violation" */
  pushSpikeArrestRate?: number;
  pushTimeouts?: SimPushTimeouts;
  /** share (0..1) of authenticated queries answered with a generic 5xx */
  queryServerErrorRate?: number;
  /** share (0..1) of authenticated queries answered 500 500.003.02 spike arrest */
  querySpikeArrestRate?: number;
  queryTimeouts?: SimQueryTimeouts;
  callbacks?: SimCallbackFaults;
  /** drop every issued token after each N authenticated push/query calls (the Nth call itself still succeeds) */
  tokenInvalidateEveryCalls?: number;
}

/** Per-push callback overrides for resolve(); they win over the phone scenario and the random callback faults. */
export interface SimResolveOptions {
  /** 0 = drop the callback, 1 = send once, 2..10 = duplicates */
  callbackCopies?: number;
  /** send the (first) callback this many ms after the answer; resolve() then does not wait for it */
  callbackDelayMs?: number;
  /** gap between copies (default 100; 0 = concurrently) */
  duplicateGapMs?: number;
}

export type SimInjectionKind =
  | 'push_error'
  | 'push_spike_arrest'
  | 'push_timeout_processed'
  | 'push_timeout_unprocessed'
  | 'query_error'
  | 'query_spike_arrest'
  | 'query_timeout'
  | 'callback_dropped'
  | 'callback_duplicated'
  | 'callback_delayed'
  | 'tokens_invalidated';

/** What triggered an injection: a seeded draw, a canned pushErrors/queryErrors, a magic phone number, resolve() options, tokenInvalidateEveryCalls, or the one-shot invalidateTokens. */
export type SimInjectionSource = 'random' | 'canned' | 'phone' | 'resolve' | 'every_n_calls' | 'one_shot';

/** One injected fault, as recorded by the simulator (no phone numbers, no tokens). */
export interface SimInjection {
  /** 1, 2, 3… since the last reset */
  seq: number;
  at: Date;
  kind: SimInjectionKind;
  source: SimInjectionSource;
  checkoutRequestId?: string;
  /** AccountReference of the push request, when it carried one */
  accountReference?: string;
  /** HTTP status and errorCode of an injected error */
  status?: number;
  errorCode?: string;
  /** how long a timed-out call held the connection */
  holdMs?: number;
  /** total POSTs of a duplicated callback */
  copies?: number;
  /** extra delay of a delayed callback */
  delayMs?: number;
}

export interface SimStats {
  oauthRequests: number;
  pushRequests: number;
  queryRequests: number;
  /** callback POSTs made (duplicates included) */
  callbacksSent: number;
  /** pushes accepted, i.e. customer prompts sent (including pushes whose answer was lost) */
  promptsSent: number;
  /** push calls answered with an injected error other than spike arrest (random 5xx or canned pushErrors) */
  pushErrorsInjected: number;
  /** push calls answered 500 500.003.02 by injection (random or canned) */
  pushSpikeArrests: number;
  /** push calls whose answer never arrived (processed + unprocessed) */
  pushTimeouts: number;
  /** of pushTimeouts, those Daraja had acted on (push recorded, prompt sent) */
  pushTimeoutsProcessed: number;
  queryErrorsInjected: number;
  querySpikeArrests: number;
  queryTimeouts: number;
  /** answered pushes whose callback was not sent (random, resolve() option or the callback_lost phone) */
  callbacksDropped: number;
  /** answered pushes whose callback was sent more than once */
  callbacksDuplicated: number;
  /** answered pushes whose callback was held back */
  callbacksDelayed: number;
  /** times every issued token was dropped (invalidateTokens or tokenInvalidateEveryCalls) */
  tokensInvalidated: number;
}

/** Which push requests promptsFor() counts: those matching every given field. */
export interface SimPromptQuery {
  accountReference?: string;
  phoneNumber?: string | number;
}

export interface SimPromptCount {
  /** push requests received whose JSON body carried the AccountReference/PhoneNumber, whatever their outcome */
  pushRequests: number;
  /** of those, pushes Daraja accepted, i.e. prompts the customer saw (includes pushes whose answer was lost) */
  prompts: number;
  checkoutRequestIds: string[];
}

export interface DarajaSimulator {
  readonly url: string;
  /** C2B: a customer pays a till or paybill from their phone (resolves once the confirmations were delivered). */
  c2bPay(payment: SimC2bPayment): Promise<SimC2bOutcome>;
  c2bRegistrations(): SimC2bRegistration[];
  /** Puts back C2B URLs registered before this process started (Daraja keeps them; pnpm dev restarts the embedded simulator). */
  restoreC2bRegistration(
    registration: Pick<
      SimC2bRegistration,
      'shortcode' | 'version' | 'responseType' | 'confirmationUrl' | 'validationUrl'
    >,
  ): void;
  c2bPayments(): SimC2bOutcome[];
  /** External validation on/off for a shortcode (off by default, as on Daraja). */
  setC2bValidation(shortcode: string, enabled: boolean): void;
  /** Production-like one-time registerurl, and STK payments also reaching the confirmation URL (daraja-more.md §4). */
  setC2bSettings(settings: { oneTimeRegistration?: boolean; stkConfirmations?: C2bMsisdnForm | null }): void;
  readonly port: number;
  /** stops server AND cancels pending callback timers */
  close(): Promise<void>;
  stats(): SimStats;
  pushes(): SimPush[];
  getPush(checkoutRequestId: string): SimPush | undefined;
  callbacks(): SimCallbackDelivery[];
  /** STK queries that passed validation, oldest first */
  queries(): SimQuery[];
  /** the behaviour in force */
  behaviour(): SimBehaviour;
  /** changes the given behaviour fields; throws SimulatorError (kind 'invalid') on a bad value */
  setBehaviour(b: Partial<SimBehaviour>): void;
  /**
   * answer a push now with a result code instead of waiting (0 success, 1032 cancel, ...); sends the callback
   * unless the push's scenario / callback faults drop it, or as `options` say. Waits for the callbacks that are not delayed.
   */
  resolve(checkoutRequestId: string, resultCode: number, options?: SimResolveOptions): Promise<void>;
  /** replaces current faults; throws SimulatorError (kind 'invalid') on a bad value */
  setFaults(f: SimFaults): void;
  /** the faults in force (with the effective `seed` when random faults are configured) */
  faults(): SimFaults;
  /** every fault injected since the last reset, oldest first */
  injections(): SimInjection[];
  /** how many push requests / prompts carried this AccountReference and/or PhoneNumber */
  promptsFor(query: SimPromptQuery): SimPromptCount;
  waitForCallbacks(checkoutRequestId: string, count?: number, timeoutMs?: number): Promise<SimCallbackDelivery[]>;
  /**
   * adds a Daraja app while running; the same values again answer 'unchanged'; a known consumerKey with another
   * secret or shortcodes list throws SimulatorError kind 'conflict' (bad input: kind 'invalid')
   */
  registerApp(app: SimulatorApp): SimRegistration<SimAppInfo>;
  /** adds a Lipa-na-M-Pesa account while running; idempotent like registerApp(); another passkey/tills → 'conflict' */
  registerAccount(account: SimulatorAccount): SimRegistration<SimAccountInfo>;
  /** the apps (no secrets), start-up ones first */
  apps(): SimAppInfo[];
  /** the accounts (no passkeys), start-up ones first */
  accounts(): SimAccountInfo[];
  /** OAuth calls since the last reset by the consumer key they named (only keys of known apps; wrong secrets count) */
  oauthCalls(): Record<string, number>;
  /** Reversal requests (validated or not, once the body was JSON), oldest first */
  reversals(): SimResultRequest[];
  /** Transaction Status requests, oldest first */
  statusQueries(): SimResultRequest[];
  /** Result / QueueTimeOutURL POSTs made, oldest first */
  results(): SimResultDelivery[];
  /** waits for `count` POSTs (default 1) for a ConversationID or OriginatorConversationID */
  waitForResults(conversationId: string, count?: number, timeoutMs?: number): Promise<SimResultDelivery[]>;
  /** queues a control for the next matching request; throws SimulatorError 'invalid' on a bad value */
  forceResult(control: SimResultControl): void;
  /**
   * clears pushes, queries, callbacks, stats (and oauthCalls), injections, tokens and held connections; faults and
   * behaviour go back to the start-up options. Registered apps and accounts stay (like a go-live on the portal).
   */
  reset(): void;
  /** Pull Transactions (qr-pull.ts): the shortcode's C2B transactions it serves, its page size, what was registered. */
  pullTransactions: {
    add(shortcode: string, transactions: SimPullTransaction[]): number;
    setPageSize(n: number): void;
    /** Queries of this page index (OffSetValue) or later answer 503 until reset or null. */
    failFromPage(page: number | null): void;
    registrations(): SimPullRegistration[];
    /** Puts back a registration made before this process started (Daraja keeps them; pnpm dev restarts the embedded simulator). */
    restoreRegistration(shortcode: string, callbackUrl: string): void;
  };
  /** Dynamic QR requests received, oldest first. */
  qrRequests(): SimQrRequest[];
}

// ---------------------------------------------------------------- Result API (Reversal, Transaction Status)

export type SimResultApi = 'reversal' | 'status';

/** Result codes as on the wire: numbers, except the "R0000xx" strings (daraja.md §6). */
export type SimResultCode = number | string;

/** 'result' = POST the Result to ResultURL (default); 'none' = never send it; 'queue_timeout' = only the QueueTimeOutURL notice. */
export type SimResultDeliveryMode = 'result' | 'none' | 'queue_timeout';

/**
 * A control for the next matching Reversal / Transaction Status request (forceResult(), POST /__sim/result-controls).
 * Controls are kept in order; each accepted request takes the first one that matches its api and TransactionID.
 */
export interface SimResultControl {
  /** only this API (default: either) */
  api?: SimResultApi;
  /** only requests naming this TransactionID (a receipt); default: the next request whatever it names */
  transactionId?: string;
  /** force this non-zero outcome (e.g. 1, 11, 21, 2001, 2006, 2028, 8006, 'R000001', 'R000002'); nothing changes */
  resultCode?: SimResultCode;
  delivery?: SimResultDeliveryMode;
  /** queue_timeout only: whether the request was still carried out (default false: nothing happened) */
  processed?: boolean;
  /** POSTs of the Result, 1..10 (default 1); the same body each time */
  copies?: number;
  /** gap between copies in ms (default 100); 0 = all at once, concurrently */
  gapMs?: number;
  /** ms before the Result (or notice) instead of resultDelayMs */
  delayMs?: number;
  /** how many requests this control applies to (default 1) */
  times?: number;
}

export type SimResultRequestState = 'rejected' | 'pending' | 'completed' | 'timed_out';

/** One Reversal / Transaction Status request as the simulator saw it (never the SecurityCredential or a password). */
export interface SimResultRequest {
  api: SimResultApi;
  at: Date;
  /** consumer key of the token used */
  consumerKey: string;
  /** the JSON body as sent, without SecurityCredential */
  request: Record<string, unknown>;
  /** whether the SecurityCredential decrypted with the simulator's key (not whether the password was right) */
  securityCredential: 'decrypted' | 'undecryptable' | 'missing';
  /** HTTP status of the synchronous answer, and its errorCode when it was an error */
  httpStatus: number;
  errorCode?: string;
  errorMessage?: string;
  originatorConversationId?: string;
  conversationId?: string;
  /** rejected = sync error; pending = accepted, no outcome yet; completed = outcome decided; timed_out = queue timeout, not processed */
  state: SimResultRequestState;
  resultCode?: SimResultCode;
  resultDesc?: string;
  /** the Result's TransactionID (for a successful reversal: its own new receipt) */
  transactionId?: string;
  delivery?: SimResultDeliveryMode;
  /** the outcome was forced by a control */
  forced?: boolean;
}

/** One POST of a Result (or QueueTimeOutURL notice) to the client. */
export interface SimResultDelivery {
  api: SimResultApi;
  originatorConversationId: string;
  conversationId: string;
  target: 'result' | 'queue_timeout';
  url: string;
  body: unknown;
  status?: number;
  error?: string;
  at: Date;
  /** 1, then 2+ for duplicates */
  copy: number;
}
