import { Logger } from '@nestjs/common';
import type { AuthUser } from '../../../auth/auth.types';
import { AppError, ConflictError, NotFoundError } from '../../../common/errors';
import type { OrdersPort } from '../../../orders/orders.port';
import { MerchantAccountsService } from '../../merchant-accounts.service';
import type { ResolvedAccount } from '../../merchant-accounts.types';
import { ProviderError } from '../provider-errors';
import { DarajaService } from './daraja.service';
import type { DarajaAccount } from './daraja.types';
import { buildDynamicQrBody, DYNAMIC_QR_PATH, parseDynamicQrAnswer, QR_MAX_AMOUNT, QR_REF_NO_MAX } from './dynamic-qr';

/** What GET /orders/:id/mpesa-qr answers. */
export interface MpesaQrAnswer {
  orderId: string;
  /** The order's outstanding amount when the QR was made, whole KES: what the payer's app fills in. */
  amount: number;
  currency: 'KES';
  /** till: Buy Goods (BG) to the till number; paybill: Pay Bill (PB) to the paybill with the order id as account number. */
  type: 'till' | 'paybill';
  /** The till or paybill number the QR pays (the CPI). */
  businessNumber: string;
  /** The account number the payer's app fills in (paybill: the order id, which comes back as the confirmation's BillRefNumber); null for a till. */
  accountNumber: string | null;
  merchantName: string;
  /** The PNG, base64 (as Daraja sent it): show it as `data:image/png;base64,…`. */
  pngBase64: string;
  width: number;
  height: number;
}

/**
 * Dynamic QR for an order (daraja-more.md §1): the shop's till or paybill and the order's
 * OUTSTANDING amount, never one the client sends. Moves no money and writes nothing: the payment
 * the scan produces is a C2B payment, reported by the shortcode's confirmation URL.
 */
export class MpesaQrService {
  private readonly logger = new Logger(MpesaQrService.name);

  constructor(
    private readonly orders: OrdersPort,
    private readonly accounts: MerchantAccountsService,
    private readonly daraja: DarajaService,
    private readonly toDaraja: (account: ResolvedAccount) => DarajaAccount,
    private readonly defaults: { merchantName: string; size: number },
    /** The order's payment in flight (or of unknown outcome) that keeps it from taking another, if any. */
    private readonly blockingPayment: (shopId: string, orderId: string) => Promise<{ id: string } | null>,
    /** Whether the C2B URLs in force for this merchant account row's shortcode are its shop's (null: the platform's, never). */
    private readonly c2bRegistered: (accountId: string | null) => Promise<boolean>,
  ) {}

