import { parseArgs } from 'node:util';
import { ROLES, Role } from '../auth/auth.types';
import { mintToken } from '../auth/token';
import { ConfigValidationError, loadConfig, loadDotEnv } from '../config/app-config';

/**
 * Mints a JWT from the configured secret (JWT_SECRET, or the dev secret `pnpm dev` uses).
 *   pnpm run token --shop shop-1 --role cashier [--sub alice] [--expires 3600]
 * --expires defaults to 12 h and may be at most JWT_MAX_LIFETIME_SECONDS (default 24 h).
 */
function main(): void {
  const { values } = parseArgs({
    // tolerate a stray "--" separator (npm-style invocations)
    args: process.argv.slice(2).filter((a) => a !== '--'),
    options: {
      shop: { type: 'string', default: 'shop-1' },
      role: { type: 'string', default: 'cashier' },
      sub: { type: 'string' },
      expires: { type: 'string', default: '43200' },
    },
  });
  const role = values.role as Role;
  if (!(ROLES as readonly string[]).includes(role)) {
    process.stderr.write(`--role must be one of ${ROLES.join(', ')}\n`);
    process.exit(2);
  }
  const expires = Number(values.expires);
  if (!Number.isInteger(expires) || expires <= 0) {
    process.stderr.write('--expires must be a positive number of seconds\n');
    process.exit(2);
  }
  try {
    loadDotEnv();
    const config = loadConfig(process.env, { persistDevSecrets: true });
    if (expires > config.jwt.maxLifetimeSeconds) {
      process.stderr.write(
        `--expires must be at most ${config.jwt.maxLifetimeSeconds} seconds (JWT_MAX_LIFETIME_SECONDS): the API refuses tokens that live longer\n`,
      );
      process.exit(2);
    }
    process.stdout.write(
      mintToken(
        config.jwt.secret,
        { sub: values.sub ?? `${role}-1`, shopId: values.shop!, role },
        { expiresInSeconds: expires, maxLifetimeSeconds: config.jwt.maxLifetimeSeconds },
      ) + '\n',
    );
  } catch (err) {
    if (err instanceof ConfigValidationError) {
      process.stderr.write(err.message + '\n');
      process.exit(1);
    }
    throw err;
  }
}

main();
