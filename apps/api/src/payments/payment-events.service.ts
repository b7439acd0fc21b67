import { Inject, Injectable, Logger, OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import type { AuthUser } from '../auth/auth.types';
import { AppError, NotFoundError } from '../common/errors';
import { safeError } from '../common/logging';
import type { AppConfig } from '../config/app-config';
import { APP_CONFIG } from '../config/config.module';
import type { ChangeFeed, DatabaseHandle } from '../database/database';
import { DB_HANDLE } from '../database/database.module';
import { issueTicket, ticketKey, verifyTicket, type TicketCheck } from './payment-event-tickets';
import {
  MIN_REPLAY_WINDOW_SECONDS,
  PaymentEventsRepository,
  REPLAY_LIMIT,
  type StatusEvent,
} from './payment-events.repository';
import { PaymentLifecycle } from './payment-lifecycle.service';
import { isTerminal } from './payment-status';

/**
 * Where a single-payment stream ends: a final status, or review (a person must look; that can
 * take hours, and the cashier has nothing to wait for: the POS says a manager must check it).
 * A later change of a reviewed payment still reaches the shop stream.
 */
function endsStream(status: string): boolean {
  return isTerminal(status) || status === 'review';
}
import { PaymentsRepository } from './payments.repository';

/** The channel the trigger of migration 0010 notifies: '<event id> <shop id> <payment id>'. */
export const PAYMENT_STATUS_CHANNEL = 'payment_status';

/** Where a stream's events go (the controller writes them as text/event-stream). */
export interface EventSink {
  /** `data` is the payment as GET /payments/:id answers it, as JSON (made once per event for all its streams). */
  event(id: number, data: string): void;
  /** The shop stream's first message: where it starts (for Last-Event-ID). */
  ready(lastEventId: number): void;
  /** A single-payment stream reached a final status; the sink closes. */
  end(status: string): void;
  ping(): void;
  /** Closed by the server (shutdown). */
  close(): void;
}

interface Subscriber {
  shopId: string;
  paymentId: string | null;
  sink: EventSink;
  /** Per payment, the last event id delivered: replays and live notifications overlap, ids per payment are ordered. */
  lastByPayment: Map<string, number>;
  /** The highest id delivered (the shop stream's resumption point after a lost feed). */
  lastId: number;
  /** Live events that arrived while the stream was reading its replay; delivered after it. */
  buffer: StatusEvent[] | null;
  /** The feed was lost while this stream was reading its replay: catch up once that is done. */
  catchUpPending: boolean;
  closed: boolean;
}

/** A shop stream remembers this many payments' last ids for de-duplication (then forgets the oldest). */
const MAX_TRACKED_PAYMENTS = 5000;
const PRUNE_INTERVAL_MS = 10 * 60_000;
const PRUNE_BATCH = 5000;
/** A pass deletes batches until one is short, at most this many (a day of a busy platform in a few passes). */
const PRUNE_MAX_BATCHES = 50;
const CATCH_UP_CONCURRENCY = 8;
const RETRY_FETCH_MS = 1000;

/**
 * Live payment status. Every instance LISTENs on payment_status; a NOTIFY names an event (written
 * by the payments trigger in the same transaction as the change, so a change on any instance, by
 * any path, is announced at its commit). The instance reads the announced events in one query per
 * batch, only when one of its streams wants them, and hands each to the streams of its payment
 * and of its shop, in the order the notifications came (commit order).
 *
 * A stream opening or resuming reads what it missed from payment_status_events (its replay) while
 * live events for it are buffered; the buffer is delivered after the replay, each event once
 * (per payment, ids only go up). When the listening connection is lost, every stream replays from
 * its last event once the feed is back.
 */
@Injectable()
export class PaymentEventsService implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger(PaymentEventsService.name);
  private readonly key: Buffer;
  private readonly byPayment = new Map<string, Set<Subscriber>>();
  private readonly byShop = new Map<string, Set<Subscriber>>();
  private readonly all = new Set<Subscriber>();
  private readonly perShopCount = new Map<string, number>();
  private pending: number[] = [];
  private fetching = false;
  private feed: ChangeFeed | undefined;
  private feedLost = false;
  private heartbeat: NodeJS.Timeout | undefined;
  private pruneTimer: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    private readonly repo: PaymentEventsRepository,
    private readonly payments: PaymentsRepository,
    private readonly lifecycle: PaymentLifecycle,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(DB_HANDLE) private readonly database: DatabaseHandle,
  ) {
    this.key = ticketKey(config.jwt.secret);
    // An event id is taken at insert and visible at commit: the rest of its transaction (a few
    // statements, each bounded by the statement timeout) is how much later it can commit.
    const statementSeconds = Math.ceil(config.databaseStatementTimeoutMs / 1000) || 60;
    this.replayWindowSeconds = Math.max(MIN_REPLAY_WINDOW_SECONDS, 2 * statementSeconds + 5);
  }

  /** See the constructor and PaymentEventsRepository.replayForShop. */
  private readonly replayWindowSeconds: number;

  async onModuleInit(): Promise<void> {
    this.feed = await this.database.listen(PAYMENT_STATUS_CHANNEL, {
      onNotify: (payload) => this.onNotify(payload),
      onLive: (live) => this.onLive(live),
    });
    this.heartbeat = setInterval(() => this.pingAll(), this.config.liveStatus.heartbeatMs);
    this.heartbeat.unref();
    this.pruneTimer = setInterval(() => void this.prune(), PRUNE_INTERVAL_MS);
    this.pruneTimer.unref();
  }

  /** Before the HTTP server closes: open streams would hold it open. */
  async beforeApplicationShutdown(): Promise<void> {
    this.stopped = true;
    for (const sub of [...this.all]) {
      this.remove(sub);
      sub.sink.close();
    }
  }

  async onApplicationShutdown(): Promise<void> {
    clearInterval(this.heartbeat);
    clearInterval(this.pruneTimer);
    clearTimeout(this.retryTimer);
    await this.feed?.close();
  }

  /** Open streams on this instance (health, benches). */
  get openStreams(): number {
    return this.all.size;
  }

  /** POST /payments/events/ticket: for the caller's shop, or one of its payments (404 otherwise). */
  async ticketFor(user: AuthUser, paymentId: string | null): Promise<{ ticket: string; expiresAt: Date }> {
    if (paymentId) await this.paymentFor(user, paymentId);
    return issueTicket(this.key, user, paymentId?.toLowerCase() ?? null);
  }

  checkTicket(ticket: string): TicketCheck {
    return verifyTicket(this.key, ticket);
  }

  /**
   * Opens a stream for one payment (paymentId) or for the shop. `lastEventId` resumes after that
   * event; without it a payment stream starts with the payment's current state and a shop stream
   * with a `ready` carrying the newest event id. Resolves once the stream is registered and its
   * replay delivered; `close()` (the client went away) unregisters it.
   */
  async open(
    user: AuthUser,
    target: { paymentId: string | null; lastEventId: number | null },
    sink: EventSink,
  ): Promise<{ close(): void }> {
    if (this.stopped)
      throw new AppError('SHUTTING_DOWN', 'This server is restarting: reconnect in a moment', 503, undefined, {
        'Retry-After': '1',
      });
    const limits = this.config.liveStatus;
    if (this.all.size >= limits.maxStreams)
      throw new AppError(
        'TOO_MANY_STREAMS',
        'This server has too many open live status streams: try again shortly, or check the status with GET /payments/:id',
        503,
        undefined,
        { 'Retry-After': '5' },
      );
    if ((this.perShopCount.get(user.shopId) ?? 0) >= limits.maxStreamsPerShop)
      throw new AppError(
        'TOO_MANY_STREAMS',
        `Your shop already has ${limits.maxStreamsPerShop} live status streams open on this server: close some screens, or check the status with GET /payments/:id`,
        429,
        undefined,
        { 'Retry-After': '5' },
      );
    // Ids as the NOTIFYs name them (Postgres prints a uuid in lower case; the route takes any case).
    const paymentId = target.paymentId?.toLowerCase() ?? null;
    const sub: Subscriber = {
      shopId: user.shopId,
      paymentId,
      sink,
      lastByPayment: new Map(),
      lastId: target.lastEventId ?? 0,
      buffer: [],
      catchUpPending: false,
      closed: false,
    };
    // Registered before the first await: the limits above count it, however many open at once.
    this.add(sub);
    const handle = { close: () => this.remove(sub) };
    try {
      if (paymentId) await this.paymentFor(user, paymentId);
      if (target.lastEventId !== null) await this.replay(sub, target.lastEventId);
      else await this.start(sub);
    } catch (err) {
      this.remove(sub);
      throw err;
    }
    this.drainBuffer(sub);
    if (sub.catchUpPending) this.queueCatchUp(sub);
    return handle;
  }

  private async paymentFor(user: AuthUser, paymentId: string) {
    const p = await this.payments.findForShop(user.shopId, paymentId);
    if (!p) throw new NotFoundError('Payment', { paymentId });
    return p;
  }

  /** A fresh stream: the payment's current state, or the shop's newest event id. */
  private async start(sub: Subscriber): Promise<void> {
    if (sub.paymentId) {
      const current = await this.currentState(sub.shopId, sub.paymentId);
      if (current) this.replayDeliver(sub, current);
      return;
    }
    const newest = await this.repo.newestIdForShop(sub.shopId);
    sub.lastId = Math.max(sub.lastId, newest);
    sub.sink.ready(newest);
  }

  /** The payment's newest event, or (none kept: older than the retention) its row as it is now, as event 0. */
  private async currentState(shopId: string, paymentId: string): Promise<StatusEvent | undefined> {
    const latest = await this.repo.latestForPayment(paymentId);
    if (latest) return latest;
    const p = await this.payments.findForShop(shopId, paymentId);
    return p ? { id: 0, shopId: p.shopId, paymentId: p.id, payment: p } : undefined;
  }

  /** What the stream missed after `afterId`, in order (the shop replay in pages). */
  private async replay(sub: Subscriber, afterId: number): Promise<void> {
    if (sub.paymentId) {
      for (const e of await this.repo.replayForPayment(sub.shopId, sub.paymentId, afterId)) this.replayDeliver(sub, e);
      // Nothing missed: a payment already final still ends its stream (its state again, then end).
      if (!sub.lastByPayment.size && !sub.closed) {
        const current = await this.currentState(sub.shopId, sub.paymentId);
        if (current && endsStream(current.payment.status)) this.replayDeliver(sub, current);
      }
      return;
    }
    let page = await this.repo.replayForShop(sub.shopId, afterId, this.replayWindowSeconds);
    for (;;) {
      for (const e of page) this.replayDeliver(sub, e);
      if (page.length < REPLAY_LIMIT || sub.closed) break;
      page = await this.repo.afterForShop(sub.shopId, page[page.length - 1].id);
    }
    if (!sub.closed && sub.lastId === afterId) sub.sink.ready(afterId);
  }

  private drainBuffer(sub: Subscriber): void {
    const buffered = sub.buffer ?? [];
    sub.buffer = null;
    for (const e of buffered) this.deliver(sub, e);
  }

  private deliver(sub: Subscriber, e: StatusEvent): void {
    if (sub.closed) return;
    if (sub.buffer) {
      sub.buffer.push(e);
      return;
    }
    const last = sub.lastByPayment.get(e.paymentId);
    if (last !== undefined && e.id <= last) return;
    sub.lastByPayment.delete(e.paymentId);
    sub.lastByPayment.set(e.paymentId, e.id);
    if (sub.lastByPayment.size > MAX_TRACKED_PAYMENTS) {
      const oldest = sub.lastByPayment.keys().next().value as string;
      sub.lastByPayment.delete(oldest);
    }
    sub.lastId = Math.max(sub.lastId, e.id);
    sub.sink.event(e.id, this.dataOf(e));
    if (sub.paymentId && endsStream(e.payment.status)) {
      this.remove(sub);
      sub.sink.end(e.payment.status);
    }
  }

  private readonly json = new WeakMap<StatusEvent, string>();

  /** The event's payment as the API shows it, as JSON: once per event, however many streams get it. */
  private dataOf(e: StatusEvent): string {
    let data = this.json.get(e);
    if (data === undefined) this.json.set(e, (data = JSON.stringify(this.lifecycle.toResponse(e.payment))));
    return data;
  }

  /** Replay-time delivery bypasses the buffer; live delivery goes through it. */
  private replayDeliver = (sub: Subscriber, e: StatusEvent): void => {
    const buffer = sub.buffer;
    sub.buffer = null;
    this.deliver(sub, e);
    if (!sub.closed) sub.buffer = buffer;
  };

  private add(sub: Subscriber): void {
    this.all.add(sub);
    this.perShopCount.set(sub.shopId, (this.perShopCount.get(sub.shopId) ?? 0) + 1);
    const [map, k] = sub.paymentId ? [this.byPayment, sub.paymentId] : [this.byShop, sub.shopId];
    let set = map.get(k);
    if (!set) map.set(k, (set = new Set()));
    set.add(sub);
  }

  private remove(sub: Subscriber): void {
    if (sub.closed) return;
    sub.closed = true;
    this.all.delete(sub);
    const n = (this.perShopCount.get(sub.shopId) ?? 1) - 1;
    if (n > 0) this.perShopCount.set(sub.shopId, n);
    else this.perShopCount.delete(sub.shopId);
    const [map, k] = sub.paymentId ? [this.byPayment, sub.paymentId] : [this.byShop, sub.shopId];
    const set = map.get(k);
    set?.delete(sub);
    if (set && !set.size) map.delete(k);
  }

  private onNotify(payload: string): void {
    const parts = payload.split(' ');
    if (parts.length !== 3) return;
    const [idText, shopId, paymentId] = parts;
    if (!this.byPayment.has(paymentId) && !this.byShop.has(shopId)) return;
    const id = Number(idText);
    if (!Number.isSafeInteger(id)) return;
    this.pending.push(id);
    if (!this.fetching) void this.fetchPending();
  }

  /** One query per batch of notifications, one batch at a time, so events keep commit order. */
  private async fetchPending(): Promise<void> {
    this.fetching = true;
    try {
      while (this.pending.length && !this.stopped) {
        const ids = this.pending;
        this.pending = [];
        let events: StatusEvent[];
        try {
          events = await this.repo.byIds(ids);
        } catch (err) {
          this.pending = ids.concat(this.pending);
          this.logger.warn({ err: safeError(err) }, 'reading payment status events failed; retrying in 1 s');
          clearTimeout(this.retryTimer);
          this.retryTimer = setTimeout(() => void this.fetchPending(), RETRY_FETCH_MS);
          this.retryTimer.unref();
          return;
        }
        // byIds orders by id; the notifications' own order is commit order: keep that.
        const byId = new Map(events.map((e) => [e.id, e]));
        for (const id of ids) {
          const e = byId.get(id);
          if (e) this.dispatch(e);
        }
      }
    } finally {
      this.fetching = false;
    }
  }

  private dispatch(e: StatusEvent): void {
    for (const sub of this.byPayment.get(e.paymentId) ?? []) this.deliver(sub, e);
    for (const sub of this.byShop.get(e.shopId) ?? []) this.deliver(sub, e);
  }

  private onLive(live: boolean): void {
    if (!live) {
      this.feedLost = true;
      this.logger.warn('payment status feed lost: open streams catch up from the database when it is back');
      return;
    }
    if (!this.feedLost) return;
    this.feedLost = false;
    for (const sub of this.all) this.queueCatchUp(sub);
  }

  private catchUps: Subscriber[] = [];
  private catchUpsRunning = 0;

  /** Catch-ups after a lost feed, CATCH_UP_CONCURRENCY at a time: thousands of streams must not take the whole pool at once. */
  private queueCatchUp(sub: Subscriber): void {
    if (sub.buffer) {
      // Still reading its opening replay, which may predate the loss: catch up after it.
      sub.catchUpPending = true;
      return;
    }
    this.catchUps.push(sub);
    while (this.catchUpsRunning < CATCH_UP_CONCURRENCY && this.catchUps.length) {
      const next = this.catchUps.shift()!;
      this.catchUpsRunning++;
      void this.catchUp(next).finally(() => {
        this.catchUpsRunning--;
        const more = this.catchUps.shift();
        if (more) this.queueCatchUp(more);
      });
    }
  }

  /** After a lost feed: replay from the stream's last event, buffering live events meanwhile. */
  private async catchUp(sub: Subscriber): Promise<void> {
    sub.catchUpPending = false;
    if (sub.closed || sub.buffer) return;
    sub.buffer = [];
    try {
      const events = sub.paymentId
        ? await this.repo.replayForPayment(sub.shopId, sub.paymentId, sub.lastByPayment.get(sub.paymentId) ?? 0)
        : await this.repo.replayForShop(sub.shopId, sub.lastId, this.replayWindowSeconds);
      for (const e of events) this.replayDeliver(sub, e);
    } catch (err) {
      this.logger.warn(
        { err: safeError(err) },
        'a live status stream could not catch up; closing it (the client resumes)',
      );
      this.remove(sub);
      sub.sink.close();
      return;
    }
    this.drainBuffer(sub);
  }

  private pingAll(): void {
    for (const sub of this.all) sub.sink.ping();
  }

  private async prune(): Promise<void> {
    try {
      for (let i = 0; i < PRUNE_MAX_BATCHES && !this.stopped; i++)
        if ((await this.repo.deleteOlderThan(this.config.liveStatus.retentionHours, PRUNE_BATCH)) < PRUNE_BATCH) break;
    } catch (err) {
      this.logger.warn({ err: safeError(err) }, 'pruning old payment status events failed; the next pass tries again');
    }
  }
}
