import type { Payment, Refund } from '../../../database/schema';
import type { MerchantAccountsService } from '../../merchant-accounts.service';
import type { PaymentLifecycle } from '../../payment-lifecycle.service';
import type { PaymentsRepository } from '../../payments.repository';
import type { RefundsService } from '../../refunds.service';
import { scopedCallbackToken } from './callback-token';
import { parseDarajaResult } from './daraja-results';
import type { DarajaService } from './daraja.service';
import { MpesaReceiptCheck } from './mpesa-receipt-check';
import { MpesaResultsService } from './mpesa-results.service';
import { MpesaRefundService } from './mpesa.refunds';
import { captureLogs } from './fake-daraja.testing';

let logs: ReturnType<typeof captureLogs>;
beforeEach(() => {
  logs = captureLogs();
});
afterEach(() => logs.restore());

const SECRET = 'results-secret-0123456789abcdefghijklmnop';
const REFUND = '5b0d7a43-2c1e-4f8a-9d3b-7e6f5a4b3c2d';

function harness(refund: Partial<Refund>) {
  let nextId = 0n;
  const inbox = new Map<bigint, { outcome?: string; verified: boolean }>();
  const repo = {
    insertCallback: jest.fn(async (row: { verified: boolean }) => {
      nextId += 1n;
      inbox.set(nextId, { verified: row.verified });
      return nextId;
    }),
    storeCoalescedCallback: jest.fn(async (row: { verified: boolean; outcome: string }) => {
      nextId += 1n;
      inbox.set(nextId, { verified: row.verified, outcome: row.outcome });
      return { id: nextId, first: true, finished: true };
    }),
    markCallbackProcessed: jest.fn(async (id: bigint, outcome: string) => {
      inbox.get(id)!.outcome = outcome;
    }),
    deferCallback: jest.fn(async (id: bigint) => {
      inbox.get(id)!.outcome = 'deferred';
    }),
  };
  const r = {
    id: REFUND,
    provider: 'mpesa',
    status: 'pending',
    providerData: {},
    createdAt: new Date(),
    ...refund,
  } as Refund;
  const refunds = {
    findById: jest.fn(async (id: string) => (id === REFUND ? r : null)),
    applyReport: jest.fn(async () => ({ refund: r, changed: true })),
  };
  const svc = new MpesaResultsService(
    repo as unknown as PaymentsRepository,
    refunds as unknown as RefundsService,
    new MpesaRefundService({} as DarajaService, { reversalWaitSeconds: 0, toDaraja: () => ({}) as never }),
    {} as MpesaReceiptCheck,
    SECRET,
    0,
  );
  return { svc, repo, refunds, inbox };
}

const resultBody = (conversationId: string, code: number | string = 0) => ({
  Result: {
    ResultType: 0,
    ResultCode: code,
    ResultDesc: 'x',
    OriginatorConversationID: `o-${conversationId}`,
    ConversationID: conversationId,
    TransactionID: 'RVS1234567',
  },
});
const deliver = (
  svc: MpesaResultsService,
  body: unknown,
  token = scopedCallbackToken(SECRET, 'refund-result', REFUND),
) => svc.receive({ kind: 'reversal_result', id: REFUND, token, body, rawBody: JSON.stringify(body) });

