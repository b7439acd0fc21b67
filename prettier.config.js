/**
 * Prettier for the whole repository (`pnpm format` writes, `pnpm lint` checks).
 *
 * printWidth 120: before Prettier, code lines ran to 327 characters while comments were wrapped
 * by hand at about 100. At 120 a line of code still holds a typical NestJS signature or a
 * one-line guard (`if (!isPlainObject(x)) throw new ValidationFailedError('…', { field })`), the
 * comments keep their width inside it, and a side-by-side diff fits a laptop screen. 100 would
 * break half the code into one-argument-per-line columns (24k changed lines against 16k at 120);
 * 140 changes fewer lines but leaves lines too long to read beside their comments.
 * The rest is the code's existing style: single quotes, semicolons, trailing commas.
 *
 * `pnpm format` runs Prettier twice: on a few long member chains (`t.http().get(…).query({…})`)
 * Prettier 3.10 settles only on its second pass, and `--check` would then fail after one. For the
 * same reason `pnpm lint:format` runs without `--cache`: the cache records a written file as
 * formatted and would hide a file that a second pass still changes.
 */
/** @type {import('prettier').Config} */
module.exports = {
  printWidth: 120,
  singleQuote: true,
  trailingComma: 'all',
};
