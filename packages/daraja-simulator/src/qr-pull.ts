/**
 * Dynamic QR (`POST /mpesa/qrcode/v1/generate`) and Pull Transactions (`POST /pulltransactions/v1/register`,
 * `POST /pulltransactions/v1/query`), as /work/shared/reference/daraja-more.md §1–2 describes them:
 * - QR: a real PNG (base64 in `QRCode`) of the request's fields; 400 "Invalid TrxCode" and friends on bad input.
 * - Pull: a one-time registration per shortcode (1000, then 1001 "already Registered"); a per-shortcode list
 *   of C2B transactions (fed through the control API / pullTransactions.add), served for windows within
 *   the last 48 h, paged by OffSetValue as a page index with TotalPages, rows nested `Response: [[…]]`.
 *   An empty window and an unregistered shortcode both answer HTTP 200 `1001`, as Daraja does.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import QRCode from 'qrcode';
import type { SimulatorCore } from './core';
import { badRequest, ERRORS, type DarajaError } from './errors';
import { BodyTooLargeError, isJsonContentType, parseJsonObject, readBody, sendDarajaError, sendJson } from './http';
import { newRequestId } from './ids';

export const DYNAMIC_QR_PATH = '/mpesa/qrcode/v1/generate';
export const PULL_REGISTER_PATH = '/pulltransactions/v1/register';
export const PULL_QUERY_PATH = '/pulltransactions/v1/query';
export const QR_PULL_PATHS: ReadonlySet<string> = new Set([DYNAMIC_QR_PATH, PULL_REGISTER_PATH, PULL_QUERY_PATH]);

const PULL_WINDOW_MS = 48 * 3600_000;
const NAIROBI_OFFSET_MS = 3 * 3600_000;
const NO_RECORDS = 'No records found or Organization Name not available';

/** One C2B transaction of a shortcode, as a customer paid it. */
export interface SimPullTransaction {
  transactionId: string;
  /** KES, e.g. 233.8 */
  amount: number;
  trxDate: Date;
  /** As Daraja would send it (default: a masked-looking number). */
  msisdn?: string;
  billreference?: string;
  transactiontype?: string;
}

export interface SimPullRegistration {
  shortcode: string;
  nominatedNumberMasked: string;
  callbackUrlOrigin: string;
  registeredAt: string;
}

export interface SimQrRequest {
  MerchantName: string;
  RefNo: string;
  Amount: number;
  TrxCode: string;
  CPI: string;
  Size: string;
  at: string;
}

function pullDate(s: unknown): Date | undefined {
  if (typeof s !== 'string') return undefined;
  const m = /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2})(?::(\d{2}))?$/.exec(s.trim());
  if (!m) return undefined;
  const wall = Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +(m[6] ?? '0'));
  return Number.isFinite(wall) ? new Date(wall - NAIROBI_OFFSET_MS) : undefined;
}

export class QrPullRoutes {
  private registrations = new Map<string, SimPullRegistration>();
  private transactions = new Map<string, SimPullTransaction[]>();
  private qrRequests: SimQrRequest[] = [];
  private pageSize = 100;
  /** Queries of this page index or later answer 503 (a Daraja that fails part-way through the pages); null: none. */
  private failFromPage: number | null = null;

  constructor(private readonly core: SimulatorCore) {}

  // --- control (the /__sim routes and the in-process handle) ---------------------------------

  addTransactions(shortcode: string, txs: SimPullTransaction[]): number {
    const list = this.transactions.get(shortcode) ?? [];
    for (const t of txs) {
      if (!/^[A-Z0-9]{6,20}$/.test(t.transactionId)) throw new RangeError('transactionId must be 6-20 capitals/digits');
      if (!(t.amount > 0)) throw new RangeError('amount must be positive');
      if (!(t.trxDate instanceof Date) || !Number.isFinite(t.trxDate.getTime())) throw new RangeError('bad trxDate');
      list.push({ ...t });
    }
    this.transactions.set(shortcode, list);
    return list.length;
  }

  setPageSize(n: number): void {
    if (!Number.isSafeInteger(n) || n < 1 || n > 1000) throw new RangeError('pageSize must be 1 to 1000');
    this.pageSize = n;
  }

  setFailFromPage(page: number | null): void {
    if (page !== null && (!Number.isSafeInteger(page) || page < 0)) throw new RangeError('page must be 0 or more');
    this.failFromPage = page;
  }

  /** Puts back a Pull registration the simulator lost with its process (Daraja keeps it for ever). */
  restoreRegistration(shortcode: string, callbackUrl: string): void {
    if (this.registrations.has(shortcode)) return;
    this.registrations.set(shortcode, {
      shortcode,
      nominatedNumberMasked: '(restored)',
      callbackUrlOrigin: new URL(callbackUrl).origin,
      registeredAt: new Date().toISOString(),
    });
  }

  listRegistrations(): SimPullRegistration[] {
    return [...this.registrations.values()];
  }

  listQrRequests(): SimQrRequest[] {
    return [...this.qrRequests];
  }

