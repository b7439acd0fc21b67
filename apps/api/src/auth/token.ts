import { sign } from 'jsonwebtoken';
import type { AuthUser } from './auth.types';

/** Lifetime of a minted token unless asked otherwise: one shift (the dev banner's token, `pnpm run token`). */
export const DEFAULT_TOKEN_LIFETIME_SECONDS = 12 * 3600;

/**
 * The longest lifetime of a token (default of JWT_MAX_LIFETIME_SECONDS): a day. A cashier's token
 * lives on a shared till; the API keeps no revocation list, so expiry is the only way a leaked or
 * forgotten token stops working. A day covers the longest shift with margin; a POS that stays
 * signed in longer gets a fresh token from the sign-in service.
 */
export const MAX_TOKEN_LIFETIME_SECONDS = 24 * 3600;

/**
 * Mints an HS256 token with the claims the API expects (always with `exp`, at most
 * `maxLifetimeSeconds` ahead). Used by the dev banner, the token command and tests.
 */
export function mintToken(
  secret: string,
  user: AuthUser,
  options: { expiresInSeconds?: number; maxLifetimeSeconds?: number } = {},
): string {
  const lifetime = options.expiresInSeconds ?? DEFAULT_TOKEN_LIFETIME_SECONDS;
  const max = options.maxLifetimeSeconds ?? MAX_TOKEN_LIFETIME_SECONDS;
  if (!Number.isInteger(lifetime) || lifetime <= 0 || lifetime > max) {
    throw new RangeError(
      `A token's lifetime must be a whole number of seconds from 1 to at most ${max} (got ${lifetime})`,
    );
  }
  return sign({ shopId: user.shopId, role: user.role }, secret, {
    algorithm: 'HS256',
    subject: user.sub,
    expiresIn: lifetime,
  });
}
