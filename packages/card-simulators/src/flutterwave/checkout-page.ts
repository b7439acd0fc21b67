/**
 * The hosted checkout page behind `data.link` (`/v3/hosted/pay/flwlnk-…`): plain HTML, one form,
 * stable ids for browser tests (#pay, #pending, #decline, #cancel, #payment-method, #amount…).
 * Submitting records the outcome, sends the webhook and 303-redirects to the merchant's redirect_url.
 */
import type { IncomingMessage } from 'node:http';
import { SimulatorError } from '../shared/control';
import { definitionList, escapeHtml, htmlPage, messagePage } from '../shared/html';
import { BodyTooLargeError, htmlReply, readBody, redirectReply, type Reply } from '../shared/http';
import { currencyExponent, formatForDisplay, minorToDecimalString } from '../shared/money';
import type { FlutterwaveCore } from './core';
import type { FlwCheckout, FlwOutcome, FlwPaymentType } from './types';

export const FLW_CHECKOUT_PATH = /^\/v3\/hosted\/pay\/([A-Za-z0-9_-]+)\/?$/;

const OUTCOMES: readonly FlwOutcome[] = ['successful', 'failed', 'pending', 'cancelled'];
const TYPE_LABEL: Readonly<Record<FlwPaymentType, string>> = Object.freeze({
  card: 'Card (test Mastercard 5531 8866 5214 2950)',
  mpesa: 'M-Pesa',
});

function display(checkout: FlwCheckout): { amount: string; full: string; raw: string } {
  const exponent = currencyExponent(checkout.currency) ?? 2;
  const full = formatForDisplay(checkout.amountMinor, checkout.currency, exponent);
  return {
    amount: full.slice(checkout.currency.length + 1),
    full,
    raw: minorToDecimalString(checkout.amountMinor, exponent),
  };
}

export class FlwCheckoutPage {
  constructor(private readonly core: FlutterwaveCore) {}

  async handle(req: IncomingMessage, linkId: string): Promise<Reply> {
    const method = req.method ?? 'GET';
    if (method !== 'GET' && method !== 'POST') {
      req.resume();
      return htmlReply(
        405,
        messagePage('Method not allowed', 'error', 'Use GET to view the page or POST the form.', 'error'),
      );
    }
    const checkout = this.core.checkoutByLink(linkId);
    if (!checkout) {
      req.resume();
      return htmlReply(
        404,
        messagePage(
          'Invalid payment link',
          'not-found',
          'This payment link does not exist or is no longer available.',
          'not-found',
        ),
      );
    }
    if (method === 'GET') return this.view(checkout);
    return this.submit(req, checkout);
  }

  /** The page itself, or a closed/paid/expired notice. */
  private view(checkout: FlwCheckout, error?: string): Reply {
    const closed = this.closedNotice(checkout);
    if (closed) return closed;
    const d = display(checkout);
    const title = checkout.customizations.title ?? this.core.options.merchantName;
    const options = checkout.paymentOptions
      .map((t) => `<option value="${t}">${escapeHtml(TYPE_LABEL[t])}</option>`)
      .join('');
    const body = `<main id="checkout" data-provider="flutterwave" data-state="open" data-tx-ref="${escapeHtml(checkout.txRef)}" data-amount="${d.raw}" data-currency="${escapeHtml(checkout.currency)}">
<p class="sim">Flutterwave simulator · test mode</p>
<h1 id="merchant">${escapeHtml(title)}</h1>
${checkout.customizations.description ? `<p id="description">${escapeHtml(checkout.customizations.description)}</p>` : ''}
<p class="amount"><span id="currency">${escapeHtml(checkout.currency)}</span> <span id="amount">${d.amount}</span></p>
${error ? `<p id="error" class="notice error">${escapeHtml(error)}</p>` : ''}
${definitionList([
  ['tx-ref', 'Reference', checkout.txRef],
  ['customer-email', 'Customer', checkout.customer.email],
])}
<form id="payment-form" method="post" action="/v3/hosted/pay/${escapeHtml(checkout.linkId ?? '')}">
<label for="payment-method">Pay with</label>
<select id="payment-method" name="payment_type">${options}</select>
<div class="actions">
<button id="pay" class="primary" type="submit" name="outcome" value="successful">Pay ${escapeHtml(d.full)}</button>
<button id="pending" type="submit" name="outcome" value="pending">Approve later (payment stays pending)</button>
<button id="decline" class="danger" type="submit" name="outcome" value="failed">Decline payment</button>
<button id="cancel" type="submit" name="outcome" value="cancelled">Cancel</button>
</div>
</form>
</main>`;
    return htmlReply(200, htmlPage(`Pay ${d.full} · ${title}`, body));
  }

