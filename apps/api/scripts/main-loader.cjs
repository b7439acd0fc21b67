// dist/main.js after `pnpm build` (copied there by scripts/bundle.mjs): what `pnpm start` runs.
//
// It runs the bundled API (dist/main.bundle.js, one file instead of ~2,000 modules) with V8's
// code cache (dist/main.bundle.cache, written by the build): the bundle's code is then neither
// parsed nor compiled again at each start. Node 20 has no module.enableCompileCache (22.1+), so
// this does by hand what it does: vm.Script with cachedData.
//
// The cache is used only for the bundle it was made from: its header holds the SHA-1 of the
// bundle's bytes (V8 itself checks only the source's length), so a bundle rebuilt or edited without
// a new cache just starts without one, while a copy of dist/ (cp -r, an artifact upload: new
// modification times) keeps its cache. Hashing the bundle takes a few ms. V8 rejects a cache from
// another Node version or other V8 flags; the start is then only slower.
// SMARTDUKA_CODE_CACHE_DEBUG=1 prints whether the cache was used.
//
//   node dist/main.js                      start the API
//   node dist/main.js --write-code-cache   (the build) load the bundle, write the cache, exit
'use strict';
/* global process, Buffer */
const { createHash } = require('node:crypto');
const { readFileSync, writeFileSync, renameSync } = require('node:fs');
const { createRequire } = require('node:module');
const Module = require('node:module');
const { join } = require('node:path');
const vm = require('node:vm');

const BUNDLE = join(__dirname, 'main.bundle.js');
const CACHE = join(__dirname, 'main.bundle.cache');
const writeCache = process.argv.includes('--write-code-cache');

const source = readFileSync(BUNDLE);
const stamp = Buffer.from(`sha1:${createHash('sha1').update(source).digest('hex')}`.padEnd(64, ' '));

/** The cache's V8 data, when its header says it was made from this bundle. */
function cachedData() {
  if (writeCache) return undefined;
  let file;
  try {
    file = readFileSync(CACHE);
  } catch {
    return undefined; // not built (e.g. tsc alone): start without
  }
  return file.subarray(0, 64).equals(stamp) ? file.subarray(64) : undefined;
}

const cached = cachedData();
const script = new vm.Script(
  `(function (exports, require, module, __filename, __dirname) {${source.toString('utf8')}\n})`,
  {
    filename: BUNDLE,
    cachedData: cached,
    // import() in bundled packages (e.g. load-esm) resolves as it would in a module.
    importModuleDynamically: vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER,
  },
);
if (process.env.SMARTDUKA_CODE_CACHE_DEBUG === '1' && !writeCache)
  process.stderr.write(
    `code cache: ${!cached ? 'none for this bundle' : script.cachedDataRejected ? 'rejected by V8' : 'used'}\n`,
  );
const bundle = new Module(BUNDLE, module);
bundle.filename = BUNDLE;
bundle.paths = Module._nodeModulePaths(__dirname);
script.runInThisContext().call(bundle.exports, bundle.exports, createRequire(BUNDLE), bundle, BUNDLE, __dirname);
bundle.loaded = true;

if (writeCache) {
  // Every module of the app loaded (their top level run, not the app started): their compiled
  // code goes in the cache.
  bundle.exports.loadApp().then(
    () => {
      const tmp = `${CACHE}.${process.pid}.tmp`;
      writeFileSync(tmp, Buffer.concat([stamp, script.createCachedData()]));
      renameSync(tmp, CACHE);
      process.stdout.write(`code cache written: ${CACHE}\n`);
      process.exit(0);
    },
    (err) => {
      process.stderr.write(`code cache not written: ${err instanceof Error ? err.stack : String(err)}\n`);
      process.exit(1);
    },
  );
} else {
  bundle.exports.start();
}
