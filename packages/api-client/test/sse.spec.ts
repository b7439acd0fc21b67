import { compareEventIds, SseParser } from '../src/sse';

describe('SseParser', () => {
  it('parses id, event and data, skips comments and takes retry', () => {
    const p = new SseParser();
    const events = p.push('retry: 2000\n: ping\nid: 7\nevent: payment\ndata: {"status":"pending"}\n\n');
    expect(events).toEqual([{ type: 'payment', data: '{"status":"pending"}', id: '7' }]);
    expect(p.lastEventId).toBe('7');
    expect(p.retryMs).toBe(2000);
  });

  it('joins multi-line data with \\n and defaults the type to message', () => {
    const p = new SseParser();
    expect(p.push('data: a\ndata:b\ndata:  c\n\n')).toEqual([{ type: 'message', data: 'a\nb\n c' }]);
  });

  it('handles events split anywhere across chunks, including a CRLF split between two chunks', () => {
    const text = 'id: 1\r\nevent: payment\r\ndata: {"n":1}\r\n\r\nid: 2\revent: end\rdata: {"status":"completed"}\r\r';
    for (let cut = 0; cut <= text.length; cut++) {
      const p = new SseParser();
      const events = [...p.push(text.slice(0, cut)), ...p.push(text.slice(cut)), ...p.end()];
      expect(events).toEqual([
        { type: 'payment', data: '{"n":1}', id: '1' },
        { type: 'end', data: '{"status":"completed"}', id: '2' },
      ]);
    }
  });

  it('a CR followed by LF in the next chunk is one line break, not two (no empty event dispatch in between)', () => {
    const p = new SseParser();
    expect(p.push('data: x\r')).toEqual([]);
    expect(p.push('\ndata: y\n\n')).toEqual([{ type: 'message', data: 'x\ny' }]);
  });

  it('strips a leading BOM once, ignores unknown fields, a bad retry and an id with NUL', () => {
    const p = new SseParser();
    const events = p.push('\ufeffdata: a\nfoo: bar\nretry: 20x\nid: 1\0\n\n');
    expect(events).toEqual([{ type: 'message', data: 'a' }]);
    expect(p.retryMs).toBeUndefined();
    expect(p.lastEventId).toBeUndefined();
    expect(p.push('\ufeffdata: b\n\n')).toEqual([]); // a BOM later is part of the field name: an unknown field
  });

  it('a block without data dispatches nothing, and the last id persists for the next block', () => {
    const p = new SseParser();
    expect(p.push('id: 5\n\n')).toEqual([]);
    expect(p.lastEventId).toBe('5');
    expect(p.push('data: z\n\n')).toEqual([{ type: 'message', data: 'z' }]);
    expect(p.lastEventId).toBe('5');
  });

  it('drops an event the stream cut off before its blank line', () => {
    const p = new SseParser();
    expect(p.push('id: 9\nevent: payment\ndata: {"half":')).toEqual([]);
    expect(p.end()).toEqual([]);
    expect(p.lastEventId).toBe('9');
  });

  it('a field without a colon has an empty value', () => {
    const p = new SseParser();
    expect(p.push('data\ndata\n\n')).toEqual([{ type: 'message', data: '\n' }]);
  });
});

describe('compareEventIds', () => {
  it('compares decimal ids by value, beyond 2^53 too', () => {
    expect(compareEventIds('9', '10')).toBe(-1);
    expect(compareEventIds('10', '9')).toBe(1);
    expect(compareEventIds('007', '7')).toBe(0);
    expect(compareEventIds('9007199254740993', '9007199254740992')).toBe(1);
  });
});
