/** Many Daraja apps at once: tokens scoped to the app's go-live shortcodes, runtime registration, per-key counters. */
import {
  SimulatorControlClient,
  SimulatorControlError,
  SimulatorError,
  startDarajaSimulator,
  type DarajaSimulator,
} from '../src';
import {
  basic,
  expectEnvelope,
  KEY,
  oauth,
  password,
  postJson,
  pushBody,
  queryBody,
  request,
  SECRET,
  startReceiver,
  stkPush,
  stkQuery,
  uniquePath,
  type HttpResult,
  type Receiver,
} from './helpers';

const DELAY = 50;

// Two shops, each with its own Daraja app: A sells on a PayBill, B on a till (store number + till).
const APP_A = { consumerKey: 'shop-a-key', consumerSecret: 'shop-a-secret', shortcodes: ['600100'] };
const APP_B = { consumerKey: 'shop-b-key', consumerSecret: 'shop-b-secret', shortcodes: ['600200'] };
const ACCOUNT_A = { shortcode: '600100', passkey: 'passkey-of-shop-a', tillNumbers: [] as string[] };
const ACCOUNT_B = { shortcode: '600200', passkey: 'passkey-of-shop-b', tillNumbers: ['600201'] };

async function tokenFor(url: string, key: string, secret: string): Promise<string> {
  const res = await oauth(url, basic(key, secret));
  expect(res.status).toBe(200);
  return (res.json as { access_token: string }).access_token;
}

/** A push body for any account, built by hand (Password from that account's passkey). */
function pushFor(
  callbackUrl: string,
  account: { shortcode: string; passkey: string },
  overrides: Record<string, unknown> = {},
): Record<string, unknown> {
  const base = pushBody(callbackUrl);
  const ts = String(base['Timestamp']);
  return {
    ...base,
    BusinessShortCode: account.shortcode,
    Password: password(account.shortcode, account.passkey, ts),
    PartyB: account.shortcode,
    ...overrides,
  };
}

function queryFor(checkoutRequestId: string, account: { shortcode: string; passkey: string }): Record<string, unknown> {
  const base = queryBody(checkoutRequestId);
  const ts = String(base['Timestamp']);
  return { ...base, BusinessShortCode: account.shortcode, Password: password(account.shortcode, account.passkey, ts) };
}

function checkoutId(res: HttpResult): string {
  expect(res.status).toBe(200);
  return (res.json as { CheckoutRequestID: string }).CheckoutRequestID;
}

function post(url: string, body: unknown): Promise<HttpResult> {
  return postJson(url, undefined, body);
}

