import { sql } from 'drizzle-orm';
import { startExtraTestApp, startTestApp, TestApp, waitFor } from './helpers/test-app';

/** Liveness and readiness as a load balancer or an orchestrator probes them. */
describe('GET /health/live and /health/ready', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp();
  });
  afterAll(() => t.close());

  it('live: the process serves, whatever its dependencies; /health stays as it was', async () => {
    const live = await t.http().get('/health/live');
    expect(live.status).toBe(200);
    expect(live.body).toEqual({ status: 'ok', uptimeSeconds: expect.any(Number) });
    const health = await t.http().get('/health');
    expect(health.body).toMatchObject({ status: 'ok', database: 'up', databaseKind: 'postgres' });
  });

  it('ready only when every migration of this build is applied', async () => {
    // A second instance that has not checked yet, over a database that lost its last migration record
    // (an instance of a newer build started before the migration ran).
    const last = (await t.db.execute(
      sql`select id, hash, created_at::text as created_at from drizzle.__drizzle_migrations order by created_at desc limit 1`,
    )) as unknown as { rows: { id: number; hash: string; created_at: string }[] };
    const row = (last.rows ?? (last as unknown as { id: number; hash: string; created_at: string }[]))[0];
    await t.db.execute(sql`delete from drizzle.__drizzle_migrations where id = ${row.id}`);
    const b = await startExtraTestApp(t);
    try {
      const notReady = await b.http().get('/health/ready');
      expect(notReady.status).toBe(503);
      expect(notReady.body).toEqual({ status: 'unavailable', database: 'up', pendingMigrations: 1, draining: false });
      await t.db.execute(
        sql`insert into drizzle.__drizzle_migrations (id, hash, created_at) values (${row.id}, ${row.hash}, ${row.created_at}::bigint)`,
      );
      const ready = await b.http().get('/health/ready');
      expect(ready.status).toBe(200);
      expect(ready.body).toEqual({ status: 'ready', database: 'up', pendingMigrations: 0, draining: false });
    } finally {
      await b.close();
    }
  });

  it('draining: after SIGTERM ready answers 503 for SHUTDOWN_DRAIN_MS while requests are still served', async () => {
    const b = await startExtraTestApp(t, { SHUTDOWN_DRAIN_MS: '3000' });
    expect((await b.http().get('/health/ready')).status).toBe(200);
    const closing = b.close();
    const draining = await waitFor(async () => {
      const r = await b.http().get('/health/ready');
      return r.status === 503 ? r : undefined;
    });
    expect(draining.body).toMatchObject({ status: 'unavailable', draining: true, database: 'up' });
    // Still serving meanwhile: liveness and real requests answer.
    expect((await b.http().get('/health/live')).status).toBe(200);
    expect((await b.http().get('/orders/NOPE').set('Authorization', `Bearer ${t.token()}`)).status).toBe(404);
    await closing;
  });
});
