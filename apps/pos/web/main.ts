import {
  createSmartDukaClient,
  isFinalPaymentStatus,
  watchPayment,
  type components,
  type Payment,
} from '@smartduka/api-client';
import QRCode from 'qrcode';
import {
  describeFailure,
  describePayment,
  money,
  nairobiTime,
  nairobiToday,
  providerName,
  type ApiFailure,
  type Method,
  type NextAction,
  type Problem,
} from './describe';
import { describeMpesaQr, describeQrFailure } from './mpesa-qr';

type Receipt = components['schemas']['ReceiptDto'];
type OrderWithPayments = components['schemas']['OrderWithPaymentsDto'];
type DailyReport = components['schemas']['DailyReportDto'];

interface PosConfig {
  apiBaseUrl: string;
  token: string;
}

declare global {
  interface Window {
    SMARTDUKA_POS?: PosConfig;
  }
}

const config: PosConfig = window.SMARTDUKA_POS ?? { apiBaseUrl: 'http://localhost:3000', token: '' };
const api = createSmartDukaClient({ baseUrl: config.apiBaseUrl, token: config.token });

const DEMO_ORDERS = [
  { label: 'Sugar 2 kg + bread', total: 450 },
  { label: 'Airtime', total: 100 },
  { label: 'Weekly basket', total: 2450.5 },
];

// ---------------------------------------------------------------- DOM helpers

function $(testid: string): HTMLElement {
  const el = document.querySelector<HTMLElement>(`[data-testid="${testid}"]`);
  if (!el) throw new Error(`missing element ${testid}`);
  return el;
}
const input = (testid: string) => $(testid) as HTMLInputElement;
const button = (testid: string) => $(testid) as HTMLButtonElement;

function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string> = {},
  ...children: (Node | string)[]
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  node.append(...children);
  return node;
}

function show(testid: string, visible: boolean): void {
  $(testid).hidden = !visible;
}

// ---------------------------------------------------------------- state

interface Sale {
  orderId: string;
  total: number;
  registered: boolean;
  attempt: number;
}

let sale: Sale = newSale();
let watching: AbortController | undefined;
/** While an M-Pesa QR is shown: the order is checked until it is paid (the payment arrives as a C2B confirmation). */
let qrPoll: ReturnType<typeof setInterval> | undefined;
/** The QR on screen: its order and the amount it asks (a till's payment names no order: the cashier claims it). */
let qrShown: { orderId: string; amount: number; till: boolean } | undefined;
let countdown: ReturnType<typeof setInterval> | undefined;
/** The last payment request, to repeat with the same Idempotency-Key when its answer was lost. */
let lastSend: (() => Promise<void>) | undefined;

function newSale(): Sale {
  // yyMMddHHmm: the id stays within 20 characters, what a paybill account number (an M-Pesa QR's) holds.
  const stamp = new Date().toISOString().replace(/\D/g, '').slice(2, 12);
  const rand = Math.random().toString(36).slice(2, 6).toUpperCase();
  return { orderId: `POS-${stamp}-${rand}`, total: 0, registered: false, attempt: 0 };
}

function method(): Method {
  const checked = document.querySelector<HTMLInputElement>('input[name="method"]:checked');
  return (checked?.value as Method) ?? 'mpesa';
}

// ---------------------------------------------------------------- rendering

function setStatus(label: string, status: string, text: string): void {
  show('status-panel', true);
  const badge = $('status');
  badge.textContent = label;
  badge.dataset.status = status;
  $('status-text').textContent = text;
}

function clearMessage(): void {
  const m = $('message');
  m.textContent = '';
  m.hidden = true;
  $('problems').replaceChildren();
  $('request-id').textContent = '';
  stopCountdown();
}

function showProblem(p: Problem): void {
  const m = $('message');
  m.hidden = false;
  m.textContent = p.message;
  $('problems').replaceChildren(...p.problems.map((t) => el('li', {}, t)));
  $('request-id').textContent = p.requestId ? `Reference for support: ${p.requestId}` : '';
}

