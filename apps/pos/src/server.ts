import { build } from 'esbuild';
import { readFileSync } from 'node:fs';
import { createServer, IncomingMessage, ServerResponse } from 'node:http';
import { AddressInfo } from 'node:net';
import { join } from 'node:path';

const WEB_DIR = join(__dirname, '..', 'web');

export interface PosServerOptions {
  /** 0 = any free port */
  port: number;
  /** default 127.0.0.1: the page carries a token, so it is not offered to the whole network by default */
  host?: string;
  /** The API origin the browser calls, e.g. http://localhost:3000 (a function: read per request). */
  apiBaseUrl: string | (() => string);
  /** The cashier's JWT put into /config.js (a function: minted per page load, so a reload never carries an expired one). */
  token: string | (() => string);
}

export interface PosServer {
  port: number;
  /** http://<host>:<port> as the server listens */
  url: string;
  close(): Promise<void>;
}

interface Asset {
  type: string;
  body: Buffer | string;
}

/** Bundles web/main.ts (and the api-client, qrcode) for the browser, in memory. */
export async function bundlePos(): Promise<{ js: string; map: string }> {
  const result = await build({
    entryPoints: [join(WEB_DIR, 'main.ts')],
    bundle: true,
    write: false,
    outfile: 'app.js',
    platform: 'browser',
    format: 'iife',
    target: ['es2020'],
    minify: true,
    sourcemap: 'external',
    legalComments: 'none',
    logLevel: 'silent',
  });
  const js = result.outputFiles.find((f) => f.path.endsWith('app.js'));
  const map = result.outputFiles.find((f) => f.path.endsWith('app.js.map'));
  if (!js || !map) throw new Error('esbuild produced no bundle');
  return { js: `${js.text}\n//# sourceMappingURL=/app.js.map\n`, map: map.text };
}

/** `window.SMARTDUKA_POS = {...}`, safe to serve as a script (no `</script>` break-out). */
export function configScript(apiBaseUrl: string, token: string): string {
  const json = JSON.stringify({ apiBaseUrl, token })
    .replace(/</g, '\\u003c')
    .replace(/\u2028|\u2029/g, '');
  return `window.SMARTDUKA_POS = ${json};\n`;
}

/**
 * The checkout screen's dev server: index.html, the bundle built at start, and /config.js with
 * the API's address and a token. `pnpm dev` starts it next to the API (development only).
 */
export async function startPosServer(options: PosServerOptions): Promise<PosServer> {
  const bundle = await bundlePos();
  const assets: Record<string, Asset> = {
    '/': { type: 'text/html; charset=utf-8', body: readFileSync(join(WEB_DIR, 'index.html')) },
    '/app.css': { type: 'text/css; charset=utf-8', body: readFileSync(join(WEB_DIR, 'app.css')) },
    '/app.js': { type: 'text/javascript; charset=utf-8', body: bundle.js },
    '/app.js.map': { type: 'application/json; charset=utf-8', body: bundle.map },
  };
  const value = (v: string | (() => string)) => (typeof v === 'function' ? v() : v);
  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const path = new URL(req.url ?? '/', 'http://pos').pathname;
    const headers = {
      'Cache-Control': 'no-store',
      'X-Content-Type-Options': 'nosniff',
      'Referrer-Policy': 'no-referrer',
      'X-Frame-Options': 'DENY',
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { ...headers, Allow: 'GET, HEAD', 'Content-Type': 'text/plain' }).end('Method not allowed\n');
      return;
    }
    let asset = assets[path === '/index.html' ? '/' : path];
    // The token is for this page only: another site the developer visits could otherwise include
    // <script src="http://localhost:5173/config.js"> and read it. Browsers say who asks (Fetch Metadata).
    const site = req.headers['sec-fetch-site'];
    if (path === '/config.js' && site !== undefined && site !== 'same-origin' && site !== 'none') {
      res.writeHead(403, { ...headers, 'Content-Type': 'text/plain' }).end('config.js is for the POS page itself\n');
      return;
    }
    if (path === '/config.js')
      asset = {
        type: 'text/javascript; charset=utf-8',
        body: configScript(value(options.apiBaseUrl), value(options.token)),
      };
    if (!asset) {
      res.writeHead(404, { ...headers, 'Content-Type': 'text/plain' }).end('Not found\n');
      return;
    }
    res.writeHead(200, { ...headers, 'Content-Type': asset.type });
    res.end(req.method === 'HEAD' ? undefined : asset.body);
  };
  const server = createServer(handle);
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
