import { parseStkCallback } from './callback-parser';
import { CallbackShapeError } from './mpesa.errors';

/** daraja.md §2.5 success sample (Balance without Value, Amount 1.00). */
const officialSuccess = () => ({
  Body: {
    stkCallback: {
      MerchantRequestID: '29115-34620561-1',
      CheckoutRequestID: 'ws_CO_191220191020363925',
      ResultCode: 0,
      ResultDesc: 'The service request is processed successfully.',
      CallbackMetadata: {
        Item: [
          { Name: 'Amount', Value: 1.0 },
          { Name: 'MpesaReceiptNumber', Value: 'NLJ7RT61SV' },
          { Name: 'Balance' },
          { Name: 'TransactionDate', Value: 20191219102115 },
          { Name: 'PhoneNumber', Value: 254708374149 },
        ],
      },
    },
  },
});

const officialCancel = () => ({
  Body: {
    stkCallback: {
      MerchantRequestID: 'f1e2-4b95-a71d-b30d3cdbb7a7942864',
      CheckoutRequestID: 'ws_CO_21072024125243250722943992',
      ResultCode: 1032,
      ResultDesc: 'Request cancelled by user',
    },
  },
});

const expectedSuccess = {
  merchantRequestId: '29115-34620561-1',
  checkoutRequestId: 'ws_CO_191220191020363925',
  resultCode: '0',
  resultDesc: 'The service request is processed successfully.',
  outcome: 'completed',
  metadata: {
    amount: 1,
    mpesaReceiptNumber: 'NLJ7RT61SV',
    transactionDate: '20191219102115',
    phoneNumber: '254708374149',
  },
};

describe('parseStkCallback: real payload shapes', () => {
  it('parses the official success sample (Balance without Value)', () => {
    expect(parseStkCallback(officialSuccess())).toEqual(expectedSuccess);
  });

  it('parses a success whose raw JSON has Amount 1.00', () => {
    const raw =
      '{"Body":{"stkCallback":{"MerchantRequestID":"29115-34620561-1","CheckoutRequestID":"ws_CO_191220191020363925",' +
      '"ResultCode":0,"ResultDesc":"The service request is processed successfully.","CallbackMetadata":{"Item":[' +
      '{"Name":"Amount","Value":1.00},{"Name":"MpesaReceiptNumber","Value":"NLJ7RT61SV"},{"Name":"Balance"},' +
      '{"Name":"TransactionDate","Value":20191219102115},{"Name":"PhoneNumber","Value":254708374149}]}}}}';
    expect(parseStkCallback(JSON.parse(raw))).toEqual(expectedSuccess);
  });

  it('parses a decimal amount as sent (caller compares)', () => {
    const body = officialSuccess();
    body.Body.stkCallback.CallbackMetadata.Item[0] = { Name: 'Amount', Value: 10.5 };
    expect(parseStkCallback(body).metadata?.amount).toBe(10.5);
  });

  it('does not depend on item order', () => {
    const body = officialSuccess();
    body.Body.stkCallback.CallbackMetadata.Item.reverse();
    const items = body.Body.stkCallback.CallbackMetadata.Item;
    [items[0], items[2]] = [items[2], items[0]];
    expect(parseStkCallback(body)).toEqual(expectedSuccess);
  });

  it('ignores a weird Balance string and unknown items', () => {
    const body = officialSuccess();
    body.Body.stkCallback.CallbackMetadata.Item[2] = {
      Name: 'Balance',
      Value: '{Amount={CurrencyCode=KES, MinimumAmount=618683, BasicAmount=6186.83}}',
    } as never;
    (body.Body.stkCallback.CallbackMetadata.Item as unknown[]).push({ Name: 'SomethingNew', Value: { nested: true } });
    expect(parseStkCallback(body)).toEqual(expectedSuccess);
  });

  it('tolerates missing items (3.0 sample has no Balance; PhoneNumber absent)', () => {
    const body = officialSuccess();
    body.Body.stkCallback.CallbackMetadata.Item = body.Body.stkCallback.CallbackMetadata.Item.filter(
      (i) => i.Name !== 'Balance' && i.Name !== 'PhoneNumber',
    );
    expect(parseStkCallback(body).metadata).toEqual({
      amount: 1,
      mpesaReceiptNumber: 'NLJ7RT61SV',
      transactionDate: '20191219102115',
    });
  });

  it('parses the official cancel sample without metadata', () => {
    expect(parseStkCallback(officialCancel())).toEqual({
      merchantRequestId: 'f1e2-4b95-a71d-b30d3cdbb7a7942864',
      checkoutRequestId: 'ws_CO_21072024125243250722943992',
      resultCode: '1032',
      resultDesc: 'Request cancelled by user',
      outcome: 'cancelled',
    });
    expect('metadata' in parseStkCallback(officialCancel())).toBe(false);
  });

  it.each([
    ['1032', '1032', 'cancelled'],
    ['0', '0', 'completed'],
    ['1037', '1037', 'expired'],
    [1019, '1019', 'expired'],
    [1, '1', 'failed'],
    ['SFC_IC0003', 'SFC_IC0003', 'failed'],
  ])('normalises ResultCode %p to %p (%s)', (code, expected, outcome) => {
    const body = officialCancel();
    (body.Body.stkCallback as Record<string, unknown>).ResultCode = code;
    const parsed = parseStkCallback(body);
    expect(parsed.resultCode).toBe(expected);
    expect(parsed.outcome).toBe(outcome);
  });

  it('returns a success without CallbackMetadata with metadata undefined', () => {
    const body = officialSuccess() as { Body: { stkCallback: Record<string, unknown> } };
    delete body.Body.stkCallback.CallbackMetadata;
    const parsed = parseStkCallback(body);
    expect(parsed.outcome).toBe('completed');
    expect(parsed.metadata).toBeUndefined();
  });

  it('accepts string forms of TransactionDate / PhoneNumber / Amount', () => {
    const body = officialSuccess();
    body.Body.stkCallback.CallbackMetadata.Item = [
      { Name: 'Amount', Value: '100.00' },
      { Name: 'MpesaReceiptNumber', Value: 'NLJ7RT61SV' },
      { Name: 'TransactionDate', Value: '20191219102115' },
      { Name: 'PhoneNumber', Value: '2547******49' },
    ] as never;
    expect(parseStkCallback(body).metadata).toEqual({
      amount: 100,
      mpesaReceiptNumber: 'NLJ7RT61SV',
      transactionDate: '20191219102115',
      phoneNumber: '2547******49',
    });
  });
});

