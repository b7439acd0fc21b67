import { isIP } from 'node:net';

/** Strips the IPv4-mapped IPv6 prefix (::ffff:1.2.3.4 → 1.2.3.4). */
export function normaliseIp(ip: string | undefined): string | undefined {
  if (!ip) return undefined;
  return ip.startsWith('::ffff:') && isIP(ip.slice(7)) === 4 ? ip.slice(7) : ip;
}

function ipv4ToInt(ip: string): number {
  return ip.split('.').reduce((acc, o) => (acc << 8) + Number(o), 0) >>> 0;
}

/** True if `ip` equals an entry or falls in an IPv4 CIDR entry. An empty list allows everyone. */
export function ipAllowed(ip: string | undefined, allowlist: readonly string[]): boolean {
  if (allowlist.length === 0) return true;
  const addr = normaliseIp(ip);
  if (!addr) return false;
  for (const entry of allowlist) {
    const slash = entry.indexOf('/');
    if (slash < 0) {
      if (normaliseIp(entry) === addr) return true;
      continue;
    }
    if (isIP(addr) !== 4) continue;
    const bits = Number(entry.slice(slash + 1));
    const mask = bits === 0 ? 0 : (~0 << (32 - bits)) >>> 0;
    if ((ipv4ToInt(addr) & mask) === (ipv4ToInt(entry.slice(0, slash)) & mask)) return true;
  }
  return false;
}
