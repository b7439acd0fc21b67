import { spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { sql } from 'drizzle-orm';
import { SecretBox } from '../src/common/secret-box';
import { sealContext } from '../src/payments/merchant-accounts.service';
import { TEST_CALLBACK_SECRET, TEST_JWT_SECRET } from './helpers/test-app';
import { createTestDatabase, TestDatabase } from './helpers/test-db';

/** `pnpm credentials:reencrypt` (src/cli/reencrypt-credentials.ts), as an operator runs it. */
const API_DIR = resolve(__dirname, '..');

function runCli(args: string[], env: Record<string, string>): Promise<{ code: number | null; out: string }> {
  return new Promise((done, fail) => {
    const base = Object.fromEntries(
      Object.entries(process.env).filter(([k]) => !['DATABASE_URL', 'DATA_DIR', 'NODE_OPTIONS'].includes(k)),
    ) as Record<string, string>;
    const child = spawn(process.execPath, ['-r', '@swc-node/register', 'src/cli/reencrypt-credentials.ts', ...args], {
      cwd: API_DIR,
      env: {
        ...base,
        NODE_ENV: 'test',
        LOG_LEVEL: 'silent',
        JWT_SECRET: TEST_JWT_SECRET,
        CALLBACK_SIGNING_SECRET: TEST_CALLBACK_SECRET,
        INIT_CWD: API_DIR,
        ...env,
      },
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', fail);
    child.on('exit', (code) => done({ code, out }));
  });
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
