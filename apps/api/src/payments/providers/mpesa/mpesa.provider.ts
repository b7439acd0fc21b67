import { ValidationFailedError } from '../../../common/errors';
import { DarajaService } from './daraja.service';
import type { ParsedStkCallback, StkPushResult, StkQueryResult } from './daraja.types';
import type { InitiateRequest, InitiateResult, Notification, NotificationInput, PaymentProvider, ProviderCapabilities, RefundResult, StatusResult } from '../payment-provider';

export interface MpesaInitiateResult extends InitiateResult {
  providerRef: string;
  raw: StkPushResult;
}

export interface MpesaStatusResult extends StatusResult {
  raw: StkQueryResult;
}

export interface MpesaNotification extends Notification {
  raw: ParsedStkCallback;
}

/**
 * M-Pesa Express (STK push) behind the provider contract. DarajaService does the protocol work
 * (OAuth, Nairobi timestamp + password, envelopes) and already throws the contract's
 * ProviderError('mpesa', ...), whose `outcome` says whether Safaricom could have acted; this
 * adapter maps its answers to the contract's shapes. Not a hosted checkout: initiate() prompts the phone and returns the
 * CheckoutRequestID as providerRef.
 */
export class MpesaProvider implements PaymentProvider {
  readonly name = 'mpesa' as const;
  readonly capabilities: ProviderCapabilities = { currencies: ['KES'], fractionalAmounts: false, refunds: 'none', notification: 'callback', hostedCheckout: false };

  constructor(private readonly daraja: DarajaService) {}

  /**
   * Sends the prompt (never retried here: an unknown outcome is the caller's to record).
   * `reference` is the AccountReference the customer sees; `customer.phoneNumber` is required.
   */
  async initiate(req: InitiateRequest): Promise<MpesaInitiateResult> {
    if (req.currency !== 'KES') throw new ValidationFailedError('M-Pesa takes KES only', { field: 'currency' });
    if (req.amountMinor <= 0n || req.amountMinor % 100n !== 0n) throw new ValidationFailedError('M-Pesa takes whole shillings only', { field: 'amount' });
    const phoneNumber = this.daraja.formatPhoneNumber(req.customer.phoneNumber);
    const res = await this.daraja.initiateStkPush({
      phoneNumber,
      amount: Number(req.amountMinor / 100n),
      accountReference: req.reference,
      transactionDesc: req.description,
      callbackUrl: req.notificationUrl ?? this.daraja.callbackUrlFor(req.paymentId),
    });
    return { providerRef: res.checkoutRequestId, raw: res };
  }

  /** STK query by CheckoutRequestID (`providerRef`); the answer carries no amount (the id is ours). */
  async fetchStatus(q: { reference: string; providerRef?: string }): Promise<MpesaStatusResult> {
    if (!q.providerRef) throw new ValidationFailedError('An M-Pesa status query needs the CheckoutRequestID', { field: 'providerRef' });
    const r = await this.daraja.queryStkStatus(q.providerRef);
    if (r.kind === 'pending') return { status: 'pending', providerRef: q.providerRef, providerCode: r.errorCode, description: r.errorMessage, raw: r };
    if (r.kind === 'not_found') return { status: 'not_found', providerRef: q.providerRef, providerCode: r.errorCode, description: r.errorMessage, raw: r };
    return { status: r.outcome, providerRef: r.checkoutRequestId, providerCode: r.resultCode, description: r.resultDesc, raw: r };
  }

  /**
   * An STK callback: Daraja signs nothing, so `verified` means the per-payment capability token in
   * the URL (params.paymentId + params.token) is valid. Throws CallbackShapeError on a body that is
   * not an STK callback.
   */
  parseNotification(input: NotificationInput): MpesaNotification {
    const v = this.daraja.validateCallback({ paymentId: input.params?.paymentId, token: input.params?.token, body: input.body });
    return { verified: v.verified, providerRef: v.callback.checkoutRequestId, eventType: 'stk_callback', raw: v.callback };
  }

  /** Reversals go through Daraja's Transaction Reversal API (B2C/initiator credentials), not built yet. */
  async refund(): Promise<RefundResult> {
    return { status: 'not_supported', message: 'M-Pesa refunds need the Transaction Reversal API, which is not set up', raw: null };
  }
}
