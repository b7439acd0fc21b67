import { ApiHeader } from '@nestjs/swagger';
import type { Request, Response } from 'express';
import { ValidationFailedError } from './errors';

const IDEMPOTENCY_KEY_RE = /^[\x21-\x7e]{1,255}$/;

/** An HTTP-level result the controller sends as is (so idempotent replays are byte-identical). */
export interface HttpResult<T = unknown> {
  status: number;
  body: T;
  replayed?: boolean;
  headers?: Record<string, string>;
}

/** OpenAPI for the Idempotency-Key header every payment-creating endpoint takes. */
export const IdempotencyKeyHeader = () =>
  ApiHeader({
    name: 'Idempotency-Key',
    required: false,
    description:
      'Up to 255 visible ASCII characters, unique per payment attempt. Same key + same body replays the first response (header Idempotent-Replayed: true); same key + different body is a 409.',
  });

/** 400 unless the header is absent or 1-255 visible ASCII characters. */
export function checkIdempotencyKey(key: string | undefined): void {
  if (key !== undefined && !IDEMPOTENCY_KEY_RE.test(key))
    throw new ValidationFailedError('Idempotency-Key must be 1-255 visible ASCII characters');
}

/** Sends a service's HttpResult as is, so an idempotent replay is byte-identical to the first answer. */
export function sendHttpResult(req: Request & { id?: string }, res: Response, result: HttpResult): unknown {
  res.status(result.status);
  if (result.replayed) res.setHeader('Idempotent-Replayed', 'true');
  for (const [k, v] of Object.entries(result.headers ?? {})) res.setHeader(k, v);
  // Error bodies carry this request's id, like every other error (a replay gets the new id).
  if (result.status >= 400 && result.body && typeof result.body === 'object')
    return { ...(result.body as object), requestId: req.id };
  return result.body;
}

/**
 * An Idempotency-Key lookup made earlier in the same request (the STK push rate limiter reads the
 * key to know whether the request will only be replayed), handed to the service so the key is
 * read once per request. Kept beside the request object, not on it: nothing else can see or forge
 * it, and it goes with the request.
 */
const keyLookups = new WeakMap<object, { shopId: string; key: string; record: unknown }>();

/** Remembers what the key's lookup found (`record` null: no such key) for the rest of this request. */
export function rememberKeyLookup(req: object, shopId: string, key: string, record: unknown): void {
  keyLookups.set(req, { shopId, key, record });
}

/** What rememberKeyLookup stored for this request, shop and key; undefined when it was not looked up. */
export function recallKeyLookup<T>(req: object, shopId: string, key: string): { record: T | null } | undefined {
  const found = keyLookups.get(req);
  if (!found || found.shopId !== shopId || found.key !== key) return undefined;
  return { record: (found.record ?? null) as T | null };
}
