import { pgTextArray } from './statement.repository';

describe('pgTextArray', () => {
  it('quotes and escapes every element', () => {
    expect(pgTextArray(['QK1ABC2DEF', 'A"B', 'C\\D', 'x,y', ''])).toBe('{"QK1ABC2DEF","A\\"B","C\\\\D","x,y",""}');
    expect(pgTextArray([])).toBe('{}');
  });
});
