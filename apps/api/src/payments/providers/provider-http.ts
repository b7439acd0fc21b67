import { Logger } from '@nestjs/common';
import { isPlainObject } from '../../common/json';
import { classifyNetworkError, networkErrorCode } from '../../common/net-errors';
import { maskPhonesIn } from '../../common/mask';
import axios, { AxiosInstance, AxiosResponse } from 'axios';
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import type { ProviderName } from './payment-provider';
import { ProviderError, redact } from './provider-errors';
import { operationOf, providerErrors, providerRequestDuration, tokenRefreshes } from '../../metrics/metrics';

export const USER_AGENT = 'SmartDuka-Payments/1.0 (+node)';

export interface HttpRequestSpec {
  method: 'GET' | 'POST';
  /** Path (and query) appended to the base URL, e.g. /v3/payments. */
  path: string;
  headers?: Record<string, string>;
  body?: unknown;
  /** What we were doing, for messages: "payment request", "status check". */
  what: string;
  /** Overrides the base URL given to the constructor (providers with one base URL per account: M-Pesa). */
  baseUrl?: string;
  /** Secrets of this call only (an account's credentials, the token sent), scrubbed like the constructor's. */
  secrets?: ReadonlyArray<string | undefined>;
  /** Extra, already log-safe context for the log line (e.g. a masked phone number). */
  logContext?: string;
  /** An OAuth token request (counted in smartduka_provider_token_refreshes_total). */
  tokenRequest?: boolean;
  /**
   * The call only asks (an OAuth token, a status query) and changes nothing at the provider: when it
   * fails on a kept-alive socket before any answer (the provider closed it while idle), it is sent
   * once more on a fresh connection. Never set for a push, a reversal or a refund.
   */
  readOnly?: boolean;
}

/** The error fields a provider put into an answer (Daraja's {errorCode, errorMessage, requestId}). */
export interface ProviderEnvelope {
  code?: string;
  /** Redacted (secrets removed, whitespace collapsed, truncated): safe for an error, masked again for a log line. */
  message?: string;
  requestId?: string;
}

export interface HttpAnswer {
  status: number;
  /** Parsed JSON (object or array) when the body was JSON, else undefined. */
  json: unknown;
  /** The body as text (never logged). */
  text: string;
  retryAfterSeconds?: number;
  /** What `envelope` (constructor option) read from the JSON body; empty without that option. */
  envelope: ProviderEnvelope;
}

