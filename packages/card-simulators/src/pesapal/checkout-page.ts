/**
 * The hosted payment page behind `redirect_url` (`/pesapaliframe/PesapalIframe3/Index?OrderTrackingId=…`):
 * plain HTML, stable ids (#pay, #pending, #decline, #cancel, #payment-method, #amount…). The form targets
 * `_top` (TOP_WINDOW) or `_parent` (PARENT_WINDOW) like the real iframe; submitting records the outcome,
 * sends the IPN and 303-redirects to callback_url with OrderTrackingId, OrderMerchantReference and
 * OrderNotificationType=CALLBACKURL.
 */
import type { IncomingMessage } from 'node:http';
import { SimulatorError } from '../shared/control';
import { definitionList, escapeHtml, htmlPage, messagePage } from '../shared/html';
import { BodyTooLargeError, htmlReply, readBody, redirectReply, type Reply } from '../shared/http';
import { currencyExponent, formatForDisplay, minorToDecimalString } from '../shared/money';
import type { PesapalCore } from './core';
import { PESAPAL_PAYMENT_METHODS, type PesapalOrder, type PesapalOutcome, type PesapalPaymentMethod } from './types';

export const PESAPAL_CHECKOUT_PATH = /^\/pesapaliframe\/pesapaliframe3\/index\/?$/i;

const OUTCOMES: readonly PesapalOutcome[] = ['completed', 'failed', 'pending', 'cancelled'];
const METHOD_LABEL: Readonly<Record<PesapalPaymentMethod, string>> = Object.freeze({
  Visa: 'Visa card',
  MasterCard: 'MasterCard',
  Mpesa: 'M-Pesa',
  AirtelMoney: 'Airtel Money',
});

function trackingIdOf(url: URL): string | null {
  for (const [k, v] of url.searchParams) if (k.toLowerCase() === 'ordertrackingid') return v;
  return null;
}

export class PesapalCheckoutPage {
  constructor(
    private readonly core: PesapalCore,
    private readonly merchantName: string,
  ) {}

  async handle(req: IncomingMessage, url: URL): Promise<Reply> {
    const method = req.method ?? 'GET';
    if (method !== 'GET' && method !== 'POST') {
      req.resume();
      return htmlReply(
        405,
        messagePage('Method not allowed', 'error', 'Use GET to view the page or POST the form.', 'error'),
      );
    }
    const trackingId = trackingIdOf(url);
    const order = trackingId ? this.core.orderByTrackingId(trackingId) : undefined;
    if (!order) {
      req.resume();
      return htmlReply(
        404,
        messagePage(
          'Order not found',
          'not-found',
          'This payment link is invalid: no order matches the OrderTrackingId.',
          'not-found',
        ),
      );
    }
    if (method === 'GET') return this.view(order);
    return this.submit(req, order);
  }

  private closedNotice(order: PesapalOrder): Reply | undefined {
    if (order.state === 'cancelled')
      return htmlReply(
        410,
        messagePage('Order cancelled', 'closed', 'This order has been cancelled by the merchant.', 'cancelled'),
      );
    if (order.state === 'completed' || order.state === 'reversed')
      return htmlReply(200, messagePage('Payment completed', 'paid', 'This order has already been paid.', order.state));
    return undefined;
  }

  private view(order: PesapalOrder): Reply {
    const closed = this.closedNotice(order);
    if (closed) return closed;
    const exponent = currencyExponent(order.currency) ?? 2;
    const full = formatForDisplay(order.amountMinor, order.currency, exponent);
    const amount = full.slice(order.currency.length + 1);
    const target = order.redirectMode === 'PARENT_WINDOW' ? '_parent' : '_top';
    const action = `/pesapaliframe/PesapalIframe3/Index?OrderTrackingId=${encodeURIComponent(order.orderTrackingId)}`;
    const methods = PESAPAL_PAYMENT_METHODS.map(
      (m) =>
        `<option value="${m}"${m === order.paymentMethod ? ' selected' : ''}>${escapeHtml(METHOD_LABEL[m])}</option>`,
    ).join('');
    const rows: Array<[string, string, string]> = [
      ['merchant-reference', 'Reference', order.merchantReference],
      ['order-tracking-id', 'Order', order.orderTrackingId],
    ];
    if (order.branch) rows.push(['branch', 'Branch', order.branch]);
    const failedBefore =
      order.state === 'failed'
        ? `<p id="error" class="notice error">Previous attempt failed: ${escapeHtml(order.outcomeDescription ?? 'declined')}. You can try again.</p>`
        : '';
    const awaiting =
      order.state === 'pending' && order.paymentMethod !== ''
        ? `<p id="awaiting" class="notice">A ${escapeHtml(order.paymentMethod)} prompt is waiting for approval.</p>`
        : '';
    const body = `<main id="checkout" data-provider="pesapal" data-state="${order.state}" data-order-tracking-id="${escapeHtml(order.orderTrackingId)}" data-merchant-reference="${escapeHtml(order.merchantReference)}" data-amount="${minorToDecimalString(order.amountMinor, exponent)}" data-currency="${escapeHtml(order.currency)}">
<p class="sim">Pesapal simulator · sandbox</p>
<h1 id="merchant">${escapeHtml(this.merchantName)}</h1>
<p id="description">${escapeHtml(order.description)}</p>
<p class="amount"><span id="currency">${escapeHtml(order.currency)}</span> <span id="amount">${amount}</span></p>
${failedBefore}${awaiting}
${definitionList(rows)}
<form id="payment-form" method="post" action="${escapeHtml(action)}" target="${target}">
<label for="payment-method">Payment method</label>
<select id="payment-method" name="payment_method">${methods}</select>
<div class="actions">
<button id="pay" class="primary" type="submit" name="outcome" value="completed">Pay ${escapeHtml(full)}</button>
<button id="pending" type="submit" name="outcome" value="pending">Send prompt, approve later (stays pending)</button>
<button id="decline" class="danger" type="submit" name="outcome" value="failed">Decline payment</button>
<button id="cancel" type="submit" name="outcome" value="cancelled">Cancel</button>
</div>
</form>
</main>`;
    return htmlReply(200, htmlPage(`Pay ${full} · ${this.merchantName}`, body));
  }

  private async submit(req: IncomingMessage, order: PesapalOrder): Promise<Reply> {
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
    const method = form.get('payment_method');
    if (method !== null && !(PESAPAL_PAYMENT_METHODS as readonly string[]).includes(method)) {
      return htmlReply(
        400,
        messagePage(
          'Invalid request',
          'error',
          `payment_method must be one of ${PESAPAL_PAYMENT_METHODS.join(', ')}`,
          'error',
        ),
      );
    }
    const closed = this.closedNotice(order);
    if (closed) return { ...closed, status: 409 };
    try {
      const completion = this.core.settle(order.orderTrackingId, {
        outcome: outcome as PesapalOutcome,
        ...(method !== null ? { paymentMethod: method as PesapalPaymentMethod } : {}),
      });
      return redirectReply(completion.redirectUrl);
    } catch (err: unknown) {
      if (err instanceof SimulatorError)
        return htmlReply(409, messagePage('Payment not possible', 'error', err.message, 'error'));
      throw err;
    }
  }
}
