import { collectDefaultMetrics, Counter, Histogram, Registry } from 'prom-client';

/**
 * The process's Prometheus metrics (prom-client), recorded where the work happens and served by
 * GET /metrics (MetricsController, only with METRICS_TOKEN). Process-wide, like the process
 * itself: counters and histograms here; what is read from the database at scrape time (open
 * payments, review reasons, the reconciler's backlog) is per app, in MetricsService.
 *
 * Labels are bounded sets only (provider, route pattern, status, outcome, error code): never an
 * id, a shop, a phone or a URL.
 */
export const processRegistry = new Registry();
collectDefaultMetrics({ register: processRegistry });

export const httpRequestDuration = new Histogram({
  name: 'http_request_duration_seconds',
  help: 'HTTP requests by route pattern and status (a live status stream counts when it closes)',
  labelNames: ['method', 'route', 'status'] as const,
  buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
  registers: [processRegistry],
});

export const paymentInitiations = new Counter({
  name: 'smartduka_payment_initiations_total',
  help: 'Payments started (STK pushes, hosted checkouts) by provider and outcome: the status the payment got (pending, failed, unresolved) or the error code answered',
  labelNames: ['provider', 'outcome'] as const,
  registers: [processRegistry],
});

export const notifications = new Counter({
  name: 'smartduka_notifications_total',
  help: 'Provider notifications processed (STK callbacks, webhooks, IPNs, result callbacks) by provider, kind and outcome (applied, duplicate, unknown_payment, mismatch, ...)',
  labelNames: ['provider', 'kind', 'outcome'] as const,
  registers: [processRegistry],
});

export const providerRequestDuration = new Histogram({
  name: 'smartduka_provider_request_duration_seconds',
  help: 'Calls to payment providers by provider, operation (path pattern) and result (HTTP status class, or timeout / unreachable / broken)',
  labelNames: ['provider', 'operation', 'result'] as const,
  buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30],
  registers: [processRegistry],
});

export const providerErrors = new Counter({
  name: 'smartduka_provider_errors_total',
  help: "Provider calls that failed, by provider, operation and code (the provider's own error code, http_<status>, or the network failure)",
  labelNames: ['provider', 'operation', 'code'] as const,
  registers: [processRegistry],
});

export const tokenRefreshes = new Counter({
  name: 'smartduka_provider_token_refreshes_total',
  help: 'OAuth access tokens fetched from a provider, by provider and result',
  labelNames: ['provider', 'result'] as const,
  registers: [processRegistry],
});

export const reconcilerActions = new Counter({
  name: 'smartduka_reconciler_actions_total',
  help: 'What the reconciler did with the open payments it looked at: settled (recovered), still_pending, failed_not_found, moved_to_review (gave up), provider_error, ...; and callbacks_replayed',
  labelNames: ['action'] as const,
  registers: [processRegistry],
});

export const callbackApplyQueue = new Counter({
  name: 'smartduka_callback_apply_jobs_total',
  help: 'Stored, acknowledged callbacks handed to the in-process applier (queued) or left to the reconciler (left_to_reconciler: queue full or shutting down)',
  labelNames: ['result'] as const,
  registers: [processRegistry],
});

export const callbackApplyDelay = new Histogram({
  name: 'smartduka_callback_apply_delay_seconds',
  help: 'From acknowledging a stored callback to its outcome committed (the in-process applier)',
  buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5],
  registers: [processRegistry],
});

/** A provider path as a bounded label: ids (digits, UUIDs, long tokens) become :id. */
export function operationOf(path: string): string {
  return (
    path
      .split('?')[0]
      .split('/')
      .map((seg) => (/^\d+$|^[0-9a-f-]{16,}$|^[A-Za-z0-9_-]{20,}$/i.test(seg) ? ':id' : seg))
      .join('/') || '/'
  );
}
