import type { NextFunction, Request, Response } from 'express';
import { httpRequestDuration } from './metrics';

/**
 * Express middleware: each request's duration by method, route PATTERN (`/payments/:id`, never
 * the URL: ids and query strings are unbounded and may be personal) and status. A request no
 * route matched is `unmatched`.
 */
export function recordRequestDuration(req: Request, res: Response, next: NextFunction): void {
  const started = process.hrtime.bigint();
  res.once('close', () => {
    const route = req.route?.path as string | undefined;
    const pattern = route ? `${req.baseUrl ?? ''}${route}` : 'unmatched';
    httpRequestDuration.observe(
      { method: req.method, route: pattern, status: String(res.statusCode) },
      Number(process.hrtime.bigint() - started) / 1e9,
    );
  });
  next();
}