/** What the cashier may press next. Resend only where no prompt can still be open. */
function offer(action: NextAction | 'wait' | 'done', retryAfterSeconds?: number): void {
  stopCountdown();
  const canSendNew = action === 'resend' || action === 'fix-input' || action === 'other-method';
  show('resend', action === 'resend');
  show('retry-same', action === 'retry-same');
  // A new sale is always possible: it cancels nothing, and an open payment's outcome still lands in today's list.
  show('new-sale', true);
  button('pay').disabled = !canSendNew;
  // A QR while a prompt may still be open (or its outcome is unknown) would let the customer pay twice.
  button('show-mpesa-qr').disabled = !(canSendNew || action === 'done' || qrShown);
  button('resend').disabled = false;
  button('retry-same').disabled = false;
  if (retryAfterSeconds && retryAfterSeconds > 0 && (action === 'resend' || action === 'retry-same')) {
    let left = Math.ceil(retryAfterSeconds);
    const target = action === 'resend' ? [button('resend'), button('pay')] : [button('retry-same')];
    target.forEach((b) => (b.disabled = true));
    const tick = () => {
      $('countdown').textContent = left > 0 ? `You can try again in ${left} s` : '';
      if (left <= 0) {
        stopCountdown();
        target.forEach((b) => (b.disabled = false));
      }
      left--;
    };
    tick();
    countdown = setInterval(tick, 1000);
  }
}

function stopCountdown(): void {
  if (countdown) clearInterval(countdown);
  countdown = undefined;
  $('countdown').textContent = '';
}

function renderPayment(p: Payment): void {
  const o = describePayment(p);
  setStatus(o.label, p.status, o.message);
  $('status-panel').dataset.paymentId = p.paymentId;
}

function stopQr(): void {
  if (qrPoll) clearInterval(qrPoll);
  qrPoll = undefined;
  qrShown = undefined;
  show('mpesa-qr', false);
}

/** The order total typed in, or undefined after saying what is wrong with it. */
function readTotal(): number | undefined {
  const totalText = input('amount').value.trim();
  const total = Number(totalText);
  if (totalText === '' || !Number.isFinite(total)) {
    showProblem({
      message: 'Enter the order total in shillings, e.g. 450 or 2450.50.',
      problems: [],
      action: 'fix-input',
    });
    return undefined;
  }
  return total;
}

/** "Show M-Pesa QR": the order's QR for the shop's till or paybill and what it still owes. */
async function showMpesaQr(): Promise<void> {
  clearMessage();
  const total = readTotal();
  if (total === undefined) return;
  if (sale.registered && total !== sale.total) sale = newSale();
  sale.total = total;
  $('order-id').textContent = sale.orderId;
  stopQr();
  show('receipt', false);
  show('hosted', false);
  setStatus('Sending', 'sending', 'Making the M-Pesa QR code…');
  lastSend = showMpesaQr;
  const orderProblem = await ensureOrder();
  if (orderProblem) return fail(orderProblem);
  const orderId = sale.orderId;
  try {
    const res = await api.GET('/orders/{id}/mpesa-qr', { params: { path: { id: orderId } } });
    if (res.error || !res.data) {
      const problem = describeQrFailure({
        status: res.response.status,
        body: res.error,
        retryAfter: res.response.headers.get('retry-after'),
        method: 'mpesa',
      });
      // Paid already (the customer paid, or this sale was paid before): say so and show its receipt, not "Not sent".
      if (res.error?.code === 'ORDER_ALREADY_PAID' && (await showIfPaid(orderId, problem))) return;
      return fail(problem);
    }
    lastSend = undefined;
    ($('mpesa-qr-img') as HTMLImageElement).src = `data:image/png;base64,${res.data.pngBase64}`;
    $('mpesa-qr-text').textContent = describeMpesaQr(res.data);
    qrShown = { orderId, amount: res.data.amount, till: res.data.type === 'till' };
    input('qr-receipt').value = '';
    button('qr-claim-button').disabled = false;
    show('mpesa-qr', true);
    setStatus(
      'Waiting',
      'pending',
      qrShown.till
        ? 'Waiting for the customer to pay by QR… A till payment names no order: when they have paid, type the M-Pesa code from their SMS below.'
        : 'Waiting for the customer to pay by QR…',
    );
    offer('wait');
    qrPoll = setInterval(() => void checkQrPaid(orderId), 3000);
  } catch {
    fail(describeQrFailure({ status: undefined }));
  }
}

async function checkQrPaid(orderId: string): Promise<void> {
  try {
    const res = await api.GET('/orders/{id}', { params: { path: { id: orderId } } });
    if (!res.data || sale.orderId !== orderId || !qrPoll) return;
    if (res.data.status === 'paid') renderOrderPaid(res.data);
  } catch {
    // The next check tries again.
  }
}

