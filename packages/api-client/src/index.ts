import type { components, operations, paths } from './schema';

export type { components, operations, paths };
export { FINAL_PAYMENT_STATUSES, isFinalPaymentStatus, type Payment, type PaymentStatus } from './payment';
export { compareEventIds, SseParser, type SseEvent } from './sse';
export {
  watchPayment,
  type PaymentWatch,
  type WatchError,
  type WatchMode,
  type WatchPaymentOptions,
  type WatchPaymentTarget,
  type WatchResult,
} from './watch';

export { createSmartDukaClient, type SmartDukaClient, type SmartDukaClientOptions } from './client';
