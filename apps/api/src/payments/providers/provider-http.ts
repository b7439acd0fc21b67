import { Logger } from '@nestjs/common';
import { isPlainObject } from '../../common/json';
import { TIMEOUT_NET_CODES, UNREACHABLE_NET_CODES } from '../../common/net-errors';
import axios, { AxiosInstance, AxiosResponse } from 'axios';
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import type { ProviderName } from './payment-provider';
import { ProviderError, redact } from './provider-errors';


export const USER_AGENT = 'SmartDuka-Payments/1.0 (+node)';

export interface HttpRequestSpec {
  method: 'GET' | 'POST';
  /** Path (and query) appended to the base URL, e.g. /v3/payments. */
  path: string;
  headers?: Record<string, string>;
  body?: unknown;
  /** What we were doing, for messages: "payment request", "status check". */
  what: string;
}

export interface HttpAnswer {
  status: number;
  /** Parsed JSON (object or array) when the body was JSON, else undefined. */
  json: unknown;
  /** The body as text (never logged). */
  text: string;
  retryAfterSeconds?: number;
}

export { isPlainObject }; // lives in common/json.ts; re-exported for the adapters that import it from here

/** A string (numbers are stringified); undefined for anything else or empty strings. */
export function str(v: unknown): string | undefined {
  if (typeof v === 'string') return v.length > 0 ? v : undefined;
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  return undefined;
}

export function trimTrailingSlashes(s: string): string {
  return s.replace(/\/+$/, '');
}

export function isHttpUrl(v: unknown, max = 2048): v is string {
  return typeof v === 'string' && v.length <= max && /^https?:\/\/[^\s/?#]+[^\s]*$/i.test(v);
}

function networkErrorCode(err: unknown): string | undefined {
  if (!isPlainObject(err) && !(err instanceof Error)) return undefined;
  const e = err as { code?: unknown; cause?: { code?: unknown; errors?: Array<{ code?: unknown }> } };
  for (const c of [e.code, e.cause?.code, e.cause?.errors?.[0]?.code]) if (typeof c === 'string' && c.length > 0) return c;
  return undefined;
}

function parseRetryAfter(v: unknown): number | undefined {
  const s = Array.isArray(v) ? v[0] : v;
  if (typeof s !== 'string' && typeof s !== 'number') return undefined;
  const n = Number(s);
  if (!Number.isFinite(n) || n <= 0) return undefined;
  return Math.min(Math.ceil(n), 3600);
}

/**
 * One HTTP exchange with a provider: timeout on every call, no keep-alive (so "refused" and
 * "reset after sending" stay distinguishable), no redirects, never throws on an HTTP status.
 * Network failures become ProviderErrors with the right outcome. Logs method, path, status and
 * duration only — never headers, query strings or bodies (credentials, tokens, phone numbers).
 */
export class ProviderHttp {
  private readonly http: AxiosInstance;
  private readonly baseUrl: string;

  constructor(
    private readonly provider: ProviderName,
    /** Human name for messages: "Flutterwave", "Pesapal". */
    private readonly label: string,
    baseUrl: string,
    private readonly timeoutMs: number,
    /** Current secrets to scrub from any provider text (keys, hashes, tokens). */
    private readonly secrets: () => ReadonlyArray<string | undefined>,
    private readonly logger: Logger,
  ) {
    this.baseUrl = trimTrailingSlashes(baseUrl);
    this.http = axios.create({
      httpAgent: new HttpAgent({ keepAlive: false }),
      httpsAgent: new HttpsAgent({ keepAlive: false }),
    });
  }

  redact(text: string): string {
    return redact(text, this.secrets());
  }

  async send(spec: HttpRequestSpec): Promise<HttpAnswer> {
    const endpoint = spec.path.split('?')[0];
    const started = Date.now();
    let response: AxiosResponse<unknown>;
    try {
      response = await this.http.request<unknown>({
        url: `${this.baseUrl}${spec.path}`,
        method: spec.method,
        headers: {
          Accept: 'application/json',
          'User-Agent': USER_AGENT,
          ...(spec.body !== undefined ? { 'Content-Type': 'application/json' } : {}),
          ...(spec.headers ?? {}),
        },
        data: spec.body === undefined ? undefined : JSON.stringify(spec.body),
        timeout: this.timeoutMs,
        validateStatus: () => true,
        responseType: 'text',
        transformResponse: [(data: unknown) => data],
        transitional: { clarifyTimeoutError: true, silentJSONParsing: true, forcedJSONParsing: false },
        maxRedirects: 0,
        maxContentLength: 1_000_000,
      });
    } catch (err) {
      const durationMs = Date.now() - started;
      const mapped = this.mapNetworkError(err, spec.what);
      // Only the code: the axios error object carries the request config (Authorization header).
      this.logger.warn(`${spec.method} ${endpoint} failed after ${durationMs}ms: ${networkErrorCode(err) ?? 'no code'} (${mapped.outcome})`);
      throw mapped;
    }
    const durationMs = Date.now() - started;
    const text = typeof response.data === 'string' ? response.data : response.data === undefined || response.data === null ? '' : JSON.stringify(response.data);
    let json: unknown;
    const t = text.trim();
    if (t.startsWith('{') || t.startsWith('[')) {
      try {
        json = JSON.parse(t);
      } catch {
        json = undefined;
      }
    }
    const line = `${spec.method} ${endpoint} -> HTTP ${response.status} in ${durationMs}ms`;
    // 4xx answers are routine (e.g. Flutterwave's 400 "No transaction was found" for a link not paid yet): info, not warn.
    if (response.status < 500) this.logger.log(line);
    else this.logger.warn(line);
    return {
      status: response.status,
      json,
      text,
      retryAfterSeconds: parseRetryAfter((response.headers as Record<string, unknown> | undefined)?.['retry-after']),
    };
  }

  private mapNetworkError(err: unknown, what: string): ProviderError {
    const code = networkErrorCode(err);
    const message = err instanceof Error ? err.message : '';
    if (code && UNREACHABLE_NET_CODES.has(code)) {
      return new ProviderError(this.provider, 'unreachable', `${this.label} could not be reached (${code}); the ${what} was not sent`);
    }
    if ((code && TIMEOUT_NET_CODES.has(code)) || /timeout/i.test(message)) {
      return new ProviderError(this.provider, 'timeout', `No answer from ${this.label} within ${this.timeoutMs}ms to the ${what}; outcome unknown`);
    }
    return new ProviderError(
      this.provider,
      'unavailable',
      `Connection to ${this.label} failed during the ${what} (${code ?? this.redact(message || 'unknown error')}); outcome unknown`,
    );
  }
}