  private closedNotice(checkout: FlwCheckout): Reply | undefined {
    if (checkout.state === 'paid')
      return htmlReply(
        200,
        messagePage('Payment completed', 'paid', 'This payment has already been completed.', 'paid'),
      );
    if (checkout.state === 'closed') {
      return htmlReply(
        410,
        messagePage(
          'Payment link closed',
          'closed',
          'This payment link is closed: the maximum number of attempts was reached.',
          'closed',
        ),
      );
    }
    const hasPending =
      checkout.transactionIds.length > 0 &&
      this.core.getTransaction(checkout.transactionIds[checkout.transactionIds.length - 1] ?? -1)?.status === 'pending';
    if (hasPending) {
      return htmlReply(
        200,
        messagePage(
          'Waiting for approval',
          'waiting',
          'Waiting for the customer to approve the payment on their phone.',
          'pending',
        ),
      );
    }
    if (this.core.isExpired(checkout))
      return htmlReply(
        410,
        messagePage('Payment link expired', 'expired', 'This payment link has expired.', 'expired'),
      );
    return undefined;
  }

  private async submit(req: IncomingMessage, checkout: FlwCheckout): Promise<Reply> {
    let raw: Buffer;
    try {
      raw = await readBody(req);
    } catch (err: unknown) {
      if (err instanceof BodyTooLargeError)
        return htmlReply(413, messagePage('Request too large', 'error', err.message, 'error'));
      throw err;
    }
    const form = new URLSearchParams(raw.toString('utf8'));
    const outcome = form.get('outcome');
    if (outcome === null || !(OUTCOMES as readonly string[]).includes(outcome)) {
      return htmlReply(
        400,
        messagePage('Invalid request', 'error', `outcome must be one of ${OUTCOMES.join(', ')}`, 'error'),
      );
    }
    const type = form.get('payment_type');
    if (type !== null && !(checkout.paymentOptions as readonly string[]).includes(type)) {
      return htmlReply(
        400,
        messagePage(
          'Invalid request',
          'error',
          `payment_type must be one of ${checkout.paymentOptions.join(', ')}`,
          'error',
        ),
      );
    }
    const closed = this.closedNotice(checkout);
    if (closed) return { ...closed, status: 409 };
    let completion;
    try {
      completion = this.core.settle(checkout.txRef, {
        outcome: outcome as FlwOutcome,
        ...(type !== null ? { paymentType: type as FlwPaymentType } : {}),
      });
    } catch (err: unknown) {
      if (err instanceof SimulatorError)
        return htmlReply(409, messagePage('Payment not possible', 'error', err.message, 'error'));
      throw err;
    }
    if (completion.redirectUrl) return redirectReply(completion.redirectUrl);
    if (completion.outcome === 'pending') {
      return htmlReply(
        200,
        messagePage(
          'Waiting for approval',
          'waiting',
          'Waiting for the customer to approve the payment on their phone.',
          'pending',
        ),
      );
    }
    const text: Record<FlwOutcome, string> = {
      successful: 'Payment successful.',
      failed: 'Payment failed.',
      cancelled: 'Payment cancelled.',
      pending: 'Payment pending.',
    };
    return htmlReply(
      200,
      messagePage(
        'Payment result',
        'result',
        `${text[completion.outcome]} No redirect_url was given, so the page stops here.`,
        completion.outcome,
      ),
    );
  }
}
