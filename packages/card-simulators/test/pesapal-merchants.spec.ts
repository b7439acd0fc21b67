import { startPesapalSimulator, type PesapalSimulator } from '../src';
import { call, jsonInit, orderBody, pesapal, pesapalToken } from './helpers';

const SHOP_KEY = 'shop-b-consumer-key';
const SHOP_SECRET = 'shop-b-consumer-secret';

async function tokenFor(baseUrl: string, key: string, secret: string) {
  return call(`${baseUrl}/api/Auth/RequestToken`, jsonInit('POST', { consumer_key: key, consumer_secret: secret }));
}

describe('Pesapal: several merchants (one consumer key and secret each)', () => {
  let sim: PesapalSimulator;

  beforeAll(async () => {
    sim = await startPesapalSimulator();
  });
  afterAll(async () => {
    await sim.close();
  });
  beforeEach(() => {
    sim.reset({ full: true });
    sim.addMerchant({ id: 'shop-b', consumerKey: SHOP_KEY, consumerSecret: SHOP_SECRET });
  });

  it('issues tokens per merchant; a merchant sees only its own IPN registrations and orders; calls record whose they were', async () => {
    const b = await tokenFor(sim.url, SHOP_KEY, SHOP_SECRET);
    expect(b.json.status).toBe('200');
    const tokenB = b.json.token as string;
    const tokenD = await pesapalToken(sim.url);

    const wrong = await tokenFor(sim.url, SHOP_KEY, 'not-the-secret');
    expect(wrong.json.status).toBe('500');
    expect(wrong.json.token).toBeFalsy();

    const ipnB = await pesapal(sim.url, tokenB, '/api/URLSetup/RegisterIPN', {
      url: 'https://pos.example/ipn',
      ipn_notification_type: 'POST',
    });
    const ipnId = ipnB.json.ipn_id as string;
    expect(ipnId).toBeTruthy();
    expect((await pesapal(sim.url, tokenB, '/api/URLSetup/GetIpnList')).json).toHaveLength(1);
    expect((await pesapal(sim.url, tokenD, '/api/URLSetup/GetIpnList')).json).toHaveLength(0);

    // Another merchant's IPN id is not one Pesapal accepts from this merchant.
    const foreign = await pesapal(
      sim.url,
      tokenD,
      '/api/Transactions/SubmitOrderRequest',
      orderBody('REF-D-1', ipnId, 'https://pos.example/return'),
    );
    expect(foreign.json.error.message).toBe('Invalid IPN URL ID provided.Check format and try again');

    const own = await pesapal(
      sim.url,
      tokenB,
      '/api/Transactions/SubmitOrderRequest',
      orderBody('REF-B-1', ipnId, 'https://pos.example/return'),
    );
    const trackingId = own.json.order_tracking_id as string;
    expect(sim.getOrder(trackingId)?.merchant).toBe('shop-b');

    const status = `/api/Transactions/GetTransactionStatus?orderTrackingId=${trackingId}`;
    expect((await pesapal(sim.url, tokenB, status)).json.merchant_reference).toBe('REF-B-1');
    expect((await pesapal(sim.url, tokenD, status)).json.error.code).toBe('payment_details_not_found');
    const cancel = await pesapal(sim.url, tokenD, '/api/Transactions/CancelOrder', { order_tracking_id: trackingId });
    expect(cancel.json.status).toBe('500');
    expect(sim.getOrder(trackingId)?.state).toBe('pending');

    expect(sim.apiCalls().map((c) => [c.endpoint, c.merchant])).toEqual([
      ['token', 'shop-b'],
      ['token', 'default'],
      ['token', null],
      ['ipn', 'shop-b'],
      ['ipn', 'shop-b'],
      ['ipn', 'default'],
      ['submit', 'default'],
      ['submit', 'shop-b'],
      ['status', 'shop-b'],
      ['status', 'default'],
      ['cancel', 'default'],
    ]);
  });

  it('refuses a merchant without a secret or with the default key; reset({full}) forgets added merchants', async () => {
    expect(() => sim.addMerchant({ id: 'x', consumerKey: 'k', consumerSecret: '' })).toThrow(
      /consumerSecret is required/,
    );
    expect(() => sim.addMerchant({ id: 'x', consumerKey: 'smartduka-pesapal-sim-key', consumerSecret: 's' })).toThrow(
      /default merchant/,
    );
    sim.reset({ full: true });
    expect((await tokenFor(sim.url, SHOP_KEY, SHOP_SECRET)).json.status).toBe('500');
  });
});
