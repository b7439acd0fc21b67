/** DI tokens of the Pesapal module (values are null when Pesapal is switched off). */
export const PESAPAL_PROVIDER = Symbol('PESAPAL_PROVIDER');
export const PESAPAL_IPN = Symbol('PESAPAL_IPN');

/** statusReason of an expired Pesapal payment: unpaid when its checkout window ended; the order was cancelled at Pesapal. */
export const CHECKOUT_EXPIRED = 'CHECKOUT_EXPIRED';
/** statusReason of a completed payment Pesapal later reported REVERSED (refund approved, chargeback). Status stays completed. */
export const REVERSED_AT_PROVIDER = 'REVERSED_AT_PROVIDER';

/** Minimum seconds between two GetTransactionStatus calls for one payment from status reads / the reconciler (all instances). */
export const STATUS_MIN_INTERVAL_SECONDS = 2;

/**
 * A closed Pesapal payment a notification may still concern (completed: a reversal; failed: money
 * after all, PAID_AFTER_CLOSE) is looked up once after it last changed, then at most once per this
 * many seconds; notifications in between are acknowledged and left to the reconciler until then.
 */
export const CLOSED_RECHECK_INTERVAL_SECONDS = 60;
