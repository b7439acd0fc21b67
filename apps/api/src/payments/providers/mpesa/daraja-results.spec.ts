import {
  parseDarajaResult,
  parseQueueTimeout,
  partyShortcode,
  REVERSAL_RESULT_CODES,
  reversalResultReport,
  shillingsToMinor,
  statusFacts,
} from './daraja-results';
import { CallbackShapeError } from './mpesa.errors';

const result = (patch: Record<string, unknown> = {}, params?: unknown) => ({
  Result: {
    ResultType: 0,
    ResultCode: 0,
    ResultDesc: 'The service request is processed successfully.',
    OriginatorConversationID: '8521-4298025-1',
    ConversationID: 'AG_20181005_00004d7ee675c0c7ee0b',
    TransactionID: 'MJ561H6X5O',
    ...(params === undefined
      ? {
          ResultParameters: {
            ResultParameter: [
              { Key: 'DebitAccountBalance', Value: 'Utility Account|KES|7722179.62|7722179.62|0.00|0.00' },
              { Key: 'Amount', Value: 200 },
              { Key: 'TransCompletedTime', Value: 20181005153225 },
              { Key: 'OriginalTransactionID', Value: 'MJ551H6X5D' },
              { Key: 'Charge', Value: 0 },
              { Key: 'CreditPartyPublicName', Value: '254708374149 - John Doe' },
              { Key: 'DebitPartyPublicName', Value: '600610 - Safaricom333' },
            ],
          },
        }
      : { ResultParameters: params }),
    ReferenceData: { ReferenceItem: { Key: 'QueueTimeoutURL', Value: 'https://internalsandbox.safaricom.co.ke/x' } },
    ...patch,
  },
});

describe('parseDarajaResult', () => {
  it('normalises a success: codes as strings, parameters by key', () => {
    const r = parseDarajaResult(result());
    expect(r).toMatchObject({
      resultType: 0,
      resultCode: '0',
      originatorConversationId: '8521-4298025-1',
      conversationId: 'AG_20181005_00004d7ee675c0c7ee0b',
      transactionId: 'MJ561H6X5O',
    });
    expect(r.parameters).toMatchObject({ Amount: '200', TransCompletedTime: '20181005153225', Charge: '0' });
  });

  it('reads a string or a number code, a single-object ResultParameter, items without Value, no parameters', () => {
    expect(parseDarajaResult(result({ ResultCode: '2001' })).resultCode).toBe('2001');
    expect(parseDarajaResult(result({ ResultCode: ' 21 ' })).resultCode).toBe('21');
    expect(parseDarajaResult(result({ ResultCode: 'R000001' })).resultCode).toBe('R000001');
    expect(parseDarajaResult(result({}, { ResultParameter: { Key: 'Amount', Value: '50' } })).parameters).toEqual({
      Amount: '50',
    });
    expect(
      parseDarajaResult(result({}, { ResultParameter: [{ Key: 'Balance' }, { Key: 'Amount', Value: 1 }] })).parameters,
    ).toEqual({
      Amount: '1',
    });
    const bare = { Result: { ResultCode: 'R000002', ResultDesc: 'invalid' } };
    expect(parseDarajaResult(bare)).toEqual({
      resultType: undefined,
      resultCode: 'R000002',
      resultDesc: 'invalid',
      originatorConversationId: undefined,
      conversationId: undefined,
      transactionId: undefined,
      parameters: {},
    });
  });

  it('refuses what is not a Result (400)', () => {
    for (const bad of [
      null,
      [],
      'x',
      {},
      { Result: [] },
      { Result: {} },
      { Result: { ResultCode: null } },
      { Result: { ResultCode: '' } },
      { Result: { ResultCode: 0, ResultParameters: 'x' } },
      { Result: { ResultCode: 0, ResultParameters: { ResultParameter: [{ Value: 1 }] } } },
    ])
      expect(() => parseDarajaResult(bad)).toThrow(CallbackShapeError);
  });

  it('reads a queue timeout notice leniently', () => {
    expect(parseQueueTimeout({ Result: { ConversationID: 'AG_1', OriginatorConversationID: 'o1' } })).toEqual({
      conversationId: 'AG_1',
      originatorConversationId: 'o1',
    });
    expect(parseQueueTimeout({ anything: true })).toEqual({});
    expect(() => parseQueueTimeout('x')).toThrow(CallbackShapeError);
  });
});

