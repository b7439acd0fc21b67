/**
 * The async "Result API" family (daraja.md §6): M-Pesa Reversal and Transaction Status. Requests are acknowledged at
 * once; the outcome is decided `resultDelayMs` later against the simulator's real state (payments it completed,
 * reversals it made) and POSTed to ResultURL — or not, or as a QueueTimeOutURL notice, as controls say.
 */
import { CallbackSender } from './callbacks';
import { badRequest, type DarajaError } from './errors';
import { isPlainObject, redactUrl } from './http';
import { newReceiptNumber, newRequestId, randomFrom } from './ids';
import type { Registry, StoredAccount } from './registry';
import { decryptSecurityCredential } from './security-credential';
import { formatNairobiTimestamp } from './time';
import { TimerRegistry } from './timers';
import type { SimResultApi, SimResultCode, SimResultControl, SimResultDelivery, SimResultRequest } from './types';
import { parseAmount } from './validation';

export const REVERSAL_COMMAND = 'TransactionReversal';
export const STATUS_COMMAND = 'TransactionStatusQuery';
export const REVERSAL_RECEIVER_IDENTIFIER_TYPE = '11';
export const STATUS_IDENTIFIER_TYPE = '4';
export const MAX_RESULT_COPIES = 10;
export const DEFAULT_RESULT_GAP_MS = 100;

/** Result descriptions (daraja.md §6.1 codes; wording as in Safaricom's result messages where known). */
export const RESULT_API_DESCRIPTIONS: Readonly<Record<string, string>> = Object.freeze({
  '0': 'The service request is processed successfully.',
  '1': 'The balance is insufficient for the transaction.',
  '11': 'The DebitParty is in an invalid state.',
  '21': 'The initiator is not allowed to initiate this request.',
  '2001': 'The initiator information is invalid.',
  '2006': 'Declined due to account rule.',
  '2028': 'The request is not permitted according to product assignment.',
  '8006': 'The security credential is locked.',
  R000001: 'The transaction has already been reversed.',
  R000002: 'The OriginalTransactionID is invalid.',
});

/** The QueueTimeOutURL notice (shape not documented by Safaricom: the simulator's own, see README). */
export const QUEUE_TIMEOUT_RESULT_CODE = 1;
export const QUEUE_TIMEOUT_RESULT_DESC = 'The service request timed out.';

/** ReferenceData Daraja puts in every Result: its own internal queue URL, not the client's. */
const REFERENCE_QUEUE_URL: Record<SimResultApi, string> = {
  reversal: 'https://internalsandbox.safaricom.co.ke/mpesa/reversalresults/v1/submit',
  status: 'https://internalsandbox.safaricom.co.ke/mpesa/transactionstatusresults/v1/submit',
};

const SHORTCODE_PATTERN = /^\d{5,7}$/;
const TRANSACTION_ID_PATTERN = /^[A-Za-z0-9]{1,20}$/;
const MIN_REMARKS = 2;
const MAX_REMARKS = 100;
const MAX_OCCASION = 100;
const FORCEABLE_CODES = Object.keys(RESULT_API_DESCRIPTIONS).filter((c) => c !== '0');

/** A completed STK payment, as the Result API knows it. */
export interface PaymentFacts {
  receipt: string;
  shortcode: string;
  partyB: string;
  transactionType: string;
  phoneNumber: string;
  amount: number;
  initiatedAt: Date;
  completedAt: Date;
}

interface PaymentState extends PaymentFacts {
  originatorConversationId: string;
  conversationId: string;
  reversal?: ReversalDone;
}

interface ReversalDone {
  receipt: string;
  amount: number;
  at: Date;
  initiatedAt: Date;
  originatorConversationId: string;
  conversationId: string;
  payment: PaymentState;
}

interface ValidReversal {
  initiator: string;
  password: string;
  transactionId: string;
  amount: number;
  receiverParty: string;
  resultUrl: string;
  queueTimeOutUrl: string;
}

interface ValidStatus {
  initiator: string;
  password: string;
  transactionId?: string;
  originalConversationId?: string;
  partyA: string;
  resultUrl: string;
  queueTimeOutUrl: string;
}

