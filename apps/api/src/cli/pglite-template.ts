/**
 * `postinstall` and `pnpm build`: builds the pre-migrated PGlite template so the first start
 * (`pnpm dev`, `pnpm start`) is fast (see database/pglite-template.ts). Never fails the install or
 * the build: without a template the first start is just slower.
 */
import { buildPgliteTemplate } from '../database/pglite-template';

const started = Date.now();
buildPgliteTemplate()
  .then((path) => process.stdout.write(`PGlite template ready (${Date.now() - started} ms): ${path}\n`))
  .catch((err: unknown) =>
    process.stdout.write(
      `PGlite template not built (the first start will just be slower): ${err instanceof Error ? err.message : String(err)}\n`,
    ),
  );
