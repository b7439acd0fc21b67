/** startPesapalSimulator: node:http server wiring the API 3.0 endpoints, the payment page and /__sim control routes. */
import http from 'node:http';
import { CONTROL_PREFIX } from '../shared/control';
import { messagePage } from '../shared/html';
import { htmlReply, logPath, writeReply, type Reply } from '../shared/http';
import { closeServer, listen, urlHost } from '../shared/server';
import {
  aspNetMethodNotAllowed,
  aspNetNotFound,
  isPesapalApiPath,
  matchPesapalApiRoute,
  PesapalApiRoutes,
} from './api-routes';
import { PESAPAL_CHECKOUT_PATH, PesapalCheckoutPage } from './checkout-page';
import { PesapalControlRoutes } from './control-routes';
import { PesapalCore } from './core';
import { resolvePesapalOptions } from './options';
import { cloudflareBlockPage, serviceUnavailablePage } from './payloads';
import type { PesapalEndpoint, PesapalSettlement, PesapalSimulator, PesapalSimulatorOptions } from './types';

function createServer(core: PesapalCore): http.Server {
  const api = new PesapalApiRoutes(core);
  const page = new PesapalCheckoutPage(core, core.options.merchantName);
  const control = new PesapalControlRoutes(core);

  async function route(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://simulator.local');
    } catch {
      writeReply(res, htmlReply(400, messagePage('Bad request', 'error', 'Malformed request URL', 'error')));
      return;
    }
    const method = req.method ?? 'GET';
    if (url.pathname === CONTROL_PREFIX || url.pathname.startsWith(`${CONTROL_PREFIX}/`)) {
      writeReply(res, await control.handle(req, url));
      return;
    }

    let endpoint: PesapalEndpoint | undefined;
    let run: (() => Promise<Reply>) | undefined;
    const apiRoute = matchPesapalApiRoute(url.pathname);
    if (PESAPAL_CHECKOUT_PATH.test(url.pathname)) {
      endpoint = 'checkout';
      core.count('checkout', method === 'POST');
      run = () => page.handle(req, url);
    } else if (apiRoute) {
      endpoint = apiRoute.endpoint;
      core.count(apiRoute.endpoint);
      run = method === apiRoute.method ? () => api.handle(req, url, apiRoute) : undefined;
    }

    let reply: Reply;
    if (core.isDown()) {
      req.resume();
      reply = {
        ...htmlReply(503, serviceUnavailablePage()),
        headers: { 'Content-Type': 'text/html; charset=utf-8', Server: 'cloudflare' },
      };
    } else if (endpoint !== 'checkout' && (apiRoute || isPesapalApiPath(url.pathname)) && core.takeCloudflareBlock()) {
      req.resume();
      reply = {
        ...htmlReply(403, cloudflareBlockPage()),
        headers: { 'Content-Type': 'text/html; charset=UTF-8', Server: 'cloudflare' },
      };
    } else if (!endpoint) {
      req.resume();
      reply = aspNetNotFound(`${core.publicUrl}${url.pathname}${url.search}`);
    } else if (!run) {
      req.resume();
      reply = aspNetMethodNotAllowed(method);
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
      writeReply(
        res,
        htmlReply(500, messagePage('Internal error', 'error', 'The simulator failed to handle this request.', 'error')),
      );
    });
  });
}

export async function startPesapalSimulator(opts: PesapalSimulatorOptions = {}): Promise<PesapalSimulator> {
  const options = resolvePesapalOptions(opts);
  const core = new PesapalCore(options);
  const server = createServer(core);
  const port = await listen(server, options.port, options.host);
  const url = `http://${urlHost(options.host)}:${port}`;
  core.publicUrl = options.publicUrl ?? url;
  let closing: Promise<void> | undefined;

  const simulator: PesapalSimulator = {
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
    ipnRegistrations: () => core.listIpns(),
    orders: () => core.listOrders(),
    getOrder: (ref) => core.getOrder(ref),
    ipns: () => core.ipnDeliveries(),
    waitForIpns: (trackingId, count = 1, timeoutMs = 5000) => core.waitForIpns(trackingId, count, timeoutMs),
    flushIpns: () => core.flushIpns(),
    complete: async (ref, outcome) => {
      const settlement: PesapalSettlement = typeof outcome === 'string' ? { outcome } : outcome;
      return core.settle(ref, settlement);
    },
    tamper: (ref, t) => core.tamper(ref, t),
    reverse: async (ref) => core.reverse(ref),
    decideRefund: async (ref, decision) => core.decideRefund(ref, decision),
    invalidateTokens: () => core.invalidateTokens(),
  };
  core.log(`Pesapal simulator listening on ${url}`);
  return Object.freeze(simulator);
}
