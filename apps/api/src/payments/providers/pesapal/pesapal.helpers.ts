/**
 * Pure helpers of the Pesapal payment flow (no I/O): merchant references, amounts, customer
 * details, IPN acknowledgement rules, the stored-notification envelope, the provider_settings
 * key, and the browser return (redirect or result page).
 */
import { createHash, randomBytes } from 'node:crypto';
import { ValidationFailedError } from '../../../common/errors';
import { maskPhone } from '../../../common/mask';
import { currencyExponent, formatMinor, parseProviderAmount, toOutgoingAmount } from '../amount';
import { PESAPAL_REFERENCE_MAX_LENGTH } from './pesapal.provider';

export const PESAPAL_LABEL = 'Pesapal';

/** Our merchant references: what SubmitOrderRequest's `id` accepts ([A-Za-z0-9-_], ≤ 50). */
export const MERCHANT_REFERENCE_RE = /^[A-Za-z0-9_-]{1,50}$/;
/** Pesapal order tracking ids are GUIDs; accept the adapter's wider shape, nothing else reaches Pesapal. */
export const TRACKING_ID_RE = /^[A-Za-z0-9-]{1,100}$/;

const BASE32 = 'ABCDEFGHJKMNPQRSTVWXYZ0123456789';

/**
 * A fresh merchant reference for one payment attempt: `SD-<order id, letters/digits/-/_ only,
 * last 24>-<12 random base32 characters>` (≤ 40 characters, 60 random bits). The order id makes it
 * readable in Pesapal's dashboard; the random part makes every attempt unique (Pesapal refuses a
 * reused id, and an API 3.0 status lookup by reference does not exist).
 */
export function merchantReference(orderId: string, random: (n: number) => Buffer = randomBytes): string {
  const order = orderId.replace(/[^A-Za-z0-9_-]/g, '').slice(-24) || 'ORDER';
  const bytes = random(12);
  let suffix = '';
  for (let i = 0; i < 12; i++) suffix += BASE32[bytes[i] % 32];
  const ref = `SD-${order}-${suffix}`;
  if (ref.length > PESAPAL_REFERENCE_MAX_LENGTH || !MERCHANT_REFERENCE_RE.test(ref))
    throw new Error('merchant reference out of shape');
  return ref;
}

export interface InitAmount {
  minor: bigint;
  /** Decimal text in major units, for messages ("1500.50"). */
  text: string;
}

/**
 * The init amount (a JSON number or a decimal string in major units) as exact minor units of
 * `currency`. Throws a 400 with a cashier-readable message for an unsupported currency, something
 * that is not a positive decimal, more decimals than the currency has, cents when only whole units
 * are allowed, or an amount too large to send exactly.
 */
export function parseInitAmount(
  value: unknown,
  currency: string,
  opts: { supportedCurrencies: readonly string[]; wholeUnitsOnly: boolean },
): InitAmount {
  if (!opts.supportedCurrencies.includes(currency) || currencyExponent(currency) === undefined) {
    throw new ValidationFailedError(
      `${PESAPAL_LABEL} payments are not available in ${currency}; use ${opts.supportedCurrencies.join(', ')}`,
      { field: 'currency' },
    );
  }
  const exp = currencyExponent(currency) as number;
  const example = exp === 0 ? '1500' : '1500 or "1500.50"';
  if (typeof value === 'string' && !/^\d+(\.\d+)?$/.test(value.trim())) {
    throw new ValidationFailedError(`amount must be a positive amount in ${currency}, e.g. ${example}`, {
      field: 'amount',
    });
  }
  if (typeof value !== 'string' && (typeof value !== 'number' || !Number.isFinite(value))) {
    throw new ValidationFailedError(`amount must be a positive amount in ${currency}, e.g. ${example}`, {
      field: 'amount',
    });
  }
  const minor = parseProviderAmount(value, currency);
  if (minor === undefined) {
    const text = typeof value === 'string' ? value.trim() : String(value);
    const decimals = /^-?\d+\.(\d+)$/.exec(text)?.[1]?.replace(/0+$/, '').length ?? 0;
    if (decimals > exp) {
      throw new ValidationFailedError(
        exp === 0
          ? `${currency} amounts have no decimal places`
          : `amount has more than ${exp} decimal places; ${currency} amounts have at most ${exp}`,
        { field: 'amount' },
      );
    }
    throw new ValidationFailedError('amount is too large', { field: 'amount' });
  }
  if (minor <= 0n) throw new ValidationFailedError('amount must be greater than zero', { field: 'amount' });
  const div = 10n ** BigInt(exp);
  if (opts.wholeUnitsOnly && minor % div !== 0n) {
    throw new ValidationFailedError(`${PESAPAL_LABEL} payments take whole ${currency} amounts here (no cents)`, {
      field: 'amount',
    });
  }
  // Same rules the adapter applies before sending (exactly representable, ≤ 15 significant digits).
  const out = toOutgoingAmount(minor, currency, {
    supportedCurrencies: opts.supportedCurrencies,
    wholeUnitsOnly: opts.wholeUnitsOnly,
    providerLabel: PESAPAL_LABEL,
  });
  return { minor, text: out.text };
}

