/**
 * What the cashier reads: every API answer and payment outcome in plain words, with the one safe
 * next action. Pure functions (no DOM), so they are unit-tested in apps/pos/test.
 */

export type Method = 'mpesa' | 'card' | 'pesapal';

/**
 * resend: a new attempt is safe (no prompt can still be open), now or after `retryAfterSeconds`.
 * retry-same: repeat the very same request with the same Idempotency-Key (its answer was lost).
 * follow: a payment exists and may still complete: watch `paymentId`, send nothing.
 * fix-input: nothing was sent; correct the input and send.
 * new-sale / manager / reload / other-method: as named; nothing to resend.
 */
export type NextAction =
  'resend' | 'retry-same' | 'follow' | 'fix-input' | 'new-sale' | 'manager' | 'reload' | 'other-method';

export interface Problem {
  message: string;
  /** field problems, verbatim from the API */
  problems: string[];
  action: NextAction;
  retryAfterSeconds?: number;
  /** the payment to follow (action `follow`) */
  paymentId?: string;
  /** the API's request id, for support */
  requestId?: string;
}

export interface ApiFailure {
  /** HTTP status; undefined when the request never got an answer (network error) */
  status?: number;
  body?: unknown;
  /** the Retry-After header */
  retryAfter?: string | null;
  /** what was being done */
  method?: Method;
}

const PROVIDER_NAMES: Record<string, string> = {
  mpesa: 'M-Pesa',
  card: 'Flutterwave',
  flutterwave: 'Flutterwave',
  pesapal: 'Pesapal',
};

export function providerName(provider: string | undefined): string {
  return (provider && PROVIDER_NAMES[provider]) || 'The payment provider';
}

interface ErrorBody {
  code?: string;
  message?: string;
  requestId?: string;
  details?: {
    problems?: unknown[];
    status?: string;
    paymentId?: string;
    provider?: string;
    retryAfterSeconds?: number;
    payment?: { paymentId?: string };
  };
}

function seconds(retryAfter: string | null | undefined, fallback: number, details?: number): number {
  if (retryAfter && /^\d+$/.test(retryAfter.trim())) return Number(retryAfter.trim());
  if (typeof details === 'number' && Number.isFinite(details) && details >= 0) return Math.ceil(details);
  return fallback;
}

function problemTexts(list: unknown[] | undefined): string[] {
  if (!Array.isArray(list)) return [];
  return list
    .map((p) => {
      if (typeof p === 'string') return p;
      if (p && typeof p === 'object' && typeof (p as { message?: unknown }).message === 'string')
        return (p as { message: string }).message;
      return '';
    })
    .filter((s) => s !== '');
}

/** Text ending as a sentence does, so another can follow it. */
function sentence(text: string): string {
  const t = text.trim();
  return /[.!?]$/.test(t) ? t : `${t}.`;
}

