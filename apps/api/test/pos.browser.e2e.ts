import { startFlutterwaveSimulator, startPesapalSimulator } from '@smartduka/card-simulators';
import { startPosServer, type PosServer } from '@smartduka/pos';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Browser, Page } from 'playwright-core';
import { haveChromium, launchChromium, openPosPage, POS_SHOTS, posShot, posStatus, testId } from './helpers/browser';
import { freePort, startTestApp, TestApp } from './helpers/test-app';

const SHOTS = POS_SHOTS;

/** The machine is shared and busy: every wait is generous, and none is a fixed sleep. */
const WAIT = { timeout: 30_000 };

/**
 * The cashier's checkout screen (apps/pos) in a real headless browser against the real API and
 * the provider simulators: it talks to the API only through @smartduka/api-client, follows each
 * payment live (the event stream, or polling GET /payments/:id where the API has none) and shows
 * every outcome in words with the safe next action.
 */
(haveChromium ? describe : describe.skip)(
  'POS checkout screen in a real browser (Chromium via playwright-core)',
  () => {
    let t: TestApp;
    let browser: Browser;
    let pos: PosServer;
    let flw: Awaited<ReturnType<typeof startFlutterwaveSimulator>>;
    let pesapal: Awaited<ReturnType<typeof startPesapalSimulator>>;
    let auth: string;

    beforeAll(async () => {
      mkdirSync(SHOTS, { recursive: true });
      const port = await freePort();
      const posPort = await freePort();
      flw = await startFlutterwaveSimulator({
        secretHash: 'pos-browser-secret-hash',
        webhookUrl: `http://127.0.0.1:${port}/payments/flutterwave/webhook`,
      });
      pesapal = await startPesapalSimulator();
      t = await startTestApp({
        port,
        env: {
          CORS_ORIGINS: `http://127.0.0.1:${posPort}`,
          FLUTTERWAVE_ENABLED: 'true',
          FLUTTERWAVE_BASE_URL: flw.url,
          FLUTTERWAVE_SECRET_HASH: 'pos-browser-secret-hash',
          PESAPAL_ENABLED: 'true',
          PESAPAL_BASE_URL: pesapal.url,
        },
      });
      auth = `Bearer ${t.token()}`;
      pos = await startPosServer({ port: posPort, host: '127.0.0.1', apiBaseUrl: t.baseUrl, token: () => t.token() });
      browser = await launchChromium();
    }, 90_000);

    afterAll(async () => {
      await browser?.close();
      await pos?.close();
      await t?.close();
      await flw?.close();
      await pesapal?.close();
    });

    /** A phone-sized screen (or a till's) with the POS loaded and ready. */
    const openPos = (size: 'phone' | 'till' = 'phone') => openPosPage(browser, pos.url, size, WAIT);
    const id = testId;
    const status = posStatus;
    const shot = posShot;

    async function orderOf(page: Page) {
      const orderId = (await page.textContent(id('order-id')))!.trim();
      return (await t.http().get(`/orders/${orderId}`).set('Authorization', auth)).body;
    }

    it('M-Pesa: total → number → prompt → live status → paid, receipt, print page, today and end of day', async () => {
      const page = await openPos('phone');
      try {
        await page.click(id('demo-0')); // a demo order: KES 450
        expect(await page.inputValue(id('amount'))).toBe('450');
        await page.fill(id('phone'), '0712 345 678');
        await shot(page, '01-mpesa-entered');
        await page.click(id('pay'));
        await page.waitForSelector(status('completed'), WAIT);
        await page.waitForSelector(`${id('receipt')}:not([hidden])`, WAIT);
        await page.locator(id('receipt-time'), { hasText: /\d{2}:\d{2}/ }).waitFor(WAIT);
        expect(await page.textContent(id('receipt-amount'))).toBe('KES 450.00');
        expect(await page.textContent(id('receipt-confirmation'))).toMatch(/^[A-Z0-9]{10}$/);
        expect(await page.textContent(id('receipt-phone'))).toBe('2547******78');
        expect(await page.textContent(id('receipt-provider'))).toBe('M-Pesa');
        expect(await page.isVisible(id('resend'))).toBe(false);
        expect(await page.isDisabled(id('pay'))).toBe(true);
        await shot(page, '02-mpesa-paid-receipt');

        const order = await orderOf(page);
        expect(order).toMatchObject({ status: 'paid', total: 450, paid: 450 });
        const paymentId = await page.getAttribute(id('receipt'), 'data-payment-id');
        expect(order.payments.map((p: { paymentId: string }) => p.paymentId)).toEqual([paymentId]);

        // Print: the 58 mm page, fetched with the till's token and opened in its own window.
        const [printPage] = await Promise.all([page.waitForEvent('popup', WAIT), page.click(id('print-58'))]);
        await printPage.waitForURL(/^blob:/, WAIT);
        await printPage.waitForLoadState('load', WAIT);
        const printed = await printPage.textContent('body');
        expect(printed).toContain(order.id);
        expect(printed).toMatch(/450/);
        expect(printed).toContain('2547******78');
        // On 48 mm of print the date wraps at its space, never inside the time ("10:" / "01 EAT").
        const timeLines = await printPage.evaluate(`(() => {
          const cell = [...document.querySelectorAll('tr')].find((tr) => tr.textContent.startsWith('Date')).lastElementChild;
          const text = cell.firstChild;
          const at = text.data.search(/\\d{2}:\\d{2}/);
          const range = document.createRange();
          range.setStart(text, at);
          range.setEnd(text, at + 5);
          return range.getClientRects().length;
        })()`);
        expect(timeLines).toBe(1);
        await printPage.screenshot({ path: join(SHOTS, '03-print-58mm.png'), fullPage: true });
        await printPage.close();

        // Today's payments and the end-of-day summary follow the sale.
        await page.waitForSelector(
          `${id('payment-row')}[data-payment-id="${paymentId}"][data-status="completed"]`,
          WAIT,
        );
        await page.locator(id('daily-mpesa-count'), { hasText: /^[1-9]\d*$/ }).waitFor(WAIT);
        await shot(page, '04-today-and-end-of-day');
      } finally {
        await page.close();
      }
    }, 120_000);

    it('a cancelled prompt says so and offers Send again, which prompts again for the same order', async () => {
      const page = await openPos('till');
      try {
        await page.fill(id('amount'), '100');
        await page.fill(id('phone'), '0700000001'); // the simulator's customer cancels
        await page.click(id('pay'));
        await page.waitForSelector(status('cancelled'), WAIT);
        expect(await page.textContent(id('status-text'))).toContain('The customer cancelled the M-Pesa prompt');
        // No prompt can be open any more: sending again is offered.
        await page.waitForSelector(`${id('resend')}:not([hidden]):not([disabled])`, WAIT);
        expect(await page.isVisible(id('receipt'))).toBe(false);
        await shot(page, '05-cancelled-till');

        await page.fill(id('phone'), '0712345678');
        await page.click(id('resend'));
        await page.waitForSelector(status('completed'), WAIT);
        const order = await orderOf(page);
        expect(order.status).toBe('paid');
        expect(order.payments.map((p: { status: string }) => p.status).sort()).toEqual(['cancelled', 'completed']);
        await shot(page, '06-resent-and-paid-till');
      } finally {
        await page.close();
      }
    }, 120_000);

    it('an answer lost on the way back (network): Check again repeats the same request and the customer gets one prompt', async () => {
      const page = await openPos('phone');
      try {
        const pushesBefore = t.sim.pushes().length;
        let lost = 0;
        // The push reaches the API (and the customer's phone), but its answer never reaches the till.
        await page.route('**/payments/stk-push', async (route) => {
          if (route.request().method() !== 'POST' || lost > 0) return route.continue();
          lost++;
          await route.fetch();
          await route.abort('connectionreset');
        });
        await page.fill(id('amount'), '30');
        await page.fill(id('phone'), '0712345678');
        await page.click(id('pay'));
        await page.waitForSelector(`${id('retry-same')}:not([hidden])`, WAIT);
        expect(await page.textContent(id('message'))).toContain("Can't reach the SmartDuka server");
        expect(await page.isVisible(id('resend'))).toBe(false);
        expect(await page.isDisabled(id('pay'))).toBe(true);
        await shot(page, '08a-network-lost');
        expect(t.sim.pushes().length - pushesBefore).toBe(1); // the first request did reach Daraja
        await page.click(id('retry-same'));
        await page.waitForSelector(status('completed'), WAIT);
        expect(lost).toBe(1);
        // The same Idempotency-Key replayed the first answer: one prompt, one payment.
        expect(t.sim.pushes().length - pushesBefore).toBe(1);
        expect((await orderOf(page)).payments).toHaveLength(1);
      } finally {
        await page.close();
      }
    }, 120_000);

    it('a phone busy with another prompt (409 CUSTOMER_BUSY): says so, and Send again waits for Retry-After', async () => {
      const page = await openPos('phone');
      try {
        await page.fill(id('amount'), '10');
        await page.fill(id('phone'), '0700000008'); // Daraja: a transaction is already in process for the subscriber
        await page.click(id('pay'));
        await page.waitForSelector(`${id('message')}:not([hidden])`, WAIT);
        expect(await page.textContent(id('message'))).toContain(
          "The customer's phone is busy with another M-Pesa prompt",
        );
        expect(await page.textContent(id('message'))).toContain('60 s');
        expect(await page.isVisible(id('resend'))).toBe(true);
        expect(await page.isDisabled(id('resend'))).toBe(true);
        expect(await page.isDisabled(id('pay'))).toBe(true);
        expect(await page.textContent(id('countdown'))).toMatch(/try again in \d+ s/);
        expect(await page.textContent(id('request-id'))).toMatch(/Reference for support: \S+/);
        await shot(page, '07-customer-busy');
        expect((await orderOf(page)).status).toBe('unpaid');
      } finally {
        await page.close();
      }
    }, 60_000);

    it('M-Pesa did not answer in time (504): no Send again — a prompt may be open — and the outcome is followed', async () => {
      const page = await openPos('phone');
      try {
        await page.fill(id('amount'), '20');
        await page.fill(id('phone'), '0700000010'); // the push times out (MPESA_HTTP_TIMEOUT_MS)
        await page.click(id('pay'));
        await page.waitForSelector(`${id('message')}:not([hidden])`, WAIT);
        expect(await page.textContent(id('message'))).toContain('do not send another');
        await page.waitForSelector(`${id('status-panel')}[data-payment-id]`, WAIT);
        expect(await page.isVisible(id('resend'))).toBe(false);
        expect(await page.isDisabled(id('pay'))).toBe(true);
        await shot(page, '08-provider-timeout');
      } finally {
        await page.close();
      }
    }, 60_000);

    it('card (Flutterwave): QR code and link; the customer pays on the hosted page; the till updates to paid', async () => {
      const page = await openPos('phone');
      try {
        await page.click(id('demo-2')); // KES 2,450.50
        await page.check(id('method-card'));
        await page.fill(id('email'), 'shopper@example.com');
        expect(await page.isVisible(id('phone'))).toBe(false);
        await page.click(id('pay'));
        await page.waitForSelector(`${id('hosted')}:not([hidden])`, WAIT);
        await page.waitForSelector(`${id('qr')}[src^="data:image/png"]`, WAIT);
        const link = (await page.getAttribute(id('hosted-link'), 'href'))!;
        expect(link.startsWith(flw.url)).toBe(true);
        await page.waitForSelector(status('pending'), WAIT);
        // Followed over the API's event stream (GET /payments/:id/events), not by polling.
        await page.waitForSelector(`${id('live-mode')}:text-is("Live")`, WAIT);
        await shot(page, '09-card-qr');

        // The customer's phone: a browser of its own.
        const phone = await browser.newPage({ viewport: { width: 390, height: 844 } });
        try {
          await phone.goto(link);
          await phone.waitForSelector('#checkout', WAIT);
          expect(await phone.textContent('#amount')).toContain('2,450.50');
          await phone.selectOption('#payment-method', 'card');
          await phone.click('#pay');
          await phone.waitForURL((u) => u.toString().startsWith(t.baseUrl), WAIT);
        } finally {
          await phone.close();
        }

        await page.waitForSelector(status('completed'), WAIT);
        await page.waitForSelector(`${id('receipt')}:not([hidden])`, WAIT);
        await page.locator(id('receipt-amount'), { hasText: /^KES 2,450\.50$/ }).waitFor(WAIT);
        expect(await page.textContent(id('receipt-provider'))).toBe('Flutterwave');
        expect(await page.isVisible(id('hosted'))).toBe(false);
        // Flutterwave's confirmation (its flw_ref, ~40 characters without a break) wraps inside the
        // receipt: the phone-sized screen does not grow sideways.
        expect(await page.textContent(id('receipt-confirmation'))).toMatch(/^\S{30,}$/);
        expect((await page.evaluate('document.documentElement.scrollWidth')) as number).toBeLessThanOrEqual(390);
        await shot(page, '10-card-paid');
        expect((await orderOf(page)).status).toBe('paid');
      } finally {
        await page.close();
      }
    }, 120_000);

    it('Pesapal: the payment page as a QR code; paid with M-Pesa on it; the till shows paid and prints 80 mm', async () => {
      const page = await openPos('till');
      try {
        await page.fill(id('amount'), '500');
        await page.check(id('method-pesapal'));
        await page.fill(id('phone'), '0712345678');
        await page.click(id('pay'));
        await page.waitForSelector(`${id('qr')}[src^="data:image/png"]`, WAIT);
        const link = (await page.getAttribute(id('hosted-link'), 'href'))!;
        expect(link.startsWith(pesapal.url)).toBe(true);
        await shot(page, '11-pesapal-qr-till');

        const phone = await browser.newPage({ viewport: { width: 390, height: 844 } });
        try {
          await phone.goto(link);
          await phone.waitForSelector('#checkout', WAIT);
          await phone.selectOption('#payment-method', 'Mpesa');
          await phone.click('#pay');
          await phone.waitForURL((u) => u.toString().startsWith(t.baseUrl), WAIT);
        } finally {
          await phone.close();
        }

        await page.waitForSelector(status('completed'), WAIT);
        await page.locator(id('receipt-amount'), { hasText: /^KES 500\.00$/ }).waitFor(WAIT);
        expect(await page.textContent(id('receipt-provider'))).toBe('Pesapal');
        const [printPage] = await Promise.all([page.waitForEvent('popup', WAIT), page.click(id('print-80'))]);
        await printPage.waitForURL(/^blob:/, WAIT);
        await printPage.waitForLoadState('load', WAIT);
        expect(await printPage.textContent('body')).toMatch(/500/);
        await printPage.screenshot({ path: join(SHOTS, '12-print-80mm.png'), fullPage: true });
        await printPage.close();
        expect((await orderOf(page)).status).toBe('paid');
      } finally {
        await page.close();
      }
    }, 120_000);
  },
);
