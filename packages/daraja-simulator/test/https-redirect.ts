/**
 * Test-process interception of node:https: requests to the given hosts go, as plain HTTP, to a local
 * server instead; any other HTTPS request fails at once (tests have no network). Lets a published Daraja
 * client that hard-codes https://sandbox.safaricom.co.ke run unmodified against the simulator.
 *
 * Works at the core-module layer (`https.request` / `https.get` looked up on the module object), which is
 * where both axios 0.18 (through follow-redirects) and hand-written `https.request` clients end up.
 */
import http from 'node:http';
import https from 'node:https';

export interface RedirectedCall {
  method: string;
  /** the URL the client asked for, e.g. https://sandbox.safaricom.co.ke/oauth/v1/generate?... */
  url: string;
}

export interface HttpsRedirect {
  calls: RedirectedCall[];
  restore(): void;
}

type Callback = (res: http.IncomingMessage) => void;

function optionsOf(args: unknown[]): { options: https.RequestOptions; callback?: Callback } {
  let options: https.RequestOptions = {};
  let callback: Callback | undefined;
  for (const arg of args) {
    if (typeof arg === 'function') callback = arg as Callback;
    else if (typeof arg === 'string' || arg instanceof URL) {
      const u = new URL(String(arg));
      options = {
        ...options,
        protocol: u.protocol,
        hostname: u.hostname,
        port: u.port || undefined,
        path: `${u.pathname}${u.search}`,
      };
    } else if (arg && typeof arg === 'object') options = { ...options, ...(arg as https.RequestOptions) };
  }
  return { options, callback };
}

export function redirectHttps(hosts: readonly string[], target: { host: string; port: number }): HttpsRedirect {
  const calls: RedirectedCall[] = [];
  const originalRequest = https.request;
  const originalGet = https.get;

  const redirected = (...args: unknown[]): http.ClientRequest => {
    const { options, callback } = optionsOf(args);
    const hostname = String(options.hostname ?? options.host ?? '').replace(/:\d+$/, '');
    const path = options.path ?? '/';
    if (!hosts.includes(hostname)) {
      throw new Error(`test network guard: HTTPS request to ${hostname || '(no host)'} refused (no network in tests)`);
    }
    calls.push({ method: String(options.method ?? 'GET').toUpperCase(), url: `https://${hostname}${path}` });
    const { agent: _agent, ...rest } = options as https.RequestOptions & {
      agents?: unknown;
      nativeProtocols?: unknown;
    };
    const plain: http.RequestOptions = {
      ...rest,
      protocol: 'http:',
      hostname: target.host,
      host: target.host,
      port: target.port,
      path,
      agent: false,
    };
    delete (plain as { agents?: unknown }).agents;
    delete (plain as { nativeProtocols?: unknown }).nativeProtocols;
    return callback ? http.request(plain, callback) : http.request(plain);
  };

  (https as { request: unknown }).request = redirected;
  (https as { get: unknown }).get = (...args: unknown[]): http.ClientRequest => {
    const req = redirected(...args);
    req.end();
    return req;
  };
  return {
    calls,
    restore() {
      (https as { request: unknown }).request = originalRequest;
      (https as { get: unknown }).get = originalGet;
    },
  };
}
