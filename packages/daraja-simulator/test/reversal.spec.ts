/** M-Pesa Reversal (daraja.md §5.3, §6.1) against a started simulator: real HTTP, a local receiver for the Results. */
import { constants, generateKeyPairSync, X509Certificate } from 'node:crypto';
import {
  SIMULATOR_CERTIFICATE_PEM,
  SIMULATOR_CERTIFICATE_SHA256,
  SimulatorControlClient,
  SimulatorControlError,
  SimulatorError,
  startDarajaSimulator,
  type DarajaSimulator,
} from '../src';
import {
  basic,
  expectEnvelope,
  oauth,
  password,
  PHONE,
  postJson,
  pushBody,
  request,
  SHORTCODE,
  sleep,
  startReceiver,
  stkPush,
  token as getToken,
  type Receiver,
} from './helpers';
import {
  bodiesAt,
  CERT_PEM,
  CERT_SHA256,
  credential,
  expectAccepted,
  INITIATOR_PASSWORD,
  params,
  pay,
  resultOf,
  reversalBody,
  reverse,
  statusBody,
  transactionStatus,
  type ResultMessage,
} from './result-helpers';

const DELAY = 20;
const RESULT_PATH = '/hooks/daraja/reversal/result';
const TIMEOUT_PATH = '/hooks/daraja/reversal/timeout';

