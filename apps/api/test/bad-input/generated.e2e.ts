/**
 * The generated bad-input corpus (generate.ts) over HTTP against the real app, a real database and
 * the Daraja simulator: every case gets its exact 4xx (or, for a well-formed callback naming no
 * payment, Daraja's ack), never a 5xx, with the public error shape, and changes nothing but the
 * callback audit inbox (see harness.ts for the whole contract and the fixtures).
 */
import { startTestApp, TestApp } from '../helpers/test-app';
import { generatedCases } from './generate';
import { bearer, checkCase, expectFixturesUntouched, setupFixtures } from './harness';

/** The corpus may grow, never shrink below this. */
export const MIN_GENERATED_CASES = 200;

const cases = generatedCases();

describe(`generated bad input (${cases.length} cases): the exact 4xx, never a 5xx, nothing changed`, () => {
  let t: TestApp;
  let auth: string;

  beforeAll(async () => {
    t = await startTestApp();
    auth = bearer(t.token());
    await setupFixtures(t, auth);
  });

  afterAll(async () => {
    await t?.close();
  });

  it(`has at least ${MIN_GENERATED_CASES} distinct cases covering every endpoint`, () => {
    expect(cases.length).toBeGreaterThanOrEqual(MIN_GENERATED_CASES);
    expect(new Set(cases.map((c) => c.name)).size).toBe(cases.length);
    const count = (prefix: string) => cases.filter((c) => c.name.startsWith(prefix)).length;
    for (const prefix of [
      'POST /orders:',
      'GET /orders/:id:',
      'stk-push:',
      'stk-status:',
      'GET /payments/:id:',
      'callback:',
      'callback URL',
      'statements:',
      'release:',
      'JWT on ',
      'duplicated key:',
    ]) {
      expect({ prefix, count: count(prefix) }).toEqual({ prefix, count: expect.any(Number) });
      expect(count(prefix)).toBeGreaterThanOrEqual(5);
    }
  });

  test.each(cases)('$name → $status', (c) => checkCase(t, auth, c));

  it('left the fixtures as they were', () => expectFixturesUntouched(t, auth));
});
