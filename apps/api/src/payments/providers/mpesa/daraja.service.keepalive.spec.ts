import {
  captureLogs,
  darajaError,
  FakeDaraja,
  makeService,
  mpesaError,
  OAUTH_PATH,
  PUSH_PATH,
  QUERY_PATH,
  RecordedRequest,
  validPush,
  withFakeDaraja,
} from './fake-daraja.testing';

/** True when an earlier request came over the same client connection (same client port). */
const onKeptConnection = (fake: FakeDaraja, req: RecordedRequest): boolean =>
  fake.requests.some((r) => r !== req && r.remotePort === req.remotePort);

const paid = {
  status: 200,
  body: {
    ResponseCode: '0',
    ResponseDescription: 'The service request has been accepted successsfully',
    MerchantRequestID: '2654-4b64-97ff-b827b542881d3130',
    CheckoutRequestID: 'ws_CO_1007202409152617172396192',
    ResultCode: '0',
    ResultDesc: 'The service request is processed successfully.',
  },
};

describe('DarajaService with keep-alive (MPESA_HTTP_KEEP_ALIVE_MS)', () => {
  let fake: FakeDaraja;
  let logs: ReturnType<typeof captureLogs>;

  withFakeDaraja((f, l) => {
    fake = f;
    logs = l;
  });

  it('sends the token request and the pushes over one connection', async () => {
    const svc = makeService(fake.baseUrl, { keepAliveMs: 2000 });
    await svc.initiateStkPush(validPush());
    await svc.initiateStkPush(validPush());
    expect(fake.requests.map((r) => r.path)).toEqual([OAUTH_PATH, PUSH_PATH, PUSH_PATH]);
    expect(new Set(fake.requests.map((r) => r.remotePort)).size).toBe(1);
    for (const r of fake.requests) expect(r.headers.connection).toBe('keep-alive');
  });

  it('closes an idle connection after keepAliveMs: the next call opens a new one', async () => {
    const svc = makeService(fake.baseUrl, { keepAliveMs: 100 });
    await svc.initiateStkPush(validPush());
    await new Promise((r) => setTimeout(r, 400));
    await svc.initiateStkPush(validPush());
    const [, first, second] = fake.requests;
    expect(second.remotePort).not.toBe(first.remotePort);
  });

  it('a push on a kept connection that Daraja closed is outcome unknown and is NOT sent again', async () => {
    const svc = makeService(fake.baseUrl, { keepAliveMs: 2000 });
    await svc.getAccessToken();
    fake.push = (req) => (onKeptConnection(fake, req) ? 'destroy' : { status: 500, body: 'unexpected' });
    const err = await svc.initiateStkPush(validPush()).catch((e) => e);
    expect(err).toEqual(mpesaError('unavailable'));
    expect(err.outcome).toBe('unknown');
    expect(fake.count(PUSH_PATH)).toBe(1);
  });

  it('an STK query on a kept connection that Daraja closed is asked again on a new connection', async () => {
    const svc = makeService(fake.baseUrl, { keepAliveMs: 2000 });
    await svc.getAccessToken();
    fake.query = (req) => (onKeptConnection(fake, req) ? 'destroy' : paid);
    const result = await svc.queryStkStatus('ws_CO_1007202409152617172396192');
    expect(result).toMatchObject({ kind: 'final', resultCode: '0' });
    const [first, second] = fake.of(QUERY_PATH);
    expect(fake.count(QUERY_PATH)).toBe(2);
    expect(second.remotePort).not.toBe(first.remotePort);
    expect(logs.lines.join('\n')).toMatch(/kept-alive connection was closed by M-Pesa; asking again/);
  });

  it('a token request on a kept connection that Daraja closed is asked again', async () => {
    const svc = makeService(fake.baseUrl, { keepAliveMs: 2000 });
    await svc.getAccessToken();
    // The query's token is refused once, so a new token is asked for over the kept connection.
    fake.query = (_req, n) => (n === 1 ? darajaError(404, '404.001.03', 'Invalid Access Token') : paid);
    let closed = 0;
    const issue = fake.oauth;
    fake.oauth = (req, n) => (onKeptConnection(fake, req) && closed++ === 0 ? 'destroy' : issue(req, n));
    const result = await svc.queryStkStatus('ws_CO_1007202409152617172396192');
    expect(result).toMatchObject({ kind: 'final', resultCode: '0' });
    expect(closed).toBe(1);
    expect(fake.requests.map((r) => r.path)).toEqual([OAUTH_PATH, QUERY_PATH, OAUTH_PATH, OAUTH_PATH, QUERY_PATH]);
  });

  it('without keepAliveMs every call has its own connection', async () => {
    const svc = makeService(fake.baseUrl);
    await svc.initiateStkPush(validPush());
    await svc.initiateStkPush(validPush());
    expect(new Set(fake.requests.map((r) => r.remotePort)).size).toBe(3);
  });
});
