/** The load generator: autocannon, run in the benchmark's own process, summarised. */
import { autocannon, type AutocannonOptions, type AutocannonResult } from './deps';

export interface LoadSummary {
  label: string;
  connections: number;
  /** responses received */
  requests: number;
  ok: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  seconds: number;
  /** 2xx responses per second of wall time */
  rps: number;
  latencyMs: { p50: number; p90: number; p99: number; max: number; mean: number };
  statusCodes: Record<string, number>;
}

export async function load(label: string, options: AutocannonOptions): Promise<LoadSummary> {
  const started = performance.now();
  // Throughput runs to the last response: autocannon itself only stops on its 1 s tick.
  let last = started;
  const result = await new Promise<AutocannonResult>((resolve, reject) => {
    const instance = autocannon({ timeout: 30, ...options }, (err, res) => (err ? reject(err) : resolve(res)));
    instance.on('response', () => {
      last = performance.now();
    });
  });
  const seconds = (last - started) / 1000;
  const statusCodes: Record<string, number> = {};
  for (const [code, v] of Object.entries(
    (result as unknown as { statusCodeStats?: Record<string, { count: number | string }> }).statusCodeStats ?? {},
  ))
    statusCodes[code] = Number(v.count);
  const requests = Object.values(statusCodes).reduce((a, b) => a + b, 0);
  const non2xx = result.non2xx;
  const ok = requests - non2xx;
  const l = result.latency as unknown as Record<string, number>;
  return {
    label,
    connections: options.connections ?? 10,
    requests,
    ok,
    non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    seconds: Math.round(seconds * 100) / 100,
    rps: Math.round(ok / seconds),
    latencyMs: { p50: l.p50, p90: l.p90, p99: l.p99, max: l.max, mean: Math.round(l.average * 100) / 100 },
    statusCodes,
  };
}

/** Fails unless every request was answered with a 2xx (the first thing a smoke run checks). */
export function assertClean(s: LoadSummary, minRequests = 1): void {
  const problems: string[] = [];
  if (s.requests < minRequests) problems.push(`only ${s.requests} responses (wanted at least ${minRequests})`);
  if (s.non2xx) problems.push(`${s.non2xx} non-2xx responses ${JSON.stringify(s.statusCodes)}`);
  if (s.errors) problems.push(`${s.errors} connection errors (${s.timeouts} timeouts)`);
  if (!(s.rps > 0) || !(s.latencyMs.p50 >= 0) || !(s.latencyMs.p99 >= s.latencyMs.p50))
    problems.push(`implausible figures ${JSON.stringify({ rps: s.rps, latency: s.latencyMs })}`);
  if (problems.length) throw new Error(`SANITY CHECK FAILED (${s.label}): ${problems.join('; ')}`);
}