export interface InitCustomer {
  email?: string;
  /** Digits with an optional leading +, spaces and dashes removed. */
  phoneNumber?: string;
  firstName?: string;
  lastName?: string;
}

/** Trims the customer fields; Pesapal needs an email address or a phone number (400 otherwise). */
export function normaliseCustomer(
  c: { email?: string; phoneNumber?: string; firstName?: string; lastName?: string } | undefined,
): InitCustomer {
  const out: InitCustomer = {};
  const email = c?.email?.trim();
  if (email) out.email = email;
  const phone = c?.phoneNumber?.replace(/[\s-]/g, '');
  if (phone) {
    if (!/^\+?\d{9,15}$/.test(phone)) {
      throw new ValidationFailedError('customer.phoneNumber must be 9-15 digits, optionally starting with +', {
        field: 'customer.phoneNumber',
        received: maskPhone(phone),
      });
    }
    out.phoneNumber = phone;
  }
  const first = c?.firstName?.trim();
  if (first) out.firstName = first;
  const last = c?.lastName?.trim();
  if (last) out.lastName = last;
  if (!out.email && !out.phoneNumber) {
    throw new ValidationFailedError(
      'customer needs an email address or a phone number: Pesapal requires one to open its payment page',
      { field: 'customer' },
    );
  }
  return out;
}

/**
 * provider_settings key of an IPN registration: `pesapal:ipn:<env>:<account>:<sha256 of the IPN URL>`,
 * account = a merchant_accounts id or 'platform' (a notification_id belongs to one Pesapal merchant).
 */
export function ipnSettingsKey(env: string, ipnUrl: string, account = 'platform'): string {
  return `pesapal:ipn:${env}:${account}:${createHash('sha256').update(ipnUrl).digest('hex')}`;
}

/** Pesapal's "this notification_id is not a registered IPN" rejection of SubmitOrderRequest. */
export function isStaleIpnRejection(
  err: { kind?: string; providerCode?: string; providerMessage?: string } | unknown,
): boolean {
  if (!err || typeof err !== 'object') return false;
  const e = err as { kind?: string; providerMessage?: string };
  return (
    e.kind === 'rejected' &&
    typeof e.providerMessage === 'string' &&
    /invalid\s+ipn\s+url\s+id/i.test(e.providerMessage)
  );
}

// ------------------------------------------------------------------------------------- IPN

/**
 * What processing an IPN (or a stored one, replayed) concluded, and whether the acknowledgement
 * tells Pesapal "processed" (status 200) or "not processed" (status 500, Pesapal retries).
 *
 * 200 when the notification is stored and needs nothing more from Pesapal: we asked
 * GetTransactionStatus about a payment of ours and recorded the answer, whatever it was (paid,
 * failed, still unpaid, a duplicate, a mismatch parked in review); or a lookup of the same payment
 * answered it (`answered`: one claimed after it arrived, or running when it arrived); or one is
 * due and the stored row waits for it (`deferred`: someone asked moments before, the reconciler
 * asks after the interval); or the payment is final and nothing Pesapal says can change it
 * (`final`, not asked again).
 * 500 for everything we did not process: a notification that is not one (no identifiers), one for
 * a merchant reference we never issued, one whose tracking id contradicts the payment's, a status
 * answer we cannot use, and our own failures (database, Pesapal status call) — the last ones are
 * the retries that help; the others are only counted (one stored row per kind per window) and
 * cost no Pesapal call, and keep the delivery visible as failed in Pesapal's IPN log.
 */
export const IPN_OUTCOMES = {
  applied: true,
  duplicate: true,
  review: true,
  ignored: true,
  pending: true,
  linked: true,
  reversal_recorded: true,
  failed_reversed: true,
  answered: true,
  deferred: true,
  final: true,
  invalid_shape: false,
  unknown_payment: false,
  mismatch_ignored: false,
  unknown_status: false,
  status_failed: false,
  error: false,
} as const satisfies Record<string, boolean>;

export type IpnOutcome = keyof typeof IPN_OUTCOMES;

export function ipnProcessed(outcome: IpnOutcome): boolean {
  return IPN_OUTCOMES[outcome];
}

/** callback_inbox.raw_body of a Pesapal notification: how it came (GET query or POST body), verbatim. */
export interface IpnEnvelope {
  v: 1;
  method: string;
  query: Record<string, unknown>;
  /** the request body exactly as received ('' for GET) */
  body: string;
}

