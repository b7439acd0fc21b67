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

/** An account's environment: sandbox or production, and simulator only when this deployment runs the provider's simulator. */
export function accountEnvironment(v: unknown, deploymentEnv: string): string {
  const allowed = deploymentEnv === 'simulator' ? ['simulator', 'sandbox', 'production'] : ['sandbox', 'production'];
  if (typeof v !== 'string' || !allowed.includes(v))
    throw new ValidationFailedError(`environment must be one of ${allowed.join(', ')}`, { field: 'environment' });
  return v;
}
