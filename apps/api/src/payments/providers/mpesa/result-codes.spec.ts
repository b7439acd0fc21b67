import { mapResultCode, normaliseResultCode } from './result-codes';

describe('mapResultCode', () => {
  it.each([
    [0, 'completed'],
    ['0', 'completed'],
    [1032, 'cancelled'],
    ['1032', 'cancelled'],
    [1031, 'cancelled'],
    ['1031', 'cancelled'],
    [1037, 'expired'],
    ['1037', 'expired'],
    [1019, 'expired'],
    ['1019', 'expired'],
    // issue 8.14: SMSC ACK timeout, the prompt never reached the SIM: a delivery timeout like 1037
    [1036, 'expired'],
    ['1036', 'expired'],
    ['E3008', 'failed'],
    [1, 'failed'],
    ['1', 'failed'],
    [2001, 'failed'],
    [17, 'failed'],
    [1025, 'failed'],
    [9999, 'failed'],
    [2028, 'failed'],
    [8006, 'failed'],
    ['SFC_IC0003', 'failed'],
    ['12345', 'failed'],
    ['', 'failed'],
    [' 0 ', 'completed'],
  ] as const)('%p -> %s', (code, outcome) => {
    expect(mapResultCode(code)).toBe(outcome);
  });
});

describe('normaliseResultCode', () => {
  it.each([
    [0, '0'],
    ['0', '0'],
    ['1032', '1032'],
    [' 1037 ', '1037'],
    ['SFC_IC0003', 'SFC_IC0003'],
  ] as const)('%p -> %p', (code, expected) => {
    expect(normaliseResultCode(code)).toBe(expected);
  });
});
