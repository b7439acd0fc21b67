import { startPosServer, type PosServer } from '@smartduka/pos';
import { mkdirSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { crc32, inflateSync } from 'node:zlib';
import { Browser, Page } from 'playwright-core';
import { haveChromium, launchChromium, openPosPage, POS_SHOTS, posShot, posStatus, testId } from './helpers/browser';
import { freePort, startTestApp, TestApp } from './helpers/test-app';
import { recordSecrets } from './log-scan/sink';

const SHOTS = POS_SHOTS;

/** The machine is shared and busy: every wait is generous, and none is a fixed sleep. */
const WAIT = { timeout: 20_000 };

const PAYBILL = '600511';
const PASSKEY = randomBytes(32).toString('hex');
const STORE = '600522';
const TILL = '5323456';
const PASSKEY_TILL = randomBytes(32).toString('hex');
const K1 = randomBytes(32).toString('base64');
const MERCHANT = 'Mama Mboga Shop';

/** The PNG's header fields, after checking every chunk's CRC and inflating its image data to the size the header promises. */
function decodePng(png: Buffer): { width: number; height: number } {
  expect(png.subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
  let at = 8;
  let ihdr: Buffer | undefined;
  const idat: Buffer[] = [];
  let ended = false;
  while (at < png.length && !ended) {
    const length = png.readUInt32BE(at);
    const type = png.toString('latin1', at + 4, at + 8);
    const data = png.subarray(at + 8, at + 8 + length);
    expect(png.readUInt32BE(at + 8 + length)).toBe(crc32(png.subarray(at + 4, at + 8 + length)));
    if (type === 'IHDR') ihdr = data;
    if (type === 'IDAT') idat.push(data);
    ended = type === 'IEND';
    at += 12 + length;
  }
  expect(ended).toBe(true);
  if (!ihdr) throw new Error('PNG without IHDR');
  const width = ihdr.readUInt32BE(0);
  const height = ihdr.readUInt32BE(4);
  const bitDepth = ihdr[8]!;
  const channels = ({ 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 } as Record<number, number>)[ihdr[9]!]!;
  expect(ihdr[12]).toBe(0); // not interlaced: one filter byte per row
  const raw = inflateSync(Buffer.concat(idat));
  expect(raw.length).toBe(height * (1 + Math.ceil((width * channels * bitDepth) / 8)));
  return { width, height };
}

/**
 * The checkout screen's "Show M-Pesa QR" (issue 14) in a real headless browser against the real
 * API and the Daraja simulator: the order's Dynamic QR for the shop's paybill, paid from the
 * customer's phone (a C2B confirmation naming the order), and the screen turning to paid with the
 * receipt; a second QR for a paid order; a shop without an M-Pesa account.
 */
(haveChromium ? describe : describe.skip)('POS: M-Pesa QR in a real browser (Chromium via playwright-core)', () => {
  let t: TestApp;
  let browser: Browser;
  let pos: PosServer;
  /** The shop whose cashier the next page load signs in as. */
  let shop = 'shop-qr';

  beforeAll(async () => {
    mkdirSync(SHOTS, { recursive: true });
    const posPort = await freePort();
    t = await startTestApp({
      env: {
        CORS_ORIGINS: `http://127.0.0.1:${posPort}`,
        CREDENTIALS_KEYS: `k1:${K1}`,
        // A shop without an account of its own has none: no platform account to fall back on.
        MERCHANT_ACCOUNTS_PLATFORM_DEFAULT: 'false',
        MPESA_QR_SIZE: '240',
        // The simulator draws a real PNG per QR: on a loaded machine that can take over a second.
        MPESA_HTTP_TIMEOUT_MS: '8000',
      },
      sim: {
        accounts: [
          { shortcode: PAYBILL, passkey: PASSKEY },
          { shortcode: STORE, passkey: PASSKEY_TILL, tillNumbers: [TILL] },
        ],
      },
    });
    recordSecrets([
      { kind: 'passkey', value: PASSKEY, pair: PAYBILL },
      { kind: 'passkey', value: PASSKEY_TILL, pair: STORE },
    ]);
    const accounts = {
      'shop-qr': { type: 'paybill', shortcode: PAYBILL, passkey: PASSKEY, merchantName: MERCHANT },
      'shop-till': { type: 'till', shortcode: STORE, tillNumber: TILL, passkey: PASSKEY_TILL },
    };
    for (const [s, account] of Object.entries(accounts)) {
      const mgr = `Bearer ${t.token(s, 'manager', `mgr-${s}`)}`;
      const put = await t
        .http()
        .put(`/shops/${s}/merchant-accounts/mpesa`)
        .set('Authorization', mgr)
        .send({
          environment: 'simulator',
          consumerKey: 'smartduka-sim-key',
          consumerSecret: 'smartduka-sim-secret',
          ...account,
        });
      expect(put.status).toBe(200);
      // The shortcode's confirmation URL is registered with Daraja, so a customer's payment reaches the API.
      expect((await t.http().post(`/shops/${s}/c2b-registration`).set('Authorization', mgr).send({})).status).toBe(200);
    }
    pos = await startPosServer({
      port: posPort,
      host: '127.0.0.1',
      apiBaseUrl: t.baseUrl,
      token: () => t.token(shop, 'cashier', `cashier-${shop}`),
    });
    browser = await launchChromium();
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await pos?.close();
    await t?.close();
  });

  function openPos(forShop: string): Promise<Page> {
    shop = forShop;
    return openPosPage(browser, pos.url, 'till', WAIT);
  }

  const id = testId;
  const status = posStatus;
  const shot = posShot;
  const orderIdOf = async (page: Page) => (await page.textContent(id('order-id')))!.trim();
  const orderOf = async (orderId: string) =>
    (
      await t
        .http()
        .get(`/orders/${orderId}`)
        .set('Authorization', `Bearer ${t.token(shop)}`)
    ).body;

  it('paybill: the QR of the order’s amount; the customer pays it from their phone; the screen shows paid with the receipt', async () => {
    const page = await openPos('shop-qr');
    try {
      await page.click(id('demo-0')); // KES 450
      const qrsBefore = t.sim.qrRequests().length;
      await page.click(id('show-mpesa-qr'));
      await page.waitForSelector(
        `${id('mpesa-qr')}:not([hidden]) ${id('mpesa-qr-img')}[src^="data:image/png;base64,"]`,
        WAIT,
      );
      await page.waitForSelector(status('pending'), WAIT);
      const orderId = await orderIdOf(page);

      // A real PNG of the size asked for (MPESA_QR_SIZE), decodable here and drawn by the browser, black on white.
      const src = (await page.getAttribute(id('mpesa-qr-img'), 'src'))!;
      const size = decodePng(Buffer.from(src.slice('data:image/png;base64,'.length), 'base64'));
      expect(size).toEqual({ width: 240, height: 240 });
      const drawn = (await page.evaluate(`(async () => {
        const img = document.querySelector('[data-testid="mpesa-qr-img"]');
        await img.decode();
        const c = document.createElement('canvas');
        c.width = img.naturalWidth;
        c.height = img.naturalHeight;
        const g = c.getContext('2d');
        g.drawImage(img, 0, 0);
        const px = g.getImageData(0, 0, c.width, c.height).data;
        let dark = 0;
        for (let i = 0; i < px.length; i += 4) if (px[i] < 128) dark++;
        const box = img.getBoundingClientRect();
        return { w: img.naturalWidth, h: img.naturalHeight, dark: dark / (px.length / 4), shownW: box.width, shownH: box.height };
      })()`)) as { w: number; h: number; dark: number; shownW: number; shownH: number };
      expect(drawn).toMatchObject({ w: 240, h: 240 });
      expect(drawn.dark).toBeGreaterThan(0.2);
      expect(drawn.dark).toBeLessThan(0.8);
      expect(drawn.shownW).toBeGreaterThanOrEqual(200); // big enough to scan from the counter
      expect(drawn.shownH).toBeGreaterThanOrEqual(200);

      // The screen says what the customer's app will show: the amount, the paybill and the order as account.
      const text = (await page.textContent(id('mpesa-qr-text')))!;
      expect(text).toContain('KES 450.00');
      expect(text).toContain(MERCHANT);
      expect(text).toContain(`paybill ${PAYBILL}, account ${orderId}`);
      expect(text).toContain('M-PESA app');
      // …which is what the QR asks M-Pesa for.
      const asked = t.sim.qrRequests().slice(qrsBefore);
      expect(asked).toHaveLength(1);
      expect(asked[0]).toMatchObject({
        TrxCode: 'PB',
        CPI: PAYBILL,
        Amount: 450,
        RefNo: orderId,
        MerchantName: MERCHANT,
      });
      await shot(page, '20-mpesa-qr-shown');

      // The customer scans it and pays: the paybill, the account number and the amount from the QR.
      const paid = await t.sim.c2bPay({
        shortcode: asked[0]!.CPI,
        billRefNumber: asked[0]!.RefNo,
        amount: asked[0]!.Amount,
        msisdnForm: 'hashed',
      });
      expect(paid.outcome).toBe('confirmed');
      expect(paid.confirmations.map((c) => c.status)).toEqual([200]);

      await page.waitForSelector(status('completed'), WAIT);
      await page.waitForSelector(`${id('receipt')}:not([hidden])`, WAIT);
      await page.locator(id('receipt-confirmation'), { hasText: paid.transId }).waitFor(WAIT);
      expect(await page.textContent(id('receipt-amount'))).toBe('KES 450.00');
      expect(await page.textContent(id('receipt-order'))).toBe(orderId);
      expect(await page.textContent(id('receipt-provider'))).toBe('M-Pesa');
      expect(await page.textContent(id('receipt-shop'))).toBeTruthy();
      expect(await page.isVisible(id('mpesa-qr'))).toBe(false);
      expect(await page.isDisabled(id('pay'))).toBe(true);
      expect(await page.isVisible(id('new-sale'))).toBe(true);
      const order = await orderOf(orderId);
      expect(order).toMatchObject({ status: 'paid', total: 450, paid: 450 });
      expect(order.payments).toHaveLength(1);
      expect(await page.getAttribute(id('receipt'), 'data-payment-id')).toBe(order.payments[0].paymentId);
      // Today's payments list it.
      await page.waitForSelector(
        `${id('payment-row')}[data-payment-id="${order.payments[0].paymentId}"][data-status="completed"]`,
        WAIT,
      );
      await shot(page, '21-mpesa-qr-paid-receipt');
    } finally {
      await page.close();
    }
  }, 60_000);

  it('till: the payment names no order, so the cashier finds it by the code on the customer’s SMS and the screen shows paid with the receipt', async () => {
    const page = await openPos('shop-till');
    try {
      await page.fill(id('amount'), '75');
      await page.click(id('show-mpesa-qr'));
      await page.waitForSelector(
        `${id('mpesa-qr')}:not([hidden]) ${id('mpesa-qr-img')}[src^="data:image/png;base64,"]`,
        WAIT,
      );
      await page.waitForSelector(status('pending'), WAIT);
      const orderId = await orderIdOf(page);
      const src = (await page.getAttribute(id('mpesa-qr-img'), 'src'))!;
      expect(decodePng(Buffer.from(src.slice('data:image/png;base64,'.length), 'base64'))).toEqual({
        width: 240,
        height: 240,
      });
      const text = (await page.textContent(id('mpesa-qr-text')))!;
      expect(text).toContain('KES 75.00');
      expect(text).toContain(`till ${TILL} (Buy Goods)`);
      expect(t.sim.qrRequests().at(-1)).toMatchObject({ TrxCode: 'BG', CPI: TILL, Amount: 75 });
      expect(await page.textContent(id('status-text'))).toContain('M-Pesa code from their SMS');
      await shot(page, '24-mpesa-qr-till');

      // Another customer's payment of another amount is not taken for this order.
      const other = await t.sim.c2bPay({ shortcode: STORE, amount: 70 });
      expect(other.outcome).toBe('confirmed');
      await page.fill(id('qr-receipt'), other.transId);
      await page.click(id('qr-claim-button'));
      await page.locator(id('message'), { hasText: 'KES 70.00, but this order owes KES 75.00' }).waitFor(WAIT);
      await page.fill(id('qr-receipt'), 'SL00NOSUCH');
      await page.click(id('qr-claim-button'));
      await page.locator(id('message'), { hasText: 'No M-Pesa payment SL00NOSUCH is waiting' }).waitFor(WAIT);
      expect(await page.isVisible(id('mpesa-qr'))).toBe(true);

      // The customer pays the till: the confirmation reaches the API, but names no order.
      const paid = await t.sim.c2bPay({ shortcode: STORE, amount: 75, msisdnForm: 'hashed' });
      expect(paid.outcome).toBe('confirmed');
      expect(paid.confirmations.map((c) => c.status)).toEqual([200]);
      expect((await orderOf(orderId)).status).toBe('unpaid');
      // Typed as the cashier reads it off the customer's phone.
      await page.fill(id('qr-receipt'), ` ${paid.transId.slice(0, 5).toLowerCase()} ${paid.transId.slice(5)} `);
      await page.click(id('qr-claim-button'));
      await page.waitForSelector(status('completed'), WAIT);
      await page.waitForSelector(`${id('receipt')}:not([hidden])`, WAIT);
      await page.locator(id('receipt-confirmation'), { hasText: paid.transId }).waitFor(WAIT);
      expect(await page.textContent(id('receipt-amount'))).toBe('KES 75.00');
      expect(await page.textContent(id('receipt-order'))).toBe(orderId);
      expect(await page.isVisible(id('mpesa-qr'))).toBe(false);
      expect(await page.isVisible(id('message'))).toBe(false);
      const order = await orderOf(orderId);
      expect(order).toMatchObject({ status: 'paid', total: 75, paid: 75 });
      expect(order.payments).toHaveLength(1);
      // The other customer's payment still waits in the shop's feed, for its own order.
      const feed = await t
        .http()
        .get(`/payments/c2b/unclaimed?receipt=${other.transId}`)
        .set('Authorization', `Bearer ${t.token('shop-till')}`);
      expect(feed.body).toHaveLength(1);
      await page.waitForSelector(`${id('payment-row')}[data-payment-id="${order.payments[0].paymentId}"]`, WAIT);
      await shot(page, '25-mpesa-qr-till-claimed');
    } finally {
      await page.close();
    }
  }, 60_000);

  it('a QR for an order already paid (409 ORDER_ALREADY_PAID): the screen says it is paid, shows its receipt and offers a new sale', async () => {
    const page = await openPos('shop-qr');
    try {
      // Paid by STK push; the cashier then presses Show M-Pesa QR for the same sale (same total).
      await page.fill(id('amount'), '100');
      await page.fill(id('phone'), '0712345678');
      await page.click(id('pay'));
      await page.waitForSelector(`${id('receipt')}:not([hidden])`, WAIT);
      const orderId = await orderIdOf(page);
      const paymentId = await page.getAttribute(id('receipt'), 'data-payment-id');
      const qrsBefore = t.sim.qrRequests().length;

      const answer = page.waitForResponse((r) => r.url().endsWith(`/orders/${orderId}/mpesa-qr`), WAIT);
      await page.click(id('show-mpesa-qr'));
      const res = await answer;
      expect(res.status()).toBe(409);
      expect((await res.json()).code).toBe('ORDER_ALREADY_PAID');
      await page.locator(id('message'), { hasText: 'already paid' }).waitFor(WAIT);
      const message = (await page.textContent(id('message')))!;
      expect(message).not.toMatch(/ORDER_ALREADY_PAID|409/);
      // Not "Not sent" in red: the order IS paid, and its receipt is still there to print.
      await page.waitForSelector(status('completed'), WAIT);
      await page.waitForSelector(`${id('receipt')}:not([hidden])[data-payment-id="${paymentId}"]`, WAIT);
      expect(await page.isVisible(id('mpesa-qr'))).toBe(false);
      expect(await page.isVisible(id('new-sale'))).toBe(true);
      expect(await page.isDisabled(id('pay'))).toBe(true);
      expect(t.sim.qrRequests()).toHaveLength(qrsBefore); // M-Pesa was asked nothing
      await shot(page, '22-mpesa-qr-already-paid');
    } finally {
      await page.close();
    }
  }, 60_000);

  it('while an M-Pesa prompt is open on the customer’s phone, no QR is offered (it could be paid twice)', async () => {
    const page = await openPos('shop-qr');
    try {
      expect(await page.isDisabled(id('show-mpesa-qr'))).toBe(false);
      await page.fill(id('amount'), '60');
      await page.fill(id('phone'), '0700000007'); // the simulator's customer never answers the prompt
      await page.click(id('pay'));
      await page.waitForSelector(`${id('status-panel')}[data-payment-id] ${status('pending')}`, WAIT);
      expect(await page.isDisabled(id('show-mpesa-qr'))).toBe(true);
      expect(await page.isDisabled(id('pay'))).toBe(true);
      await shot(page, '26-mpesa-qr-not-during-prompt');
      // A new sale offers it again.
      await page.click(id('new-sale'));
      expect(await page.isDisabled(id('show-mpesa-qr'))).toBe(false);
    } finally {
      await page.close();
    }
  }, 60_000);

  it('a shop with no M-Pesa till or paybill: a message the cashier understands, no QR, another method offered', async () => {
    const page = await openPos('shop-none');
    try {
      await page.fill(id('amount'), '100');
      const qrsBefore = t.sim.qrRequests().length;
      const answer = page.waitForResponse((r) => /\/orders\/[^/]+\/mpesa-qr$/.test(r.url()), WAIT);
      await page.click(id('show-mpesa-qr'));
      const res = await answer;
      expect(res.status()).toBe(409);
      expect((await res.json()).code).toBe('MERCHANT_ACCOUNT_REQUIRED');
      await page.waitForSelector(`${id('message')}:not([hidden])`, WAIT);
      const message = (await page.textContent(id('message')))!;
      expect(message).toMatch(/no M-Pesa account set up/);
      expect(message).toMatch(/manager/);
      expect(message).toMatch(/another payment method/);
      expect(message).not.toMatch(/MERCHANT_ACCOUNT_REQUIRED|409|\{/);
      // Sentences, not run together.
      expect(message).not.toMatch(/[a-z] [A-Z][a-z]+ a manager/);
      expect(await page.isVisible(id('mpesa-qr'))).toBe(false);
      expect(await page.getAttribute(id('status'), 'data-status')).toBe('error');
      expect(t.sim.qrRequests()).toHaveLength(qrsBefore);
      // Another method can be taken for the same order.
      expect(await page.isDisabled(id('pay'))).toBe(false);
      await shot(page, '23-mpesa-qr-no-account');
    } finally {
      await page.close();
    }
  }, 60_000);
});
