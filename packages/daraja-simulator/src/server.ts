/** node:http server wiring: routes /__sim/* to the control API and everything else to the Daraja endpoints. */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { CONTROL_PREFIX, ControlRoutes } from './control-routes';
import type { SimulatorCore } from './core';
import { DarajaRoutes } from './daraja-routes';
import { ERRORS } from './errors';
import { sendDarajaError } from './http';

export function createSimulatorServer(core: SimulatorCore): http.Server {
  const daraja = new DarajaRoutes(core);
  const control = new ControlRoutes(core);

  return http.createServer((req, res) => {
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://simulator.local');
    } catch {
      sendDarajaError(res, ERRORS.resourceNotFound);
      return;
    }
    const isControl = url.pathname === CONTROL_PREFIX || url.pathname.startsWith(`${CONTROL_PREFIX}/`);
    const handled = isControl ? control.handle(req, res, url) : daraja.handle(req, res, url);
    handled.catch((err: unknown) => {
      core.log(
        `internal error on ${req.method ?? '?'} ${url.pathname}: ${err instanceof Error ? err.message : String(err)}`,
      );
      sendDarajaError(res, ERRORS.internalError);
    });
  });
}

export function listen(server: http.Server, port: number, host: string): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const onError = (err: Error): void => reject(err);
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

export function closeServer(server: http.Server): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    if (!server.listening) {
      resolve();
      return;
    }
    server.close((err) => (err ? reject(err) : resolve()));
    server.closeAllConnections();
  });
}
