/**
 * @smartduka/card-simulators — local, faithful fakes of Flutterwave v3 (Standard checkout, verify,
 * webhooks, M-Pesa charge, refunds) and Pesapal API 3.0 (token, IPN registration, SubmitOrderRequest,
 * GetTransactionStatus, IPNs, refunds, cancel), each with a hosted checkout page and a /__sim control API.
 * Two independent servers: startFlutterwaveSimulator() and startPesapalSimulator().
 * Wire formats follow /work/shared/reference/{flutterwave,pesapal}.md; see README.md.
 */
export { startFlutterwaveSimulator } from './flutterwave';
export { startPesapalSimulator } from './pesapal';

export type {
  FlutterwaveSimulator,
  FlutterwaveSimulatorOptions,
  FlwApiCall,
  FlwCannedError,
  FlwCard,
  FlwCheckout,
  FlwCheckoutState,
  FlwCompletion,
  FlwCustomer,
  FlwCustomizations,
  FlwEndpoint,
  FlwFaults,
  FlwMerchant,
  FlwOutcome,
  FlwPaymentType,
  FlwRefund,
  FlwRefundStatus,
  FlwSettings,
  FlwSettlement,
  FlwStats,
  FlwTamper,
  FlwTransaction,
  FlwTransactionStatus,
  FlwWebhookDelivery,
  FlwWebhookShape,
} from './flutterwave/types';
export { FLW_ENDPOINTS } from './flutterwave/types';
export {
  FLW_DEFAULT_CLI_PORT,
  FLW_DEFAULT_MERCHANT,
  FLW_DEFAULT_SECRET_HASH,
  FLW_DEFAULT_SECRET_KEY,
} from './flutterwave/options';
export { FLW_DEFAULT_CURRENCY, payloadHash as flutterwavePayloadHash } from './flutterwave/validation';
export { FLW_DEFAULT_MERCHANT_ID, FLW_NOT_FOUND_MESSAGE } from './flutterwave/core';
export { parseFlwFaults } from './flutterwave/control-routes';

export type {
  PesapalApiCall,
  PesapalCannedError,
  PesapalCompletion,
  PesapalEndpoint,
  PesapalFaults,
  PesapalIpnDelivery,
  PesapalIpnRegistration,
  PesapalIpnType,
  PesapalMerchant,
  PesapalOrder,
  PesapalOrderState,
  PesapalOutcome,
  PesapalPaymentMethod,
  PesapalRefundRequest,
  PesapalSettings,
  PesapalSettlement,
  PesapalSimulator,
  PesapalSimulatorOptions,
  PesapalStats,
  PesapalStatusCode,
  PesapalTamper,
} from './pesapal/types';
export { PESAPAL_ENDPOINTS, PESAPAL_PAYMENT_METHODS } from './pesapal/types';
export {
  PESAPAL_DEFAULT_CLI_PORT,
  PESAPAL_DEFAULT_CONSUMER_KEY,
  PESAPAL_DEFAULT_CONSUMER_SECRET,
} from './pesapal/options';
export { parsePesapalFaults } from './pesapal/control-routes';
export { judgeIpnAck, PESAPAL_DEFAULT_MERCHANT_ID } from './pesapal/core';

export type { NotificationDelivery, NotificationFaults, RetryPolicy } from './shared/notifier';
export { SimulatorError } from './shared/control';
export type { SimulatorErrorKind } from './shared/control';
