import { Injectable } from '@nestjs/common';
import { Gauge, Registry } from 'prom-client';
import { processRegistry } from './metrics';
import { MetricsRepository, type MetricsSnapshot } from './metrics.repository';

/**
 * What GET /metrics serves: the process's metrics (metrics.ts) and this app's gauges read from the
 * database at scrape time, in one query: open payments by provider and status, payments in review
 * by reason, and the reconciler's backlog (open payments due for a look now).
 */
@Injectable()
export class MetricsService {
  private readonly appRegistry = new Registry();

  constructor(private readonly repo: MetricsRepository) {
    let snapshot: Promise<MetricsSnapshot> | undefined;
    // One query per scrape, shared by the three gauges (each collect() asks for it).
    const read = (): Promise<MetricsSnapshot> =>
      (snapshot ??= this.repo.snapshot().finally(() => setTimeout(() => (snapshot = undefined), 0)));
    new Gauge({
      name: 'smartduka_payments_open',
      help: 'Payments waiting for an outcome (initiated, pending, unresolved), by provider and status',
      labelNames: ['provider', 'status'] as const,
      registers: [this.appRegistry],
      async collect() {
        this.reset();
        for (const r of (await read()).open) this.set({ provider: r.provider, status: r.status }, r.n);
      },
    });
    new Gauge({
      name: 'smartduka_payments_review',
      help: 'Payments in review (a person must look), by reason, not yet resolved',
      labelNames: ['reason'] as const,
      registers: [this.appRegistry],
      async collect() {
        this.reset();
        for (const r of (await read()).review) this.set({ reason: r.reason }, r.n);
      },
    });
    new Gauge({
      name: 'smartduka_reconciler_backlog',
      help: 'Open payments due for a reconciler look now (next check time passed)',
      registers: [this.appRegistry],
      async collect() {
        this.set((await read()).due);
      },
    });
  }

  get contentType(): string {
    return processRegistry.contentType;
  }

  async render(): Promise<string> {
    return Registry.merge([processRegistry, this.appRegistry]).metrics();
  }
}
