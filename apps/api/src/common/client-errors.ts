import { Logger, NestApplicationOptions } from '@nestjs/common';
import { ExpressAdapter } from '@nestjs/platform-express';
import type { NextFunction, Request, Response } from 'express';
import { randomUUID } from 'node:crypto';
import { createServer, Server } from 'node:http';
import type { Socket } from 'node:net';
import type { ErrorCode } from './error-codes';
import { AppError } from './errors';
import type { ErrorBody } from './http-exception.filter';

interface ClientErrorAnswer {
  status: number;
  reason: string;
  code: ErrorCode;
  message: string;
}

/**
 * What to answer when Node's HTTP parser refuses a request before Express sees it (no route, no
 * filter runs). Undefined: the connection is already gone, answer nothing.
 */
export function clientErrorAnswer(err: NodeJS.ErrnoException): ClientErrorAnswer | undefined {
  switch (err.code) {
    case 'ECONNRESET':
    case 'EPIPE':
      return undefined;
    case 'HPE_HEADER_OVERFLOW':
      return {
        status: 431,
        reason: 'Request Header Fields Too Large',
        code: 'REQUEST_HEADER_FIELDS_TOO_LARGE',
        message:
          'The request headers are too large (at most 16 KB together, URL included): send fewer or smaller headers and cookies',
      };
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return {
        status: 408,
        reason: 'Request Timeout',
        code: 'REQUEST_TIMEOUT',
        message: 'The request did not arrive in time: send it again',
      };
    default:
      // HPE_INVALID_METHOD, HPE_INVALID_HEADER_TOKEN, HPE_UNEXPECTED_CONTENT_LENGTH, HPE_INVALID_CHUNK_SIZE, …
      return {
        status: 400,
        reason: 'Bad Request',
        code: 'BAD_REQUEST',
        message:
          'The request is not valid HTTP/1.1 and could not be read (check the request line, headers and body framing)',
      };
  }
}

/**
 * Answers requests Node refuses itself (a header over 16 KB, malformed HTTP) in the API's error
 * shape, instead of Node's bare status line with an empty body. As Node does by default, only on a
 * connection nothing was written to yet (never in the middle of another response), then closed.
 */
export function installClientErrorHandler(server: Server, logger = new Logger('HttpServer')): void {
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    const answer = clientErrorAnswer(err);
    if (!answer || !socket.writable || socket.bytesWritten > 0) {
      socket.destroy();
      return;
    }
    const requestId = randomUUID();
    const body: ErrorBody = { statusCode: answer.status, code: answer.code, message: answer.message, requestId };
    const json = JSON.stringify(body);
    socket.end(
      `HTTP/1.1 ${answer.status} ${answer.reason}\r\n` +
        'Content-Type: application/json; charset=utf-8\r\n' +
        `Content-Length: ${Buffer.byteLength(json)}\r\n` +
        `X-Request-Id: ${requestId}\r\n` +
        'Connection: close\r\n\r\n' +
        json,
    );
    // The parser's code only: the raw bytes (err.rawPacket) are client input and stay out of the logs.
    logger.warn(
      { status: answer.status, code: answer.code, parserCode: err.code, requestId },
      'request refused before routing',
    );
  });
}

/**
 * Nest's Express adapter with Node's own Host check turned off (`requireHostHeader: false`): Node
 * answers an HTTP/1.1 request without Host with a bare 400 and an empty body; requireHostHeader
 * (the first middleware) refuses it instead, in the API's error shape. Node's check runs before
 * any listener and cannot be answered otherwise.
 */
export class ApiExpressAdapter extends ExpressAdapter {
  override initHttpServer(options: NestApplicationOptions): void {
    // What ExpressAdapter does for these is not repeated here; this app uses neither.
    if (options?.httpsOptions || options?.forceCloseConnections)
      throw new Error('ApiExpressAdapter: httpsOptions and forceCloseConnections are not supported');
    this.setHttpServer(createServer({ requireHostHeader: false }, this.getInstance()));
  }
}

/**
 * An HTTP/1.1 request must carry a Host header (RFC 9112 §3.2: a server answers 400 without it),
 * as Node checks by default. Runs first (after the request id is assigned), so nothing routes,
 * parses or stores a request without one. HTTP/1.0 needs none, as in Node; an empty Host counts.
 * The connection is closed afterwards, as Node does.
 */
export function requireHostHeader(logger = new Logger('HttpServer')) {
  return (req: Request & { id?: unknown }, res: Response, next: NextFunction): void => {
    if (req.httpVersionMajor === 1 && req.httpVersionMinor === 1 && req.headers.host === undefined) {
      res.setHeader('Connection', 'close');
      logger.warn({ status: 400, code: 'MISSING_HOST_HEADER', requestId: req.id }, 'request refused before routing');
      next(
        new AppError(
          'MISSING_HOST_HEADER',
          'The request has no Host header: HTTP/1.1 requires one (send the API host name, as any HTTP client does)',
          400,
        ),
      );
      return;
    }
    next();
  };
}
