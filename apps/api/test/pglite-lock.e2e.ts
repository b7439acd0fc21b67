import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'drizzle-orm';
import { openDatabase, pgliteDirFor } from '../src/database/database';
import { lockPathFor, PgliteDirInUseError } from '../src/database/pglite-lock';

/**
 * One process per embedded PGlite folder: a second `pnpm start` (another PORT) or a CLI on the
 * DATA_DIR of a running server used to open it too, each process with its own view of the
 * database (an order created by one was a 404 on the other) writing over the other's files.
 */
const API_DIR = join(__dirname, '..');

/** Another process opening `dir` as the server does: its exit status and what it printed. */
function openInChild(dir: string): { status: number | null; out: string } {
  const code = `require('./src/database/database').openDatabase({ pgliteDir: ${JSON.stringify(dir)} })
    .then(async (d) => { await d.migrate(); await d.close(); process.stdout.write('opened'); })
    .catch((e) => { process.stdout.write(String(e && e.message)); process.exit(3); });`;
  const r = spawnSync(process.execPath, ['-r', '@swc-node/register', '-e', code], {
    cwd: API_DIR,
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

describe('an embedded PGlite folder is opened by one process at a time', () => {
  const root = mkdtempSync(join(tmpdir(), 'sd-pglite-lock-'));
  const dir = pgliteDirFor(root);
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('a second process is refused while the first has it open, saying who holds it; it opens once the first closed', async () => {
    const first = await openDatabase({ pgliteDir: dir });
    try {
      await first.migrate();
      expect(readFileSync(lockPathFor(dir), 'utf8').trim()).toBe(String(process.pid));
      const second = openInChild(dir);
      expect(second.status).toBe(3);
      expect(second.out).toContain(`The embedded database in ${dir} is in use by process ${process.pid}`);
      // and in this process too
      await expect(openDatabase({ pgliteDir: dir })).rejects.toBeInstanceOf(PgliteDirInUseError);
      await first.db.execute(sql`select 1`);
    } finally {
      await first.close();
    }
    expect(existsSync(lockPathFor(dir))).toBe(false);
    expect(openInChild(dir)).toEqual({ status: 0, out: expect.stringContaining('opened') });
  }, 120_000);

  it('a lock left by a process that is gone (SIGKILL, a crash) is taken over', async () => {
    const gone = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
    writeFileSync(lockPathFor(dir), `${gone.stdout}\n`);
    const db = await openDatabase({ pgliteDir: dir });
    expect(readFileSync(lockPathFor(dir), 'utf8').trim()).toBe(String(process.pid));
    await db.close();
    expect(existsSync(lockPathFor(dir))).toBe(false);
  }, 60_000);

  it('pnpm dev on a folder a running process holds says so in its message alone and exits 1', async () => {
    const first = await openDatabase({ pgliteDir: dir });
    try {
      const r = spawnSync(process.execPath, ['-r', '@swc-node/register', 'src/main.ts'], {
        cwd: API_DIR,
        encoding: 'utf8',
        timeout: 60_000,
        env: {
          ...process.env,
          DATABASE_URL: '',
          DATA_DIR: root,
          PORT: '0',
          POS_ENABLED: 'false',
          NODE_ENV: 'development',
        },
      });
      expect(r.status).toBe(1);
      expect(r.stderr).toContain(
        `Failed to start: The embedded database in ${dir} is in use by process ${process.pid}`,
      );
      expect(r.stderr).not.toMatch(/at \w+ \(/); // no stack trace
    } finally {
      await first.close();
    }
  }, 90_000);
});
