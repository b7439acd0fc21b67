import { ValidationFailedError } from '../../../common/errors';
import { DarajaService } from './daraja.service';
import type { DarajaAccount, ParsedStkCallback, StkOutcome, StkPushResult, StkQueryResult } from './daraja.types';
import type {
  InitiateRequest,
  InitiateResult,
  Notification,
  NotificationInput,
  NotificationReport,
  PaymentProvider,
  ProviderCapabilities,
  RefundResult,
  StatusResult,
} from '../payment-provider';

/** Daraja always answers an accepted push with all of these. */
export interface MpesaInitiateResult extends InitiateResult {
  /** CheckoutRequestID */
  providerRef: string;
  /** MerchantRequestID */
  providerRequestId: string;
  /** ResponseCode, ResponseDescription, CustomerMessage */
  providerCode: string;
  description: string;
  customerMessage: string;
  raw: StkPushResult;
}

/** An STK query answer: not final yet (pending: the customer has not answered; not_found), or final with its outcome. */
export interface MpesaStatusResult extends StatusResult {
  status: 'pending' | 'not_found' | StkOutcome;
  /** CheckoutRequestID (a final answer's own; else the one asked about) */
  providerRef: string;
  /** ResultCode / ResultDesc of a final answer; Daraja's errorCode / errorMessage of the others */
  providerCode: string;
  description: string;
  raw: StkQueryResult;
}

/** An STK callback: always carries its outcome. */
export interface MpesaNotification extends Notification {
  /** CheckoutRequestID, MerchantRequestID */
  providerRef: string;
  providerRequestId: string;
  report: NotificationReport;
  raw: ParsedStkCallback;
}

/**
 * M-Pesa Express (STK push) behind the provider contract. DarajaService does the protocol work
 * (OAuth, Nairobi timestamp + password, envelopes) and already throws the contract's
 * ProviderError('mpesa', ...), whose `outcome` says whether Safaricom could have acted; this
 * adapter maps its answers to the contract's provider-neutral fields, so PaymentsService never
 * reads Daraja's own types.
 * Not a hosted checkout: initiate() prompts the phone and returns the CheckoutRequestID as
 * providerRef.
 */
export class MpesaProvider implements PaymentProvider {
  readonly name = 'mpesa' as const;
  readonly capabilities: ProviderCapabilities = {
    currencies: ['KES'],
    fractionalAmounts: false,
    refunds: 'none',
    notification: 'callback',
    hostedCheckout: false,
  };

  constructor(private readonly daraja: DarajaService) {}

  /**
   * Sends the prompt (never retried here: an unknown outcome is the caller's to record).
   * `reference` is the AccountReference the customer sees; `customer.phoneNumber` is required.
   */
  async initiate(req: InitiateRequest & { account?: DarajaAccount }): Promise<MpesaInitiateResult> {
    if (req.currency !== 'KES') throw new ValidationFailedError('M-Pesa takes KES only', { field: 'currency' });
    if (req.amountMinor <= 0n || req.amountMinor % 100n !== 0n)
      throw new ValidationFailedError('M-Pesa takes whole shillings only', { field: 'amount' });
    const phoneNumber = this.daraja.formatPhoneNumber(req.customer.phoneNumber);
    const res = await this.daraja.initiateStkPush(
      {
        phoneNumber,
        amount: Number(req.amountMinor / 100n),
        accountReference: req.reference,
        transactionDesc: req.description,
        callbackUrl: req.notificationUrl ?? this.daraja.callbackUrlFor(req.paymentId),
      },
      req.account,
    );
    return {
      providerRef: res.checkoutRequestId,
      providerRequestId: res.merchantRequestId,
      providerCode: res.responseCode,
      description: res.responseDescription,
      customerMessage: res.customerMessage,
      raw: res,
    };
  }

  /** STK query by CheckoutRequestID (`providerRef`); the answer carries no amount (the id is ours). */
  async fetchStatus(
    q: { reference: string; providerRef?: string },
    account?: DarajaAccount,
  ): Promise<MpesaStatusResult> {
    if (!q.providerRef)
      throw new ValidationFailedError('An M-Pesa status query needs the CheckoutRequestID', { field: 'providerRef' });
    const providerRef = q.providerRef;
    const r = await this.daraja.queryStkStatus(providerRef, account);
    if (r.kind === 'pending')
      return { status: 'pending', providerRef, providerCode: r.errorCode, description: r.errorMessage, raw: r };
    if (r.kind === 'not_found')
      return { status: 'not_found', providerRef, providerCode: r.errorCode, description: r.errorMessage, raw: r };
    return {
      status: r.outcome,
      providerRef: r.checkoutRequestId,
      providerRequestId: r.merchantRequestId,
      providerCode: r.resultCode,
      description: r.resultDesc,
      raw: r,
    };
  }

  /**
   * An STK callback: Daraja signs nothing, so `verified` means the per-payment capability token in
   * the URL (params.paymentId + params.token) is valid. Throws CallbackShapeError on a body that is
   * not an STK callback.
   */
  parseNotification(input: NotificationInput): MpesaNotification {
    const v = this.daraja.validateCallback({
      paymentId: input.params?.paymentId,
      token: input.params?.token,
      body: input.body,
    });
    const cb = v.callback;
    const report: NotificationReport = { status: cb.outcome, providerCode: cb.resultCode, description: cb.resultDesc };
    if (cb.metadata)
      report.paid = {
        amountMinor: wholeShillingsToMinor(cb.metadata.amount),
        receipt: cb.metadata.mpesaReceiptNumber,
        transactionDate: cb.metadata.transactionDate,
      };
    return {
      verified: v.verified,
      providerRef: cb.checkoutRequestId,
      providerRequestId: cb.merchantRequestId,
      eventType: 'stk_callback',
      report,
      raw: cb,
    };
  }

  /** Reversals go through Daraja's Transaction Reversal API (B2C/initiator credentials), not built yet. */
  async refund(): Promise<RefundResult> {
    return {
      status: 'not_supported',
      message: 'M-Pesa refunds need the Transaction Reversal API, which is not set up',
      raw: null,
    };
  }
}

/** M-Pesa amounts are whole shillings; anything else cannot match a payment. */
function wholeShillingsToMinor(amount: number | undefined): bigint | undefined {
  return amount !== undefined && Number.isSafeInteger(amount) ? BigInt(amount) * 100n : undefined;
}
