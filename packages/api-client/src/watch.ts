import { createSmartDukaClient } from './client';
import { isFinalPaymentStatus, type Payment } from './payment';
import { compareEventIds, SseParser } from './sse';

/** Where the API is and how to authenticate: the same options `createSmartDukaClient` takes. */
export interface WatchPaymentTarget {
  /** API origin, e.g. http://localhost:3000 */
  baseUrl: string;
  /** POS JWT, sent as `Authorization: Bearer <token>` on the stream and on every poll. */
  token?: string | (() => string | undefined);
  /** A fetch to use instead of the global one. */
  fetch?: typeof globalThis.fetch;
}

export type WatchMode = 'stream' | 'polling';

export interface WatchError {
  /** true when watching stopped (the status cannot be read: 401, 403, 404, ...); false when it retries. */
  fatal: boolean;
  message: string;
  /** HTTP status, when the API answered */
  status?: number;
  /** the API's error `code`, when it answered with one */
  code?: string;
}

export interface WatchResult {
  /** final: the payment reached a final status; aborted: the signal fired; error: a fatal error */
  reason: 'final' | 'aborted' | 'error';
  /** the last state seen */
  payment?: Payment;
  error?: WatchError;
}

export interface WatchPaymentOptions {
  /** Every new state of the payment (the full payment, as GET /payments/:id answers it). */
  onUpdate(payment: Payment): void;
  /** Once, when watching stops. */
  onEnd?(result: WatchResult): void;
  /** A problem: transient (`fatal: false`, it retries) or the one that ended watching. */
  onError?(error: WatchError): void;
  /** When the watch switches from the event stream to polling (or starts). */
  onModeChange?(mode: WatchMode): void;
  signal?: AbortSignal;
  /** Polling interval in ms (default 2000). */
  pollIntervalMs?: number;
  /** Consecutive failed stream connections before falling back to polling (default 3). */
  maxStreamFailures?: number;
  /** Wait before reconnecting the stream when the server sent no `retry:` (default 2000 ms). */
  reconnectDelayMs?: number;
  /**
   * A stream that sends nothing (not even its 15 s `: ping`) for this long is taken as dead and
   * reconnected (default 45000 ms): a dropped Wi-Fi link can leave a connection that never closes.
   */
  streamIdleTimeoutMs?: number;
}

export interface PaymentWatch {
  /** Resolves when watching stops (never rejects). */
  done: Promise<WatchResult>;
  /** How the status is followed right now. */
  readonly mode: WatchMode;
}

class Aborted extends Error {}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(new Aborted());
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(new Aborted());
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Follows one payment until it reaches a final status: through the API's event stream
 * (`GET /payments/:id/events`, read with fetch so the bearer token can be sent; reconnects with
 * `Last-Event-ID`; de-duplicates by event id), falling back to polling `GET /payments/:id` when the
 * stream is not there (404/405, not `text/event-stream`) or keeps failing.
 */
