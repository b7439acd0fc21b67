import { ArgumentsHost, Catch, ExceptionFilter, HttpException, HttpStatus, Logger } from '@nestjs/common';
import type { Request, Response } from 'express';
import { describeDatabaseError, isDatabaseUnavailable } from '../database/database';
import { type ErrorCode, isErrorCode } from './error-codes';
import { AppError, DatabaseUnavailableError } from './errors';
import { safeError } from './logging';

export interface ErrorBody {
  statusCode: number;
  code: ErrorCode;
  message: string;
  details?: Record<string, unknown>;
  requestId?: string;
}

const HTTP_CODES: Readonly<Record<number, ErrorCode>> = {
  400: 'BAD_REQUEST',
  401: 'UNAUTHORIZED',
  403: 'FORBIDDEN',
  404: 'NOT_FOUND',
  405: 'METHOD_NOT_ALLOWED',
  409: 'CONFLICT',
  413: 'PAYLOAD_TOO_LARGE',
  415: 'UNSUPPORTED_MEDIA_TYPE',
  422: 'UNPROCESSABLE_ENTITY',
  429: 'TOO_MANY_REQUESTS',
};

/**
 * One error shape for every endpoint: {statusCode, code, message, details?, requestId}.
 * Typed AppErrors keep their code; Nest HttpExceptions (validation, auth, body-parser)
 * get a code from their status; anything else is a logged, generic 500.
 */
@Catch()
export class AllExceptionsFilter implements ExceptionFilter {
  private readonly logger = new Logger('ExceptionFilter');

  catch(exception: unknown, host: ArgumentsHost): void {
    const ctx = host.switchToHttp();
    const res = ctx.getResponse<Response>();
    const req = ctx.getRequest<Request & { id?: string }>();
    const requestId = req?.id !== undefined ? String(req.id) : undefined;
    const body = toErrorBody(exception, requestId);
    const typed = asAppError(exception);
    if (typed?.headers) {
      for (const [k, v] of Object.entries(typed.headers)) res.setHeader(k, v);
    }
    if (typed instanceof DatabaseUnavailableError && typed !== exception) {
      // A lost connection: its SQLSTATE and the driver's message say it all (the failed query's parameters are client data).
      this.logger.error(
        { db: describeDatabaseError(exception), requestId, code: body.code },
        'database unavailable; answered 503',
      );
    } else if (body.statusCode >= 500) {
      this.logger.error(
        { err: safeError(exception), requestId, code: body.code },
        body.statusCode === 500 ? 'unhandled error' : body.message,
      );
    }
    if (res.headersSent) return;
    res.status(body.statusCode).json(body);
  }
}

/** The typed error behind `exception`: an AppError, or DATABASE_UNAVAILABLE for a lost database connection. */
function asAppError(exception: unknown): AppError | undefined {
  if (exception instanceof AppError) return exception;
  if (!(exception instanceof HttpException) && isDatabaseUnavailable(exception)) return new DatabaseUnavailableError();
  return undefined;
}

/** Maps any thrown value to the public error shape. */
export function toErrorBody(thrown: unknown, requestId?: string): ErrorBody {
  const exception = asAppError(thrown) ?? thrown;
  if (exception instanceof AppError) {
    return {
      statusCode: exception.statusCode,
      code: exception.code,
      message: exception.message,
      ...(exception.details ? { details: exception.details } : {}),
      requestId,
    };
  }
  if (exception instanceof HttpException) {
    const status = exception.getStatus();
    const resp = exception.getResponse();
    let message = exception.message;
    let details: Record<string, unknown> | undefined;
    if (typeof resp === 'object' && resp !== null) {
      const m = (resp as { message?: unknown }).message;
      if (Array.isArray(m)) {
        message = m.join('; ');
        // `errors`: each problem with the field it concerns, from ApiValidationPipe.
        const errors = (resp as { errors?: unknown }).errors;
        details = Array.isArray(errors) && errors.length ? { problems: m, errors } : { problems: m };
      } else if (typeof m === 'string') message = m;
      // Only a listed code goes out (ERROR_CODES, the OpenAPI enum); another falls back to the status's.
      const c = (resp as { code?: unknown }).code;
      if (isErrorCode(c)) return { statusCode: status, code: c, message, ...(details ? { details } : {}), requestId };
    }
    // body-parser errors surface as HttpExceptions with a status (400 bad JSON, 413 too large).
    const code =
      status === 400 && /json/i.test(message)
        ? 'INVALID_JSON'
        : (HTTP_CODES[status] ?? (status >= 500 ? 'INTERNAL_ERROR' : 'BAD_REQUEST'));
    return {
      statusCode: status,
      code: status === 400 && details ? 'VALIDATION_FAILED' : code,
      message,
      ...(details ? { details } : {}),
      requestId,
    };
  }
  // Raw body-parser / http-errors errors (entity.parse.failed, entity.too.large, charset.unsupported,
  // encoding problems, ...): any error that carries a 4xx status is the client's.
  const status = (exception as { status?: unknown })?.status ?? (exception as { statusCode?: unknown })?.statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    const type = (exception as { type?: unknown })?.type;
    const known: Record<string, [ErrorCode, string]> = {
      'entity.parse.failed': ['INVALID_JSON', 'Request body is not valid JSON'],
      'entity.too.large': ['PAYLOAD_TOO_LARGE', 'Request body is too large'],
      'charset.unsupported': [
        'UNSUPPORTED_MEDIA_TYPE',
        'Send the body as UTF-8 JSON (Content-Type: application/json; charset=utf-8)',
      ],
      'encoding.unsupported': [
        'UNSUPPORTED_MEDIA_TYPE',
        'Unsupported Content-Encoding: send the body uncompressed or gzip/deflate',
      ],
    };
    const [code, message] = (typeof type === 'string' && known[type]) || [
      HTTP_CODES[status] ?? 'BAD_REQUEST',
      'The request body could not be read (check Content-Type, Content-Encoding and the body itself)',
    ];
    return { statusCode: status, code, message, requestId };
  }
  return {
    statusCode: HttpStatus.INTERNAL_SERVER_ERROR,
    code: 'INTERNAL_ERROR',
    message: 'Something went wrong on our side. Please try again; if it keeps failing, quote the requestId to support.',
    requestId,
  };
}

/**
 * Express error handler for failures before Nest routing (body parser: bad JSON, body too
 * large; the JSON content-type check), so they get the same error shape.
 */
export function expressErrorHandler(
  err: unknown,
  req: Request & { id?: string },
  res: Response,
  next: (err?: unknown) => void,
): void {
  if (res.headersSent) return next(err);
  const body = toErrorBody(err, req.id !== undefined ? String(req.id) : undefined);
  const typed = asAppError(err);
  if (typed?.headers) for (const [k, v] of Object.entries(typed.headers)) res.setHeader(k, v);
  res.status(body.statusCode).json(body);
}
