import { sign } from 'jsonwebtoken';
import type { AuthUser } from './auth.types';

/** Mints an HS256 token with the claims the API expects. Used by the dev banner, the token command and tests. */
export function mintToken(secret: string, user: AuthUser, options: { expiresInSeconds?: number } = {}): string {
  return sign({ shopId: user.shopId, role: user.role }, secret, {
    algorithm: 'HS256',
    subject: user.sub,
    expiresIn: options.expiresInSeconds ?? 12 * 3600,
  });
}