describe('Reversal', () => {
  let sim: DarajaSimulator;
  let receiver: Receiver;
  let token: string;

  beforeAll(async () => {
    sim = await startDarajaSimulator({ callbackDelayMs: DELAY, resultDelayMs: DELAY });
    receiver = await startReceiver();
  });

  beforeEach(async () => {
    sim.reset();
    receiver.received.length = 0;
    token = await getToken(sim.url);
  });

  afterAll(async () => {
    await sim.close();
    await receiver.close();
  });

  describe('test certificate', () => {
    it('exports the committed certificate and its SHA-256 fingerprint', () => {
      expect(SIMULATOR_CERTIFICATE_PEM).toBe(CERT_PEM);
      expect(SIMULATOR_CERTIFICATE_SHA256).toBe(CERT_SHA256);
      expect(new X509Certificate(CERT_PEM).fingerprint256).toBe(CERT_SHA256);
      expect(new X509Certificate(CERT_PEM).subject).toContain('TEST ONLY');
    });
  });

  it('acknowledges at once and POSTs the success Result (§6 shape) to ResultURL after the delay', async () => {
    const receipt = await pay(sim, token, receiver, 250);
    const started = Date.now();
    const accepted = expectAccepted(await reverse(sim.url, token, reversalBody(receiver, receipt, { Amount: '250' })));
    expect(bodiesAt(receiver, RESULT_PATH)).toHaveLength(0);
    const result = await resultOf(sim, accepted);
    expect(Date.now() - started).toBeGreaterThanOrEqual(DELAY - 5);

    expect(Object.keys(result)).toEqual(['Result']);
    const r = result.Result;
    expect(r.ResultType).toBe(0);
    expect(r.ResultCode).toBe(0); // a JSON number
    expect(r.ResultDesc).toBe('The service request is processed successfully.');
    expect(r.OriginatorConversationID).toBe(accepted.OriginatorConversationID);
    expect(r.ConversationID).toBe(accepted.ConversationID);
    expect(r.TransactionID).toMatch(/^[A-Z][A-Z0-9]{9}$/);
    expect(r.TransactionID).not.toBe(receipt); // the reversal's own receipt
    expect(r.ReferenceData.ReferenceItem.Key).toBe('QueueTimeoutURL');
    expect(r.ReferenceData.ReferenceItem.Value).not.toContain(receiver.url);
    expect(r.ResultParameters?.ResultParameter.map((p) => p.Key)).toEqual([
      'DebitAccountBalance',
      'Amount',
      'TransCompletedTime',
      'OriginalTransactionID',
      'Charge',
      'CreditPartyPublicName',
      'DebitPartyPublicName',
    ]);
    const p = params(result);
    expect(p['Amount']).toBe(250);
    expect(p['OriginalTransactionID']).toBe(receipt);
    expect(p['Charge']).toBe(0);
    expect(String(p['TransCompletedTime'])).toMatch(/^20\d{12}$/);
    // Paid 250, reversed 250: the utility account is back at 0.
    expect(p['DebitAccountBalance']).toBe('Utility Account|KES|0.00|0.00|0.00|0.00');
    expect(p['CreditPartyPublicName']).toBe('2547XXXXX149 - SIM CUSTOMER');
    expect(JSON.stringify(result)).not.toContain(PHONE);
    expect(p['DebitPartyPublicName']).toBe(`${SHORTCODE} - SIM SHOP ${SHORTCODE}`);

    // The POST itself: the exact ResultURL, JSON, no auth header.
    const [post] = receiver.received.filter((x) => x.url === RESULT_PATH);
    expect(post?.method).toBe('POST');
    expect(post?.headers['content-type']).toBe('application/json;charset=UTF-8');
    expect(post?.headers['authorization']).toBeUndefined();

    const [record] = sim.reversals();
    expect(record).toMatchObject({
      api: 'reversal',
      state: 'completed',
      resultCode: 0,
      transactionId: r.TransactionID,
      securityCredential: 'decrypted',
      httpStatus: 200,
      conversationId: accepted.ConversationID,
      originatorConversationId: accepted.OriginatorConversationID,
      delivery: 'result',
    });
  });

  it('answers R000001 (a string) to a second reversal of the same receipt, and R000002 to an unknown receipt', async () => {
    const receipt = await pay(sim, token, receiver, 5);
    const first = await resultOf(sim, expectAccepted(await reverse(sim.url, token, reversalBody(receiver, receipt))));
    expect(first.Result.ResultCode).toBe(0);
    const second = await resultOf(sim, expectAccepted(await reverse(sim.url, token, reversalBody(receiver, receipt))));
    expect(second.Result.ResultCode).toBe('R000001');
    expect(second.Result.ResultDesc).toBe('The transaction has already been reversed.');
    expect(second.Result.ResultParameters).toBeUndefined();

    const unknown = await resultOf(
      sim,
      expectAccepted(await reverse(sim.url, token, reversalBody(receiver, 'ZZZ0000000'))),
    );
    expect(unknown.Result.ResultCode).toBe('R000002');
    expect(unknown.Result.ResultDesc).toBe('The OriginalTransactionID is invalid.');
  });

  it('lets only one of two concurrent reversals of a receipt succeed', async () => {
    const receipt = await pay(sim, token, receiver, 5);
    const [a, b] = await Promise.all([
      reverse(sim.url, token, reversalBody(receiver, receipt)),
      reverse(sim.url, token, reversalBody(receiver, receipt)),
    ]);
    const codes = await Promise.all([resultOf(sim, expectAccepted(a)), resultOf(sim, expectAccepted(b))]);
    expect(codes.map((c) => c.Result.ResultCode).sort()).toEqual([0, 'R000001'].sort());
  });

  it('reverses part of a payment (then the receipt counts as reversed) and refuses more than the original with 2006', async () => {
    const receipt = await pay(sim, token, receiver, 100);
    const partial = await resultOf(
      sim,
      expectAccepted(await reverse(sim.url, token, reversalBody(receiver, receipt, { Amount: '40' }))),
    );
    expect(partial.Result.ResultCode).toBe(0);
    expect(params(partial)['Amount']).toBe(40);
    expect(params(partial)['DebitAccountBalance']).toBe('Utility Account|KES|60.00|60.00|0.00|0.00');
    const rest = await resultOf(
      sim,
      expectAccepted(await reverse(sim.url, token, reversalBody(receiver, receipt, { Amount: '60' }))),
    );
    expect(rest.Result.ResultCode).toBe('R000001');

    const other = await pay(sim, token, receiver, 10);
    const tooMuch = await resultOf(
      sim,
      expectAccepted(await reverse(sim.url, token, reversalBody(receiver, other, { Amount: '11' }))),
    );
    expect(tooMuch.Result.ResultCode).toBe(2006);
    expect(tooMuch.Result.ResultDesc).toBe('Declined due to account rule.');
    // Nothing was reversed: the whole amount still can be.
    const ok = await resultOf(
      sim,
      expectAccepted(await reverse(sim.url, token, reversalBody(receiver, other, { Amount: '10' }))),
    );
    expect(ok.Result.ResultCode).toBe(0);
  });

  it("answers R000002 for a receipt paid to another shortcode, and 2001 when the token's app may not use ReceiverParty", async () => {
    sim.registerAccount({ shortcode: '600900', passkey: 'pk-600900' });
    sim.registerApp({ consumerKey: 'shop-x', consumerSecret: 'shop-x-secret', shortcodes: ['600900'] });
    const receipt = await pay(sim, token, receiver, 5); // paid to 174379
    const elsewhere = await resultOf(
      sim,
      expectAccepted(await reverse(sim.url, token, reversalBody(receiver, receipt, { ReceiverParty: '600900' }))),
    );
    expect(elsewhere.Result.ResultCode).toBe('R000002');

    const shopToken = ((await oauth(sim.url, basic('shop-x', 'shop-x-secret'))).json as { access_token: string })
      .access_token;
    const foreign = await resultOf(
      sim,
      expectAccepted(await reverse(sim.url, shopToken, reversalBody(receiver, receipt))),
    );
    expect(foreign.Result.ResultCode).toBe(2001);
    expect(sim.reversals().at(-1)?.consumerKey).toBe('shop-x');
  });

  describe('SecurityCredential and initiator', () => {
    it('accepts a wrong password (it decrypts) and answers 2001 asynchronously; same for an unknown initiator name', async () => {
      const receipt = await pay(sim, token, receiver, 5);
      const wrong = await resultOf(
        sim,
        expectAccepted(
          await reverse(sim.url, token, reversalBody(receiver, receipt, { SecurityCredential: credential('Wrong1!') })),
        ),
      );
      expect(wrong.Result.ResultCode).toBe(2001);
      expect(wrong.Result.ResultDesc).toBe('The initiator information is invalid.');
      const name = await resultOf(
        sim,
        expectAccepted(await reverse(sim.url, token, reversalBody(receiver, receipt, { Initiator: 'apiop37' }))),
      );
      expect(name.Result.ResultCode).toBe(2001);
      // Neither attempt reversed anything.
      const ok = await resultOf(sim, expectAccepted(await reverse(sim.url, token, reversalBody(receiver, receipt))));
      expect(ok.Result.ResultCode).toBe(0);
    });

    it.each([
      [
        'another certificate',
        () => {
          const { publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
          return credential(INITIATOR_PASSWORD, publicKey.export({ type: 'spki', format: 'pem' }).toString());
        },
      ],
      ['OAEP padding', () => credential(INITIATOR_PASSWORD, CERT_PEM, constants.RSA_PKCS1_OAEP_PADDING)],
      ['garbage', () => 'bm90IGEgY3JlZGVudGlhbA=='],
      ['the plain password', () => INITIATOR_PASSWORD],
      ['an empty string', () => ''],
      ['a number', () => 12345],
    ])('answers 400 400.002.02 Invalid SecurityCredential synchronously for %s', async (_label, make) => {
      const receipt = await pay(sim, token, receiver, 5);
      const res = await reverse(sim.url, token, reversalBody(receiver, receipt, { SecurityCredential: make() }));
      expectEnvelope(res, 400, '400.002.02', 'Bad Request - Invalid SecurityCredential');
      await sleep(DELAY * 3);
      expect(sim.results()).toEqual([]);
      expect(sim.reversals()[0]).toMatchObject({ state: 'rejected', httpStatus: 400, errorCode: '400.002.02' });
    });

    it('answers 8006 for a locked initiator and 21 for one without the reversal role', async () => {
      sim.registerAccount({
        shortcode: '600710',
        passkey: 'pk-710',
        initiatorName: 'op710',
        initiatorPassword: 'Pw710!',
        initiatorLocked: true,
      });
      sim.registerAccount({
        shortcode: '600720',
        passkey: 'pk-720',
        initiatorName: 'op720',
        initiatorPassword: 'Pw720!',
        initiatorRoles: ['status'],
      });
      const ts = pushBody('').Timestamp as string;
      const payTo = async (shortcode: string, passkey: string): Promise<string> =>
        pay(sim, token, receiver, 5, {
          BusinessShortCode: shortcode,
          PartyB: shortcode,
          Password: password(shortcode, passkey, ts),
          Timestamp: ts,
        });
      const r710 = await payTo('600710', 'pk-710');
      const r720 = await payTo('600720', 'pk-720');
      const locked = await resultOf(
        sim,
        expectAccepted(
          await reverse(
            sim.url,
            token,
            reversalBody(receiver, r710, {
              ReceiverParty: '600710',
              Initiator: 'op710',
              SecurityCredential: credential('Pw710!'),
            }),
          ),
        ),
      );
      expect(locked.Result.ResultCode).toBe(8006);
      // A wrong password wins over the lock: the operator is not even identified.
      const lockedWrong = await resultOf(
        sim,
        expectAccepted(
          await reverse(
            sim.url,
            token,
            reversalBody(receiver, r710, {
              ReceiverParty: '600710',
              Initiator: 'op710',
              SecurityCredential: credential('nope'),
            }),
          ),
        ),
      );
      expect(lockedWrong.Result.ResultCode).toBe(2001);
      const noRole = await resultOf(
        sim,
        expectAccepted(
          await reverse(
            sim.url,
            token,
            reversalBody(receiver, r720, {
              ReceiverParty: '600720',
              Initiator: 'op720',
              SecurityCredential: credential('Pw720!'),
            }),
          ),
        ),
      );
      expect(noRole.Result.ResultCode).toBe(21);
      // The default initiator is not valid on accounts that name their own.
      const defaultOp = await resultOf(
        sim,
        expectAccepted(await reverse(sim.url, token, reversalBody(receiver, r720, { ReceiverParty: '600720' }))),
      );
      expect(defaultOp.Result.ResultCode).toBe(2001);
    });

    it('refuses to re-register an account with another initiator (409), without echoing the password', async () => {
      sim.registerAccount({ shortcode: '600730', passkey: 'pk-730', initiatorPassword: 'First1!' });
      expect(
        sim.registerAccount({ shortcode: '600730', passkey: 'pk-730', initiatorPassword: 'First1!' }).outcome,
      ).toBe('unchanged');
      let err: unknown;
      try {
        sim.registerAccount({ shortcode: '600730', passkey: 'pk-730', initiatorPassword: 'Second2!' });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(SimulatorError);
      expect((err as SimulatorError).kind).toBe('conflict');
      expect((err as Error).message).not.toMatch(/First1|Second2/);
      expect(JSON.stringify(sim.accounts())).not.toContain('First1');
      const bad = await postJson(`${sim.url}/__sim/accounts`, undefined, {
        shortcode: '600740',
        passkey: 'p',
        initiatorRoles: ['b2c'],
      });
      expect(bad.status).toBe(400);
    });
  });

  describe('validation (sync 400, nothing scheduled)', () => {
    it.each([
      ['Initiator', { Initiator: undefined }],
      ['Initiator', { Initiator: '  ' }],
      ['CommandID', { CommandID: 'TransactionStatusQuery' }],
      ['CommandID', { CommandID: undefined }],
      ['TransactionID', { TransactionID: undefined }],
      ['TransactionID', { TransactionID: 'has space' }],
      ['Amount', { Amount: undefined }],
      ['Amount', { Amount: '1.50' }],
      ['Amount', { Amount: '0' }],
      ['ReceiverParty', { ReceiverParty: '12' }],
      ['RecieverIdentifierType', { RecieverIdentifierType: '4' }],
      ['RecieverIdentifierType', { RecieverIdentifierType: undefined, ReceiverIdentifierType: '11' }],
      ['ResultURL', { ResultURL: undefined }],
      ['ResultURL', { ResultURL: 'ftp://example.com/r' }],
      ['QueueTimeOutURL', { QueueTimeOutURL: 'not a url' }],
      ['Remarks', { Remarks: 'x' }],
      ['Remarks', { Remarks: 'x'.repeat(101) }],
      ['Remarks', { Remarks: undefined }],
      ['Occasion', { Occasion: 'y'.repeat(101) }],
    ])('Invalid %s for %j', async (field, overrides) => {
      const res = await reverse(sim.url, token, reversalBody(receiver, 'NLJ7RT61SV', overrides));
      expectEnvelope(res, 400, '400.002.02', `Bad Request - Invalid ${field}`);
      await sleep(DELAY * 2);
      expect(sim.results()).toEqual([]);
      expect(sim.reversals()).toHaveLength(1);
      expect(sim.reversals()[0]?.state).toBe('rejected');
    });

    it('accepts a numeric Amount and RecieverIdentifierType, and Remarks of 2 and 100 chars', async () => {
      const receipt = await pay(sim, token, receiver, 5);
      expectAccepted(
        await reverse(
          sim.url,
          token,
          reversalBody(receiver, receipt, { Amount: 1, RecieverIdentifierType: 11, Remarks: 'ok' }),
        ),
      );
      expectAccepted(await reverse(sim.url, token, reversalBody(receiver, receipt, { Remarks: 'r'.repeat(100) })));
    });

    it('needs a valid Bearer token, POST, and a JSON body', async () => {
      const body = reversalBody(receiver, 'NLJ7RT61SV');
      expectEnvelope(await reverse(sim.url, 'not-a-token', body), 404, '404.001.03', 'Invalid Access Token');
      expectEnvelope(
        await postJson(`${sim.url}/mpesa/reversal/v1/request`, undefined, body),
        404,
        '404.001.03',
        'Invalid Access Token',
      );
      expectEnvelope(
        await request(`${sim.url}/mpesa/reversal/v1/request`, { headers: { Authorization: `Bearer ${token}` } }),
        405,
        '405.001',
        'Method Not Allowed',
      );
      expectEnvelope(
        await request(`${sim.url}/mpesa/reversal/v1/request`, {
          method: 'POST',
          headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
          body: '[1,2]',
        }),
        400,
        '400.002.05',
        'Invalid Request Payload',
      );
      expectEnvelope(
        await request(`${sim.url}/mpesa/reversal/v1/request`, {
          method: 'POST',
          headers: { Authorization: `Bearer ${token}` },
          body: JSON.stringify(body),
        }),
        400,
        '400.002.05',
        'Invalid Request Payload',
      );
      expect(sim.reversals()).toEqual([]); // no JSON object body was read
    });

    it('is down with the rest of Daraja under the down fault', async () => {
      sim.setFaults({ down: true });
      expectEnvelope(
        await reverse(sim.url, token, reversalBody(receiver, 'NLJ7RT61SV')),
        503,
        '503.001.01',
        'Service Unavailable',
      );
    });
  });

  describe('records', () => {
    it('records the request as sent, without the SecurityCredential or any password (handle and control client)', async () => {
      const receipt = await pay(sim, token, receiver, 5);
      const body = reversalBody(receiver, receipt);
      await resultOf(sim, expectAccepted(await reverse(sim.url, token, body)));
      const { SecurityCredential, ...sent } = body;
      const [record] = sim.reversals();
      expect(record?.request).toEqual(sent);
      const client = new SimulatorControlClient(sim.url);
      const [viaClient] = await client.reversals();
      expect(viaClient?.request).toEqual(sent);
      expect(typeof viaClient?.at).toBe('string');
      const everything =
        JSON.stringify(await (await fetch(`${sim.url}/__sim/reversals`)).json()) + JSON.stringify(sim.results());
      expect(everything).not.toContain(String(SecurityCredential));
      expect(everything).not.toContain(INITIATOR_PASSWORD);
      expect(await client.statusQueries()).toEqual([]);
      expect((await client.results()).map((r) => r.conversationId)).toEqual([record?.conversationId]);
    });

    it('reset() clears reversals, results, payments and controls', async () => {
      const receipt = await pay(sim, token, receiver, 5);
      sim.forceResult({ resultCode: 1 });
      sim.reset();
      expect(sim.reversals()).toEqual([]);
      token = await getToken(sim.url);
      const res = await resultOf(sim, expectAccepted(await reverse(sim.url, token, reversalBody(receiver, receipt))));
      expect(res.Result.ResultCode).toBe('R000002'); // the payment is gone, and the control with it
    });
  });

  describe('controls', () => {
    it('forces an outcome per receipt; nothing is reversed, and other receipts are unaffected', async () => {
      const a = await pay(sim, token, receiver, 5);
      const b = await pay(sim, token, receiver, 5);
      sim.forceResult({ transactionId: a, resultCode: 1 });
      const rb = await resultOf(sim, expectAccepted(await reverse(sim.url, token, reversalBody(receiver, b))));
      expect(rb.Result.ResultCode).toBe(0);
      const ra = await resultOf(sim, expectAccepted(await reverse(sim.url, token, reversalBody(receiver, a))));
      expect(ra.Result.ResultCode).toBe(1);
      expect(ra.Result.ResultDesc).toBe('The balance is insufficient for the transaction.');
      expect(sim.reversals().at(-1)).toMatchObject({ forced: true, resultCode: 1 });
      const again = await resultOf(sim, expectAccepted(await reverse(sim.url, token, reversalBody(receiver, a))));
      expect(again.Result.ResultCode).toBe(0);
    });

    it('forces the next request (R0000xx as strings, times) via the control client; rejects bad controls', async () => {
      const client = new SimulatorControlClient(sim.url);
      await client.forceResult({ api: 'reversal', resultCode: 'R000001', times: 2 });
      const receipt = await pay(sim, token, receiver, 5);
      for (let i = 0; i < 2; i += 1) {
        const r = await resultOf(sim, expectAccepted(await reverse(sim.url, token, reversalBody(receiver, receipt))));
        expect(r.Result.ResultCode).toBe('R000001');
      }
      const r3 = await resultOf(sim, expectAccepted(await reverse(sim.url, token, reversalBody(receiver, receipt))));
      expect(r3.Result.ResultCode).toBe(0);
      await client.forceResult({ resultCode: '11' });
      const r4 = await resultOf(
        sim,
        expectAccepted(await reverse(sim.url, token, reversalBody(receiver, 'ANY0000001'))),
      );
      expect(r4.Result.ResultCode).toBe(11); // "11" is sent as the number 11

      for (const bad of [
        { resultCode: 0 },
        { resultCode: 9999 },
        { copies: 0 },
        { copies: 11 },
        { delivery: 'twice' },
        { processed: true },
        { api: 'b2c' },
        { nope: 1 },
      ]) {
        await expect(client.forceResult(bad as never)).rejects.toBeInstanceOf(SimulatorControlError);
        expect(() => sim.forceResult(bad as never)).toThrow(SimulatorError);
      }
    });

    it('delivers the same Result twice, concurrently (gapMs 0) and spaced', async () => {
      const receipt = await pay(sim, token, receiver, 5);
      sim.forceResult({ copies: 2, gapMs: 0 });
      const accepted = expectAccepted(await reverse(sim.url, token, reversalBody(receiver, receipt)));
      const deliveries = await sim.waitForResults(accepted.OriginatorConversationID, 2);
      expect(deliveries.map((d) => d.copy).sort()).toEqual([1, 2]);
      const bodies = receiver.received.filter((x) => x.url === RESULT_PATH).map((x) => x.raw);
      expect(bodies).toHaveLength(2);
      expect(bodies[0]).toBe(bodies[1]);
      expect((JSON.parse(bodies[0] ?? '{}') as ResultMessage).Result.ResultCode).toBe(0);

      receiver.received.length = 0;
      const other = await pay(sim, token, receiver, 5);
      sim.forceResult({ copies: 3, gapMs: 40 });
      const spaced = expectAccepted(await reverse(sim.url, token, reversalBody(receiver, other)));
      const three = await sim.waitForResults(spaced.ConversationID, 3);
      expect(three.map((d) => d.copy)).toEqual([1, 2, 3]);
      const at = receiver.received.filter((x) => x.url === RESULT_PATH).map((x) => x.at);
      expect((at[2] ?? 0) - (at[0] ?? 0)).toBeGreaterThanOrEqual(70);
    });

    it('never sends the Result when told (the reversal still happens)', async () => {
      const receipt = await pay(sim, token, receiver, 5);
      sim.forceResult({ delivery: 'none' });
      const accepted = expectAccepted(await reverse(sim.url, token, reversalBody(receiver, receipt)));
      await sleep(DELAY * 5);
      expect(sim.results()).toEqual([]);
      expect(bodiesAt(receiver, RESULT_PATH)).toEqual([]);
      expect(sim.reversals()[0]).toMatchObject({ state: 'completed', resultCode: 0, delivery: 'none' });
      const status = await resultOf(
        sim,
        expectAccepted(await transactionStatus(sim.url, token, statusBody(receiver, { TransactionID: receipt }))),
      );
      expect(params(status)['TransactionStatus']).toBe('Reversed');
      expect(accepted.ConversationID).toBe(sim.reversals()[0]?.conversationId);
    });

    it('sends only the QueueTimeOutURL notice; unprocessed by default, processed when told', async () => {
      const receipt = await pay(sim, token, receiver, 5);
      sim.forceResult({ delivery: 'queue_timeout' });
      const accepted = expectAccepted(await reverse(sim.url, token, reversalBody(receiver, receipt)));
      const [notice] = await sim.waitForResults(accepted.ConversationID);
      expect(notice?.target).toBe('queue_timeout');
      expect(notice?.url).toBe(`${receiver.url}${TIMEOUT_PATH}`);
      const body = notice?.body as ResultMessage;
      expect(body.Result).toMatchObject({
        ResultType: 0,
        ResultCode: 1,
        ResultDesc: 'The service request timed out.',
        OriginatorConversationID: accepted.OriginatorConversationID,
        ConversationID: accepted.ConversationID,
      });
      expect(body.Result.ResultParameters).toBeUndefined();
      expect(bodiesAt(receiver, RESULT_PATH)).toEqual([]);
      expect(bodiesAt(receiver, TIMEOUT_PATH)).toHaveLength(1);
      expect(sim.reversals()[0]?.state).toBe('timed_out');
      const before = await resultOf(
        sim,
        expectAccepted(await transactionStatus(sim.url, token, statusBody(receiver, { TransactionID: receipt }))),
      );
      expect(params(before)['TransactionStatus']).toBe('Completed');

      sim.forceResult({ delivery: 'queue_timeout', processed: true });
      const second = expectAccepted(await reverse(sim.url, token, reversalBody(receiver, receipt)));
      await sim.waitForResults(second.ConversationID);
      expect(sim.reversals()[1]).toMatchObject({ state: 'completed', resultCode: 0 });
      const after = await resultOf(
        sim,
        expectAccepted(await transactionStatus(sim.url, token, statusBody(receiver, { TransactionID: receipt }))),
      );
      expect(params(after)['TransactionStatus']).toBe('Reversed');
    });

    it('delays one Result (delayMs) without delaying the next', async () => {
      const a = await pay(sim, token, receiver, 5);
      const b = await pay(sim, token, receiver, 5);
      sim.forceResult({ transactionId: a, delayMs: 400 });
      const started = Date.now();
      const slow = expectAccepted(await reverse(sim.url, token, reversalBody(receiver, a)));
      const fast = expectAccepted(await reverse(sim.url, token, reversalBody(receiver, b)));
      await sim.waitForResults(fast.ConversationID);
      expect(sim.results().map((r) => r.conversationId)).toEqual([fast.ConversationID]);
      await sim.waitForResults(slow.ConversationID, 1, 2000);
      expect(Date.now() - started).toBeGreaterThanOrEqual(390);
    });
  });

  it('records a delivery failure when ResultURL does not answer (no retry)', async () => {
    const receipt = await pay(sim, token, receiver, 5);
    const accepted = expectAccepted(
      await reverse(sim.url, token, reversalBody(receiver, receipt, { ResultURL: 'http://127.0.0.1:1/hooks/result' })),
    );
    const [d] = await sim.waitForResults(accepted.ConversationID);
    expect(d?.status).toBeUndefined();
    expect(d?.error).toBeDefined();
    await sleep(DELAY * 3);
    expect(sim.results()).toHaveLength(1);
  });

  it('keeps STK working as before (default initiator on the default account; no STK stats for reversals)', async () => {
    const receipt = await pay(sim, token, receiver, 5);
    await resultOf(sim, expectAccepted(await reverse(sim.url, token, reversalBody(receiver, receipt))));
    expect(sim.stats().pushRequests).toBe(1);
    expect(sim.stats().queryRequests).toBe(0);
    expect((await stkPush(sim.url, token, pushBody(`${receiver.url}/hooks/daraja/stk/x`))).status).toBe(200);
  });
});
