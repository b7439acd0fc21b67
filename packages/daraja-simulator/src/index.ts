/**
 * @smartduka/daraja-simulator — a local fake of Safaricom Daraja (OAuth, STK push, STK query, STK callbacks,
 * Reversal and Transaction Status with their async Results).
 * Wire formats follow /work/shared/reference/daraja.md; see README.md for magic numbers and the /__sim control API.
 */
import { SimulatorCore } from './core';
import { resolveOptions } from './options';
import { closeServer, createSimulatorServer, listen } from './server';
import type { DarajaSimulator, SimulatorOptions } from './types';

export type {
  DarajaSimulator,
  PendingQueryForm,
  SimBehaviour,
  SimCallbackDelivery,
  SimCallbackFaults,
  SimFaultError,
  SimFaults,
  SimInjection,
  SimInjectionKind,
  SimInjectionSource,
  SimPromptCount,
  SimPromptQuery,
  SimPush,
  SimPushState,
  SimPushTimeouts,
  SimQuery,
  SimQueryTimeouts,
  SimResolveOptions,
  SimStats,
  SimAccountInfo,
  SimAppInfo,
  SimRegistration,
  SimRegistrationOutcome,
  SimulatorAccount,
  SimulatorApp,
  SimulatorOptions,
  SimInitiatorRole,
  SimResultApi,
  SimResultCode,
  SimResultControl,
  SimResultDelivery,
  SimResultDeliveryMode,
  SimResultRequest,
  SimResultRequestState,
} from './types';
export {
  SimulatorControlClient,
  SimulatorControlError,
  type SimPushRecord,
  type SimResultDeliveryRecord,
  type SimResultRequestRecord,
} from './control-client';
export { SIMULATOR_CERTIFICATE_PEM, SIMULATOR_CERTIFICATE_SHA256 } from './security-credential';
export { DEFAULT_INITIATOR_NAME, DEFAULT_INITIATOR_PASSWORD } from './registry';
export {
  QUEUE_TIMEOUT_RESULT_CODE,
  QUEUE_TIMEOUT_RESULT_DESC,
  RESULT_API_DESCRIPTIONS,
  type AsyncAccepted,
  type ResultBody,
} from './result-api';
export { MAGIC_NUMBERS, RESULT_DESCRIPTIONS } from './scenarios';
export { SimulatorError } from './core';
export {
  DYNAMIC_QR_PATH,
  PULL_QUERY_PATH,
  PULL_REGISTER_PATH,
  type SimPullRegistration,
  type SimPullTransaction,
  type SimQrRequest,
} from './qr-pull';
export {
  C2B_VALIDATION_TIMEOUT_MS,
  MAX_C2B_COPIES,
  type C2bMsisdnForm,
  type SimC2bOutcome,
  type SimC2bPayment,
  type SimC2bRegistration,
} from './c2b';
export {
  DEFAULT_CONSUMER_KEY,
  DEFAULT_CONSUMER_SECRET,
  SANDBOX_PASSKEY,
  SANDBOX_SHORTCODE,
  SANDBOX_TILL,
} from './options';
export { OAUTH_PATH, REVERSAL_PATH, STK_PUSH_PATH, STK_QUERY_PATH, TRANSACTION_STATUS_PATH } from './daraja-routes';
export { formatNairobiTimestamp } from './time';
export { stkPassword } from './validation';
export { DEFAULT_TIMEOUT_HOLD_MS, mulberry32, parseFaults } from './faults';
export { faultsFromEnv } from './env-faults';
export { behaviourFromCli, DEFAULT_BEHAVIOUR, PENDING_QUERY_FORMS } from './behaviour';

function urlHost(host: string): string {
  if (host === '0.0.0.0') return '127.0.0.1';
  if (host === '::' || host === '[::]') return '[::1]';
  return host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
}

export async function startDarajaSimulator(opts: SimulatorOptions = {}): Promise<DarajaSimulator> {
  const options = resolveOptions(opts);
  const core = new SimulatorCore(options);
  const server = createSimulatorServer(core);
  const port = await listen(server, options.port, options.host);
  const url = `http://${urlHost(options.host)}:${port}`;
  let closing: Promise<void> | undefined;

  const simulator: DarajaSimulator = {
    url,
    port,
    close() {
      if (!closing) {
        core.shutdown();
        closing = closeServer(server);
      }
      return closing;
    },
    stats: () => core.stats(),
    pushes: () => core.listPushes(),
    getPush: (checkoutRequestId) => core.getPush(checkoutRequestId),
    callbacks: () => core.listCallbacks(),
    queries: () => core.listQueries(),
    behaviour: () => core.behaviour(),
    setBehaviour: (b) => core.setBehaviour(b),
    resolve: (checkoutRequestId, resultCode, options) => core.resolve(checkoutRequestId, resultCode, options),
    setFaults: (f) => core.setFaults(f),
    faults: () => core.currentFaults(),
    injections: () => core.listInjections(),
    promptsFor: (query) => core.promptsFor(query),
    waitForCallbacks: (checkoutRequestId, count, timeoutMs) =>
      core.waitForCallbacks(checkoutRequestId, count, timeoutMs),
    registerApp: (app) => core.registerApp(app),
    registerAccount: (account) => core.registerAccount(account),
    apps: () => core.listApps(),
    accounts: () => core.listAccounts(),
    oauthCalls: () => core.oauthCalls(),
    reversals: () => core.results.listRequests('reversal'),
    statusQueries: () => core.results.listRequests('status'),
    results: () => core.results.listDeliveries(),
    waitForResults: (conversationId, count, timeoutMs) => core.results.waitForResults(conversationId, count, timeoutMs),
    forceResult: (control) => core.forceResult(control),
    reset: () => core.reset(),
    pullTransactions: {
      add: (shortcode, transactions) => core.qrPull.addTransactions(shortcode, transactions),
      setPageSize: (n) => core.qrPull.setPageSize(n),
      failFromPage: (page) => core.qrPull.setFailFromPage(page),
      registrations: () => core.qrPull.listRegistrations(),
      restoreRegistration: (shortcode, callbackUrl) => core.qrPull.restoreRegistration(shortcode, callbackUrl),
    },
    qrRequests: () => core.qrPull.listQrRequests(),
    c2bPay: (payment) => core.c2b.pay(payment),
    c2bRegistrations: () => core.c2b.listRegistrations(),
    restoreC2bRegistration: (registration) => core.c2b.restoreRegistration(registration),
    c2bPayments: () => core.c2b.payments(),
    setC2bValidation: (shortcode, enabled) => core.c2b.setValidation(shortcode, enabled),
    setC2bSettings: (settings) => {
      if (settings.oneTimeRegistration !== undefined) core.c2b.oneTimeRegistration = settings.oneTimeRegistration;
      if (settings.stkConfirmations !== undefined) core.c2b.stkConfirmations = settings.stkConfirmations;
    },
  };
  core.log(`Daraja simulator listening on ${url}`);
  return Object.freeze(simulator);
}
