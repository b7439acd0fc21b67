import { toMajor, toMinor } from './money';

describe('money', () => {
  it.each([
    [1500.5, 150050n],
    [0.29, 29n],
    [0.3, 30n],
    [1e-2, 1n],
    [1, 100n],
    [250000, 25000000n],
    [99999999.99, 9999999999n],
  ])('toMinor(%p) = %p', (major, minor) => {
    expect(toMinor(major, 'KES')).toBe(minor);
  });

  it('rejects more decimals than the currency has', () => {
    expect(() => toMinor(1.005, 'KES')).toThrow(/decimal/);
    expect(() => toMinor(1.5, 'UGX')).toThrow(/decimal/);
    // binary noise from client-side float arithmetic is not silently rounded
    expect(() => toMinor(0.1 + 0.2, 'KES')).toThrow(/decimal/);
  });

  it('round-trips to major units', () => {
    expect(toMajor(150050n, 'KES')).toBe(1500.5);
    expect(toMajor(29n, 'KES')).toBe(0.29);
    expect(toMajor(500n, 'UGX')).toBe(500);
    expect(toMajor(-150n, 'KES')).toBe(-1.5);
  });
});
