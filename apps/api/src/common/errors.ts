import type { ErrorCode } from './error-codes';

/**
 * Typed application errors. Services throw these; the global exception filter
 * turns them into `{statusCode, code, message, details?}`. Anything that is not
 * an AppError (or a Nest HttpException) becomes a generic 500.
 */
export class AppError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly statusCode: number,
    readonly details?: Record<string, unknown>,
    /** Extra response headers, e.g. Retry-After. */
    readonly headers?: Record<string, string>,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/**
 * 400 VALIDATION_FAILED. With `details.field` (the field the problem concerns, nested ones dotted)
 * the answer also gets `details.errors: [{param, message}]`, the shape the request checks give
 * (ApiValidationPipe), so a client reads one shape for every validation problem.
 */
export class ValidationFailedError extends AppError {
  constructor(message: string, details?: Record<string, unknown>) {
    const field = details?.field;
    super(
      'VALIDATION_FAILED',
      message,
      400,
      typeof field === 'string' && details?.errors === undefined
        ? { ...details, errors: [{ param: field, message }] }
        : details,
    );
  }
}

export class NotFoundError extends AppError {
  constructor(what: string, details?: Record<string, unknown>) {
    super('NOT_FOUND', `${what} not found`, 404, details);
  }
}

export class ConflictError extends AppError {
  constructor(code: ErrorCode, message: string, details?: Record<string, unknown>) {
    super(code, message, 409, details);
  }
}

/**
 * The database connection was lost or could not be opened (failover, a terminated connection, the
 * server refusing connections). What the request did not write is not stored; nothing that needed
 * storing was acknowledged. The process keeps serving and the pool opens new connections.
 */
export class DatabaseUnavailableError extends AppError {
  constructor(
    message = 'The payments database is unavailable for a moment. Try again in a few seconds; for a payment, check its status first (the customer may already have the M-Pesa prompt).',
    details?: Record<string, unknown>,
  ) {
    super('DATABASE_UNAVAILABLE', message, 503, details, { 'Retry-After': '2' });
  }
}
