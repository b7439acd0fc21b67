import {
  applyDecorators,
  CallHandler,
  ExecutionContext,
  HttpException,
  Injectable,
  NestInterceptor,
  UseInterceptors,
} from '@nestjs/common';
import { ApiResponse } from '@nestjs/swagger';
import { plainToInstance } from 'class-transformer';
import { validate } from 'class-validator';
import type { Request, Response } from 'express';
import { catchError, from, mergeMap, Observable, throwError } from 'rxjs';
import type { AuthUser } from '../auth/auth.types';
import { errorExamples, ErrorResponseDto } from '../common/api-errors.decorator';
import { AppError } from '../common/errors';
import { rememberKeyLookup } from '../common/idempotent-http';
import { DarajaService } from '../payments/providers/mpesa/daraja.service';
import { StkPushDto } from '../payments/payments.dto';
import { PaymentsRepository } from '../payments/payments.repository';
import { RateLimitService } from './rate-limit.service';

/**
 * Applies the per-shop and per-phone limits to POST /payments/stk-push.
 *
 * An interceptor, not a guard, because it must see how the request ended: it runs after the JWT
 * guard (so it knows the shop) and wraps the handler, so it gets the service's result or error.
 *
 * What counts: only a request that sends (or may have sent) a prompt to the phone.
 * - Before taking a point it checks what the normal validation is sure to refuse (the phone
 *   number, through the same DarajaService.formatPhoneNumber the service calls first, and the
 *   StkPushDto field rules): such a request goes through untouched and gets its 400, never a 429.
 *   These checks are never stricter than the real ones (no bypass by sending what only this check
 *   refuses); anything else the validation refuses (unknown fields, a malformed Idempotency-Key)
 *   takes points and gets them back with its 400.
 * - An Idempotency-Key already stored for the shop (one indexed read) means the service will
 *   replay the stored answer, or answer 409 (other body / still running), without calling Daraja:
 *   not limited, nothing taken.
 * - Otherwise one point is taken from each limit (atomically in the store), or 429 with
 *   Retry-After. The points are given back when the request turns out not to have sent a prompt:
 *   a 4xx thrown by the service (unknown order, already paid, amount too high, order already has
 *   an open payment, lost an Idempotency-Key race, ...: all decided before Daraja is called) or a
 *   replayed answer. A 201, an error Daraja returned (CUSTOMER_BUSY included: the phone is indeed
 *   busy) and any 5xx keep them: a prompt was sent or may have been.
 */
@Injectable()
export class StkPushRateLimitInterceptor implements NestInterceptor {
  constructor(
    private readonly limits: RateLimitService,
    private readonly daraja: DarajaService,
    private readonly payments: PaymentsRepository,
  ) {}

  async intercept(context: ExecutionContext, next: CallHandler): Promise<Observable<unknown>> {
    if (!this.limits.enabled) return next.handle();
    const http = context.switchToHttp();
    const req = http.getRequest<Request & { user?: AuthUser }>();
    const res = http.getResponse<Response>();
    const subject = await this.subjectOf(req);
    if (!subject) return next.handle();

    const holds = await this.limits.reserve(subject.shopId, subject.msisdn);
    return next.handle().pipe(
      mergeMap(async (body: unknown) => {
        if (res.getHeader('Idempotent-Replayed') === 'true') await this.limits.release(holds);
        return body;
      }),
      catchError((err: unknown) =>
        from(sentNoPrompt(err) ? this.limits.release(holds) : Promise.resolve()).pipe(
          mergeMap(() => throwError(() => err)),
        ),
      ),
    );
  }

  /** The shop and normalised phone to count, or undefined when this request is not counted. */
  private async subjectOf(req: Request & { user?: AuthUser }): Promise<{ shopId: string; msisdn: string } | undefined> {
    const shopId = req.user?.shopId;
    const body: unknown = req.body;
    if (!shopId || !body || typeof body !== 'object' || Array.isArray(body)) return undefined;
    let msisdn: string;
    try {
      msisdn = this.daraja.formatPhoneNumber((body as { phoneNumber?: unknown }).phoneNumber);
    } catch {
      return undefined;
    }
    // The StkPushDto rules the global ValidationPipe applies (its unknown-field check is left to it).
    const problems = await validate(plainToInstance(StkPushDto, body));
    if (problems.length) return undefined;
    // A stored key is answered from the store (replay, or 409) without calling Daraja. A key that
    // was never stored (malformed ones included) is counted.
    // The lookup is handed on to the service (rememberKeyLookup), which would otherwise read the key again.
    const key = req.headers['idempotency-key'];
    if (typeof key === 'string' && key.length > 0) {
      const stored = await this.payments.findIdempotencyKey(shopId, key);
      rememberKeyLookup(req, shopId, key, stored);
      if (stored) return undefined;
    }
    return { shopId, msisdn };
  }
}

/** A 4xx thrown on the way to Daraja: the service refused the request before sending anything. */
function sentNoPrompt(err: unknown): boolean {
  const status = err instanceof AppError ? err.statusCode : err instanceof HttpException ? err.getStatus() : 500;
  return status >= 400 && status < 500;
}

/** Puts the limits on a route and documents its 429. */
export function StkPushRateLimits() {
  return applyDecorators(
    UseInterceptors(StkPushRateLimitInterceptor),
    ApiResponse({
      status: 429,
      type: ErrorResponseDto,
      examples: errorExamples(429, [
        'RATE_LIMITED_SHOP',
        {
          code: 'PHONE_BUSY',
          message:
            'This phone already has an M-Pesa prompt open (sent less than 60 s ago): ask the customer to answer it on their phone, or try again in 48 s',
          details: { retryAfterSeconds: 48, limit: 1, windowSeconds: 60 },
        },
      ]),
      description:
        'RATE_LIMITED_SHOP: the shop sent more than RATE_LIMIT_SHOP_PER_MINUTE pushes this minute. PHONE_BUSY: the phone was sent a prompt within RATE_LIMIT_PHONE_WINDOW_SECONDS. ' +
        'Nothing was written or sent; retry after Retry-After seconds. Replays of a stored Idempotency-Key are never limited.',
      headers: {
        'Retry-After': {
          description: 'Whole seconds (at least 1) until the request can succeed',
          schema: { type: 'integer', minimum: 1 },
        },
      },
    }),
  );
}
