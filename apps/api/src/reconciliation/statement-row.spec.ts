import {
  mapHeader,
  msisdnFromDetails,
  parseAmountMinor,
  parseRow,
  parseTimeKey,
  phoneFromDetails,
  timeKeyOf,
} from './statement-row';

describe('statement rows', () => {
  it('maps headers case-insensitively in any order, ignoring unknown columns', () => {
    expect(mapHeader(['Completion Time', 'Receipt No.', 'Other', 'PAID IN', 'Details', 'Transaction Status'])).toEqual({
      time: 0,
      receipt: 1,
      amount: 3,
      details: 4,
      status: 5,
    });
    expect(mapHeader(['amount', 'receipt', 'phone', 'completion_time', 'status'])).toEqual({
      amount: 0,
      receipt: 1,
      details: 2,
      time: 3,
      status: 4,
    });
    expect(() => mapHeader(['Receipt No.', 'Withdrawn'])).toThrow(/Paid In/);
  });

  it('parses amounts with thousands separators into cents', () => {
    expect(parseAmountMinor('1,250.00')).toBe(125000n);
    expect(parseAmountMinor('1250.5')).toBe(125050n);
    expect(parseAmountMinor('12,345,678')).toBe(1234567800n);
    expect(parseAmountMinor('-20.00')).toBe(-2000n);
    for (const bad of ['1,25.00', '12.345', 'abc', '', '1.2.3', '1 250']) expect(parseAmountMinor(bad)).toBeNull();
  });

  it('parses the three time formats to Nairobi yyyyMMddHHmmss', () => {
    expect(parseTimeKey('2026-11-01 14:05:09')).toBe('20261101140509');
    expect(parseTimeKey('01/11/2026 14:05:09')).toBe('20261101140509');
    expect(parseTimeKey('2026-11-01T14:05:09')).toBe('20261101140509');
    expect(parseTimeKey('2026-11-01T11:05:09Z')).toBe('20261101140509');
    expect(parseTimeKey('2026-11-01T14:05:09.123+03:00')).toBe('20261101140509');
    expect(parseTimeKey('2026-11-01T22:00:00Z')).toBe('20261102010000');
    for (const bad of ['2026-02-30 10:00:00', '31/13/2026 10:00:00', 'yesterday', '2026-11-01 25:00:00'])
      expect(parseTimeKey(bad)).toBeNull();
    expect(timeKeyOf(new Date('2026-11-01T11:05:09Z'))).toBe('20261101140509');
  });

  it('keeps only a masked phone from Details', () => {
    expect(phoneFromDetails('Pay Bill from 254712345678 - JANE DOE Acc. 1')).toBe('2547******78');
    expect(phoneFromDetails('Customer Transfer 2547******78 - JANE')).toBe('2547******78');
    expect(phoneFromDetails('0712345678 JANE')).toBe('07******78');
    expect(phoneFromDetails('Merchant Payment JANE')).toBeNull();
  });

  it('reads a full number from Details (to compare its keyed hash), never a masked one', () => {
    expect(msisdnFromDetails('Pay Bill from 254712345678 - JANE DOE Acc. 1')).toBe('254712345678');
    expect(msisdnFromDetails('Pay Bill from +254112345678 - JANE')).toBe('254112345678');
    expect(msisdnFromDetails('0712345678 JANE')).toBe('254712345678');
    expect(msisdnFromDetails('Customer Transfer 2547******78 - JANE')).toBeUndefined();
    expect(msisdnFromDetails('Merchant Payment JANE')).toBeUndefined();
  });

  it('classifies rows: money in, skipped, bad', () => {
    const map = mapHeader(['Receipt No.', 'Completion Time', 'Details', 'Transaction Status', 'Paid In']);
    expect(parseRow(2, ['qk1abc2def', '2026-11-01 10:00:00', 'x', 'Completed', '1,000.00'], map)).toEqual({
      kind: 'row',
      row: { line: 2, receipt: 'QK1ABC2DEF', amountMinor: 100000n, timeKey: '20261101100000', phoneMasked: null },
    });
    expect(parseRow(3, ['QK1ABC2DEF', '', '', 'Failed', '10'], map)).toEqual({
      kind: 'skipped',
      reason: 'not_completed',
    });
    expect(parseRow(4, ['QK1ABC2DEF', '', '', 'Completed', ''], map)).toEqual({
      kind: 'skipped',
      reason: 'not_paid_in',
    });
    expect(parseRow(5, ['QK1-BAD', '', '', 'Completed', '10'], map)).toMatchObject({ kind: 'bad', line: 5 });
    expect(parseRow(6, ['QK1ABC2DEF', 'soon', '', 'Completed', '10'], map)).toMatchObject({ kind: 'bad', line: 6 });
    expect(parseRow(7, ['QK1ABC2DEF', '', '', 'Completed', '10,00'], map)).toMatchObject({ kind: 'bad', line: 7 });
    // a short record (missing trailing columns) is judged on what it has
    expect(parseRow(8, ['QK1ABC2DEF'], map)).toEqual({ kind: 'skipped', reason: 'not_paid_in' });
  });
});