type Valid<T> =
  { ok: true; value: T } | { ok: false; error: DarajaError; credential: SimResultRequest['securityCredential'] };

type ResultParameter = { Key: string; Value?: string | number };

export interface ResultBody {
  Result: {
    ResultType: 0;
    ResultCode: SimResultCode;
    ResultDesc: string;
    OriginatorConversationID: string;
    ConversationID: string;
    TransactionID: string;
    ResultParameters?: { ResultParameter: ResultParameter[] };
    ReferenceData: { ReferenceItem: { Key: 'QueueTimeoutURL'; Value: string } };
  };
}

export interface AsyncAccepted {
  OriginatorConversationID: string;
  ConversationID: string;
  ResponseCode: '0';
  ResponseDescription: string;
}

interface Outcome {
  resultCode: SimResultCode;
  parameters?: ResultParameter[];
  transactionId: string;
  apply?: () => void;
}

interface PendingRequest {
  record: SimResultRequest;
  valid: ValidReversal | ValidStatus;
  control?: ParsedControl;
}

type ParsedControl = Required<Pick<SimResultControl, 'delivery' | 'copies' | 'gapMs' | 'times' | 'processed'>> &
  Pick<SimResultControl, 'api' | 'transactionId' | 'resultCode' | 'delayMs'>;

interface Waiter {
  id: string;
  count: number;
  resolve: (d: SimResultDelivery[]) => void;
  timer: NodeJS.Timeout;
  reject: (e: Error) => void;
}

export type Parsed<T> = { ok: true; value: T } | { ok: false; message: string };

// ---------------------------------------------------------------- validation helpers

function text(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  return undefined;
}

function digits(v: unknown): string | undefined {
  if (typeof v === 'number') return Number.isSafeInteger(v) && v >= 0 ? String(v) : undefined;
  return typeof v === 'string' && /^\d+$/.test(v) ? v : undefined;
}

/** ResultURL / QueueTimeOutURL: an absolute http(s) URL without whitespace (the STK forbidden words are not applied). */
export function parseResultUrl(v: unknown): string | undefined {
  if (typeof v !== 'string' || v === '' || /\s/.test(v)) return undefined;
  try {
    const u = new URL(v);
    return (u.protocol === 'http:' || u.protocol === 'https:') && u.hostname !== '' ? v : undefined;
  } catch {
    return undefined;
  }
}

function remarksOk(v: unknown): boolean {
  const t = text(v);
  return t !== undefined && t.length >= MIN_REMARKS && t.length <= MAX_REMARKS;
}

function occasionOk(v: unknown): boolean {
  if (v === undefined || v === null) return true;
  const t = text(v);
  return t !== undefined && t.length <= MAX_OCCASION;
}

/** Initiator + SecurityCredential: the credential must decrypt with the simulator's key (else sync 400). */
function initiatorAndPassword(
  body: Record<string, unknown>,
): { ok: true; initiator: string; password: string } | Extract<Valid<never>, { ok: false }> {
  const initiator = body['Initiator'];
  const credential = body['SecurityCredential'];
  const state = typeof credential === 'string' && credential !== '' ? 'undecryptable' : 'missing';
  if (typeof initiator !== 'string' || initiator.trim() === '') {
    return { ok: false, error: badRequest('Initiator'), credential: state };
  }
  const password = typeof credential === 'string' ? decryptSecurityCredential(credential) : undefined;
  if (password === undefined) return { ok: false, error: badRequest('SecurityCredential'), credential: state };
  return { ok: true, initiator, password };
}

