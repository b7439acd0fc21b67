/**
 * Daraja Dynamic QR (`POST /mpesa/qrcode/v1/generate`, daraja-more.md §1): the request for a QR the
 * M-PESA / My Safaricom app scans, and the reading of its answer. Pure: no HTTP, no database.
 *
 * There is no callback: the payment a scanned QR produces is an ordinary C2B payment to the CPI's
 * till or paybill, reported to that shortcode's C2B confirmation URL. For a paybill the QR carries
 * the order id as the account number (RefNo), so the confirmation's BillRefNumber names the order.
 */
import { ValidationFailedError } from '../../../common/errors';
import { isPlainObject } from '../../../common/json';
import { ProviderError } from '../provider-errors';

export const DYNAMIC_QR_PATH = '/mpesa/qrcode/v1/generate';

/** BG Buy Goods (CPI = till), PB Paybill (CPI = paybill, RefNo = account), WA agent withdrawal, SM send money, SB sent to business. */
export type QrTrxCode = 'BG' | 'PB' | 'WA' | 'SM' | 'SB';

/** MerchantName as shown to the payer; Daraja documents no limit, the apps show about this much. */
export const QR_MERCHANT_NAME_MAX = 40;
/** C2B BillRefNumber holds at most 20 characters (daraja.md §7.2): a longer RefNo would not come back whole. */
export const QR_REF_NO_MAX = 20;
export const QR_SIZE_MIN = 100;
export const QR_SIZE_MAX = 1000;
/** Daraja's per-transaction limit for customer payments, whole shillings (as STK push). */
export const QR_MAX_AMOUNT = 250_000;

export interface DynamicQrInput {
  merchantName: string;
  /** The order id: the paybill account number the payer's app fills in (also sent for a till, where it is only a label). */
  refNo: string;
  /** Whole shillings, 1..250000. */
  amount: number;
  trxCode: 'BG' | 'PB';
  /** The till number (BG) or the paybill number (PB). */
  cpi: string;
  /** Square edge in pixels. */
  size: number;
}

/** The exact request body (field names and types as Daraja's sample: Amount a number, Size a string). */
export interface DynamicQrBody {
  MerchantName: string;
  RefNo: string;
  Amount: number;
  TrxCode: QrTrxCode;
  CPI: string;
  Size: string;
}

export interface DynamicQrResult {
  /** The PNG, base64 as Daraja sent it (cleaned of whitespace and the sample's trailing '.'). */
  pngBase64: string;
  /** Pixel edge read from the PNG header. */
  width: number;
  height: number;
  /** Daraja's ResponseCode (a conversation id in the official sample, "00" / "0" in SDK fixtures: not switched on). */
  responseCode?: string;
  requestId?: string;
  responseDescription?: string;
}

/** Characters kept in MerchantName: letters, digits, space and `. , & ' -`. */
export function fitMerchantName(raw: string): string {
  const cleaned = raw
    .normalize('NFKD')
    .replace(/\p{M}+/gu, '')
    .replace(/[^A-Za-z0-9 .,&'-]/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();
  return cleaned.slice(0, QR_MERCHANT_NAME_MAX).trimEnd();
}

export function buildDynamicQrBody(input: DynamicQrInput): DynamicQrBody {
  const { amount, cpi, refNo, size, trxCode } = input;
  if (!Number.isSafeInteger(amount) || amount < 1 || amount > QR_MAX_AMOUNT)
    throw new ValidationFailedError(`An M-Pesa QR is for a whole number of shillings from 1 to ${QR_MAX_AMOUNT}`, {
      field: 'amount',
    });
  if (trxCode !== 'BG' && trxCode !== 'PB')
    throw new ValidationFailedError('trxCode must be BG (till) or PB (paybill)', { field: 'trxCode' });
  if (!/^\d{5,7}$/.test(cpi))
    throw new ValidationFailedError('The till or paybill number must be 5 to 7 digits', { field: 'cpi' });
  if (!/^[A-Za-z0-9._-]{1,20}$/.test(refNo))
    throw new ValidationFailedError(
      `A paybill account number is at most ${QR_REF_NO_MAX} letters, digits, '.', '_' or '-'`,
      { field: 'refNo' },
    );
  if (!Number.isSafeInteger(size) || size < QR_SIZE_MIN || size > QR_SIZE_MAX)
    throw new ValidationFailedError(`size must be ${QR_SIZE_MIN} to ${QR_SIZE_MAX} pixels`, { field: 'size' });
  const merchantName = fitMerchantName(input.merchantName);
  if (!merchantName)
    throw new ValidationFailedError('The merchant name has nothing M-Pesa can show', { field: 'merchantName' });
  return { MerchantName: merchantName, RefNo: refNo, Amount: amount, TrxCode: trxCode, CPI: cpi, Size: String(size) };
}

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

function text(v: unknown): string | undefined {
  if (typeof v === 'string' && v.length > 0) return v;
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  return undefined;
}

/**
 * Reads a 2xx answer: success is a `QRCode` that decodes to a PNG (whatever ResponseCode says,
 * daraja-more.md §1). Anything else is a ProviderError 'bad_response' (nothing was charged: a QR
 * request moves no money).
 */
export function parseDynamicQrAnswer(json: unknown): DynamicQrResult {
  if (!isPlainObject(json))
    throw new ProviderError('mpesa', 'bad_response', 'M-Pesa answered the QR request without a JSON body');
  const raw = json.QRCode;
  if (typeof raw !== 'string' || raw.trim() === '')
    throw new ProviderError(
      'mpesa',
      'bad_response',
      `M-Pesa answered the QR request without a QR code${text(json.ResponseDescription) ? ` (${text(json.ResponseDescription)})` : ''}`,
      { providerCode: text(json.ResponseCode) },
    );
  const b64 = raw.replace(/\s+/g, '').replace(/\.+$/, '');
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64))
    throw new ProviderError('mpesa', 'bad_response', 'M-Pesa sent a QR code that is not base64');
  const png = Buffer.from(b64, 'base64');
  if (png.length < 24 || !png.subarray(0, 8).equals(PNG_SIGNATURE) || png.toString('latin1', 12, 16) !== 'IHDR')
    throw new ProviderError('mpesa', 'bad_response', 'M-Pesa sent a QR code that is not a PNG image');
  return {
    pngBase64: png.toString('base64'),
    width: png.readUInt32BE(16),
    height: png.readUInt32BE(20),
    responseCode: text(json.ResponseCode),
    requestId: text(json.RequestID),
    responseDescription: text(json.ResponseDescription),
  };
}
