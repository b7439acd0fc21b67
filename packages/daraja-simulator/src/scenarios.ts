/** How the simulated customer answers a prompt, chosen by the PhoneNumber of the push. */
import type { PendingQueryForm } from './types';

export type ScenarioName =
  | 'success'
  | 'cancelled'
  | 'no_answer'
  | 'insufficient_funds'
  | 'wrong_pin'
  | 'callback_lost'
  | 'duplicate_callback'
  | 'never_answers'
  | 'never_answers_4999'
  | 'prompt_not_delivered'
  | 'subscriber_locked'
  | 'answer_lost'
  | 'push_timeout'
  | 'product_not_permitted';

export interface ScenarioSpec {
  scenario: ScenarioName;
  description: string;
  /** ResultCode the customer answers with after callbackDelayMs; undefined = waits for resolve(). */
  autoResultCode?: number;
  /** How many times the callback is POSTed once the push is answered (0 = never). */
  callbackCopies: 0 | 1 | 2;
  /** The push itself is rejected synchronously (no CheckoutRequestID is issued). */
  rejectsPush: boolean;
  /**
   * The HTTP answer to the push never arrives (connection held pushTimeouts.holdMs, then dropped):
   * 'processed' = the push was recorded and the customer prompted; 'unprocessed' = nothing happened.
   */
  timeout?: 'processed' | 'unprocessed';
  /** Fixes how STK query answers while the push is unanswered (otherwise the simulator's current behaviour decides). */
  pendingQueryForm?: PendingQueryForm;
}

export const SUCCESS_RESULT_DESC = 'The service request is processed successfully.';
export const PRODUCT_NOT_PERMITTED_CODE = 2028;
/** Gap between the two deliveries of the duplicate_callback scenario. */
export const DUPLICATE_CALLBACK_GAP_MS = 100;

/** ResultDesc texts per ResultCode (daraja.md §2.6). */
export const RESULT_DESCRIPTIONS: Readonly<Record<number, string>> = Object.freeze({
  0: SUCCESS_RESULT_DESC,
  1: 'The balance is insufficient for the transaction.',
  2: 'Declined due to limit rule: less than the minimum transaction amount.',
  3: 'Declined due to limit rule: greater than the maximum transaction amount.',
  4: 'Declined due to limit rule: would exceed daily transfer limit.',
  8: 'Declined due to limit rule: would exceed the maximum balance.',
  17: 'Rule limited.',
  26: 'System busy',
  1001: 'Unable to lock subscriber, a transaction is already in process for the current subscriber',
  1019: 'Transaction has expired',
  1025: 'An error occurred while sending a push request',
  1031: 'Request cancelled by user',
  1032: 'Request cancelled by user',
  /** As received in 2019 (django-daraja fixture; daraja-payloads/cb15): the prompt never reached the SIM. */
  1036: '[STK_CB - ]SMSC ACK timeout.',
  1037: 'DS timeout user cannot be reached',
  2001: 'The initiator information is invalid.',
  2028: 'The request is not permitted according to product assignment',
  8006: 'The security credential is locked',
  9999: 'An error occurred while sending a push request',
});

export function resultDescription(resultCode: number): string {
  return RESULT_DESCRIPTIONS[resultCode] ?? `The service request failed (simulated ResultCode ${resultCode}).`;
}