export function validateReversal(body: Record<string, unknown>): Valid<ValidReversal> {
  const who = initiatorAndPassword(body);
  if (!who.ok) return who;
  const fail = (field: string): Valid<ValidReversal> => ({
    ok: false,
    error: badRequest(field),
    credential: 'decrypted',
  });
  if (body['CommandID'] !== REVERSAL_COMMAND) return fail('CommandID');
  const transactionId = body['TransactionID'];
  if (typeof transactionId !== 'string' || !TRANSACTION_ID_PATTERN.test(transactionId)) return fail('TransactionID');
  const amount = parseAmount(body['Amount']);
  if (amount === undefined) return fail('Amount');
  const receiverParty = digits(body['ReceiverParty']);
  if (receiverParty === undefined || !SHORTCODE_PATTERN.test(receiverParty)) return fail('ReceiverParty');
  // The documented spelling, RecieverIdentifierType (sic); the corrected spelling is not read (daraja.md §6).
  if (text(body['RecieverIdentifierType']) !== REVERSAL_RECEIVER_IDENTIFIER_TYPE) return fail('RecieverIdentifierType');
  const resultUrl = parseResultUrl(body['ResultURL']);
  if (resultUrl === undefined) return fail('ResultURL');
  const queueTimeOutUrl = parseResultUrl(body['QueueTimeOutURL']);
  if (queueTimeOutUrl === undefined) return fail('QueueTimeOutURL');
  if (!remarksOk(body['Remarks'])) return fail('Remarks');
  if (!occasionOk(body['Occasion'])) return fail('Occasion');
  return {
    ok: true,
    value: {
      initiator: who.initiator,
      password: who.password,
      transactionId,
      amount,
      receiverParty,
      resultUrl,
      queueTimeOutUrl,
    },
  };
}

export function validateStatus(body: Record<string, unknown>): Valid<ValidStatus> {
  const who = initiatorAndPassword(body);
  if (!who.ok) return who;
  const fail = (field: string): Valid<ValidStatus> => ({
    ok: false,
    error: badRequest(field),
    credential: 'decrypted',
  });
  if (body['CommandID'] !== STATUS_COMMAND) return fail('CommandID');
  const rawId = body['TransactionID'];
  const rawConversation = body['OriginalConversationID'];
  const transactionId = typeof rawId === 'string' && rawId !== '' ? rawId : undefined;
  const originalConversationId =
    typeof rawConversation === 'string' && rawConversation.trim() !== '' ? rawConversation : undefined;
  if (
    rawId !== undefined &&
    rawId !== '' &&
    (transactionId === undefined || !TRANSACTION_ID_PATTERN.test(transactionId))
  )
    return fail('TransactionID');
  if (transactionId === undefined && originalConversationId === undefined) return fail('TransactionID');
  const partyA = digits(body['PartyA']);
  if (partyA === undefined || !SHORTCODE_PATTERN.test(partyA)) return fail('PartyA');
  if (text(body['IdentifierType']) !== STATUS_IDENTIFIER_TYPE) return fail('IdentifierType');
  const resultUrl = parseResultUrl(body['ResultURL']);
  if (resultUrl === undefined) return fail('ResultURL');
  const queueTimeOutUrl = parseResultUrl(body['QueueTimeOutURL']);
  if (queueTimeOutUrl === undefined) return fail('QueueTimeOutURL');
  if (!remarksOk(body['Remarks'])) return fail('Remarks');
  if (!occasionOk(body['Occasion'])) return fail('Occasion');
  const value: ValidStatus = {
    initiator: who.initiator,
    password: who.password,
    partyA,
    resultUrl,
    queueTimeOutUrl,
  };
  if (transactionId !== undefined) value.transactionId = transactionId;
  if (originalConversationId !== undefined) value.originalConversationId = originalConversationId;
  return { ok: true, value };
}

// ---------------------------------------------------------------- controls

const CONTROL_KEYS = [
  'api',
  'transactionId',
  'resultCode',
  'delivery',
  'processed',
  'copies',
  'gapMs',
  'delayMs',
  'times',
] as const;

function nonNegativeInt(v: unknown, max = 2_147_483_647): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= max;
}

