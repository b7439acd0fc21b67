import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Params } from 'nestjs-pino';
import type { DestinationStream } from 'pino';
import type { Options } from 'pino-http';
import type { AppConfig } from '../config/app-config';
import { maskPhone } from './mask';

const REQUEST_ID_RE = /^[A-Za-z0-9._-]{1,64}$/;

/**
 * Gives every request an id (X-Request-Id when sane, else a UUID), echoed in the response
 * header and in error bodies. Runs before the body parser so even a bad-JSON 400 carries it.
 * The id is on every log line of the request, so one holding a phone number is not taken.
 */
export function assignRequestId(req: IncomingMessage, res: ServerResponse): string {
  const incoming = req.headers['x-request-id'];
  const id = typeof incoming === 'string' && REQUEST_ID_RE.test(incoming) && !hasPhoneNumber(incoming) ? incoming : randomUUID();
  (req as { id?: unknown }).id = id;
  res.setHeader('X-Request-Id', id);
  return id;
}

/** Query parameters that carry credentials when a client puts them in a URL. */
const SECRET_QUERY_PARAM = /([?&;](?:access_?token|id_?token|refresh_?token|token|jwt|auth|authorization|password|passwd|pwd|passkey|secret|client_?secret|consumer_?secret|api_?key|apikey|key|signature|sig)=)[^&#;]*/gi;
/** header.payload.signature, base64url: a JWT wherever it appears in a URL. */
const JWT_LIKE = /ey[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]*/g;
/** A Kenyan mobile number anywhere in a URL (a phone typed into an order id, a ?phone= parameter). */
const PHONE_LIKE = /(?:(?<![0-9A-Za-z_.%])|(?<=%[0-9A-F]{2}))(?:(?:\+|%2B)?254|0)[17]\d{8}(?![0-9A-Za-z_])/gi;

function hasPhoneNumber(s: string): boolean {
  PHONE_LIKE.lastIndex = 0;
  return PHONE_LIKE.test(s);
}

/**
 * A request URL as it may be logged: the callback capability token, credential-like query
 * parameters and JWTs are replaced by [redacted], phone numbers are masked (2547******78).
 * URLs are client input: whatever a client puts there must not reach the logs as is.
 */
export function redactUrl(url: string | undefined): string | undefined {
  return url
    ?.replace(/(\/payments\/callback\/[^/?#]+\/)[^/?#]+/, '$1[redacted]')
    .replace(SECRET_QUERY_PARAM, '$1[redacted]')
    .replace(JWT_LIKE, '[redacted]')
    .replace(PHONE_LIKE, (phone) => maskPhone(phone.replace(/^%2B/i, '+')));
}

/**
 * Structured JSON logs with a request id (taken from X-Request-Id when sane, else generated,
 * and echoed back). Authorization headers, cookies and callback tokens are redacted; services
 * mask phone numbers themselves and never log secrets.
 */
export function loggerParams(config: AppConfig, destination?: DestinationStream): Params {
  const options: Options = {
    level: config.logLevel,
    // assignRequestId (the first middleware) already chose it; reuse it.
    genReqId: (req: IncomingMessage, res: ServerResponse) => ((req as { id?: unknown }).id as string | undefined) ?? assignRequestId(req, res),
    redact: {
      paths: ['req.headers.authorization', 'req.headers.cookie', 'req.headers["idempotency-key"]', 'res.headers["set-cookie"]'],
      censor: '[redacted]',
    },
    serializers: {
      req: (req: { id?: unknown; method?: string; url?: string; headers?: Record<string, unknown>; remoteAddress?: string }) => ({
        id: req.id,
        method: req.method,
        url: redactUrl(req.url),
        remoteAddress: req.remoteAddress,
        userAgent: req.headers?.['user-agent'],
      }),
    },
    customLogLevel: (_req: IncomingMessage, res: ServerResponse, err?: Error) => (err || res.statusCode >= 500 ? 'error' : res.statusCode >= 400 ? 'warn' : 'info'),
    autoLogging: { ignore: (req: IncomingMessage) => req.url === '/health' },
  };
  // Default destination: stdout. Tests pass a file so a log scan can check what was written.
  return { pinoHttp: destination ? [options, destination] : options };
}

/**
 * An error reduced to what is safe to log: drizzle puts the query's parameters (callback bodies,
 * phone numbers) into its message, so they are cut off; the SQLSTATE and the cause's message stay.
 */
export function safeError(err: unknown): Record<string, unknown> {
  if (!(err instanceof Error)) return { message: String(err).slice(0, 200) };
  const strip = (m: string) => m.replace(/\nparams:[\s\S]*$/, '').slice(0, 1000);
  const cause = (err as { cause?: unknown }).cause;
  return {
    type: err.name,
    message: strip(err.message),
    code: (err as { code?: unknown }).code,
    ...(cause instanceof Error ? { cause: { type: cause.name, message: strip(cause.message), code: (cause as { code?: unknown }).code } } : {}),
    stack: err.stack?.split('\n').slice(1, 6).join('\n'),
  };
}
