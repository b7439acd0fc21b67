import { prettyFactory } from 'pino-pretty';
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Params } from 'nestjs-pino';
import type { DestinationStream } from 'pino';
import type { Options } from 'pino-http';
import type { AppConfig } from '../config/app-config';
import { maskPhonesIn } from './mask';

const REQUEST_ID_RE = /^[A-Za-z0-9._-]{1,64}$/;

/**
 * A client's X-Request-Id we may put on every log line of its request: a short token of letters,
 * digits, `.`, `_` and `-`, with no run of 9 or more digits (a phone number in any form:
 * `254712345678_1`, `0712345678x`, a CheckoutRequestID) and no grouped phone number (`0712-345-678`).
 */
export function isSafeRequestId(id: string): boolean {
  return REQUEST_ID_RE.test(id) && !/\d{9}/.test(id) && maskPhonesIn(id) === id;
}

/**
 * Gives every request an id (X-Request-Id when safe, else a UUID), echoed in the response
 * header and in error bodies. Runs before the body parser so even a bad-JSON 400 carries it.
 * The id is on every log line of the request, so one holding a phone number is not taken: the
 * response's X-Request-Id is always the id the logs carry.
 */
export function assignRequestId(req: IncomingMessage, res: ServerResponse): string {
  const incoming = req.headers['x-request-id'];
  const id = typeof incoming === 'string' && isSafeRequestId(incoming) ? incoming : randomUUID();
  (req as { id?: unknown }).id = id;
  res.setHeader('X-Request-Id', id);
  return id;
}

/** Query parameters that carry credentials when a client puts them in a URL. */
const SECRET_PARAM_NAME =
  /^(?:access_?token|id_?token|refresh_?token|token|jwt|auth|authorization|password|passwd|pwd|passkey|secret|client_?secret|consumer_?secret|api_?key|apikey|key|signature|sig|ticket)$/i;
