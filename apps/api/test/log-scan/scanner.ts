/**
 * Finds leaked credentials and unmasked phone numbers in log text. Pure: no I/O (scan.ts reads the
 * files). What counts as a leak:
 *
 *   secret             a configured secret verbatim (JWT/callback signing secret, consumer key/secret,
 *                      passkey), also URL- or JSON-escaped
 *   basic-credentials  base64(consumerKey:consumerSecret), or any `Basic <base64>` credential
 *   stk-password       the STK Password base64(shortcode + passkey + timestamp), by its fixed prefix
 *   access-token       a Daraja OAuth token issued during the run, or any `access_token` value
 *   bearer-token       `Bearer <token>` with a real-looking token
 *   jwt                a JSON Web Token (eyJ….eyJ….sig)
 *   callback-token     a callback capability token: HMAC-SHA256(callback secret, paymentId) for any
 *                      payment id seen in the logs, or a 64-hex segment in a /payments/callback URL
 *   phone              an unmasked Kenyan mobile number: 2547XXXXXXXX, 2541XXXXXXXX, +254…, 07XXXXXXXX,
 *                      01XXXXXXXX (also spaced/dashed 0712 345 678), a bare national 7XXXXXXXX/1XXXXXXXX,
 *                      and the national number a CheckoutRequestID ends with (ws_CO_<stamp><ms>7XXXXXXXX);
 *                      also touching a letter, `_` or `.` (ord_0712345678, 254712345678_1, INV712345678);
 *                      masked forms (2547******78, ws_CO_…*******78) are fine
 *   url-credentials    user:password@ in a URL
 *   secret-field       a field named like a secret (password, passkey, secret, …) with a value
 *
 * Look-alikes that are NOT leaks: UUIDs, CheckoutRequestIDs without a phone number (before ~2022,
 * DMZ ids, masked ones), MerchantRequestIDs, yyyyMMddHHmmss timestamps, epoch seconds and
 * milliseconds, receipt numbers, hex blobs (16+ hex digits: sha256 digests, trace ids, pnpm store
 * hashes), decimals, 9-digit amounts/sizes/durations/transaction ids in fields named so, masked
 * phones, `[redacted]`/`***` placeholders.
 */
import { createHmac } from 'node:crypto';

export type LeakKind =
  | 'secret'
  | 'basic-credentials'
  | 'stk-password'
  | 'access-token'
  | 'bearer-token'
  | 'jwt'
  | 'callback-token'
  | 'phone'
  | 'url-credentials'
  | 'secret-field';

/** An exact string the logs must not contain. */
export interface KnownSecret {
  kind: 'secret' | 'basic-credentials' | 'stk-password' | 'access-token';
  /** what it is, for the report (never the value) */
  label: string;
  value: string;
}

export interface Match {
  kind: LeakKind;
  label: string;
  start: number;
  end: number;
  /** a safe rendering of the value (masked phone), else the value is shown as «kind» */
  safe?: string;
}

export interface Finding {
  file: string;
  /** 1-based */
  line: number;
  /** 1-based */
  column: number;
  kind: LeakKind;
  label: string;
  /** the line around the match, with every match on the line redacted */
  excerpt: string;
}

/** A deliberate, documented exception (e.g. the dev banner printing a dev token to the console). */
export interface AllowRule {
  kind: LeakKind;
  /** the whole line must match */
  line: RegExp;
  /** the file name must match */
  file?: RegExp;
  reason: string;
}

/** Shorter values are not searched for verbatim (too many accidental hits; real secrets are longer). */
export const MIN_SECRET_LENGTH = 8;

const PLACEHOLDER =
  /^(?:\[redacted\]|\[REDACTED\]|<redacted>|\*+|<[a-z _-]*>|\$[A-Z_]+|\.\.\.|…|x{3,}|null|undefined|redacted)$/i;

