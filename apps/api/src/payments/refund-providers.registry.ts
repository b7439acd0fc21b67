import { Injectable } from '@nestjs/common';
import type { RefundProviderService } from './refunds.types';

/** Each provider's refund service joins at module init; a provider switched off on this instance does not. */
@Injectable()
export class RefundProvidersRegistry {
  private readonly services = new Map<string, RefundProviderService>();

  register(service: RefundProviderService): void {
    if (this.services.has(service.provider)) throw new Error(`refund service for ${service.provider} registered twice`);
    this.services.set(service.provider, service);
  }

  get(provider: string): RefundProviderService | undefined {
    return this.services.get(provider);
  }
}
