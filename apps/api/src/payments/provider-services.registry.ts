import { Injectable } from '@nestjs/common';
import type { Payment } from '../database/schema';
import type { ReconcileResult } from './reconcile';

/**
 * What the provider-independent parts (the reconciler, GET /payments/:id, the operator
 * endpoints) need from a card/wallet provider's service. Each provider service registers itself
 * at module init; M-Pesa is handled by PaymentsService directly.
 */
export interface HostedPaymentService {
  readonly provider: string;
  /** One reconciler look at an open payment (claimed by the caller): ask the provider, apply what it says, or reschedule / park it. */
  reconcile(p: Payment): Promise<ReconcileResult>;
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
  rawBody: string;
  attempts: number;
}

@Injectable()
export class ProviderServicesRegistry {
  private readonly services = new Map<string, HostedPaymentService>();

  register(service: HostedPaymentService): void {
    if (this.services.has(service.provider)) throw new Error(`payment service for ${service.provider} registered twice`);
    this.services.set(service.provider, service);
  }

  get(provider: string): HostedPaymentService | undefined {
    return this.services.get(provider);
  }
}
