import { ProviderError } from '../provider-errors';
import {
  buildPullQueryBody,
  buildPullRegisterBody,
  clampPullWindow,
  parsePullQueryAnswer,
  parsePullRegisterAnswer,
  pullAmountMinor,
  pullDate,
  pullTime,
  PULL_WINDOW_MS,
} from './pull-transactions';

const NOW = new Date('2026-12-03T09:00:00Z');

describe('Pull Transactions register', () => {
  it('builds Daraja’s body', () => {
    expect(
      buildPullRegisterBody('600111', '254722000000', 'https://pay.example.com/payments/callback/pull/600111/t'),
    ).toStrictEqual({
      ShortCode: '600111',
      RequestType: 'Pull',
      NominatedNumber: '254722000000',
      CallBackURL: 'https://pay.example.com/payments/callback/pull/600111/t',
    });
  });

  it('refuses a nominated number not in 2547… form and a plain-http callback', () => {
    expect(() => buildPullRegisterBody('600111', '0722000000', 'https://x.example/p')).toThrow(/nominatedNumber/);
    expect(() => buildPullRegisterBody('600111', '254722000000', 'http://x.example/p')).toThrow(/https/);
  });

  it('reads registered, already registered (either key spelling) and refusals', () => {
    expect(
      parsePullRegisterAnswer({
        ResponseRefID: 'r1',
        ResponseStatus: '1000',
        ShortCode: '600000',
        ResponseDescription: 'Shortcode Registered Successfully',
      }),
    ).toEqual({ kind: 'registered', responseRefId: 'r1', description: 'Shortcode Registered Successfully' });
    expect(
      parsePullRegisterAnswer({ 'Response Status': '1001', 'Response Description': 'ShortCode already Registered' }),
    ).toMatchObject({ kind: 'already_registered' });
    expect(
      parsePullRegisterAnswer({ ResponseStatus: '1001', ResponseDescription: 'Organization Name not available' }),
    ).toEqual({ kind: 'refused', code: '1001', description: 'Organization Name not available' });
    expect(() => parsePullRegisterAnswer({ ResponseDescription: 'x' })).toThrow(ProviderError);
  });
});

describe('Pull Transactions window', () => {
  it('cuts the window to the last 48 hours and to now', () => {
    const w = clampPullWindow(new Date(NOW.getTime() - 72 * 3600_000), new Date(NOW.getTime() + 3600_000), NOW);
    expect(w).toEqual({ start: new Date(NOW.getTime() - PULL_WINDOW_MS), end: NOW, clamped: true });
    expect(NOW.getTime() - w!.start.getTime()).toBeLessThan(48 * 3600_000);
  });

  it('leaves a window inside the last 48 hours alone', () => {
    const from = new Date(NOW.getTime() - 2 * 3600_000);
    expect(clampPullWindow(from, NOW, NOW)).toEqual({ start: from, end: NOW, clamped: false });
  });

  it('has nothing to ask for a window wholly older than 48 hours, in the future, or reversed', () => {
    const old = new Date(NOW.getTime() - 50 * 3600_000);
    expect(clampPullWindow(old, new Date(old.getTime() + 3600_000), NOW)).toBeNull();
    expect(clampPullWindow(new Date(NOW.getTime() + 1000), new Date(NOW.getTime() + 5000), NOW)).toBeNull();
    expect(clampPullWindow(NOW, new Date(NOW.getTime() - 1000), NOW)).toBeNull();
    expect(() => clampPullWindow(new Date('x'), NOW, NOW)).toThrow(/from/);
  });

  it('sends Nairobi local dates and the page index', () => {
    expect(pullDate(new Date('2020-08-04T05:36:00Z'))).toBe('2020-08-04 08:36:00');
    const w = { start: new Date('2026-12-03T05:00:00Z'), end: new Date('2026-12-03T07:30:15Z'), clamped: false };
    expect(buildPullQueryBody('600000', w, 2)).toStrictEqual({
      ShortCode: '600000',
      StartDate: '2026-12-03 08:00:00',
      EndDate: '2026-12-03 10:30:15',
      OffSetValue: '2',
    });
    expect(() => buildPullQueryBody('600000', w, 50)).toThrow(/page/);
  });
});