/** One query parameter: separator, name (as sent), value. */
const QUERY_PARAM = /([?&;])([^=&#;]*)=([^&#;]*)/g;

/** The name as the query parser reads it (it decodes percent-escapes: `%74icket` is `ticket`). */
function decodedParamName(raw: string): string {
  try {
    return decodeURIComponent(raw.replace(/\+/g, ' '));
  } catch {
    return raw;
  }
}
/** header.payload.signature, base64url: a JWT wherever it appears in a URL. */
const JWT_LIKE = /ey[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]*/g;
/**
 * A request URL as it may be logged: the callback capability token, credential-like query
 * parameters and JWTs are replaced by [redacted], phone numbers are masked (2547******78), and so
 * is the national number at the end of a CheckoutRequestID (`stk-status?checkoutRequestId=`).
 * URLs are client input: whatever a client puts there must not reach the logs as is.
 */
export function redactUrl(url: string | undefined): string | undefined {
  if (url === undefined) return undefined;
  return maskPhonesIn(
    url
      // M-Pesa's result URLs (…/refunds/<id>/result|timeout|status/<token>, …/payments/<id>/status/<token>),
      // then the STK callback (…/<paymentId>/<token>): everything after the id and kind is the capability token.
      .replace(
        /(\/payments\/callback\/)(?:((?:refunds|payments)\/[^/?#]+\/(?:result|timeout|status)\/)|([^/?#]+\/))[^?#]+/,
        (_m, base: string, result?: string, stk?: string) => `${base}${result ?? stk}[redacted]`,
      )
      // C2B capability URLs: …/payments/c2b/<accountId>/confirmation|validation/<token>.
      .replace(/(\/payments\/c2b\/[^/?#]+\/(?:confirmation|validation)\/)[^?#]+/, '$1[redacted]')
      .replace(QUERY_PARAM, (all, sep: string, name: string) =>
        SECRET_PARAM_NAME.test(decodedParamName(name)) ? `${sep}${name}=[redacted]` : all,
      )
      .replace(JWT_LIKE, '[redacted]'),
  );
}

/**
 * Structured JSON logs with a request id (taken from X-Request-Id when sane, else generated,
 * and echoed back). Authorization headers, cookies and callback tokens are redacted; services
 * mask phone numbers themselves and never log secrets.
 */
export function loggerParams(config: AppConfig, destination?: DestinationStream): Params {
  const pretty = config.logFormat === 'pretty' && !destination;
  const options: Options = {
    level: config.logLevel,
    // A person reads these: the request in the message itself (the JSON keeps req/res objects).
    ...(pretty
      ? {
          customSuccessMessage: (req: IncomingMessage, res: ServerResponse, ms: number) =>
            `${req.method} ${redactUrl(req.url)} → ${res.statusCode} in ${Math.round(ms)} ms`,
          customErrorMessage: (req: IncomingMessage, res: ServerResponse) =>
            `${req.method} ${redactUrl(req.url)} → ${res.statusCode} (failed)`,
        }
      : {}),
    // assignRequestId (the first middleware) already chose it; reuse it.
    genReqId: (req: IncomingMessage, res: ServerResponse) =>
      ((req as { id?: unknown }).id as string | undefined) ?? assignRequestId(req, res),
    redact: {
      paths: [
        'req.headers.authorization',
        'req.headers.cookie',
        'req.headers["idempotency-key"]',
        'res.headers["set-cookie"]',
      ],
      censor: '[redacted]',
    },
    // `err`: whatever reaches a log line as `err` (a raw Error, pino-http's request error) is
    // reduced by safeError; a value safeError already made is kept as it is (pino's own error
    // serializer would append every cause's message and stack to it again).
    serializers: {
      req: (req: {
        id?: unknown;
        method?: string;
        url?: string;
        headers?: Record<string, unknown>;
        remoteAddress?: string;
      }) => ({
        id: req.id,
        method: req.method,
        url: redactUrl(req.url),
        remoteAddress: req.remoteAddress,
        userAgent: req.headers?.['user-agent'],
      }),
      // pino-http hands this pino's own serialization of the value (the original is its `raw`).
      err: (serialized: unknown) => {
        const raw =
          serialized !== null && typeof serialized === 'object' && 'raw' in serialized
            ? (serialized as { raw: unknown }).raw
            : serialized;
        return raw instanceof Error ? safeError(raw) : raw;
      },
    },
    customLogLevel: (_req: IncomingMessage, res: ServerResponse, err?: Error) =>
      err || res.statusCode >= 500 ? 'error' : res.statusCode >= 400 ? 'warn' : 'info',
    autoLogging: {
      ignore: (req: IncomingMessage) =>
        req.url === '/health' || req.url === '/health/live' || req.url === '/health/ready',
    },
  };
  // Default destination: stdout (JSON, or pretty lines in development). Tests pass a file so a log scan can check what was written.
  const out = destination ?? (pretty ? prettyDestination(process.stdout) : undefined);
  return { pinoHttp: out ? [options, out] : options };
}

/** How deep safeError follows `cause` (an error chain longer than this is cut). */
const MAX_CAUSE_DEPTH = 3;
/** Stack frames kept per error. */
const MAX_STACK_FRAMES = 5;

/**
 * Text from an error as it may be logged: drizzle's `\nparams: …` (the query's parameters: raw
 * callback bodies, phone numbers) is cut off, phone numbers and CheckoutRequestID tails are masked.
 */
function scrubText(text: string, max = 1000): string {
  return maskPhonesIn(text.replace(/\r?\nparams:[\s\S]*$/, '')).slice(0, max);
}

/**
 * Postgres' `detail` names the values a constraint refused (`Key (receipt)=(…) already exists.`,
 * `Failing row contains (…)` with the whole row: a callback body). The columns stay, the values go.
 */
function scrubDetail(detail: string): string {
  return scrubText(
    detail
      .replace(/\)=\([\s\S]*\)(?=\s+(?:already exists|is not present|is still referenced|conflicts with))/, ')=(…)')
      .replace(/(Failing row contains )\([\s\S]*\)/, '$1(…)'),
    500,
  );
}

/**
 * The frames of a stack, scrubbed: never its first lines, which repeat the message (and, for a
 * drizzle query error, `params: …` with the raw callback body, phone numbers included).
 */
function scrubStack(stack: unknown): string | undefined {
  if (typeof stack !== 'string') return undefined;
  const frames = stack
    .split('\n')
    .filter((l) => /^\s+at /.test(l))
    .slice(0, MAX_STACK_FRAMES);
  return frames.length ? scrubText(frames.join('\n'), 2000) : undefined;
}

/** Postgres error fields that name schema objects, never values. */
const PG_NAME_FIELDS = ['constraint', 'table', 'column', 'schema', 'routine'] as const;

/**
 * An error reduced to what is safe to log. Every part is scrubbed, not just the message: drizzle
 * puts the query's parameters (callback bodies, phone numbers) into its message and so into the
 * stack's first lines, Postgres' `detail` repeats the refused row, and the cause chain carries the
 * same again. What stays: type, the scrubbed message, code (SQLSTATE), the constraint/table/column
 * names, a scrubbed detail, the stack frames, and the causes (scrubbed the same way).
 */
export function safeError(err: unknown, depth = 0): Record<string, unknown> {
  if (!(err instanceof Error)) {
    const text =
      typeof err === 'object' && err !== null && typeof (err as { message?: unknown }).message === 'string'
        ? (err as { message: string }).message
        : String(err);
    return { message: scrubText(text, 200) };
  }
  const e = err as Error & Record<string, unknown>;
  const out: Record<string, unknown> = { type: err.name, message: scrubText(err.message) };
  if (e.code !== undefined) out.code = typeof e.code === 'string' ? scrubText(e.code, 100) : e.code;
  for (const f of PG_NAME_FIELDS) if (typeof e[f] === 'string') out[f] = scrubText(e[f] as string, 200);
  if (typeof e.detail === 'string') out.detail = scrubDetail(e.detail);
  const cause = e.cause;
  if (cause !== undefined && cause !== null && depth < MAX_CAUSE_DEPTH) out.cause = safeError(cause, depth + 1);
  const stack = scrubStack(err.stack);
  if (stack) out.stack = stack;
  return out;
}

/** An error's message as it may be logged (see safeError). */
export function safeMessage(err: unknown): string {
  return err instanceof Error ? scrubText(err.message) : scrubText(String(err), 200);
}

/** Nest's start-up chatter: a line per module and per route (some 130 lines), hidden in pretty logs below warn. */
const BOOT_CONTEXTS = new Set(['InstanceLoader', 'RoutesResolver', 'RouterExplorer']);

/**
 * Development logs a person can read (pino-pretty): `09:51:02 INFO [Context] message`, one line,
 * requests as `GET /orders/ORD-1 → 200 in 3 ms`, Nest's boot lines left out. Written
 * synchronously, so the start-up banner comes after the boot lines, not among them.
 */
export function prettyDestination(out: { write(s: string): unknown; isTTY?: boolean }): DestinationStream {
  const format = prettyFactory({
    colorize: out.isTTY === true,
    translateTime: 'SYS:HH:MM:ss',
    singleLine: true,
    ignore: 'pid,hostname,context,req,res,responseTime,reqId',
    messageFormat: '{if context}[{context}] {end}{msg}',
  });
  return {
    write(line: string) {
      let obj: { level?: number; context?: string };
      try {
        obj = JSON.parse(line) as typeof obj;
      } catch {
        out.write(line);
        return;
      }
      if (obj.context && BOOT_CONTEXTS.has(obj.context) && (obj.level ?? 30) < 40) return;
      out.write(format(obj));
    },
  };
}
