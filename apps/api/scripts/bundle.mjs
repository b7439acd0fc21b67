// `pnpm build`, after tsc: bundles the compiled API (dist/main.js and all it imports, node_modules
// included) into dist/main.bundle.js, puts the loader (scripts/main-loader.cjs) in its place as
// dist/main.js, and writes the loader's V8 code cache. A start then reads one file instead of
// resolving and reading ~2,000, and compiles nothing it has compiled before (bench/README.md §4).
//
// The JavaScript tsc emitted is bundled, not the TypeScript: the decorator metadata Nest needs
// (emitDecoratorMetadata) is already in it. Left out of the bundle, loaded from node_modules at
// run time:
//   - @electric-sql/pglite: it reads its .wasm and .data files next to its own code;
//   - swagger-ui-dist: @nestjs/swagger serves Swagger UI's files from the package's folder;
//   - @nestjs/microservices, @nestjs/websockets, class-transformer/storage: optional requires
//     Nest tries and tolerates failing (not installed, not used);
//   - the simulators and the POS screen (@smartduka/*): required by path, only in development,
//     from their own builds (src/main.ts, devPackage).
import { build } from 'esbuild';
import { spawnSync } from 'node:child_process';
import { copyFileSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';

const API_DIR = join(dirname(fileURLToPath(import.meta.url)), '..');
const DIST = join(API_DIR, 'dist');
const ENTRY = join(DIST, 'main.js');
const LOADER = join(API_DIR, 'scripts', 'main-loader.cjs');

if (readFileSync(ENTRY, 'utf8') === readFileSync(LOADER, 'utf8'))
  throw new Error(`${ENTRY} is the loader already: run tsc (pnpm build) first, the bundle is made from its output`);

const started = Date.now();
const result = await build({
  entryPoints: [ENTRY],
  outfile: join(DIST, 'main.bundle.js'),
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  // tsc's source maps are followed: node --enable-source-maps dist/main.js points at src/*.ts.
  sourcemap: 'linked',
  // Class names stay (Nest names its loggers and injection tokens after them).
  keepNames: true,
  external: [
    '@electric-sql/pglite',
    'swagger-ui-dist',
    '@nestjs/microservices',
    '@nestjs/websockets',
    'class-transformer/storage',
    '@smartduka/*',
  ],
  logLevel: 'warning',
  metafile: true,
});
const inputs = Object.keys(result.metafile.inputs).length;
copyFileSync(LOADER, ENTRY);
rmSync(`${ENTRY}.map`, { force: true }); // tsc's map of the file the loader replaced
process.stdout.write(`bundled ${inputs} modules into dist/main.bundle.js (${Date.now() - started} ms)\n`);

const cache = spawnSync(process.execPath, [ENTRY, '--write-code-cache'], { cwd: API_DIR, stdio: 'inherit' });
if (cache.status !== 0) throw new Error(`writing the code cache failed (exit ${cache.status})`);