/**
 * "Find the payment": a payment to the till (Buy Goods) carries no order, so it waits in the shop's
 * feed of unclaimed payments; the cashier finds it by the code on the customer's SMS and claims it
 * for this order. Only a payment of exactly the QR's amount is claimed here; anything else is a manager's.
 */
async function claimQrPayment(): Promise<void> {
  const shown = qrShown;
  if (!shown || sale.orderId !== shown.orderId) return;
  const code = input('qr-receipt').value.replace(/\s/g, '').toUpperCase();
  const say = (message: string) => showProblem({ message, problems: [], action: 'fix-input' });
  if (!/^[A-Z0-9]{6,20}$/.test(code)) return say("Type the M-Pesa code from the customer's SMS, e.g. SL12ABC3DE.");
  clearMessage();
  button('qr-claim-button').disabled = true;
  try {
    const found = await api.GET('/payments/c2b/unclaimed', { params: { query: { receipt: code, limit: 1 } } });
    if (qrShown !== shown) return;
    if (found.error || !found.data) return showProblem(await failureOf(found, 'mpesa'));
    const item = found.data[0];
    if (!item) {
      // Already taken for this order (a paybill payment names it): the order says so.
      if (await showIfPaid(shown.orderId)) return;
      return say(
        `No M-Pesa payment ${code} is waiting to be matched. Check the code on the customer's SMS; a payment can take a minute to arrive.`,
      );
    }
    if (item.amount !== shown.amount || item.currency !== 'KES')
      return say(
        `M-Pesa payment ${item.receipt} is ${money(item.amount, item.currency)}, but this order owes ${money(shown.amount)}. It was not taken for this order: ask a manager to match it.`,
      );
    const claimed = await api.POST('/payments/c2b/{id}/claim', {
      params: { path: { id: item.id } },
      body: { orderId: shown.orderId },
    });
    if (claimed.error || !claimed.data) {
      const f = await failureOf(claimed, 'mpesa');
      // The API's own words (claimed already, the order paid meanwhile, …): nothing was taken.
      return showProblem({ ...f, message: claimed.error?.message ?? f.message, action: 'fix-input' });
    }
    if (qrShown !== shown) return;
    stopQr();
    const outcome = describePayment({
      status: claimed.data.status,
      provider: 'mpesa',
      statusReason: claimed.data.statusReason,
    });
    setStatus(outcome.label, claimed.data.status, outcome.message);
    $('status-panel').dataset.paymentId = claimed.data.paymentId;
    if (claimed.data.status === 'completed') void showReceipt(claimed.data.paymentId);
    else offer(outcome.action === 'wait' ? 'done' : outcome.action);
    void refreshToday();
  } catch {
    showProblem(networkProblem());
  } finally {
    if (qrShown === shown) button('qr-claim-button').disabled = false;
  }
}

/** When the order is paid: shows it paid with its receipt (and `problem`'s words) and answers true. */
async function showIfPaid(orderId: string, problem?: Problem): Promise<boolean> {
  try {
    const res = await api.GET('/orders/{id}', { params: { path: { id: orderId } } });
    if (!res.data || res.data.status !== 'paid' || sale.orderId !== orderId) return false;
    lastSend = undefined;
    renderOrderPaid(res.data);
    if (problem) showProblem({ ...problem, requestId: undefined });
    return true;
  } catch {
    return false;
  }
}

/** A paid order (its payment came as a C2B confirmation, so no payment was being followed): Paid and the receipt. */
function renderOrderPaid(order: OrderWithPayments): void {
  stopQr();
  // Newest first: the payment that completed the order.
  const last = order.payments.find((p) => p.status === 'completed');
  setStatus('Paid', 'completed', `Paid: ${money(order.total, order.currency)}.`);
  if (last) {
    $('status-panel').dataset.paymentId = last.paymentId;
    void showReceipt(last.paymentId);
  } else offer('done');
  void refreshToday();
}

function renderHosted(link: string | undefined): void {
  if (!link) {
    show('hosted', false);
    return;
  }
  show('hosted', true);
  const a = $('hosted-link') as HTMLAnchorElement;
  a.href = link;
  a.textContent = link;
  const img = $('qr') as HTMLImageElement;
  img.removeAttribute('src');
  QRCode.toDataURL(link, { margin: 1, width: 240, errorCorrectionLevel: 'M' }).then(
    (url) => (img.src = url),
    () => (img.alt = 'QR code could not be drawn: use the link'),
  );
}

