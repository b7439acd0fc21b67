/**
 * A typed client of the /__sim control API, for tests that talk to a simulator running in another process
 * (`pnpm sim`, a container). In-process tests can call the same methods on the DarajaSimulator handle.
 */
import type {
  SimAccountInfo,
  SimAppInfo,
  SimPush,
  SimRegistration,
  SimRegistrationOutcome,
  SimResultControl,
  SimResultDelivery,
  SimResultRequest,
  SimulatorAccount,
  SimulatorApp,
} from './types';

/** A non-2xx answer of the control API: `status` 409 = conflicting re-definition, 400 = bad input. */
export class SimulatorControlError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'SimulatorControlError';
  }
}

/** A push as the control API returns it (JSON: dates are ISO strings). */
export type SimPushRecord = Omit<SimPush, 'createdAt'> & { createdAt: string };

/** A Reversal / Transaction Status request as the control API returns it (dates as ISO strings). */
export type SimResultRequestRecord = Omit<SimResultRequest, 'at'> & { at: string };

/** A Result POST as the control API returns it. */
export type SimResultDeliveryRecord = Omit<SimResultDelivery, 'at'> & { at: string };

export class SimulatorControlClient {
  private readonly base: string;

  /** `baseUrl`: the simulator's URL, e.g. `http://127.0.0.1:4010` (sim.url). */
  constructor(baseUrl: string) {
    this.base = baseUrl.replace(/\/+$/, '');
  }

  /** POST /__sim/apps: 201 created, 200 the same values were already registered; 409 → SimulatorControlError. */
  async registerApp(app: SimulatorApp): Promise<SimRegistration<SimAppInfo>> {
    const body = await this.call<{ outcome: SimRegistrationOutcome; app: SimAppInfo }>('POST', '/__sim/apps', app);
    return { outcome: body.outcome, value: body.app };
  }

  /** POST /__sim/accounts, idempotent like registerApp(). */
  async registerAccount(account: SimulatorAccount): Promise<SimRegistration<SimAccountInfo>> {
    const body = await this.call<{ outcome: SimRegistrationOutcome; account: SimAccountInfo }>(
      'POST',
      '/__sim/accounts',
      account,
    );
    return { outcome: body.outcome, value: body.account };
  }

  async apps(): Promise<SimAppInfo[]> {
    return (await this.call<{ apps: SimAppInfo[] }>('GET', '/__sim/apps')).apps;
  }

  async accounts(): Promise<SimAccountInfo[]> {
    return (await this.call<{ accounts: SimAccountInfo[] }>('GET', '/__sim/accounts')).accounts;
  }

  /** GET /__sim/oauth-calls: OAuth calls since the last reset, by consumer key. */
  async oauthCalls(): Promise<Record<string, number>> {
    return (await this.call<{ oauthCalls: Record<string, number> }>('GET', '/__sim/oauth-calls')).oauthCalls;
  }

  /** The recorded pushes (GET /__sim/state), each with the consumer key of the token that made it. */
  async pushes(): Promise<SimPushRecord[]> {
    return (await this.call<{ pushes: SimPushRecord[] }>('GET', '/__sim/state')).pushes;
  }

  /** GET /__sim/reversals: every Reversal request (no SecurityCredential, no password), oldest first. */
  async reversals(): Promise<SimResultRequestRecord[]> {
    return (await this.call<{ reversals: SimResultRequestRecord[] }>('GET', '/__sim/reversals')).reversals;
  }

  /** GET /__sim/status-queries: every Transaction Status request, oldest first. */
  async statusQueries(): Promise<SimResultRequestRecord[]> {
    return (await this.call<{ statusQueries: SimResultRequestRecord[] }>('GET', '/__sim/status-queries')).statusQueries;
  }

  /** GET /__sim/results: Result and QueueTimeOutURL POSTs made, oldest first. */
  async results(): Promise<SimResultDeliveryRecord[]> {
    return (await this.call<{ results: SimResultDeliveryRecord[] }>('GET', '/__sim/results')).results;
  }

  /** POST /__sim/result-controls: force the outcome / delivery of the next matching request. */
  async forceResult(control: SimResultControl): Promise<void> {
    await this.call('POST', '/__sim/result-controls', control);
  }

  /** Polls /__sim/results until `count` POSTs for this ConversationID/OriginatorConversationID were made. */
  async waitForResults(conversationId: string, count = 1, timeoutMs = 10_000): Promise<SimResultDeliveryRecord[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = (await this.results()).filter(
        (r) => r.conversationId === conversationId || r.originatorConversationId === conversationId,
      );
      if (found.length >= count) return found;
      if (Date.now() >= deadline) {
        throw new Error(`timed out waiting for ${count} result(s) for ${conversationId} (got ${found.length})`);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  async reset(): Promise<void> {
    await this.call('POST', '/__sim/reset');
  }

  private async call<T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
    const res = await fetch(`${this.base}${path}`, {
      method,
      headers: body === undefined ? {} : { 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    let json: unknown;
    try {
      json = text === '' ? undefined : (JSON.parse(text) as unknown);
    } catch {
      json = undefined;
    }
    if (!res.ok) {
      const message =
        typeof json === 'object' && json !== null && typeof (json as { error?: unknown }).error === 'string'
          ? (json as { error: string }).error
          : `HTTP ${res.status}`;
      throw new SimulatorControlError(res.status, `${method} ${path}: ${message}`);
    }
    return json as T;
  }
}
