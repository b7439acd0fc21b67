/**
 * Jest setup (setupFilesAfterEnv) for the log scan. Does nothing unless the run scans its logs
 * (SMARTDUKA_TEST_LOG_DIR, set by run-tests.ts). Then, for the current test file:
 *
 * - Nest's Logger writes to <file>.nest.log: code that logs outside an app (unit specs constructing
 *   services directly) is scanned too. Apps replace it with their own pino logger (test-app.ts).
 * - child_process.spawn is wrapped: the child's stdout and stderr are copied to <file>.child-<n>.log
 *   (the dev-server e2e runs src/main.ts this way); a child running src/main.ts logs at the scan's
 *   level (LOG_LEVEL overridden); when the child exits, the development secrets it generated in its
 *   DATA_DIR (dev-secrets.json) are recorded for the scan. esbuild's service (bundling the POS) has only
 *   its stderr copied: its stdout is a binary protocol carrying the bundle, not a log.
 * - http.ServerResponse#end is wrapped: every OAuth access token a server in this process hands out
 *   (the Daraja simulator, other providers' simulators) is recorded, so the scan looks for the exact
 *   tokens of this run.
 *
 * Both wrappers are removed after the test file.
 */
import type { ChildProcess, SpawnOptions } from 'node:child_process';
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Logger, LoggerService } from '@nestjs/common';
import { logFile, recordSecrets, TEST_SCAN_LOG_LEVEL, testLogDir } from './sink';

type SpawnFn = (...args: unknown[]) => ChildProcess;

function jsonSafe(v: unknown): unknown {
  if (v instanceof Error)
    return { type: v.name, message: v.message, stack: v.stack?.split('\n').slice(0, 6).join('\n') };
  return v;
}

/** Nest LoggerService writing one JSON line per call (the same information Nest would print). */
class FileLogger implements LoggerService {
  constructor(private readonly file: string) {}
  private write(level: string, message: unknown, params: unknown[]): void {
    const last = params[params.length - 1];
    const context = typeof last === 'string' ? last : undefined;
    const rest = context === undefined ? params : params.slice(0, -1);
    const line = JSON.stringify(
      {
        time: new Date().toISOString(),
        level,
        context,
        msg: jsonSafe(message),
        ...(rest.length ? { params: rest.map(jsonSafe) } : {}),
      },
      (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v),
    );
    appendFileSync(this.file, line + '\n');
  }
  log(message: unknown, ...p: unknown[]) {
    this.write('log', message, p);
  }
  error(message: unknown, ...p: unknown[]) {
    this.write('error', message, p);
  }
  warn(message: unknown, ...p: unknown[]) {
    this.write('warn', message, p);
  }
  debug(message: unknown, ...p: unknown[]) {
    this.write('debug', message, p);
  }
  verbose(message: unknown, ...p: unknown[]) {
    this.write('verbose', message, p);
  }
  fatal(message: unknown, ...p: unknown[]) {
    this.write('fatal', message, p);
  }
}

/** Fields OAuth-style token responses carry the token in (Daraja: access_token; Pesapal: token). */
const TOKEN_FIELDS = ['access_token', 'accessToken', 'token', 'id_token', 'refresh_token'];

function learnAccessToken(chunk: unknown): void {
  const text =
    typeof chunk === 'string'
      ? chunk
      : Buffer.isBuffer(chunk)
        ? chunk.length < 8192
          ? chunk.toString('utf8')
          : ''
        : '';
  if (!/"(access_token|accessToken|token|id_token|refresh_token)"/.test(text)) return;
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return; // not a JSON token response
  }
  if (!body || typeof body !== 'object') return;
  const values = TOKEN_FIELDS.map((f) => (body as Record<string, unknown>)[f]).filter(
    (v): v is string => typeof v === 'string',
  );
  recordSecrets(values.map((value) => ({ kind: 'access-token' as const, value })));
}

function isMainTs(command: unknown, args: unknown[]): boolean {
  return (
    command === process.execPath && args.some((a) => typeof a === 'string' && /(^|[\\/])src[\\/]main\.ts$/.test(a))
  );
}

if (testLogDir()) {
  const nestFile = logFile('nest');
  if (nestFile) Logger.overrideLogger(new FileLogger(nestFile));

  // The real core modules (jest hands test code the same objects), so the wrappers see every call.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const cp = require('node:child_process') as { spawn: SpawnFn };
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const http = require('node:http') as typeof import('node:http');
  const originalSpawn = cp.spawn;
  const originalEnd = http.ServerResponse.prototype.end;
  let children = 0;

  cp.spawn = function spawnAndCapture(this: unknown, command: unknown, ...rest: unknown[]): ChildProcess {
    const args = Array.isArray(rest[0]) ? (rest[0] as unknown[]) : [];
    const optionsAt = Array.isArray(rest[0]) ? 1 : 0;
    const options = { ...((rest[optionsAt] as SpawnOptions | undefined) ?? {}) };
    if (isMainTs(command, args)) options.env = { ...(options.env ?? process.env), LOG_LEVEL: TEST_SCAN_LOG_LEVEL };
    const callArgs = optionsAt === 1 ? [command, args, options] : [command, options];
    const child = originalSpawn.apply(this, callArgs);
    const file = logFile(`child-${++children}`);
    if (file) {
      appendFileSync(file, `# spawned: ${String(command)} ${args.map(String).join(' ')}\n`);
      // esbuild's service (the POS bundle, apps/pos) talks a binary protocol on stdout that carries the
      // bundle itself, library source included: not a log. Its stderr (its diagnostics) is still copied.
      const esbuildService = args.some((a) => String(a).startsWith('--service='));
      if (!esbuildService) child.stdout?.on('data', (d: Buffer) => appendFileSync(file, d));
      child.stderr?.on('data', (d: Buffer) => appendFileSync(file, d));
      const dataDir = options.env?.DATA_DIR;
      child.once('exit', () => {
        const secretsFile = dataDir ? join(dataDir, 'dev-secrets.json') : undefined;
        if (!secretsFile || !existsSync(secretsFile)) return;
        try {
          const stored = JSON.parse(readFileSync(secretsFile, 'utf8')) as Record<string, unknown>;
          recordSecrets(
            Object.values(stored).map((v) => ({
              kind: 'dev-secret' as const,
              value: typeof v === 'string' ? v : undefined,
            })),
          );
        } catch {
          // unreadable: nothing to add
        }
      });
    }
    return child;
  } as SpawnFn;

  http.ServerResponse.prototype.end = function endAndLearn(
    this: import('node:http').ServerResponse,
    ...args: unknown[]
  ) {
    learnAccessToken(args[0]);
    return (originalEnd as (...a: unknown[]) => unknown).apply(this, args);
  } as typeof originalEnd;

  afterAll(() => {
    cp.spawn = originalSpawn;
    http.ServerResponse.prototype.end = originalEnd;
  });
}
