/** Random identifiers. */
import { randomInt, randomUUID } from 'node:crypto';

export const DIGITS = '0123456789';
export const UPPER = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ';
export const LOWER = 'abcdefghijklmnopqrstuvwxyz';
export const HEX = '0123456789abcdef';

export function randomFrom(alphabet: string, length: number): string {
  let out = '';
  for (let i = 0; i < length; i += 1) out += alphabet.charAt(randomInt(alphabet.length));
  return out;
}

export function uuid(): string {
  return randomUUID();
}

export function randomIntBetween(min: number, max: number): number {
  return randomInt(min, max);
}