describe('reversalResultReport', () => {
  const one = { reversalsSent: 1 };

  it('0: succeeded with the reversal receipt and the amount given back in minor units', () => {
    expect(reversalResultReport(parseDarajaResult(result()), one)).toMatchObject({
      status: 'succeeded',
      providerCode: '0',
      providerRefundId: 'MJ561H6X5O',
      amountMinor: 20000n,
      providerData: { reversalReceipt: 'MJ561H6X5O', reversalCompletedTime: '20181005153225' },
    });
    expect(
      reversalResultReport(
        parseDarajaResult(result({ ResultCode: '0' }, { ResultParameter: { Key: 'Amount', Value: '99.50' } })),
        one,
      ).amountMinor,
    ).toBe(9950n);
  });

  it('R000001 already reversed: failed when this refund sent one reversal, review (a person settles it, nothing sent again) when it sent more', () => {
    const r = parseDarajaResult(
      result({ ResultCode: 'R000001', ResultDesc: 'The transaction has already been reversed.' }),
    );
    expect(reversalResultReport(r, one)).toMatchObject({
      status: 'failed',
      reason: 'ALREADY_REVERSED',
      providerCode: 'R000001',
      message: expect.stringContaining('Check the M-Pesa statement'),
    });
    expect(reversalResultReport(r, { reversalsSent: 2 })).toMatchObject({
      status: 'review',
      reason: 'ALREADY_REVERSED',
      message: expect.stringContaining('settle this refund'),
    });
  });

  it.each([
    ['R000002', 'UNKNOWN_RECEIPT', /does not know this payment's receipt/],
    ['2001', 'INITIATOR_INVALID', /update the initiator on the shop's M-Pesa account/i],
    ['21', 'MISSING_ROLE', /Org Reversals Initiator/],
    ['8006', 'INITIATOR_LOCKED', /locked/],
    ['1', 'INSUFFICIENT_BALANCE', /Top up/],
    ['11', 'DEBIT_PARTY_INVALID_STATE', /business care/],
    ['2006', 'ACCOUNT_RULE', /account rule/],
    ['2028', 'NOT_PERMITTED', /enable reversals/],
  ])('%s → failed %s, saying what to do', (code, reason, message) => {
    for (const wire of [code, /^\d+$/.test(code) ? Number(code) : code]) {
      const report = reversalResultReport(parseDarajaResult(result({ ResultCode: wire, TransactionID: 'X' })), one);
      expect(report).toMatchObject({ status: 'failed', reason, providerCode: code });
      expect(report.message).toMatch(message);
      expect(report.message).toContain('No money was sent back');
      expect(report.providerRefundId).toBeUndefined();
    }
  });

  it('every documented code has a meaning', () => {
    expect(Object.keys(REVERSAL_RESULT_CODES).sort()).toEqual([
      '1',
      '11',
      '2001',
      '2006',
      '2028',
      '21',
      '8006',
      'R000002',
    ]);
  });

  it('any other code: failed with the code and text; ResultType 1: still pending', () => {
    expect(
      reversalResultReport(parseDarajaResult(result({ ResultCode: 17, ResultDesc: 'System internal error' })), one),
    ).toMatchObject({
      status: 'failed',
      reason: 'REVERSAL_FAILED',
      providerCode: '17',
      message: expect.stringContaining('code 17: System internal error'),
    });
    expect(reversalResultReport(parseDarajaResult(result({ ResultType: 1, ResultCode: 4999 })), one).status).toBe(
      'pending',
    );
  });
});

describe('statusFacts', () => {
  const status = (code: unknown, params: Array<{ Key: string; Value?: unknown }> = []) =>
    parseDarajaResult({ Result: { ResultCode: code, ResultDesc: 'd', ResultParameters: { ResultParameter: params } } });

  it('found: the transaction status, receipt, amount and parties', () => {
    expect(
      statusFacts(
        status(0, [
          { Key: 'ReceiptNo', Value: 'NEF61H8J60' },
          { Key: 'TransactionStatus', Value: 'Completed' },
          { Key: 'Amount', Value: 300 },
          { Key: 'CreditPartyName', Value: '174379 - SmartDuka' },
          { Key: 'DebitPartyName', Value: '254708374149 - John' },
          { Key: 'ReasonType', Value: 'Pay Bill Online' },
        ]),
      ),
    ).toEqual({
      kind: 'found',
      transactionStatus: 'completed',
      receiptNo: 'NEF61H8J60',
      amountMinor: 30000n,
      creditPartyName: '174379 - SmartDuka',
      debitPartyName: '254708374149 - John',
      reasonType: 'Pay Bill Online',
      finalisedTime: undefined,
    });
    expect(statusFacts(status(0)).kind).toBe('inconclusive');
  });

  it('not found, refused (the initiator), inconclusive', () => {
    expect(statusFacts(status('R000002')).kind).toBe('not_found');
    expect(statusFacts(status(2032)).kind).toBe('inconclusive'); // undocumented: never proof of absence
    expect(statusFacts(status(2001))).toMatchObject({ kind: 'refused', message: expect.stringContaining('initiator') });
    expect(statusFacts(status(21))).toMatchObject({
      kind: 'refused',
      message: expect.stringContaining('Transaction Status query ORG API'),
    });
    expect(statusFacts(status(8006)).kind).toBe('refused');
    expect(statusFacts(status(1)).kind).toBe('inconclusive');
  });
});

describe('helpers', () => {
  it('shillingsToMinor', () => {
    expect(shillingsToMinor('200')).toBe(20000n);
    expect(shillingsToMinor('1.5')).toBe(150n);
    expect(shillingsToMinor('1.05')).toBe(105n);
    for (const bad of [undefined, '', '-1', '1.005', 'abc', '1e3']) expect(shillingsToMinor(bad)).toBeUndefined();
  });
  it('partyShortcode', () => {
    expect(partyShortcode('174379 - SmartDuka')).toBe('174379');
    expect(partyShortcode('SmartDuka')).toBeUndefined();
    expect(partyShortcode(undefined)).toBeUndefined();
  });
});