describe('MpesaResultsService', () => {
  it("applies a result naming one of the refund's reversals, and stores it first", async () => {
    const h = harness({
      providerData: {
        conversationId: 'AG_2',
        reversals: [{ conversationId: 'AG_1', originatorConversationId: 'o-AG_1', sentAt: 'x' }],
      },
    });
    expect(await deliver(h.svc, resultBody('AG_1'))).toEqual({ ResultCode: 0, ResultDesc: 'Accepted' });
    expect(h.repo.insertCallback.mock.invocationCallOrder[0]).toBeLessThan(
      h.refunds.applyReport.mock.invocationCallOrder[0],
    );
    expect(h.refunds.applyReport).toHaveBeenCalledWith(
      REFUND,
      expect.objectContaining({ status: 'succeeded' }),
      'daraja:reversal_result',
    );
    expect([...h.inbox.values()]).toEqual([{ verified: true, outcome: 'applied' }]);
  });

  it('a result for another ConversationID is never applied: kept for a retry (its ids may not be stored yet), then a mismatch', async () => {
    const h = harness({ providerData: { conversationId: 'AG_1', originatorConversationId: 'o-AG_1' } });
    await deliver(h.svc, resultBody('AG_9'));
    expect(h.refunds.applyReport).not.toHaveBeenCalled();
    expect([...h.inbox.values()]).toEqual([{ verified: true, outcome: 'deferred' }]);
    const row = {
      id: 1n,
      provider: 'mpesa',
      kind: 'reversal_result',
      verified: true,
      urlPaymentId: REFUND,
      rawBody: JSON.stringify(resultBody('AG_9')),
    };
    expect(await h.svc.replay({ ...row, attempts: 2 })).toBe('deferred');
    expect(await h.svc.replay({ ...row, attempts: 3 })).toBe('mismatch');
    expect(h.refunds.applyReport).not.toHaveBeenCalled();
    expect(h.inbox.get(1n)?.outcome).toBe('mismatch');
  });

  it("a forged token, or another scope's token, is stored unverified and never applied", async () => {
    const h = harness({ providerData: { conversationId: 'AG_1' } });
    await deliver(h.svc, resultBody('AG_1'), '0'.repeat(64));
    await deliver(h.svc, resultBody('AG_1'), scopedCallbackToken(SECRET, 'refund-timeout', REFUND));
    expect(h.refunds.applyReport).not.toHaveBeenCalled();
    expect(h.repo.insertCallback).not.toHaveBeenCalled();
    expect([...h.inbox.values()]).toEqual([
      { verified: false, outcome: 'rejected_unverified' },
      { verified: false, outcome: 'rejected_unverified' },
    ]);
  });

  it('a body that is not a Result is stored, then refused (400)', async () => {
    const h = harness({});
    await expect(deliver(h.svc, { nope: true })).rejects.toMatchObject({ statusCode: 400 });
    expect([...h.inbox.values()]).toEqual([{ verified: true, outcome: 'invalid_shape' }]);
  });

  it('a queue timeout makes the refund unknown (not failed); a status result for another query is a mismatch', async () => {
    const h = harness({ providerData: { conversationId: 'AG_1', originatorConversationId: 'o-AG_1' } });
    await h.svc.receive({
      kind: 'reversal_timeout',
      id: REFUND,
      token: scopedCallbackToken(SECRET, 'refund-timeout', REFUND),
      body: { Result: { ResultCode: 1, ConversationID: 'AG_1' } },
      rawBody: '{}',
    });
    expect(h.refunds.applyReport).toHaveBeenCalledWith(
      REFUND,
      expect.objectContaining({ status: 'unknown', reason: 'QUEUE_TIMEOUT' }),
      'daraja:reversal_timeout',
    );
    await h.svc.receive({
      kind: 'status_result',
      id: REFUND,
      token: scopedCallbackToken(SECRET, 'refund-status', REFUND),
      body: resultBody('AG_S'),
      rawBody: '{}',
    });
    expect(h.refunds.applyReport).toHaveBeenCalledTimes(1);
    expect([...h.inbox.values()].map((v) => v.outcome)).toEqual(['applied', 'deferred']);
  });

  it('an unknown refund id with a valid token changes nothing', async () => {
    const h = harness({});
    const other = '00000000-0000-4000-8000-000000000000';
    await h.svc.receive({
      kind: 'reversal_result',
      id: other,
      token: scopedCallbackToken(SECRET, 'refund-result', other),
      body: resultBody('AG_1'),
      rawBody: '{}',
    });
    expect(h.refunds.applyReport).not.toHaveBeenCalled();
    expect([...h.inbox.values()]).toEqual([{ verified: true, outcome: 'unknown_refund' }]);
  });
});

