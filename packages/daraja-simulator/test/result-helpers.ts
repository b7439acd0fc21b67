/** Helpers for the Reversal / Transaction Status tests, written independently of src/ (certificate read from certs/). */
import { constants, publicEncrypt } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { DarajaSimulator } from '../src';
import { postJson, pushBody, SHORTCODE, stkPush, type HttpResult, type Receiver } from './helpers';

export const CERT_PEM = readFileSync(join(__dirname, '..', 'certs', 'simulator-test-cert.pem'), 'utf8');
/** `openssl x509 -in certs/simulator-test-cert.pem -noout -fingerprint -sha256` */
export const CERT_SHA256 =
  '46:B2:82:FE:0D:67:B2:80:A8:35:AA:37:90:4F:0A:65:AD:1E:08:5E:FC:2C:F3:F0:35:BA:43:A1:BA:A0:EF:55';
export const INITIATOR = 'testapi';
export const INITIATOR_PASSWORD = 'Safaricom999!*!';

/** base64(RSA PKCS#1 v1.5 encrypt(password)) with a certificate's public key (daraja.md §5.3). */
export function credential(
  password = INITIATOR_PASSWORD,
  certPem = CERT_PEM,
  padding = constants.RSA_PKCS1_PADDING,
): string {
  return publicEncrypt({ key: certPem, padding }, Buffer.from(password, 'utf8')).toString('base64');
}

export function reversalBody(
  receiver: Receiver,
  transactionId: string,
  overrides: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    Initiator: INITIATOR,
    SecurityCredential: credential(),
    CommandID: 'TransactionReversal',
    TransactionID: transactionId,
    Amount: '1',
    ReceiverParty: SHORTCODE,
    RecieverIdentifierType: '11',
    ResultURL: `${receiver.url}/hooks/daraja/reversal/result`,
    QueueTimeOutURL: `${receiver.url}/hooks/daraja/reversal/timeout`,
    Remarks: 'Payment reversal',
    Occasion: '',
    ...overrides,
  };
}

export function statusBody(receiver: Receiver, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    Initiator: INITIATOR,
    SecurityCredential: credential(),
    CommandID: 'TransactionStatusQuery',
    PartyA: SHORTCODE,
    IdentifierType: '4',
    ResultURL: `${receiver.url}/hooks/daraja/status/result`,
    QueueTimeOutURL: `${receiver.url}/hooks/daraja/status/timeout`,
    Remarks: 'OK',
    Occasion: 'OK',
    ...overrides,
  };
}

export function reverse(baseUrl: string, token: string, body: unknown): Promise<HttpResult> {
  return postJson(`${baseUrl}/mpesa/reversal/v1/request`, token, body);
}

export function transactionStatus(baseUrl: string, token: string, body: unknown): Promise<HttpResult> {
  return postJson(`${baseUrl}/mpesa/transactionstatus/v1/query`, token, body);
}

export interface Accepted {
  OriginatorConversationID: string;
  ConversationID: string;
  ResponseCode: string;
  ResponseDescription: string;
}

export interface ResultMessage {
  Result: {
    ResultType: number;
    ResultCode: number | string;
    ResultDesc: string;
    OriginatorConversationID: string;
    ConversationID: string;
    TransactionID: string;
    ResultParameters?: { ResultParameter: Array<{ Key: string; Value?: string | number }> };
    ReferenceData: { ReferenceItem: { Key: string; Value: string } };
  };
}

export function expectAccepted(res: HttpResult): Accepted {
  expect(res.status).toBe(200);
  const body = res.json as Accepted;
  expect(Object.keys(body).sort()).toEqual([
    'ConversationID',
    'OriginatorConversationID',
    'ResponseCode',
    'ResponseDescription',
  ]);
  expect(body.ResponseCode).toBe('0');
  expect(body.ResponseDescription).toBe('Accept the service request successfully.');
  expect(body.ConversationID).toMatch(/^AG_\d{8}_[0-9a-f]{20}$/);
  expect(body.OriginatorConversationID.length).toBeGreaterThan(10);
  return body;
}

/** The ResultParameter list as a Key → Value map (keys asserted unique). */
export function params(message: ResultMessage): Record<string, string | number | undefined> {
  const list = message.Result.ResultParameters?.ResultParameter ?? [];
  const out: Record<string, string | number | undefined> = {};
  for (const p of list) {
    expect(out).not.toHaveProperty(p.Key);
    out[p.Key] = p.Value;
  }
  return out;
}

/** Bodies the receiver got on one path, parsed. */
export function bodiesAt(receiver: Receiver, path: string): ResultMessage[] {
  return receiver.received.filter((r) => r.url === path).map((r) => JSON.parse(r.raw) as ResultMessage);
}

/** Makes a real STK payment of `amount` through the simulator and returns its M-Pesa receipt. */
export async function pay(
  sim: DarajaSimulator,
  token: string,
  receiver: Receiver,
  amount = 10,
  overrides: Record<string, unknown> = {},
): Promise<string> {
  const res = await stkPush(
    sim.url,
    token,
    pushBody(`${receiver.url}/hooks/daraja/stk/pay`, { Amount: amount, ...overrides }),
  );
  expect(res.status).toBe(200);
  const id = (res.json as { CheckoutRequestID: string }).CheckoutRequestID;
  const [delivery] = await sim.waitForCallbacks(id);
  const items = (
    delivery?.body as {
      Body: { stkCallback: { CallbackMetadata: { Item: Array<{ Name: string; Value?: unknown }> } } };
    }
  ).Body.stkCallback.CallbackMetadata.Item;
  const receipt = items.find((i) => i.Name === 'MpesaReceiptNumber')?.Value;
  expect(typeof receipt).toBe('string');
  return receipt as string;
}

/** Waits for the single Result of an accepted request and returns its parsed body. */
export async function resultOf(sim: DarajaSimulator, accepted: Accepted): Promise<ResultMessage> {
  const [delivery] = await sim.waitForResults(accepted.ConversationID);
  expect(delivery?.target).toBe('result');
  return delivery?.body as ResultMessage;
}
