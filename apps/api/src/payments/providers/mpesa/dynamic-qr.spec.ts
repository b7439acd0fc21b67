import { ProviderError } from '../provider-errors';
import { buildDynamicQrBody, fitMerchantName, parseDynamicQrAnswer } from './dynamic-qr';

/** A 1x1 PNG (signature, IHDR 1x1, IDAT, IEND). */
const PNG_1x1 = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==';

describe('Dynamic QR request', () => {
  const input = {
    merchantName: 'Mama Mboga Shop',
    refNo: 'ORD-1001',
    amount: 150,
    trxCode: 'PB' as const,
    cpi: '600111',
    size: 300,
  };

  it('has exactly Daraja’s fields and types (Amount a number, Size a string)', () => {
    expect(buildDynamicQrBody(input)).toStrictEqual({
      MerchantName: 'Mama Mboga Shop',
      RefNo: 'ORD-1001',
      Amount: 150,
      TrxCode: 'PB',
      CPI: '600111',
      Size: '300',
    });
  });

  it.each([
    [{ amount: 0 }, 'amount'],
    [{ amount: 10.5 }, 'amount'],
    [{ amount: 250_001 }, 'amount'],
    [{ cpi: '12' }, 'cpi'],
    [{ refNo: 'x'.repeat(21) }, 'refNo'],
    [{ refNo: 'ORD 1' }, 'refNo'],
    [{ size: 50 }, 'size'],
    [{ merchantName: '@@@' }, 'merchantName'],
    [{ trxCode: 'SM' }, 'trxCode'],
  ])('refuses %j (field %s)', (patch, field) => {
    expect(() => buildDynamicQrBody({ ...input, ...(patch as object) })).toThrow(
      expect.objectContaining({ details: expect.objectContaining({ field }) }),
    );
  });

  it('keeps the amount limits inclusive: 1 and 250000 are fine', () => {
    expect(buildDynamicQrBody({ ...input, amount: 1 }).Amount).toBe(1);
    expect(buildDynamicQrBody({ ...input, amount: 250_000 }).Amount).toBe(250_000);
  });

  it('fits the merchant name: accents folded, odd characters dropped, 40 characters', () => {
    expect(fitMerchantName('  Café  <Duka>\tBora ')).toBe('Cafe Duka Bora');
    expect(fitMerchantName('A'.repeat(50))).toHaveLength(40);
  });
});

describe('Dynamic QR answer', () => {
  it('reads the PNG and its size whatever ResponseCode says', () => {
    const r = parseDynamicQrAnswer({
      ResponseCode: 'AG_20191219_000043fdf61864fe9ff5',
      RequestID: '16738-27456357-1',
      ResponseDescription: 'QR Code Successfully Generated.',
      QRCode: PNG_1x1,
    });
    expect(r).toMatchObject({
      width: 1,
      height: 1,
      responseCode: 'AG_20191219_000043fdf61864fe9ff5',
      requestId: '16738-27456357-1',
    });
    expect(Buffer.from(r.pngBase64, 'base64').subarray(1, 4).toString()).toBe('PNG');
  });

  it('takes the official sample’s trailing dot and line breaks', () => {
    const wrapped = `${PNG_1x1.slice(0, 30)}\n${PNG_1x1.slice(30)}.`;
    expect(parseDynamicQrAnswer({ ResponseCode: '00', QRCode: wrapped }).pngBase64).toBe(PNG_1x1);
  });

  it.each([
    ['no body', undefined],
    ['no QRCode', { ResponseCode: '00', ResponseDescription: 'Failed' }],
    ['empty QRCode', { QRCode: '' }],
    ['not base64', { QRCode: '%%%' }],
    ['not a PNG', { QRCode: Buffer.from('GIF89a-not-a-png-at-all-really').toString('base64') }],
  ])('refuses %s as a bad response', (_, json) => {
    expect(() => parseDynamicQrAnswer(json)).toThrow(ProviderError);
    try {
      parseDynamicQrAnswer(json);
    } catch (e) {
      expect((e as ProviderError).kind).toBe('bad_response');
    }
  });
});
