/**
 * A `text/event-stream` parser (HTML Living Standard, "Interpreting an event stream"): lines end in CRLF, LF or CR
 * (a CR at the end of one chunk may be the first half of a CRLF split across chunks); `:` starts a comment; fields
 * `event`, `data` (several lines are joined with LF), `id` (kept across events, ignored when it contains NUL) and
 * `retry`; a blank line dispatches the event unless it has no data.
 */
export interface ServerSentEvent {
  /** the last event ID seen on the stream so far (what a reconnect sends as `Last-Event-ID`) */
  id?: string;
  /** `message` when the event named none */
  event: string;
  data: string;
}

export class EventStreamParser {
  /** the last `id` field seen (kept across events, as the spec's last event ID buffer) */
  lastEventId: string | undefined;
  /** the last valid `retry` field: the reconnection delay the server asks for, in ms */
  retryMs: number | undefined;

  /** strips a leading byte order mark, as the spec asks */
  private readonly decoder = new TextDecoder('utf-8');
  private pending = '';
  private eventType = '';
  private dataLines: string[] = [];

  /** Feeds bytes; returns the events completed by them. */
  push(chunk: Uint8Array): ServerSentEvent[] {
    return this.feed(this.decoder.decode(chunk, { stream: true }), false);
  }

  /** The stream ended: a last line without its terminator still counts, an event without its blank line does not. */
  end(): ServerSentEvent[] {
    return this.feed(this.decoder.decode(), true);
  }

  private feed(text: string, atEnd: boolean): ServerSentEvent[] {
    const events: ServerSentEvent[] = [];
    const buf = this.pending + text;
    let start = 0;
    for (let i = 0; i < buf.length; i++) {
      const c = buf[i];
      if (c !== '\n' && c !== '\r') continue;
      // a CR as the last character: wait for the next chunk to know whether an LF follows
      if (c === '\r' && i === buf.length - 1 && !atEnd) break;
      const line = buf.slice(start, i);
      if (c === '\r' && buf[i + 1] === '\n') i++;
      start = i + 1;
      const event = this.line(line);
      if (event) events.push(event);
    }
    this.pending = buf.slice(start);
    if (atEnd && this.pending !== '') {
      this.line(this.pending);
      this.pending = '';
    }
    return events;
  }

  private line(line: string): ServerSentEvent | undefined {
    if (line === '') return this.dispatch();
    if (line.startsWith(':')) return undefined;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    switch (field) {
      case 'event':
        this.eventType = value;
        break;
      case 'data':
        this.dataLines.push(value);
        break;
      case 'id':
        if (!value.includes('\0')) this.lastEventId = value;
        break;
      case 'retry':
        if (/^\d+$/.test(value)) this.retryMs = Number(value);
        break;
      default:
        break;
    }
    return undefined;
  }

  private dispatch(): ServerSentEvent | undefined {
    const type = this.eventType || 'message';
    const lines = this.dataLines;
    this.eventType = '';
    this.dataLines = [];
    if (lines.length === 0) return undefined;
    return { id: this.lastEventId, event: type, data: lines.join('\n') };
  }
}
