import { AllProviders, startWithAllProviders } from './helpers/all-providers';

interface ValidationAnswer {
  statusCode: number;
  code: string;
  message: string;
  details: { problems: string[]; errors: { param: string; message: string }[] };
}

// A 400 VALIDATION_FAILED names the field of each problem (details.errors[].param, as Stripe's
// `param`; nested fields dotted), so a POS can put the message next to the right input. The
// message and details.problems stay as they were: existing clients read them.
describe('validation problems with the field they concern', () => {
  let all: AllProviders;
  let auth: string;

  beforeAll(async () => {
    all = await startWithAllProviders({ flwSecretKey: 'FLWSECK_TEST-fields', flwSecretHash: 'fields-hash' });
    auth = `Bearer ${all.t.token()}`;
  });
  afterAll(async () => {
    await all?.close();
  });

  function expectConsistent(body: ValidationAnswer): void {
    expect(body.statusCode).toBe(400);
    expect(body.code).toBe('VALIDATION_FAILED');
    expect(body.message).toBe(body.details.problems.join('; '));
    expect(body.details.errors.map((e) => e.message)).toEqual(body.details.problems);
  }

  it('names top-level fields: a missing one and one of the wrong type', async () => {
    const res = await all.t
      .http()
      .post('/payments/stk-push')
      .set('Authorization', auth)
      .send({ orderId: 'ORD-FIELDS-1', amount: 'ten' });
    const body = res.body as ValidationAnswer;
    expectConsistent(body);
    const params = body.details.errors.map((e) => e.param);
    expect(params).toContain('amount');
    expect(params).toContain('phoneNumber');
    expect(params).not.toContain('orderId');
    const amount = body.details.errors.find((e) => e.param === 'amount')!;
    expect(amount.message).toMatch(/^amount must be/);
  });

  it('names a field that should not be there', async () => {
    const res = await all.t
      .http()
      .post('/orders')
      .set('Authorization', auth)
      .send({ id: 'ORD-FIELDS-2', total: 10, tip: 5 });
    const body = res.body as ValidationAnswer;
    expectConsistent(body);
    expect(body.details.errors).toEqual([{ param: 'tip', message: 'property tip should not exist' }]);
  });

  it('dots a nested field: customer.email', async () => {
    await all.t.http().post('/orders').set('Authorization', auth).send({ id: 'ORD-FIELDS-3', total: 100 }).expect(201);
    const res = await all.t
      .http()
      .post('/payments/flutterwave/init')
      .set('Authorization', auth)
      .send({ orderId: 'ORD-FIELDS-3', amount: 100, customer: { email: 'not-an-email' } });
    const body = res.body as ValidationAnswer;
    expectConsistent(body);
    expect(body.details.errors).toEqual([
      { param: 'customer.email', message: expect.stringMatching(/^customer\.email must be an email address/) },
    ]);
  });

  it('names the field of a problem found past the request checks too (details.field kept)', async () => {
    // A branch borrows its head office's credentials or brings its own key, not both.
    const res = await all.t
      .http()
      .put('/shops/shop-fields/merchant-accounts/flutterwave')
      .set('Authorization', `Bearer ${all.t.token('platform', 'operator', 'operator-1')}`)
      .send({ environment: 'simulator', credentialsFromShopId: 'shop-1', secretKey: 'FLWSECK_TEST-fields-other' });
    expect(res.status).toBe(400);
    expect(res.body.code).toBe('VALIDATION_FAILED');
    expect(res.body.details).toEqual({
      field: 'secretKey',
      errors: [{ param: 'secretKey', message: res.body.message }],
    });
  });
});
