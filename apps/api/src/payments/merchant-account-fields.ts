import { ValidationFailedError } from '../common/errors';

/**
 * Field checks every provider's kind of account shares (providers/<name>/<name>.account.ts).
 * A chain branch (linked) brings only the fields in `linked`; the others come from the shop
 * whose credentials it uses.
 */
export function refuseUnknownFields(
  body: Record<string, unknown>,
  fields: { own: readonly string[]; linked: readonly string[] },
  linked: boolean,
  label: string,
): void {
  const allowed = linked ? fields.linked : fields.own;
  for (const k of Object.keys(body))
    if (!allowed.includes(k))
      throw new ValidationFailedError(
        linked && fields.own.includes(k)
          ? `${k} comes from the shop whose credentials this account uses: leave it out`
          : `Unknown field "${k}" for a shop's ${label} account`,
        { field: k },
      );
}

/**
 * An account's environment must be the deployment's: a production deployment takes production
 * accounts only (a sandbox account's "successful" payments would mark real orders paid with no
 * money moved), a sandbox deployment sandbox ones; a simulator deployment (development) takes
 * simulator and sandbox accounts.
 */
export function accountEnvironment(v: unknown, deploymentEnv: string): string {
  const allowed = deploymentEnv === 'simulator' ? ['simulator', 'sandbox'] : [deploymentEnv];
  if (typeof v !== 'string' || !allowed.includes(v))
    throw new ValidationFailedError(
      allowed.length === 1
        ? `environment must be ${allowed[0]}: this deployment takes ${allowed[0]} accounts only`
        : `environment must be one of ${allowed.join(', ')}`,
      { field: 'environment' },
    );
  return v;
}
