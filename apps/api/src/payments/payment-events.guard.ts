import { ExecutionContext, Injectable, UnauthorizedException } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { Request } from 'express';
import { JwtAuthGuard } from '../auth/jwt-auth.guard';
import { AppError } from '../common/errors';
import { PaymentEventsService } from './payment-events.service';

/**
 * The live status streams take the Bearer token like every route, or (EventSource cannot send
 * headers) `?ticket=` from POST /payments/events/ticket. With an Authorization header the ticket
 * is not looked at. A ticket for one payment opens only that payment's stream.
 */
@Injectable()
export class EventStreamAuthGuard extends JwtAuthGuard {
  constructor(
    reflector: Reflector,
    private readonly events: PaymentEventsService,
  ) {
    super(reflector);
  }

  override async canActivate(context: ExecutionContext): Promise<boolean> {
    const req = context.switchToHttp().getRequest<Request & { user?: unknown }>();
    const ticket = req.query?.ticket;
    if (req.headers.authorization !== undefined || ticket === undefined) return super.canActivate(context);
    if (typeof ticket !== 'string')
      throw new UnauthorizedException({ code: 'UNAUTHORIZED', message: 'ticket must be given once' });
    const check = this.events.checkTicket(ticket);
    if (!check.ok)
      throw new UnauthorizedException(
        check.reason === 'expired'
          ? {
              code: 'TOKEN_EXPIRED',
              message: 'This stream ticket has expired: ask POST /payments/events/ticket for a new one',
            }
          : { code: 'UNAUTHORIZED', message: 'Invalid stream ticket' },
      );
    const { user, paymentId } = check.claims;
    if (user.role === 'operator')
      throw new AppError('FORBIDDEN', 'A platform operator token cannot be used for shop operations', 403);
    const streamFor = typeof req.params?.id === 'string' ? req.params.id.toLowerCase() : null;
    if (paymentId !== null && paymentId.toLowerCase() !== streamFor)
      throw new AppError(
        'FORBIDDEN',
        "This ticket opens one payment's stream only: ask for a ticket for this stream",
        403,
      );
    req.user = user;
    return true;
  }
}
