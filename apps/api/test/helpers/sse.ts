import { request as httpRequest, type ClientRequest, type IncomingMessage } from 'node:http';

export interface SseEvent {
  id?: string;
  event: string;
  data: string;
}

/** A text/event-stream reader over node:http, for tests: collects events, waits for them. */
export interface SseStream {
  status: number;
  headers: IncomingMessage['headers'];
  /** The body when the answer is not a stream (an error's JSON). */
  body: string;
  events: SseEvent[];
  comments: string[];
  ended: boolean;
  /** Resolves with the events once `predicate` holds for the list (rejects after timeoutMs). */
  waitFor(predicate: (events: SseEvent[]) => boolean, timeoutMs?: number): Promise<SseEvent[]>;
  waitForEnd(timeoutMs?: number): Promise<void>;
  close(): void;
}

export function parseSse(text: string): { events: SseEvent[]; comments: string[]; rest: string } {
  const events: SseEvent[] = [];
  const comments: string[] = [];
  const blocks = text.split('\n\n');
  const rest = blocks.pop() ?? '';
  for (const block of blocks) {
    let id: string | undefined;
    let event = 'message';
    const data: string[] = [];
    let any = false;
    for (const line of block.split('\n')) {
      if (line.startsWith(':')) {
        comments.push(line.slice(1).trim());
        continue;
      }
      const i = line.indexOf(':');
      const field = i < 0 ? line : line.slice(0, i);
      const value = i < 0 ? '' : line.slice(i + 1).replace(/^ /, '');
      if (field === 'id') id = value;
      else if (field === 'event') event = value;
      else if (field === 'data') data.push(value);
      else continue;
      any = true;
    }
    if (any && data.length) events.push({ id, event, data: data.join('\n') });
  }
  return { events, comments, rest };
}

export function openSse(url: string, headers: Record<string, string> = {}): Promise<SseStream> {
  return new Promise((resolve, reject) => {
    const waiters: (() => void)[] = [];
    const notify = () => waiters.splice(0).forEach((w) => w());
    const req: ClientRequest = httpRequest(url, { headers: { Accept: 'text/event-stream', ...headers } }, (res) => {
      let buf = '';
      const s: SseStream = {
        status: res.statusCode ?? 0,
        headers: res.headers,
        body: '',
        events: [],
        comments: [],
        ended: false,
        waitFor(predicate, timeoutMs = 10_000) {
          return new Promise((ok, fail) => {
            const check = () => {
              if (predicate(s.events)) {
                clearTimeout(timer);
                ok(s.events);
                return true;
              }
              if (s.ended) {
                clearTimeout(timer);
                fail(new Error(`stream ended; events: ${JSON.stringify(s.events.map((e) => [e.id, e.event]))}`));
                return true;
              }
              return false;
            };
            const timer = setTimeout(
              () => fail(new Error(`timed out; events: ${JSON.stringify(s.events.map((e) => [e.id, e.event]))}`)),
              timeoutMs,
            );
            const loop = () => {
              if (!check()) waiters.push(loop);
            };
            loop();
          });
        },
        waitForEnd(timeoutMs = 10_000) {
          return new Promise((ok, fail) => {
            const timer = setTimeout(() => fail(new Error('stream did not end')), timeoutMs);
            const loop = () => {
              if (s.ended) {
                clearTimeout(timer);
                ok();
              } else waiters.push(loop);
            };
            loop();
          });
        },
        close() {
          req.destroy();
        },
      };
      const isStream = String(res.headers['content-type'] ?? '').startsWith('text/event-stream');
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        if (!isStream) {
          s.body += chunk;
          return;
        }
        const parsed = parseSse(buf + chunk);
        buf = parsed.rest;
        s.events.push(...parsed.events);
        s.comments.push(...parsed.comments);
        notify();
      });
      const done = () => {
        s.ended = true;
        notify();
      };
      res.on('end', done);
      res.on('close', done);
      res.on('error', done);
      if (isStream) resolve(s);
      else res.on('end', () => resolve(s));
    });
    req.on('error', (err) => reject(err));
    req.end();
  });
}
