import { createHmac, timingSafeEqual } from 'node:crypto';
import { ROLES, type AuthUser, type Role } from '../auth/auth.types';

/**
 * Tickets for the live status streams. A browser's EventSource cannot send an Authorization
 * header, so a POS first asks POST /payments/events/ticket (with its Bearer token) and opens
 * the stream with ?ticket=. A ticket is good for opening streams for TICKET_LIFETIME_SECONDS,
 * for the caller's shop and, when asked for one payment, for that payment's stream only.
 *
 * It is `<payload>.<mac>`, both base64url: the payload is JSON {v, s (shop), u (user), r (role),
 * p (payment id or null), e (expiry, unix seconds)}; the mac is HMAC-SHA256 under a key derived
 * from JWT_SECRET for this use only, so neither a JWT nor anything else the API signs is a
 * ticket, and a ticket is not a JWT (it is refused where a Bearer token is needed).
 */
export const TICKET_LIFETIME_SECONDS = 60;

const KEY_CONTEXT = 'smartduka/payments/event-stream-ticket/v1';
const TICKET_RE = /^([A-Za-z0-9_-]{10,600})\.([A-Za-z0-9_-]{43})$/;
const ID_RE = /^[A-Za-z0-9._:@-]{1,64}$/;
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export interface TicketClaims {
  user: AuthUser;
  /** The one payment the ticket opens, or null for any stream of the shop. */
  paymentId: string | null;
  expiresAt: Date;
}

export type TicketCheck = { ok: true; claims: TicketClaims } | { ok: false; reason: 'invalid' | 'expired' };

export function ticketKey(jwtSecret: string): Buffer {
  return createHmac('sha256', jwtSecret).update(KEY_CONTEXT).digest();
}

function mac(key: Buffer, payload: string): string {
  return createHmac('sha256', key).update(payload).digest('base64url');
}

export function issueTicket(
  key: Buffer,
  user: AuthUser,
  paymentId: string | null,
  nowMs = Date.now(),
): { ticket: string; expiresAt: Date } {
  const exp = Math.floor(nowMs / 1000) + TICKET_LIFETIME_SECONDS;
  const payload = Buffer.from(
    JSON.stringify({ v: 1, s: user.shopId, u: user.sub, r: user.role, p: paymentId, e: exp }),
  ).toString('base64url');
  return { ticket: `${payload}.${mac(key, payload)}`, expiresAt: new Date(exp * 1000) };
}

export function verifyTicket(key: Buffer, ticket: string, nowMs = Date.now()): TicketCheck {
  const m = TICKET_RE.exec(ticket);
  if (!m) return { ok: false, reason: 'invalid' };
  const [, payload, sig] = m;
  const expected = Buffer.from(mac(key, payload));
  const given = Buffer.from(sig);
  if (expected.length !== given.length || !timingSafeEqual(expected, given)) return { ok: false, reason: 'invalid' };
  let c: Record<string, unknown>;
  try {
    c = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Record<string, unknown>;
  } catch {
    return { ok: false, reason: 'invalid' };
  }
  const { v, s, u, r, p, e } = c;
  if (
    v !== 1 ||
    typeof s !== 'string' ||
    !ID_RE.test(s) ||
    typeof u !== 'string' ||
    !ID_RE.test(u) ||
    typeof r !== 'string' ||
    !(ROLES as readonly string[]).includes(r) ||
    !(p === null || (typeof p === 'string' && UUID_RE.test(p))) ||
    typeof e !== 'number' ||
    !Number.isInteger(e)
  )
    return { ok: false, reason: 'invalid' };
  if (e * 1000 <= nowMs) return { ok: false, reason: 'expired' };
  return {
    ok: true,
    claims: {
      user: { sub: u, shopId: s, role: r as Role },
      paymentId: p as string | null,
      expiresAt: new Date(e * 1000),
    },
  };
}