const UUID_RE = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi;
const JWT_RE = /(?<![A-Za-z0-9_-])ey[A-Za-z0-9_-]{10,}\.ey[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]*/g;
/** A live status stream ticket (payments/payment-event-tickets.ts): its payload always starts {"v":1,"s": */
const STREAM_TICKET_RE = /eyJ2IjoxLCJzIjo[A-Za-z0-9_-]*\.[A-Za-z0-9_-]{43}(?![A-Za-z0-9_-])/g;
const BEARER_RE = /\bBearer\s+([A-Za-z0-9\-._~+/]+=*)/gi;
const BASIC_RE = /\bBasic\s+([A-Za-z0-9+/]{8,}={0,2})(?![A-Za-z0-9+/=])/gi;
const ACCESS_TOKEN_FIELD_RE = /\baccess_?token\b["']?\s*[:=]\s*["']?([A-Za-z0-9\-._~+/]+=*)/gi;
const HEX64_RE = /(?<![0-9A-Fa-f])[0-9A-Fa-f]{64}(?![0-9A-Fa-f])/g;
const CALLBACK_URL_TOKEN_RE = /\/payments\/callback\/[^/\s"'?#]+\/([0-9A-Fa-f]{64})(?![0-9A-Fa-f])/g;
const URL_CREDENTIALS_RE = /\b[a-z][a-z0-9+.-]*:\/\/[^\s/:@"'<>]+:([^\s/@"'<>]+)@/gi;
const SECRET_FIELD_JSON_RE =
  /"(password|passkey|pass_key|secret|client_?secret|consumer_?secret|signing_?secret|callback_?signing_?secret|jwt_?secret|api_?key|private_?key)"\s*:\s*"((?:[^"\\]|\\.)*)"/gi;
