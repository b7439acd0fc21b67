import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'drizzle-orm';
import { SecretBox } from '../src/common/secret-box';
import { sealContext } from '../src/payments/merchant-accounts.service';
import { runCli as runCliScript } from './helpers/cli';
import { createTestDatabase, TestDatabase } from './helpers/test-db';

/** `pnpm credentials:reencrypt` (src/cli/reencrypt-credentials.ts), as an operator runs it. */
async function runCli(args: string[], env: Record<string, string>): Promise<{ code: number | null; out: string }> {
  const r = await runCliScript('reencrypt-credentials.ts', args, env);
  return { code: r.code, out: r.stdout + r.stderr };
}

describe('pnpm credentials:reencrypt', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'sd-reencrypt-'));
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  it('refuses the embedded database unless told the API is stopped (PGlite takes one process)', async () => {
    const r = await runCli([], { DATA_DIR: dataDir, DATABASE_URL: '' });
    expect(r.code).toBe(2);
    expect(r.out).toMatch(/stop `pnpm dev` first/);
  }, 60_000);

  const pg = process.env.DATABASE_URL ? it : it.skip;
  let db: TestDatabase | undefined;
  afterAll(async () => db?.dispose());
  pg(
    're-seals every row under the newest key on Postgres and says when the old key can go',
    async () => {
      db = await createTestDatabase();
      const oldKey = randomBytes(32);
      const newKey = randomBytes(32);
      const box = new SecretBox([{ id: 'old', key: oldKey }]);
      for (const shopId of ['cli-a', 'cli-b']) {
        const id = randomUUID();
        const settings = { type: 'paybill', shortcode: '600111' };
        const sealed = box.seal(
          JSON.stringify({ consumerKey: 'k', consumerSecret: 's', passkey: 'p' }),
          sealContext({ id, provider: 'mpesa', shopId, environment: 'simulator', settings }),
        );
        await db.handle.db.execute(
          sql`insert into merchant_accounts (id, shop_id, provider, environment, settings, secrets, key_id, fingerprints, created_by) values (${id}, ${shopId}, 'mpesa', 'simulator', ${JSON.stringify(settings)}::jsonb, ${sealed.sealed}, 'old', '{}'::jsonb, 'test')`,
        );
      }
      const keys = `new:${newKey.toString('base64')},old:${oldKey.toString('base64')}`;
      const r = await runCli([], { DATABASE_URL: db.url as string, DATA_DIR: dataDir, CREDENTIALS_KEYS: keys });
      expect(r.out).toMatch(/re-sealed 2 account\(s\) under key "new"/);
      expect(r.out).toMatch(/older keys can be dropped/);
      expect(r.code).toBe(0);
      const rows = await db.handle.db.execute(sql`select key_id from merchant_accounts`);
      expect((rows as unknown as { rows: Array<{ key_id: string }> }).rows.map((x) => x.key_id)).toEqual([
        'new',
        'new',
      ]);
    },
    60_000,
  );
});
