import { startFlutterwaveSimulator, startPesapalSimulator } from '@smartduka/card-simulators';
import { createServer, Server } from 'node:http';
import { AddressInfo } from 'node:net';
import { Browser } from 'playwright-core';
import { haveChromium, launchChromium } from './helpers/browser';
import { freePort, startTestApp, TestApp, waitFor } from './helpers/test-app';

/**
 * The hosted checkout pages in a real headless browser: init through the API → open the link →
 * pay on the provider's page → the provider redirects to our return endpoint, which verifies
 * with the provider before anything is recorded → the POS return page → payment completed.
 */
(haveChromium ? describe : describe.skip)('hosted checkout in a real browser (Chromium via playwright-core)', () => {
  let t: TestApp;
  let browser: Browser;
  let pos: Server;
  let posUrl: string;
  let flw: Awaited<ReturnType<typeof startFlutterwaveSimulator>>;
  let pesapal: Awaited<ReturnType<typeof startPesapalSimulator>>;
  let auth: string;

  beforeAll(async () => {
    // A stand-in for the POS screen the customer's browser is sent back to.
    pos = createServer((req, res) =>
      res
        .writeHead(200, { 'Content-Type': 'text/html' })
        .end(`<p id="pos">back at the till: ${new URL(req.url ?? '/', 'http://x').searchParams.get('status')}</p>`),
    );
    await new Promise<void>((r) => pos.listen(0, '127.0.0.1', r));
    posUrl = `http://127.0.0.1:${(pos.address() as AddressInfo).port}/pos-return`;
    const port = await freePort();
    flw = await startFlutterwaveSimulator({
      secretHash: 'browser-test-secret-hash',
      webhookUrl: `http://127.0.0.1:${port}/payments/flutterwave/webhook`,
    });
    pesapal = await startPesapalSimulator();
    t = await startTestApp({
      port,
      env: {
        POS_RETURN_URL: posUrl,
        FLUTTERWAVE_ENABLED: 'true',
        FLUTTERWAVE_BASE_URL: flw.url,
        FLUTTERWAVE_SECRET_HASH: 'browser-test-secret-hash',
        PESAPAL_ENABLED: 'true',
        PESAPAL_BASE_URL: pesapal.url,
      },
    });
    auth = `Bearer ${t.token()}`;
    browser = await launchChromium();
  }, 60000);

  afterAll(async () => {
    await browser?.close();
    await t?.close();
    await flw?.close();
    await pesapal?.close();
    await new Promise((r) => pos?.close(r));
  });

  async function order(id: string, total: number) {
    expect((await t.http().post('/orders').set('Authorization', auth).send({ id, total })).status).toBe(201);
  }

  it('Flutterwave: init → hosted page → pay → redirect → verified and completed', async () => {
    await order('WEB-FLW-1', 2450.5);
    const init = await t
      .http()
      .post('/payments/flutterwave/init')
      .set('Authorization', auth)
      .send({ orderId: 'WEB-FLW-1', amount: 2450.5, customer: { email: 'shopper@example.com', name: 'Wanjiku' } });
    expect(init.status).toBe(201);
    const page = await browser.newPage();
    try {
      await page.goto(init.body.link);
      await page.waitForSelector('#checkout');
      expect(await page.textContent('#amount')).toContain('2,450.50');
      await page.selectOption('#payment-method', 'card');
      await page.click('#pay');
      await page.waitForURL((u) => u.toString().startsWith(posUrl), { timeout: 15000 });
      expect(new URL(page.url()).searchParams.get('status')).toBe('completed');
      expect(await page.textContent('#pos')).toContain('completed');
    } finally {
      await page.close();
    }
    const p = await t.http().get(`/payments/${init.body.paymentId}`).set('Authorization', auth);
    expect(p.body).toMatchObject({ status: 'completed', provider: 'flutterwave', amount: 2450.5, currency: 'KES' });
    expect((await t.http().get('/orders/WEB-FLW-1').set('Authorization', auth)).body.status).toBe('paid');
  }, 60000);

  it('Pesapal: init → hosted page → pay with M-Pesa → redirect → confirmed and completed', async () => {
    await order('WEB-PP-1', 500);
    const init = await t
      .http()
      .post('/payments/pesapal/init')
      .set('Authorization', auth)
      .send({ orderId: 'WEB-PP-1', amount: 500, customer: { email: 'shopper@example.com', firstName: 'Otieno' } });
    expect(init.status).toBe(201);
    const page = await browser.newPage();
    try {
      await page.goto(init.body.redirectUrl);
      await page.waitForSelector('#checkout');
      await page.selectOption('#payment-method', 'Mpesa');
      await page.click('#pay');
      await page.waitForURL((u) => u.toString().startsWith(posUrl), { timeout: 15000 });
      expect(new URL(page.url()).searchParams.get('status')).toBe('completed');
    } finally {
      await page.close();
    }
    const p = await waitFor(async () => {
      const r = await t.http().get(`/payments/${init.body.paymentId}`).set('Authorization', auth);
      return r.body.status === 'completed' ? r.body : undefined;
    });
    expect(p).toMatchObject({ provider: 'pesapal', amount: 500, paymentMethod: expect.stringMatching(/mpesa/i) });
    expect((await t.http().get('/orders/WEB-PP-1').set('Authorization', auth)).body.status).toBe('paid');
  }, 60000);
});
