/**
 * Pure helpers of the Flutterwave payment flow: our tx_ref, exact amounts, the return URL rules,
 * the decision taken after each verification, masking and the small HTML result page. No I/O.
 */
import { ValidationFailedError } from '../../../common/errors';
import { CURRENCY_EXPONENT } from '../../../common/money';
import { formatMinor } from '../amount';
import type { ProviderPaymentStatus } from '../payment-provider';

export const FLW_PROVIDER = 'flutterwave';

/**
 * Life of a hosted checkout link (sent as `session_duration`). A customer at the counter pays within
 * a few minutes; a short life keeps the order free for another method soon after an abandoned checkout.
 */
export const FLW_CHECKOUT_SESSION_MINUTES = 15;
/**
 * An attempt started just before the link expires may finish after it (M-Pesa prompts take a
 * minute or two), and the reference is unsure Flutterwave honours `session_duration` at all.
 */
export const FLW_EXPIRY_MARGIN_SECONDS = 5 * 60;
/**
 * After this long an open payment with a link is decided for good: Flutterwave never saw an attempt
 * → expired (CHECKOUT_EXPIRED, nothing was charged); an attempt still pending → review.
 */
export const FLW_CHECKOUT_WINDOW_SECONDS = FLW_CHECKOUT_SESSION_MINUTES * 60 + FLW_EXPIRY_MARGIN_SECONDS;
/**
 * Failed attempts after which Flutterwave closes the hosted page. 1: a decline is final, so a
 * payment we record as failed cannot be paid later on the same link (a new attempt = a new payment).
 */
export const FLW_MAX_RETRY_ATTEMPTS = 1;
/** GET /payments/:id asks Flutterwave only about payments at least this old. */
export const FLW_REFRESH_AFTER_SECONDS = 3;
/** Minimum seconds between two background verifications of one payment (status reads, reconciler), across instances. */
export const FLW_READ_MIN_INTERVAL_SECONDS = 5;
/** Same, for a person waiting on the answer (the browser coming back, the cashier pressing verify), and for webhooks. */
export const FLW_INTERACTIVE_MIN_INTERVAL_SECONDS = 1;
/** A webhook about a payment closed without money (failed, expired: a late charge is PAID_AFTER_CLOSE) verifies it once after it closed, then at most once per this many seconds. */
export const FLW_CLOSED_RECHECK_INTERVAL_SECONDS = 60;

const UUID = '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}';
/** Our tx_refs: `SD-<payment id>`. Anything else arriving on the redirect is not ours. */
export const TX_REF_RE = new RegExp(`^SD-${UUID}$`);

/** The tx_ref of a payment: ours, unique (the payment id is a UUID), stored before Flutterwave is called. */
export function txRefFor(paymentId: string): string {
  return `SD-${paymentId}`;
}

const PLAIN_DECIMAL = /^(\d+)(?:\.(\d+))?$/;
const MAX_SIGNIFICANT_DIGITS = 15;

/**
 * A client amount in major units (JSON number 2450.5 or decimal string "2450.50") → exact minor
 * units of `currency`. Throws a 400 with a readable message for anything else.
 */
export function parseMajorAmount(value: unknown, currency: string): bigint {
  const exp = Object.prototype.hasOwnProperty.call(CURRENCY_EXPONENT, currency)
    ? CURRENCY_EXPONENT[currency]
    : undefined;
  if (exp === undefined)
    throw new ValidationFailedError(`currency ${currency} is not supported`, { field: 'currency' });
  let text: string;
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new ValidationFailedError('amount must be a finite number', { field: 'amount' });
    text = String(value); // what the client wrote (shortest round-trip text); exponent forms fail below
  } else if (typeof value === 'string') {
    text = value.trim();
  } else {
    throw new ValidationFailedError('amount must be a number or a decimal string, e.g. 2450 or "2450.50"', {
      field: 'amount',
    });
  }
  if (text.startsWith('-')) throw new ValidationFailedError('amount must be greater than zero', { field: 'amount' });
  const m = PLAIN_DECIMAL.exec(text);
  if (!m)
    throw new ValidationFailedError(`amount must be a plain decimal in ${currency}, e.g. 2450 or 2450.50`, {
      field: 'amount',
    });
  const [, intPart, frac = ''] = m;
  if (/[1-9]/.test(frac.slice(exp))) {
    throw new ValidationFailedError(
      exp === 0
        ? `${currency} amounts must be whole numbers`
        : `amount has more than ${exp} decimal places (${currency} has ${exp})`,
      { field: 'amount' },
    );
  }
  if ((intPart + frac.replace(/0+$/, '')).replace(/^0+/, '').length > MAX_SIGNIFICANT_DIGITS) {
    throw new ValidationFailedError('amount is too large', { field: 'amount' });
  }
  const minor = BigInt(intPart) * 10n ** BigInt(exp) + BigInt(frac.slice(0, exp).padEnd(exp, '0') || '0');
  if (minor <= 0n) throw new ValidationFailedError('amount must be greater than zero', { field: 'amount' });
  return minor;
}

