/** Nest needs reflect-metadata loaded first; it is a dependency of apps/api, so it is required from there. */
import { createRequire } from 'node:module';
import { resolve } from 'node:path';

createRequire(resolve(__dirname, '../../apps/api/package.json'))('reflect-metadata');