/** An API error (or a request that got no answer) in the cashier's words, with the safe next action. */
export function describeFailure(f: ApiFailure): Problem {
  if (f.status === undefined) {
    return {
      message:
        "Can't reach the SmartDuka server. Check the till's network, then press Check again: the same request is sent, so the customer is never charged twice.",
      problems: [],
      action: 'retry-same',
    };
  }
  const body = (f.body && typeof f.body === 'object' ? f.body : {}) as ErrorBody;
  const d = body.details ?? {};
  const who = providerName(d.provider ?? f.method);
  const base = { problems: [] as string[], requestId: body.requestId };
  const verbatim = body.message || `The server answered ${f.status}.`;
  switch (body.code) {
    case 'CUSTOMER_BUSY': {
      const s = seconds(f.retryAfter, 60, d.retryAfterSeconds);
      return {
        ...base,
        message: `The customer's phone is busy with another M-Pesa prompt. Ask them to finish or close it. You can send again in ${s} s.`,
        action: 'resend',
        retryAfterSeconds: s,
      };
    }
    case 'PHONE_BUSY': {
      const s = seconds(f.retryAfter, 30, d.retryAfterSeconds);
      return {
        ...base,
        message: `A prompt was sent to this phone moments ago. Wait ${s} s before sending another.`,
        action: 'resend',
        retryAfterSeconds: s,
      };
    }
    case 'RATE_LIMITED_SHOP': {
      const s = seconds(f.retryAfter, 60, d.retryAfterSeconds);
      return {
        ...base,
        message: `This shop has sent too many prompts in the last minute. Wait ${s} s, then send again.`,
        action: 'resend',
        retryAfterSeconds: s,
      };
    }
    case 'PAYMENT_IN_PROGRESS':
      return {
        ...base,
        message: 'This order already has a payment in progress. Its status is shown below; do not send another.',
        action: 'follow',
        paymentId: d.payment?.paymentId,
      };
    case 'PAYMENT_OUTCOME_UNKNOWN':
      return {
        ...base,
        message:
          "An earlier payment for this order has an unknown outcome: the customer may have paid. Check the customer's M-Pesa SMS and ask a manager to check it before taking another payment.",
        action: 'manager',
        paymentId: d.payment?.paymentId,
      };
    case 'ORDER_ALREADY_PAID':
      return { ...base, message: 'This order is already paid. Start a new sale.', action: 'new-sale' };
    case 'ORDER_EXISTS':
      return {
        ...base,
        message: 'An order with this number already exists with a different total. Start a new sale.',
        action: 'new-sale',
      };
    case 'IDEMPOTENCY_REQUEST_IN_PROGRESS':
      return {
        ...base,
        message: 'The same request is still being processed. Press Check again in a moment.',
        action: 'retry-same',
        retryAfterSeconds: seconds(f.retryAfter, 2),
      };
    case 'IDEMPOTENCY_KEY_REUSED':
      return { ...base, message: 'This attempt was already used for another request. Send again.', action: 'resend' };
    case 'UNAUTHORIZED':
    case 'TOKEN_EXPIRED':
      return {
        ...base,
        message: "The till's sign-in is no longer valid (it may have expired). Reload the page to sign in again.",
        action: 'reload',
      };
    case 'FORBIDDEN':
      return { ...base, message: verbatim, action: 'manager' };
    case 'MERCHANT_ACCOUNT_REQUIRED':
      return {
        ...base,
        message: `${sentence(verbatim)} Ask a manager to set up the account, or use another payment method.`,
        action: 'other-method',
      };
    case 'PROVIDER_DISABLED':
      return {
        ...base,
        message: `${who} is switched off on this server. Use another payment method.`,
        action: 'other-method',
      };
    case 'PROVIDER_UNREACHABLE':
    case 'PROVIDER_RATE_LIMITED': {
      const s = seconds(f.retryAfter, 5, d.retryAfterSeconds);
      return {
        ...base,
        message: `${who} ${body.code === 'PROVIDER_RATE_LIMITED' ? 'is too busy' : "can't be reached"} right now. Nothing was sent to the customer. Try again in ${s} s.`,
        action: 'resend',
        retryAfterSeconds: s,
      };
    }
    case 'DATABASE_UNAVAILABLE':
      return {
        ...base,
        message:
          'The server lost its database for a moment. Press Check again: the same request is sent, so the customer is never prompted twice.',
        action: 'retry-same',
        retryAfterSeconds: seconds(f.retryAfter, 2),
      };
    default:
      break;
  }
  if (f.status === 504 || (f.status === 502 && d.status !== 'failed')) {
    // The provider may have the request: a prompt may be open on the customer's phone.
    return {
      ...base,
      message: `${who} did not give a clear answer${f.status === 504 ? ' in time' : ''}. The customer may still get the prompt, so do not send another: the outcome will show here when it arrives.`,
      action: d.paymentId ? 'follow' : 'manager',
      paymentId: d.paymentId,
    };
  }
  if (f.status === 502) {
    return {
      ...base,
      message: `${who} refused the payment: ${verbatim} Nothing was charged; you can send again.`,
      action: 'resend',
    };
  }
  if (f.status >= 500) {
    return {
      ...base,
      message: `The server had a problem (${verbatim}). Press Check again: the same request is sent, so the customer is never charged twice.`,
      action: 'retry-same',
    };
  }
  // 400 VALIDATION_FAILED, INVALID_PHONE_NUMBER, AMOUNT_EXCEEDS_OUTSTANDING, 404, ...: the API's own words.
  const problems = problemTexts(d.problems);
  return {
    ...base,
    message: verbatim,
    problems: problems.length > 1 ? problems : [],
    action: 'fix-input',
  };
}

