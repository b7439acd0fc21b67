import { cpus, loadavg } from 'node:os';

/**
 * Time budgets for multi-process and multi-instance tests.
 *
 * These tests are CPU-bound: on a busy machine they are slow, not stuck. A single global jest
 * timeout cannot tell the two apart and, when it fires, says only "Exceeded timeout". So each
 * test is split into named steps, each with its own budget (generous: several times what the step
 * takes on a quiet 2-core machine), scaled by how busy the machine is. A step that overruns fails
 * naming itself and what it was still waiting for; a real hang still fails, within a bound.
 * The jest timeout of such a test is the sum of its step budgets plus a margin, so it is only a
 * backstop and a step deadline always fires first.
 */

/**
 * How much slower than a quiet machine this run may be: TEST_TIME_SCALE when set (e.g. 3 on a
 * known-slow CI runner), else from the 1-minute load average per CPU at the time of the call,
 * between 1 and 4.
 */
export function timeScale(): number {
  const fromEnv = Number(process.env.TEST_TIME_SCALE);
  if (Number.isFinite(fromEnv) && fromEnv >= 1) return fromEnv;
  const perCpu = loadavg()[0] / Math.max(1, cpus().length);
  return Math.min(4, Math.max(1, Math.round(perCpu * 10) / 10));
}

/** `ms` scaled for this machine (see timeScale). */
export function scaled(ms: number, scale = timeScale()): number {
  return Math.round(ms * scale);
}

/** jest timeout for a test (or hook) made of steps with these (unscaled) budgets. */
export function testTimeout(...budgetsMs: number[]): number {
  // The maximum scale: the load may rise while the test runs, and this is only the backstop.
  return budgetsMs.reduce((a, b) => a + b, 0) * Math.max(4, timeScale()) + 10_000;
}

export class StepTimeoutError extends Error {}

/**
 * Runs one named step with a deadline of `budgetMs` (scaled). On expiry it throws a
 * StepTimeoutError naming the step, the budget and `progress()` (what it was waiting for, e.g.
 * "37/50 pushes answered"). The step's own work is not cancelled: the test has failed anyway.
 */
export async function step<T>(
  name: string,
  budgetMs: number,
  fn: () => Promise<T>,
  progress?: () => string,
): Promise<T> {
  const scale = timeScale();
  const limit = scaled(budgetMs, scale);
  const started = Date.now();
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      let detail: string;
      try {
        detail = progress ? `; still waiting for: ${progress()}` : '';
      } catch (err) {
        detail = `; (progress report failed: ${err instanceof Error ? err.message : String(err)})`;
      }
      reject(
        new StepTimeoutError(
          `step "${name}" did not finish within ${limit} ms (budget ${budgetMs} ms x load scale ${scale})${detail}`,
        ),
      );
    }, limit);
  });
  try {
    return await Promise.race([fn(), deadline]);
  } catch (err) {
    if (err instanceof StepTimeoutError || !(err instanceof Error)) throw err;
    // Say which step failed (an assertion inside it, a refused connection, ...), keep the cause.
    err.message = `step "${name}" failed after ${Date.now() - started} ms: ${err.message}`;
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

export interface WaitOptions {
  /** poll interval, default 100 ms */
  intervalMs?: number;
  /** what the wait is still missing, for the failure message (e.g. "12 payments still open") */
  progress?: () => string | Promise<string>;
  /** a reason to stop waiting at once (e.g. the process being waited on exited), or undefined */
  failIf?: () => string | undefined;
}

/**
 * Polls `fn` until it returns a truthy value; fails after `budgetMs` (scaled) naming `what`, the
 * progress and the last value or error seen, or at once when `failIf` gives a reason. For
 * readiness waits on a condition, never a fixed sleep.
 */
export async function waitUntil<T>(
  what: string,
  budgetMs: number,
  fn: () => Promise<T | undefined | null | false>,
  options: WaitOptions = {},
): Promise<T> {
  const scale = timeScale();
  const limit = scaled(budgetMs, scale);
  const deadline = Date.now() + limit;
  let last: string;
  for (;;) {
    const reason = options.failIf?.();
    if (reason) throw new Error(`gave up waiting for ${what}: ${reason}`);
    try {
      const v = await fn();
      if (v) return v;
      last = `last result ${JSON.stringify(v)}`;
    } catch (err) {
      last = `last error: ${err instanceof Error ? err.message : String(err)}`;
    }
    if (Date.now() > deadline) {
      let progress: string;
      try {
        progress = options.progress ? `; ${await options.progress()}` : '';
      } catch (err) {
        progress = `; (progress report failed: ${err instanceof Error ? err.message : String(err)})`;
      }
      throw new StepTimeoutError(
        `waited ${limit} ms for ${what} (budget ${budgetMs} ms x load scale ${scale})${progress}; ${last}`,
      );
    }
    await new Promise((r) => setTimeout(r, options.intervalMs ?? 100));
  }
}
