/** Node network error codes where the request provably never reached the remote side: safe to call "not processed". */
export const UNREACHABLE_NET_CODES: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'EAI_FAIL',
  'EAI_NONAME',
  // TLS handshake failures: no request bytes were sent.
  'CERT_HAS_EXPIRED',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/** Timeouts: the request may have been acted on (outcome unknown). */
export const TIMEOUT_NET_CODES: ReadonlySet<string> = new Set(['ETIMEDOUT', 'ECONNABORTED', 'ESOCKETTIMEDOUT']);

/**
 * The network error code of a failed request: the error's own `code`, else its cause's (fetch/undici
 * put it there), else the first of the cause's `errors` (an AggregateError from trying several
 * addresses). Undefined when there is none.
 */
export function networkErrorCode(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const e = err as { code?: unknown; cause?: { code?: unknown; errors?: Array<{ code?: unknown }> } };
  for (const c of [e.code, e.cause?.code, e.cause?.errors?.[0]?.code])
    if (typeof c === 'string' && c.length > 0) return c;
  return undefined;
}

/**
 * What a failed HTTP exchange says about the request:
 * - 'unreachable': it never reached the remote side (refused, DNS, TLS handshake): not acted upon;
 * - 'timeout': no answer in time: it may have been acted upon;
 * - 'broken': the connection failed after it was made (reset after the request was written, socket
 *   hang up, anything unrecognised): it may have been acted upon.
 * A refusal only happens on a new connection, so 'unreachable' stays provable with keep-alive; a
 * kept socket the server closed while idle fails as 'broken' (ECONNRESET after the request was
 * written), the safe side (ProviderHttp asks read-only calls again on a fresh connection).
 */
export function classifyNetworkError(err: unknown): { failure: 'unreachable' | 'timeout' | 'broken'; code?: string } {
  const code = networkErrorCode(err);
  if (code && UNREACHABLE_NET_CODES.has(code)) return { failure: 'unreachable', code };
  const message = err instanceof Error ? err.message : '';
  if ((code && TIMEOUT_NET_CODES.has(code)) || /timeout/i.test(message)) return { failure: 'timeout', code };
  return { failure: 'broken', code };
}
