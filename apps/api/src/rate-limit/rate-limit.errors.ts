import { AppError } from '../common/errors';

/** The shop has sent more pushes this minute than RATE_LIMIT_SHOP_PER_MINUTE allows. */
export class ShopRateLimitedError extends AppError {
  constructor(retryAfter: number, limit: number) {
    super(
      'RATE_LIMITED_SHOP',
      `This shop has sent too many M-Pesa requests (limit ${limit} a minute); try again in ${retryAfter} s`,
      429,
      { retryAfterSeconds: retryAfter, limit, windowSeconds: 60 },
      { 'Retry-After': String(retryAfter) },
    );
  }
}

/**
 * The phone was sent a prompt moments ago (RATE_LIMIT_PHONE_PER_WINDOW per
 * RATE_LIMIT_PHONE_WINDOW_SECONDS). Daraja would refuse a second prompt while the first is open
 * ("Unable to lock subscriber"), so the cashier is told to wait instead.
 */
export class PhoneBusyError extends AppError {
  constructor(retryAfter: number, limit: number, windowSeconds: number) {
    super(
      'PHONE_BUSY',
      `This phone already has an M-Pesa prompt open (sent less than ${windowSeconds} s ago): ask the customer to answer it on their phone, or try again in ${retryAfter} s`,
      429,
      { retryAfterSeconds: retryAfter, limit, windowSeconds },
      { 'Retry-After': String(retryAfter) },
    );
  }
}
