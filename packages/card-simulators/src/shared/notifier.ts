/**
 * Server-to-merchant notifications (Flutterwave webhooks, Pesapal IPNs) with the faults tests need:
 * drop, delay (flushable), identical duplicates, and provider-style retries while unacknowledged.
 * Every attempt is recorded with the receiver's answer; secret headers (verif-hash) are never recorded.
 */
import { redactUrl } from './http';
import type { Sender, SendOutcome } from './sender';
import { TimerRegistry } from './timers';

export interface NotificationFaults {
  /** Send every notification this many extra times (identical copies, right after the original). */
  duplicates?: number;
  /** Hold every notification back this long before its first attempt (`flush()` releases it early). */
  delayMs?: number;
  /** Drop notifications: `true` = all of them, a number = the next N. */
  drop?: boolean | number;
}

export interface RetryPolicy {
  /** Retries after the first attempt while the receiver does not acknowledge (0 = none). */
  attempts: number;
  /** Gap between attempts in ms. */
  intervalMs: number;
}

export interface Notification {
  /** Business reference the notification is about (tx_ref / OrderTrackingId). */
  ref: string;
  /** e.g. `charge.completed`, `refund.completed`, `IPNCHANGE`. */
  event: string;
  method: 'GET' | 'POST';
  url: string;
  /** Sent as-is; may carry secrets (verif-hash), so they are never recorded or logged. */
  headers: Record<string, string>;
  /** JSON body of a POST. */
  body?: unknown;
}

export interface NotificationDelivery {
  /** Increasing sequence number over the simulator's lifetime. */
  seq: number;
  ref: string;
  event: string;
  method: 'GET' | 'POST';
  url: string;
  /** JSON body sent (POST) or null (GET: everything is in the URL). */
  body: unknown;
  /** 1 = first attempt, 2+ = retries. */
  attempt: number;
  /** True for an injected duplicate copy. */
  duplicate: boolean;
  at: Date;
  /** Receiver's HTTP status (absent when the request failed at network level). */
  status?: number;
  /** Receiver's body, trimmed to 2 KB. */
  response?: string;
  error?: string;
  /** Whether the provider would consider this delivery successful. */
  acknowledged: boolean;
  /** Why it was not acknowledged, or what was wrong with an accepted acknowledgement. */
  problems: string[];
}

export interface AckVerdict {
  acknowledged: boolean;
  problems: string[];
}

export interface NotifierStats {
  /** Attempts made (originals, duplicates and retries). */
  sent: number;
  dropped: number;
  /** Notifications waiting on a delay or a retry timer. */
  scheduled: number;
}

export interface NotifierConfig {
  /** 'webhook' or 'IPN', for log lines. */
  label: string;
  sender: Sender;
  log: (line: string) => void;
  maxRecords: number;
  now: () => Date;
  judge: (outcome: SendOutcome, notification: Notification) => AckVerdict;
  retry: () => RetryPolicy;
}

interface Waiter {
  ref: string;
  count: number;
  resolve: (deliveries: NotificationDelivery[]) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

export class NotifierClosedError extends Error {
  constructor() {
    super('the simulator is closed');
    this.name = 'NotifierClosedError';
  }
}

export function copyNotificationFaults(f: NotificationFaults | undefined): NotificationFaults | undefined {
  if (!f) return undefined;
  const out: NotificationFaults = {};
  if (f.duplicates !== undefined && f.duplicates > 0) out.duplicates = f.duplicates;
  if (f.delayMs !== undefined && f.delayMs > 0) out.delayMs = f.delayMs;
  if (f.drop === true || (typeof f.drop === 'number' && f.drop > 0)) out.drop = f.drop;
  return Object.keys(out).length > 0 ? out : undefined;
}

export class Notifier {
  private readonly timers = new TimerRegistry();
  private deliveries: NotificationDelivery[] = [];
  private readonly waiters = new Set<Waiter>();
  private faults: NotificationFaults = {};
  private sent = 0;
  private dropped = 0;
  private seq = 0;
  private generation = 0;
  private closed = false;

  constructor(private readonly config: NotifierConfig) {}

  setFaults(f: NotificationFaults | undefined): void {
    this.faults = copyNotificationFaults(f) ?? {};
  }

  currentFaults(): NotificationFaults | undefined {
    return copyNotificationFaults(this.faults);
  }

  stats(): NotifierStats {
    return { sent: this.sent, dropped: this.dropped, scheduled: this.timers.size };
  }

  /** Queues a notification per the current faults. Returns at once; use waitFor() to observe deliveries. */
  dispatch(notification: Notification): void {
    if (this.closed) return;
    if (this.takeDrop()) {
      this.dropped += 1;
      this.config.log(`${this.config.label} ${notification.event} ${notification.ref} dropped (fault)`);
      return;
    }
    const generation = this.generation;
    const copies = this.faults.duplicates ?? 0;
    const run = async (): Promise<void> => {
      await this.attempt(notification, 1, false, generation);
      for (let i = 0; i < copies && generation === this.generation; i += 1) {
        await this.attempt(notification, 1, true, generation);
      }
    };
    const delay = this.faults.delayMs ?? 0;
    if (delay > 0) {
      this.config.log(`${this.config.label} ${notification.event} ${notification.ref} delayed ${delay} ms (fault)`);
      this.timers.schedule(delay, () => void run());
    } else {
      void run();
    }
  }

