import { describeMpesaQr, describeQrFailure } from '../web/mpesa-qr';

const err = (status: number, code: string, message = 'x') => ({
  status,
  body: { statusCode: status, code, message, requestId: 'req-1' },
});

describe('the M-Pesa QR for the cashier', () => {
  it('says where a paybill QR pays, with the order as account number', () => {
    const text = describeMpesaQr({
      type: 'paybill',
      businessNumber: '600111',
      accountNumber: 'POS-1',
      amount: 450,
      merchantName: 'Duka',
    });
    expect(text).toContain('paybill 600111, account POS-1');
    expect(text).toContain('450');
    expect(text).toContain('M-PESA app');
  });

  it('says a till QR is Buy Goods to the till', () => {
    expect(
      describeMpesaQr({
        type: 'till',
        businessNumber: '5123456',
        accountNumber: null,
        amount: 75,
        merchantName: 'Duka',
      }),
    ).toContain('till 5123456 (Buy Goods)');
  });

  it('a timeout or provider failure never says a prompt may be open: nothing was charged, try again', () => {
    for (const status of [502, 503, 504]) {
      const p = describeQrFailure(err(status, 'PROVIDER_TIMEOUT'));
      expect(p).toMatchObject({ action: 'retry-same' });
      expect(p.message).toContain('Nothing was charged');
      expect(p.message).not.toMatch(/prompt\b.*may/);
    }
  });

  it("keeps the API's own words for what the cashier can fix (a paid order, cents)", () => {
    const p = describeQrFailure(
      err(400, 'MPESA_WHOLE_SHILLINGS', 'M-Pesa takes whole shillings: this order still owes cents'),
    );
    expect(p).toMatchObject({
      action: 'fix-input',
      message: 'M-Pesa takes whole shillings: this order still owes cents',
    });
  });
});
