/**
 * A server-sent events parser (the WHATWG "event stream" interpretation), fed text chunks as they
 * arrive from a fetch body. It exists because EventSource cannot send an Authorization header.
 */

export interface SseEvent {
  /** `event:` field; `message` when the block had none. */
  type: string;
  /** `data:` lines joined with `\n`. */
  data: string;
  /** The `id:` field of this block, if it had one (the stream's last event id is `SseParser.lastEventId`). */
  id?: string;
}

export class SseParser {
  /** The last `id:` seen (what a reconnect sends as Last-Event-ID). */
  lastEventId: string | undefined;
  /** The last valid `retry:` (milliseconds). */
  retryMs: number | undefined;

  private buffer = '';
  private started = false;
  private data: string[] = [];
  private type = '';
  private blockId: string | undefined;

  /** Feeds one chunk of decoded text; returns the events it completed. */
  push(chunk: string): SseEvent[] {
    let text = this.buffer + chunk;
    if (!this.started && text.length > 0) {
      this.started = true;
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    }
    const events: SseEvent[] = [];
    let start = 0;
    for (let i = 0; i < text.length; i++) {
      const c = text[i];
      if (c !== '\n' && c !== '\r') continue;
      // A CR at the very end may be the first half of a CRLF split across chunks: wait for more.
      if (c === '\r' && i === text.length - 1) break;
      this.line(text.slice(start, i), events);
      if (c === '\r' && text[i + 1] === '\n') i++;
      start = i + 1;
    }
    this.buffer = text.slice(start);
    return events;
  }

  /**
   * The stream ended. A trailing CR still completes its line, but an event whose block was not
   * closed by a blank line is dropped, as the specification says.
   */
  end(): SseEvent[] {
    const events: SseEvent[] = [];
    if (this.buffer.endsWith('\r')) this.line(this.buffer.slice(0, -1), events);
    this.buffer = '';
    this.data = [];
    this.type = '';
    this.blockId = undefined;
    return events;
  }

  private line(line: string, events: SseEvent[]): void {
    if (line === '') {
      this.dispatch(events);
      return;
    }
    if (line.startsWith(':')) return; // a comment (the server's `: ping` heartbeat)
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    switch (field) {
      case 'data':
        this.data.push(value);
        break;
      case 'event':
        this.type = value;
        break;
      case 'id':
        if (!value.includes('\0')) {
          this.lastEventId = value;
          this.blockId = value;
        }
        break;
      case 'retry':
        if (/^\d+$/.test(value)) this.retryMs = Number(value);
        break;
      default:
        break; // unknown fields are ignored
    }
  }

  private dispatch(events: SseEvent[]): void {
    const hadData = this.data.length > 0;
    const event: SseEvent = { type: this.type || 'message', data: this.data.join('\n') };
    if (this.blockId !== undefined) event.id = this.blockId;
    this.data = [];
    this.type = '';
    this.blockId = undefined;
    if (hadData) events.push(event);
  }
}

/** Compares two decimal event ids without losing precision (ids may pass 2^53). */
export function compareEventIds(a: string, b: string): number {
  const x = a.replace(/^0+(?=\d)/, '');
  const y = b.replace(/^0+(?=\d)/, '');
  if (x.length !== y.length) return x.length < y.length ? -1 : 1;
  return x < y ? -1 : x > y ? 1 : 0;
}
