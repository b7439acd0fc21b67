import { SharedLookups } from './shared-lookup';

function deferred<T>() {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

describe('SharedLookups', () => {
  it('concurrent callers with one key share one claim and one lookup; the answer is recorded with the claim time', async () => {
    const answered: [string, string][] = [];
    const lookups = new SharedLookups<string>(async (id, at) => void answered.push([id, at]));
    const gate = deferred<string>();
    let claims = 0;
    let asks = 0;
    const claim = async () => (++claims, '2026-12-02 10:00:00.123456+00');
    const ask = () => (++asks, gate.promise);
    const turns = [
      lookups.turn('p1', 'p1|x', claim, ask),
      lookups.turn('p1', 'p1|x', claim, ask),
      lookups.turn('p1', 'p1|x', claim, ask),
    ];
    await Promise.resolve();
    gate.resolve('pending');
    const [first, ...others] = await Promise.all(turns);
    expect(first).toEqual({ asked: true, shared: false, value: 'pending' });
    for (const t of others) expect(t).toEqual({ asked: true, shared: true, value: 'pending' });
    expect({ claims, asks }).toEqual({ claims: 1, asks: 1 });
    expect(answered).toEqual([['p1', '2026-12-02 10:00:00.123456+00']]);
    expect(lookups.inFlight).toBe(0);
  });

  it('a lost claim is {asked: false} and asks nothing; another key is independent', async () => {
    const lookups = new SharedLookups<number>(async () => undefined);
    let asks = 0;
    expect(
      await lookups.turn(
        'p1',
        'p1',
        async () => null,
        async () => ++asks,
      ),
    ).toEqual({ asked: false });
    expect(
      await lookups.turn(
        'p2',
        'p2',
        async () => 'now',
        async () => ++asks,
      ),
    ).toEqual({ asked: true, shared: false, value: 1 });
    expect(asks).toBe(1);
  });

  it('a failed lookup reaches every caller that shared it, is not recorded as answered, and the next turn starts afresh', async () => {
    const answered: string[] = [];
    const lookups = new SharedLookups<string>(async (id) => void answered.push(id));
    const gate = deferred<string>();
    const a = lookups.turn(
      'p1',
      'k',
      async () => 'now',
      () => gate.promise,
    );
    const b = lookups.turn(
      'p1',
      'k',
      async () => 'now',
      () => gate.promise,
    );
    await Promise.resolve();
    gate.reject(new Error('provider down'));
    await expect(a).rejects.toThrow('provider down');
    await expect(b).rejects.toThrow('provider down');
    expect(answered).toEqual([]);
    expect(
      await lookups.turn(
        'p1',
        'k',
        async () => 'later',
        async () => 'ok',
      ),
    ).toEqual({ asked: true, shared: false, value: 'ok' });
  });

  it('a failure to record the answer does not fail the answer', async () => {
    const lookups = new SharedLookups<string>(async () => {
      throw new Error('database down');
    });
    expect(
      await lookups.turn(
        'p1',
        'k',
        async () => 'now',
        async () => 'completed',
      ),
    ).toEqual({ asked: true, shared: false, value: 'completed' });
  });
});
