/**
 * `postinstall`: builds the pre-migrated PGlite template so the first `pnpm dev` starts fast
 * (see database/pglite-template.ts). Never fails the install: without a template the first start
 * is just slower.
 */
import { buildPgliteTemplate } from '../database/pglite-template';

const started = Date.now();
buildPgliteTemplate()
  .then((path) => process.stdout.write(`PGlite template ready (${Date.now() - started} ms): ${path}\n`))
  .catch((err: unknown) =>
    process.stdout.write(
      `PGlite template not built (the first pnpm dev will just start slower): ${err instanceof Error ? err.message : String(err)}\n`,
    ),
  );
