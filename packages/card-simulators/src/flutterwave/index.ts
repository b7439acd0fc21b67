/** startFlutterwaveSimulator: node:http server wiring /v3 API, the hosted page and /__sim control routes. */
import http from 'node:http';
import { CONTROL_PREFIX } from '../shared/control';
import { htmlReply, jsonReply, logPath, writeReply, type Reply } from '../shared/http';
import { messagePage } from '../shared/html';
import { closeServer, listen, urlHost } from '../shared/server';
import { FlwApiRoutes, matchApiRoute } from './api-routes';
import { FLW_CHECKOUT_PATH, FlwCheckoutPage } from './checkout-page';
import { FlwControlRoutes } from './control-routes';
import { FlutterwaveCore } from './core';
import { resolveFlwOptions } from './options';
import { errorBody } from './payloads';
import type { FlutterwaveSimulator, FlutterwaveSimulatorOptions, FlwEndpoint, FlwSettlement } from './types';

function createServer(core: FlutterwaveCore): http.Server {
  const api = new FlwApiRoutes(core);
  const page = new FlwCheckoutPage(core);
  const control = new FlwControlRoutes(core);

  async function route(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://simulator.local');
    } catch {
      writeReply(res, jsonReply(400, errorBody('Malformed request URL')));
      return;
    }
    const method = req.method ?? 'GET';
    if (url.pathname === CONTROL_PREFIX || url.pathname.startsWith(`${CONTROL_PREFIX}/`)) {
      writeReply(res, await control.handle(req, url));
      return;
    }

    let endpoint: FlwEndpoint | undefined;
    let run: (() => Promise<Reply>) | undefined;
    const linkMatch = FLW_CHECKOUT_PATH.exec(url.pathname);
    const apiRoute = matchApiRoute(url.pathname);
    if (linkMatch?.[1]) {
      const linkId = linkMatch[1];
      endpoint = 'checkout';
      core.count('checkout', method === 'POST');
      run = () => page.handle(req, linkId);
    } else if (apiRoute) {
      endpoint = apiRoute.endpoint;
      core.count(apiRoute.endpoint);
      run = method === apiRoute.method ? () => api.handle(req, url, apiRoute) : undefined;
    }

    let reply: Reply;
    if (core.isDown()) {
      req.resume();
      reply =
        endpoint === 'checkout'
          ? htmlReply(
              503,
              messagePage(
                'Service unavailable',
                'error',
                'Flutterwave is temporarily unavailable. Please try again later.',
                'down',
              ),
            )
          : jsonReply(503, errorBody('Service Unavailable. Please try again later'));
    } else if (!endpoint) {
      req.resume();
      reply = jsonReply(404, errorBody(`Route ${method} ${url.pathname} not found`));
    } else if (!run) {
      req.resume();
      reply = jsonReply(405, errorBody(`Method ${method} is not allowed on ${url.pathname}`));
    } else {
      reply = await run();
      const latency = core.latencyFor(endpoint);
      if (latency > 0 && !(await core.delay(latency))) return;
    }
    writeReply(res, reply);
    core.log(`${method} ${logPath(req)} -> ${reply.status}`);
  }

  return http.createServer((req, res) => {
    route(req, res).catch((err: unknown) => {
      core.log(
        `internal error on ${req.method ?? '?'} ${logPath(req)}: ${err instanceof Error ? err.message : String(err)}`,
      );
      writeReply(res, jsonReply(500, errorBody('Internal server error')));
    });
  });
}

export async function startFlutterwaveSimulator(opts: FlutterwaveSimulatorOptions = {}): Promise<FlutterwaveSimulator> {
  const options = resolveFlwOptions(opts);
  const core = new FlutterwaveCore(options);
  const server = createServer(core);
  const port = await listen(server, options.port, options.host);
  const url = `http://${urlHost(options.host)}:${port}`;
  core.publicUrl = options.publicUrl ?? url;
  let closing: Promise<void> | undefined;

  const simulator: FlutterwaveSimulator = {
    url,
    port,
    publicUrl: core.publicUrl,
    close() {
      if (!closing) {
        core.shutdown();
        closing = closeServer(server);
      }
      return closing;
    },
    stats: () => core.stats(),
    reset: (o) => core.reset(o?.full === true),
    setFaults: (f) => core.setFaults(f),
    faults: () => core.currentFaults(),
    configure: (s) => core.configure(s),
    settings: () => core.settings(),
    addMerchant: (m) => core.addMerchant(m),
    apiCalls: () => core.apiCalls(),
    checkouts: () => core.listCheckouts(),
    getCheckout: (txRef) => core.getCheckout(txRef),
    transactions: () => core.listTransactions(),
    getTransaction: (id) => core.getTransaction(id),
    refunds: () => core.listRefunds(),
    webhooks: () => core.webhooks(),
    waitForWebhooks: (txRef, count = 1, timeoutMs = 5000) => core.waitForWebhooks(txRef, count, timeoutMs),
    flushWebhooks: () => core.flushWebhooks(),
    complete: async (txRef, outcome) => {
      const settlement: FlwSettlement = typeof outcome === 'string' ? { outcome } : outcome;
      return core.settle(txRef, settlement);
    },
    tamper: (txRef, t) => core.tamper(txRef, t),
    completeRefund: async (id) => core.completeRefund(id),
    failRefund: async (id) => core.failRefund(id),
    planRefunds: (plan) => core.planRefunds(plan),
  };
  core.log(`Flutterwave simulator listening on ${url}`);
  return Object.freeze(simulator);
}