function parseUrl(value: string): URL | undefined {
  try {
    const u = new URL(value);
    return u.protocol === 'http:' || u.protocol === 'https:' ? u : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The client's `redirectUrl` (where the customer's browser should land after we verified the
 * payment). Flutterwave itself is always sent to OUR redirect endpoint; this URL is only where we
 * forward afterwards, so it must be on the POS_RETURN_URL origin: anything else would make this API
 * an open redirect (a phishing tool). Returns the URL to store, or undefined when none was given.
 */
export function resolveReturnUrl(clientUrl: string | undefined, posReturnUrl: string | undefined): string | undefined {
  if (clientUrl === undefined) return undefined;
  const u = parseUrl(clientUrl);
  if (!u) throw new ValidationFailedError('redirectUrl must be an http(s) URL', { field: 'redirectUrl' });
  if (u.username || u.password)
    throw new ValidationFailedError('redirectUrl must not contain a user name or password', { field: 'redirectUrl' });
  const pos = posReturnUrl ? parseUrl(posReturnUrl) : undefined;
  if (!pos) {
    throw new ValidationFailedError(
      'redirectUrl is not accepted on this server: leave it out (the customer sees a result page), or set POS_RETURN_URL to allow return pages on your POS origin',
      {
        field: 'redirectUrl',
      },
    );
  }
  if (u.origin !== pos.origin)
    throw new ValidationFailedError(`redirectUrl must be on ${pos.origin} (the origin of POS_RETURN_URL)`, {
      field: 'redirectUrl',
    });
  return u.href;
}

/** Where the browser goes after the redirect was verified: a stored return URL still on the POS origin, else POS_RETURN_URL, else nowhere (result page). */
export function chooseReturnUrl(stored: unknown, posReturnUrl: string | undefined): string | undefined {
  if (!posReturnUrl) return undefined;
  if (typeof stored === 'string') {
    try {
      return resolveReturnUrl(stored, posReturnUrl);
    } catch {
      // configuration changed since the payment was opened: fall back to the configured page
    }
  }
  return posReturnUrl;
}

/** `base` with paymentId, orderId and status set in its query (other parameters and the fragment kept). */
export function returnLocation(base: string, p: { paymentId: string; orderId: string; status: string }): string {
  const u = new URL(base);
  u.searchParams.set('paymentId', p.paymentId);
  u.searchParams.set('orderId', p.orderId);
  u.searchParams.set('status', p.status);
  return u.href;
}

/** What to do after a verification answer. */
export type LookPlan = 'apply' | 'wait' | 'expire' | 'fail_not_found' | 'review';

/**
 * The decision after asking Flutterwave about a payment:
 * - a final answer (completed / failed / cancelled / expired) is applied (the lifecycle checks tx_ref, id,
 *   amount and currency before any value is given);
 * - otherwise an open payment waits until its window ends (the link's life for a payment with a
 *   link; the unresolved window for one whose link never reached us), then: Flutterwave never saw
 *   an attempt → expire (with a link) or fail NOT_FOUND_AT_PROVIDER (without one); an attempt still
 *   pending or in a state we do not know → review (a person decides; the truth can still settle it);
 * - a payment that is no longer open only takes final answers.
 */
export function planLook(a: {
  status: ProviderPaymentStatus;
  inFlight: boolean;
  hasLink: boolean;
  ageSeconds: number;
  windowSeconds: number;
}): LookPlan {
  if (a.status === 'completed' || a.status === 'failed' || a.status === 'cancelled' || a.status === 'expired')
    return 'apply';
  if (!a.inFlight || a.ageSeconds < a.windowSeconds) return 'wait';
  if (a.status === 'not_found') return a.hasLink ? 'expire' : 'fail_not_found';
  return 'review';
}

/** `data.status` of a Flutterwave verify answer as sent (e.g. "successful"), for resultCode. */
export function flwDataStatus(raw: unknown): string | undefined {
  if (typeof raw !== 'object' || raw === null) return undefined;
  const data = (raw as { data?: unknown }).data;
  if (typeof data !== 'object' || data === null) return undefined;
  const s = (data as { status?: unknown }).status;
  return typeof s === 'string' && s.length > 0 ? s.slice(0, 50) : undefined;
}

/**
 * A phone number for Flutterwave's `phonenumber`: spaces and dashes removed, Kenyan local forms
 * (07…, 01…) in international form without + (2547…). Other values are passed on for the
 * adapter to validate.
 */
export function normalizeCustomerPhone(phone: string | undefined): string | undefined {
  if (phone === undefined) return undefined;
  const compact = phone.replace(/[\s-]/g, '');
  if (compact === '') return undefined;
  if (/^0[17]\d{8}$/.test(compact)) return `254${compact.slice(1)}`;
  if (/^\+254[17]\d{8}$/.test(compact)) return compact.slice(1);
  return compact;
}

/** Amount for people: 2450.5 KES → "KES 2,450.50". */
export function displayAmount(minor: bigint, currency: string): string {
  const text = formatMinor(minor, currency);
  const [whole, frac] = text.split('.');
  const grouped = whole.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  return `${currency} ${frac === undefined ? grouped : `${grouped}.${frac}`}`;
}

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"'`]/g, (c) => `&#${c.charCodeAt(0)};`);
}

