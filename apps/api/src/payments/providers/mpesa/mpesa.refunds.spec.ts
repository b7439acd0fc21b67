import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from '../../../config/app-config';
import type { Payment, Refund } from '../../../database/schema';
import type { ResolvedAccount } from '../../merchant-accounts.types';
import { RefundRefusedError } from '../../refunds.types';
import {
  darajaError,
  FakeDaraja,
  makeAccount,
  makeService,
  REVERSAL_PATH,
  STATUS_PATH,
  withFakeDaraja,
} from './fake-daraja.testing';
import { MpesaRefundService, refundStatusReport, StatusQueryRecord } from './mpesa.refunds';

const CERT_PEM = readFileSync(join(REPO_ROOT, 'packages/daraja-simulator/certs/simulator-test-cert.pem'), 'utf8');
const WAIT = 300;

const payment = (patch: Partial<Payment> = {}) =>
  ({
    id: 'p1',
    amountMinor: 50000n,
    currency: 'KES',
    provider: 'mpesa',
    mpesaReceiptNumber: 'NLJ7RT61SV',
    ...patch,
  }) as Payment;
const refund = (patch: Partial<Refund> = {}) =>
  ({
    id: '5b0d7a43-2c1e-4f8a-9d3b-7e6f5a4b3c2d',
    paymentId: 'p1',
    provider: 'mpesa',
    amountMinor: 20000n,
    currency: 'KES',
    status: 'requested',
    providerData: {},
    createdAt: new Date(),
    ...patch,
  }) as Refund;
const account = (patch: Partial<ResolvedAccount['settings']> = {}, secrets: Record<string, string> = {}) =>
  ({
    accountId: null,
    shopAccountId: null,
    provider: 'mpesa',
    environment: 'simulator',
    settings: { type: 'paybill', shortcode: '174379', initiatorName: 'apiop37', ...patch },
    secrets: { consumerKey: 'k', consumerSecret: 's', passkey: 'p', initiatorPassword: 'pw12', ...secrets },
  }) as ResolvedAccount;

