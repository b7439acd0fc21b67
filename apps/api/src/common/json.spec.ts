import { isPlainObject } from './json';

describe('isPlainObject', () => {
  it.each([[{}], [{ a: 1 }], [JSON.parse('{"Body":{"stkCallback":{}}}')], [Object.create(null)]])(
    'accepts the object %p',
    (v) => {
      expect(isPlainObject(v)).toBe(true);
    },
  );

  it.each([[null], [undefined], [[]], [[{ a: 1 }]], ['{}'], [0], [true]])('refuses %p', (v) => {
    expect(isPlainObject(v)).toBe(false);
  });
});