export interface ProviderHttpOptions {
  /** The axios instance to send with (tests, or an instance with its own agents); keepAliveMs is then ignored. */
  client?: AxiosInstance;
  /**
   * Keep a connection open this long after an answer for the next call (0 = a fresh connection per
   * call). Shorter than the provider's idle timeout (and Node closes it earlier still when the
   * provider's Keep-Alive header says so), so the provider rarely closes it first.
   */
  keepAliveMs?: number;
  /** Reads the provider's error fields from a parsed JSON body; they are added to the answer and its log line. */
  envelope?: (json: unknown) => ProviderEnvelope;
  /** From this HTTP status on an answer is logged as a warning (default 500: 4xx answers are routine for some providers). */
  warnFromStatus?: number;
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

function parseRetryAfter(v: unknown): number | undefined {
  const s = Array.isArray(v) ? v[0] : v;
  if (typeof s !== 'string' && typeof s !== 'number') return undefined;
  const n = Number(s);
  if (!Number.isFinite(n) || n <= 0) return undefined;
  return Math.min(Math.ceil(n), 3600);
}

/** Agents that never keep a connection: the second try of a read-only call (see ProviderHttp). */
const FRESH_CONNECTION = {
  httpAgent: new HttpAgent({ keepAlive: false }),
  httpsAgent: new HttpsAgent({ keepAlive: false }),
};

/**
 * A request that failed, before any answer, on a socket kept from an earlier call (Node's
 * `reusedSocket`) with a reset or broken pipe: the provider had closed the idle connection.
 */
export function failedOnKeptSocket(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false;
  const e = err as { response?: unknown; request?: { reusedSocket?: unknown } };
  if (e.response !== undefined || e.request?.reusedSocket !== true) return false;
  const code = networkErrorCode(err);
  return code === 'ECONNRESET' || code === 'EPIPE';
}

/**
 * One HTTP exchange with a provider, for every provider (M-Pesa, Flutterwave, Pesapal): timeout on
 * every call, no redirects, never throws on an HTTP status.
 *
 * Connections: with keepAliveMs a connection is kept open briefly for the next call, which saves a
 * TCP (and, against the real provider, TLS) handshake per call: the largest cost of a push after
 * the database's. "Refused" (never sent: not processed) stays distinguishable from "reset" (maybe
 * acted on): a refusal only happens on a new connection. What keep-alive adds is a kept socket that
 * the provider closed while idle just as we wrote to it: ECONNRESET after the request was written,
 * which for a push is outcome 'unknown' (settled by a status query, never by sending it again).
 * keepAliveMs below the provider's idle timeout makes that rare, and a read-only call (readOnly)
 * that meets it is sent once more on a fresh connection. Without keepAliveMs: a fresh connection
 * per call.
 * Network failures become ProviderErrors with the right outcome. Logs method, path, status,
 * duration and the provider's error code/message (redacted, phones masked) only — never headers,
 * query strings or bodies (credentials, tokens, phone numbers).
 */
export class ProviderHttp {
  private readonly http: AxiosInstance;
  private readonly baseUrl: string;
  private readonly readEnvelope?: (json: unknown) => ProviderEnvelope;
  private readonly warnFromStatus: number;

  constructor(
    private readonly provider: ProviderName,
    /** Human name for messages: "M-Pesa", "Flutterwave", "Pesapal". */
    private readonly label: string,
    baseUrl: string,
    private readonly timeoutMs: number,
    /** Current secrets to scrub from any provider text (keys, hashes, tokens). */
    private readonly secrets: () => ReadonlyArray<string | undefined>,
    private readonly logger: Logger,
    options: ProviderHttpOptions = {},
  ) {
    this.baseUrl = trimTrailingSlashes(baseUrl);
    const keepAliveMs = Math.max(0, Math.floor(options.keepAliveMs ?? 0));
    // `timeout` of a keep-alive agent is how long a free socket may stay idle before it is closed.
    const agentOptions = keepAliveMs > 0 ? { keepAlive: true, timeout: keepAliveMs } : { keepAlive: false };
    this.http =
      options.client ??
      axios.create({ httpAgent: new HttpAgent(agentOptions), httpsAgent: new HttpsAgent(agentOptions) });
    this.readEnvelope = options.envelope;
    this.warnFromStatus = options.warnFromStatus ?? 500;
  }

  /** `text` without the configured secrets (and `extra` ones), whitespace collapsed, truncated. */
  redact(text: string, extra: ReadonlyArray<string | undefined> = []): string {
    return redact(text, [...this.secrets(), ...extra]);
  }

  async send(spec: HttpRequestSpec): Promise<HttpAnswer> {
    const endpoint = spec.path.split('?')[0];
    const ctx = spec.logContext ? ` ${spec.logContext}` : '';
    const started = Date.now();
    let response: AxiosResponse<unknown>;
    try {
      try {
        response = await this.exchange(spec);
      } catch (err) {
        if (!spec.readOnly || !failedOnKeptSocket(err)) throw err;
        this.logger.log(
          `${spec.method} ${endpoint}: the kept-alive connection was closed by ${this.label}; asking again on a new one`,
        );
        response = await this.exchange(spec, FRESH_CONNECTION);
      }
    } catch (err) {
      const durationMs = Date.now() - started;
      const mapped = this.mapNetworkError(err, spec);
      this.observe(spec, durationMs, mapped.kind, networkErrorCode(err) ?? mapped.kind);
      // Only the code: the axios error object carries the request config (Authorization header).
      this.logger.warn(
        `${spec.method} ${endpoint} failed after ${durationMs}ms: ${networkErrorCode(err) ?? 'no code'} (${mapped.outcome})${ctx}`,
      );
      throw mapped;
    }
    return this.answer(spec, response, Date.now() - started, endpoint, ctx);
  }

