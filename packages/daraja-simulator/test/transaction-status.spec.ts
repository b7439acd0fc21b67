/** M-Pesa Transaction Status (daraja.md §6.2) against a started simulator, with a local receiver for the Results. */
import { SimulatorControlClient, startDarajaSimulator, type DarajaSimulator } from '../src';
import {
  expectEnvelope,
  password,
  PHONE,
  pushBody,
  SHORTCODE,
  sleep,
  startReceiver,
  TILL,
  token as getToken,
  type Receiver,
} from './helpers';
import {
  bodiesAt,
  credential,
  expectAccepted,
  params,
  pay,
  resultOf,
  reversalBody,
  reverse,
  statusBody,
  transactionStatus,
} from './result-helpers';

const DELAY = 20;
const STATUS_KEYS = [
  'DebitPartyName',
  'CreditPartyName',
  'OriginatorConversationID',
  'InitiatedTime',
  'DebitAccountType',
  'DebitPartyCharges',
  'TransactionReason',
  'ReasonType',
  'TransactionStatus',
  'FinalisedTime',
  'Amount',
  'ConversationID',
  'ReceiptNo',
];

describe('Transaction Status', () => {
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

  async function status(overrides: Record<string, unknown>) {
    return resultOf(sim, expectAccepted(await transactionStatus(sim.url, token, statusBody(receiver, overrides))));
  }

  it('reports a completed STK payment by its receipt', async () => {
    const before = Date.now();
    const receipt = await pay(sim, token, receiver, 77);
    const result = await status({ TransactionID: receipt });
    const r = result.Result;
    expect(r.ResultType).toBe(0);
    expect(r.ResultCode).toBe(0);
    expect(r.ResultDesc).toBe('The service request is processed successfully.');
    expect(r.TransactionID).toMatch(/^[A-Z][A-Z0-9]{9}$/);
    expect(r.ReferenceData.ReferenceItem.Key).toBe('QueueTimeoutURL');
    expect(r.ResultParameters?.ResultParameter.map((p) => p.Key)).toEqual(STATUS_KEYS);
    const p = params(result);
    expect(p['TransactionStatus']).toBe('Completed');
    expect(p['ReceiptNo']).toBe(receipt);
    expect(p['Amount']).toBe(77);
    expect(p['DebitPartyName']).toBe('2547XXXXX149 - SIM CUSTOMER');
    expect(p['CreditPartyName']).toBe(`${SHORTCODE} - SIM SHOP ${SHORTCODE}`);
    expect(p['ReasonType']).toBe('Pay Bill Online');
    expect(p['ConversationID']).toMatch(/^AG_\d{8}_[0-9a-f]{20}$/);
    expect(typeof p['OriginatorConversationID']).toBe('string');
    const initiated = Number(p['InitiatedTime']);
    const finalised = Number(p['FinalisedTime']);
    expect(String(initiated)).toMatch(/^20\d{12}$/);
    expect(finalised).toBeGreaterThanOrEqual(initiated);
    expect(before).toBeGreaterThan(0);
    expect(JSON.stringify(result)).not.toContain(PHONE);
    expect(bodiesAt(receiver, '/hooks/daraja/status/result')).toHaveLength(1);
    // A second query answers the same payment facts.
    const again = params(await status({ TransactionID: receipt }));
    expect(again['ConversationID']).toBe(p['ConversationID']);
    expect(again['OriginatorConversationID']).toBe(p['OriginatorConversationID']);
  });

  it('reports a Buy Goods payment (made to a till) when PartyA is the store number', async () => {
    const receipt = await pay(sim, token, receiver, 3, { TransactionType: 'CustomerBuyGoodsOnline', PartyB: TILL });
    expect(params(await status({ TransactionID: receipt }))['ReasonType']).toBe('Buy Goods Online');
  });

  it('reports "Reversed" once the payment was reversed, and the reversal itself by receipt and by conversation ids', async () => {
    const receipt = await pay(sim, token, receiver, 20);
    sim.forceResult({ api: 'reversal', delayMs: 300 });
    const accepted = expectAccepted(await reverse(sim.url, token, reversalBody(receiver, receipt, { Amount: '20' })));
    // Before the reversal happened: the payment is still Completed, the reversal unknown.
    expect(params(await status({ TransactionID: receipt }))['TransactionStatus']).toBe('Completed');
    const reversal = await resultOf(sim, accepted);
    expect(reversal.Result.ResultCode).toBe(0);

    expect(params(await status({ TransactionID: receipt }))['TransactionStatus']).toBe('Reversed');
    for (const lookup of [
      { OriginalConversationID: accepted.OriginatorConversationID },
      { OriginalConversationID: accepted.ConversationID },
      { TransactionID: reversal.Result.TransactionID },
      { TransactionID: '', OriginalConversationID: accepted.OriginatorConversationID },
    ]) {
      const p = params(await status(lookup));
      expect(p).toMatchObject({
        TransactionStatus: 'Completed',
        ReceiptNo: reversal.Result.TransactionID,
        Amount: 20,
        ReasonType: 'Reversal',
        OriginatorConversationID: accepted.OriginatorConversationID,
        ConversationID: accepted.ConversationID,
        DebitPartyName: `${SHORTCODE} - SIM SHOP ${SHORTCODE}`,
        CreditPartyName: '2547XXXXX149 - SIM CUSTOMER',
      });
    }
  });

  it("answers R000002 for an unknown receipt, another shortcode's receipt, a failed or pending reversal", async () => {
    sim.registerAccount({ shortcode: '600800', passkey: 'pk-800' });
    const receipt = await pay(sim, token, receiver, 5);
    const unknown = await status({ TransactionID: 'QQQ1234567' });
    expect(unknown.Result.ResultCode).toBe('R000002');
    expect(unknown.Result.ResultParameters).toBeUndefined();
    expect((await status({ TransactionID: receipt, PartyA: '600800' })).Result.ResultCode).toBe('R000002');

    const failed = expectAccepted(await reverse(sim.url, token, reversalBody(receiver, 'NOPE000000')));
    expect((await resultOf(sim, failed)).Result.ResultCode).toBe('R000002');
    expect((await status({ OriginalConversationID: failed.OriginatorConversationID })).Result.ResultCode).toBe(
      'R000002',
    );

    sim.forceResult({ api: 'reversal', delayMs: 1000 });
    const slow = expectAccepted(await reverse(sim.url, token, reversalBody(receiver, receipt)));
    expect((await status({ OriginalConversationID: slow.OriginatorConversationID })).Result.ResultCode).toBe('R000002');
  });

  it('checks the initiator like Reversal: 2001 wrong password, 21 without the status role, 8006 locked', async () => {
    const receipt = await pay(sim, token, receiver, 5);
    const wrong = await status({ TransactionID: receipt, SecurityCredential: credential('bad-password') });
    expect(wrong.Result.ResultCode).toBe(2001);
    expect(wrong.Result.ResultDesc).toBe('The initiator information is invalid.');

    sim.registerAccount({
      shortcode: '600810',
      passkey: 'pk-810',
      initiatorName: 'op810',
      initiatorPassword: 'P810!',
      initiatorRoles: ['reversal'],
    });
    sim.registerAccount({
      shortcode: '600820',
      passkey: 'pk-820',
      initiatorName: 'op820',
      initiatorPassword: 'P820!',
      initiatorLocked: true,
    });
    const ts = pushBody('').Timestamp as string;
    const r810 = await pay(sim, token, receiver, 5, {
      BusinessShortCode: '600810',
      PartyB: '600810',
      Password: password('600810', 'pk-810', ts),
      Timestamp: ts,
    });
    const noRole = await status({
      TransactionID: r810,
      PartyA: '600810',
      Initiator: 'op810',
      SecurityCredential: credential('P810!'),
    });
    expect(noRole.Result.ResultCode).toBe(21);
    const rev = await resultOf(
      sim,
      expectAccepted(
        await reverse(
          sim.url,
          token,
          reversalBody(receiver, r810, {
            ReceiverParty: '600810',
            Initiator: 'op810',
            SecurityCredential: credential('P810!'),
          }),
        ),
      ),
    );
    expect(rev.Result.ResultCode).toBe(0); // that operator does hold the reversal role
    const locked = await status({
      TransactionID: r810,
      PartyA: '600820',
      Initiator: 'op820',
      SecurityCredential: credential('P820!'),
    });
    expect(locked.Result.ResultCode).toBe(8006);
  });

  it.each([
    ['SecurityCredential', { SecurityCredential: 'xyz' }],
    ['CommandID', { CommandID: 'TransactionReversal' }],
    ['TransactionID', {}],
    ['TransactionID', { TransactionID: '', OriginalConversationID: ' ' }],
    ['TransactionID', { TransactionID: 'bad id!' }],
    ['PartyA', { TransactionID: 'NLJ7RT61SV', PartyA: 'abc' }],
    ['IdentifierType', { TransactionID: 'NLJ7RT61SV', IdentifierType: '1' }],
    ['IdentifierType', { TransactionID: 'NLJ7RT61SV', IdentifierType: undefined }],
    ['ResultURL', { TransactionID: 'NLJ7RT61SV', ResultURL: '/relative' }],
    ['QueueTimeOutURL', { TransactionID: 'NLJ7RT61SV', QueueTimeOutURL: undefined }],
    ['Remarks', { TransactionID: 'NLJ7RT61SV', Remarks: '' }],
  ])('answers 400 400.002.02 Invalid %s for %j and schedules nothing', async (field, overrides) => {
    const res = await transactionStatus(sim.url, token, statusBody(receiver, overrides));
    expectEnvelope(res, 400, '400.002.02', `Bad Request - Invalid ${field}`);
    await sleep(DELAY * 2);
    expect(sim.results()).toEqual([]);
    expect(sim.statusQueries()[0]?.state).toBe('rejected');
  });

  it('needs a Bearer token', async () => {
    const res = await transactionStatus(sim.url, 'expired', statusBody(receiver, { TransactionID: 'NLJ7RT61SV' }));
    expectEnvelope(res, 404, '404.001.03', 'Invalid Access Token');
  });

  it('records each query without secrets; controls apply (api filter, duplicate, none, queue timeout)', async () => {
    const receipt = await pay(sim, token, receiver, 5);
    const client = new SimulatorControlClient(sim.url);
    await client.forceResult({ api: 'reversal', resultCode: 1 }); // not taken by status queries
    await client.forceResult({ api: 'status', copies: 2, gapMs: 0 });
    const twice = expectAccepted(
      await transactionStatus(sim.url, token, statusBody(receiver, { TransactionID: receipt })),
    );
    const copies = await client.waitForResults(twice.ConversationID, 2);
    expect(copies.map((c) => JSON.stringify(c.body))).toEqual([
      JSON.stringify(copies[0]?.body),
      JSON.stringify(copies[0]?.body),
    ]);

    await client.forceResult({ api: 'status', delivery: 'none' });
    const none = expectAccepted(
      await transactionStatus(sim.url, token, statusBody(receiver, { TransactionID: receipt })),
    );
    await client.forceResult({ api: 'status', delivery: 'queue_timeout' });
    const timedOut = expectAccepted(
      await transactionStatus(sim.url, token, statusBody(receiver, { TransactionID: receipt })),
    );
    const [notice] = await client.waitForResults(timedOut.ConversationID);
    expect(notice?.target).toBe('queue_timeout');
    expect(notice?.url).toBe(`${receiver.url}/hooks/daraja/status/timeout`);
    await sleep(DELAY * 3);
    expect((await client.results()).filter((r) => r.conversationId === none.ConversationID)).toEqual([]);

    const queries = await client.statusQueries();
    expect(queries.map((q) => q.state)).toEqual(['completed', 'completed', 'timed_out']);
    expect(queries.map((q) => q.delivery)).toEqual(['result', 'none', 'queue_timeout']);
    expect(queries[0]?.request).toMatchObject({ TransactionID: receipt, PartyA: SHORTCODE, IdentifierType: '4' });
    expect(JSON.stringify(queries)).not.toContain('SecurityCredential');
    expect(JSON.stringify(queries)).not.toContain('Safaricom999');
    // The reversal control is still waiting for a reversal.
    const rev = await resultOf(sim, expectAccepted(await reverse(sim.url, token, reversalBody(receiver, receipt))));
    expect(rev.Result.ResultCode).toBe(1);
  });
});
