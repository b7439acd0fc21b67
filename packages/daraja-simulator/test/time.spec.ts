import { formatCheckoutStamp, formatNairobiTimestamp, isWithinTolerance, parseNairobiTimestamp } from '../src/time';
import { nairobiTimestamp } from './helpers';

describe('Nairobi time helpers', () => {
  it('formats yyyyMMddHHmmss in UTC+3 (agrees with Intl Africa/Nairobi)', () => {
    const instants = [new Date('2024-07-12T09:15:00.000Z'), new Date('2023-12-31T21:30:59.999Z'), new Date()];
    for (const at of instants) expect(formatNairobiTimestamp(at)).toBe(nairobiTimestamp(at));
    expect(formatNairobiTimestamp(new Date('2023-12-31T21:30:59.999Z'))).toBe('20240101003059');
    expect(formatCheckoutStamp(new Date('2026-09-18T15:03:00Z'))).toBe('18092026180300');
  });

  it('parses strict timestamps back to the same instant and rejects impossible ones', () => {
    expect(parseNairobiTimestamp('20240101003059')?.toISOString()).toBe('2023-12-31T21:30:59.000Z');
    for (const bad of [
      '2024010100305',
      '202401010030599',
      '20240230120000',
      '20241301120000',
      '20240101240000',
      '2024-01-01T00',
      'abcdefghijklmn',
    ]) {
      expect(parseNairobiTimestamp(bad)).toBeUndefined();
    }
  });

  it('checks tolerance in both directions', () => {
    const now = new Date('2024-01-01T00:00:00Z');
    expect(isWithinTolerance(new Date('2024-01-01T00:05:00Z'), now, 300)).toBe(true);
    expect(isWithinTolerance(new Date('2023-12-31T23:54:59Z'), now, 300)).toBe(false);
    expect(isWithinTolerance(new Date('2024-01-01T00:05:01Z'), now, 300)).toBe(false);
  });
});