describe('Pull Transactions rows', () => {
  it('reads amounts exactly', () => {
    expect(pullAmountMinor(233.8)).toBe(23380n);
    expect(pullAmountMinor('233.80')).toBe(23380n);
    expect(pullAmountMinor('100')).toBe(10000n);
    expect(pullAmountMinor(0.29)).toBe(29n);
    for (const bad of ['-5', '1.005', 'abc', '', null, undefined, Infinity, '1e3'])
      expect(pullAmountMinor(bad)).toBeUndefined();
  });

  it('reads times with a zone as given and without one as Nairobi time', () => {
    expect(pullTime('2020-08-05T10:13:00Z')).toEqual(new Date('2020-08-05T10:13:00Z'));
    expect(pullTime('2020-08-05T13:13:00+03:00')).toEqual(new Date('2020-08-05T10:13:00Z'));
    expect(pullTime('2020-08-05 13:13:00')).toEqual(new Date('2020-08-05T10:13:00Z'));
    expect(pullTime('20200805131300')).toEqual(new Date('2020-08-05T10:13:00Z'));
    expect(pullTime('2020-08-05T13:13:00')).toEqual(new Date('2020-08-05T10:13:00Z'));
    for (const bad of ['2020-02-30 10:00:00', 'yesterday', 20200805131300, '2020-08-05T10:13:00+3'])
      expect(pullTime(bad)).toBeUndefined();
  });

  const row = (over: Record<string, unknown> = {}) => ({
    transactionId: 'OEI2AK4Q16',
    trxDate: '2020-08-05T10:13:00Z',
    msisdn: 72200000,
    transactiontype: 'c2b-pay-bill-debit',
    billreference: 'ORD-1',
    amount: 233.8,
    organizationname: 'Org Name',
    ...over,
  });

  it('flattens the nested Response list and keeps every field', () => {
    const a = parsePullQueryAnswer({
      ResponseCode: '1000',
      ResponseMessage: 'Success',
      Response: [[row(), row({ transactionId: 'oei2ak4q17' })]],
      TotalPages: 3,
    });
    expect(a).toEqual({
      kind: 'rows',
      totalPages: 3,
      unreadableRows: 0,
      rows: [
        {
          transactionId: 'OEI2AK4Q16',
          amountMinor: 23380n,
          time: new Date('2020-08-05T10:13:00Z'),
          msisdn: '72200000',
          transactionType: 'c2b-pay-bill-debit',
          billReference: 'ORD-1',
          organizationName: 'Org Name',
        },
        expect.objectContaining({ transactionId: 'OEI2AK4Q17' }),
      ],
    });
  });

  it('reads the documented Transaction string form too, and a flat list', () => {
    expect(parsePullQueryAnswer({ ResponseCode: '1000', Transaction: JSON.stringify([[row()]]) })).toMatchObject({
      kind: 'rows',
      rows: [{ transactionId: 'OEI2AK4Q16' }],
      totalPages: null,
    });
    expect(parsePullQueryAnswer({ ResponseCode: '1000', Response: [row()] })).toMatchObject({ rows: [{}] });
  });

  it('counts unreadable rows instead of guessing at them', () => {
    const a = parsePullQueryAnswer({
      ResponseCode: '1000',
      Response: [
        [row(), row({ amount: 'lots' }), row({ transactionId: '' }), row({ trxDate: 'soon' }), row({ amount: 0 }), 'x'],
      ],
    });
    expect(a).toMatchObject({ kind: 'rows', unreadableRows: 5 });
    expect(a.kind === 'rows' && a.rows).toHaveLength(1);
  });

  it('keeps 1001 ambiguous: no rows OR not provisioned', () => {
    for (const message of ['No records found', 'No records found or Organization Name not available'])
      expect(parsePullQueryAnswer({ ResponseCode: '1001', ResponseMessage: message, Transaction: '[[]]' })).toEqual({
        kind: 'no_rows_or_not_provisioned',
        code: '1001',
        message,
      });
  });

  it('refuses other codes and bodies without a code', () => {
    expect(() => parsePullQueryAnswer({ ResponseCode: '500', ResponseMessage: 'failed' })).toThrow(
      /refused the Pull query: 500 failed/,
    );
    expect(() => parsePullQueryAnswer({ Response: [[]] })).toThrow(/without a ResponseCode/);
    expect(() => parsePullQueryAnswer('text')).toThrow(ProviderError);
  });
});