describe('many Daraja apps', () => {
  let sim: DarajaSimulator;
  let receiver: Receiver;

  beforeAll(async () => {
    sim = await startDarajaSimulator({
      callbackDelayMs: DELAY,
      apps: [APP_A, APP_B],
      accounts: [
        { shortcode: '174379', passkey: 'bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919' },
        ACCOUNT_A,
        ACCOUNT_B,
      ],
    });
    receiver = await startReceiver();
  });
  afterAll(async () => {
    await sim.close();
    await receiver.close();
  });
  beforeEach(() => {
    sim.reset();
    receiver.received.length = 0;
  });

  it('each app gets its own token; a push records the consumer key of the token, never its secret', async () => {
    const a = await tokenFor(sim.url, APP_A.consumerKey, APP_A.consumerSecret);
    const b = await tokenFor(sim.url, APP_B.consumerKey, APP_B.consumerSecret);
    expect(a).not.toBe(b);

    const idA = checkoutId(await stkPush(sim.url, a, pushFor(`${receiver.url}${uniquePath('a')}`, ACCOUNT_A)));
    const idB = checkoutId(
      await stkPush(
        sim.url,
        b,
        pushFor(`${receiver.url}${uniquePath('b')}`, ACCOUNT_B, {
          TransactionType: 'CustomerBuyGoodsOnline',
          PartyB: '600201',
        }),
      ),
    );
    expect(sim.getPush(idA)).toMatchObject({
      consumerKey: 'shop-a-key',
      shortcode: '600100',
      partyB: '600100',
      transactionType: 'CustomerPayBillOnline',
    });
    expect(sim.getPush(idB)).toMatchObject({
      consumerKey: 'shop-b-key',
      shortcode: '600200',
      partyB: '600201',
      transactionType: 'CustomerBuyGoodsOnline',
    });
    const [cbB] = await sim.waitForCallbacks(idB);
    expect((cbB?.body as { Body: { stkCallback: { ResultCode: number } } }).Body.stkCallback.ResultCode).toBe(0);

    const state = await request(`${sim.url}/__sim/state`);
    const pushes = (state.json as { pushes: Array<Record<string, unknown>> }).pushes;
    expect(pushes.map((p) => [p['checkoutRequestId'], p['consumerKey'], p['shortcode'], p['partyB']])).toEqual([
      [idA, 'shop-a-key', '600100', '600100'],
      [idB, 'shop-b-key', '600200', '600201'],
    ]);
    for (const secret of ['shop-a-secret', 'shop-b-secret', 'passkey-of-shop-a', 'passkey-of-shop-b']) {
      expect(state.text).not.toContain(secret);
    }
    // queries are recorded with their app too
    const q = await stkQuery(sim.url, b, queryFor(idB, ACCOUNT_B));
    expect(q.status).toBe(200);
    expect(sim.queries().map((x) => [x.consumerKey, x.shortcode, x.answer])).toEqual([
      ['shop-b-key', '600200', 'final'],
    ]);
  });

  it("app A's token cannot push or query for app B's shortcode: 500.001.1001 Merchant does not exist", async () => {
    const a = await tokenFor(sim.url, APP_A.consumerKey, APP_A.consumerSecret);
    const b = await tokenFor(sim.url, APP_B.consumerKey, APP_B.consumerSecret);
    // A's token with B's shortcode and B's right passkey: refused as Daraja refuses a non-go-live shortcode.
    expectEnvelope(
      await stkPush(sim.url, a, pushFor(`${receiver.url}${uniquePath('x')}`, ACCOUNT_B)),
      500,
      '500.001.1001',
      'Merchant does not exist',
    );
    // ... before the Password is looked at: a wrong one gives the same answer (nothing learnt about B's passkey).
    expectEnvelope(
      await stkPush(
        sim.url,
        a,
        pushFor(`${receiver.url}${uniquePath('x')}`, { shortcode: '600200', passkey: 'guess' }),
      ),
      500,
      '500.001.1001',
      'Merchant does not exist',
    );
    expect(sim.pushes()).toEqual([]);
    expect(sim.stats().promptsSent).toBe(0);

    const idB = checkoutId(await stkPush(sim.url, b, pushFor(`${receiver.url}${uniquePath('b')}`, ACCOUNT_B)));
    expectEnvelope(
      await stkQuery(sim.url, a, queryFor(idB, ACCOUNT_B)),
      500,
      '500.001.1001',
      'Merchant does not exist',
    );
    // and A's own shortcode does not find B's push
    expectEnvelope(
      await stkQuery(sim.url, a, queryFor(idB, ACCOUNT_A)),
      500,
      '500.001.1001',
      'The transaction does not Exist',
    );
  });

  it('the consumerKey/consumerSecret app (no shortcodes listed) may still use any shortcode', async () => {
    const legacy = await tokenFor(sim.url, KEY, SECRET);
    checkoutId(await stkPush(sim.url, legacy, pushBody(`${receiver.url}${uniquePath('l')}`)));
    const id = checkoutId(await stkPush(sim.url, legacy, pushFor(`${receiver.url}${uniquePath('l')}`, ACCOUNT_A)));
    expect(sim.getPush(id)?.consumerKey).toBe(KEY);
  });

  it('a new token invalidates only the previous token of the same consumer key', async () => {
    const a1 = await tokenFor(sim.url, APP_A.consumerKey, APP_A.consumerSecret);
    const b1 = await tokenFor(sim.url, APP_B.consumerKey, APP_B.consumerSecret);
    const a2 = await tokenFor(sim.url, APP_A.consumerKey, APP_A.consumerSecret);
    expectEnvelope(
      await stkPush(sim.url, a1, pushFor(`${receiver.url}${uniquePath('a')}`, ACCOUNT_A)),
      404,
      '404.001.03',
      'Invalid Access Token',
    );
    checkoutId(await stkPush(sim.url, a2, pushFor(`${receiver.url}${uniquePath('a')}`, ACCOUNT_A)));
    checkoutId(await stkPush(sim.url, b1, pushFor(`${receiver.url}${uniquePath('b')}`, ACCOUNT_B)));
  });

  it('counts OAuth calls by consumer key (known apps only, wrong secrets included); reset clears them', async () => {
    expect(sim.oauthCalls()).toEqual({});
    await tokenFor(sim.url, APP_A.consumerKey, APP_A.consumerSecret);
    await tokenFor(sim.url, APP_A.consumerKey, APP_A.consumerSecret);
    await tokenFor(sim.url, APP_B.consumerKey, APP_B.consumerSecret);
    expect((await oauth(sim.url, basic(APP_B.consumerKey, 'wrong'))).status).toBe(400);
    expect((await oauth(sim.url, basic('nobody', 'x'))).status).toBe(400);
    const expected = { 'shop-a-key': 2, 'shop-b-key': 2 };
    expect(sim.oauthCalls()).toEqual(expected);
    expect(sim.stats().oauthRequests).toBe(5);
    const res = await request(`${sim.url}/__sim/oauth-calls`);
    expect(res.status).toBe(200);
    expect(res.json).toEqual({ oauthCalls: expected });
    expect((await post(`${sim.url}/__sim/oauth-calls`, {})).status).toBe(405);
    sim.reset();
    expect(sim.oauthCalls()).toEqual({});
  });

  it('wrong Password → Wrong credentials; unknown shortcode → Merchant does not exist; unknown id → does not Exist', async () => {
    const b = await tokenFor(sim.url, APP_B.consumerKey, APP_B.consumerSecret);
    expectEnvelope(
      await stkPush(sim.url, b, pushFor(`${receiver.url}${uniquePath('b')}`, { shortcode: '600200', passkey: 'nope' })),
      500,
      '500.001.1001',
      'Wrong credentials',
    );
    const legacy = await tokenFor(sim.url, KEY, SECRET);
    expectEnvelope(
      await stkPush(
        sim.url,
        legacy,
        pushFor(`${receiver.url}${uniquePath('l')}`, { shortcode: '699999', passkey: 'p' }),
      ),
      500,
      '500.001.1001',
      'Merchant does not exist',
    );
    expectEnvelope(
      await stkQuery(sim.url, b, queryFor('ws_CO_01012026000000000708374149', ACCOUNT_B)),
      500,
      '500.001.1001',
      'The transaction does not Exist',
    );
    expectEnvelope(
      await stkQuery(sim.url, b, {
        ...queryFor('ws_CO_01012026000000000708374149', ACCOUNT_B),
        Password: 'd3Jvbmc=',
      }),
      500,
      '500.001.1001',
      'Wrong credentials',
    );
  });

  it("PartyB: BuyGoods needs one of that account's tills, PayBill the shortcode; else callback 2028", async () => {
    const legacy = await tokenFor(sim.url, KEY, SECRET);
    const b = await tokenFor(sim.url, APP_B.consumerKey, APP_B.consumerSecret);
    const resultOf = async (token: string, body: Record<string, unknown>): Promise<number> => {
      const id = checkoutId(await stkPush(sim.url, token, body));
      const [cb] = await sim.waitForCallbacks(id);
      return (cb?.body as { Body: { stkCallback: { ResultCode: number } } }).Body.stkCallback.ResultCode;
    };
    const cb = (): string => `${receiver.url}${uniquePath('p')}`;
    const buyGoods = { TransactionType: 'CustomerBuyGoodsOnline' };
    expect(await resultOf(b, pushFor(cb(), ACCOUNT_B, { ...buyGoods, PartyB: '600201' }))).toBe(0);
    // the store number itself is not a till
    expect(await resultOf(b, pushFor(cb(), ACCOUNT_B, { ...buyGoods, PartyB: '600200' }))).toBe(2028);
    // a till of another account: 600201 belongs to B, not to A
    expect(await resultOf(legacy, pushFor(cb(), ACCOUNT_A, { ...buyGoods, PartyB: '600201' }))).toBe(2028);
    expect(await resultOf(b, pushFor(cb(), ACCOUNT_B, { PartyB: '600201' }))).toBe(2028);
    expect(await resultOf(legacy, pushFor(cb(), ACCOUNT_A, { PartyB: '600200' }))).toBe(2028);
    expect(await resultOf(legacy, pushFor(cb(), ACCOUNT_A))).toBe(0);
  });

  describe('registration while running', () => {
    // Unique per run of this block: registrations survive reset(), like a go-live.
    const appC = { consumerKey: 'shop-c-key', consumerSecret: 'shop-c-secret', shortcodes: ['600301', '600300'] };
    const accountC = { shortcode: '600300', passkey: 'passkey-of-shop-c', tillNumbers: ['600311', '600310'] };

    it('POST /__sim/apps and /__sim/accounts add an app and an account that work at once', async () => {
      // not there yet
      expect((await oauth(sim.url, basic(appC.consumerKey, appC.consumerSecret))).status).toBe(400);
      const legacy = await tokenFor(sim.url, KEY, SECRET);
      expectEnvelope(
        await stkPush(sim.url, legacy, pushFor(`${receiver.url}${uniquePath('c')}`, accountC)),
        500,
        '500.001.1001',
        'Merchant does not exist',
      );

      const app = await post(`${sim.url}/__sim/apps`, appC);
      expect(app.status).toBe(201);
      expect(app.json).toEqual({
        outcome: 'created',
        app: { consumerKey: 'shop-c-key', shortcodes: ['600300', '600301'] },
      });
      expect(app.text).not.toContain('shop-c-secret');
      const account = await post(`${sim.url}/__sim/accounts`, accountC);
      expect(account.status).toBe(201);
      expect(account.json).toEqual({
        outcome: 'created',
        account: { shortcode: '600300', tillNumbers: ['600310', '600311'] },
      });
      expect(account.text).not.toContain('passkey-of-shop-c');

      const c = await tokenFor(sim.url, appC.consumerKey, appC.consumerSecret);
      const id = checkoutId(
        await stkPush(
          sim.url,
          c,
          pushFor(`${receiver.url}${uniquePath('c')}`, accountC, {
            TransactionType: 'CustomerBuyGoodsOnline',
            PartyB: '600311',
          }),
        ),
      );
      expect(sim.getPush(id)).toMatchObject({ consumerKey: 'shop-c-key', shortcode: '600300', partyB: '600311' });
      const [delivery] = await sim.waitForCallbacks(id);
      expect((delivery?.body as { Body: { stkCallback: { ResultCode: number } } }).Body.stkCallback.ResultCode).toBe(0);
      // C went live for 600300/600301 only
      expectEnvelope(
        await stkPush(sim.url, c, pushFor(`${receiver.url}${uniquePath('c')}`, ACCOUNT_A)),
        500,
        '500.001.1001',
        'Merchant does not exist',
      );

      const apps = await request(`${sim.url}/__sim/apps`);
      expect((apps.json as { apps: unknown[] }).apps).toContainEqual({
        consumerKey: 'shop-c-key',
        shortcodes: ['600300', '600301'],
      });
      expect(apps.text).not.toMatch(/secret/);
      const accounts = await request(`${sim.url}/__sim/accounts`);
      expect((accounts.json as { accounts: unknown[] }).accounts).toContainEqual({
        shortcode: '600300',
        tillNumbers: ['600310', '600311'],
      });
      expect(accounts.text).not.toMatch(/passkey/);
    });

    it('is idempotent on the same values (in any order), survives reset(), refuses another definition with 409', async () => {
      sim.reset();
      const again = await post(`${sim.url}/__sim/apps`, { ...appC, shortcodes: ['600300', '600301', '600300'] });
      expect(again.status).toBe(200);
      expect(again.json).toMatchObject({ outcome: 'unchanged' });
      const againAccount = await post(`${sim.url}/__sim/accounts`, { ...accountC, tillNumbers: ['600310', '600311'] });
      expect(againAccount.status).toBe(200);
      expect(againAccount.json).toMatchObject({ outcome: 'unchanged' });

      const otherSecret = await post(`${sim.url}/__sim/apps`, { ...appC, consumerSecret: 'other-secret' });
      expect(otherSecret.status).toBe(409);
      expect((otherSecret.json as { error: string }).error).toMatch(/consumerSecret/);
      expect(otherSecret.text).not.toContain('shop-c-secret');
      expect(otherSecret.text).not.toContain('other-secret');
      expect((await post(`${sim.url}/__sim/apps`, { ...appC, shortcodes: ['600300'] })).status).toBe(409);
      expect((await post(`${sim.url}/__sim/apps`, { ...appC, shortcodes: undefined })).status).toBe(409);
      // a start-up app cannot be redefined either
      expect((await post(`${sim.url}/__sim/apps`, { ...APP_A, shortcodes: ['600100', '600200'] })).status).toBe(409);

      const otherPasskey = await post(`${sim.url}/__sim/accounts`, { ...accountC, passkey: 'other' });
      expect(otherPasskey.status).toBe(409);
      expect(otherPasskey.text).not.toContain('passkey-of-shop-c');
      expect((await post(`${sim.url}/__sim/accounts`, { ...accountC, tillNumbers: [] })).status).toBe(409);
      expect((await post(`${sim.url}/__sim/accounts`, { ...ACCOUNT_A, passkey: 'changed' })).status).toBe(409);

      // the first definition is still the one in force
      const c = await tokenFor(sim.url, appC.consumerKey, appC.consumerSecret);
      checkoutId(await stkPush(sim.url, c, pushFor(`${receiver.url}${uniquePath('c')}`, accountC)));
      expect((await oauth(sim.url, basic(appC.consumerKey, 'other-secret'))).status).toBe(400);
    });

    it.each([
      ['/__sim/apps', { consumerKey: 'k' }, /consumerSecret/],
      ['/__sim/apps', { consumerKey: '', consumerSecret: 's' }, /consumerKey/],
      ['/__sim/apps', { consumerKey: 'a:b', consumerSecret: 's' }, /":"/],
      ['/__sim/apps', { consumerKey: 'k', consumerSecret: 's', shortcodes: ['12'] }, /shortcodes\[0\]/],
      ['/__sim/apps', { consumerKey: 'k', consumerSecret: 's', shortcode: '600100' }, /unknown field/],
      ['/__sim/apps', [], /must be/],
      ['/__sim/accounts', { shortcode: '600400' }, /passkey/],
      ['/__sim/accounts', { shortcode: 600400, passkey: 'p' }, /shortcode/],
      ['/__sim/accounts', { shortcode: '600400', passkey: 'p', tillNumbers: '600401' }, /tillNumbers/],
    ])('POST %s %j → 400', async (path, body, message) => {
      const res = await post(`${sim.url}${path}`, body);
      expect(res.status).toBe(400);
      expect((res.json as { error: string }).error).toMatch(message);
    });

    it('registerApp() / registerAccount() on the handle: same rules, conflicts throw SimulatorError "conflict"', async () => {
      const appD = { consumerKey: 'shop-d-key', consumerSecret: 'shop-d-secret', shortcodes: ['600400'] };
      expect(sim.registerApp(appD)).toEqual({
        outcome: 'created',
        value: { consumerKey: 'shop-d-key', shortcodes: ['600400'] },
      });
      expect(sim.registerApp(appD).outcome).toBe('unchanged');
      expect(() => sim.registerApp({ ...appD, consumerSecret: 'x' })).toThrow(
        expect.objectContaining({ name: 'SimulatorError', kind: 'conflict' }),
      );
      expect(() => sim.registerApp({ consumerKey: '', consumerSecret: 'x' })).toThrow(SimulatorError);
      expect(sim.registerAccount({ shortcode: '600400', passkey: 'pk-d' }).outcome).toBe('created');
      expect(sim.registerAccount({ shortcode: '600400', passkey: 'pk-d', tillNumbers: [] }).outcome).toBe('unchanged');
      expect(() => sim.registerAccount({ shortcode: '600400', passkey: 'pk-x' })).toThrow(
        expect.objectContaining({ kind: 'conflict' }),
      );
      expect(sim.apps()).toContainEqual({ consumerKey: 'shop-d-key', shortcodes: ['600400'] });
      expect(sim.accounts()).toContainEqual({ shortcode: '600400', tillNumbers: [] });
      const d = await tokenFor(sim.url, appD.consumerKey, appD.consumerSecret);
      const id = checkoutId(
        await stkPush(
          sim.url,
          d,
          pushFor(`${receiver.url}${uniquePath('d')}`, { shortcode: '600400', passkey: 'pk-d' }),
        ),
      );
      expect(sim.getPush(id)?.consumerKey).toBe('shop-d-key');
      expect(sim.oauthCalls()).toEqual({ 'shop-d-key': 1 });
    });

    it('SimulatorControlClient does the same over HTTP', async () => {
      const client = new SimulatorControlClient(`${sim.url}/`);
      const appE = { consumerKey: 'shop-e-key', consumerSecret: 'shop-e-secret', shortcodes: ['600500'] };
      const accountE = { shortcode: '600500', passkey: 'pk-e', tillNumbers: ['600501'] };
      expect(await client.registerApp(appE)).toEqual({
        outcome: 'created',
        value: { consumerKey: 'shop-e-key', shortcodes: ['600500'] },
      });
      expect((await client.registerApp(appE)).outcome).toBe('unchanged');
      expect(await client.registerAccount(accountE)).toEqual({
        outcome: 'created',
        value: { shortcode: '600500', tillNumbers: ['600501'] },
      });
      const conflict = client.registerAccount({ ...accountE, passkey: 'pk-other' });
      await expect(conflict).rejects.toBeInstanceOf(SimulatorControlError);
      await expect(conflict).rejects.toMatchObject({ status: 409 });
      await expect(client.registerApp({ consumerKey: 'k', consumerSecret: '' })).rejects.toMatchObject({ status: 400 });

      await client.reset();
      const e = await tokenFor(sim.url, appE.consumerKey, appE.consumerSecret);
      await tokenFor(sim.url, APP_A.consumerKey, APP_A.consumerSecret);
      const id = checkoutId(await stkPush(sim.url, e, pushFor(`${receiver.url}${uniquePath('e')}`, accountE)));
      expect(await client.oauthCalls()).toEqual({ 'shop-e-key': 1, 'shop-a-key': 1 });
      const pushes = await client.pushes();
      expect(pushes).toHaveLength(1);
      expect(pushes[0]).toMatchObject({ checkoutRequestId: id, consumerKey: 'shop-e-key', shortcode: '600500' });
      expect(typeof pushes[0]?.createdAt).toBe('string');
      expect(await client.apps()).toContainEqual({ consumerKey: 'shop-e-key', shortcodes: ['600500'] });
      expect(await client.accounts()).toContainEqual({ shortcode: '600500', tillNumbers: ['600501'] });
    });
  });
});

