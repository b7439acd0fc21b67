import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * dist/main.js (scripts/main-loader.cjs) runs the bundle with the V8 code cache the build wrote,
 * only for the very bundle it was made from. It told them apart by size and modification time, so
 * a copy of dist/ (cp -r, a CI artifact: same bytes, new times) started without its cache, while
 * the bytes alone decide now. A tiny bundle stands in for the API's.
 */
describe('the bundle loader’s code cache', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sd-loader-'));
  const bundle = join(dir, 'main.bundle.js');
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const run = (...args: string[]) => {
    const r = spawnSync(process.execPath, [join(dir, 'main.js'), ...args], {
      encoding: 'utf8',
      env: { ...process.env, SMARTDUKA_CODE_CACHE_DEBUG: '1' },
    });
    expect(r.status).toBe(0);
    return r.stderr.trim();
  };

  beforeAll(() => {
    copyFileSync(join(__dirname, '..', 'scripts', 'main-loader.cjs'), join(dir, 'main.js'));
    writeFileSync(
      bundle,
      `function f(n) { return n < 2 ? n : f(n - 1) + f(n - 2); }\nexports.loadApp = async () => f(20);\nexports.start = () => { f(5); };\n`,
    );
    expect(run('--write-code-cache')).toBe('');
  });

  it('is used for the bundle it was made from, also after the bundle was copied (new modification time)', () => {
    expect(run()).toBe('code cache: used');
    const later = new Date(Date.now() + 3_600_000);
    utimesSync(bundle, later, later);
    expect(run()).toBe('code cache: used');
  });

  it('is not used for a bundle edited after the build, even one of the same length', () => {
    const text = readFileSync(bundle, 'utf8');
    writeFileSync(bundle, text.replace('f(5)', 'f(6)'));
    expect(run()).toBe('code cache: none for this bundle');
  });
});