const SECRET_FIELD_TEXT_RE = /\b(password|passkey|secret|consumer_?secret|client_?secret|api_?key)=([^\s&,;"')]+)/gi;
/**
 * Kenyan mobile numbers: (+)254 or 0, then 7xx/1xx and six more digits, optionally grouped
 * `0712 345 678` / `+254-712-345-678`, also URL-encoded (%2B254…, after %20). Not inside a longer
 * number; letters, `_` and `.` around it are boundaries (`ord_0712345678`, `254712345678_1`,
 * `0712345678x`, `ORD.254712345678`). phoneContext drops decimals and hex blobs.
 */
const PHONE_RE =
  /(?:(?<![0-9+%])|(?<=%[0-9A-Fa-f]{2}))(?:(?:\+|%2[Bb])?254[ -]?|0)[17]\d{2}[ -]?\d{3}[ -]?\d{3}(?!\d)/g;
/**
 * A bare national number, 7xxxxxxxx / 1xxxxxxxx (what a CheckoutRequestID ends with, what a POS may
 * send), also after a letter, `_` or `.` (`INV712345678`, `x_712345678`, `ord.712345678`) and after a
 * letter-dash prefix (`ORD-712345678`). Not: inside a longer number, after `+`, one part of a dashed
 * numeric id (`12345-171234567-1`, a MerchantRequestID), a decimal (`1.712345678`, `712345678.25`,
 * see phoneContext), digits inside a hex blob (phoneContext).
 */
const NATIONAL_RE = /(?:(?<![0-9+%])(?<!\d-)|(?<=%[0-9A-Fa-f]{2}))[17]\d{8}(?!\d|[.-]\d)/g;
/** A word of 16+ hex digits (a digest, a trace or span id, a pnpm store hash): digits in it are no phone number. */
const HEX_BLOB_RE = /^[0-9A-Fa-f]{16,}$/;
/** A 2019 CheckoutRequestID: ws_CO_DMZ_<sequence>_<ddMMyyyyHHmmssSSS>; the sequence is no phone number. */
const DMZ_CHECKOUT_ID_RE = /ws_CO_DMZ_\d+_\d+/g;
const isDigitChar = (c: string | undefined): boolean => c !== undefined && c >= '0' && c <= '9';
const isWordChar = (c: string | undefined): boolean => c !== undefined && /[0-9A-Za-z]/.test(c);

/**
 * Whether a phone-shaped match at text[start, end) stands where a phone number would: not the
 * fraction of a decimal (`0.0712345678`), and, when a letter or digit touches it, not digits inside
 * a hex blob (the whole word is 16+ hex digits; a URL escape like %2F ends a word).
 */
function phoneContext(text: string, start: number, end: number): boolean {
  if (text[start - 1] === '.' && isDigitChar(text[start - 2])) return false;
  if (!isWordChar(text[start - 1]) && !isWordChar(text[end])) return true;
  const escapeEndsAt = (i: number) => text[i - 3] === '%' && /^[0-9A-Fa-f]{2}$/.test(text.slice(i - 2, i));
  let s = start;
  let e = end;
  while (isWordChar(text[s - 1]) && !escapeEndsAt(s)) s--;
  while (isWordChar(text[e])) e++;
  return !HEX_BLOB_RE.test(text.slice(s, e));
}
/**
 * 9-digit values of fields that are amounts, counts, sizes, durations or provider transaction ids
 * (`"amountMinor":"125000000"`, `bytes=104857600`, `"transactionId":188200108`): a number there is
 * not a phone number. Matched against the text just before the number.
 */
const NUMERIC_FIELD_BEFORE =
  /(?:amount|total|minor|paid|outstanding|balance|count|bytes|size|length|duration|elapsed|responsetime|ms|seconds|port|pid|attempts?|seq|limit|offset|transaction_?id|refund_?id)["']?\s*[:=]\s*["']?$/i;
/**
 * The tail of a CheckoutRequestID since about 2022: ws_CO_ + ddMMyyyyHHmmss + milliseconds (1-3
 * digits) + the payer's national number. Older ids (17-20 digits: stamp and milliseconds, or a
 * sequence) carry no phone number, so only a run long enough for stamp + national number counts.
 */
const CHECKOUT_ID_TAIL_RE = /(?<![0-9A-Za-z])ws_CO_(\d{14,}?)([17]\d{8})(?!\d)/g;

const KIND_PRIORITY: LeakKind[] = [
  'secret',
  'stk-password',
  'basic-credentials',
  'access-token',
  'callback-token',
  'jwt',
  'bearer-token',
  'url-credentials',
  'secret-field',
  'phone',
];

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** `254712345678` → `2547******78`, `0712 345 678` → `07******78` (what a safe log would show). */
export function maskPhoneForReport(raw: string): string {
  const plus = /^(\+|%2B)/i.test(raw) ? '+' : '';
  const digits = raw.replace(/^%2B/i, '').replace(/\D/g, '');
  const keep = digits.length >= 12 ? 4 : 2;
  return plus + digits.slice(0, keep) + '*'.repeat(digits.length - keep - 2) + digits.slice(-2);
}

/** The fixed part of base64(shortcode + passkey + timestamp): whole 3-byte groups of shortcode + passkey. */
export function stkPasswordPrefix(shortcode: string, passkey: string): string {
  const raw = Buffer.from(shortcode + passkey, 'utf8');
  return raw.subarray(0, raw.length - (raw.length % 3)).toString('base64');
}

/** HMAC-SHA256(secret, paymentId) hex: the token in /payments/callback/<paymentId>/<token>. */
export function callbackTokenFor(secret: string, paymentId: string): string {
  return createHmac('sha256', secret).update(paymentId, 'utf8').digest('hex');
}

/** Every payment-id-shaped value (UUID) in `text`. */
export function uuidsIn(text: string): string[] {
  return text.match(UUID_RE) ?? [];
}

export interface ScannerOptions {
  secrets: KnownSecret[];
  /** exact callback capability tokens (see callbackTokenFor) */
  callbackTokens?: Iterable<string>;
  allow?: AllowRule[];
}

export class LeakScanner {
  private readonly secretRe: RegExp | undefined;
  private readonly secretsByValue = new Map<string, KnownSecret>();
  private readonly callbackTokens: Set<string>;
  private readonly allow: AllowRule[];
  /** findings dropped by an allow rule, with the reason */
  readonly allowed = new Map<string, number>();

  constructor(options: ScannerOptions) {
    for (const s of options.secrets) {
      if (s.value.length < MIN_SECRET_LENGTH || this.secretsByValue.has(s.value)) continue;
      this.secretsByValue.set(s.value, s);
    }
    // Longest first, so a secret that contains another is reported as itself.
    const values = [...this.secretsByValue.keys()].sort((a, b) => b.length - a.length);
    this.secretRe = values.length ? new RegExp(values.map(escapeRegExp).join('|'), 'g') : undefined;
    this.callbackTokens = new Set([...(options.callbackTokens ?? [])].map((t) => t.toLowerCase()));
    this.allow = options.allow ?? [];
  }

  /** Every leak on one line (overlaps resolved: the most specific kind wins). */
  scanLine(line: string): Match[] {
    const found: Match[] = [];
    const add = (kind: LeakKind, label: string, start: number, end: number, safe?: string) =>
      found.push({ kind, label, start, end, safe });
    const each = (re: RegExp, fn: (m: RegExpExecArray) => void) => {
      re.lastIndex = 0;
      for (let m = re.exec(line); m; m = re.exec(line)) {
        fn(m);
        if (m[0].length === 0) re.lastIndex++;
      }
    };
    const groupSpan = (m: RegExpExecArray, group: number): [number, number] => {
      const start = m.index + m[0].lastIndexOf(m[group]);
      return [start, start + m[group].length];
    };

    if (this.secretRe)
      each(this.secretRe, (m) => {
        const s = this.secretsByValue.get(m[0])!;
        add(s.kind, s.label, m.index, m.index + m[0].length);
      });
    each(JWT_RE, (m) => add('jwt', 'JSON Web Token', m.index, m.index + m[0].length));
    each(STREAM_TICKET_RE, (m) => add('jwt', 'live status stream ticket', m.index, m.index + m[0].length));
    each(BEARER_RE, (m) => {
      if (m[1].length < MIN_SECRET_LENGTH || PLACEHOLDER.test(m[1])) return;
      add('bearer-token', 'Authorization: Bearer credential', ...groupSpan(m, 1));
    });
    each(BASIC_RE, (m) => {
      if (PLACEHOLDER.test(m[1])) return;
      add('basic-credentials', 'Authorization: Basic credential', ...groupSpan(m, 1));
    });
    each(ACCESS_TOKEN_FIELD_RE, (m) => {
      if (m[1].length < MIN_SECRET_LENGTH || PLACEHOLDER.test(m[1])) return;
      add('access-token', 'access_token value', ...groupSpan(m, 1));
    });
    each(CALLBACK_URL_TOKEN_RE, (m) => add('callback-token', 'callback URL token', ...groupSpan(m, 1)));
    if (this.callbackTokens.size)
      each(HEX64_RE, (m) => {
        if (this.callbackTokens.has(m[0].toLowerCase()))
          add('callback-token', 'callback capability token (HMAC of a payment id)', m.index, m.index + 64);
      });
    each(URL_CREDENTIALS_RE, (m) => {
      if (PLACEHOLDER.test(m[1])) return;
      add('url-credentials', 'password in a URL', ...groupSpan(m, 1));
    });
    each(SECRET_FIELD_JSON_RE, (m) => {
      if (m[2].length < 4 || PLACEHOLDER.test(m[2])) return;
      add('secret-field', `"${m[1]}" field`, ...groupSpan(m, 2));
    });
    each(SECRET_FIELD_TEXT_RE, (m) => {
      if (m[2].length < 4 || PLACEHOLDER.test(m[2])) return;
      add('secret-field', `${m[1]}= value`, ...groupSpan(m, 2));
    });
    // Phones: on a copy with UUIDs blanked (same length, `-` for a boundary), so digits inside a
    // UUID never count; for the phone forms also DMZ CheckoutRequestIDs (their tails are checked below).
    const noUuids = line.replace(UUID_RE, (u) => '-'.repeat(u.length));
    const noIds = noUuids.replace(DMZ_CHECKOUT_ID_RE, (id) => '-'.repeat(id.length));
    PHONE_RE.lastIndex = 0;
    for (let m = PHONE_RE.exec(noIds); m; m = PHONE_RE.exec(noIds)) {
      if (!phoneContext(noIds, m.index, m.index + m[0].length)) continue;
      add('phone', 'unmasked phone number', m.index, m.index + m[0].length, maskPhoneForReport(m[0]));
    }
    NATIONAL_RE.lastIndex = 0;
    for (let m = NATIONAL_RE.exec(noIds); m; m = NATIONAL_RE.exec(noIds)) {
      if (!phoneContext(noIds, m.index, m.index + m[0].length)) continue;
      if (NUMERIC_FIELD_BEFORE.test(noIds.slice(Math.max(0, m.index - 40), m.index))) continue;
      add('phone', 'unmasked national phone number', m.index, m.index + m[0].length, maskPhoneForReport(m[0]));
    }
    CHECKOUT_ID_TAIL_RE.lastIndex = 0;
    for (let m = CHECKOUT_ID_TAIL_RE.exec(noUuids); m; m = CHECKOUT_ID_TAIL_RE.exec(noUuids)) {
      const start = m.index + m[0].length - 9;
      add(
        'phone',
        "CheckoutRequestID ending with the payer's national number",
        start,
        start + 9,
        maskPhoneForReport(m[2]),
      );
    }

    // Resolve overlaps: most specific kind first, then earliest/longest.
    found.sort(
      (a, b) => KIND_PRIORITY.indexOf(a.kind) - KIND_PRIORITY.indexOf(b.kind) || a.start - b.start || b.end - a.end,
    );
    const kept: Match[] = [];
    for (const f of found) if (!kept.some((k) => f.start < k.end && k.start < f.end)) kept.push(f);
    return kept.sort((a, b) => a.start - b.start);
  }

  /** Findings in a whole file's text (allow rules applied). */
  scanText(file: string, text: string): Finding[] {
    const findings: Finding[] = [];
    const lines = text.split('\n');
    lines.forEach((line, i) => {
      const matches = this.scanLine(line);
      if (!matches.length) return;
      const reported = matches.filter((m) => {
        const rule = this.allow.find((r) => r.kind === m.kind && r.line.test(line) && (!r.file || r.file.test(file)));
        if (rule) this.allowed.set(rule.reason, (this.allowed.get(rule.reason) ?? 0) + 1);
        return !rule;
      });
      for (const m of reported)
        findings.push({
          file,
          line: i + 1,
          column: m.start + 1,
          kind: m.kind,
          label: m.label,
          excerpt: excerpt(line, matches, m),
        });
    });
    return findings;
  }
}

/** ~120 characters of the line around `focus`, with EVERY match on the line replaced by a placeholder. */
export function excerpt(line: string, matches: Match[], focus: Match, radius = 60): string {
  let out = '';
  let pos = 0;
  let focusAt = 0;
  for (const m of matches) {
    out += line.slice(pos, m.start);
    if (m === focus) focusAt = out.length;
    out += m.safe ? `«${m.kind} ${m.safe}»` : `«${m.kind} redacted, ${m.end - m.start} chars»`;
    pos = m.end;
  }
  out += line.slice(pos);
  const from = Math.max(0, focusAt - radius);
  const to = Math.min(out.length, focusAt + radius * 2);
  return (from > 0 ? '…' : '') + out.slice(from, to) + (to < out.length ? '…' : '');
}
