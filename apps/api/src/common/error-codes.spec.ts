import { BadRequestException, UnauthorizedException } from '@nestjs/common';
import { ERROR_CODES, isErrorCode } from './error-codes';
import { toErrorBody } from './http-exception.filter';

describe('ERROR_CODES', () => {
  it('lists each code once, in capitals', () => {
    expect(new Set(ERROR_CODES).size).toBe(ERROR_CODES.length);
    for (const code of ERROR_CODES) expect(code).toMatch(/^[A-Z][A-Z0-9_]*$/);
  });

  it('keeps an unlisted code out of an answer: it falls back to the code of the status', () => {
    expect(isErrorCode('SOMETHING_NEW')).toBe(false);
    const body = toErrorBody(new UnauthorizedException({ code: 'SOMETHING_NEW', message: 'x' }));
    expect(body.code).toBe('UNAUTHORIZED');
    expect(toErrorBody(new UnauthorizedException({ code: 'TOKEN_EXPIRED', message: 'x' })).code).toBe('TOKEN_EXPIRED');
  });

  it('answers only listed codes, whatever was thrown', () => {
    const thrown: unknown[] = [
      new BadRequestException('Unexpected token } in JSON at position 3'),
      new BadRequestException(['amount must be a positive integer']),
      Object.assign(new Error('too big'), { status: 413, type: 'entity.too.large' }),
      Object.assign(new Error('odd'), { status: 418 }),
      new Error('boom'),
      'a string',
    ];
    for (const t of thrown) expect(isErrorCode(toErrorBody(t).code)).toBe(true);
  });
});
