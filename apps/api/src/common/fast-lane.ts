import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { PinoLogger } from 'nestjs-pino';
import proxyAddr from 'proxy-addr';
import { httpRequestDuration } from '../metrics/metrics';
import { AppError } from './errors';
import { toErrorBody } from './http-exception.filter';
import { assignRequestId, safeError } from './logging';

/**
 * A route served in front of Express, for the few requests whose volume makes Express, Nest's
 * pipeline and pino-http cost more than the work itself (Daraja's callbacks: bench/README.md §1).
 *
 * A lane only takes a request it can serve exactly as the Express pipeline would: `accepts` looks
 * at the method, the URL and the headers only (nothing is read yet), and declines anything unusual
 * (another content type, a compressed or chunked body, a body over the limit, no Host header), which
 * then goes through Express untouched, with every check the pipeline has. What a lane does answer
 * carries what every answer carries: an X-Request-Id, the error shape {statusCode, code, message,
 * requestId}, the access log line and the request-duration metric.
 */
export interface FastLane {
  /** The route pattern, as the request-duration metric labels it. */
  readonly route: string;
  /** Decides from the request line and headers alone (the body is not read yet). */
  accepts(req: IncomingMessage): boolean;
  /** Answers the request: a JSON result (200 unless `status` says otherwise); a thrown error becomes the API's error shape. */
  serve(request: LaneRequest): Promise<LaneAnswer>;
}

export interface LaneRequest {
  req: IncomingMessage;
  /** the client's address as Express's `req.ip` says it (the same `trust proxy` rules) */
  ip: string;
  /** the parsed JSON body, and the bytes it was parsed from */
  body: unknown;
  rawBody: Buffer;
}

export interface LaneAnswer {
  status?: number;
  body: unknown;
}

/** The API's JSON body limit in bytes: express.json's in bootstrap, and what a lane reads. */
export const JSON_BODY_LIMIT_BYTES = 64 * 1024;

/**
 * Puts the lanes in front of the server's current request handler (Express). Call once, before
 * the server listens. `trust`: Express's compiled `trust proxy` rules (`app.get('trust proxy fn')`).
 */
export function installFastLanes(server: Server, lanes: FastLane[], trust: (addr: string, i: number) => boolean): void {
  if (lanes.length === 0) return;
  const handlers = server.listeners('request') as ((req: IncomingMessage, res: ServerResponse) => void)[];
  server.removeAllListeners('request');
  const express = (req: IncomingMessage, res: ServerResponse) => {
    for (const h of handlers) h.call(server, req, res);
  };
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const lane = lanes.find((l) => l.accepts(req));
    if (!lane) return express(req, res);
    void runLane(lane, req, res, trust);
  });
}

/**
 * A JSON body the lane can read as body-parser would: `application/json` in UTF-8, not
 * compressed, with a Content-Length within the limit (a chunked body is left to Express), on a
 * request with a Host header (HTTP/1.1 requires one; Express answers its absence).
 */
export function plainJsonBody(req: IncomingMessage): boolean {
  const h = req.headers;
  if (h.host === undefined || h['transfer-encoding'] !== undefined) return false;
  if (h['content-encoding'] !== undefined && h['content-encoding'] !== 'identity') return false;
  const length = h['content-length'];
  if (length === undefined || !/^\d{1,6}$/.test(length) || Number(length) > JSON_BODY_LIMIT_BYTES) return false;
  const type = h['content-type'];
  return type !== undefined && /^application\/json\s*(?:;\s*charset="?utf-8"?\s*)?$/i.test(type);
}

const MAX_JSON_DEPTH = 32;
const FORBIDDEN_JSON_KEYS = new Set(['__proto__', 'constructor']);

/** bootstrap's limitJsonDepth, for a body a lane parsed: the same 400 for the same body. */
export function jsonShapeProblem(body: unknown): AppError | undefined {
  const stack: [unknown, number][] = [[body, 1]];
  while (stack.length) {
    const [v, depth] = stack.pop()!;
    if (v === null || typeof v !== 'object') continue;
    if (depth > MAX_JSON_DEPTH)
      return new AppError('VALIDATION_FAILED', `Request body is nested more than ${MAX_JSON_DEPTH} levels deep`, 400);
    for (const [key, child] of Object.entries(v as object)) {
      if (FORBIDDEN_JSON_KEYS.has(key))
        return new AppError('VALIDATION_FAILED', `property ${key} should not exist`, 400);
      if (child !== null && typeof child === 'object') stack.push([child, depth + 1]);
    }
  }
  return undefined;
}

