import { ExecutionContext, Injectable, UnauthorizedException } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { AuthGuard } from '@nestjs/passport';
import { ROLES_KEY } from './roles.decorator';
import type { AuthUser, Role } from './auth.types';
import { AppError } from '../common/errors';

/** Requires a valid Bearer JWT; with @Roles(...) also requires one of those roles. */
@Injectable()
export class JwtAuthGuard extends AuthGuard('jwt') {
  constructor(private readonly reflector: Reflector) {
    super();
  }

  override async canActivate(context: ExecutionContext): Promise<boolean> {
    await (super.canActivate(context) as Promise<boolean>);
    const roles = this.reflector.getAllAndOverride<Role[] | undefined>(ROLES_KEY, [
      context.getHandler(),
      context.getClass(),
    ]);
    const user = context.switchToHttp().getRequest<{ user?: AuthUser }>().user;
    if (roles?.length) {
      if (!user || !roles.includes(user.role))
        throw new AppError('FORBIDDEN', `This action needs one of the roles: ${roles.join(', ')}`, 403);
    } else if (user?.role === 'operator') {
      // Platform staff onboard shops; they do not take or move a shop's money.
      throw new AppError('FORBIDDEN', 'A platform operator token cannot be used for shop operations', 403);
    }
    return true;
  }

  override handleRequest<T>(err: unknown, user: T, info: unknown): T {
    if (err) throw err;
    if (!user) {
      const name = (info as { name?: string; message?: string } | undefined)?.name;
      const msg = (info as { message?: string } | undefined)?.message;
      const message =
        name === 'TokenExpiredError'
          ? 'Your session has expired: sign in again'
          : msg === 'No auth token'
            ? 'Missing Authorization: Bearer <token> header'
            : 'Invalid token';
      throw new UnauthorizedException({
        code: name === 'TokenExpiredError' ? 'TOKEN_EXPIRED' : 'UNAUTHORIZED',
        message,
      });
    }
    return user;
  }
}