describe('parseStkCallback: malformed bodies', () => {
  const withCb = (patch: Record<string, unknown>) => {
    const body = officialSuccess() as { Body: { stkCallback: Record<string, unknown> } };
    Object.assign(body.Body.stkCallback, patch);
    return body;
  };
  const withItems = (items: unknown) => withCb({ CallbackMetadata: { Item: items } });

  it.each<[string, unknown, RegExp]>([
    ['null', null, /body must be a JSON object/],
    ['a string', '{"Body":{}}', /body must be a JSON object/],
    ['an array', [officialSuccess()], /body must be a JSON object/],
    ['empty object', {}, /Body must be an object/],
    ['Body without stkCallback', { Body: {} }, /stkCallback must be an object/],
    ['stkCallback an array', { Body: { stkCallback: [] } }, /stkCallback must be an object/],
    ['missing MerchantRequestID', withCb({ MerchantRequestID: undefined }), /MerchantRequestID must be a string/],
    ['missing CheckoutRequestID', withCb({ CheckoutRequestID: undefined }), /CheckoutRequestID must be a string/],
    ['numeric CheckoutRequestID', withCb({ CheckoutRequestID: 123 }), /CheckoutRequestID must be a string/],
    ['empty CheckoutRequestID', withCb({ CheckoutRequestID: '  ' }), /CheckoutRequestID must not be empty/],
    ['huge CheckoutRequestID', withCb({ CheckoutRequestID: 'x'.repeat(201) }), /CheckoutRequestID is longer than 200/],
    [
      'huge MerchantRequestID',
      withCb({ MerchantRequestID: 'x'.repeat(10_000) }),
      /MerchantRequestID is longer than 200/,
    ],
    ['missing ResultCode', withCb({ ResultCode: undefined }), /ResultCode/],
    ['ResultCode object', withCb({ ResultCode: { code: 0 } }), /ResultCode must be a number or a numeric string/],
    ['ResultCode fraction', withCb({ ResultCode: 0.5 }), /ResultCode must be an integer/],
    ['ResultCode sentence', withCb({ ResultCode: 'zero or one' }), /ResultCode must be a number or a numeric string/],
    ['ResultCode word', withCb({ ResultCode: 'abc' }), /ResultCode must be a number or a numeric string/],
    ['ResultCode boolean', withCb({ ResultCode: true }), /ResultCode must be a number or a numeric string/],
    ['ResultDesc missing', withCb({ ResultDesc: undefined }), /ResultDesc must be a string/],
    ['CallbackMetadata a string', withCb({ CallbackMetadata: 'x' }), /CallbackMetadata must be an object/],
    [
      'Item not an array',
      withCb({ CallbackMetadata: { Item: { Name: 'Amount', Value: 1 } } }),
      /Item must be an array/,
    ],
    ['Item missing', withCb({ CallbackMetadata: {} }), /Item must be an array/],
    ['item not an object', withItems(['Amount']), /Item\[0\] must be an object/],
    ['item without Name', withItems([{ Value: 1 }]), /Item\[0\]\.Name must be a non-empty string/],
    ['Amount "abc"', withItems([{ Name: 'Amount', Value: 'abc' }]), /Amount must be a non-negative number/],
    ['Amount negative', withItems([{ Name: 'Amount', Value: -1 }]), /Amount must be a non-negative number/],
    [
      'TransactionDate too short',
      withItems([{ Name: 'TransactionDate', Value: 2019121910 }]),
      /TransactionDate must be a 14-digit/,
    ],
    [
      'MpesaReceiptNumber number',
      withItems([{ Name: 'MpesaReceiptNumber', Value: 12345 }]),
      /MpesaReceiptNumber must be a string/,
    ],
    ['PhoneNumber object', withItems([{ Name: 'PhoneNumber', Value: {} }]), /PhoneNumber must be a number or a string/],
    [
      'duplicate Amount',
      withItems([
        { Name: 'Amount', Value: 1 },
        { Name: 'Amount', Value: 1000 },
      ]),
      /Amount more than once/,
    ],
  ])('rejects %s', (_label, body, message) => {
    let thrown: unknown;
    try {
      parseStkCallback(body);
    } catch (e) {
      thrown = e;
    }
    expect(thrown).toBeInstanceOf(CallbackShapeError);
    const err = thrown as CallbackShapeError;
    expect(err.code).toBe('INVALID_CALLBACK');
    expect(err.statusCode).toBe(400);
    expect(err.message).toMatch(/^Invalid STK callback: /);
    expect(err.message).toMatch(message);
  });
});
