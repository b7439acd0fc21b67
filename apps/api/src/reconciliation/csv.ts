/**
 * A small streaming CSV parser (RFC 4180 plus what real exports do): quoted fields, escaped quotes
 * (""), commas and newlines inside quotes, CRLF / LF / lone CR line endings, a UTF-8 BOM, and input
 * split at any byte (multi-byte characters and quoted fields may straddle chunks).
 *
 * Memory is bounded by the longest record (maxRecordChars), never by the input size.
 */

export interface CsvRecord {
  /** 1-based physical line number where the record starts */
  line: number;
  fields: string[];
}

export class CsvTooLongError extends Error {
  constructor(
    readonly line: number,
    readonly limit: number,
  ) {
    super(`CSV record starting on line ${line} is longer than ${limit} characters`);
    this.name = 'CsvTooLongError';
  }
}

const QUOTE = 34; // "
const COMMA = 44; // ,
const CR = 13;
const LF = 10;

export class CsvParser {
  private field = '';
  private fields: string[] = [];
  private inQuotes = false;
  /** just saw a quote inside a quoted field: either an escaped quote or the closing quote */
  private quotePending = false;
  /** last chunk ended with CR: a following LF belongs to it */
  private skipLf = false;
  /** the current field was quoted (so an empty quoted field still counts as a field) */
  private fieldStarted = false;
  private line = 1;
  private recordLine = 1;
  private recordChars = 0;
  private first = true;

  constructor(private readonly maxRecordChars = 1_000_000) {}

  /** Parses one chunk; returns the records completed by it. */
  push(chunk: string): CsvRecord[] {
    const out: CsvRecord[] = [];
    let s = chunk;
    if (this.first && s.length > 0) {
      this.first = false;
      if (s.charCodeAt(0) === 0xfeff) s = s.slice(1);
    }
    const n = s.length;
    let i = 0;
    if (this.skipLf && n > 0) {
      this.skipLf = false;
      if (s.charCodeAt(0) === LF) i = 1;
    }
    let start = i; // start of the pending slice of plain characters to append to this.field
    while (i < n) {
      const c = s.charCodeAt(i);
      if (this.inQuotes) {
        if (this.quotePending) {
          this.quotePending = false;
          if (c === QUOTE) {
            // escaped quote: keep one
            this.field += '"';
            i++;
            start = i;
            continue;
          }
          this.inQuotes = false; // closing quote; fall through to handle c unquoted
          start = i;
        } else {
          if (c === QUOTE) {
            this.field += s.slice(start, i);
            this.quotePending = true;
            i++;
            start = i;
            continue;
          }
          if (c === LF) this.line++;
          else if (c === CR && s.charCodeAt(i + 1) !== LF) this.line++;
          i++;
          continue;
        }
      }
      // unquoted
      if (c === COMMA) {
        this.field += s.slice(start, i);
        this.endField();
        i++;
        start = i;
      } else if (c === LF || c === CR) {
        this.field += s.slice(start, i);
        this.endRecord(out);
        this.line++;
        if (c === CR) {
          if (i + 1 < n) {
            if (s.charCodeAt(i + 1) === LF) i++;
          } else this.skipLf = true;
        }
        i++;
        start = i;
        this.recordLine = this.line;
      } else if (c === QUOTE && !this.fieldStarted && this.field.length === 0 && start === i) {
        this.inQuotes = true;
        this.fieldStarted = true;
        i++;
        start = i;
      } else {
        i++;
      }
    }
    if (!this.inQuotes || !this.quotePending) this.field += s.slice(start, n);
    this.recordChars += n;
    if (this.recordChars > this.maxRecordChars && this.field.length + this.fields.length > 0) {
      // recordChars counts the whole chunk; measure the record precisely before failing
      const size = this.field.length + this.fields.reduce((a, f) => a + f.length + 1, 0);
      if (size > this.maxRecordChars) throw new CsvTooLongError(this.recordLine, this.maxRecordChars);
    }
    return out;
  }

  /** Flushes the last record (input without a trailing newline). */
  end(): CsvRecord[] {
    const out: CsvRecord[] = [];
    if (this.field.length > 0 || this.fields.length > 0 || this.fieldStarted) this.endRecord(out);
    return out;
  }

  private endField(): void {
    this.fields.push(this.field);
    this.field = '';
    this.fieldStarted = false;
  }

  private endRecord(out: CsvRecord[]): void {
    this.endField();
    const fields = this.fields;
    this.fields = [];
    this.recordChars = 0;
    // blank lines are not records
    if (!(fields.length === 1 && fields[0] === '')) out.push({ line: this.recordLine, fields });
  }
}

/** Streams records from bytes or strings (UTF-8), in arrays (one per input chunk) to keep overhead low. */
export async function* csvRecordBatches(
  source: AsyncIterable<Buffer | Uint8Array | string>,
  maxRecordChars?: number,
): AsyncGenerator<CsvRecord[]> {
  const parser = new CsvParser(maxRecordChars);
  const decoder = new TextDecoder('utf-8');
  for await (const chunk of source) {
    const text = typeof chunk === 'string' ? chunk : decoder.decode(chunk, { stream: true });
    const recs = parser.push(text);
    if (recs.length) yield recs;
  }
  const tail = decoder.decode();
  const last = [...(tail ? parser.push(tail) : []), ...parser.end()];
  if (last.length) yield last;
}
