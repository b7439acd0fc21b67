/** Public types of the Daraja simulator. Wire formats follow /work/shared/reference/daraja.md. */

export interface SimulatorAccount {
  /** Lipa-na-M-Pesa shortcode (PayBill number or till store number). */
  shortcode: string;
  /** Passkey used in Password = base64(BusinessShortCode + passkey + Timestamp). */
  passkey: string;
  /** Till numbers that may appear as PartyB of a CustomerBuyGoodsOnline push. */
  tillNumbers?: string[];
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
  /** default: the public sandbox account 174379 with till 174380 */
  accounts?: SimulatorAccount[];
  /** default 3599, sent as the STRING "3599" */
  tokenTtlSeconds?: number;
  /** default true: a new OAuth token for a consumer key invalidates the previous one (Daraja 3.0 FAQ) */
  invalidatePreviousToken?: boolean;
  /** default 2000: time the "customer" takes to answer */
  callbackDelayMs?: number;
  /** default 300: how far Timestamp may be from Nairobi now */
  timestampToleranceSeconds?: number;
  /** default: no logging. Secrets are never logged; phones are masked 2547******78. */
  log?: (line: string) => void;
  /** default 10000: how many pushes and how many callback deliveries are kept (oldest dropped first). */
  maxRecords?: number;
}

export type SimPushState = 'awaiting_customer' | 'answered';

export interface SimPush {
  checkoutRequestId: string;
  merchantRequestId: string;
  shortcode: string;
  transactionType: string;
  partyB: string;
  phoneNumber: string;
  amount: number;
  accountReference: string;
  transactionDesc: string;
  callbackUrl: string;
  createdAt: Date;
  scenario: string;
  state: SimPushState;
  resultCode?: number;
  resultDesc?: string;
  receipt?: string;
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
}

/** A canned gateway error for the next `count` calls of an endpoint. */
export interface SimFaultError {
  count: number;
  status: number;
  errorCode: string;
  errorMessage: string;
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
}

export interface SimStats {
  oauthRequests: number;
  pushRequests: number;
  queryRequests: number;
  callbacksSent: number;
}

export interface DarajaSimulator {
  readonly url: string;
  readonly port: number;
  /** stops server AND cancels pending callback timers */
  close(): Promise<void>;
  stats(): SimStats;
  pushes(): SimPush[];
  getPush(checkoutRequestId: string): SimPush | undefined;
  callbacks(): SimCallbackDelivery[];
  /** answer a push now with a result code instead of waiting (0 success, 1032 cancel, ...); sends the callback unless the push's scenario drops it */
  resolve(checkoutRequestId: string, resultCode: number): Promise<void>;
  /** replaces current faults */
  setFaults(f: SimFaults): void;
  waitForCallbacks(checkoutRequestId: string, count?: number, timeoutMs?: number): Promise<SimCallbackDelivery[]>;
  /** clears pushes, callbacks, stats, faults, tokens */
  reset(): void;
}
