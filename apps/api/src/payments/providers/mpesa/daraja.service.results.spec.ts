import { constants, createPrivateKey, privateDecrypt } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from '../../../config/app-config';
import { verifyCallbackToken, verifyScopedCallbackToken } from './callback-token';
import {
  darajaError,
  FakeDaraja,
  makeAccount,
  makeService,
  mpesaError,
  okAsync,
  OAUTH_PATH,
  REVERSAL_PATH,
  SIGNING_SECRET,
  STATUS_PATH,
  withFakeDaraja,
} from './fake-daraja.testing';

const CERTS = join(REPO_ROOT, 'packages/daraja-simulator/certs');
const CERT_PEM = readFileSync(join(CERTS, 'simulator-test-cert.pem'), 'utf8');
const KEY = createPrivateKey(readFileSync(join(CERTS, 'simulator-test-key.pem'), 'utf8'));
const INITIATOR = { initiatorName: 'apiop37', initiatorPassword: 'Init!Pass#2024' };
const REFUND_ID = '5b0d7a43-2c1e-4f8a-9d3b-7e6f5a4b3c2d';

function decrypt(b64: string): string {
  const block = privateDecrypt({ key: KEY, padding: constants.RSA_NO_PADDING }, Buffer.from(b64, 'base64'));
  expect([block[0], block[1]]).toEqual([0, 2]);
  return block.subarray(block.indexOf(0, 2) + 1).toString('utf8');
}

const reversal = (patch: Record<string, unknown> = {}) => ({
  transactionId: 'PDU91HIVIT',
  amount: 200,
  remarks: 'Refund for order 10023',
  resultUrl: 'https://pay.example.com/payments/callback/refunds/r1/result/t',
  queueTimeOutUrl: 'https://pay.example.com/payments/callback/refunds/r1/timeout/t',
  ...patch,
});