const SCENARIOS: Readonly<Record<ScenarioName, ScenarioSpec>> = Object.freeze({
  success: {
    scenario: 'success',
    description: 'Customer enters the PIN: ResultCode 0 with CallbackMetadata (default for any other valid number).',
    autoResultCode: 0,
    callbackCopies: 1,
    rejectsPush: false,
  },
  cancelled: {
    scenario: 'cancelled',
    description: 'Customer cancels the prompt: ResultCode 1032 "Request cancelled by user".',
    autoResultCode: 1032,
    callbackCopies: 1,
    rejectsPush: false,
  },
  no_answer: {
    scenario: 'no_answer',
    description: 'Phone unreachable / no answer: ResultCode 1037 "DS timeout user cannot be reached".',
    autoResultCode: 1037,
    callbackCopies: 1,
    rejectsPush: false,
  },
  insufficient_funds: {
    scenario: 'insufficient_funds',
    description: 'Insufficient funds: ResultCode 1 "The balance is insufficient for the transaction.".',
    autoResultCode: 1,
    callbackCopies: 1,
    rejectsPush: false,
  },
  wrong_pin: {
    scenario: 'wrong_pin',
    description: 'Wrong PIN: ResultCode 2001 "The initiator information is invalid.".',
    autoResultCode: 2001,
    callbackCopies: 1,
    rejectsPush: false,
  },
  callback_lost: {
    scenario: 'callback_lost',
    description: 'Payment succeeds (ResultCode 0) but the callback is NEVER sent; STK query still reports the result.',
    autoResultCode: 0,
    callbackCopies: 0,
    rejectsPush: false,
  },
  duplicate_callback: {
    scenario: 'duplicate_callback',
    description: `Payment succeeds and the identical callback is sent TWICE, ~${DUPLICATE_CALLBACK_GAP_MS} ms apart.`,
    autoResultCode: 0,
    callbackCopies: 2,
    rejectsPush: false,
  },
  never_answers: {
    scenario: 'never_answers',
    description:
      'Customer never answers until resolve() / POST /__sim/pushes/:id/resolve; STK query keeps answering pending (in the pendingQueryForm in force).',
    callbackCopies: 1,
    rejectsPush: false,
  },
  never_answers_4999: {
    scenario: 'never_answers_4999',
    description:
      'Like never_answers, but STK query answers the 2026 sandbox form: HTTP 200 ResultCode "4999" "The transaction is still under processing".',
    callbackCopies: 1,
    rejectsPush: false,
    pendingQueryForm: 'result4999',
  },
  prompt_not_delivered: {
    scenario: 'prompt_not_delivered',
    description: 'The prompt never reaches the SIM: ResultCode 1036 "[STK_CB - ]SMSC ACK timeout.".',
    autoResultCode: 1036,
    callbackCopies: 1,
    rejectsPush: false,
  },
  subscriber_locked: {
    scenario: 'subscriber_locked',
    description:
      'Push rejected at once: HTTP 500 500.001.1001 "Unable to lock subscriber, a transaction is already in process for the current subscriber".',
    callbackCopies: 0,
    rejectsPush: true,
  },
  answer_lost: {
    scenario: 'answer_lost',
    description:
      'Push processed (prompt sent, customer pays: ResultCode 0, callback sent) but its HTTP answer never arrives: connection held pushTimeouts.holdMs (30 s), then dropped.',
    autoResultCode: 0,
    callbackCopies: 1,
    rejectsPush: false,
    timeout: 'processed',
  },
  push_timeout: {
    scenario: 'push_timeout',
    description:
      'Push NOT processed and never answered: connection held pushTimeouts.holdMs (30 s), then dropped; no prompt, no callback.',
    callbackCopies: 0,
    rejectsPush: false,
    timeout: 'unprocessed',
  },
  product_not_permitted: {
    scenario: 'product_not_permitted',
    description:
      'Wrong TransactionType/PartyB combination: push accepted, callback carries ResultCode 2028 (overrides the phone scenario).',
    autoResultCode: PRODUCT_NOT_PERMITTED_CODE,
    callbackCopies: 1,
    rejectsPush: false,
  },
});

const MAGIC_SCENARIOS: Readonly<Record<string, ScenarioName>> = Object.freeze({
  '254700000001': 'cancelled',
  '254700000002': 'no_answer',
  '254700000003': 'insufficient_funds',
  '254700000004': 'wrong_pin',
  '254700000005': 'callback_lost',
  '254700000006': 'duplicate_callback',
  '254700000007': 'never_answers',
  '254700000008': 'subscriber_locked',
  '254700000009': 'answer_lost',
  '254700000010': 'push_timeout',
  '254700000011': 'never_answers_4999',
  '254700000012': 'prompt_not_delivered',
});

/** Magic PhoneNumber values and what they do. Any other valid number succeeds (ResultCode 0). */
export const MAGIC_NUMBERS: Record<string, { scenario: string; description: string }> = Object.freeze(
  Object.fromEntries(
    Object.entries(MAGIC_SCENARIOS).map(([phone, name]) => [
      phone,
      Object.freeze({ scenario: name, description: SCENARIOS[name].description }),
    ]),
  ),
);

export function scenarioForPhone(phoneNumber: string): ScenarioSpec {
  return SCENARIOS[MAGIC_SCENARIOS[phoneNumber] ?? 'success'];
}

export function scenarioByName(name: string): ScenarioSpec | undefined {
  return Object.prototype.hasOwnProperty.call(SCENARIOS, name) ? SCENARIOS[name as ScenarioName] : undefined;
}