export function parseResultControl(v: unknown): Parsed<ParsedControl> {
  if (!isPlainObject(v)) return { ok: false, message: 'a result control must be a JSON object' };
  const extra = Object.keys(v).filter((k) => !(CONTROL_KEYS as readonly string[]).includes(k));
  if (extra.length) return { ok: false, message: `result control: unknown field(s) ${extra.join(', ')}` };
  const out: ParsedControl = {
    delivery: 'result',
    copies: 1,
    gapMs: DEFAULT_RESULT_GAP_MS,
    times: 1,
    processed: false,
  };
  const api = v['api'];
  if (api !== undefined) {
    if (api !== 'reversal' && api !== 'status') return { ok: false, message: 'api must be "reversal" or "status"' };
    out.api = api;
  }
  const tx = v['transactionId'];
  if (tx !== undefined) {
    if (typeof tx !== 'string' || !TRANSACTION_ID_PATTERN.test(tx))
      return { ok: false, message: 'transactionId must be 1-20 letters/digits' };
    out.transactionId = tx;
  }
  const code = v['resultCode'];
  if (code !== undefined) {
    if ((typeof code !== 'number' && typeof code !== 'string') || !FORCEABLE_CODES.includes(String(code))) {
      return { ok: false, message: `resultCode must be one of ${FORCEABLE_CODES.join(', ')}` };
    }
    // On the wire: numbers, except the R0000xx strings.
    out.resultCode = /^\d+$/.test(String(code)) ? Number(code) : String(code);
  }
  const delivery = v['delivery'];
  if (delivery !== undefined) {
    if (delivery !== 'result' && delivery !== 'none' && delivery !== 'queue_timeout') {
      return { ok: false, message: 'delivery must be "result", "none" or "queue_timeout"' };
    }
    out.delivery = delivery;
  }
  const processed = v['processed'];
  if (processed !== undefined) {
    if (typeof processed !== 'boolean') return { ok: false, message: 'processed must be a boolean' };
    if (out.delivery !== 'queue_timeout')
      return { ok: false, message: 'processed only applies to delivery "queue_timeout"' };
    out.processed = processed;
  }
  const copies = v['copies'];
  if (copies !== undefined) {
    if (!nonNegativeInt(copies, MAX_RESULT_COPIES) || copies < 1)
      return { ok: false, message: `copies must be an integer 1..${MAX_RESULT_COPIES}` };
    out.copies = copies;
  }
  if (v['gapMs'] !== undefined) {
    if (!nonNegativeInt(v['gapMs'])) return { ok: false, message: 'gapMs must be a non-negative integer' };
    out.gapMs = v['gapMs'];
  }
  if (v['delayMs'] !== undefined) {
    if (!nonNegativeInt(v['delayMs'])) return { ok: false, message: 'delayMs must be a non-negative integer' };
    out.delayMs = v['delayMs'];
  }
  if (v['times'] !== undefined) {
    if (!nonNegativeInt(v['times'], 10_000) || v['times'] < 1)
      return { ok: false, message: 'times must be an integer 1..10000' };
    out.times = v['times'];
  }
  return { ok: true, value: out };
}

// ---------------------------------------------------------------- ids and names

/** ConversationID in the AG_yyyyMMdd_<20 hex> shape (daraja.md §6). */
export function newConversationId(at: Date = new Date()): string {
  return `AG_${formatNairobiTimestamp(at).slice(0, 8)}_${randomFrom('0123456789abcdef', 20)}`;
}

/** OriginatorConversationID like `f1e2-4b95-a71d-b30d3cdbb7a7735297`. */
function newOriginatorConversationId(): string {
  return newRequestId();
}

/** `2547XXXXX149 - NAME`: the customer's public name with the number masked (the simulator never sends a full MSISDN). */
function customerPublicName(phone: string): string {
  return `${phone.slice(0, 4)}XXXXX${phone.slice(-3)} - SIM CUSTOMER`;
}

function orgPublicName(shortcode: string): string {
  return `${shortcode} - SIM SHOP ${shortcode}`;
}

function stamp(at: Date): number {
  return Number(formatNairobiTimestamp(at));
}

function money(n: number): string {
  return n.toFixed(2);
}

// ---------------------------------------------------------------- the engine

export class ResultApi {
  private payments = new Map<string, PaymentState>();
  private reversalsByReceipt = new Map<string, ReversalDone>();
  private reversalsByConversation = new Map<string, ReversalDone>();
  private balances = new Map<string, number>();
  private requests: SimResultRequest[] = [];
  private deliveries: SimResultDelivery[] = [];
  private controls: ParsedControl[] = [];
  private readonly timers = new TimerRegistry();
  private readonly sender = new CallbackSender();
  private readonly waiters = new Set<Waiter>();
  private generation = 0;
  private closed = false;