// ---------------------------------------------------------------- API calls

async function failureOf(res: { error?: unknown; response: Response }, m?: Method): Promise<Problem> {
  const f: ApiFailure = {
    status: res.response.status,
    body: res.error,
    retryAfter: res.response.headers.get('retry-after'),
    method: m,
  };
  return describeFailure(f);
}

function networkProblem(): Problem {
  return describeFailure({ status: undefined });
}

async function ensureOrder(): Promise<Problem | undefined> {
  if (sale.registered) return undefined;
  try {
    const res = await api.POST('/orders', { body: { id: sale.orderId, total: sale.total, currency: 'KES' } });
    if (res.error) return failureOf(res);
    sale.registered = true;
    return undefined;
  } catch {
    return networkProblem();
  }
}

type Started = { paymentId: string; link?: string };

async function send(m: Method, key: string): Promise<{ ok: Started } | { problem: Problem }> {
  const amount = sale.total;
  const orderId = sale.orderId;
  const params = { header: { 'Idempotency-Key': key } };
  try {
    if (m === 'mpesa') {
      const res = await api.POST('/payments/stk-push', {
        body: { phoneNumber: input('phone').value, amount, orderId },
        params,
      });
      if (res.error || !res.data) return { problem: await failureOf(res, m) };
      return { ok: { paymentId: res.data.paymentId } };
    }
    const email = input('email').value.trim();
    if (m === 'card') {
      const res = await api.POST('/payments/flutterwave/init', {
        body: { orderId, amount, customer: { email } },
        params,
      });
      if (res.error || !res.data) return { problem: await failureOf(res, m) };
      return { ok: { paymentId: res.data.paymentId, link: res.data.link } };
    }
    const phone = input('phone').value.trim();
    const res = await api.POST('/payments/pesapal/init', {
      body: {
        orderId,
        amount,
        customer: { ...(email ? { email } : {}), ...(phone ? { phoneNumber: phone } : {}) },
      },
      params,
    });
    if (res.error || !res.data) return { problem: await failureOf(res, m) };
    return { ok: { paymentId: res.data.paymentId, link: res.data.redirectUrl } };
  } catch {
    return { problem: networkProblem() };
  }
}

async function pay(): Promise<void> {
  clearMessage();
  const total = readTotal();
  if (total === undefined) return;
  stopQr();
  // A changed total is a different order (the API keeps an order's total).
  if (sale.registered && total !== sale.total) sale = newSale();
  sale.total = total;
  $('order-id').textContent = sale.orderId;
  button('pay').disabled = true;
  show('receipt', false);
  show('hosted', false);
  const m = method();
  setStatus(
    'Sending',
    'sending',
    m === 'mpesa' ? 'Sending the M-Pesa prompt…' : `Opening a ${providerName(m)} payment…`,
  );
  const orderProblem = await ensureOrder();
  if (orderProblem) {
    // Registering the same order id and total again is idempotent (200): Check again simply repeats it.
    lastSend = pay;
    return fail(orderProblem);
  }
  sale.attempt++;
  const key = `${sale.orderId}-${m}-${sale.attempt}`;
  const attempt = async (): Promise<void> => {
    clearMessage();
    setStatus('Sending', 'sending', 'Checking…');
    const r = await send(m, key);
    if ('problem' in r) return fail(r.problem);
    lastSend = undefined;
    renderHosted(r.ok.link);
    follow(r.ok.paymentId);
  };
  lastSend = attempt;
  await attempt();
}

function fail(p: Problem): void {
  showProblem(p);
  if (p.action === 'follow' && p.paymentId) {
    follow(p.paymentId, true);
    return;
  }
  setStatus('Not sent', 'error', p.action === 'manager' ? 'Needs a manager.' : '');
  offer(p.action, p.retryAfterSeconds);
}