export function encodeEnvelope(method: string, query: Record<string, unknown>, rawBody: string): string {
  const e: IpnEnvelope = { v: 1, method, query: query ?? {}, body: rawBody ?? '' };
  return JSON.stringify(e);
}

export function decodeEnvelope(raw: string): IpnEnvelope | null {
  try {
    const v = JSON.parse(raw) as Partial<IpnEnvelope>;
    if (!v || typeof v !== 'object' || v.v !== 1 || typeof v.body !== 'string' || typeof v.method !== 'string')
      return null;
    const query =
      v.query && typeof v.query === 'object' && !Array.isArray(v.query) ? (v.query as Record<string, unknown>) : {};
    return { v: 1, method: v.method, query, body: v.body };
  } catch {
    return null;
  }
}

/** `status_code` of a GetTransactionStatus answer, as text ("0".."3"), when present. */
export function statusCodeOf(raw: unknown): string | null {
  if (!raw || typeof raw !== 'object') return null;
  const c = (raw as Record<string, unknown>).status_code;
  return typeof c === 'number' || (typeof c === 'string' && /^\d+$/.test(c)) ? String(c) : null;
}

/** A status answer for an order Pesapal has cancelled (status_code 0 with "Order Cancelled"). */
export function isCancelledAtPesapal(raw: unknown): boolean {
  if (!raw || typeof raw !== 'object') return false;
  const r = raw as Record<string, unknown>;
  if (statusCodeOf(r) !== '0') return false;
  const err = r.error && typeof r.error === 'object' ? (r.error as Record<string, unknown>) : {};
  return [err.message, r.description].some((t) => typeof t === 'string' && /cancel/i.test(t));
}

// ------------------------------------------------------------------------------ browser return

export interface ReturnView {
  paymentId: string;
  orderId: string;
  status: string;
  amountMinor: bigint;
  currency: string;
}

/** POS_RETURN_URL with `paymentId`, `orderId` and `status` set (an existing query is kept). */
export function posReturnLocation(base: string, p: Pick<ReturnView, 'paymentId' | 'orderId' | 'status'>): string {
  const u = new URL(base);
  u.searchParams.set('paymentId', p.paymentId);
  u.searchParams.set('orderId', p.orderId);
  u.searchParams.set('status', p.status);
  return u.toString();
}

export function escapeHtml(s: string): string {
  return s.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string,
  );
}

const HEADLINES: Record<string, [string, string]> = {
  completed: ['Payment received', 'Thank you. The shop has your payment.'],
  pending: [
    'Waiting for confirmation',
    'Pesapal has not confirmed this payment yet. If you approved it on your phone, it can take a little while; the cashier will see it as soon as it is confirmed.',
  ],
  initiated: ['Waiting for confirmation', 'Pesapal has not confirmed this payment yet.'],
  unresolved: [
    'Waiting for confirmation',
    'We are still checking this payment with Pesapal. Please show this page to the cashier.',
  ],
  failed: [
    'Payment failed',
    'The payment did not go through and nothing was charged. Please ask the cashier to try again.',
  ],
  cancelled: ['Payment cancelled', 'The payment was cancelled. Please ask the cashier to try again.'],
  expired: ['Payment link expired', 'This payment link has expired. Please ask the cashier for a new one.'],
  review: [
    'Payment being checked',
    'The shop needs to check this payment by hand. Please show this page to the cashier.',
  ],
};

/** The small result page shown after Pesapal's payment page when no POS_RETURN_URL is set. Everything is escaped. */
export function resultPage(view: ReturnView | null, notice?: { title: string; text: string }): string {
  const [title, text] = notice
    ? [notice.title, notice.text]
    : (HEADLINES[view?.status ?? ''] ?? ['Payment status', 'Please show this page to the cashier.']);
  const rows = view
    ? `<dl>
<dt>Order</dt><dd id="order-id">${escapeHtml(view.orderId)}</dd>
<dt>Amount</dt><dd id="amount">${escapeHtml(`${view.currency} ${formatMinor(view.amountMinor, view.currency)}`)}</dd>
<dt>Status</dt><dd id="status">${escapeHtml(view.status)}</dd>
<dt>Payment</dt><dd id="payment-id">${escapeHtml(view.paymentId)}</dd>
</dl>`
    : '';
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>body{font-family:system-ui,sans-serif;max-width:32rem;margin:2rem auto;padding:0 1rem;color:#222}dt{font-weight:600;margin-top:.5rem}dd{margin:0}</style>
</head><body><main id="result" data-status="${escapeHtml(view?.status ?? 'unknown')}">
<h1>${escapeHtml(title)}</h1>
<p>${escapeHtml(text)}</p>
${rows}
</main></body></html>
`;
}