  constructor(
    private readonly registry: Registry,
    private readonly resultDelayMs: number,
    private readonly maxRecords: number,
    private readonly log: (line: string) => void,
  ) {}

  /** Called when an STK push completes with ResultCode 0: the receipt can now be reversed and queried. */
  recordPayment(p: PaymentFacts): void {
    this.payments.set(p.receipt, {
      ...p,
      originatorConversationId: newOriginatorConversationId(),
      conversationId: newConversationId(p.completedAt),
    });
    this.balances.set(p.shortcode, (this.balances.get(p.shortcode) ?? 0) + p.amount);
    while (this.payments.size > this.maxRecords) {
      const oldest = this.payments.keys().next().value;
      if (oldest === undefined) break;
      this.payments.delete(oldest);
    }
  }

  addControl(control: SimResultControl): void {
    const parsed = parseResultControl(control);
    if (!parsed.ok) throw new RangeError(parsed.message);
    this.controls.push(parsed.value);
    this.log(`result control queued: ${JSON.stringify(parsed.value)}`);
  }

  private takeControl(api: SimResultApi, transactionId: string | undefined): ParsedControl | undefined {
    const index = this.controls.findIndex(
      (c) =>
        (c.api === undefined || c.api === api) && (c.transactionId === undefined || c.transactionId === transactionId),
    );
    if (index < 0) return undefined;
    const control = this.controls[index];
    if (!control) return undefined;
    control.times -= 1;
    if (control.times <= 0) this.controls.splice(index, 1);
    return { ...control };
  }

  listRequests(api: SimResultApi): SimResultRequest[] {
    return this.requests.filter((r) => r.api === api).map((r) => structuredClone(r));
  }

  listDeliveries(): SimResultDelivery[] {
    return this.deliveries.map((d) => structuredClone(d));
  }

  /**
   * Serves a request whose body is a JSON object: validates it, records it and (when valid) acknowledges it and
   * schedules the Result. Returns the synchronous answer.
   */
  handle(
    api: SimResultApi,
    body: Record<string, unknown>,
    consumerKey: string,
  ): { ok: true; body: AsyncAccepted } | { ok: false; error: DarajaError } {
    const { SecurityCredential: _secret, ...request } = body;
    const valid = api === 'reversal' ? validateReversal(body) : validateStatus(body);
    const record: SimResultRequest = {
      api,
      at: new Date(),
      consumerKey,
      request: structuredClone(request),
      securityCredential: valid.ok ? 'decrypted' : valid.credential,
      httpStatus: 200,
      state: 'pending',
    };
    this.pushRecord(record);
    if (!valid.ok) {
      record.httpStatus = valid.error.status;
      record.errorCode = valid.error.errorCode;
      record.errorMessage = valid.error.errorMessage;
      record.state = 'rejected';
      return { ok: false, error: valid.error };
    }
    const now = new Date();
    record.originatorConversationId = newOriginatorConversationId();
    record.conversationId = newConversationId(now);
    const txId = 'transactionId' in valid.value ? valid.value.transactionId : undefined;
    const control = this.takeControl(api, txId);
    record.delivery = control?.delivery ?? 'result';
    const pending: PendingRequest = { record, valid: valid.value, control };
    const delay = control?.delayMs ?? this.resultDelayMs;
    this.timers.schedule(delay, () => void this.process(api, pending));
    this.log(`${api} accepted ${record.conversationId}${txId ? ` TransactionID=${txId}` : ''}`);
    return {
      ok: true,
      body: {
        OriginatorConversationID: record.originatorConversationId,
        ConversationID: record.conversationId,
        ResponseCode: '0',
        ResponseDescription: 'Accept the service request successfully.',
      },
    };
  }

  private pushRecord(record: SimResultRequest): void {
    this.requests.push(record);
    if (this.requests.length > this.maxRecords) this.requests.splice(0, this.requests.length - this.maxRecords);
  }