export function watchPayment(
  target: WatchPaymentTarget,
  paymentId: string,
  options: WatchPaymentOptions,
): PaymentWatch {
  const fetchImpl = target.fetch ?? globalThis.fetch.bind(globalThis);
  const controller = new AbortController();
  const signal = controller.signal;
  const onOuterAbort = () => controller.abort();
  if (options.signal?.aborted) controller.abort();
  else options.signal?.addEventListener('abort', onOuterAbort, { once: true });

  const pollIntervalMs = options.pollIntervalMs ?? 2000;
  const maxStreamFailures = options.maxStreamFailures ?? 3;
  const base = target.baseUrl.replace(/\/+$/, '');
  const client = createSmartDukaClient({ baseUrl: base, token: target.token, fetch: fetchImpl });

  let mode: WatchMode = 'stream';
  let last: Payment | undefined;
  let lastJson: string | undefined;
  let lastEventId: string | undefined;

  const setMode = (m: WatchMode) => {
    mode = m;
    options.onModeChange?.(m);
  };
  const emit = (payment: Payment) => {
    const json = JSON.stringify(payment);
    last = payment;
    if (json === lastJson) return;
    lastJson = json;
    options.onUpdate(payment);
  };
  const isFinal = () => last !== undefined && isFinalPaymentStatus(last.status);
  const token = () => (typeof target.token === 'function' ? target.token() : target.token);

  /** One GET /payments/:id. Returns a fatal error, or undefined (emitted, or a transient problem reported). */
  async function pollOnce(): Promise<WatchError | undefined> {
    const res = await client
      .GET('/payments/{id}', { params: { path: { id: paymentId } }, signal })
      .catch((err: unknown) => {
        if (signal.aborted) throw new Aborted();
        options.onError?.({ fatal: false, message: `Cannot reach the API (${errorMessage(err)})` });
        return undefined;
      });
    if (!res) return undefined;
    if (res.data) {
      emit(res.data);
      return undefined;
    }
    const body = res.error as { code?: string; message?: string } | undefined;
    const error: WatchError = {
      fatal: res.response.status >= 400 && res.response.status < 500 && res.response.status !== 429,
      status: res.response.status,
      code: body?.code,
      message: body?.message ?? `HTTP ${res.response.status}`,
    };
    if (error.fatal) return error;
    options.onError?.(error);
    return undefined;
  }

  async function poll(): Promise<WatchResult> {
    for (;;) {
      const fatal = await pollOnce();
      if (fatal) return { reason: 'error', payment: last, error: fatal };
      if (isFinal()) return { reason: 'final', payment: last };
      await sleep(pollIntervalMs, signal);
    }
  }

  /** Reads one stream connection; true when the server said `end` (or the payment is final). */
  async function readStream(
    body: ReadableStream<Uint8Array>,
    parser: SseParser,
    connection: AbortController,
  ): Promise<boolean> {
    const reader = body.getReader();
    const decoder = new TextDecoder();
    let ended = false;
    const idleMs = options.streamIdleTimeoutMs ?? 45_000;
    let idle: ReturnType<typeof setTimeout> | undefined;
    const armIdle = () => {
      if (idle) clearTimeout(idle);
      idle = setTimeout(() => connection.abort(), idleMs);
    };
    try {
      for (;;) {
        armIdle();
        const { done, value } = await reader.read();
        const text = done ? decoder.decode() : decoder.decode(value, { stream: true });
        for (const event of [...parser.push(text), ...(done ? parser.end() : [])]) {
          if (event.type === 'payment') {
            if (event.id !== undefined && lastEventId !== undefined && compareEventIds(event.id, lastEventId) <= 0)
              continue; // a replayed event we already have (delivery is at-least-once)
            let payment: Payment;
            try {
              payment = JSON.parse(event.data) as Payment;
            } catch {
              continue;
            }
            if (event.id !== undefined) lastEventId = event.id;
            emit(payment);
          } else if (event.type === 'end') {
            ended = true;
          }
        }
        if (done || ended) break;
      }
    } finally {
      if (idle) clearTimeout(idle);
      reader.cancel().catch(() => undefined);
    }
    return ended || isFinal();
  }

  /** 'final', or 'fallback' when polling should take over. */
  async function stream(): Promise<'final' | 'fallback'> {
    const parser = new SseParser();
    let failures = 0;
    for (;;) {
      const headers: Record<string, string> = { Accept: 'text/event-stream' };
      const t = token();
      if (t) headers.Authorization = `Bearer ${t}`;
      if (lastEventId !== undefined) headers['Last-Event-ID'] = lastEventId;
      let gotEvent = false;
      // One connection: ended by the watch's signal, or by the idle timer.
      const connection = new AbortController();
      const onAbort = () => connection.abort();
      signal.addEventListener('abort', onAbort, { once: true });
      try {
        const res = await fetchImpl(`${base}/payments/${encodeURIComponent(paymentId)}/events`, {
          headers,
          signal: connection.signal,
          cache: 'no-store',
        });
        const type = res.headers.get('content-type') ?? '';
        if (res.ok && type.toLowerCase().startsWith('text/event-stream') && res.body) {
          const before = lastJson;
          const idBefore = lastEventId;
          if (await readStream(res.body, parser, connection)) return 'final';
          gotEvent = lastJson !== before || lastEventId !== idBefore;
        } else {
          await res.body?.cancel().catch(() => undefined);
          // Not there (an API without the stream), not a stream, or refused: polling says why, if anything.
          if (res.ok || res.status < 500) return 'fallback';
          options.onError?.({ fatal: false, status: res.status, message: `Event stream answered ${res.status}` });
        }
      } catch (err) {
        if (signal.aborted) throw new Aborted();
        const why = connection.signal.aborted ? 'silent too long' : errorMessage(err);
        options.onError?.({ fatal: false, message: `Event stream lost (${why})` });
      } finally {
        signal.removeEventListener('abort', onAbort);
      }
      failures = gotEvent ? 0 : failures + 1;
      if (failures >= maxStreamFailures) return 'fallback';
      await sleep(parser.retryMs ?? options.reconnectDelayMs ?? 2000, signal);
    }
  }

  async function run(): Promise<WatchResult> {
    try {
      setMode('stream');
      if ((await stream()) === 'final') {
        // The end event carries only the status: make sure the last state we show is the final one.
        if (!isFinal()) {
          const fatal = await pollOnce();
          if (fatal) return { reason: 'error', payment: last, error: fatal };
          if (!isFinal()) {
            setMode('polling');
            return await poll();
          }
        }
        return { reason: 'final', payment: last };
      }
      setMode('polling');
      return await poll();
    } catch (err) {
      if (err instanceof Aborted || signal.aborted) return { reason: 'aborted', payment: last };
      const error: WatchError = { fatal: true, message: errorMessage(err) };
      return { reason: 'error', payment: last, error };
    }
  }

  const done = run().then((result) => {
    options.signal?.removeEventListener('abort', onOuterAbort);
    controller.abort(); // releases any open connection
    if (result.error) options.onError?.(result.error);
    options.onEnd?.(result);
    return result;
  });
  return {
    done,
    get mode() {
      return mode;
    },
  };
}
