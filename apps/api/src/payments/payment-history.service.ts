import { Injectable } from '@nestjs/common';
import type { AuthUser } from '../auth/auth.types';
import { AppError, ConflictError, NotFoundError } from '../common/errors';
import { exponentOf, toMajor } from '../common/money';
import type { Payment } from '../database/schema';
import type { DailyReportDto, PaymentHistoryDto, ReceiptDto } from './payment-history.dto';
import { PaymentLifecycle } from './payment-lifecycle.service';
import { decodeCursor, encodeCursor } from './payment-operations.service';
import type { PaymentResponseDto } from './payments.dto';
import { PaymentsRepository } from './payments.repository';
import { ReportsRepository } from './reports.repository';

export const REPORT_TIMEZONE = 'Africa/Nairobi';
const MAX_REPORT_DAYS = 92;

export interface HistoryFilters {
  orderId?: string;
  status?: string;
  provider?: string;
  from?: string;
  to?: string;
}

/** Read side for the till: payment history, receipts and the end-of-day summary (own shop only). */
@Injectable()
export class PaymentHistoryService {
  constructor(
    private readonly repo: PaymentsRepository,
    private readonly reports: ReportsRepository,
    private readonly lifecycle: PaymentLifecycle,
  ) {}

  async history(user: AuthUser, f: HistoryFilters, limit: number, cursor?: string): Promise<PaymentHistoryDto> {
    const before = cursor ? decodeCursor(cursor) : undefined;
    const from = f.from ? new Date(f.from) : undefined;
    const to = f.to ? new Date(f.to) : undefined;
    if (from && to && from.getTime() > to.getTime())
      throw new AppError('INVALID_RANGE', 'from must not be after to', 400, { from: f.from, to: f.to });
    const rows = await this.repo.listHistory(
      user.shopId,
      { orderId: f.orderId, status: f.status, provider: f.provider, from, to },
      limit + 1,
      before,
    );
    const page = rows.slice(0, limit);
    const last = page[page.length - 1];
    return {
      data: page.map((p) => this.lifecycle.toResponse(p)),
      nextCursor: rows.length > limit && last ? encodeCursor(last) : null,
    };
  }

  /** An order's payments, newest first (all of them: an order has few). */
  async forOrder(shopId: string, orderId: string): Promise<PaymentResponseDto[]> {
    const rows = await this.repo.listHistory(shopId, { orderId }, 1000);
    return rows.map((p) => this.lifecycle.toResponse(p));
  }

  async receipt(user: AuthUser, id: string): Promise<ReceiptDto> {
    const p = await this.repo.findForShop(user.shopId, id);
    if (!p) throw new NotFoundError('Payment', { paymentId: id });
    if (p.status !== 'completed' || !p.completedAt)
      throw new ConflictError(
        'PAYMENT_NOT_COMPLETED',
        `There is no receipt: this payment is ${p.status}, not completed`,
        {
          paymentId: p.id,
          status: p.status,
        },
      );
    return {
      paymentId: p.id,
      // No shops table (nor a shop name on merchant_accounts) yet: the shop id is its name.
      shop: { id: p.shopId, name: p.shopId },
      orderId: p.orderId,
      provider: p.provider,
      status: p.status,
      amount: toMajor(p.amountMinor, p.currency),
      currency: p.currency,
      confirmation: confirmationOf(p),
      // Stored already masked by maskPhone (common/mask.ts) when the payment was made; never the number.
      phone: p.phoneMasked ?? null,
      paidAt: p.completedAt.toISOString(),
      paidAtNairobi: nairobiMinute(p.completedAt),
    };
  }

  async receiptHtml(user: AuthUser, id: string, width: '58' | '80'): Promise<string> {
    const r = await this.receipt(user, id);
    const p = await this.repo.findForShop(user.shopId, id);
    return renderReceipt(r, p!.amountMinor, width);
  }

