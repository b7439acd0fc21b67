import { INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { DocumentBuilder, OpenAPIObject, SwaggerModule } from '@nestjs/swagger';
import express, { NextFunction, Request, Response } from 'express';
import { Logger } from 'nestjs-pino';
import type { DestinationStream } from 'pino';
import { AppModule } from './app.module';
import { ApiExpressAdapter, installClientErrorHandler, requireHostHeader } from './common/client-errors';
import { AppError } from './common/errors';
import { installFastLanes, JSON_BODY_LIMIT_BYTES, jsonShapeProblem } from './common/fast-lane';
import { AllExceptionsFilter, expressErrorHandler } from './common/http-exception.filter';
import { assignRequestId } from './common/logging';
import { ApiValidationPipe } from './common/validation';
import type { AppConfig } from './config/app-config';
import { recordRequestDuration } from './metrics/http-metrics';
import { APP_CONFIG } from './config/config.module';
import type { DatabaseHandle } from './database/database';
import { StkCallbackLane } from './payments/stk-callback-lane';
import { C2bConfirmationLane } from './payments/providers/mpesa/c2b-confirmation-lane';
import { applyGuardSecurity, BEARER_SCHEME, openApiServers } from './openapi/security';

/** The JSON body limit, for Express and the fast lanes alike (one number, so they cannot drift). */
export const BODY_LIMIT = JSON_BODY_LIMIT_BYTES;

export interface CreateAppOptions {
  config: AppConfig;
  database: DatabaseHandle;
  closeDatabaseOnShutdown?: boolean;
  /** buffer logs until the pino logger is ready (real server); tests keep Nest's own quiet */
  bufferLogs?: boolean;
  /** where the JSON logs go (default stdout); the tests write them to files for the log scan */
  logDestination?: DestinationStream;
  /**
   * Nest's own SIGTERM/SIGINT handling (default on): it closes the app and then re-raises the
   * signal, so the process ends BY the signal (exit 130/143, which pnpm reports as a failure).
   * main.ts turns it off and handles the signals itself: close, then exit 0.
   */
  nestSignalHandlers?: boolean;
}

/**
 * CORS for the POS in a browser: exact origins only, the headers a POS sends (bearer token,
 * Idempotency-Key, Last-Event-ID for a resumed stream) and the ones it must read back. No cookies
 * are used, so credentials stay off.
 */
export function corsOptions(origins: string[]) {
  return {
    origin: origins,
    methods: ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'],
    allowedHeaders: ['Authorization', 'Content-Type', 'Idempotency-Key', 'Last-Event-ID'],
    exposedHeaders: ['X-Request-Id', 'Idempotent-Replayed', 'Retry-After'],
    credentials: false,
    maxAge: 600,
    optionsSuccessStatus: 204,
  };
}

/** Builds the configured Nest application (used by main.ts, the tests and the OpenAPI export). */
export async function createApp(options: CreateAppOptions): Promise<NestExpressApplication> {
  const app = await NestFactory.create<NestExpressApplication>(
    AppModule.forRoot({
      config: options.config,
      database: options.database,
      closeDatabaseOnShutdown: options.closeDatabaseOnShutdown ?? false,
      logDestination: options.logDestination,
    }),
    // Node's own Host check off: requireHostHeader below answers in the API's error shape.
    new ApiExpressAdapter(),
    {
      bodyParser: false,
      bufferLogs: options.bufferLogs ?? false,
      logger: options.config.logLevel === 'silent' ? false : undefined,
    },
  );
  app.useLogger(app.get(Logger));
  installClientErrorHandler(app.getHttpServer());
  app.set('trust proxy', options.config.trustProxy);
  // Daraja's STK callbacks and C2B confirmations in front of Express (common/fast-lane.ts).
  installFastLanes(
    app.getHttpServer(),
    [app.get(StkCallbackLane, { strict: false }), app.get(C2bConfirmationLane, { strict: false })],
    app.getHttpAdapter().getInstance().get('trust proxy fn'),
  );
  app.disable('x-powered-by');
  app.use((req: Request, res: Response, next: NextFunction) => {
    assignRequestId(req, res);
    next();
  });
  app.use(recordRequestDuration);
  if (options.config.corsOrigins.length > 0) app.enableCors(corsOptions(options.config.corsOrigins));
  app.use(requireHostHeader());
  app.use(requireJsonBody);
  app.use(
    express.json({
      limit: BODY_LIMIT,
      type: ['application/json', 'application/*+json'],
      verify: (req, _res, buf) => {
        (req as Request & { rawBody?: Buffer }).rawBody = buf;
      },
    }),
  );
  app.use(limitJsonDepth);
  app.use(expressErrorHandler);
  app.useGlobalPipes(
    new ApiValidationPipe({
      whitelist: true,
      forbidNonWhitelisted: true,
      transform: true,
      transformOptions: { enableImplicitConversion: false },
      stopAtFirstError: false,
    }),
  );
  app.useGlobalFilters(new AllExceptionsFilter());
  if (options.nestSignalHandlers !== false) app.enableShutdownHooks();
  SwaggerModule.setup('docs', app, () => buildOpenApi(app), { jsonDocumentUrl: 'docs/openapi.json' });
  return app;
}

/** POST/PUT/PATCH bodies must be JSON: anything else is a clear 415, not a confusing validation error. */
function requireJsonBody(req: Request, _res: Response, next: NextFunction): void {
  const hasBody =
    req.headers['content-length'] !== undefined
      ? req.headers['content-length'] !== '0'
      : req.headers['transfer-encoding'] !== undefined;
  // The one raw-body endpoint: statement uploads stream text/csv (the controller reads and limits it).
  const csvUpload = req.method === 'POST' && req.path === '/reconciliation/statements' && req.is('text/csv');
  if (
    ['POST', 'PUT', 'PATCH'].includes(req.method) &&
    hasBody &&
    !csvUpload &&
    !req.is(['application/json', 'application/*+json'])
  ) {
    const statement = req.method === 'POST' && req.path === '/reconciliation/statements';
    next(
      new AppError(
        'UNSUPPORTED_MEDIA_TYPE',
        statement
          ? 'Send the statement as the raw body with Content-Type: text/csv'
          : 'Send the request body as JSON with Content-Type: application/json',
        415,
      ),
    );
    return;
  }
  next();
}

/**
 * Deeply nested JSON is never a real request and overflows recursive validators: 400 it early.
 * `__proto__`/`constructor` keys are refused here too: the whitelist never sees them.
 */
function limitJsonDepth(req: Request, _res: Response, next: NextFunction): void {
  next(jsonShapeProblem(req.body));
}

export function buildOpenApi(app: INestApplication): OpenAPIObject {
  const builder = new DocumentBuilder()
    .setTitle('SmartDuka Payments API')
    .setDescription(
      'M-Pesa (Daraja STK push) payments for SmartDuka POS. Amounts are KES; M-Pesa takes whole shillings. ' +
        'Every error has the shape {statusCode, code, message, details?, requestId}. ' +
        'Payment provider errors (M-Pesa, Flutterwave, Pesapal alike): 502 = the provider answered badly or refused; 503 with Retry-After = not processed, try again later (rate limited, unreachable); 504 = timeout, outcome unknown. ' +
        'Get a dev token from the `pnpm dev` banner or `pnpm run token`.',
    )
    .setVersion('1.0.0')
    .addBearerAuth({ type: 'http', scheme: 'bearer', bearerFormat: 'JWT' }, BEARER_SCHEME);
  for (const server of openApiServers(app.get<AppConfig>(APP_CONFIG, { strict: false })))
    builder.addServer(server.url, server.description);
  return applyGuardSecurity(SwaggerModule.createDocument(app, builder.build()), app);
}
