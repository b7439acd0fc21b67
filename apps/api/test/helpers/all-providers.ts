import {
  FlutterwaveSimulator,
  PESAPAL_DEFAULT_CONSUMER_KEY,
  PESAPAL_DEFAULT_CONSUMER_SECRET,
  PesapalSimulator,
  startFlutterwaveSimulator,
  startPesapalSimulator,
} from '@smartduka/card-simulators';
import type { PesapalIpnService } from '../../src/payments/providers/pesapal/pesapal-ipn.service';
import { PESAPAL_IPN } from '../../src/payments/providers/pesapal/pesapal.constants';
import { recordSecrets, simulatorLog } from '../log-scan/sink';
import { startTestApp, TestApp } from './test-app';

export interface AllProviders {
  t: TestApp;
  flw: FlutterwaveSimulator;
  pesapal: PesapalSimulator;
  close(): Promise<void>;
}

/**
 * The app with all three providers on (M-Pesa's simulator as startTestApp starts it, Flutterwave's
 * and Pesapal's card simulators), the reconciler off and Pesapal's IPN registered: for tests that
 * drive the same rule through every provider. `env` adds to (or overrides) the providers' settings.
 */
export async function startWithAllProviders(opts: {
  flwSecretKey: string;
  flwSecretHash: string;
  env?: Record<string, string>;
  /** Point the Flutterwave simulator's webhooks at the app. */
  flwWebhooks?: boolean;
}): Promise<AllProviders> {
  recordSecrets([
    { kind: 'consumer-key', value: PESAPAL_DEFAULT_CONSUMER_KEY },
    { kind: 'consumer-secret', value: PESAPAL_DEFAULT_CONSUMER_SECRET, pair: PESAPAL_DEFAULT_CONSUMER_KEY },
  ]);
  const flw = await startFlutterwaveSimulator({
    secretKey: opts.flwSecretKey,
    secretHash: opts.flwSecretHash,
    log: simulatorLog(),
  });
  const pesapal = await startPesapalSimulator({ ipnRetry: { attempts: 0, intervalMs: 100 }, log: simulatorLog() });
  const t = await startTestApp({
    env: {
      FLUTTERWAVE_ENABLED: 'true',
      FLUTTERWAVE_BASE_URL: flw.url,
      FLUTTERWAVE_SECRET_KEY: opts.flwSecretKey,
      FLUTTERWAVE_SECRET_HASH: opts.flwSecretHash,
      PESAPAL_ENABLED: 'true',
      PESAPAL_ENV: 'simulator',
      PESAPAL_BASE_URL: pesapal.url,
      PESAPAL_CONSUMER_KEY: PESAPAL_DEFAULT_CONSUMER_KEY,
      PESAPAL_CONSUMER_SECRET: PESAPAL_DEFAULT_CONSUMER_SECRET,
      RECONCILER_ENABLED: 'false',
      ...opts.env,
    },
  });
  if (opts.flwWebhooks) flw.configure({ webhookUrl: `${t.baseUrl}/payments/flutterwave/webhook` });
  await t.app.get<PesapalIpnService>(PESAPAL_IPN).ensure();
  return {
    t,
    flw,
    pesapal,
    async close() {
      await t.close();
      await flw.close();
      await pesapal.close();
    },
  };
}
