/**
 * The M-Pesa QR of an order (GET /orders/:id/mpesa-qr) for the cashier: what to tell the customer,
 * and what a failure means. A QR moves no money, so no failure of it can have charged anyone.
 */
import { describeFailure, money, type ApiFailure, type Problem } from './describe';

export interface MpesaQrLike {
  type: 'till' | 'paybill';
  businessNumber: string;
  accountNumber: string | null;
  amount: number;
  merchantName: string;
}

/** One line for under the QR: where the money goes, so the cashier can check the customer's screen. */
export function describeMpesaQr(q: MpesaQrLike): string {
  const to =
    q.type === 'paybill'
      ? `paybill ${q.businessNumber}, account ${q.accountNumber ?? ''}`
      : `till ${q.businessNumber} (Buy Goods)`;
  return `Ask the customer to scan this with the M-PESA app (not the camera) and enter their PIN: ${money(q.amount)} to ${q.merchantName}, ${to}.`;
}

/** A QR that could not be made. Never "the customer may have a prompt": nothing was sent to their phone. */
export function describeQrFailure(f: ApiFailure): Problem {
  const p = describeFailure(f);
  if (f.status !== undefined && f.status >= 500) {
    return {
      ...p,
      message:
        'M-Pesa did not make the QR code just now. Nothing was charged: press Check again to ask for it again, or send an M-Pesa prompt instead.',
      problems: [],
      action: 'retry-same',
      paymentId: undefined,
    };
  }
  return p;
}
