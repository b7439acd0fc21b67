/**
 * Child processes of a benchmark (the API, the bare handler, the simulator): each runs in its own
 * Node process, like production, so the load generator does not share its event loop. They talk
 * to the parent over IPC: {type:'ready', ...} once listening, then request/response messages.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import { join } from 'node:path';
import { API_DIR, SWC_REGISTER } from './deps';

export const LOG_DIR = join(os.tmpdir(), 'smartduka-bench-logs');

export interface ReadyMessage {
  type: 'ready';
  port: number;
  [k: string]: unknown;
}

export interface ChildHandle {
  name: string;
  proc: ChildProcess;
  pid: number;
  ready: ReadyMessage;
  logFile: string;
  /** Sends {cmd, ...args} and waits for the reply. */
  request<T = unknown>(cmd: string, args?: Record<string, unknown>, timeoutMs?: number): Promise<T>;
  /** Asks the child to shut down cleanly (SIGKILL after timeoutMs); resolves with the exit code. */
  stop(timeoutMs?: number): Promise<number | null>;
}

export interface StartChildOptions {
  env?: Record<string, string | undefined>;
  /** extra node flags, e.g. ['--cpu-prof'] */
  nodeArgs?: string[];
  readyTimeoutMs?: number;
  /** stdout+stderr go here (default: a file in the temp folder) */
  logFile?: string;
}

let seq = 0;

