import net from 'node:net';
import { sql } from 'drizzle-orm';
import { scopedCallbackToken } from '../src/payments/providers/mpesa/callback-token';
import { C2bTestContext, PAYBILL, startC2bTestApp, STORE } from './helpers/c2b';
import { countSql, isListenConnection } from './helpers/sql-count';
import { startExtraTestApp, TEST_CALLBACK_SECRET } from './helpers/test-app';

/**
 * What one C2B confirmation costs the database (issue 13 / bench/README.md §8), counted on pg's
 * Client.prototype.query while the real app serves POST /payments/c2b/:accountId/confirmation/:token
 * on Postgres, with the MSISDN in C2B v2's SHA-256 form as bench/c2b.bench.ts sends it. Before this
 * test: a repeat 4 statements, a new till payment 6, a new paybill payment 19, one commit each. A
 * change that adds a statement to a confirmation fails here, naming the statements.
 */
const onPostgres = Boolean(process.env.DATABASE_URL);
(onPostgres ? describe : describe.skip)(
  'C2B confirmation: SQL statements and commits per confirmation (Postgres)',
  () => {
    /** statements / commits: BEGIN and COMMIT included; an autocommit write is a commit */
    const LIMITS = {
      // Repeat and till include one read: has the shop another account row? (after a credential
      // rotation the Pull pass stores under the current row while confirmations arrive on the old,
      // so the TransID is then stored under the shop's lock of it, looking under every row). The
      // others include that lock and that look.
      repeat: { statements: 2, commits: 1 },
      till: { statements: 2, commits: 1 },
      paybill: { statements: 13, commits: 1 },
      paybillRepeat: { statements: 5, commits: 1 },
      /** a plain MSISDN: its hash may settle a push of unknown outcome, so matched in a transaction */
      tillPlain: { statements: 8, commits: 1 },
    };
    const METRICS_TOKEN = 'c2b-cost-metrics-token-0123456789';
    let c: C2bTestContext;
    let counter: ReturnType<typeof countSql>;
    let n = 0;

    beforeAll(async () => {
      c = await startC2bTestApp({ env: { RECONCILER_ENABLED: 'false', METRICS_TOKEN } });
      counter = countSql(isListenConnection);
    });
    afterAll(async () => {
      counter?.stop();
      await c?.close();
    });

    const urlOf = (
      accountId: string,
      token = scopedCallbackToken(TEST_CALLBACK_SECRET, 'c2b-confirmation', accountId),
    ) => `/payments/c2b/${accountId}/confirmation/${token}`;
    const confirmation = (
      transId: string,
      shortcode: string,
      amount: number,
      billRef?: string,
      msisdn = 'a'.repeat(64),
    ) => ({
      TransactionType: billRef ? 'Pay Bill' : 'Buy Goods',
      TransID: transId,
      TransTime: '20261203101500',
      TransAmount: `${amount}.00`,
      BusinessShortCode: shortcode,
      BillRefNumber: billRef ?? '',
      InvoiceNumber: '',
      OrgAccountBalance: '41880264.80',
      ThirdPartyTransID: '',
      MSISDN: msisdn,
      FirstName: 'John',
      MiddleName: '',
      LastName: 'Doe',
    });

    /** The statements one confirmation sends, from its start to its answer (and a moment after). */
    async function cost(accountId: string, body: Record<string, unknown>) {
      await new Promise((r) => setTimeout(r, 20));
      counter.reset();
      const res = await c.t.http().post(urlOf(accountId)).send(body);
      expect(res.status).toBe(200);
      expect(res.text).toBe('{"ResultCode":0,"ResultDesc":"Success"}');
      await new Promise((r) => setTimeout(r, 50));
      const seen = { statements: counter.statements, commits: counter.commits, byText: [...counter.byText] };
      counter.reset();
      return seen;
    }
    function within(what: keyof typeof LIMITS, seen: Awaited<ReturnType<typeof cost>>) {
      const max = LIMITS[what];
      if (seen.statements > max.statements || seen.commits > max.commits)
        throw new Error(
          `${what}: ${seen.statements} statements, ${seen.commits} commits (at most ${max.statements} / ${max.commits}):\n${JSON.stringify(seen.byText, null, 1)}`,
        );
      // It really counted the confirmation (the write).
      expect(seen.byText.some(([text]) => /c2b_transactions/.test(text))).toBe(true);
    }
    const accountsRead = (seen: Awaited<ReturnType<typeof cost>>) =>
      seen.byText.filter(([text]) => /merchant_accounts/.test(text)).reduce((a, [, k]) => a + k, 0);

    it(`a new till payment: ${LIMITS.till.statements} statements, into the feed; a repeat: ${LIMITS.repeat.statements}, counted on its row`, async () => {
      // warm: the account's route fields are read once, then cached (and whether it has siblings, each time)
      const warm = await cost(c.accountB, confirmation(`TCW${++n}XXXXX`, STORE, 10));
      expect(accountsRead(warm)).toBe(2);
      for (let i = 0; i < 3; i++) {
        const transId = `TCT${++n}XXXXX`;
        const till = await cost(c.accountB, confirmation(transId, STORE, 10));
        within('till', till);
        expect(accountsRead(till)).toBe(1);
        expect(await c.c2bRow(transId)).toMatchObject({
          status: 'unclaimed',
          status_reason: 'NO_REFERENCE',
          deliveries: 1,
          shop_id: 'shop-b',
        });
        const repeat = await cost(c.accountB, confirmation(transId, STORE, 10));
        within('repeat', repeat);
        expect(repeat.byText.some(([text]) => /^begin/i.test(text))).toBe(false);
        expect(await c.c2bRow(transId)).toMatchObject({ status: 'unclaimed', deliveries: 2 });
      }
      const plain = `TCT${++n}PLAIN`;
      within('tillPlain', await cost(c.accountB, confirmation(plain, STORE, 10, undefined, '254708374149')));
      expect(await c.c2bRow(plain)).toMatchObject({ status: 'unclaimed', msisdn_form: 'plain' });
      const feed = await c.t.http().get('/payments/c2b/unclaimed').set('Authorization', c.cashier('shop-b'));
      expect(feed.body.filter((f: { receipt: string }) => f.receipt.startsWith('TCT'))).toHaveLength(4);
    });

    it(`a new paybill payment: at most ${LIMITS.paybill.statements} statements in one commit, applied through the core with both its events; a repeat: ${LIMITS.paybillRepeat.statements}`, async () => {
      // warm: the account's route fields (a reference naming no order: into the feed, NO_ORDER)
      await cost(c.accountA, confirmation(`TCPW${++n}XXXX`, PAYBILL, 100, 'NO-SUCH-ORDER'));
      expect((await c.c2bRow(`TCPW${n}XXXX`)).status_reason).toBe('NO_ORDER');
      for (let i = 0; i < 3; i++) {
        const orderId = `CPB-${++n}`;
        await c.order('shop-a', orderId, 100);
        const transId = `TCP${n}XXXXX`;
        const paybill = await cost(c.accountA, confirmation(transId, PAYBILL, 100, orderId));
        within('paybill', paybill);
        expect(accountsRead(paybill)).toBe(0);
        // The receipt is looked up once; the order locked and weighed once.
        const count = (re: RegExp) => paybill.byText.filter(([text]) => re.test(text)).reduce((a, [, k]) => a + k, 0);
        expect(count(/^select .* from "payments" where "payments"."mpesa_receipt_number" = \$1$/)).toBe(1);
        expect(count(/^update "orders" set "paid_at" = "orders"."paid_at"/)).toBe(1);
        expect(count(/for update/i)).toBe(0);
        const [p] = await c.paymentsWithReceipt(transId);
        expect(p).toMatchObject({
          status: 'completed',
          status_reason: 'PAID',
          order_id: orderId,
          amount_minor: '10000',
        });
        const events = await c.query<{ type: string; from_status: string | null; to_status: string | null }>(
          sql`select type, from_status, to_status from payment_events where payment_id = ${p.id} order by id`,
        );
        expect(events).toEqual([
          { type: 'created', from_status: null, to_status: 'pending' },
          { type: 'status_changed', from_status: 'pending', to_status: 'completed' },
        ]);
        const [o] = await c.query<{ paid_at: Date | null }>(
          sql`select paid_at from orders where shop_id = 'shop-a' and id = ${orderId}`,
        );
        expect(o.paid_at).not.toBeNull();
        expect(await c.c2bRow(transId)).toMatchObject({ status: 'applied', payment_id: p.id, order_id: orderId });

        const repeat = await cost(c.accountA, confirmation(transId, PAYBILL, 100, orderId));
        within('paybillRepeat', repeat);
        expect(await c.paymentsWithReceipt(transId)).toHaveLength(1);
        expect(await c.c2bRow(transId)).toMatchObject({ status: 'applied', deliveries: 2 });
      }
    });

    it('a paybill payment for more than its order still owes goes to review, written once in that state', async () => {
      const orderId = `CPB-${++n}`;
      await c.order('shop-a', orderId, 50);
      const transId = `TCO${n}XXXXX`;
      within('paybill', await cost(c.accountA, confirmation(transId, PAYBILL, 80, orderId)));
      const [p] = await c.paymentsWithReceipt(transId);
      expect(p).toMatchObject({ status: 'review', status_reason: 'EXCEEDS_OUTSTANDING', amount_minor: '8000' });
      const events = await c.query<{ type: string; to_status: string | null }>(
        sql`select type, to_status from payment_events where payment_id = ${p.id} order by id`,
      );
      expect(events).toEqual([
        { type: 'created', to_status: 'pending' },
        { type: 'integrity_failure', to_status: 'review' },
      ]);
      const [o] = await c.query<{ paid_at: Date | null }>(
        sql`select paid_at from orders where shop_id = 'shop-a' and id = ${orderId}`,
      );
      expect(o.paid_at).toBeNull();
    });

    it('a till payment whose receipt an STK payment holds is its twin, not a second payment (matched after the one write)', async () => {
      const transId = `TCS${++n}XXXXX`;
      const orderId = `CPB-${n}`;
      await c.order('shop-a', orderId, 100);
      // The paybill payment holds the receipt; the same receipt then reaches the till's account.
      await cost(c.accountA, confirmation(transId, PAYBILL, 100, orderId));
      const [held] = await c.paymentsWithReceipt(transId);
      await cost(c.accountB, confirmation(transId, STORE, 100));
      const row = await c.query<{ status: string; status_reason: string | null; payment_id: string | null }>(
        sql`select status, status_reason, payment_id from c2b_transactions where trans_id = ${transId} and shop_id = 'shop-b'`,
      );
      // another shop's payment holds it: never linked, a person looks
      expect(row).toEqual([{ status: 'review', status_reason: 'RECEIPT_OF_ANOTHER_SHOP', payment_id: null }]);
      expect(await c.paymentsWithReceipt(transId)).toEqual([held]);
    });

    it('the fast lane answers as Express does (chunked bodies stay on Express), with the access metric; the allowlist holds on both', async () => {
      const port = Number(new URL(c.t.baseUrl).port);
      const raw = (bytes: Buffer) =>
        new Promise<{ status: number; body: string }>((resolve, reject) => {
          const s = net.connect(port, '127.0.0.1');
          let out = '';
          s.on('data', (d) => (out += d.toString()));
          s.on('error', reject);
          s.on('close', () => {
            let body = out.slice(out.indexOf('\r\n\r\n') + 4);
            if (/transfer-encoding: chunked/i.test(out))
              body = body.replace(/^[0-9a-f]+\r\n/, '').replace(/\r\n0\r\n\r\n$/, '');
            resolve({ status: Number(out.split(' ')[1]), body });
          });
          s.write(bytes);
        });
      const send = (path: string, b: Buffer, chunked: boolean) => {
        const head = `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nConnection: close\r\n`;
        return raw(
          chunked
            ? Buffer.concat([
                Buffer.from(`${head}Transfer-Encoding: chunked\r\n\r\n${b.length.toString(16)}\r\n`),
                b,
                Buffer.from('\r\n0\r\n\r\n'),
              ])
            : Buffer.concat([Buffer.from(`${head}Content-Length: ${b.length}\r\n\r\n`), b]),
        );
      };
      const body = (transId: string) => Buffer.from(JSON.stringify(confirmation(transId, STORE, 10)));
      const strip = (text: string) => {
        const j = JSON.parse(text) as Record<string, unknown>;
        delete j.requestId;
        return j;
      };
      for (const chunked of [false, true]) {
        const transId = `TCL${chunked ? 'E' : 'L'}${++n}XXXX`;
        const ok = await send(urlOf(c.accountB), body(transId), chunked);
        expect({ chunked, ...ok }).toEqual({ chunked, status: 200, body: '{"ResultCode":0,"ResultDesc":"Success"}' });
        expect(await c.c2bRow(transId)).toMatchObject({ status: 'unclaimed', deliveries: 1 });
      }
      // wrong token, unknown account, not JSON: the same answers both ways, nothing stored
      const before = await c.counts();
      const wrong = urlOf(c.accountB, 'f'.repeat(64));
      const unknown = urlOf('00000000-0000-4000-8000-000000000000');
      for (const [path, b] of [
        [wrong, body('TCWRONG1')],
        [unknown, body('TCWRONG2')],
        [urlOf(c.accountB), Buffer.from('{"TransID":')],
      ] as const) {
        const [lane, express] = [await send(path, b, false), await send(path, b, true)];
        expect(lane.status).toBe(express.status);
        expect(strip(lane.body)).toEqual(strip(express.body));
        expect(lane.status).toBeGreaterThanOrEqual(400);
      }
      expect(await c.counts()).toEqual(before);
      const metrics = await c.t.http().get('/metrics').set('Authorization', `Bearer ${METRICS_TOKEN}`);
      expect(metrics.text).toMatch(
        /http_request_duration_seconds_count\{method="POST",route="\/payments\/c2b\/:accountId\/confirmation\/:token",status="200"\} [1-9]/,
      );

      // An allowlist without this sender: 403 on the lane and on Express alike, nothing stored.
      const listed = await startExtraTestApp(c.t, { MPESA_CALLBACK_IP_ALLOWLIST: '196.201.214.200' });
      try {
        const lanePort = Number(new URL(listed.baseUrl).port);
        const viaListed = (chunked: boolean) => {
          const b = body(`TCIP${chunked ? 'E' : 'L'}${++n}XX`);
          const head = `POST ${urlOf(c.accountB)} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nConnection: close\r\n`;
          return new Promise<number>((resolve, reject) => {
            const s = net.connect(lanePort, '127.0.0.1');
            let out = '';
            s.on('data', (d) => (out += d.toString()));
            s.on('error', reject);
            s.on('close', () => resolve(Number(out.split(' ')[1])));
            s.write(
              chunked
                ? Buffer.concat([
                    Buffer.from(`${head}Transfer-Encoding: chunked\r\n\r\n${b.length.toString(16)}\r\n`),
                    b,
                    Buffer.from('\r\n0\r\n\r\n'),
                  ])
                : Buffer.concat([Buffer.from(`${head}Content-Length: ${b.length}\r\n\r\n`), b]),
            );
          });
        };
        expect(await viaListed(false)).toBe(403);
        expect(await viaListed(true)).toBe(403);
        expect(await c.counts()).toEqual(before);
      } finally {
        await listed.close();
      }
    });
  },
);
