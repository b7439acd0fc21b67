import { cpSync, existsSync, mkdtempSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'drizzle-orm';
import { openDatabase, pgliteDirFor } from '../src/database/database';
import { buildPgliteTemplate, pgliteTemplateDir, pgliteTemplatePath } from '../src/database/pglite-template';

/**
 * A first start copies the pre-migrated template directory (node_modules/.cache/smartduka). A
 * template that lost files (a partial copy of the install, a cache cleaner) was copied all the
 * same, PGlite aborted on the copy, and every later start failed on the broken copy it left.
 * Swaps this install's template for a broken one for the test, then puts it back.
 */
describe('a broken PGlite template', () => {
  const root = mkdtempSync(join(tmpdir(), 'sd-pglite-template-'));
  const aside = join(root, 'template-aside');
  const asideTar = join(root, 'template-aside.tar');

  beforeAll(async () => {
    await buildPgliteTemplate();
    renameSync(pgliteTemplateDir(), aside);
    renameSync(pgliteTemplatePath(), asideTar);
    cpSync(aside, pgliteTemplateDir(), { recursive: true });
    cpSync(asideTar, pgliteTemplatePath());
    // PG_VERSION stays (it looks like a template), the cluster does not open without these
    rmSync(join(pgliteTemplateDir(), 'global', 'pg_control'));
    rmSync(join(pgliteTemplateDir(), 'pg_wal'), { recursive: true });
  }, 60_000);
  afterAll(() => {
    rmSync(pgliteTemplateDir(), { recursive: true, force: true });
    rmSync(pgliteTemplatePath(), { force: true });
    renameSync(aside, pgliteTemplateDir());
    renameSync(asideTar, pgliteTemplatePath());
    rmSync(root, { recursive: true, force: true });
  });

  it('is not copied into a working database: the first start makes it without the template, and the template goes', async () => {
    const dir = pgliteDirFor(join(root, 'data'));
    const db = await openDatabase({ pgliteDir: dir });
    try {
      await db.migrate();
      expect(await db.pendingMigrations()).toBe(0);
      await db.db.execute(sql`select count(*) from orders`);
    } finally {
      await db.close();
    }
    expect(existsSync(pgliteTemplateDir())).toBe(false);
    // and the next start opens what this one made
    const again = await openDatabase({ pgliteDir: dir });
    expect(await again.pendingMigrations()).toBe(0);
    await again.close();
  }, 120_000);
});