  reset(): void {
    this.registrations.clear();
    this.transactions.clear();
    this.qrRequests = [];
    this.pageSize = 100;
    this.failFromPage = null;
  }

  // --- Daraja endpoints ---------------------------------------------------------------------------

  async handle(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    let raw: Buffer;
    try {
      raw = await readBody(req);
    } catch (err: unknown) {
      if (err instanceof BodyTooLargeError) return this.fail(req, res, ERRORS.payloadTooLarge);
      throw err;
    }
    if (req.method !== 'POST') return this.fail(req, res, ERRORS.methodNotAllowed);
    const bearer = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
    const consumerKey = bearer?.[1] ? this.core.tokenConsumerKey(bearer[1]) : undefined;
    if (consumerKey === undefined) return this.fail(req, res, ERRORS.invalidAccessToken);
    this.core.noteAuthorizedCall();
    if (!isJsonContentType(req.headers['content-type'])) return this.fail(req, res, ERRORS.invalidPayload);
    const body = parseJsonObject(raw);
    if (!body) return this.fail(req, res, ERRORS.invalidPayload);
    if (path === DYNAMIC_QR_PATH) return this.qr(req, res, body);
    const shortcode = typeof body['ShortCode'] === 'string' ? body['ShortCode'] : '';
    if (!this.knownShortcode(shortcode, consumerKey))
      return this.fail(req, res, { status: 400, errorCode: '400.001', errorMessage: 'Invalid ShortCode' });
    return path === PULL_REGISTER_PATH
      ? this.register(req, res, shortcode, body)
      : this.query(req, res, shortcode, body);
  }

  private async qr(req: IncomingMessage, res: ServerResponse, b: Record<string, unknown>): Promise<void> {
    const trx = b['TrxCode'];
    if (typeof trx !== 'string' || !['BG', 'PB', 'WA', 'SM', 'SB'].includes(trx))
      return this.fail(req, res, badRequest('TrxCode'));
    const cpi = b['CPI'];
    if (typeof cpi !== 'string' || !/^\d{5,12}$/.test(cpi)) return this.fail(req, res, badRequest('CPI'));
    const amount = b['Amount'];
    if (typeof amount !== 'number' || !Number.isSafeInteger(amount) || amount < 1)
      return this.fail(req, res, badRequest('Amount'));
    const name = b['MerchantName'];
    if (typeof name !== 'string' || name.trim() === '') return this.fail(req, res, badRequest('MerchantName'));
    const refNo = b['RefNo'];
    if (typeof refNo !== 'string' || (trx === 'PB' && refNo.trim() === ''))
      return this.fail(req, res, badRequest('RefNo'));
    const size = Number(b['Size']);
    if (typeof b['Size'] !== 'string' || !Number.isSafeInteger(size) || size < 50 || size > 2000)
      return this.fail(req, res, badRequest('Size'));
    this.qrRequests.push({
      MerchantName: name,
      RefNo: refNo,
      Amount: amount,
      TrxCode: trx,
      CPI: cpi,
      Size: b['Size'],
      at: new Date().toISOString(),
    });
    // What the M-PESA app would read: the simulator's own plain form (Safaricom's payload is opaque).
    const content = JSON.stringify({ TrxCode: trx, CPI: cpi, Amount: amount, RefNo: refNo, MerchantName: name });
    const png = await QRCode.toBuffer(content, { type: 'png', width: size, margin: 1, errorCorrectionLevel: 'M' });
    sendJson(res, 200, {
      ResponseCode: 'AG_20191219_000043fdf61864fe9ff5',
      RequestID: newRequestId(),
      ResponseDescription: 'QR Code Successfully Generated.',
      QRCode: png.toString('base64'),
    });
    this.core.log(`POST ${DYNAMIC_QR_PATH} -> 200 QR ${trx} ${cpi} amount=${amount}`);
  }

  private register(req: IncomingMessage, res: ServerResponse, shortcode: string, b: Record<string, unknown>): void {
    if (b['RequestType'] !== 'Pull') return this.fail(req, res, badRequest('RequestType'));
    const nominated = b['NominatedNumber'];
    if (typeof nominated !== 'string' || !/^(254|0)[17]\d{8}$/.test(nominated))
      return this.fail(req, res, badRequest('NominatedNumber'));
    const url = b['CallBackURL'];
    if (typeof url !== 'string' || !/^https?:\/\/\S+$/i.test(url))
      return this.fail(req, res, badRequest('CallBackURL'));
    const refId = newRequestId();
    if (this.registrations.has(shortcode)) {
      sendJson(res, 200, {
        ResponseRefID: refId,
        ResponseStatus: '1001',
        ShortCode: shortcode,
        ResponseDescription: 'ShortCode already Registered',
      });
      this.core.log(`POST ${PULL_REGISTER_PATH} -> 200 1001 ${shortcode} already registered`);
      return;
    }
    this.registrations.set(shortcode, {
      shortcode,
      nominatedNumberMasked: `${nominated.slice(0, 4)}****${nominated.slice(-2)}`,
      callbackUrlOrigin: new URL(url).origin,
      registeredAt: new Date().toISOString(),
    });
    sendJson(res, 200, {
      ResponseRefID: refId,
      ResponseStatus: '1000',
      ShortCode: shortcode,
      ResponseDescription: 'Shortcode Registered Successfully',
    });
    this.core.log(`POST ${PULL_REGISTER_PATH} -> 200 1000 ${shortcode} registered`);
  }