  /** One request; `agents` replaces the instance's agents (a fresh connection). */
  private exchange(
    spec: HttpRequestSpec,
    agents?: { httpAgent: HttpAgent; httpsAgent: HttpsAgent },
  ): Promise<AxiosResponse<unknown>> {
    return this.http.request<unknown>({
      ...agents,
      url: `${spec.baseUrl !== undefined ? trimTrailingSlashes(spec.baseUrl) : this.baseUrl}${spec.path}`,
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
  }

  private answer(
    spec: HttpRequestSpec,
    response: AxiosResponse<unknown>,
    durationMs: number,
    endpoint: string,
    ctx: string,
  ): HttpAnswer {
    const text =
      typeof response.data === 'string'
        ? response.data
        : response.data === undefined || response.data === null
          ? ''
          : JSON.stringify(response.data);
    let json: unknown;
    const t = text.trim();
    if (t.startsWith('{') || t.startsWith('[')) {
      try {
        json = JSON.parse(t);
      } catch {
        json = undefined;
      }
    }
    const envelope: ProviderEnvelope = {};
    if (this.readEnvelope && json !== undefined) {
      const read = this.readEnvelope(json);
      envelope.code = read.code;
      envelope.message = read.message === undefined ? undefined : this.redact(read.message, spec.secrets);
      envelope.requestId = read.requestId;
    }
    const line =
      `${spec.method} ${endpoint} -> HTTP ${response.status} in ${durationMs}ms` +
      (envelope.code ? ` errorCode=${envelope.code}` : '') +
      (envelope.message ? ` errorMessage="${maskPhonesIn(envelope.message)}"` : '') +
      ctx;
    this.observe(
      spec,
      durationMs,
      `${Math.floor(response.status / 100)}xx`,
      response.status >= 400 || envelope.code ? (envelope.code ?? `http_${response.status}`) : undefined,
    );
    // 4xx answers are routine for some providers (e.g. Flutterwave's 400 "No transaction was found" for a link not paid yet): info, not warn.
    if (response.status < this.warnFromStatus) this.logger.log(line);
    else this.logger.warn(line);
    return {
      status: response.status,
      json,
      text,
      retryAfterSeconds: parseRetryAfter((response.headers as Record<string, unknown> | undefined)?.['retry-after']),
      envelope,
    };
  }

  /** Metrics of one call: its duration and result, an error's code, a token request's result. */
  private observe(spec: HttpRequestSpec, durationMs: number, result: string, errorCode: string | undefined): void {
    const operation = operationOf(spec.path);
    providerRequestDuration.observe({ provider: this.provider, operation, result }, durationMs / 1000);
    if (errorCode) providerErrors.inc({ provider: this.provider, operation, code: errorCode.slice(0, 40) });
    if (spec.tokenRequest)
      tokenRefreshes.inc({
        provider: this.provider,
        result: result === '2xx' && !errorCode ? 'ok' : (errorCode ?? result),
      });
  }

  private mapNetworkError(err: unknown, spec: HttpRequestSpec): ProviderError {
    const { failure, code } = classifyNetworkError(err);
    const what = spec.what;
    if (failure === 'unreachable') {
      return new ProviderError(
        this.provider,
        'unreachable',
        `${this.label} could not be reached (${code}); the ${what} was not sent`,
      );
    }
    if (failure === 'timeout') {
      return new ProviderError(
        this.provider,
        'timeout',
        `No answer from ${this.label} within ${this.timeoutMs}ms to the ${what}; outcome unknown`,
      );
    }
    const message = err instanceof Error ? err.message : '';
    return new ProviderError(
      this.provider,
      'unavailable',
      `Connection to ${this.label} failed during the ${what} (${code ?? this.redact(message || 'unknown error', spec.secrets)}); outcome unknown`,
    );
  }
}
