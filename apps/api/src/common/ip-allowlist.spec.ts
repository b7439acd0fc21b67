import { ipAllowed, normaliseIp } from './ip-allowlist';

describe('ipAllowed', () => {
  const list = ['196.201.214.200', '196.201.212.0/24', '2001:db8::1'];
  it.each([
    ['196.201.214.200', true],
    ['::ffff:196.201.214.200', true],
    ['196.201.212.69', true],
    ['196.201.213.69', false],
    ['10.0.0.1', false],
    ['2001:db8::1', true],
    ['2001:db8::2', false],
    [undefined, false],
  ])('%s → %s', (ip, expected) => {
    expect(ipAllowed(ip, list)).toBe(expected);
  });

  it('allows everyone when no list is configured', () => {
    expect(ipAllowed('8.8.8.8', [])).toBe(true);
  });

  it('normalises IPv4-mapped addresses only', () => {
    expect(normaliseIp('::ffff:127.0.0.1')).toBe('127.0.0.1');
    expect(normaliseIp('::1')).toBe('::1');
  });
});