export interface PaymentLike {
  status: string;
  provider: string;
  statusReason?: string | null;
  resultDesc?: string | null;
}

export interface Outcome {
  /** short label for the status badge */
  label: string;
  message: string;
  /** none: nothing to do but wait (open) or the sale is done (completed) */
  action: NextAction | 'wait' | 'done';
}

/** A payment's state for the cashier. */
export function describePayment(p: PaymentLike): Outcome {
  const who = providerName(p.provider);
  const hosted = p.provider !== 'mpesa';
  switch (p.status) {
    case 'initiated':
      return { label: 'Sending', message: `Sending to ${who}…`, action: 'wait' };
    case 'pending':
      return hosted
        ? { label: 'Waiting', message: 'Waiting for the customer to pay on the payment page…', action: 'wait' }
        : {
            label: 'Prompt sent',
            message: 'Prompt sent. Waiting for the customer to enter their M-Pesa PIN…',
            action: 'wait',
          };
    case 'unresolved':
      return {
        label: 'Checking',
        message: `${who} has not confirmed whether the prompt went out. Do not send another: the outcome will show here when it arrives.`,
        action: 'wait',
      };
    case 'completed':
      return { label: 'Paid', message: 'Paid.', action: 'done' };
    case 'cancelled':
      return {
        label: 'Cancelled',
        message: hosted
          ? 'The customer cancelled the payment. You can send a new one.'
          : 'The customer cancelled the M-Pesa prompt. Ask them, then send it again.',
        action: 'resend',
      };
    case 'expired':
      return {
        label: 'No answer',
        message: hosted
          ? 'The payment page expired before the customer paid. You can send a new one.'
          : "The customer didn't answer the prompt in time (or the phone was off). Check the number and send again.",
        action: 'resend',
      };
    case 'failed': {
      if (p.statusReason === 'CUSTOMER_BUSY')
        return {
          label: 'Phone busy',
          message: "The customer's phone was busy with another prompt. Wait a minute, then send again.",
          action: 'resend',
        };
      const why = p.resultDesc ? `: ${p.resultDesc}` : '';
      return {
        label: 'Failed',
        message: `The payment failed${why}. Nothing was charged; you can send again.`,
        action: 'resend',
      };
    }
    case 'review':
      return p.statusReason === 'OUTCOME_UNKNOWN'
        ? {
            label: 'Unknown',
            message:
              "We can't tell whether the customer paid. Check the customer's SMS; a manager must check this payment before another is taken for this order.",
            action: 'manager',
          }
        : {
            label: 'Needs a manager',
            message: `This payment needs a manager's check${p.statusReason ? ` (${p.statusReason})` : ''}. Do not take another payment for this order until then.`,
            action: 'manager',
          };
    default:
      return { label: p.status, message: `Status: ${p.status}`, action: 'wait' };
  }
}

/** Today's date in Nairobi (YYYY-MM-DD) and its first instant, for GET /payments?from= and /reports/daily. */
export function nairobiToday(now: Date = new Date()): { date: string; from: string } {
  // Nairobi is UTC+3 all year (no daylight saving).
  const date = new Date(now.getTime() + 3 * 3600_000).toISOString().slice(0, 10);
  return { date, from: `${date}T00:00:00+03:00` };
}

/** An instant as HH:MM in Nairobi. */
export function nairobiTime(iso: string): string {
  const t = new Date(iso);
  if (Number.isNaN(t.getTime())) return '';
  return new Date(t.getTime() + 3 * 3600_000).toISOString().slice(11, 16);
}

/** Major units as the till shows them: KES 2,450.50 */
export function money(amount: number, currency = 'KES'): string {
  const [whole, cents] = amount.toFixed(2).split('.');
  return `${currency} ${whole.replace(/\B(?=(\d{3})+(?!\d))/g, ',')}.${cents}`;
}
