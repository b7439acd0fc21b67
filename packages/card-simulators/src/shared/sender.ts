/** Outbound HTTP for webhooks / IPNs: one request, no redirects followed, receiver's status and (trimmed) body captured. */
import http from 'node:http';
import https from 'node:https';

export const MAX_CAPTURED_RESPONSE_CHARS = 2048;

export interface OutboundRequest {
  method: 'GET' | 'POST';
  url: string;
  headers: Record<string, string>;
  /** Raw body for POST (already serialised). */
  body?: string;
}

export interface SendOutcome {
  status?: number;
  /** Receiver's answer, trimmed to MAX_CAPTURED_RESPONSE_CHARS. */
  response?: string;
  /** Network error / timeout text (absent when the receiver answered). */
  error?: string;
}

export class Sender {
  private readonly inFlight = new Set<http.ClientRequest>();

  constructor(private readonly timeoutMs: number) {}

  /** Never rejects: failures are reported in the outcome. */
  send(request: OutboundRequest): Promise<SendOutcome> {
    return new Promise<SendOutcome>((resolve) => {
      let target: URL;
      try {
        target = new URL(request.url);
      } catch {
        resolve({ error: 'invalid URL' });
        return;
      }
      if (target.protocol !== 'http:' && target.protocol !== 'https:') {
        resolve({ error: `unsupported protocol ${target.protocol}` });
        return;
      }
      const payload = request.body === undefined ? undefined : Buffer.from(request.body, 'utf8');
      const headers: Record<string, string> = { ...request.headers };
      if (payload) headers['Content-Length'] = String(payload.length);
      const transport = target.protocol === 'https:' ? https : http;
      let settled = false;
      const finish = (outcome: SendOutcome): void => {
        if (settled) return;
        settled = true;
        this.inFlight.delete(req);
        resolve(outcome);
      };
      const req = transport.request(target, { method: request.method, agent: false, headers }, (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          if (size < MAX_CAPTURED_RESPONSE_CHARS * 4) chunks.push(chunk);
          size += chunk.length;
        });
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8').slice(0, MAX_CAPTURED_RESPONSE_CHARS);
          finish({ status: res.statusCode, response: text });
        });
        res.on('error', () => finish({ status: res.statusCode, response: '' }));
      });
      this.inFlight.add(req);
      req.setTimeout(this.timeoutMs, () => req.destroy(new Error(`timeout after ${this.timeoutMs} ms`)));
      req.on('error', (err: Error) => finish({ error: err.message || err.name }));
      req.on('close', () => finish({ error: 'connection closed before a response' }));
      req.end(payload);
    });
  }

  abortAll(): void {
    for (const req of this.inFlight) req.destroy(new Error('simulator closed'));
    this.inFlight.clear();
  }
}
