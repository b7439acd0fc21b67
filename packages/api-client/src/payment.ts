import type { components } from './schema';

/** A payment as every payment route answers it (amounts in major units, as the API's JSON has them). */
export type Payment = components['schemas']['PaymentResponseDto'];
export type PaymentStatus = Payment['status'];

/** Statuses after which a payment no longer changes on its own. */
export const FINAL_PAYMENT_STATUSES: readonly PaymentStatus[] = ['completed', 'failed', 'cancelled', 'expired'];

export function isFinalPaymentStatus(status: string): boolean {
  return (FINAL_PAYMENT_STATUSES as readonly string[]).includes(status);
}
