/** Small helpers for the node:http request/response plumbing. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { DarajaError } from './errors';
import { newRequestId } from './ids';

export const JSON_CONTENT_TYPE = 'application/json;charset=UTF-8';
export const MAX_BODY_BYTES = 64 * 1024;

export class BodyTooLargeError extends Error {
  constructor(readonly limit: number) {
    super(`request body larger than ${limit} bytes`);
    this.name = 'BodyTooLargeError';
  }
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  if (res.headersSent || res.destroyed) return;
  const payload = Buffer.from(JSON.stringify(body), 'utf8');
  res.writeHead(status, { 'Content-Type': JSON_CONTENT_TYPE, 'Content-Length': String(payload.length) });
  res.end(payload);
}

/** An empty-bodied answer, e.g. OAuth's 400 for wrong credentials. */
export function sendEmpty(res: ServerResponse, status: number, reason?: string): void {
  if (res.headersSent || res.destroyed) return;
  if (reason) res.statusMessage = reason;
  res.writeHead(status, { 'Content-Length': '0' });
  res.end();
}

export function sendDarajaError(res: ServerResponse, error: DarajaError): void {
  sendJson(res, error.status, {
    requestId: error.requestId ?? newRequestId(),
    errorCode: error.errorCode,
    errorMessage: error.errorMessage,
  });
}

/** Reads the whole body; rejects with BodyTooLargeError past `limit` bytes. */
export function readBody(req: IncomingMessage, limit: number = MAX_BODY_BYTES): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > limit) {
      req.resume();
      reject(new BodyTooLargeError(limit));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let failed = false;
    req.on('data', (chunk: Buffer) => {
      if (failed) return;
      size += chunk.length;
      if (size > limit) {
        failed = true;
        chunks.length = 0;
        reject(new BodyTooLargeError(limit));
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (!failed) resolve(Buffer.concat(chunks));
    });
    req.on('error', (err) => {
      if (!failed) {
        failed = true;
        reject(err);
      }
    });
  });
}

/** JSON object body, or undefined when the text is not a JSON object. */
export function parseJsonObject(raw: Buffer): Record<string, unknown> | undefined {
  let value: unknown;
  try {
    value = JSON.parse(raw.toString('utf8'));
  } catch {
    return undefined;
  }
  return isPlainObject(value) ? value : undefined;
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function isJsonContentType(header: string | undefined): boolean {
  if (!header) return false;
  const mediaType = header.split(';')[0]?.trim().toLowerCase();
  return mediaType === 'application/json';
}

/** 2547******78 — never log a full MSISDN. */
export function maskPhone(phone: string): string {
  if (phone.length < 7) return '*'.repeat(phone.length);
  return `${phone.slice(0, 4)}${'*'.repeat(phone.length - 6)}${phone.slice(-2)}`;
}

/** Origin only: callback paths may carry capability tokens, which are secrets. */
export function redactUrl(url: string): string {
  try {
    return `${new URL(url).origin}/…`;
  } catch {
    return '<invalid url>';
  }
}