  private query(req: IncomingMessage, res: ServerResponse, shortcode: string, b: Record<string, unknown>): void {
    const start = pullDate(b['StartDate']);
    if (!start) return this.fail(req, res, badRequest('StartDate'));
    const end = pullDate(b['EndDate']);
    if (!end || end < start) return this.fail(req, res, badRequest('EndDate'));
    const now = Date.now();
    // The window must fall within the last 48 h (a minute's grace for the request's own transit).
    if (start.getTime() < now - PULL_WINDOW_MS - 60_000 || end.getTime() > now + 60_000)
      return this.fail(req, res, badRequest('StartDate'));
    const offset = typeof b['OffSetValue'] === 'string' ? Number(b['OffSetValue']) : NaN;
    if (!Number.isSafeInteger(offset) || offset < 0) return this.fail(req, res, badRequest('OffSetValue'));
    if (this.failFromPage !== null && offset >= this.failFromPage)
      return this.fail(req, res, ERRORS.serviceUnavailable);
    const rows = this.registrations.has(shortcode)
      ? (this.transactions.get(shortcode) ?? [])
          .filter((t) => t.trxDate >= start && t.trxDate <= end)
          .sort((x, y) => x.trxDate.getTime() - y.trxDate.getTime())
      : [];
    const totalPages = Math.ceil(rows.length / this.pageSize);
    const page = rows.slice(offset * this.pageSize, (offset + 1) * this.pageSize);
    if (page.length === 0) {
      sendJson(res, 200, {
        ResponseRefID: newRequestId(),
        ResponseCode: '1001',
        ResponseMessage: NO_RECORDS,
        Response: [[]],
      });
      this.core.log(`POST ${PULL_QUERY_PATH} -> 200 1001 ${shortcode} page ${offset}`);
      return;
    }
    sendJson(res, 200, {
      ResponseRefID: newRequestId(),
      ResponseCode: '1000',
      ResponseMessage: 'Success',
      Response: [
        page.map((t) => ({
          transactionId: t.transactionId,
          trxDate: t.trxDate.toISOString().replace(/\.\d{3}Z$/, 'Z'),
          msisdn: t.msisdn ?? '2547*****126',
          sender: 'MPESA',
          transactiontype: t.transactiontype ?? 'c2b-pay-bill-debit',
          billreference: t.billreference ?? '',
          amount: t.amount,
          organizationname: `Simulated shortcode ${shortcode}`,
        })),
      ],
      TotalPages: totalPages,
    });
    this.core.log(`POST ${PULL_QUERY_PATH} -> 200 1000 ${shortcode} page ${offset}/${totalPages} rows=${page.length}`);
  }

  /** A shortcode or till number of an account the app may use. */
  private knownShortcode(code: string, consumerKey: string): boolean {
    if (!/^\d{5,7}$/.test(code)) return false;
    return this.core
      .listAccounts()
      .some(
        (a) =>
          (a.shortcode === code || a.tillNumbers.includes(code)) &&
          this.core.registry.appMayUse(consumerKey, a.shortcode),
      );
  }

  private fail(req: IncomingMessage, res: ServerResponse, error: DarajaError): void {
    sendDarajaError(res, error);
    this.core.log(
      `${req.method ?? '?'} ${(req.url ?? '').split('?')[0] ?? ''} -> ${error.status} ${error.errorCode} ${error.errorMessage}`,
    );
  }
}

/** Control body of POST /__sim/pull-transactions: {shortcode, transactions: [{transactionId, amount, trxDate (ISO), msisdn?, billreference?}], pageSize?}. */
export function parsePullControl(v: unknown): {
  shortcode: string;
  transactions: SimPullTransaction[];
  pageSize?: number;
} {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new RangeError('body must be a JSON object');
  const o = v as Record<string, unknown>;
  if (typeof o['shortcode'] !== 'string') throw new RangeError('shortcode is required');
  const list = o['transactions'] ?? [];
  if (!Array.isArray(list)) throw new RangeError('transactions must be an array');
  const transactions = list.map((t: unknown) => {
    const r = (t ?? {}) as Record<string, unknown>;
    return {
      transactionId: String(r['transactionId'] ?? ''),
      amount: Number(r['amount']),
      trxDate: new Date(String(r['trxDate'] ?? '')),
      msisdn: typeof r['msisdn'] === 'string' ? r['msisdn'] : undefined,
      billreference: typeof r['billreference'] === 'string' ? r['billreference'] : undefined,
      transactiontype: typeof r['transactiontype'] === 'string' ? r['transactiontype'] : undefined,
    };
  });
  const pageSize = o['pageSize'] === undefined ? undefined : Number(o['pageSize']);
  return { shortcode: o['shortcode'], transactions, pageSize };
}