describe('SimulatorOptions.apps', () => {
  it('refuses duplicated consumer keys and bad entries', async () => {
    await expect(startDarajaSimulator({ apps: [APP_A, { ...APP_A, consumerSecret: 'x' }] })).rejects.toThrow(
      /apps\[1\]\.consumerKey is duplicated/,
    );
    await expect(startDarajaSimulator({ apps: [{ ...APP_A, shortcodes: ['1'] }] })).rejects.toThrow(
      /apps\[0\]\.shortcodes\[0\]/,
    );
  });

  it('an entry with the consumerKey of the default app defines that app (e.g. to restrict its shortcodes)', async () => {
    const sim = await startDarajaSimulator({
      callbackDelayMs: 600_000,
      apps: [{ consumerKey: KEY, consumerSecret: 'replaced-secret', shortcodes: ['600100'] }],
      accounts: [{ shortcode: '174379', passkey: 'bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919' }],
    });
    try {
      expect(sim.apps()).toEqual([{ consumerKey: KEY, shortcodes: ['600100'] }]);
      expect((await oauth(sim.url, basic(KEY, SECRET))).status).toBe(400);
      const t = await tokenFor(sim.url, KEY, 'replaced-secret');
      expectEnvelope(
        await stkPush(sim.url, t, pushBody('http://127.0.0.1:9/hooks/daraja/stk/r')),
        500,
        '500.001.1001',
        'Merchant does not exist',
      );
    } finally {
      await sim.close();
    }
  });

  it('without apps, the one consumerKey/consumerSecret app is all there is', async () => {
    const sim = await startDarajaSimulator({ consumerKey: 'only-key', consumerSecret: 'only-secret' });
    try {
      expect(sim.apps()).toEqual([{ consumerKey: 'only-key', shortcodes: [] }]);
      expect(sim.accounts()).toEqual([{ shortcode: '174379', tillNumbers: ['174380'] }]);
      expect((await oauth(sim.url, basic(KEY, SECRET))).status).toBe(400);
      await tokenFor(sim.url, 'only-key', 'only-secret');
    } finally {
      await sim.close();
    }
  });
});
