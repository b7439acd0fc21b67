/** Delivers callbacks like Daraja does: one POST, JSON, no signature, no auth, no retry. */
import http from 'node:http';
import https from 'node:https';

export const CALLBACK_CONTENT_TYPE = 'application/json;charset=UTF-8';
export const CALLBACK_TIMEOUT_MS = 10_000;

export interface DeliveryOutcome {
  status?: number;
  error?: string;
  /** the receiver's answer (first 16 KiB), e.g. a C2B validation's ResultCode */
  body?: string;
}

const MAX_ANSWER_BYTES = 16 * 1024;

export class CallbackSender {
  private readonly inFlight = new Set<http.ClientRequest>();

  constructor(private readonly timeoutMs: number = CALLBACK_TIMEOUT_MS) {}

  /** POSTs `body` to `url` verbatim. Never rejects: failures are reported in the outcome. */
  send(url: string, body: unknown, extraHeaders: Record<string, string> = {}): Promise<DeliveryOutcome> {
    return new Promise<DeliveryOutcome>((resolve) => {
      let target: URL;
      try {
        target = new URL(url);
      } catch {
        resolve({ error: 'invalid callback URL' });
        return;
      }
      const payload = Buffer.from(JSON.stringify(body), 'utf8');
      const transport = target.protocol === 'https:' ? https : http;
      let settled = false;
      const finish = (outcome: DeliveryOutcome): void => {
        if (settled) return;
        settled = true;
        this.inFlight.delete(req);
        resolve(outcome);
      };
      const req = transport.request(
        target,
        {
          method: 'POST',
          agent: false,
          headers: {
            ...extraHeaders,
            'Content-Type': CALLBACK_CONTENT_TYPE,
            'Content-Length': String(payload.length),
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (chunk: Buffer) => {
            if (size < MAX_ANSWER_BYTES) chunks.push(chunk);
            size += chunk.length;
          });
          res.on('end', () =>
            finish({ status: res.statusCode, body: Buffer.concat(chunks).toString('utf8').slice(0, MAX_ANSWER_BYTES) }),
          );
          res.on('error', () => finish({ status: res.statusCode }));
        },
      );
      this.inFlight.add(req);
      req.setTimeout(this.timeoutMs, () => {
        req.destroy(new Error(`timeout after ${this.timeoutMs} ms`));
      });
      req.on('error', (err: Error) => finish({ error: err.message || err.name }));
      req.on('close', () => finish({ error: 'connection closed before a response' }));
      req.end(payload);
    });
  }

  /** Aborts every delivery still waiting for a response. */
  abortAll(): void {
    for (const req of this.inFlight) req.destroy(new Error('simulator closed'));
    this.inFlight.clear();
  }
}
