import { createHmac } from 'node:crypto';
import { issueTicket, ticketKey, TICKET_LIFETIME_SECONDS, verifyTicket } from './payment-event-tickets';

const key = ticketKey('a-jwt-secret-of-enough-length-0123456789');
const user = { sub: 'cashier-1', shopId: 'shop-1', role: 'cashier' as const };
const PID = '0b9d3c8e-4b5a-4f7e-9a51-2b8c3d4e5f60';

describe('live status stream tickets', () => {
  it('round-trips the shop, user, role and payment until it expires', () => {
    const now = Date.UTC(2026, 11, 3, 8, 0, 0);
    const { ticket, expiresAt } = issueTicket(key, user, PID, now);
    expect(expiresAt.getTime()).toBe(now + TICKET_LIFETIME_SECONDS * 1000);
    expect(verifyTicket(key, ticket, now)).toEqual({ ok: true, claims: { user, paymentId: PID, expiresAt } });
    expect(verifyTicket(key, ticket, now + TICKET_LIFETIME_SECONDS * 1000 - 1)).toMatchObject({ ok: true });
    expect(verifyTicket(key, ticket, now + TICKET_LIFETIME_SECONDS * 1000)).toEqual({ ok: false, reason: 'expired' });
  });

  it('a shop-wide ticket has no payment', () => {
    const { ticket } = issueTicket(key, user, null);
    expect(verifyTicket(key, ticket)).toMatchObject({ ok: true, claims: { paymentId: null } });
  });

  it('refuses another key, a changed payload or mac, and junk', () => {
    const { ticket } = issueTicket(key, user, null);
    const [payload, mac] = ticket.split('.');
    const other = ticketKey('another-secret-0123456789abcdefghijklmnopq');
    expect(verifyTicket(other, ticket)).toEqual({ ok: false, reason: 'invalid' });
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString());
    const changed = Buffer.from(JSON.stringify({ ...claims, s: 'shop-2' })).toString('base64url');
    expect(verifyTicket(key, `${changed}.${mac}`)).toEqual({ ok: false, reason: 'invalid' });
    const flipped = mac.slice(0, -1) + (mac.endsWith('A') ? 'B' : 'A');
    expect(verifyTicket(key, `${payload}.${flipped}`)).toEqual({ ok: false, reason: 'invalid' });
    for (const junk of ['', '.', 'abc', `${payload}.`, `${payload}.${mac}.x`, 'eyJhbGciOiJIUzI1NiJ9.e30.sig'])
      expect(verifyTicket(key, junk)).toEqual({ ok: false, reason: 'invalid' });
  });

  it('a validly signed ticket with bad claims is refused (version, role, ids, expiry type)', () => {
    // A crafted payload signed the way issueTicket signs, to test the claim checks behind the mac.
    const sign = (claims: object) => {
      const payload = Buffer.from(JSON.stringify(claims)).toString('base64url');
      return `${payload}.${createHmac('sha256', key).update(payload).digest('base64url')}`;
    };
    const e = Math.floor(Date.now() / 1000) + 30;
    const good = { v: 1, s: 'shop-1', u: 'cashier-1', r: 'cashier', p: null, e };
    expect(verifyTicket(key, sign(good))).toMatchObject({ ok: true });
    for (const bad of [
      { ...good, v: 2 },
      { ...good, r: 'root' },
      { ...good, s: 'shop 1' },
      { ...good, u: '' },
      { ...good, p: 'not-a-uuid' },
      { ...good, e: String(e) },
      { ...good, e: e + 0.5 },
    ])
      expect(verifyTicket(key, sign(bad))).toEqual({ ok: false, reason: 'invalid' });
  });
});