  /** The initiator checks shared by both APIs, in order: identity (2001), lock (8006), role (21). */
  private initiatorFailure(
    account: StoredAccount | undefined,
    mayUse: boolean,
    initiator: string,
    password: string,
    role: 'reversal' | 'status',
  ): SimResultCode | undefined {
    if (!account || !mayUse || account.initiatorName !== initiator || account.initiatorPassword !== password)
      return 2001;
    if (account.initiatorLocked) return 8006;
    if (!account.initiatorRoles.includes(role)) return 21;
    return undefined;
  }

  private reversalOutcome(
    v: ValidReversal,
    consumerKey: string,
    record: SimResultRequest,
    forced?: SimResultCode,
  ): Outcome {
    const transactionId = newReceiptNumber();
    const account = this.registry.storedAccount(v.receiverParty);
    const denied = this.initiatorFailure(
      account,
      this.registry.appMayUse(consumerKey, v.receiverParty),
      v.initiator,
      v.password,
      'reversal',
    );
    if (denied !== undefined) return { resultCode: denied, transactionId };
    if (forced !== undefined) return { resultCode: forced, transactionId };
    const payment = this.payments.get(v.transactionId);
    if (!payment || (payment.shortcode !== v.receiverParty && payment.partyB !== v.receiverParty)) {
      return { resultCode: 'R000002', transactionId };
    }
    if (payment.reversal) return { resultCode: 'R000001', transactionId };
    if (v.amount > payment.amount) return { resultCode: 2006, transactionId };
    const at = new Date();
    const balanceAfter = (this.balances.get(payment.shortcode) ?? 0) - v.amount;
    return {
      resultCode: 0,
      transactionId,
      parameters: [
        {
          Key: 'DebitAccountBalance',
          Value: `Utility Account|KES|${money(balanceAfter)}|${money(balanceAfter)}|0.00|0.00`,
        },
        { Key: 'Amount', Value: v.amount },
        { Key: 'TransCompletedTime', Value: stamp(at) },
        { Key: 'OriginalTransactionID', Value: payment.receipt },
        { Key: 'Charge', Value: 0 },
        { Key: 'CreditPartyPublicName', Value: customerPublicName(payment.phoneNumber) },
        { Key: 'DebitPartyPublicName', Value: orgPublicName(v.receiverParty) },
      ],
      apply: () => {
        const done: ReversalDone = {
          receipt: transactionId,
          amount: v.amount,
          at,
          initiatedAt: record.at,
          originatorConversationId: record.originatorConversationId ?? '',
          conversationId: record.conversationId ?? '',
          payment,
        };
        payment.reversal = done;
        this.reversalsByReceipt.set(transactionId, done);
        this.reversalsByConversation.set(done.originatorConversationId, done);
        this.reversalsByConversation.set(done.conversationId, done);
        this.balances.set(payment.shortcode, balanceAfter);
      },
    };
  }

