/** A minimal Server-Sent Events client for tests: the events of one stream as they arrive, with their arrival time. */
import http from 'node:http';

export interface SseEvent {
  id?: string;
  event?: string;
  data: string;
  /** Date.now() when the event was received */
  at: number;
}

export interface SseStream {
  /** status and headers of the response */
  response: Promise<{ status: number; headers: http.IncomingHttpHeaders; body?: string }>;
  /** every event received so far */
  events: SseEvent[];
  /** comments (`: keepalive`) received so far */
  comments: string[];
  /** the events once the server ends the stream (or close() is called) */
  ended: Promise<SseEvent[]>;
  /** resolves with the events once `predicate` holds for one received (checked on each) */
  until(predicate: (e: SseEvent) => boolean): Promise<SseEvent[]>;
  close(): void;
}

export function openSse(url: string, headers: Record<string, string> = {}): SseStream {
  const events: SseEvent[] = [];
  const comments: string[] = [];
  const waiters: Array<{ predicate: (e: SseEvent) => boolean; resolve: (e: SseEvent[]) => void }> = [];
  let resolveResponse!: (r: { status: number; headers: http.IncomingHttpHeaders; body?: string }) => void;
  let rejectResponse!: (err: unknown) => void;
  const response = new Promise<{ status: number; headers: http.IncomingHttpHeaders; body?: string }>((res, rej) => {
    resolveResponse = res;
    rejectResponse = rej;
  });
  let resolveEnded!: (e: SseEvent[]) => void;
  const ended = new Promise<SseEvent[]>((res) => (resolveEnded = res));
  const req = http.get(url, { headers: { Accept: 'text/event-stream', ...headers } }, (res) => {
    res.setEncoding('utf8');
    if (res.statusCode !== 200) {
      let body = '';
      res.on('data', (c: string) => (body += c));
      res.on('end', () => {
        resolveResponse({ status: res.statusCode ?? 0, headers: res.headers, body });
        resolveEnded(events);
      });
      return;
    }
    resolveResponse({ status: 200, headers: res.headers });
    let buffer = '';
    res.on('data', (chunk: string) => {
      buffer += chunk;
      let end: number;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const e: SseEvent = { data: '', at: Date.now() };
        let isEvent = false;
        for (const line of block.split('\n')) {
          if (line.startsWith(':')) comments.push(line.slice(1).trim());
          else if (line.startsWith('id: ')) ((e.id = line.slice(4)), (isEvent = true));
          else if (line.startsWith('event: ')) ((e.event = line.slice(7)), (isEvent = true));
          else if (line.startsWith('data: ')) ((e.data += (e.data ? '\n' : '') + line.slice(6)), (isEvent = true));
        }
        if (!isEvent) continue;
        events.push(e);
        for (const w of [...waiters]) {
          if (w.predicate(e)) {
            waiters.splice(waiters.indexOf(w), 1);
            w.resolve(events);
          }
        }
      }
    });
    res.on('end', () => resolveEnded(events));
    res.on('close', () => resolveEnded(events));
  });
  req.on('error', (err) => {
    rejectResponse(err);
    resolveEnded(events);
  });
  return {
    response,
    events,
    comments,
    ended,
    until: (predicate) => {
      const hit = events.find(predicate);
      if (hit) return Promise.resolve(events);
      return new Promise((resolve) => waiters.push({ predicate, resolve }));
    },
    close: () => {
      req.destroy();
      resolveEnded(events);
    },
  };
}
