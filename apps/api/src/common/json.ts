/** Guards for values that came from JSON (a request body, a provider's answer, a fault spec). */

/** An object that is not null and not an array: a JSON object, whose fields may be read. */
export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