const invalidJson = () =>
  Object.assign(new Error('Request body is not valid JSON'), { status: 400, type: 'entity.parse.failed' });

/**
 * The body as express.json() (body-parser, strict) reads it: a UTF-8 byte order mark is dropped
 * (iconv-lite's decoder), an empty body is `{}`, and anything but an object or an array at the top
 * (`null`, `5`, `"x"`) is invalid JSON, so the lane gives the same 400 as Express for the same bytes.
 */
export function parseJsonBody(raw: Buffer): unknown {
  let text = raw.toString('utf8');
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  if (text.length === 0) return {};
  const first = /^[\x20\x09\x0a\x0d]*([^\x20\x09\x0a\x0d])/.exec(text)?.[1];
  if (first !== '{' && first !== '[') throw invalidJson();
  try {
    return JSON.parse(text);
  } catch {
    throw invalidJson();
  }
}

async function runLane(
  lane: FastLane,
  req: IncomingMessage,
  res: ServerResponse,
  trust: (addr: string, i: number) => boolean,
): Promise<void> {
  const started = process.hrtime.bigint();
  const requestId = assignRequestId(req, res);
  let status: number;
  let body: unknown;
  let failure: unknown;
  try {
    const raw = await readBody(req, Number(req.headers['content-length']));
    const parsed = parseJsonBody(raw);
    const shape = jsonShapeProblem(parsed);
    if (shape) throw shape;
    const answer = await lane.serve({ req, ip: proxyAddr(req, trust), body: parsed, rawBody: raw });
    status = answer.status ?? 200;
    body = answer.body;
  } catch (err) {
    // The client went away (the body never arrived): nobody to answer.
    if (res.destroyed) return;
    failure = err;
    const e = toErrorBody(err, requestId);
    status = e.statusCode;
    body = e;
    if (err instanceof AppError && err.headers) for (const [k, v] of Object.entries(err.headers)) res.setHeader(k, v);
  }
  if (res.headersSent || res.destroyed) return;
  const payload = JSON.stringify(body);
  res.statusCode = status;
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  res.setHeader('Content-Length', Buffer.byteLength(payload));
  res.end(payload);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  httpRequestDuration.observe({ method: req.method ?? 'POST', route: lane.route, status: String(status) }, seconds);
  accessLog(req, res, seconds * 1000, failure);
}

/** The line pino-http writes for every request, through the same logger (its serializers redact the URL). */
function accessLog(req: IncomingMessage, res: ServerResponse, responseTime: number, err: unknown): void {
  const log = PinoLogger.root;
  if (!log) return;
  const status = res.statusCode;
  const fields = { req, res, responseTime, ...(status >= 500 && err ? { err: safeError(err) } : {}) };
  if (status >= 500) log.error(fields, 'request errored');
  else if (status >= 400) log.warn(fields, 'request completed');
  else log.info(fields, 'request completed');
}

/** The body, exactly `length` bytes (the Content-Length); a client that sends more or less is cut off. */
function readBody(req: IncomingMessage, length: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let received = 0;
    const fail = (err: Error) => {
      cleanup();
      reject(err);
    };
    const onData = (chunk: Buffer) => {
      received += chunk.length;
      if (received > length) {
        req.destroy();
        fail(Object.assign(new Error('Request body is larger than its Content-Length'), { status: 400 }));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      cleanup();
      if (received !== length) {
        reject(Object.assign(new Error('Request body is shorter than its Content-Length'), { status: 400 }));
        return;
      }
      resolve(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, received));
    };
    const onAborted = () => fail(new Error('request aborted'));
    const cleanup = () => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', fail);
      req.off('close', onClose);
    };
    const onClose = () => {
      if (!req.complete) onAborted();
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', fail);
    req.on('close', onClose);
  });
}