  private statusOutcome(v: ValidStatus, consumerKey: string, forced?: SimResultCode): Outcome {
    const transactionId = newReceiptNumber();
    const account = this.registry.storedAccount(v.partyA);
    const denied = this.initiatorFailure(
      account,
      this.registry.appMayUse(consumerKey, v.partyA),
      v.initiator,
      v.password,
      'status',
    );
    if (denied !== undefined) return { resultCode: denied, transactionId };
    if (forced !== undefined) return { resultCode: forced, transactionId };
    const ours = (shortcode: string, partyB: string): boolean => shortcode === v.partyA || partyB === v.partyA;
    const params = (p: {
      debit: string;
      credit: string;
      originator: string;
      conversation: string;
      initiated: Date;
      finalised: Date;
      debitAccountType: string;
      reason: string;
      status: string;
      amount: number;
      receipt: string;
    }): Outcome => ({
      resultCode: 0,
      transactionId,
      parameters: [
        { Key: 'DebitPartyName', Value: p.debit },
        { Key: 'CreditPartyName', Value: p.credit },
        { Key: 'OriginatorConversationID', Value: p.originator },
        { Key: 'InitiatedTime', Value: stamp(p.initiated) },
        { Key: 'DebitAccountType', Value: p.debitAccountType },
        { Key: 'DebitPartyCharges' },
        { Key: 'TransactionReason' },
        { Key: 'ReasonType', Value: p.reason },
        { Key: 'TransactionStatus', Value: p.status },
        { Key: 'FinalisedTime', Value: stamp(p.finalised) },
        { Key: 'Amount', Value: p.amount },
        { Key: 'ConversationID', Value: p.conversation },
        { Key: 'ReceiptNo', Value: p.receipt },
      ],
    });
    const reversalParams = (r: ReversalDone): Outcome =>
      params({
        debit: orgPublicName(r.payment.shortcode),
        credit: customerPublicName(r.payment.phoneNumber),
        originator: r.originatorConversationId,
        conversation: r.conversationId,
        initiated: r.initiatedAt,
        finalised: r.at,
        debitAccountType: 'Utility Account',
        reason: 'Reversal',
        status: 'Completed',
        amount: r.amount,
        receipt: r.receipt,
      });

    if (v.transactionId !== undefined) {
      const payment = this.payments.get(v.transactionId);
      if (payment && ours(payment.shortcode, payment.partyB)) {
        return params({
          debit: customerPublicName(payment.phoneNumber),
          credit: orgPublicName(payment.shortcode),
          originator: payment.originatorConversationId,
          conversation: payment.conversationId,
          initiated: payment.initiatedAt,
          finalised: payment.completedAt,
          debitAccountType: 'MMF Account For Customer',
          reason: payment.transactionType === 'CustomerBuyGoodsOnline' ? 'Buy Goods Online' : 'Pay Bill Online',
          status: payment.reversal ? 'Reversed' : 'Completed',
          amount: payment.amount,
          receipt: payment.receipt,
        });
      }
      const reversal = this.reversalsByReceipt.get(v.transactionId);
      if (reversal && ours(reversal.payment.shortcode, reversal.payment.partyB)) return reversalParams(reversal);
      return { resultCode: 'R000002', transactionId };
    }
    const reversal = this.reversalsByConversation.get(v.originalConversationId ?? '');
    if (reversal && ours(reversal.payment.shortcode, reversal.payment.partyB)) return reversalParams(reversal);
    return { resultCode: 'R000002', transactionId };
  }

  private async process(api: SimResultApi, pending: PendingRequest): Promise<void> {
    const { record, control } = pending;
    const forced = control?.resultCode;
    const outcome =
      api === 'reversal'
        ? this.reversalOutcome(pending.valid as ValidReversal, record.consumerKey, record, forced)
        : this.statusOutcome(pending.valid as ValidStatus, record.consumerKey, forced);
    const delivery = control?.delivery ?? 'result';
    const generation = this.generation;
    const originator = record.originatorConversationId ?? '';
    const conversation = record.conversationId ?? '';
    const reference = { ReferenceItem: { Key: 'QueueTimeoutURL' as const, Value: REFERENCE_QUEUE_URL[api] } };

    if (delivery === 'queue_timeout') {
      if (control?.processed) this.complete(record, outcome, forced !== undefined);
      else record.state = 'timed_out';
      const notice: ResultBody = {
        Result: {
          ResultType: 0,
          ResultCode: QUEUE_TIMEOUT_RESULT_CODE,
          ResultDesc: QUEUE_TIMEOUT_RESULT_DESC,
          OriginatorConversationID: originator,
          ConversationID: conversation,
          TransactionID: '',
          ReferenceData: reference,
        },
      };
      await this.deliver(api, record, 'queue_timeout', pending.valid.queueTimeOutUrl, notice, generation, 1);
      return;
    }
    this.complete(record, outcome, forced !== undefined);
    if (delivery === 'none') {
      this.log(`${api} ${conversation} ResultCode=${String(outcome.resultCode)}: result not sent (control)`);
      return;
    }
    const result: ResultBody = {
      Result: {
        ResultType: 0,
        ResultCode: outcome.resultCode,
        ResultDesc: RESULT_API_DESCRIPTIONS[String(outcome.resultCode)] ?? '',
        OriginatorConversationID: originator,
        ConversationID: conversation,
        TransactionID: outcome.transactionId,
        ReferenceData: reference,
      },
    };
    if (outcome.parameters) result.Result.ResultParameters = { ResultParameter: outcome.parameters };
    const copies = control?.copies ?? 1;
    const gapMs = control?.gapMs ?? DEFAULT_RESULT_GAP_MS;
    const sends: Promise<void>[] = [];
    for (let i = 0; i < copies; i += 1) {
      const copy = i + 1;
      const send = (): Promise<void> =>
        this.deliver(api, record, 'result', pending.valid.resultUrl, result, generation, copy);
      sends.push(
        i === 0 || gapMs === 0 ? send() : this.timers.sleep(gapMs * i).then((fired) => (fired ? send() : undefined)),
      );
    }
    await Promise.all(sends);
  }

