import { classifyNetworkError, networkErrorCode } from './net-errors';

const withCode = (code: string, message = 'failed') => Object.assign(new Error(message), { code });

describe('networkErrorCode', () => {
  it('takes the error code, else its cause code, else the first code of an AggregateError cause', () => {
    expect(networkErrorCode(withCode('ECONNREFUSED'))).toBe('ECONNREFUSED');
    expect(networkErrorCode(new Error('fetch failed', { cause: withCode('ENOTFOUND') }))).toBe('ENOTFOUND');
    expect(
      networkErrorCode(
        new Error('fetch failed', { cause: new AggregateError([withCode('EHOSTUNREACH'), withCode('ECONNREFUSED')]) }),
      ),
    ).toBe('EHOSTUNREACH');
    expect(networkErrorCode({ code: 'EAI_AGAIN' })).toBe('EAI_AGAIN');
  });

  it.each([[undefined], [null], ['ECONNREFUSED'], [new Error('no code')], [withCode('')], [{ code: 42 }]])(
    'has none for %p',
    (err) => {
      expect(networkErrorCode(err)).toBeUndefined();
    },
  );
});

describe('classifyNetworkError', () => {
  it.each([
    ['ECONNREFUSED', 'unreachable'],
    ['ENOTFOUND', 'unreachable'],
    ['EAI_AGAIN', 'unreachable'],
    ['CERT_HAS_EXPIRED', 'unreachable'],
    ['ETIMEDOUT', 'timeout'],
    ['ECONNABORTED', 'timeout'],
    ['ECONNRESET', 'broken'],
    ['EPIPE', 'broken'],
    ['ERR_SOMETHING_NEW', 'broken'],
  ])('%s → %s', (code, failure) => {
    expect(classifyNetworkError(withCode(code))).toEqual({ failure, code });
  });

  it('reads a timeout from the message when there is no code; anything else unrecognised may have been acted on', () => {
    expect(classifyNetworkError(new Error('timeout of 150ms exceeded'))).toEqual({
      failure: 'timeout',
      code: undefined,
    });
    expect(classifyNetworkError(new Error('socket hang up'))).toEqual({ failure: 'broken', code: undefined });
    expect(classifyNetworkError('not even an error')).toEqual({ failure: 'broken', code: undefined });
  });
});