function follow(paymentId: string, keepMessage = false): void {
  watching?.abort();
  const ac = new AbortController();
  watching = ac;
  offer('wait');
  if (!keepMessage) clearMessage();
  setStatus('Waiting', 'pending', 'Waiting for the payment…');
  $('live-mode').textContent = '';
  watchPayment({ baseUrl: config.apiBaseUrl, token: config.token }, paymentId, {
    signal: ac.signal,
    onModeChange: (mode) => ($('live-mode').textContent = mode === 'stream' ? 'Live' : 'Checking every 2 s'),
    onUpdate: (p) => {
      if (ac.signal.aborted) return;
      renderPayment(p);
      if (!p.paymentMethod && p.checkoutUrl && $('hosted').hidden) renderHosted(p.checkoutUrl);
      if (p.status === 'review') ac.abort(); // terminal for the till: a manager takes it from here
    },
    onError: (e) => {
      if (ac.signal.aborted) return;
      $('live-mode').textContent = e.fatal ? '' : 'Connection problem, retrying…';
    },
    onEnd: (r) => {
      if (watching !== ac && r.reason === 'aborted') return;
      const p = r.payment;
      if (r.reason === 'error' && r.error) {
        showProblem(
          describeFailure({ status: r.error.status, body: { code: r.error.code, message: r.error.message } }),
        );
        offer('new-sale');
        return;
      }
      if (!p) return;
      const o = describePayment(p);
      $('live-mode').textContent = '';
      if (o.action === 'done') void showReceipt(p.paymentId);
      else if (o.action !== 'wait') offer(o.action); // the status text already says what happened
      if (isFinalPaymentStatus(p.status) || p.status === 'review') void refreshToday();
    },
  });
}

async function showReceipt(paymentId: string): Promise<void> {
  offer('done');
  show('hosted', false);
  try {
    const res = await api.GET('/payments/{id}/receipt', { params: { path: { id: paymentId } } });
    if (res.error || !res.data) {
      showProblem(await failureOf(res));
      return;
    }
    renderReceipt(res.data);
  } catch {
    showProblem(networkProblem());
  }
}

function renderReceipt(r: Receipt): void {
  show('receipt', true);
  $('receipt').dataset.paymentId = r.paymentId;
  $('receipt-shop').textContent = r.shop.name;
  $('receipt-amount').textContent = money(r.amount, r.currency);
  $('receipt-confirmation').textContent = r.confirmation ?? '—';
  $('receipt-provider').textContent = providerName(r.provider);
  $('receipt-phone').textContent = r.phone ?? '—';
  $('receipt-order').textContent = r.orderId;
  $('receipt-time').textContent = r.paidAtNairobi;
}

async function print(width: '58' | '80'): Promise<void> {
  const id = $('receipt').dataset.paymentId;
  if (!id) return;
  // Opened at once (inside the click) so no popup blocker stops it; filled when the page arrives.
  const win = window.open('', '_blank');
  try {
    const res = await api.GET('/payments/{id}/receipt/print', {
      params: { path: { id }, query: { width } },
      parseAs: 'text',
    });
    if (res.error !== undefined || typeof res.data !== 'string') {
      win?.close();
      showProblem(await failureOf(res));
      return;
    }
    const url = URL.createObjectURL(new Blob([res.data], { type: 'text/html' }));
    if (win) win.location.href = url;
    else window.location.href = url;
  } catch {
    win?.close();
    showProblem(networkProblem());
  }
}

// ---------------------------------------------------------------- today and end of day

async function refreshToday(): Promise<void> {
  const today = nairobiToday();
  const list = $('today-list');
  try {
    const [payments, daily] = await Promise.all([
      api.GET('/payments', { params: { query: { from: today.from, limit: 100 } } }),
      api.GET('/reports/daily', { params: { query: { from: today.date, to: today.date } } }),
    ]);
    if (payments.data) {
      list.replaceChildren(
        ...(payments.data.data.length === 0
          ? [el('li', { class: 'empty' }, 'No payments yet today.')]
          : payments.data.data.map((p) =>
              el(
                'li',
                { 'data-testid': 'payment-row', 'data-status': p.status, 'data-payment-id': p.paymentId },
                el('span', { class: 'time' }, nairobiTime(p.createdAt)),
                el('span', { class: 'order' }, p.orderId),
                el('span', { class: 'prov' }, providerName(p.provider)),
                el('span', { class: 'amt' }, money(p.amount, p.currency)),
                el('span', { class: `badge s-${p.status}` }, describePayment(p).label),
              ),
            )),
      );
    } else list.replaceChildren(el('li', { class: 'empty' }, (await failureOf(payments)).message));
    if (daily.data) renderDaily(daily.data);
    else $('daily-summary').replaceChildren(el('p', {}, (await failureOf(daily)).message));
  } catch {
    list.replaceChildren(el('li', { class: 'empty' }, networkProblem().message));
  }
}