  private complete(record: SimResultRequest, outcome: Outcome, forced: boolean): void {
    outcome.apply?.();
    record.state = 'completed';
    record.resultCode = outcome.resultCode;
    record.resultDesc = RESULT_API_DESCRIPTIONS[String(outcome.resultCode)] ?? '';
    record.transactionId = outcome.transactionId;
    if (forced) record.forced = true;
  }

  private async deliver(
    api: SimResultApi,
    record: SimResultRequest,
    target: 'result' | 'queue_timeout',
    url: string,
    body: ResultBody,
    generation: number,
    copy: number,
  ): Promise<void> {
    const at = new Date();
    const outcome = await this.sender.send(url, body);
    if (this.closed || generation !== this.generation) return;
    const delivery: SimResultDelivery = {
      api,
      originatorConversationId: record.originatorConversationId ?? '',
      conversationId: record.conversationId ?? '',
      target,
      url,
      body,
      at,
      copy,
    };
    if (outcome.status !== undefined) delivery.status = outcome.status;
    if (outcome.error !== undefined) delivery.error = outcome.error;
    this.deliveries.push(delivery);
    if (this.deliveries.length > this.maxRecords) this.deliveries.splice(0, this.deliveries.length - this.maxRecords);
    this.log(
      `${api} ${target === 'result' ? 'result' : 'queue timeout notice'} ${delivery.conversationId}${copy > 1 ? ` (copy ${copy})` : ''} ResultCode=${String(body.Result.ResultCode)} -> ${redactUrl(url)} ${outcome.status !== undefined ? `HTTP ${outcome.status}` : `failed: ${outcome.error ?? 'unknown error'}`}`,
    );
    this.notify();
  }

  private deliveriesFor(id: string): SimResultDelivery[] {
    return this.deliveries
      .filter((d) => d.conversationId === id || d.originatorConversationId === id)
      .map((d) => structuredClone(d));
  }

  waitForResults(id: string, count = 1, timeoutMs = this.resultDelayMs + 5000): Promise<SimResultDelivery[]> {
    const existing = this.deliveriesFor(id);
    if (existing.length >= count) return Promise.resolve(existing);
    if (this.closed) return Promise.reject(new Error('the simulator is closed'));
    return new Promise<SimResultDelivery[]>((resolve, reject) => {
      const waiter: Waiter = {
        id,
        count,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.waiters.delete(waiter);
          reject(
            new Error(
              `timed out after ${timeoutMs} ms waiting for ${count} result(s) for ${id} (got ${this.deliveriesFor(id).length})`,
            ),
          );
        }, timeoutMs),
      };
      this.waiters.add(waiter);
    });
  }

  private notify(): void {
    for (const waiter of [...this.waiters]) {
      const found = this.deliveriesFor(waiter.id);
      if (found.length < waiter.count) continue;
      clearTimeout(waiter.timer);
      this.waiters.delete(waiter);
      waiter.resolve(found);
    }
  }

  reset(): void {
    this.generation += 1;
    this.timers.cancelAll();
    this.payments = new Map();
    this.reversalsByReceipt = new Map();
    this.reversalsByConversation = new Map();
    this.balances = new Map();
    this.requests = [];
    this.deliveries = [];
    this.controls = [];
  }

  shutdown(): void {
    this.closed = true;
    this.generation += 1;
    this.timers.cancelAll();
    this.sender.abortAll();
    for (const waiter of this.waiters) {
      clearTimeout(waiter.timer);
      waiter.reject(new Error('the simulator was closed'));
    }
    this.waiters.clear();
  }
}
