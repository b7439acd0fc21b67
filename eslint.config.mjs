// ESLint for the whole repository (apps/api, packages/*, bench), run by `pnpm lint`.
// typescript-eslint's recommended rules without type information: a type-checked run would build
// a TypeScript program per package again, which `pnpm typecheck` already does. eslint-config-prettier
// comes last so that no rule argues with Prettier about layout.
import js from '@eslint/js';
import { defineConfig } from 'eslint/config';
import prettier from 'eslint-config-prettier';
import tseslint from 'typescript-eslint';

export default defineConfig(
  {
    ignores: [
      '**/node_modules/',
      '**/dist/',
      '**/coverage/',
      '**/.data/',
      '**/.test-logs/',
      '**/.turbo/',
      '**/.stryker-tmp/',
      '**/reports/',
      'bench/results/',
    ],
  },
  js.configs.recommended,
  tseslint.configs.recommended,
  {
    rules: {
      // A leading underscore marks a value left unused on purpose: a parameter an interface
      // requires (`maskSecret(_secret)`) or a key taken out of an object to keep the rest
      // (`const { agent: _agent, ...rest } = options`).
      '@typescript-eslint/no-unused-vars': [
        'error',
        {
          argsIgnorePattern: '^_',
          varsIgnorePattern: '^_',
          caughtErrorsIgnorePattern: '^_',
          destructuredArrayIgnorePattern: '^_',
          ignoreRestSiblings: true,
        },
      ],
      // Input validation here rejects control characters on purpose (`/[\x00-\x1f\x7f]/` in the
      // DTOs and the Daraja callback parser); the rule exists to catch them by accident.
      'no-control-regex': 'off',
    },
  },
  {
    // The jest and dependency-cruiser configs are CommonJS scripts run by Node.
    files: ['**/*.js', '**/*.cjs'],
    languageOptions: {
      sourceType: 'commonjs',
      globals: { module: 'writable', require: 'readonly', __dirname: 'readonly' },
    },
    // CommonJS loads with require() (e.g. apps/api/mutation/jest.config.js extends ../jest.config).
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  prettier,
);