function renderDaily(report: DailyReport): void {
  const rows = report.days.flatMap((d) => d.providers);
  const box = $('daily-summary');
  if (rows.length === 0) {
    box.replaceChildren(el('p', { class: 'empty' }, 'Nothing yet today.'));
    return;
  }
  const head = el(
    'tr',
    {},
    ...['Provider', 'Paid', 'Amount', 'Failed', 'Cancelled', 'No answer', 'Refunds', 'Median to paid'].map((h) =>
      el('th', {}, h),
    ),
  );
  const body = rows.map((r) =>
    el(
      'tr',
      { 'data-testid': `daily-${r.provider}` },
      el('td', {}, providerName(r.provider)),
      el('td', { 'data-testid': `daily-${r.provider}-count` }, String(r.completed.count)),
      el('td', { 'data-testid': `daily-${r.provider}-amount` }, money(r.completed.amount, r.currency)),
      el('td', {}, String(r.failed)),
      el('td', {}, String(r.cancelled)),
      el('td', {}, String(r.expired)),
      el('td', {}, r.refunds.count ? `${r.refunds.count} · ${money(r.refunds.amount, r.currency)}` : '0'),
      el(
        'td',
        {},
        r.medianSecondsToPaid === null || r.medianSecondsToPaid === undefined
          ? '—'
          : `${Math.round(r.medianSecondsToPaid)} s`,
      ),
    ),
  );
  box.replaceChildren(
    el('div', { class: 'table-wrap' }, el('table', {}, el('thead', {}, head), el('tbody', {}, ...body))),
  );
}

// ---------------------------------------------------------------- wiring

function startNewSale(): void {
  watching?.abort();
  watching = undefined;
  lastSend = undefined;
  stopQr();
  sale = newSale();
  clearMessage();
  $('order-id').textContent = sale.orderId;
  input('amount').value = '';
  input('phone').value = '';
  show('status-panel', false);
  show('receipt', false);
  show('hosted', false);
  offer('fix-input');
  show('new-sale', false);
  input('amount').focus();
}

function methodChanged(): void {
  const m = method();
  $('form').dataset.method = m;
  show('phone-field', m !== 'card');
  show('email-field', m !== 'mpesa');
  show('show-mpesa-qr', m === 'mpesa');
  $('phone-label').textContent = m === 'pesapal' ? "Customer's phone (or email)" : "Customer's M-Pesa number";
  button('pay').textContent = m === 'mpesa' ? 'Send M-Pesa prompt' : `Show ${providerName(m)} payment QR`;
}

function init(): void {
  $('demo-orders').replaceChildren(
    ...DEMO_ORDERS.map((d, i) =>
      el(
        'button',
        { type: 'button', 'data-testid': `demo-${i}`, 'data-total': String(d.total) },
        `${d.label} · ${money(d.total)}`,
      ),
    ),
  );
  $('demo-orders').addEventListener('click', (e) => {
    const b = (e.target as HTMLElement).closest<HTMLButtonElement>('button[data-total]');
    if (b) input('amount').value = b.dataset.total ?? '';
  });
  document.querySelectorAll('input[name="method"]').forEach((r) => r.addEventListener('change', methodChanged));
  $('form').addEventListener('submit', (e) => {
    e.preventDefault();
    if (!button('pay').disabled) void pay();
  });
  button('resend').addEventListener('click', () => void pay());
  button('show-mpesa-qr').addEventListener('click', () => void showMpesaQr());
  $('qr-claim').addEventListener('submit', (e) => {
    e.preventDefault();
    if (!button('qr-claim-button').disabled) void claimQrPayment();
  });
  button('retry-same').addEventListener('click', () => void lastSend?.());
  button('new-sale').addEventListener('click', startNewSale);
  button('print-58').addEventListener('click', () => void print('58'));
  button('print-80').addEventListener('click', () => void print('80'));
  button('today-refresh').addEventListener('click', () => void refreshToday());
  methodChanged();
  startNewSale();
  void refreshToday();
  document.body.dataset.ready = 'true';
}

init();
