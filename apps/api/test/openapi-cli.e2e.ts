import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { step, testTimeout } from './helpers/deadlines';

const REPO = resolve(__dirname, '../../..');
const BUDGET_MS = 60_000;

/** `pnpm openapi [file]` as README says: the file lands where the user ran it, not in apps/api. */
describe('pnpm openapi (the Postman export)', () => {
  const dir = mkdtempSync(join(REPO, 'node_modules', '.openapi-cli-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it(
    'writes a relative path from the directory pnpm was run in',
    async () => {
      const rel = relative(REPO, join(dir, 'api.json'));
      let out = '';
      const code = await step(
        'pnpm openapi to write the document',
        BUDGET_MS,
        () =>
          new Promise<number | null>((r) => {
            const child = spawn('pnpm', ['openapi', rel], {
              cwd: REPO,
              env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '' },
              stdio: ['ignore', 'pipe', 'pipe'],
            });
            child.stdout!.on('data', (d) => (out += d));
            child.stderr!.on('data', (d) => (out += d));
            child.once('exit', (c) => r(c));
          }),
        () => out,
      );
      expect({ code, out: code === 0 ? '' : out }).toEqual({ code: 0, out: '' });
      expect(existsSync(join(REPO, 'apps/api', rel))).toBe(false);
      const doc = JSON.parse(readFileSync(join(dir, 'api.json'), 'utf8')) as { paths: Record<string, unknown> };
      expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/orders', '/payments/stk-push']));
    },
    testTimeout(BUDGET_MS),
  );
});