describe('MpesaReceiptCheck.apply', () => {
  const created = new Date('2026-12-02T10:00:00Z');
  const payment = {
    id: 'p1',
    provider: 'mpesa',
    status: 'review',
    statusReason: 'OUTCOME_UNKNOWN',
    merchantAccountId: null,
    amountMinor: 7500n,
    createdAt: created,
  } as Payment;
  function check() {
    const repo = {
      findById: jest.fn(async () => payment),
      listEvents: jest.fn(async () => [
        {
          type: 'mpesa_receipt_check',
          data: { receipt: 'NLJ7RT61SV', conversationId: 'AG_S', originatorConversationId: 'o-AG_S' },
        },
      ]),
      insertEvent: jest.fn(async () => undefined),
    };
    const lifecycle = { applyOutcome: jest.fn(async () => 'applied') };
    const accounts = { resolveForExisting: jest.fn(async () => ({ settings: { shortcode: '174379' }, secrets: {} })) };
    const c = new MpesaReceiptCheck(
      repo as unknown as PaymentsRepository,
      lifecycle as unknown as PaymentLifecycle,
      accounts as unknown as MerchantAccountsService,
      {} as DarajaService,
      () => ({}) as never,
    );
    return { c, repo, lifecycle };
  }
  const status = (params: Record<string, unknown>, conversationId = 'AG_S', code: unknown = 0) =>
    parseDarajaResult({
      Result: {
        ResultCode: code,
        ResultDesc: 'd',
        ConversationID: conversationId,
        ResultParameters: {
          ResultParameter: Object.entries({
            ReceiptNo: 'NLJ7RT61SV',
            TransactionStatus: 'Completed',
            Amount: 75,
            CreditPartyName: '174379 - SHOP',
            FinalisedTime: '20261202131000', // 10:10 UTC
            ...params,
          }).map(([Key, Value]) => ({ Key, Value })),
        },
      },
    });

  it('completes the payment through the lifecycle with the amount and receipt M-Pesa reports', async () => {
    const { c, lifecycle } = check();
    expect(await c.apply('p1', status({}))).toBe('applied');
    expect(lifecycle.applyOutcome).toHaveBeenCalledWith(
      'p1',
      expect.objectContaining({
        outcome: 'completed',
        source: 'query',
        amountRequired: true,
        amountMinor: 7500n,
        receipt: 'NLJ7RT61SV',
      }),
      'daraja:status_result',
    );
  });

  it.each([
    ['another shortcode', { CreditPartyName: '600000 - OTHER' }, 'other_shortcode'],
    ['not completed', { TransactionStatus: 'Reversed' }, 'not_completed'],
    ['another receipt', { ReceiptNo: 'AAAAAAAAAA' }, 'receipt_mismatch'],
    ['made before the push', { FinalisedTime: '20261201120000' }, 'before_payment'],
  ])('%s: not applied, the answer recorded', async (_what, params, outcome) => {
    const { c, lifecycle, repo } = check();
    expect(await c.apply('p1', status(params))).toBe(outcome);
    expect(lifecycle.applyOutcome).not.toHaveBeenCalled();
    expect(repo.insertEvent).toHaveBeenCalledWith(
      expect.objectContaining({ type: 'mpesa_receipt_check_answered', data: expect.objectContaining({ outcome }) }),
    );
  });

  it('a result for a query we did not send is a mismatch; not found is recorded', async () => {
    const { c, lifecycle } = check();
    expect(await c.apply('p1', status({}, 'AG_OTHER'))).toBe('mismatch');
    expect(await c.apply('p1', status({}, 'AG_S', 'R000002'))).toBe('receipt_not_found');
    expect(lifecycle.applyOutcome).not.toHaveBeenCalled();
  });
});