describe('MpesaRefundService', () => {
  let fake: FakeDaraja;
  withFakeDaraja((f) => {
    fake = f;
  });
  const service = (pem: string | undefined = CERT_PEM) =>
    new MpesaRefundService(makeService(fake.baseUrl, { securityCertificatePem: pem }), {
      reversalWaitSeconds: WAIT,
      toDaraja: (a) =>
        makeAccount(fake.baseUrl, {
          initiatorName: a.settings.initiatorName,
          initiatorPassword: a.secrets.initiatorPassword,
        }),
    });
  const refused = (f: () => void) => {
    try {
      f();
    } catch (err) {
      expect(err).toBeInstanceOf(RefundRefusedError);
      return (err as RefundRefusedError).code;
    }
    throw new Error('not refused');
  };

  it('precheck refuses what M-Pesa cannot reverse, saying why', () => {
    const s = service();
    expect(() => s.precheck(payment(), 20000n, [], account())).not.toThrow();
    expect(refused(() => s.precheck(payment({ mpesaReceiptNumber: null }), 20000n, [], account()))).toBe(
      'MPESA_NO_RECEIPT',
    );
    expect(refused(() => s.precheck(payment(), 20050n, [], account()))).toBe('MPESA_WHOLE_SHILLINGS');
    expect(refused(() => s.precheck(payment({ currency: 'USD' }), 20000n, [], account()))).toBe('MPESA_CURRENCY');
    expect(refused(() => s.precheck(payment(), 20000n, [], account({ initiatorName: undefined })))).toBe(
      'MPESA_INITIATOR_NOT_CONFIGURED',
    );
    expect(refused(() => s.precheck(payment(), 20000n, [], account({}, { initiatorPassword: '' })))).toBe(
      'MPESA_INITIATOR_NOT_CONFIGURED',
    );
    expect(refused(() => s.precheck(payment(), 20000n, [refund({ status: 'pending' })], account()))).toBe(
      'MPESA_ONE_REVERSAL',
    );
    expect(() => s.precheck(payment(), 20000n, [refund({ status: 'failed' })], account())).not.toThrow();
    expect(refused(() => service('').precheck(payment(), 20000n, [], account()))).toBe(
      'MPESA_CERTIFICATE_NOT_CONFIGURED',
    );
  });

  it('submit: a reversal of the receipt for the whole shillings, with per-refund result URLs; pending with the ids', async () => {
    const r = refund();
    const report = await service().submit({ refund: r, payment: payment(), account: account() });
    const [req] = fake.of(REVERSAL_PATH);
    expect(req.json).toMatchObject({
      TransactionID: 'NLJ7RT61SV',
      Amount: '200',
      Initiator: 'apiop37',
      Remarks: `Refund ${r.id}`,
    });
    expect(req.json.ResultURL).toMatch(new RegExp(`/payments/callback/refunds/${r.id}/result/[0-9a-f]{64}$`));
    expect(req.json.QueueTimeOutURL).toMatch(new RegExp(`/payments/callback/refunds/${r.id}/timeout/[0-9a-f]{64}$`));
    expect(report).toMatchObject({
      status: 'pending',
      submitted: true,
      nextLookSeconds: WAIT,
      providerData: {
        originatorConversationId: 'f1e2-4b95-a71d-b30d3cdbb7a773521',
        conversationId: 'AG_20210706_20106e9209f64bebd051',
        reversalsSent: 1,
        reversals: [expect.objectContaining({ conversationId: 'AG_20210706_20106e9209f64bebd051' })],
      },
    });
  });

  it('submit: refused → failed (400.002.02 named); lost answer → unknown, counted, ids cleared', async () => {
    fake.reversal = () => darajaError(400, '400.002.02', 'Bad Request - Invalid SecurityCredential');
    expect(await service().submit({ refund: refund(), payment: payment(), account: account() })).toMatchObject({
      status: 'failed',
      reason: 'INITIATOR_CREDENTIAL_INVALID',
      providerCode: '400.002.02',
    });
    fake.reversal = () => 'destroy';
    expect(await service().submit({ refund: refund(), payment: payment(), account: account() })).toMatchObject({
      status: 'unknown',
      submitted: true,
      providerData: { reversalsSent: 1, originatorConversationId: null, conversationId: null },
    });
  });

  it('look: a pending reversal within its wait is left alone; after it, Transaction Status by the reversal id', async () => {
    const s = service();
    const sentAt = new Date(Date.now() - 10_000).toISOString();
    const pd = {
      originatorConversationId: 'orig-1',
      conversationId: 'AG_1',
      reversalsSent: 1,
      lastReversalSentAt: sentAt,
    };
    const early = await s.look({
      refund: refund({ status: 'pending', providerData: pd }),
      payment: payment(),
      account: account(),
    });
    expect(early.status).toBe('pending');
    expect(early.nextLookSeconds).toBeGreaterThan(WAIT - 20);
    expect(fake.count(STATUS_PATH)).toBe(0);

    const late = { ...pd, lastReversalSentAt: new Date(Date.now() - (WAIT + 5) * 1000).toISOString() };
    const asked = await s.look({
      refund: refund({ status: 'pending', providerData: late }),
      payment: payment(),
      account: account(),
    });
    expect(fake.of(STATUS_PATH)[0].json).toMatchObject({
      OriginalConversationID: 'orig-1',
      PartyA: '174379',
      IdentifierType: '4',
    });
    expect(fake.of(STATUS_PATH)[0].json.TransactionID).toBeUndefined();
    expect(asked).toMatchObject({
      status: 'pending',
      providerData: { statusQueries: 1, lastStatusQuery: { by: 'reversal', forReversal: 1 } },
    });
    expect(fake.count(REVERSAL_PATH)).toBe(0);
  });

  it('look: an interrupted (requested) or unknown refund without ids asks by the payment receipt first, never sends a reversal', async () => {
    const s = service();
    for (const r of [
      refund({ status: 'requested' }),
      refund({ status: 'unknown', providerData: { reversalsSent: 1, originatorConversationId: null } }),
    ]) {
      const report = await s.look({ refund: r, payment: payment(), account: account() });
      expect(report).toMatchObject({ status: 'unknown', providerData: { lastStatusQuery: { by: 'receipt' } } });
    }
    expect(fake.of(STATUS_PATH).map((q) => q.json.TransactionID)).toEqual(['NLJ7RT61SV', 'NLJ7RT61SV']);
    expect(fake.count(REVERSAL_PATH)).toBe(0);
  });

  it('look: sends the reversal again only with proof for the latest one, and never for a refund in review', async () => {
    const s = service();
    const pd = {
      reversalsSent: 1,
      resubmitProofFor: 1,
      originatorConversationId: 'orig-1',
      conversationId: 'AG_1',
      reversals: [{ originatorConversationId: 'orig-1', conversationId: 'AG_1', sentAt: 'x' }],
    };
    await s.look({ refund: refund({ status: 'review', providerData: pd }), payment: payment(), account: account() });
    expect(fake.count(REVERSAL_PATH)).toBe(0);
    await s.look({
      refund: refund({ status: 'unknown', providerData: { ...pd, resubmitProofFor: 0 } }),
      payment: payment(),
      account: account(),
    });
    expect(fake.count(REVERSAL_PATH)).toBe(0);
    const again = await s.look({
      refund: refund({ status: 'unknown', providerData: pd }),
      payment: payment(),
      account: account(),
    });
    expect(fake.count(REVERSAL_PATH)).toBe(1);
    expect(again).toMatchObject({
      status: 'pending',
      submitted: true,
      providerData: { reversalsSent: 2, resubmitProofFor: null },
    });
    expect((again.providerData as { reversals: unknown[] }).reversals).toHaveLength(2);
  });
});

