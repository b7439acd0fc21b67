import { randomInt } from 'node:crypto';
import { accountEnvironment, refuseUnknownFields } from '../../merchant-account-fields';
import { ValidationFailedError } from '../../../common/errors';
import { AppConfig, MPESA_BASE_URLS } from '../../../config/app-config';
import type { AccountInput, AccountKind, ResolvedAccount, VerificationPart } from '../../merchant-accounts.types';
import { ProviderError } from '../provider-errors';
import { DarajaService } from './daraja.service';
import type { DarajaAccount, MpesaEnvironment } from './daraja.types';
import { nairobiTimestamp } from './nairobi-time';

const SHORTCODE = /^\d{5,7}$/;
const PASSKEY = /^[0-9a-f]{64}$/i;
const CREDENTIAL = /^[\x21-\x7e]{1,200}$/;
const INITIATOR_NAME = /^[A-Za-z0-9 ._-]{1,64}$/;
const OWN_FIELDS = [
  'environment',
  'type',
  'shortcode',
  'tillNumber',
  'consumerKey',
  'consumerSecret',
  'passkey',
  'initiatorName',
  'initiatorPassword',
  'merchantName',
];
/** A chain branch brings only where its money goes; the credentials and store number are the head office's. */
const LINKED_FIELDS = ['environment', 'type', 'tillNumber', 'merchantName'];

/**
 * M-Pesa (Daraja) merchant accounts: paybill, or till under a store / head-office number
 * (BusinessShortCode = store number, PartyB = till, daraja.md §2.1), with the Daraja app's
 * consumer key/secret, the Lipa-na-M-Pesa passkey, and optionally the initiator (API operator)
 * for reversals and transaction status.
 */
export class MpesaAccountKind implements AccountKind {
  readonly provider = 'mpesa' as const;
  readonly label = 'M-Pesa';
  readonly secretFields = ['consumerKey', 'consumerSecret', 'passkey', 'initiatorPassword'] as const;

  constructor(
    private readonly config: AppConfig,
    private readonly daraja: DarajaService,
  ) {}

