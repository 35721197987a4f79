import { EventStreamParser, ServerSentEvent } from '@factory/client';

const bytes = (s: string) => new TextEncoder().encode(s);

/** All events of a stream fed in the given pieces. */
function parse(...chunks: (string | Uint8Array)[]): ServerSentEvent[] {
  const p = new EventStreamParser();
  const out: ServerSentEvent[] = [];
  for (const c of chunks) out.push(...p.push(typeof c === 'string' ? bytes(c) : c));
  out.push(...p.end());
  return out;
}

describe('EventStreamParser (text/event-stream)', () => {
  it('reads id, event and data; comments are ignored; the id is kept across events', () => {
    expect(parse(': keepalive\n\nid: 1\nevent: build\ndata: {"a":1}\n\ndata: x\n\n')).toEqual([
      { id: '1', event: 'build', data: '{"a":1}' },
      { id: '1', event: 'message', data: 'x' },
    ]);
  });

  it('joins several data lines with LF and strips one leading space only', () => {
    expect(parse('data:  a\ndata:b\n\n')).toEqual([{ id: undefined, event: 'message', data: ' a\nb' }]);
  });

  it('accepts CRLF, LF and CR line ends, also when CR and LF arrive in different chunks', () => {
    expect(parse('id: 7\r', '\nevent: build\r', '\ndata: 1\r\r')).toEqual([{ id: '7', event: 'build', data: '1' }]);
    expect(parse('data: 1\r\n\r\n', 'data: 2\n\n')).toEqual([
      { id: undefined, event: 'message', data: '1' },
      { id: undefined, event: 'message', data: '2' },
    ]);
  });

  it('decodes UTF-8 split across chunks and strips a leading BOM', () => {
    const all = bytes('\uFEFFdata: größe\n\n');
    expect(parse(all.subarray(0, 10), all.subarray(10))).toEqual([{ id: undefined, event: 'message', data: 'größe' }]);
  });

  it('does not dispatch an event cut off before its blank line, nor one without data', () => {
    expect(parse('id: 3\nevent: build\n\ndata: half')).toEqual([]);
  });

  it('remembers the retry delay and ignores an id containing NUL', () => {
    const p = new EventStreamParser();
    p.push(bytes('retry: 2500\nid: 4\n\nid: a\0b\nretry: soon\ndata: z\n\n'));
    expect(p.retryMs).toBe(2500);
    expect(p.lastEventId).toBe('4');
  });
});
