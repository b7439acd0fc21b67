import { startPesapalSimulator, type PesapalSimulator } from '../src';
import { call, jsonInit, orderBody, pesapal, pesapalAck, pesapalToken, startReceiver, type Receiver } from './helpers';

describe('Pesapal refunds: received only, approved (REVERSED + IPN) or rejected (no change, no IPN)', () => {
  let sim: PesapalSimulator;
  let receiver: Receiver;
  let token: string;
  let ipnId: string;

  beforeAll(async () => {
    receiver = await startReceiver();
    receiver.answer((r) => pesapalAck(r));
    sim = await startPesapalSimulator({ ipnRetry: { attempts: 0, intervalMs: 100 } });
  });
  afterAll(async () => {
    await sim.close();
    await receiver.close();
  });
  beforeEach(async () => {
    sim.reset({ full: true });
    receiver.received.length = 0;
    token = await pesapalToken(sim.url);
    const reg = await pesapal(sim.url, token, '/api/URLSetup/RegisterIPN', {
      url: `${receiver.url}/ipn`,
      ipn_notification_type: 'POST',
    });
    ipnId = reg.json.ipn_id;
  });

  async function paid(id: string, paymentMethod: 'Visa' | 'Mpesa'): Promise<{ trackingId: string; code: string }> {
    const res = await pesapal(
      sim.url,
      token,
      '/api/Transactions/SubmitOrderRequest',
      orderBody(id, ipnId, 'http://127.0.0.1/cb', { amount: 1000 }),
    );
    const trackingId = res.json.order_tracking_id as string;
    await sim.complete(trackingId, { outcome: 'completed', paymentMethod });
    await sim.waitForIpns(trackingId);
    return { trackingId, code: sim.getOrder(trackingId)!.confirmationCode };
  }

  const status = (trackingId: string) =>
    pesapal(sim.url, token, `/api/Transactions/GetTransactionStatus?orderTrackingId=${trackingId}`);
  const request = (code: string, amount: string | number) =>
    pesapal(sim.url, token, '/api/Transactions/RefundRequest', {
      confirmation_code: code,
      amount,
      username: 'user:manager-1',
      remarks: 'returned goods',
    });

  it('approval turns the payment REVERSED (status_code 3, "Reversed") and sends an IPN', async () => {
    const { trackingId, code } = await paid('PRF-1', 'Visa');
    expect((await request(code, '250.00')).json).toEqual({ status: '200', message: 'Refund request successfully' });
    expect((await status(trackingId)).json).toMatchObject({ status_code: 1, payment_status_description: 'Completed' });
    await sim.decideRefund(trackingId, 'approve');
    const ipns = await sim.waitForIpns(trackingId, 2);
    expect(ipns[1]).toMatchObject({ acknowledged: true });
    expect((await status(trackingId)).json).toMatchObject({ status_code: 3, payment_status_description: 'Reversed' });
    await expect(sim.decideRefund(trackingId, 'reject')).rejects.toMatchObject({ kind: 'conflict' });
  });

  it('rejection changes nothing Pesapal reports (still COMPLETED) and sends no IPN; still one refund per payment', async () => {
    const { trackingId, code } = await paid('PRF-2', 'Mpesa');
    expect((await request(code, 1000)).json.status).toBe('200');
    await sim.decideRefund(trackingId, 'reject');
    await new Promise((r) => setTimeout(r, 150));
    expect(sim.ipns().filter((i) => i.ref === trackingId)).toHaveLength(1);
    expect((await status(trackingId)).json).toMatchObject({ status_code: 1 });
    expect((await request(code, 1000)).json.message).toMatch(/only one refund/);
  });

  it('the control route decides a refund; an order without one is 409', async () => {
    const { trackingId, code } = await paid('PRF-3', 'Visa');
    const none = await call(`${sim.url}/__sim/orders/${trackingId}/refund`, jsonInit('POST', { decision: 'approve' }));
    expect(none.status).toBe(409);
    await request(code, 100);
    const ok = await call(`${sim.url}/__sim/orders/${trackingId}/refund`, jsonInit('POST', { decision: 'approve' }));
    expect(ok.status).toBe(200);
    expect(ok.json.order.statusCode).toBe(3);
  });
});
