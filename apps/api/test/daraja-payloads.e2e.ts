/**
 * issue 8.15: the 25 real Daraja bodies in test/fixtures/daraja-payloads (STK callbacks and STK query
 * answers people received, 2017–2026; see its README) through
 *  - the callback parser and the STK query interpreter (DarajaService over HTTP to a fake Daraja that
 *    answers each recorded body verbatim, with its recorded HTTP status), and
 *  - the API over HTTP: each callback posted, as received, to a real payment's callback URL (its ids
 *    replaced by that payment's, nothing else touched) and to the bare URL; each query answer served
 *    to a real payment's status read,
 * each classified as its file name says, and none of its phone numbers in any log line.
 *
 * Classes come from the file names (the README's rule), written here from the documented meaning of
 * the words and codes, not computed by the code under test.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'drizzle-orm';
import { parseStkCallback } from '../src/payments/providers/mpesa/callback-parser';
import { CallbackShapeError } from '../src/payments/providers/mpesa/mpesa.errors';
import { captureLogs, FakeDaraja, makeService, okPush } from '../src/payments/providers/mpesa/fake-daraja.testing';
import { mapResultCode } from '../src/payments/providers/mpesa/result-codes';
import { LOG_DIR_ENV } from './log-scan/sink';
import { fullCheckoutRequestId, startTestApp, TestApp, waitFor } from './helpers/test-app';

const DIR = join(__dirname, 'fixtures', 'daraja-payloads');

interface Fixture {
  file: string;
  name: string;
  kind: 'callback' | 'query';
  source: string;
  note: string;
  httpStatus?: number;
  raw: string;
  body: unknown;
}

type Outcome = 'completed' | 'cancelled' | 'expired' | 'failed';
type Expected =
  | { kind: 'callback'; outcome: Outcome; resultCode: string; attributable: boolean }
  | { kind: 'query'; result: 'final'; outcome: Outcome; resultCode: string }
  | { kind: 'query'; result: 'pending' | 'not_found' };

const fixtures: Fixture[] = readdirSync(DIR)
  .filter((f) => f.endsWith('.json'))
  .sort()
  .map((file) => ({ file, ...(JSON.parse(readFileSync(join(DIR, file), 'utf8')) as Omit<Fixture, 'file'>) }));
const callbacks = fixtures.filter((f) => f.kind === 'callback');
const queries = fixtures.filter((f) => f.kind === 'query');

/** The outcome a Daraja ResultCode stands for (daraja.md §2.6), written out independently of result-codes.ts. */
function outcomeOfCode(code: string): Outcome {
  if (code === '0') return 'completed';
  if (code === '1032' || code === '1031') return 'cancelled';
  if (code === '1037' || code === '1036' || code === '1019') return 'expired';
  return 'failed';
}

/** What a fixture's file name says it is. Throws on a name no rule covers (a new fixture needs a class word). */
function expectedFromName(name: string): Expected {
  const code = (/-(\d+|e\d+)(?:-|$)/i.exec(name)?.[1] ?? '').toUpperCase();
  if (name.startsWith('cb')) {
    const rules: Array<[RegExp, Outcome, string?]> = [
      [/^cb\d+-success-/, 'completed', '0'],
      [/^cb\d+-balance-/, 'completed', '0'], // cb16: a success whose Balance is a string
      [/^cb\d+-cancel-/, 'cancelled'],
      [/^cb\d+-(timeout|smsc-ack-timeout|expired)-/, 'expired'],
      [/^cb\d+-(insufficient|wrong-pin)-/, 'failed'],
      [/^cb\d+-e3008-/, 'failed', 'E3008'],
    ];
    const hits = rules.filter(([re]) => re.test(name));
    if (hits.length !== 1) throw new Error(`fixture ${name}: no single class in its name`);
    const [, outcome, fixedCode] = hits[0]!;
    const resultCode = fixedCode ?? code;
    if (outcomeOfCode(resultCode) !== outcome)
      throw new Error(`fixture ${name}: code ${resultCode} does not fit its class ${outcome}`);
    return { kind: 'callback', outcome, resultCode, attributable: !name.includes('-e3008-') };
  }
  if (/^q\d+-final-/.test(name))
    return { kind: 'query', result: 'final', outcome: outcomeOfCode(code), resultCode: code };
  if (/^q\d+-pending-/.test(name)) return { kind: 'query', result: 'pending' };
  if (/^q\d+-unknown-/.test(name)) return { kind: 'query', result: 'not_found' };
  throw new Error(`fixture ${name}: no class in its name`);
}

