/**
 * cashier, manager and admin act on their own shop (the token's shopId). operator is SmartDuka's
 * platform staff: onboards shops (any shop's merchant accounts, chain links), takes no payments.
 */
export const ROLES = ['cashier', 'manager', 'admin', 'operator'] as const;
export type Role = (typeof ROLES)[number];

/** The authenticated caller, from a verified JWT. Every read and write is scoped to shopId. */
export interface AuthUser {
  sub: string;
  shopId: string;
  role: Role;
}