describe('refundStatusReport', () => {
  const sentAt = Date.now() - 1000 * 1000;
  const q = (patch: Partial<StatusQueryRecord> = {}): StatusQueryRecord => ({
    originatorConversationId: 'q1',
    conversationId: 'AG_q1',
    by: 'reversal',
    sentAt: new Date(sentAt + (WAIT + 1) * 1000).toISOString(),
    forReversal: 1,
    ...patch,
  });
  const r = (patch: Partial<Refund> = {}) =>
    refund({ status: 'pending', providerData: { reversalsSent: 1 }, ...patch });
  const found = (transactionStatus: string) => ({
    kind: 'found' as const,
    transactionStatus,
    receiptNo: 'RVS1',
    amountMinor: 20000n,
  });
  const notFound = { kind: 'not_found' as const, resultCode: 'R000002', resultDesc: 'not found' };

  it('by reversal: completed → succeeded with its receipt and amount', () => {
    expect(refundStatusReport(found('completed'), r(), q(), sentAt, WAIT)).toMatchObject({
      status: 'succeeded',
      providerRefundId: 'RVS1',
      amountMinor: 20000n,
    });
  });

  it('by reversal: not found after the wait → proof (the next look sends again); before the wait, or for another reversal, or in review → still open', () => {
    expect(refundStatusReport(notFound, r(), q(), sentAt, WAIT)).toMatchObject({
      status: 'unknown',
      reason: 'REVERSAL_NOT_FOUND',
      providerData: { resubmitProofFor: 1 },
    });
    const early = q({ sentAt: new Date(sentAt + 10_000).toISOString() });
    expect(refundStatusReport(notFound, r(), early, sentAt, WAIT)).toEqual(
      expect.objectContaining({ status: 'pending' }),
    );
    expect(refundStatusReport(notFound, r(), early, sentAt, WAIT).providerData).toBeUndefined();
    expect(refundStatusReport(notFound, r(), q({ forReversal: 0 }), sentAt, WAIT).providerData).toBeUndefined();
    expect(refundStatusReport(notFound, r({ status: 'review' }), q(), sentAt, WAIT).providerData).toBeUndefined();
  });

  it('by receipt: reversed → succeeded; completed after the wait → proof; completed before → still open', () => {
    expect(refundStatusReport(found('reversed'), r(), q({ by: 'receipt' }), sentAt, WAIT).status).toBe('succeeded');
    expect(refundStatusReport(found('completed'), r(), q({ by: 'receipt' }), sentAt, WAIT)).toMatchObject({
      providerData: { resubmitProofFor: 1 },
    });
    expect(
      refundStatusReport(
        found('completed'),
        r(),
        q({ by: 'receipt', sentAt: new Date(sentAt).toISOString() }),
        sentAt,
        WAIT,
      ),
    ).toMatchObject({ status: 'pending' });
  });

  it('a refused query or an unreadable answer proves nothing', () => {
    const refusedFacts = {
      kind: 'refused' as const,
      resultCode: '2001',
      resultDesc: 'x',
      message: 'update the initiator',
    };
    expect(refundStatusReport(refusedFacts, r({ status: 'unknown' }), q(), sentAt, WAIT)).toMatchObject({
      status: 'unknown',
      reason: 'STATUS_QUERY_REFUSED',
    });
    expect(
      refundStatusReport({ kind: 'inconclusive', resultCode: '17', resultDesc: '' }, r(), q(), sentAt, WAIT)
        .providerData,
    ).toBeUndefined();
  });
});
