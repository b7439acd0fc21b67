/**
 * C2B (daraja.md §7, daraja-more.md §3–4): `registerurl` (v1 and v2), and a customer paying a till or paybill from
 * their own phone: validation (when enabled for the shortcode) then the confirmation, POSTed like Daraja does (one
 * POST each, no signature, no retry; copies and drops on request). STK payments can also produce a confirmation
 * (the "NI push" channel, daraja-more.md §4), when switched on.
 */
import { createHash } from 'node:crypto';
import { CallbackSender, type DeliveryOutcome } from './callbacks';
import { badRequest, type DarajaError } from './errors';
import { isPlainObject, redactUrl } from './http';
import { newReceiptNumber, randomFrom } from './ids';
import type { Registry } from './registry';
import type { SimPullTransaction } from './qr-pull';
import { formatNairobiTimestamp, parseNairobiTimestamp } from './time';

/** Words Daraja refuses in C2B URLs (daraja.md §2.4), any case. */
const FORBIDDEN_URL_WORDS = ['m-pesa', 'mpesa', 'safaricom', 'exe', 'exec', 'cmd', 'sql', 'query'];
/** Daraja waits about 8 s for a validation answer, then applies the registered ResponseType. */
export const C2B_VALIDATION_TIMEOUT_MS = 8000;
export const MAX_C2B_COPIES = 10;

export type C2bMsisdnForm = 'plain' | 'masked' | 'hashed';

export interface SimC2bRegistration {
  shortcode: string;
  version: 'v1' | 'v2';
  responseType: 'Completed' | 'Cancelled';
  confirmationUrl: string;
  validationUrl: string;
  registeredAt: string;
  /** registrations of this shortcode so far (the sandbox allows re-registering) */
  count: number;
}

/** A customer paying from their phone (POST /__sim/c2b/payments, DarajaSimulator.c2bPay). */
export interface SimC2bPayment {
  /**
   * the number the customer pays: a paybill, a store shortcode, or a till number (a till without URLs
   * of its own reaches its store's registration; Pull lists the payment under the number paid)
   */
  shortcode: string;
  /** whole shillings, or `amountText` to send any TransAmount string (bad amounts) */
  amount?: number;
  amountText?: string;
  /** what the customer typed as account number (paybill); absent = a till payment ("Buy Goods") */
  billRefNumber?: string;
  /** the payer, 2547XXXXXXXX; default 254708374149 */
  msisdn?: string;
  /** how MSISDN is sent: plain, masked (2547****149) or hashed (SHA-256 hex of 2547XXXXXXXX, the 2024 default) */
  msisdnForm?: C2bMsisdnForm;
  firstName?: string;
  lastName?: string;
  /** default 1; 0 = the confirmation is dropped, more = duplicate deliveries */
  copies?: number;
  /** a TransID to use (e.g. to replay one); default a new receipt */
  transId?: string;
  /** a TransTime to use (yyyyMMddHHmmss Nairobi); default now */
  transTime?: string;
}

export interface SimC2bOutcome {
  transId: string;
  /** confirmed: the money moved (confirmations sent per `copies`); rejected/cancelled: it did not */
  outcome: 'confirmed' | 'rejected' | 'cancelled' | 'no_registration';
  validation?: { status?: number; error?: string; resultCode?: string; timedOut?: boolean };
  confirmations: DeliveryOutcome[];
  body: Record<string, string>;
}

export class C2bApi {
  private readonly registrations = new Map<string, SimC2bRegistration>();
  private readonly validationOn = new Set<string>();
  private readonly sender = new CallbackSender();
  private readonly validationSender = new CallbackSender(C2B_VALIDATION_TIMEOUT_MS);
  private paymentsLog: SimC2bOutcome[] = [];
  /** Production-like: a second registerurl for a shortcode is refused (500.003.1001 "Urls are already registered"). */
  oneTimeRegistration = false;
  /** STK payments also reach the shortcode's confirmation URL (daraja-more.md §4), MSISDN in this form. */
  stkConfirmations: C2bMsisdnForm | null = null;

  constructor(
    private readonly registry: Registry,
    private readonly log: (line: string) => void,
    /** Where a payment that moved money is also listed: the shortcode's Pull Transactions list (as Daraja does). */
    private readonly pullList: (shortcode: string, tx: SimPullTransaction) => void = () => undefined,
  ) {}