  /** Fires every delayed notification and pending retry now. Returns how many timers fired. */
  flush(): number {
    return this.timers.fireAll();
  }

  list(): NotificationDelivery[] {
    return this.deliveries.map((d) => structuredClone(d));
  }

  listFor(ref: string): NotificationDelivery[] {
    return this.deliveries.filter((d) => d.ref === ref).map((d) => structuredClone(d));
  }

  waitFor(ref: string, count: number, timeoutMs: number): Promise<NotificationDelivery[]> {
    const existing = this.listFor(ref);
    if (existing.length >= count) return Promise.resolve(existing);
    if (this.closed) return Promise.reject(new NotifierClosedError());
    return new Promise<NotificationDelivery[]>((resolve, reject) => {
      const waiter: Waiter = {
        ref,
        count,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.waiters.delete(waiter);
          reject(
            new Error(
              `timed out after ${timeoutMs} ms waiting for ${count} ${this.config.label}(s) for ${ref} (got ${this.listFor(ref).length})`,
            ),
          );
        }, timeoutMs),
      };
      this.waiters.add(waiter);
    });
  }

  reset(): void {
    this.generation += 1;
    this.timers.cancelAll();
    this.deliveries = [];
    this.faults = {};
    this.sent = 0;
    this.dropped = 0;
  }

  shutdown(): void {
    if (this.closed) return;
    this.closed = true;
    this.generation += 1;
    this.timers.cancelAll();
    this.config.sender.abortAll();
    for (const waiter of this.waiters) {
      clearTimeout(waiter.timer);
      waiter.reject(new NotifierClosedError());
    }
    this.waiters.clear();
  }

  private takeDrop(): boolean {
    const drop = this.faults.drop;
    if (drop === true) return true;
    if (typeof drop === 'number' && drop > 0) {
      if (drop === 1) delete this.faults.drop;
      else this.faults.drop = drop - 1;
      return true;
    }
    return false;
  }

  private scheduleRetry(notification: Notification, attempt: number, generation: number): void {
    const policy = this.config.retry();
    if (attempt > policy.attempts + 1 || this.closed || generation !== this.generation) return;
    this.timers.schedule(policy.intervalMs, () => void this.attempt(notification, attempt, false, generation));
  }

  private async attempt(
    notification: Notification,
    attempt: number,
    duplicate: boolean,
    generation: number,
  ): Promise<NotificationDelivery | undefined> {
    if (this.closed || generation !== this.generation) return undefined;
    const at = this.config.now();
    const body = notification.method === 'POST' ? JSON.stringify(notification.body ?? null) : undefined;
    this.sent += 1;
    const outcome = await this.config.sender.send({
      method: notification.method,
      url: notification.url,
      headers: notification.headers,
      body,
    });
    if (this.closed || generation !== this.generation) return undefined;
    const verdict = this.config.judge(outcome, notification);
    this.seq += 1;
    const delivery: NotificationDelivery = {
      seq: this.seq,
      ref: notification.ref,
      event: notification.event,
      method: notification.method,
      url: notification.url,
      body: notification.method === 'POST' ? structuredClone(notification.body ?? null) : null,
      attempt,
      duplicate,
      at,
      acknowledged: verdict.acknowledged,
      problems: verdict.problems,
    };
    if (outcome.status !== undefined) delivery.status = outcome.status;
    if (outcome.response !== undefined) delivery.response = outcome.response;
    if (outcome.error !== undefined) delivery.error = outcome.error;
    this.deliveries.push(delivery);
    if (this.deliveries.length > this.config.maxRecords)
      this.deliveries.splice(0, this.deliveries.length - this.config.maxRecords);
    const result =
      outcome.status !== undefined ? `HTTP ${outcome.status}` : `failed: ${outcome.error ?? 'unknown error'}`;
    this.config.log(
      `${this.config.label} ${notification.event} ${notification.ref} ${notification.method} ${redactUrl(notification.url)} attempt ${attempt}${duplicate ? ' (duplicate)' : ''} -> ${result}${verdict.acknowledged ? '' : ' (not acknowledged)'}`,
    );
    // Retry bookkeeping happens before waiters are told, so stats().scheduled is already accurate for them.
    if (!verdict.acknowledged && !duplicate) this.scheduleRetry(notification, attempt + 1, generation);
    this.notifyWaiters(notification.ref);
    return delivery;
  }

  private notifyWaiters(ref: string): void {
    for (const waiter of [...this.waiters]) {
      if (waiter.ref !== ref) continue;
      const found = this.listFor(ref);
      if (found.length < waiter.count) continue;
      clearTimeout(waiter.timer);
      this.waiters.delete(waiter);
      waiter.resolve(found);
    }
  }
}