  parse(body: Record<string, unknown>, linked: boolean): AccountInput {
    refuseUnknownFields(body, { own: OWN_FIELDS, linked: LINKED_FIELDS }, linked, 'M-Pesa');
    const environment = accountEnvironment(body.environment, this.config.mpesa.env);
    const type = body.type;
    if (type !== 'paybill' && type !== 'till')
      throw new ValidationFailedError('type must be "paybill" or "till"', { field: 'type' });
    const settings: Record<string, string> = { type };
    if (!linked)
      settings.shortcode = digits(body.shortcode, 'shortcode', type === 'till' ? 'store number' : 'paybill number');
    if (type === 'till') {
      if (body.tillNumber === undefined || body.tillNumber === null || body.tillNumber === '')
        throw new ValidationFailedError(
          'A till needs its till number (tillNumber); the shortcode is the store / head-office number',
          { field: 'tillNumber' },
        );
      settings.tillNumber = digits(body.tillNumber, 'tillNumber', 'till number');
    } else if (body.tillNumber !== undefined) {
      throw new ValidationFailedError('A paybill has no till number: leave tillNumber out', { field: 'tillNumber' });
    }
    if (body.merchantName !== undefined) {
      // What the payer's M-PESA app shows for a Dynamic QR of this shop (else MPESA_QR_MERCHANT_NAME).
      if (typeof body.merchantName !== 'string' || !/^[A-Za-z0-9 .,&'-]{1,40}$/.test(body.merchantName.trim()))
        throw new ValidationFailedError(
          "merchantName must be the shop's name as M-Pesa shows it: 1 to 40 letters, digits, spaces or . , & ' -",
          { field: 'merchantName' },
        );
      settings.merchantName = body.merchantName.trim();
    }
    if (linked) return { environment, settings, secrets: null };

    const secrets: Record<string, string> = {
      consumerKey: credential(body.consumerKey, 'consumerKey', 'consumer key'),
      consumerSecret: credential(body.consumerSecret, 'consumerSecret', 'consumer secret'),
      passkey: passkey(body.passkey),
    };
    if (body.initiatorName !== undefined || body.initiatorPassword !== undefined) {
      if (typeof body.initiatorName !== 'string' || !INITIATOR_NAME.test(body.initiatorName))
        throw new ValidationFailedError(
          'initiatorName must be the API operator name from the M-Pesa portal (letters, digits, space, . _ -)',
          { field: 'initiatorName' },
        );
      settings.initiatorName = body.initiatorName;
      if (typeof body.initiatorPassword !== 'string' || !/^[\x20-\x7e]{4,128}$/.test(body.initiatorPassword))
        throw new ValidationFailedError(
          'initiatorPassword is required with initiatorName (4 to 128 printable characters)',
          {
            field: 'initiatorPassword',
          },
        );
      secrets.initiatorPassword = body.initiatorPassword;
    }
    return { environment, settings, secrets };
  }

  platformAccount(): ResolvedAccount | null {
    const m = this.config.mpesa;
    if (!m.consumerKey || !m.consumerSecret || !m.passkey) return null;
    const settings: Record<string, string> = { type: m.transactionType, shortcode: m.shortcode };
    if (m.tillNumber) settings.tillNumber = m.tillNumber;
    const secrets: Record<string, string> = {
      consumerKey: m.consumerKey,
      consumerSecret: m.consumerSecret,
      passkey: m.passkey,
    };
    if (m.initiatorName && m.initiatorPassword) {
      settings.initiatorName = m.initiatorName;
      secrets.initiatorPassword = m.initiatorPassword;
    }
    return {
      accountId: null,
      shopAccountId: null,
      provider: 'mpesa',
      environment: m.env,
      settings,
      secrets,
    };
  }

  /** What DarajaService takes: the platform's account is its `default`. */
  toDaraja(account: ResolvedAccount): DarajaAccount {
    const s = account.settings;
    return {
      id: account.accountId ?? 'default',
      baseUrl: this.baseUrlFor(account.environment as MpesaEnvironment),
      consumerKey: account.secrets.consumerKey,
      consumerSecret: account.secrets.consumerSecret,
      shortcode: s.shortcode,
      passkey: account.secrets.passkey,
      transactionType: s.type === 'till' ? 'till' : 'paybill',
      tillNumber: s.tillNumber,
      initiatorName: s.initiatorName,
      initiatorPassword: account.secrets.initiatorPassword,
    };
  }

  /**
   * Without charging anyone: OAuth checks the key and secret; an STK query for a CheckoutRequestID
   * that cannot exist checks the shortcode and passkey (Daraja checks the Password before it looks
   * the id up: "Wrong credentials" / "Merchant does not exist" vs "The transaction does not
   * exist", daraja.md §2.3 and §3). The till number and the initiator are only checked by a real
   * push or a real reversal / status call: said so, never "ok".
   */
  async verify(account: ResolvedAccount): Promise<VerificationPart[]> {
    const daraja = this.toDaraja(account);
    const parts: VerificationPart[] = [];
    const keyPart = 'consumer key and secret';
    try {
      await this.daraja.verifyCredentials(daraja);
      parts.push({
        part: keyPart,
        result: 'ok',
        message: 'Daraja issued an access token for this consumer key and secret',
      });
    } catch (err) {
      parts.push({
        part: keyPart,
        ...refusal(err, 'Daraja did not issue a token: check the consumer key and secret and the environment'),
      });
    }
    const codePart = 'shortcode and passkey';
    if (parts[0].result !== 'ok') {
      parts.push({
        part: codePart,
        result: 'not_verifiable',
        message: 'Needs a working consumer key and secret first',
      });
    } else {
      try {
        const r = await this.daraja.queryStkStatus(probeCheckoutRequestId(), daraja);
        parts.push(
          r.kind === 'not_found'
            ? {
                part: codePart,
                result: 'ok',
                message: 'Daraja accepted the shortcode and passkey (a status query reached the lookup)',
              }
            : {
                part: codePart,
                result: 'not_verifiable',
                message: `Daraja answered the check unexpectedly (${r.kind})`,
              },
        );
      } catch (err) {
        const msg = err instanceof ProviderError ? (err.providerMessage ?? err.message).toLowerCase() : '';
        if (msg.includes('wrong credentials'))
          parts.push({
            part: codePart,
            result: 'failed',
            message: 'Daraja says the passkey does not belong to this shortcode (Wrong credentials)',
          });
        else if (msg.includes('merchant does not exist'))
          parts.push({
            part: codePart,
            result: 'failed',
            message: `Daraja does not know this shortcode in ${account.environment} (Merchant does not exist)`,
          });
        else parts.push({ part: codePart, ...refusal(err, 'Daraja refused the status query') });
      }
    }
    if (account.settings.type === 'till')
      parts.push({
        part: 'till number',
        result: 'not_verifiable',
        message:
          'Daraja checks the till number (PartyB) only on a real payment: take a 1 shilling payment to confirm it',
      });
    if (account.settings.initiatorName)
      parts.push({
        part: 'initiator',
        result: 'not_verifiable',
        message: 'The initiator name and password are checked by the first reversal or transaction status request',
      });
    return parts;
  }

  /** The deployment's own base URL for its own environment (it may point at a proxy or the simulator), else Safaricom's. */
  private baseUrlFor(env: MpesaEnvironment): string {
    const m = this.config.mpesa;
    if (env === m.env && m.baseUrl) return m.baseUrl;
    if (env === 'simulator') throw new Error('simulator accounts need the deployment to run the simulator');
    return MPESA_BASE_URLS[env];
  }
}

function digits(v: unknown, field: string, what: string): string {
  const s = typeof v === 'number' && Number.isSafeInteger(v) ? String(v) : v;
  if (typeof s !== 'string' || s === '')
    throw new ValidationFailedError(`${field} is required: the ${what}`, { field });
  if (!SHORTCODE.test(s)) throw new ValidationFailedError(`${field} must be the ${what}: 5 to 7 digits`, { field });
  return s;
}

function credential(v: unknown, field: string, what: string): string {
  if (typeof v !== 'string' || v === '')
    throw new ValidationFailedError(`${field} is required: the Daraja app's ${what}`, { field });
  if (!CREDENTIAL.test(v))
    throw new ValidationFailedError(`${field} must be the Daraja app's ${what}: up to 200 characters, no spaces`, {
      field,
    });
  return v;
}

function passkey(v: unknown): string {
  if (typeof v !== 'string' || v === '')
    throw new ValidationFailedError(
      'passkey is required: the Lipa na M-Pesa Online passkey Safaricom sent at go-live',
      { field: 'passkey' },
    );
  if (!PASSKEY.test(v))
    throw new ValidationFailedError(
      `passkey must be the 64 hexadecimal characters Safaricom sent (got ${v.length} characters)`,
      { field: 'passkey' },
    );
  return v;
}

function refusal(err: unknown, fallback: string): Omit<VerificationPart, 'part'> {
  if (err instanceof ProviderError) {
    if (err.kind === 'auth' || err.kind === 'rejected')
      return { result: 'failed', message: `${fallback} (${err.providerCode ?? err.kind})` };
    return { result: 'not_verifiable', message: `M-Pesa could not be asked just now (${err.kind}): try again` };
  }
  return { result: 'not_verifiable', message: 'M-Pesa could not be asked just now: try again' };
}

/** A CheckoutRequestID Daraja never issued (real ones end with the payer's number; this one has none: not even digits that look like one). */
function probeCheckoutRequestId(): string {
  return `ws_CO_${nairobiTimestamp()}_smartduka_check_${randomInt(0, 1_000_000_000)}`;
}