describe('DarajaService: Reversal and Transaction Status', () => {
  let fake: FakeDaraja;
  let logs: { lines: string[] };
  withFakeDaraja((f, l) => {
    fake = f;
    logs = l;
  });
  const service = () => makeService(fake.baseUrl, { securityCertificatePem: CERT_PEM }, INITIATOR);

  it('sends the documented reversal body, with the password encrypted for the configured certificate', async () => {
    const accepted = await service().sendReversal(reversal());
    expect(accepted).toEqual({
      originatorConversationId: 'f1e2-4b95-a71d-b30d3cdbb7a773521',
      conversationId: 'AG_20210706_20106e9209f64bebd051',
      responseCode: '0',
      responseDescription: 'Accept the service request successfully.',
    });
    const [req] = fake.of(REVERSAL_PATH);
    expect(req.headers.authorization).toBe('Bearer tok-1');
    const { SecurityCredential, ...rest } = req.json;
    expect(rest).toEqual({
      Initiator: 'apiop37',
      CommandID: 'TransactionReversal',
      TransactionID: 'PDU91HIVIT',
      Amount: '200',
      ReceiverParty: '174379',
      RecieverIdentifierType: '11',
      ResultURL: 'https://pay.example.com/payments/callback/refunds/r1/result/t',
      QueueTimeOutURL: 'https://pay.example.com/payments/callback/refunds/r1/timeout/t',
      Remarks: 'Refund for order 10023',
      Occasion: '',
    });
    expect(decrypt(SecurityCredential)).toBe('Init!Pass#2024');
    expect(req.rawBody).not.toContain('Init!Pass#2024');
    expect(logs.lines.join('\n')).not.toContain('Init!Pass#2024');
    expect(logs.lines.join('\n')).not.toContain(SecurityCredential);
  });

  it('sends a Transaction Status query by receipt, or by OriginalConversationID', async () => {
    const s = service();
    const common = {
      remarks: 'Refund check',
      resultUrl: 'https://pay.example.com/payments/callback/refunds/r1/status/t',
      queueTimeOutUrl: 'https://pay.example.com/payments/callback/refunds/r1/status/t',
    };
    await s.queryTransactionStatus({ ...common, transactionId: 'NEF61H8J60' });
    await s.queryTransactionStatus({ ...common, originalConversationId: '7071-4170-a0e5-8345632bad442144258' });
    const [a, b] = fake.of(STATUS_PATH).map((r) => r.json);
    expect(decrypt(a.SecurityCredential)).toBe('Init!Pass#2024');
    delete a.SecurityCredential;
    expect(a).toEqual({
      Initiator: 'apiop37',
      CommandID: 'TransactionStatusQuery',
      TransactionID: 'NEF61H8J60',
      PartyA: '174379',
      IdentifierType: '4',
      ResultURL: common.resultUrl,
      QueueTimeOutURL: common.queueTimeOutUrl,
      Remarks: 'Refund check',
      Occasion: '',
    });
    expect(b.OriginalConversationID).toBe('7071-4170-a0e5-8345632bad442144258');
    expect(b.TransactionID).toBeUndefined();
    await expect(s.queryTransactionStatus({ ...common })).rejects.toThrow(/receipt or an OriginalConversationID/);
  });

  it('400.002.02 Invalid SecurityCredential: rejected, not processed, saying what to check', async () => {
    fake.reversal = () => darajaError(400, '400.002.02', 'Bad Request - Invalid SecurityCredential');
    const err = await service()
      .sendReversal(reversal())
      .catch((e: unknown) => e);
    expect(err).toEqual(mpesaError('rejected'));
    expect(err).toMatchObject({ outcome: 'not_processed', providerCode: '400.002.02' });
    expect((err as Error).message).toMatch(/initiator password .* certificate is the one for this environment/);
  });

  it('400.002.02 about another field is a plain rejection, not a credential problem', async () => {
    fake.reversal = () => darajaError(400, '400.002.02', 'Bad Request - Invalid Amount');
    const err = (await service()
      .sendReversal(reversal())
      .catch((e: unknown) => e)) as Error;
    expect(err).toMatchObject({ kind: 'rejected', outcome: 'not_processed' });
    expect(err.message).not.toMatch(/SecurityCredential/);
  });

  it('a non-zero ResponseCode is rejected; 5xx, a reset and an answer without ConversationID are outcome unknown', async () => {
    fake.reversal = () => ({ status: 200, body: { ResponseCode: '1', ResponseDescription: 'Rejected' } });
    await expect(service().sendReversal(reversal())).rejects.toMatchObject({
      kind: 'rejected',
      outcome: 'not_processed',
    });
    fake.reversal = () => darajaError(500, '500.003.1001', 'Internal Server Error');
    await expect(service().sendReversal(reversal())).rejects.toMatchObject({ outcome: 'unknown' });
    fake.reversal = () => 'destroy';
    await expect(service().sendReversal(reversal())).rejects.toMatchObject({ outcome: 'unknown' });
    fake.reversal = () => ({ status: 200, body: { ResponseCode: '0', ResponseDescription: 'ok' } });
    await expect(service().sendReversal(reversal())).rejects.toMatchObject({
      kind: 'bad_response',
      outcome: 'unknown',
    });
  });

  it('spike arrest is not processed; a rejected token is refreshed once and the reversal sent again', async () => {
    fake.reversal = () => darajaError(500, '500.003.02', 'Spike arrest violation');
    await expect(service().sendReversal(reversal())).rejects.toMatchObject({
      kind: 'rate_limited',
      outcome: 'not_processed',
    });
    fake.reversal = (_r, n) => (n === 3 ? darajaError(401, '404.001.03', 'Invalid Access Token') : okAsync(n));
    const s = service();
    await s.sendReversal(reversal());
    await expect(s.sendReversal(reversal())).resolves.toMatchObject({ responseCode: '0' });
    // the spike-arrested one (its own service, tok-1), then tok-2 twice, the second refused, then tok-3
    expect(fake.of(REVERSAL_PATH).map((r) => r.headers.authorization)).toEqual([
      'Bearer tok-1',
      'Bearer tok-2',
      'Bearer tok-2',
      'Bearer tok-3',
    ]);
  });

  it('refuses before sending anything: no initiator, no certificate, a bad amount, receipt or remarks', async () => {
    await expect(
      makeService(fake.baseUrl, { securityCertificatePem: CERT_PEM }).sendReversal(reversal()),
    ).rejects.toMatchObject({
      kind: 'auth',
      outcome: 'not_processed',
      message: expect.stringContaining('has no initiator'),
    });
    await expect(makeService(fake.baseUrl, {}, INITIATOR).sendReversal(reversal())).rejects.toMatchObject({
      outcome: 'not_processed',
      message: expect.stringContaining('No M-Pesa certificate'),
    });
    for (const bad of [
      { amount: 0 },
      { amount: 1.5 },
      { transactionId: 'x' },
      { remarks: 'x' },
      { remarks: 'y'.repeat(101) },
      { resultUrl: 'ftp://x' },
    ])
      await expect(service().sendReversal(reversal(bad))).rejects.toMatchObject({ statusCode: 400 });
    expect(fake.count(REVERSAL_PATH)).toBe(0);
    expect(fake.count(OAUTH_PATH)).toBe(0);
  });

  it('builds scoped capability URLs under the callback base, free of words Daraja refuses', () => {
    const s = makeService(fake.baseUrl);
    const url = s.scopedCallbackUrl('refund-result', REFUND_ID);
    const m = /^https:\/\/pay\.example\.com\/payments\/callback\/refunds\/([^/]+)\/result\/([0-9a-f]{64})$/.exec(url);
    expect(m?.[1]).toBe(REFUND_ID);
    expect(verifyScopedCallbackToken(SIGNING_SECRET, 'refund-result', REFUND_ID, m![2])).toBe(true);
    expect(verifyCallbackToken(SIGNING_SECRET, REFUND_ID, m![2])).toBe(false);
    expect(s.scopedCallbackUrl('refund-timeout', REFUND_ID)).toContain(`/refunds/${REFUND_ID}/timeout/`);
    expect(s.scopedCallbackUrl('refund-status', REFUND_ID)).toContain(`/refunds/${REFUND_ID}/status/`);
    expect(s.scopedCallbackUrl('payment-status', REFUND_ID)).toContain(`/payments/${REFUND_ID}/status/`);
    for (const scope of ['refund-result', 'refund-timeout', 'refund-status', 'payment-status'] as const)
      expect(s.scopedCallbackUrl(scope, REFUND_ID).toLowerCase()).not.toMatch(
        /mpesa|m-pesa|safaricom|exe|cmd|sql|query/,
      );
  });

  it('the account from makeAccount has no initiator unless given', () => {
    expect(makeAccount('http://x').initiatorName).toBeUndefined();
  });
});
