import type { OpenAPIObject } from '@nestjs/swagger';
import { buildOpenApi } from '../src/bootstrap';
import { ERROR_CODES } from '../src/common/error-codes';
import { AllProviders, startWithAllProviders } from './helpers/all-providers';

type Operation = NonNullable<OpenAPIObject['paths'][string]['get']>;
const METHODS = ['get', 'put', 'post', 'delete', 'patch'] as const;

interface Example {
  value: { statusCode: number; code: string };
}

/** The examples of an operation's JSON error answer with this status. */
function errorExamples(op: Operation, status: string): Example[] | undefined {
  const response = op.responses[status] as { content?: Record<string, { examples?: Record<string, Example> }> };
  const examples = response?.content?.['application/json']?.examples;
  return examples && Object.values(examples);
}

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

  it('shows each error status with examples of its own status and real codes', () => {
    const wrong: string[] = [];
    let documented = 0;
    for (const { method, path, op } of operations(doc)) {
      const seen = new Map<string, string>();
      for (const status of Object.keys(op.responses).filter((s) => Number(s) >= 400)) {
        const response = op.responses[status] as { content?: Record<string, { schema?: { $ref?: string } }> };
        // The error shape only (hosted pages answer errors in HTML; /health's 503 is its own body).
        if (!/ErrorResponseDto$/.test(response.content?.['application/json']?.schema?.$ref ?? '')) continue;
        documented++;
        const examples = errorExamples(op, status);
        const where = `${method.toUpperCase()} ${path} ${status}`;
        if (!examples?.length) wrong.push(`${where}: no example`);
        for (const e of examples ?? []) {
          if (e.value.statusCode !== Number(status)) wrong.push(`${where}: example says ${e.value.statusCode}`);
          if (!(ERROR_CODES as readonly string[]).includes(e.value.code)) wrong.push(`${where}: ${e.value.code}`);
          if (seen.has(e.value.code)) wrong.push(`${where}: ${e.value.code} also shown for ${seen.get(e.value.code)}`);
          seen.set(e.value.code, status);
        }
      }
    }
    expect(documented).toBeGreaterThan(60);
    expect(wrong).toEqual([]);
    const notFound = errorExamples(doc.paths['/orders/{id}'].get!, '404')!;
    expect(notFound.map((e) => e.value.code)).toEqual(['NOT_FOUND']);
    const conflict = errorExamples(doc.paths['/payments/stk-push'].post!, '409')!;
    expect(conflict.map((e) => e.value.code)).toContain('PAYMENT_IN_PROGRESS');
  });

  it('shows the till / paybill routes with their own codes and says what the feed lists', () => {
    const codes = (path: string, method: 'get' | 'post', status: string) =>
      (errorExamples(doc.paths[path][method]!, status) ?? []).map((e) => e.value.code);
    expect(codes('/payments/c2b/{id}/claim', 'post', '409')).toEqual(
      expect.arrayContaining(['C2B_ALREADY_CLAIMED', 'C2B_NEEDS_REVIEW', 'ORDER_ALREADY_PAID']),
    );
    expect(codes('/payments/c2b/{id}/claim', 'post', '409')).not.toContain('IDEMPOTENCY_KEY_REUSED');
    expect(codes('/shops/{shopId}/c2b-registration', 'post', '409')).toEqual([
      'C2B_NOT_AVAILABLE',
      'C2B_ALREADY_REGISTERED',
    ]);
    expect(codes('/shops/{shopId}/c2b-registration', 'get', '409')).toEqual(['C2B_NOT_AVAILABLE']);
    expect(codes('/payments/c2b/{accountId}/confirmation/{token}', 'post', '404')).toEqual(['NOT_FOUND']);
    expect(doc.paths['/payments/c2b/unclaimed'].get!.description).toMatch(/claim/);
  });
});
