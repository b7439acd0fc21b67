import { Global, Module } from '@nestjs/common';
import { RateLimitService } from './rate-limit.service';

/**
 * The per-shop / per-phone STK push limits. Global so the interceptor, which Nest builds in the
 * payments module (@StkPushRateLimits() on the route), can inject the service.
 */
@Global()
@Module({
  providers: [RateLimitService],
  exports: [RateLimitService],
})
export class RateLimitModule {}
