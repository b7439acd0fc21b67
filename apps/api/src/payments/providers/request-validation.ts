/**
 * Input checks shared by the adapters: bad input is refused with a readable 400 before anything
 * is sent to a provider. Phone numbers are masked in error details.
 */
import { ValidationFailedError } from '../../common/errors';
import { maskPhone } from '../../common/mask';
import type { InitiateCustomer } from './payment-provider';
import { isHttpUrl, isPlainObject } from './provider-http';

const EMAIL_RE = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
const PHONE_RE = /^\+?\d{9,15}$/;

export function requireText(value: unknown, field: string, max: number, label = field): string {
  if (typeof value !== 'string' || value.trim().length === 0)
    throw new ValidationFailedError(`${label} is required`, { field });
  if (value.length > max) throw new ValidationFailedError(`${label} must be at most ${max} characters`, { field });
  return value;
}

/** Our references travel in URLs and provider dashboards: printable ASCII without spaces. */
export function requireReference(
  value: unknown,
  max: number,
  pattern = /^[\x21-\x7e]+$/,
  patternHint = 'letters, digits and punctuation without spaces',
): string {
  const ref = requireText(value, 'reference', max);
  if (!pattern.test(ref))
    throw new ValidationFailedError(`reference may only contain ${patternHint}`, { field: 'reference' });
  return ref;
}

export function requireUrl(value: unknown, field: string): string {
  if (!isHttpUrl(value)) throw new ValidationFailedError(`${field} must be an http(s) URL without spaces`, { field });
  return value;
}

export interface CleanCustomer {
  email?: string;
  phoneNumber?: string;
  firstName?: string;
  lastName?: string;
  /** name, or "first last". */
  fullName?: string;
}

export function cleanCustomer(customer: InitiateCustomer | undefined): CleanCustomer {
  if (customer !== undefined && !isPlainObject(customer))
    throw new ValidationFailedError('customer must be an object', { field: 'customer' });
  const c = (customer ?? {}) as InitiateCustomer;
  const out: CleanCustomer = {};
  if (c.email !== undefined && c.email !== '') {
    if (typeof c.email !== 'string' || c.email.length > 254 || !EMAIL_RE.test(c.email)) {
      throw new ValidationFailedError('customer email is not a valid email address', { field: 'customer.email' });
    }
    out.email = c.email;
  }
  if (c.phoneNumber !== undefined && c.phoneNumber !== '') {
    if (typeof c.phoneNumber !== 'string' || !PHONE_RE.test(c.phoneNumber)) {
      throw new ValidationFailedError('customer phone number must be 9-15 digits, optionally starting with +', {
        field: 'customer.phoneNumber',
        received: maskPhone(c.phoneNumber),
      });
    }
    out.phoneNumber = c.phoneNumber;
  }
  for (const key of ['name', 'firstName', 'lastName'] as const) {
    const v = c[key];
    if (v === undefined || v === '') continue;
    if (typeof v !== 'string' || v.length > 100)
      throw new ValidationFailedError(`customer ${key} must be text of at most 100 characters`, {
        field: `customer.${key}`,
      });
  }
  if (c.firstName) out.firstName = c.firstName.trim();
  if (c.lastName) out.lastName = c.lastName.trim();
  const joined = [out.firstName, out.lastName].filter(Boolean).join(' ');
  const full = (c.name ?? '').trim() || joined;
  if (full) out.fullName = full;
  return out;
}