function stkOf(f: Fixture): Record<string, unknown> {
  return (f.body as { Body: { stkCallback: Record<string, unknown> } }).Body.stkCallback;
}

/**
 * Every phone number a fixture carries: callback PhoneNumber values, and the national number that ends a
 * post-2022 CheckoutRequestID (ws_CO_ + ddMMyyyyHHmmss + 1-3 ms digits + 9 digits). Each in the forms a
 * log could show it: 2547…, 07…, and the bare national number.
 */
function phonesOf(f: Fixture): string[] {
  const national = new Set<string>();
  const text = f.raw;
  for (const m of text.matchAll(/"PhoneNumber","Value":"?(\d+)"?/g)) national.add(m[1]!.slice(-9));
  for (const m of text.matchAll(/ws_CO_(\d{24,})/g)) {
    const tail = m[1]!.slice(-9);
    if (/^[17]\d{8}$/.test(tail)) national.add(tail);
  }
  return [...national].flatMap((n) => [`254${n}`, `0${n}`, n]);
}

const ALL_PHONES = [...new Set(fixtures.flatMap(phonesOf))];

function expectNoFixturePhones(logText: string): void {
  const leaked = ALL_PHONES.filter((p) => logText.includes(p));
  expect(leaked).toEqual([]);
}

describe('issue 8.15: real Daraja payloads (test/fixtures/daraja-payloads)', () => {
  it('issue 8.15: the copy holds all 25 recorded bodies, each well-formed and named by its class', () => {
    expect(fixtures).toHaveLength(25);
    expect(callbacks).toHaveLength(17);
    expect(queries).toHaveLength(8);
    for (const f of fixtures) {
      expect(f.file).toBe(`${f.name}.json`);
      expect(JSON.parse(f.raw)).toEqual(f.body);
      expect(typeof f.source).toBe('string');
      if (f.kind === 'query') expect([200, 500]).toContain(f.httpStatus);
      expect(() => expectedFromName(f.name)).not.toThrow();
    }
    // The phone scan is not empty: the bodies do carry numbers (PhoneNumber items, id tails since 2022).
    expect(ALL_PHONES).toEqual(expect.arrayContaining(['254708374149', '254706803305', '722724071']));
  });

  // ------------------------------------------------------------------ parser and query interpreter

  describe('parser and STK query interpreter', () => {
    let logs: ReturnType<typeof captureLogs>;
    beforeEach(() => {
      logs = captureLogs();
    });
    afterEach(() => {
      logs.restore();
    });

    it.each(callbacks.map((f) => [f.name, f] as const))(
      'issue 8.15: callback %s is parsed as its name says, nothing logged',
      (_name, f) => {
        const expected = expectedFromName(f.name) as Extract<Expected, { kind: 'callback' }>;
        const body: unknown = JSON.parse(f.raw);
        if (!expected.attributable) {
          // No MerchantRequestID/CheckoutRequestID: nothing to tie it to; refused with a clear shape error, never a crash.
          expect(() => parseStkCallback(body)).toThrow(CallbackShapeError);
          expect(() => parseStkCallback(body)).toThrow(/MerchantRequestID/);
          expect(mapResultCode(stkOf(f)['ResultCode'] as string)).toBe(expected.outcome);
        } else {
          const parsed = parseStkCallback(body);
          expect(parsed).toMatchObject({
            outcome: expected.outcome,
            resultCode: expected.resultCode,
            checkoutRequestId: stkOf(f)['CheckoutRequestID'],
            merchantRequestId: stkOf(f)['MerchantRequestID'],
          });
          if (expected.outcome === 'completed') {
            const items = (stkOf(f)['CallbackMetadata'] as { Item: Array<{ Name: string; Value?: unknown }> }).Item;
            const item = (n: string) => items.find((i) => i.Name === n)?.Value;
            // 1, 1.00 and 100.0 are whole shillings; Balance (absent, valueless or a string) is ignored.
            expect(parsed.metadata).toEqual({
              amount: Number(item('Amount')),
              mpesaReceiptNumber: item('MpesaReceiptNumber'),
              transactionDate: String(item('TransactionDate')),
              phoneNumber: String(item('PhoneNumber')),
            });
            expect(Number.isInteger(parsed.metadata!.amount)).toBe(true);
          } else {
            expect(parsed.metadata).toBeUndefined();
          }
        }
        expectNoFixturePhones(logs.lines.join('\n'));
      },
    );

    describe('STK query answers, as recorded, over HTTP to DarajaService', () => {
      let fake: FakeDaraja;
      beforeEach(async () => {
        fake = new FakeDaraja();
        await fake.start();
      });
      afterEach(() => fake.close());

      it.each(queries.map((f) => [f.name, f] as const))(
        'issue 8.15: query answer %s is interpreted as its name says, no phone logged',
        async (_name, f) => {
          const expected = expectedFromName(f.name) as Extract<Expected, { kind: 'query' }>;
          fake.query = () => ({
            status: f.httpStatus!,
            body: f.raw,
            headers: { 'content-type': 'application/json;charset=UTF-8' },
          });
          const svc = makeService(fake.baseUrl);
          // Asked about the CheckoutRequestID the answer names (or, when it names none, one of the 2026 sandbox's).
          const asked =
            (JSON.parse(f.raw) as { CheckoutRequestID?: string }).CheckoutRequestID ?? 'ws_CO_170820261428262708374149';
          const r = await svc.queryStkStatus(asked);
          expect(fake.of('/mpesa/stkpushquery/v1/query')[0]!.json.CheckoutRequestID).toBe(asked);
          if (expected.result === 'final') {
            expect(r).toMatchObject({ kind: 'final', outcome: expected.outcome, resultCode: expected.resultCode });
          } else {
            expect(r.kind).toBe(expected.result);
          }
          expectNoFixturePhones(logs.lines.join('\n'));
        },
      );
    });
  });

  // ------------------------------------------------------------------ through the API

  describe('through the API over HTTP', () => {
    let dir: string;
    let previous: string | undefined;
    let auth: string;
    let n = 0;

    beforeAll(() => {
      // The apps below log everything (the scan's level) to files here, read back at the end.
      dir = mkdtempSync(join(tmpdir(), 'daraja-payloads-'));
      previous = process.env[LOG_DIR_ENV];
      process.env[LOG_DIR_ENV] = dir;
    });
    afterAll(() => {
      if (previous === undefined) delete process.env[LOG_DIR_ENV];
      else process.env[LOG_DIR_ENV] = previous;
      rmSync(dir, { recursive: true, force: true });
    });

    function logsWritten(): string {
      return readdirSync(dir)
        .filter((f) => f.endsWith('.log'))
        .map((f) => readFileSync(join(dir, f), 'utf8'))
        .join('\n');
    }

    async function order(t: TestApp, total: number): Promise<string> {
      const id = `ORD-PL-${++n}`;
      const res = await t.http().post('/orders').set('Authorization', auth).send({ id, total });
      expect(res.status).toBe(201);
      return id;
    }

    async function payment(t: TestApp, paymentId: string) {
      const res = await t.http().get(`/payments/${paymentId}`).set('Authorization', auth);
      expect(res.status).toBe(200);
      return res.body;
    }

    describe('callbacks (the simulator as Daraja)', () => {
      let t: TestApp;
      beforeAll(async () => {
        t = await startTestApp();
        auth = `Bearer ${t.token()}`;
      });
      afterAll(() => t.close());

      it.each(callbacks.map((f) => [f.name, f] as const))(
        "issue 8.15: callback %s, posted as received to its payment's URL, settles it as its name says",
        async (_name, f) => {
          const expected = expectedFromName(f.name) as Extract<Expected, { kind: 'callback' }>;
          const amountItem = (
            stkOf(f)['CallbackMetadata'] as { Item: Array<{ Name: string; Value?: unknown }> } | undefined
          )?.Item.find((i) => i.Name === 'Amount');
          const amount = amountItem ? Number(amountItem.Value) : 10;
          const orderId = await order(t, amount);
          // 254700000007: the simulator's customer never answers, so only the recorded callback decides.
          const pushed = await t
            .http()
            .post('/payments/stk-push')
            .set('Authorization', auth)
            .send({ phoneNumber: '254700000007', amount, orderId });
          expect(pushed.status).toBe(201);
          const { paymentId, merchantRequestId } = pushed.body as { paymentId: string; merchantRequestId: string };
          const checkoutRequestId = fullCheckoutRequestId(t.sim, pushed.body);
          const url = new URL(t.sim.getPush(checkoutRequestId)!.callbackUrl).pathname;

          // The body as received, with the recorded ids swapped for this payment's (Daraja calls back with ours).
          let raw = f.raw;
          const recordedCheckout = stkOf(f)['CheckoutRequestID'];
          const recordedMerchant = stkOf(f)['MerchantRequestID'];
          if (typeof recordedCheckout === 'string')
            raw = raw.split(JSON.stringify(recordedCheckout)).join(JSON.stringify(checkoutRequestId));
          if (typeof recordedMerchant === 'string')
            raw = raw.split(JSON.stringify(recordedMerchant)).join(JSON.stringify(merchantRequestId));
          const res = await t.http().post(url).set('Content-Type', 'application/json;charset=UTF-8').send(raw);

          if (!expected.attributable) {
            expect(res.status).toBe(400);
            expect(res.body).toMatchObject({ statusCode: 400, code: 'INVALID_CALLBACK' });
            expect((await payment(t, paymentId)).status).toBe('pending');
            const stored = (await t.db.execute(
              sql`select outcome from callback_inbox where raw_body = ${raw}`,
            )) as unknown as { rows?: { outcome: string }[] };
            expect((stored.rows ?? (stored as unknown as { outcome: string }[])).map((r) => r.outcome)).toEqual([
              'invalid_shape',
            ]);
            return;
          }
          expect(res.status).toBe(200);
          expect(res.body).toEqual({ ResultCode: 0, ResultDesc: 'Accepted' });
          const p = await payment(t, paymentId);
          expect(p).toMatchObject({
            status: expected.outcome,
            resultCode: expected.resultCode,
            resultDesc: stkOf(f)['ResultDesc'],
          });
          const o = await t.http().get(`/orders/${orderId}`).set('Authorization', auth);
          expect(o.body.status).toBe(expected.outcome === 'completed' ? 'paid' : 'unpaid');
          if (expected.outcome === 'completed') {
            const receipt = (
              stkOf(f)['CallbackMetadata'] as { Item: Array<{ Name: string; Value?: unknown }> }
            ).Item.find((i) => i.Name === 'MpesaReceiptNumber')!.Value;
            expect(p.mpesaReceiptNumber).toBe(receipt);
          }
        },
      );

      it('issue 8.15: every recorded callback, unmodified on the bare URL, is acknowledged (400 only for the one without ids), changing no payment', async () => {
        const count = (r: unknown) => ((r as { rows?: { c: number }[] }).rows ?? (r as { c: number }[]))[0]!.c;
        const states = async () => {
          const r = (await t.db.execute(
            sql`select string_agg(id::text || status, ',' order by id) as s from payments`,
          )) as unknown as { rows?: { s: string }[] };
          return (r.rows ?? (r as unknown as { s: string }[]))[0]!.s;
        };
        const paymentsBefore = await states();
        for (const f of callbacks) {
          const expected = expectedFromName(f.name) as Extract<Expected, { kind: 'callback' }>;
          const res = await t
            .http()
            .post('/payments/callback')
            .set('Content-Type', 'application/json;charset=UTF-8')
            .send(f.raw);
          if (expected.attributable)
            expect({ name: f.name, status: res.status, body: res.body }).toEqual({
              name: f.name,
              status: 200,
              body: { ResultCode: 0, ResultDesc: 'Accepted' },
            });
          else
            expect({ name: f.name, status: res.status, code: res.body.code }).toEqual({
              name: f.name,
              status: 400,
              code: 'INVALID_CALLBACK',
            });
        }
        // None names a payment of ours: each is confirmed by STK query or marked unknown, never applied.
        await waitFor(
          async () => {
            const r = (await t.db.execute(
              sql`select count(*)::int as c from callback_inbox where processed_at is null`,
            )) as unknown as { rows?: { c: number }[] };
            return count(r) === 0;
          },
          10_000,
          100,
        );
        expect(await states()).toBe(paymentsBefore);
      });

      it('issue 8.15: no phone number of any payload reached the app or simulator log', () => {
        const written = logsWritten();
        expect(written).toContain('/payments/callback'); // the app did log this part (at the scan's level)
        expectNoFixturePhones(written);
      });
    });

    describe('STK query answers (a fake Daraja answering each recorded body)', () => {
      let t: TestApp;
      let fake: FakeDaraja;
      /** CheckoutRequestID the fake gave each push → the recorded answer it gives STK queries about it. */
      const answers = new Map<string, Fixture>();
      let nextPush: Fixture | undefined;
      let seq = 0;

      beforeAll(async () => {
        fake = new FakeDaraja();
        await fake.start();
        fake.push = () => {
          const f = nextPush!;
          const named = JSON.parse(f.raw) as { CheckoutRequestID?: string; MerchantRequestID?: string };
          // The recorded answer's own ids when it has them (a query answer is about the id asked for), else fresh ones.
          const id = named.CheckoutRequestID ?? `ws_CO_0101202600000000${String(++seq).padStart(4, '0')}`;
          answers.set(id, f);
          const ok = okPush();
          return {
            ...ok,
            body: {
              ...(ok.body as object),
              CheckoutRequestID: id,
              MerchantRequestID: named.MerchantRequestID ?? `mr-${seq}`,
            },
          };
        };
        fake.query = (req) => {
          const f = answers.get(String(req.json?.CheckoutRequestID));
          if (!f)
            return {
              status: 500,
              body: { requestId: 'x', errorCode: '500.001.1001', errorMessage: 'The transaction does not Exist' },
            };
          return { status: f.httpStatus!, body: f.raw, headers: { 'content-type': 'application/json;charset=UTF-8' } };
        };
        t = await startTestApp({ env: { MPESA_BASE_URL: fake.baseUrl, RECONCILER_ENABLED: 'false' } });
        auth = `Bearer ${t.token()}`;
      });
      afterAll(async () => {
        await t.close();
        await fake.close();
      });

      it.each(queries.map((f) => [f.name, f] as const))(
        'issue 8.15: query answer %s, to a status read, leaves the payment as its name says',
        async (_name, f) => {
          const expected = expectedFromName(f.name) as Extract<Expected, { kind: 'query' }>;
          const orderId = await order(t, 1);
          nextPush = f;
          const pushed = await t
            .http()
            .post('/payments/stk-push')
            .set('Authorization', auth)
            .send({ phoneNumber: '0722000111', amount: 1, orderId });
          expect(pushed.status).toBe(201);
          const queriesBefore = fake.count('/mpesa/stkpushquery/v1/query');
          const p = await payment(t, pushed.body.paymentId);
          expect(fake.count('/mpesa/stkpushquery/v1/query')).toBe(queriesBefore + 1);
          if (expected.result === 'final') {
            expect(p).toMatchObject({ status: expected.outcome, resultCode: expected.resultCode });
          } else {
            // Pending, and "does not exist" shortly after the push (MPESA_NOT_FOUND_FAIL_AFTER_SECONDS, 120 s): still pending, never failed.
            expect(p).toMatchObject({ status: 'pending', resultCode: null });
          }
        },
      );

      it('issue 8.15: no phone number of any payload reached the app log (the Daraja client logged every push and query)', () => {
        const written = logsWritten();
        expect(written).toContain('STK push accepted');
        expect(written).toContain('/mpesa/stkpushquery/v1/query');
        expectNoFixturePhones(written);
      });
    });
  });
});
