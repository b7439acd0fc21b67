/** Daraja error envelopes ({requestId, errorCode, errorMessage}) used by the simulator. */

export interface DarajaError {
  status: number;
  errorCode: string;
  errorMessage: string;
  /** Overrides the random requestId (the "being processed" query answer echoes the CheckoutRequestID). */
  requestId?: string;
}

export function badRequest(field: string): DarajaError {
  return { status: 400, errorCode: '400.002.02', errorMessage: `Bad Request - Invalid ${field}` };
}

export const ERRORS = Object.freeze({
  invalidGrantType: { status: 400, errorCode: '400.008.02', errorMessage: 'Invalid grant type passed' },
  invalidAuthType: { status: 400, errorCode: '400.008.01', errorMessage: 'Invalid authentication type passed' },
  invalidAccessToken: { status: 404, errorCode: '404.001.03', errorMessage: 'Invalid Access Token' },
  resourceNotFound: { status: 404, errorCode: '404.001.01', errorMessage: 'Resource not found' },
  methodNotAllowed: { status: 405, errorCode: '405.001', errorMessage: 'Method Not Allowed' },
  /** What Daraja answers when Content-Type: application/json is missing (M-Pesa Express FAQ item 9). */
  missingJsonContentType: badRequest('BusinessShortCode'),
  invalidPayload: { status: 400, errorCode: '400.002.05', errorMessage: 'Invalid Request Payload' },
  payloadTooLarge: { status: 413, errorCode: '413.001.01', errorMessage: 'Request Entity Too Large' },
  merchantDoesNotExist: { status: 500, errorCode: '500.001.1001', errorMessage: 'Merchant does not exist' },
  wrongCredentials: { status: 500, errorCode: '500.001.1001', errorMessage: 'Wrong credentials' },
  subscriberLocked: {
    status: 500,
    errorCode: '500.001.1001',
    errorMessage: 'Unable to lock subscriber, a transaction is already in process for the current subscriber',
  },
  /** Spelling as observed on the live sandbox (capital E); clients should compare case-insensitively. */
  transactionDoesNotExist: { status: 500, errorCode: '500.001.1001', errorMessage: 'The transaction does not Exist' },
  internalError: { status: 500, errorCode: '500.003.1001', errorMessage: 'Internal Server Error' },
  /** Gateway TPS limit (daraja.md §2.3): rejected before processing, safe to retry with backoff. */
  spikeArrest: { status: 500, errorCode: '500.003.02', errorMessage: 'Error Occurred: Spike Arrest Violation' },
  serviceUnavailable: { status: 503, errorCode: '503.001.01', errorMessage: 'Service Unavailable' },
} satisfies Record<string, DarajaError>);

export function transactionBeingProcessed(checkoutRequestId: string): DarajaError {
  return {
    status: 500,
    errorCode: '500.001.1001',
    errorMessage: 'The transaction is being processed',
    requestId: checkoutRequestId,
  };
}