  async forOrder(user: AuthUser, orderId: string): Promise<MpesaQrAnswer> {
    const balance = await this.orders.getBalance(user.shopId, orderId);
    if (!balance) throw new NotFoundError('Order', { orderId });
    if (balance.currency !== 'KES')
      throw new AppError('MPESA_CURRENCY', `M-Pesa takes KES only; this order is in ${balance.currency}`, 400);
    if (balance.outstandingMinor <= 0n)
      throw new ConflictError(
        'ORDER_ALREADY_PAID',
        `Order ${orderId} is already fully paid: there is nothing to pay by QR`,
        {
          orderId,
        },
      );
    // A prompt on the customer's phone (or one whose outcome is unknown) may still be paid: a QR
    // beside it invites a second payment, which the order could not take (it would wait in review).
    const blocking = await this.blockingPayment(user.shopId, orderId);
    if (blocking)
      throw new ConflictError(
        'PAYMENT_IN_PROGRESS',
        `Order ${orderId} has a payment waiting for the customer (or of unknown outcome): wait for it to finish before showing a QR`,
        { orderId, paymentId: blocking.id },
      );
    if (balance.outstandingMinor % 100n !== 0n)
      throw new AppError(
        'MPESA_WHOLE_SHILLINGS',
        'M-Pesa takes whole shillings: this order still owes cents, so it cannot be paid exactly by QR',
        400,
      );
    const amount = Number(balance.outstandingMinor / 100n);
    if (amount > QR_MAX_AMOUNT)
      throw new AppError(
        'PROVIDER_LIMIT',
        `One M-Pesa payment is at most KES ${QR_MAX_AMOUNT}; this order owes KES ${amount}`,
        400,
      );
    const resolved = await this.accounts.resolveForPayment(user.shopId, 'mpesa');
    // A chain branch pays into its head office's account: the QR's confirmation arrives on the head
    // office's URLs and is that shop's row (its feed, its orders), so the branch could never claim
    // it nor would its BillRefNumber find the branch's order. No QR, before Daraja is asked.
    if (resolved.accountId !== null && resolved.shopAccountId !== resolved.accountId)
      throw new AppError(
        'C2B_NOT_AVAILABLE',
        "M-Pesa QR is not available for a branch that takes M-Pesa with its head office's account: the QR's payment would reach the head office, not this shop. Take the payment by STK push",
        409,
      );
    // The QR's payment reaches us only as a C2B confirmation on the account's registered URLs (a
    // chain branch's: its head office's account, the credentials row). Without them the customer
    // would pay and nothing here would ever see it: no QR, before Daraja is asked.
    if (!(await this.c2bRegistered(resolved.accountId)))
      throw new AppError(
        'C2B_NOT_AVAILABLE',
        resolved.accountId === null
          ? "M-Pesa QR is not set up for this shop: it takes M-Pesa with the platform's account, whose QR payments would not be seen here. Take the payment by STK push (a manager can add the shop's own till or paybill under Settings > Payments)"
          : 'M-Pesa QR is not set up for this shop yet: its till / paybill payments are not registered, so a QR payment would not be seen here. Take the payment by STK push (a manager registers them under Settings > Payments)',
        409,
      );
    const account = this.toDaraja(resolved);
    const till = account.transactionType === 'till';
    if (!till && orderId.length > QR_REF_NO_MAX)
      throw new AppError(
        'MPESA_ACCOUNT_NUMBER_TOO_LONG',
        `A paybill account number holds at most ${QR_REF_NO_MAX} characters and this order id has ${orderId.length}: M-Pesa would not bring it back whole, so no QR is made (take the payment by STK push instead)`,
        400,
      );
    const businessNumber = till ? (account.tillNumber as string) : account.shortcode;
    const merchantName = resolved.settings.merchantName ?? this.defaults.merchantName;
    const body = buildDynamicQrBody({
      merchantName,
      // A till has no account number; the reference is only a label there, so the id's end is enough.
      refNo: till ? orderId.slice(-QR_REF_NO_MAX) : orderId,
      amount,
      trxCode: till ? 'BG' : 'PB',
      cpi: businessNumber,
      size: this.defaults.size,
    });
    let json;
    try {
      ({ json } = await this.daraja.postProduct(account, {
        path: DYNAMIC_QR_PATH,
        body: { ...body },
        what: 'QR code request',
        readOnly: true,
        logContext: `shortcode=${account.shortcode} type=${account.transactionType} amount=${amount}`,
      }));
    } catch (err) {
      // A QR moves no money: a 5xx or a timeout here leaves no "outcome unknown" behind, whatever
      // the generic provider message says. Say so, in words a till can show.
      if (err instanceof ProviderError && (err.kind === 'unavailable' || err.kind === 'timeout'))
        throw new ProviderError(
          err.provider,
          err.kind,
          `M-Pesa did not make the QR code just now${err.providerMessage ? ` (${err.providerMessage})` : ''}. Nothing was charged: ask for the QR again, or send an M-Pesa prompt instead`,
          {
            providerHttpStatus: err.providerHttpStatus,
            providerCode: err.providerCode,
            providerMessage: err.providerMessage,
            providerRequestId: err.providerRequestId,
            retryAfterSeconds: err.retryAfterSeconds,
          },
        );
      throw err;
    }
    const qr = parseDynamicQrAnswer(json);
    this.logger.log(
      `QR code made for an order: type=${account.transactionType} amount=${amount} ${qr.width}x${qr.height}`,
    );
    return {
      orderId,
      amount,
      currency: 'KES',
      type: till ? 'till' : 'paybill',
      businessNumber,
      accountNumber: till ? null : orderId,
      merchantName: body.MerchantName,
      pngBase64: qr.pngBase64,
      width: qr.width,
      height: qr.height,
    };
  }
}
