import { ProviderError } from '../provider-errors';
import { DYNAMIC_QR_PATH } from './dynamic-qr';
import { darajaError, FakeDaraja, makeAccount, makeService, OAUTH_PATH, withFakeDaraja } from './fake-daraja.testing';

const BODY = { MerchantName: 'Duka', RefNo: 'ORD-1', Amount: 10, TrxCode: 'PB', CPI: '600111', Size: '300' };

describe('DarajaService.postProduct (Dynamic QR, Pull Transactions)', () => {
  let fake: FakeDaraja;
  withFakeDaraja((f) => {
    fake = f;
  });
  const post = () =>
    makeService(fake.baseUrl).postProduct(makeAccount(fake.baseUrl), {
      path: DYNAMIC_QR_PATH,
      body: BODY,
      what: 'QR code request',
    });

  it('sends the body as JSON with the bearer token and returns the JSON answer', async () => {
    fake.products[DYNAMIC_QR_PATH] = () => ({ status: 200, body: { QRCode: 'abc' } });
    await expect(post()).resolves.toEqual({ status: 200, json: { QRCode: 'abc' } });
    const [req] = fake.of(DYNAMIC_QR_PATH);
    expect(req.method).toBe('POST');
    expect(req.headers.authorization).toBe('Bearer tok-1');
    expect(req.headers['content-type']).toMatch(/application\/json/);
    expect(req.json).toEqual(BODY);
  });

  it('refreshes a rejected token once and repeats the call', async () => {
    fake.products[DYNAMIC_QR_PATH] = (_r, n) =>
      n === 1 ? darajaError(401, '404.001.03', 'Invalid Access Token') : { status: 200, body: { QRCode: 'abc' } };
    await expect(post()).resolves.toMatchObject({ status: 200 });
    expect(fake.of(DYNAMIC_QR_PATH).map((r) => r.headers.authorization)).toEqual(['Bearer tok-1', 'Bearer tok-2']);
    expect(fake.count(OAUTH_PATH)).toBe(2);
  });

  it('gives up after a second rejected token (auth), and maps other refusals like every product', async () => {
    fake.products[DYNAMIC_QR_PATH] = () => darajaError(401, '404.001.03', 'Invalid Access Token');
    await expect(post()).rejects.toMatchObject({ kind: 'auth' });
    expect(fake.count(DYNAMIC_QR_PATH)).toBe(2);

    fake.products[DYNAMIC_QR_PATH] = () => darajaError(400, '400', 'Bad Request - Invalid TrxCode');
    const err = await post().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProviderError);
    expect(err).toMatchObject({ kind: 'rejected', providerCode: '400', providerHttpStatus: 400 });

    fake.products[DYNAMIC_QR_PATH] = () => ({ status: 404 });
    await expect(post()).rejects.toMatchObject({ kind: 'rejected', providerHttpStatus: 404 });
    fake.products[DYNAMIC_QR_PATH] = () => darajaError(500, '500.003.02', 'Spike arrest violation');
    await expect(post()).rejects.toMatchObject({ kind: 'rate_limited' });
  });
});
