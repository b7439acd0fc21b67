import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { buildOpenApi, createApp } from '../bootstrap';
import { loadConfig, REPO_ROOT } from '../config/app-config';
import { openDatabase } from '../database/database';

/**
 * Writes openapi.json (import it into Postman: File → Import). Usage: pnpm openapi [out-file]
 * Its `servers` entry is PUBLIC_BASE_URL when set in the environment, else the local dev server.
 */
async function main(): Promise<void> {
  // A relative path is relative to where the command was run (pnpm sets INIT_CWD), not apps/api.
  const out = resolve(process.env.INIT_CWD ?? process.cwd(), process.argv[2] ?? resolve(REPO_ROOT, 'openapi.json'));
  const config = loadConfig({
    NODE_ENV: 'test',
    MPESA_BASE_URL: 'http://127.0.0.1:9',
    LOG_LEVEL: 'silent',
    ...(process.env.PUBLIC_BASE_URL ? { PUBLIC_BASE_URL: process.env.PUBLIC_BASE_URL } : {}),
  });
  const database = await openDatabase({});
  const app = await createApp({ config, database });
  writeFileSync(out, JSON.stringify(buildOpenApi(app), null, 2) + '\n');
  await app.close();
  await database.close();
  process.stdout.write(`wrote ${out}\n`);
}

main().catch((err) => {
  process.stderr.write(String(err) + '\n');
  process.exit(1);
});
