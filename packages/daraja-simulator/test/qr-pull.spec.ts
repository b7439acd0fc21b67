/** Dynamic QR and Pull Transactions (daraja-more.md §1–2) against a started simulator, over real HTTP. */
import { startDarajaSimulator, type DarajaSimulator } from '../src';
import { expectEnvelope, nairobiTimestamp, postJson, request, SHORTCODE, TILL, token as getToken } from './helpers';

const HOUR = 3600_000;

/** `YYYY-MM-DD HH:mm:ss` Nairobi time, via the Intl-based helper (independent of the simulator's arithmetic). */
function pullDate(d: Date): string {
  const t = nairobiTimestamp(d);
  return `${t.slice(0, 4)}-${t.slice(4, 6)}-${t.slice(6, 8)} ${t.slice(8, 10)}:${t.slice(10, 12)}:${t.slice(12, 14)}`;
}

describe('Dynamic QR and Pull Transactions', () => {
  let sim: DarajaSimulator;
  let token: string;
  const post = (path: string, body: unknown, auth = token) => postJson(`${sim.url}${path}`, auth, body);

  beforeAll(async () => {
    sim = await startDarajaSimulator({ log: () => undefined });
  });
  beforeEach(async () => {
    sim.reset();
    token = await getToken(sim.url);
  });
  afterAll(() => sim.close());

  const qrBody = {
    MerchantName: 'TEST SUPERMARKET',
    RefNo: 'Invoice Test',
    Amount: 1,
    TrxCode: 'BG',
    CPI: '373132',
    Size: '300',
  };

  it('QR: answers a base64 PNG of the asked size, as Daraja does', async () => {
    const res = await post('/mpesa/qrcode/v1/generate', qrBody);
    expect(res.status).toBe(200);
    const body = res.json as Record<string, string>;
    expect(body.ResponseDescription).toBe('QR Code Successfully Generated.');
    const png = Buffer.from(body.QRCode, 'base64');
    expect(png.subarray(1, 4).toString()).toBe('PNG');
    expect(png.readUInt32BE(16)).toBe(300);
    expect(sim.qrRequests()).toEqual([expect.objectContaining({ TrxCode: 'BG', CPI: '373132', Amount: 1 })]);
  });

  it('QR: refuses a bad TrxCode, amount or size and a missing token', async () => {
    expectEnvelope(
      await post('/mpesa/qrcode/v1/generate', { ...qrBody, TrxCode: 'XX' }),
      400,
      '400.002.02',
      'Bad Request - Invalid TrxCode',
    );
    expectEnvelope(
      await post('/mpesa/qrcode/v1/generate', { ...qrBody, Amount: 1.5 }),
      400,
      '400.002.02',
      'Bad Request - Invalid Amount',
    );
    expectEnvelope(
      await post('/mpesa/qrcode/v1/generate', { ...qrBody, Size: 300 }),
      400,
      '400.002.02',
      'Bad Request - Invalid Size',
    );
    expectEnvelope(await post('/mpesa/qrcode/v1/generate', qrBody, 'nope'), 404, '404.001.03', 'Invalid Access Token');
    expect(sim.qrRequests()).toHaveLength(0);
  });

  const register = (shortcode = SHORTCODE) =>
    post('/pulltransactions/v1/register', {
      ShortCode: shortcode,
      RequestType: 'Pull',
      NominatedNumber: '254722000000',
      CallBackURL: 'https://pay.example.com/pull/cb',
    });
  const query = (start: Date, end: Date, page = 0, shortcode = SHORTCODE) =>
    post('/pulltransactions/v1/query', {
      ShortCode: shortcode,
      StartDate: pullDate(start),
      EndDate: pullDate(end),
      OffSetValue: String(page),
    });

  it('Pull: registers once, then says already registered; an unknown shortcode is invalid', async () => {
    expect((await register()).json).toMatchObject({
      ResponseStatus: '1000',
      ResponseDescription: 'Shortcode Registered Successfully',
    });
    expect((await register()).json).toMatchObject({
      ResponseStatus: '1001',
      ResponseDescription: 'ShortCode already Registered',
    });
    expect((await register(TILL)).json).toMatchObject({ ResponseStatus: '1000' });
    expectEnvelope(await register('999999'), 400, '400.001', 'Invalid ShortCode');
    expect(sim.pullTransactions.registrations().map((r) => r.shortcode)).toEqual([SHORTCODE, TILL]);
    expect(JSON.stringify(sim.pullTransactions.registrations())).not.toContain('254722000000');
  });

  it('Pull: an unregistered shortcode and an empty window both answer 200 1001', async () => {
    const now = Date.now();
    sim.pullTransactions.add(SHORTCODE, [{ transactionId: 'SIMPULL001', amount: 10, trxDate: new Date(now - HOUR) }]);
    const unregistered = await query(new Date(now - 2 * HOUR), new Date(now));
    expect(unregistered.status).toBe(200);
    expect(unregistered.json).toMatchObject({
      ResponseCode: '1001',
      ResponseMessage: 'No records found or Organization Name not available',
    });
    await register();
    const empty = await query(new Date(now - 10 * 60_000), new Date(now));
    expect(empty.json).toMatchObject({ ResponseCode: '1001' });
  });

  it('Pull: pages by page index with TotalPages, rows nested in a list, only the window', async () => {
    const now = Date.now();
    await register();
    sim.pullTransactions.setPageSize(2);
    sim.pullTransactions.add(SHORTCODE, [
      { transactionId: 'SIMPULL001', amount: 233.8, trxDate: new Date(now - 3 * HOUR), billreference: 'ORD-1' },
      { transactionId: 'SIMPULL002', amount: 1, trxDate: new Date(now - 2 * HOUR) },
      { transactionId: 'SIMPULL003', amount: 2, trxDate: new Date(now - HOUR) },
      { transactionId: 'SIMPULL004', amount: 3, trxDate: new Date(now - 5 * HOUR) },
    ]);
    const first = (await query(new Date(now - 4 * HOUR), new Date(now))).json as {
      Response: unknown[][];
      TotalPages: number;
    };
    expect(first).toMatchObject({ ResponseCode: '1000', TotalPages: 2 });
    expect(first.Response[0]!.map((r) => (r as { transactionId: string }).transactionId)).toEqual([
      'SIMPULL001',
      'SIMPULL002',
    ]);
    expect(first.Response[0]![0]).toMatchObject({
      amount: 233.8,
      billreference: 'ORD-1',
      trxDate: expect.stringMatching(/Z$/),
    });
    const second = (await query(new Date(now - 4 * HOUR), new Date(now), 1)).json as { Response: unknown[][] };
    expect(second.Response[0]!.map((r) => (r as { transactionId: string }).transactionId)).toEqual(['SIMPULL003']);
    expect((await query(new Date(now - 4 * HOUR), new Date(now), 2)).json).toMatchObject({ ResponseCode: '1001' });
  });

  it('Pull: a window reaching past 48 hours or a bad date is refused', async () => {
    const now = Date.now();
    await register();
    expectEnvelope(
      await query(new Date(now - 49 * HOUR), new Date(now)),
      400,
      '400.002.02',
      'Bad Request - Invalid StartDate',
    );
    const bad = await post('/pulltransactions/v1/query', {
      ShortCode: SHORTCODE,
      StartDate: 'yesterday',
      EndDate: pullDate(new Date()),
      OffSetValue: '0',
    });
    expectEnvelope(bad, 400, '400.002.02', 'Bad Request - Invalid StartDate');
  });

  it('control: POST /__sim/pull-transactions adds transactions; bad ones are refused', async () => {
    const ok = await request(`${sim.url}/__sim/pull-transactions`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({
        shortcode: SHORTCODE,
        transactions: [{ transactionId: 'SIMPULL009', amount: 5, trxDate: new Date().toISOString() }],
      }),
    });
    expect(ok.status).toBe(201);
    expect(ok.json).toEqual({ shortcode: SHORTCODE, transactions: 1 });
    const bad = await request(`${sim.url}/__sim/pull-transactions`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ shortcode: SHORTCODE, transactions: [{ transactionId: 'x', amount: 5, trxDate: 'now' }] }),
    });
    expect(bad.status).toBe(400);
  });

  it('Pull: a customer’s C2B payment is listed for its shortcode, whatever became of its confirmation', async () => {
    await register();
    // No C2B URLs registered here: the money moves, nobody is told, Pull still lists it.
    const paid = await sim.c2bPay({ shortcode: SHORTCODE, amount: 120, billRefNumber: 'ORD-9', copies: 0 });
    expect(paid.outcome).toBe('no_registration');
    const bad = await sim.c2bPay({ shortcode: SHORTCODE, amountText: 'abc', billRefNumber: 'ORD-9' });
    const now = Date.now();
    const res = await query(new Date(now - HOUR), new Date(now));
    expect(res.json).toMatchObject({ ResponseCode: '1000', TotalPages: 1 });
    const rows = (res.json as { Response: Record<string, unknown>[][] }).Response[0]!;
    expect(rows).toEqual([
      expect.objectContaining({
        transactionId: paid.transId,
        amount: 120,
        billreference: 'ORD-9',
        msisdn: paid.body.MSISDN,
        transactiontype: 'c2b-pay-bill-debit',
      }),
    ]);
    expect(rows.map((r) => r.transactionId)).not.toContain(bad.transId);
  });
});
