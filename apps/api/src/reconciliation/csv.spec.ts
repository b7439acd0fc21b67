import { CsvParser, csvRecordBatches, CsvTooLongError } from './csv';

function parseAll(chunks: (string | Buffer)[]): { line: number; fields: string[] }[] {
  const p = new CsvParser();
  const out = [];
  for (const c of chunks) out.push(...p.push(typeof c === 'string' ? c : c.toString()));
  out.push(...p.end());
  return out;
}

async function parseStream(chunks: (string | Buffer)[]): Promise<{ line: number; fields: string[] }[]> {
  const out = [];
  async function* src() {
    yield* chunks;
  }
  for await (const batch of csvRecordBatches(src())) out.push(...batch);
  return out;
}

const SAMPLE = '\uFEFFa,b,c\r\n1,"x, y","say ""hi"""\r\n2,"multi\nline",\r\n\r\n3,,"" \n4,"",z';
const EXPECTED = [
  { line: 1, fields: ['a', 'b', 'c'] },
  { line: 2, fields: ['1', 'x, y', 'say "hi"'] },
  { line: 3, fields: ['2', 'multi\nline', ''] },
  { line: 6, fields: ['3', '', ' '] },
  { line: 7, fields: ['4', '', 'z'] },
];

describe('CsvParser', () => {
  it('parses quotes, escaped quotes, commas and newlines in quotes, CRLF, a BOM, blank lines, no trailing newline', () => {
    expect(parseAll([SAMPLE])).toEqual(EXPECTED);
  });

  it('gives the same records whatever the chunk boundaries (every split point, and one char at a time)', () => {
    for (let i = 0; i <= SAMPLE.length; i++) {
      expect(parseAll([SAMPLE.slice(0, i), SAMPLE.slice(i)])).toEqual(EXPECTED);
    }
    expect(parseAll([...SAMPLE])).toEqual(EXPECTED);
  });

  it('handles a quoted field split right after a quote (escaped quote across chunks) and CR|LF across chunks', () => {
    expect(parseAll(['x,"a""', 'b"\r', '\ny,"c"', '""\n'])).toEqual([
      { line: 1, fields: ['x', 'a"b'] },
      { line: 2, fields: ['y', 'c"'] },
    ]);
  });

  it('accepts lone CR line endings and LF-only files', () => {
    expect(parseAll(['a,b\rc,d\r'])).toEqual([
      { line: 1, fields: ['a', 'b'] },
      { line: 2, fields: ['c', 'd'] },
    ]);
    expect(parseAll(['a,b\nc,d\n'])).toEqual([
      { line: 1, fields: ['a', 'b'] },
      { line: 2, fields: ['c', 'd'] },
    ]);
  });

  it('decodes UTF-8 split inside a multi-byte character and strips a BOM split across chunks', async () => {
    const bytes = Buffer.from('\uFEFFname,city\n"Wanjirũ, K",Nyeri\n', 'utf8');
    for (let i = 0; i <= bytes.length; i++) {
      await expect(parseStream([bytes.subarray(0, i), bytes.subarray(i)])).resolves.toEqual([
        { line: 1, fields: ['name', 'city'] },
        { line: 2, fields: ['Wanjirũ, K', 'Nyeri'] },
      ]);
    }
  });

  it('refuses a record longer than the limit instead of buffering without end', () => {
    const p = new CsvParser(100);
    expect(() => p.push('a,"' + 'x'.repeat(200))).toThrow(CsvTooLongError);
  });
});
