import { Injectable } from '@nestjs/common';
import type { Payment } from '../database/schema';
import type { ReconcileResult } from './reconcile';

/**
 * What the provider-independent parts (the reconciler, GET /payments/:id, the operator
 * endpoints: PaymentOperationsService) need from a provider's service. Every provider service
 * (M-Pesa's PaymentsService, FlutterwaveService, PesapalService) registers itself at module init;
 * one that is switched off on this instance does not.
 */
export interface ProviderPaymentService {
  readonly provider: string;
  /** One reconciler look at an open payment (claimed by the caller): ask the provider, apply what it says, or reschedule / park it. */
  reconcile(p: Payment): Promise<ReconcileResult>;
  /**
   * An operator asks to reconcile this payment now (any status; not claimed, the schedule is
   * ignored). Never starts a new payment at the provider; a payment it cannot settle any more is
   * reported as 'already_final'.
   */
  reconcileNow(p: Payment): Promise<ReconcileResult>;
  /**
   * Finish processing a stored notification (callback_inbox row with this provider) whose first
   * processing never completed (crash, database error). Must be idempotent. Returns the outcome
   * it recorded with markCallbackProcessed.
   */
  replayStoredNotification(row: StoredNotification): Promise<string>;
  /** Refresh an open payment for a status read, when due; provider trouble never fails the read. Returns the fresh row. */
  refreshIfDue(p: Payment): Promise<Payment>;
}

export interface StoredNotification {
  id: bigint;
  provider: string;
  verified: boolean;
  urlPaymentId: string | null;
  /** What the body answers (callback_inbox.kind): null = a payment notification; e.g. M-Pesa 'reversal_result'. */
  kind?: string | null;
  rawBody: string;
  attempts: number;
}

@Injectable()
export class ProviderServicesRegistry {
  private readonly services = new Map<string, ProviderPaymentService>();

  register(service: ProviderPaymentService): void {
    if (this.services.has(service.provider))
      throw new Error(`payment service for ${service.provider} registered twice`);
    this.services.set(service.provider, service);
  }

  get(provider: string): ProviderPaymentService | undefined {
    return this.services.get(provider);
  }
}