  /** POST /mpesa/c2b/{v1,v2}/registerurl, after the gateway's token check. */
  register(
    version: 'v1' | 'v2',
    body: Record<string, unknown>,
  ): { ok: true; body: unknown } | { ok: false; error: DarajaError } {
    const shortcode = typeof body['ShortCode'] === 'string' ? body['ShortCode'] : String(body['ShortCode'] ?? '');
    if (!/^\d{5,7}$/.test(shortcode) || !this.knownShortcode(shortcode))
      return { ok: false, error: badRequest('ShortCode') };
    const responseType = body['ResponseType'];
    // Sentence case, spelled exactly (daraja.md §7.1).
    if (responseType !== 'Completed' && responseType !== 'Cancelled')
      return { ok: false, error: badRequest('ResponseType') };
    const confirmationUrl = body['ConfirmationURL'];
    const validationUrl = body['ValidationURL'];
    if (!acceptableUrl(confirmationUrl)) return { ok: false, error: badRequest('ConfirmationURL') };
    if (!acceptableUrl(validationUrl)) return { ok: false, error: badRequest('ValidationURL') };
    const previous = this.registrations.get(shortcode);
    if (previous && this.oneTimeRegistration)
      return {
        ok: false,
        error: {
          status: 500,
          requestId: randomFrom('0123456789abcdef', 12),
          errorCode: '500.003.1001',
          errorMessage: 'Urls are already registered',
        },
      };
    this.registrations.set(shortcode, {
      shortcode,
      version,
      responseType,
      confirmationUrl,
      validationUrl,
      registeredAt: new Date().toISOString(),
      count: (previous?.count ?? 0) + 1,
    });
    this.log(
      `POST /mpesa/c2b/${version}/registerurl -> 200 shortcode=${shortcode} confirmation=${redactUrl(confirmationUrl)}`,
    );
    return {
      ok: true,
      // sic: "OriginatorCoversationID" is Daraja's own spelling (daraja.md §7.1).
      body: {
        OriginatorCoversationID: `${randomFrom('0123456789', 4)}-${randomFrom('0123456789', 8)}-1`,
        ResponseCode: '0',
        ResponseDescription: 'Success',
      },
    };
  }

  /**
   * Puts back a registration the simulator lost with its process (the embedded one restarts with
   * `pnpm dev`; Daraja keeps them): as it was registered, counted once, without a registerurl call.
   */
  restoreRegistration(
    r: Pick<SimC2bRegistration, 'shortcode' | 'version' | 'responseType' | 'confirmationUrl' | 'validationUrl'>,
  ): void {
    if (this.registrations.has(r.shortcode)) return;
    this.registrations.set(r.shortcode, { ...r, registeredAt: new Date().toISOString(), count: 1 });
  }

  listRegistrations(): SimC2bRegistration[] {
    return [...this.registrations.values()].map((r) => ({ ...r }));
  }

  /** External validation is off by default and switched on per shortcode by Safaricom (daraja.md §7.1). */
  setValidation(shortcode: string, enabled: boolean): void {
    if (enabled) this.validationOn.add(shortcode);
    else this.validationOn.delete(shortcode);
  }

  payments(): SimC2bOutcome[] {
    return this.paymentsLog.map((p) => ({ ...p }));
  }

  /** A customer pays from their phone: validation (if on), then the confirmation `copies` times. */
  async pay(p: SimC2bPayment): Promise<SimC2bOutcome> {
    const copies = p.copies ?? 1;
    if (!Number.isInteger(copies) || copies < 0 || copies > MAX_C2B_COPIES)
      throw new RangeError(`copies must be 0-${MAX_C2B_COPIES}`);
    if (p.amount !== undefined && (!Number.isSafeInteger(p.amount) || p.amount < 1))
      throw new RangeError('amount must be a whole number of shillings, at least 1');
    if (p.amount === undefined && p.amountText === undefined) throw new RangeError('give amount or amountText');
    const msisdn = p.msisdn ?? '254708374149';
    if (!/^254[17]\d{8}$/.test(msisdn)) throw new RangeError('msisdn must be 2547XXXXXXXX or 2541XXXXXXXX');
    const body = c2bBody(p, msisdn);
    // A till (what the shop's sticker shows) without URLs of its own reaches its store's: the store
    // number is what a till account registers [inferred: which number's URLs fire for a till is not
    // documented, daraja-more.md §4]. Pull Transactions lists it under the number paid.
    const urlsOf = this.registrations.has(p.shortcode) ? p.shortcode : (this.storeOfTill(p.shortcode) ?? p.shortcode);
    const reg = this.registrations.get(urlsOf);
    const outcome: SimC2bOutcome = { transId: body.TransID, outcome: 'confirmed', confirmations: [], body };
    if (!reg) {
      // No URLs to notify, but the money moved all the same: Pull Transactions lists it.
      outcome.outcome = 'no_registration';
      this.listForPull(p.shortcode, body);
      this.record(outcome);
      return outcome;
    }
    if (this.validationOn.has(p.shortcode) || this.validationOn.has(urlsOf)) {
      const v = await this.validationSender.send(reg.validationUrl, { ...body, OrgAccountBalance: '' });
      const resultCode = v.body === undefined ? undefined : validationCode(v.body);
      outcome.validation = { status: v.status, error: v.error, resultCode, timedOut: v.error?.startsWith('timeout') };
      const answered = v.status !== undefined && v.status >= 200 && v.status < 300 && resultCode !== undefined;
      if (answered ? resultCode !== '0' : reg.responseType === 'Cancelled') {
        outcome.outcome = answered ? 'rejected' : 'cancelled';
        this.log(`C2B ${body.TransID} ${outcome.outcome} by validation (${resultCode ?? v.error ?? v.status})`);
        this.record(outcome);
        return outcome;
      }
    }
    // Listed before any confirmation is sent: a dropped (copies 0) or failed one is still in the Pull list.
    this.listForPull(p.shortcode, body);
    for (let i = 0; i < copies; i += 1) outcome.confirmations.push(await this.sender.send(reg.confirmationUrl, body));
    this.log(`C2B ${body.TransID} confirmed, ${copies} confirmation(s) sent`);
    this.record(outcome);
    return outcome;
  }

