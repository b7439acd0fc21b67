import type { OpenAPIObject } from '@nestjs/swagger';
import { buildOpenApi } from '../src/bootstrap';
import { ERROR_CODES } from '../src/common/error-codes';
import { AllProviders, startWithAllProviders } from './helpers/all-providers';

type Operation = NonNullable<OpenAPIObject['paths'][string]['get']>;
const METHODS = ['get', 'put', 'post', 'delete', 'patch'] as const;

function operations(doc: OpenAPIObject): { method: (typeof METHODS)[number]; path: string; op: Operation }[] {
  return Object.entries(doc.paths).flatMap(([path, item]) =>
    METHODS.filter((m) => item[m]).map((method) => ({ method, path, op: item[method]! })),
  );
}

/** A concrete URL for a templated path: every {param} gets a harmless placeholder. */
function concrete(path: string): string {
  return path.replace(/\{([^}]+)\}/g, (_, name: string) => (name === 'provider' ? 'mpesa' : `${name}-1`));
}

// The exported OpenAPI document is what the POS client is generated from and what Swagger's
// "Try it out" sends: every path parameter must be declared, and every operation must say whether
// it needs the bearer token, and say it truthfully.
describe('the OpenAPI document', () => {
  let all: AllProviders;
  let doc: OpenAPIObject;

  beforeAll(async () => {
    all = await startWithAllProviders({
      flwSecretKey: 'FLWSECK_TEST-openapi',
      flwSecretHash: 'openapi-hash',
      env: { PUBLIC_BASE_URL: 'https://pay.example.co.ke' },
    });
    doc = buildOpenApi(all.t.app);
  });
  afterAll(async () => {
    await all?.close();
  });

  it('names the server it describes', () => {
    expect(doc.servers).toEqual([{ url: 'https://pay.example.co.ke', description: expect.any(String) }]);
  });

  it('declares every {param} of every path as a required path parameter', () => {
    const missing: string[] = [];
    for (const { method, path, op } of operations(doc)) {
      for (const [, name] of path.matchAll(/\{([^}]+)\}/g)) {
        const declared = (op.parameters ?? []).find(
          (p) => 'name' in p && p.name === name && p.in === 'path' && p.required === true,
        );
        if (!declared) missing.push(`${method.toUpperCase()} ${path}: {${name}}`);
      }
    }
    expect(missing).toEqual([]);
  });

  it('gives every operation a security requirement: bearer or explicitly public', () => {
    const ops = operations(doc);
    expect(ops.length).toBeGreaterThan(30);
    const wrong = ops
      .filter(({ op }) => !Array.isArray(op.security) || (op.security.length > 0 && !op.security[0].bearer))
      .map(({ method, path }) => `${method.toUpperCase()} ${path}`);
    expect(wrong).toEqual([]);
    const publicOps = ops.filter(({ op }) => op.security!.length === 0).map(({ method, path }) => `${method} ${path}`);
    // The provider callbacks and webhooks, the browser's return pages and health are public.
    expect(publicOps).toEqual(
      expect.arrayContaining([
        'get /health',
        'post /payments/callback/{paymentId}/{token}',
        'post /payments/flutterwave/webhook',
        'get /payments/flutterwave/redirect',
        'get /payments/pesapal/callback',
        'get /payments/pesapal/return',
      ]),
    );
    expect(publicOps).not.toContain('post /payments/stk-push');
  });

  it('is truthful about security: a bearer operation refuses a request without a token, a public one does not ask for one', async () => {
    const lies: string[] = [];
    for (const { method, path, op } of operations(doc)) {
      const res = await all.t.http()[method](concrete(path));
      const askedForToken = res.status === 401 && /Authorization: Bearer/.test(String(res.body?.message));
      const bearer = op.security!.length > 0;
      if (bearer !== askedForToken)
        lies.push(
          `${method.toUpperCase()} ${path}: documented ${bearer ? 'bearer' : 'public'}, answered ${res.status}`,
        );
    }
    expect(lies).toEqual([]);
  });

  it('lists every error code the API can answer with as the enum of `code`', () => {
    const schemas = doc.components!.schemas as Record<string, { enum?: string[] }>;
    expect(schemas.ErrorCode.enum).toEqual([...ERROR_CODES]);
  });
});