export async function startChild(name: string, script: string, options: StartChildOptions = {}): Promise<ChildHandle> {
  mkdirSync(LOG_DIR, { recursive: true });
  const logFile = options.logFile ?? join(LOG_DIR, `${name}-${process.pid}-${seq++}.log`);
  const fd = openSync(logFile, 'w');
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries({ ...process.env, ...options.env })) if (v !== undefined) env[k] = v;
  const proc = fork(script, [], {
    cwd: API_DIR, // @swc-node/register reads apps/api/tsconfig.json (decorator metadata for Nest)
    env,
    execArgv: ['-r', SWC_REGISTER, ...(options.nodeArgs ?? [])],
    stdio: ['ignore', fd, fd, 'ipc'],
  });
  closeSync(fd);
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  let nextId = 1;
  let exited: number | null | undefined;
  const exitPromise = new Promise<number | null>((resolve) => {
    proc.once('exit', (code, signal) => {
      exited = code ?? (signal ? 128 : null);
      for (const p of pending.values()) p.reject(new Error(`${name} exited (code ${code}, signal ${signal})`));
      pending.clear();
      resolve(exited);
    });
  });

  const ready = await new Promise<ReadyMessage>((resolve, reject) => {
    const timer = setTimeout(
      () =>
        reject(
          new Error(
            `${name} did not become ready within ${options.readyTimeoutMs ?? 60_000} ms; see ${logFile}:\n${tail(logFile)}`,
          ),
        ),
      options.readyTimeoutMs ?? 60_000,
    );
    proc.on('message', (m: { type?: string; id?: number; result?: unknown; error?: string }) => {
      if (m?.type === 'ready') {
        clearTimeout(timer);
        resolve(m as ReadyMessage);
      } else if (typeof m?.id === 'number' && pending.has(m.id)) {
        const p = pending.get(m.id)!;
        pending.delete(m.id);
        if (m.error) p.reject(new Error(`${name}: ${m.error}`));
        else p.resolve(m.result);
      }
    });
    void exitPromise.then((code) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited with code ${code} before it was ready; see ${logFile}:\n${tail(logFile)}`));
    });
  });

  const handle: ChildHandle = {
    name,
    proc,
    pid: proc.pid!,
    ready,
    logFile,
    request<T>(cmd: string, args: Record<string, unknown> = {}, timeoutMs = 30_000): Promise<T> {
      if (exited !== undefined) return Promise.reject(new Error(`${name} has exited`));
      const id = nextId++;
      return new Promise<T>((resolve, reject) => {
        const timer = setTimeout(() => {
          pending.delete(id);
          reject(new Error(`${name} did not answer "${cmd}" within ${timeoutMs} ms`));
        }, timeoutMs);
        pending.set(id, {
          resolve: (v) => {
            clearTimeout(timer);
            resolve(v as T);
          },
          reject: (e) => {
            clearTimeout(timer);
            reject(e);
          },
        });
        proc.send({ id, cmd, ...args });
      });
    },
    async stop(timeoutMs = 15_000) {
      if (exited !== undefined) return exited;
      try {
        proc.send({ id: nextId++, cmd: 'stop' });
      } catch {
        proc.kill('SIGTERM');
      }
      const timer = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
      const code = await exitPromise;
      clearTimeout(timer);
      return code;
    },
  };
  return handle;
}

/** Child side: announce readiness and answer the parent's requests. 'stop' is handled by `onStop`. */
export function serveParent(
  ready: Omit<ReadyMessage, 'type'>,
  handlers: Record<string, (args: Record<string, unknown>) => unknown>,
  onStop: () => Promise<void>,
): void {
  if (!process.send) throw new Error('this script is started by a benchmark (it needs an IPC channel)');
  process.on('message', (m: { id: number; cmd: string } & Record<string, unknown>) => {
    if (m.cmd === 'stop') {
      onStop().then(
        () => process.exit(0),
        (err: unknown) => {
          process.stderr.write(`stop failed: ${err instanceof Error ? err.stack : String(err)}\n`);
          process.exit(1);
        },
      );
      return;
    }
    const h = handlers[m.cmd];
    Promise.resolve()
      .then(() => {
        if (!h) throw new Error(`unknown command ${m.cmd}`);
        return h(m);
      })
      .then(
        (result) => process.send?.({ id: m.id, result }),
        (err: unknown) => process.send?.({ id: m.id, error: err instanceof Error ? err.message : String(err) }),
      );
  });
  // The parent went away (Ctrl-C, crash): do not linger.
  process.on('disconnect', () => void onStop().finally(() => process.exit(0)));
  process.send({ type: 'ready', ...ready });
}

/** Memory of this process as the parent wants it (MB). */
export function memorySnapshot(): {
  rssMb: number;
  heapUsedMb: number;
  heapTotalMb: number;
  externalMb: number;
  arrayBuffersMb: number;
} {
  const m = process.memoryUsage();
  const r = (b: number): number => Math.round((b / 1024 / 1024) * 10) / 10;
  return {
    rssMb: r(m.rss),
    heapUsedMb: r(m.heapUsed),
    heapTotalMb: r(m.heapTotal),
    externalMb: r(m.external),
    arrayBuffersMb: r(m.arrayBuffers),
  };
}

/** Kernel's view of a process's resident memory (Linux): current and peak (VmHWM), MB. */
export function procRss(pid: number): { rssMb: number; peakRssMb: number } | undefined {
  const file = `/proc/${pid}/status`;
  if (!existsSync(file)) return undefined;
  try {
    const s = readFileSync(file, 'utf8');
    const kb = (key: string): number => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(s)?.[1] ?? NaN);
    return { rssMb: Math.round(kb('VmRSS') / 102.4) / 10, peakRssMb: Math.round(kb('VmHWM') / 102.4) / 10 };
  } catch {
    return undefined;
  }
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

export function tail(file: string, lines = 15): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

const logsToRemove = new Set<string>();

/** Marks a server log for deletion when the benchmark succeeds (a failed run keeps them all). */
export function removeLog(file: string): void {
  logsToRemove.add(file);
}

/** Deletes the logs of a successful run, unless BENCH_KEEP=1. */
export function cleanupLogs(): void {
  if (process.env.BENCH_KEEP === '1') return;
  for (const f of logsToRemove) rmSync(f, { force: true });
  logsToRemove.clear();
}

/** CPU time (user + system, ms) a process has used so far (Linux /proc; undefined elsewhere). */
export function procCpuMs(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // fields after the ")" that closes the command name: state is field 3, utime 14, stime 15
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]);
    return (ticks * 1000) / CLOCK_TICKS;
  } catch {
    return undefined;
  }
}

/** USER_HZ: 100 on every mainstream Linux build. */
const CLOCK_TICKS = 100;