  /** An STK payment's C2B twin (same receipt, amount, phone), when switched on and the shortcode has URLs. */
  async stkPaid(push: {
    receipt?: string;
    shortcode: string;
    amount: number;
    phoneNumber: string;
    accountReference: string;
    answeredAt: Date;
  }): Promise<void> {
    if (!this.stkConfirmations || !push.receipt || !this.registrations.has(push.shortcode)) return;
    await this.pay({
      shortcode: push.shortcode,
      amount: push.amount,
      billRefNumber: push.accountReference,
      msisdn: push.phoneNumber,
      msisdnForm: this.stkConfirmations,
      transId: push.receipt,
      transTime: formatNairobiTimestamp(push.answeredAt),
    });
  }

  reset(): void {
    this.paymentsLog = [];
    this.validationOn.clear();
    this.oneTimeRegistration = false;
    this.stkConfirmations = null;
  }

  shutdown(): void {
    this.sender.abortAll();
    this.validationSender.abortAll();
  }

  /** The payment as the shortcode's Pull Transactions list shows it (same TransID, amount, MSISDN form and time). */
  private listForPull(shortcode: string, body: Record<string, string>): void {
    const amount = Number(body.TransAmount.replace(/,/g, ''));
    // A deliberately bad TransAmount (amountText) is a malformed confirmation, not money Pull could list.
    if (!Number.isFinite(amount) || amount <= 0 || !/^[A-Z0-9]{6,20}$/.test(body.TransID)) return;
    this.pullList(shortcode, {
      transactionId: body.TransID,
      amount,
      trxDate: parseNairobiTimestamp(body.TransTime) ?? new Date(),
      msisdn: body.MSISDN,
      billreference: body.BillRefNumber,
      transactiontype: body.TransactionType === 'Buy Goods' ? 'c2b-buy-goods-debit' : 'c2b-pay-bill-debit',
    });
  }

  private record(o: SimC2bOutcome): void {
    this.paymentsLog.push(o);
    if (this.paymentsLog.length > 10_000) this.paymentsLog.shift();
  }

  /** The store (head-office) shortcode of an account that has this till number, if any. */
  private storeOfTill(till: string): string | undefined {
    return this.registry.listAccounts().find((a) => (a.tillNumbers ?? []).includes(till))?.shortcode;
  }

  private knownShortcode(shortcode: string): boolean {
    return this.registry
      .listAccounts()
      .some((a) => a.shortcode === shortcode || (a.tillNumbers ?? []).includes(shortcode));
  }
}

function acceptableUrl(u: unknown): u is string {
  if (typeof u !== 'string' || u.length > 1024 || /\s/.test(u)) return false;
  let url: URL;
  try {
    url = new URL(u);
  } catch {
    return false;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return false;
  const lower = u.toLowerCase();
  return !FORBIDDEN_URL_WORDS.some((w) => lower.includes(w));
}

function validationCode(body: string): string | undefined {
  try {
    const json: unknown = JSON.parse(body);
    if (!isPlainObject(json)) return undefined;
    const code = json['ResultCode'];
    return typeof code === 'string' || typeof code === 'number' ? String(code) : undefined;
  } catch {
    return undefined;
  }
}

/** The 13 string fields of a C2B validation / confirmation (daraja.md §7.2). */
function c2bBody(p: SimC2bPayment, msisdn: string): Record<string, string> {
  const form = p.msisdnForm ?? 'hashed';
  const shown =
    form === 'plain'
      ? msisdn
      : form === 'masked'
        ? `${msisdn.slice(0, 4)}****${msisdn.slice(-3)}`
        : createHash('sha256').update(msisdn).digest('hex');
  const till = p.billRefNumber === undefined;
  return {
    TransactionType: till ? 'Buy Goods' : 'Pay Bill',
    TransID: p.transId ?? newReceiptNumber(),
    TransTime: p.transTime ?? formatNairobiTimestamp(new Date()),
    TransAmount: p.amountText ?? `${p.amount}.00`,
    BusinessShortCode: p.shortcode,
    BillRefNumber: p.billRefNumber ?? '',
    InvoiceNumber: '',
    OrgAccountBalance: '41880264.80',
    ThirdPartyTransID: '',
    MSISDN: shown,
    FirstName: p.firstName ?? 'John',
    MiddleName: '',
    LastName: p.lastName ?? 'Doe',
  };
}
