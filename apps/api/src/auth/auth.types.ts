export const ROLES = ['cashier', 'manager', 'admin'] as const;
export type Role = (typeof ROLES)[number];

/** The authenticated caller, from a verified JWT. Every read and write is scoped to shopId. */
export interface AuthUser {
  sub: string;
  shopId: string;
  role: Role;
}
