import { nairobiTimestamp, parseNairobiTimestamp } from './nairobi-time';

describe('nairobiTimestamp', () => {
  it.each([
    ['2025-12-31T21:00:00.000Z', '20260101000000'], // year boundary
    ['2025-12-31T20:59:59.999Z', '20251231235959'],
    ['2025-06-30T21:00:00.000Z', '20250701000000'], // month boundary
    ['2025-03-09T23:30:05.000Z', '20250310023005'], // day boundary in Nairobi only
    ['2024-02-28T21:00:00.000Z', '20240229000000'], // leap day starts
    ['2024-02-29T20:59:59.000Z', '20240229235959'],
    ['2024-02-29T21:00:00.000Z', '20240301000000'], // leap day ends
    ['2023-02-28T21:00:00.000Z', '20230301000000'], // no leap day in 2023
    ['2016-02-16T13:56:27.000Z', '20160216165627'], // Daraja docs example time
    ['2025-07-01T00:00:00.000Z', '20250701030000'], // no DST in July either
  ])('%s -> %s', (iso, expected) => {
    expect(nairobiTimestamp(new Date(iso))).toBe(expected);
  });

  it('defaults to now', () => {
    const before = nairobiTimestamp(new Date(Date.now() - 1000));
    const now = nairobiTimestamp();
    const after = nairobiTimestamp(new Date(Date.now() + 1000));
    expect(now).toMatch(/^\d{14}$/);
    expect(now >= before && now <= after).toBe(true);
  });

  it('rejects an invalid date', () => {
    expect(() => nairobiTimestamp(new Date('nope'))).toThrow(RangeError);
  });
});

describe('parseNairobiTimestamp', () => {
  it.each([
    ['20191219102115', '2019-12-19T07:21:15.000Z'],
    ['20260101000000', '2025-12-31T21:00:00.000Z'],
    ['20240229235959', '2024-02-29T20:59:59.000Z'],
  ])('%s -> %s', (s, iso) => {
    expect(parseNairobiTimestamp(s).toISOString()).toBe(iso);
  });

  it('round-trips with nairobiTimestamp', () => {
    const d = new Date('2025-11-26T06:52:13.000Z');
    expect(parseNairobiTimestamp(nairobiTimestamp(d)).getTime()).toBe(d.getTime());
  });

  it.each([
    '',
    '2019121910211',
    '201912191021155',
    '20190230102115',
    '20191319102115',
    '20191219242115',
    '20191219106015',
    'abcdefghijklmn',
    '2019-12-19T10:21',
  ])('rejects %p', (s) => {
    expect(() => parseNairobiTimestamp(s)).toThrow(RangeError);
  });
});
