/**
 * The Daraja simulator as a benchmark child process (its own event loop, like the real Daraja).
 * Env: BENCH_SIM_OPTIONS_FILE = a file of JSON SimulatorOptions (or BENCH_SIM_OPTIONS = the JSON) (port, callbackDelayMs, tokenTtlSeconds, ...).
 * IPC: stats, faults {faults}, reset.
 */
import { startDarajaSimulator, type SimFaults, type SimulatorOptions } from '../../packages/daraja-simulator/src';
import { readFileSync } from 'node:fs';
import { memorySnapshot, serveParent } from './procs';

async function main(): Promise<void> {
  const file = process.env.BENCH_SIM_OPTIONS_FILE;
  const options = JSON.parse(
    file ? readFileSync(file, 'utf8') : (process.env.BENCH_SIM_OPTIONS ?? '{}'),
  ) as SimulatorOptions;
  const sim = await startDarajaSimulator({ ...options, host: '127.0.0.1' });
  serveParent(
    { port: sim.port, url: sim.url },
    {
      stats: () => sim.stats(),
      faults: (args) => {
        sim.setFaults((args.faults ?? {}) as SimFaults);
        return true;
      },
      reset: () => {
        sim.reset();
        return true;
      },
      mem: () => memorySnapshot(),
    },
    () => sim.close(),
  );
}

main().catch((err) => {
  process.stderr.write(`sim-server failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
