import { Inject, Injectable, UnauthorizedException } from '@nestjs/common';
import { PassportStrategy } from '@nestjs/passport';
import { ExtractJwt, Strategy } from 'passport-jwt';
import type { AppConfig } from '../config/app-config';
import { APP_CONFIG } from '../config/config.module';
import { AuthUser, ROLES, Role } from './auth.types';

const ID_RE = /^[A-Za-z0-9._:@-]{1,64}$/;

@Injectable()
export class JwtStrategy extends PassportStrategy(Strategy, 'jwt') {
  constructor(@Inject(APP_CONFIG) config: AppConfig) {
    super({
      jwtFromRequest: ExtractJwt.fromAuthHeaderAsBearerToken(),
      secretOrKey: config.jwt.secret,
      algorithms: ['HS256'],
      ignoreExpiration: false,
      jsonWebTokenOptions: { clockTolerance: config.jwt.clockToleranceSeconds },
    });
  }

  validate(payload: Record<string, unknown>): AuthUser {
    const { sub, shopId, role } = payload;
    if (typeof sub !== 'string' || !ID_RE.test(sub)) throw new UnauthorizedException('Token has no valid "sub" claim');
    if (typeof shopId !== 'string' || !ID_RE.test(shopId)) throw new UnauthorizedException('Token has no valid "shopId" claim');
    if (typeof role !== 'string' || !(ROLES as readonly string[]).includes(role)) throw new UnauthorizedException(`Token "role" must be one of ${ROLES.join(', ')}`);
    return { sub, shopId, role: role as Role };
  }
}