  async daily(user: AuthUser, from: string, to: string): Promise<DailyReportDto> {
    const d0 = Date.parse(`${from}T00:00:00Z`);
    const d1 = Date.parse(`${to}T00:00:00Z`);
    const days = Math.round((d1 - d0) / 86_400_000) + 1;
    if (days < 1) throw new AppError('INVALID_RANGE', 'from must not be after to', 400, { from, to });
    if (days > MAX_REPORT_DAYS)
      throw new AppError('INVALID_RANGE', `the report covers at most ${MAX_REPORT_DAYS} days`, 400, { from, to });
    const rows = await this.reports.daily(user.shopId, from, to);
    const byDay = new Map<string, DailyReportDto['days'][number]>();
    for (let i = 0; i < days; i++) {
      const date = new Date(d0 + i * 86_400_000).toISOString().slice(0, 10);
      byDay.set(date, { date, providers: [] });
    }
    for (const r of rows) {
      byDay.get(r.day)?.providers.push({
        provider: r.provider,
        currency: r.currency,
        completed: { count: r.completedCount, amount: toMajor(r.completedMinor, r.currency) },
        failed: r.failed,
        cancelled: r.cancelled,
        expired: r.expired,
        refunds: { count: r.refundCount, amount: toMajor(r.refundMinor, r.currency) },
        medianSecondsToPaid: r.medianSeconds,
      });
    }
    return { timezone: REPORT_TIMEZONE, from, to, days: [...byDay.values()] };
  }
}

function confirmationOf(p: Payment): string | null {
  return p.mpesaReceiptNumber ?? p.providerReceipt ?? p.providerReference ?? p.providerTransactionId ?? null;
}

/** `2026-12-02 14:05` in Africa/Nairobi. */
export function nairobiMinute(d: Date): string {
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat('en-GB', {
      timeZone: REPORT_TIMEZONE,
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      hourCycle: 'h23',
    })
      .formatToParts(d)
      .map((x) => [x.type, x.value]),
  );
  return `${parts.year}-${parts.month}-${parts.day} ${parts.hour}:${parts.minute}`;
}

/** 150050n KES → `KES 1,500.50` (exact, from minor units). */
export function formatMoney(minor: bigint, currency: string): string {
  const exp = exponentOf(currency);
  const div = 10n ** BigInt(exp);
  const neg = minor < 0n;
  const abs = neg ? -minor : minor;
  const whole = (abs / div).toString().replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  const frac = exp > 0 ? `.${(abs % div).toString().padStart(exp, '0')}` : '';
  return `${currency} ${neg ? '-' : ''}${whole}${frac}`;
}

export function escapeHtml(s: string): string {
  return s
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

const PROVIDER_NAMES: Record<string, string> = { mpesa: 'M-Pesa', flutterwave: 'Flutterwave', pesapal: 'Pesapal' };

function renderReceipt(r: ReceiptDto, amountMinor: bigint, width: '58' | '80'): string {
  const e = escapeHtml;
  // Printable width: 58 mm paper prints about 48 mm, 80 mm about 72 mm.
  const printable = width === '58' ? '48mm' : '72mm';
  const font = width === '58' ? '11px' : '12px';
  const row = (label: string, value: string) => `<tr><td class="l">${e(label)}</td><td class="v">${e(value)}</td></tr>`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Receipt ${e(r.paymentId)}</title>
<style>
@page { size: ${width}mm auto; margin: 0; }
html, body { margin: 0; padding: 0; }
body { width: ${printable}; margin: 0 auto; padding: 3mm 0; font-family: "Courier New", Courier, monospace; font-size: ${font}; line-height: 1.3; color: #000; }
h1 { font-size: 1.3em; text-align: center; margin: 0 0 2mm; word-wrap: break-word; }
.c { text-align: center; }
hr { border: 0; border-top: 1px dashed #000; margin: 2mm 0; }
table { width: 100%; border-collapse: collapse; }
td { vertical-align: top; padding: 0.3mm 0; }
td.l { white-space: nowrap; padding-right: 2mm; }
td.v { text-align: right; overflow-wrap: anywhere; }
.amount { font-size: 1.4em; font-weight: bold; text-align: center; margin: 2mm 0; }
</style>
</head>
<body>
<h1>${e(r.shop.name)}</h1>
<div class="c">Payment receipt</div>
<hr>
<div class="amount">${e(formatMoney(amountMinor, r.currency))}</div>
<table>
${row('Paid with', PROVIDER_NAMES[r.provider] ?? r.provider)}
${row('Confirmation', r.confirmation ?? '-')}
${r.phone ? row('Phone', r.phone) : ''}
${row('Order', r.orderId)}
${row('Date', `${r.paidAtNairobi} EAT`)}
</table>
<hr>
<div class="c">Payment ${e(r.paymentId)}</div>
<div class="c">Thank you</div>
</body>
</html>
`;
}