export interface ResultPageView {
  title: string;
  message: string;
  /** label → value rows (escaped) */
  rows?: Array<[string, string]>;
  /** for styling and tests: completed | pending | failed | ... | error */
  state: string;
}

/** The small page the customer's browser shows when no POS_RETURN_URL is configured. Everything is escaped; no secrets. */
export function renderResultPage(v: ResultPageView): string {
  const rows = (v.rows ?? [])
    .map(([k, val]) => `<tr><th>${escapeHtml(k)}</th><td>${escapeHtml(val)}</td></tr>`)
    .join('');
  return [
    '<!doctype html>',
    '<html lang="en"><head><meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${escapeHtml(v.title)}</title>`,
    '<style>body{font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem;color:#222}',
    'h1{font-size:1.4rem}table{border-collapse:collapse}th{text-align:left;padding:.2rem 1rem .2rem 0;color:#555;font-weight:normal}',
    '.completed h1{color:#1a7f37}.failed h1,.cancelled h1,.expired h1,.error h1{color:#b42318}</style>',
    `</head><body><main id="payment-result" class="${escapeHtml(v.state)}" data-state="${escapeHtml(v.state)}">`,
    `<h1>${escapeHtml(v.title)}</h1><p>${escapeHtml(v.message)}</p>`,
    rows ? `<table>${rows}</table>` : '',
    '</main></body></html>',
  ].join('');
}

/** Title and message for a payment's status, in the customer's words. */
export function resultTexts(status: string, redirectStatus: string | undefined): { title: string; message: string } {
  switch (status) {
    case 'completed':
      return {
        title: 'Payment received',
        message: 'Thank you: your payment was received. You can return to the cashier.',
      };
    case 'failed':
      return {
        title: 'Payment failed',
        message: 'The payment did not go through and nothing was charged. Ask the cashier to start a new payment.',
      };
    case 'cancelled':
      return { title: 'Payment cancelled', message: 'The payment was cancelled and nothing was charged.' };
    case 'expired':
      return {
        title: 'Payment link expired',
        message: 'This payment link has expired and nothing was charged. Ask the cashier for a new one.',
      };
    case 'review':
      return {
        title: 'Payment being checked',
        message:
          'We could not confirm this payment automatically. The shop will check it; keep any receipt you received.',
      };
    default:
      if (redirectStatus === 'cancelled' || redirectStatus === 'failed') {
        return {
          title: 'Payment not completed',
          message:
            'No payment has been confirmed. You can go back and pay with the same link until it expires, or ask the cashier for another way to pay.',
        };
      }
      return {
        title: 'Waiting for confirmation',
        message:
          'We have not received confirmation of this payment yet. If you paid, it will be confirmed shortly and the cashier will see it.',
      };
  }
}
