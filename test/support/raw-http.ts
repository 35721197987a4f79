/**
 * HTTP over a raw socket, for what fetch cannot send: lying Content-Length, endless chunked bodies, unescaped bytes
 * in the request line, headers that never end. Measures when the server closed the connection.
 */
import net from 'node:net';
import { announceRawExchange } from './response-hooks';

export interface RawExchange {
  /** everything the server sent (latin1) */
  response: string;
  /** the status of the first response, 0 when none arrived */
  status: number;
  /** ms from connecting until the server closed the connection (a reset after the answer counts as closed) */
  closedAfterMs: number;
}

/**
 * Connects to 127.0.0.1:`port`, writes `head`, then `more()` every 20 ms while the socket is writable (until it
 * returns undefined) or, with `end`, half-closes after `head`; resolves when the server closes the connection, rejects
 * when it is still open after `giveUpMs`.
 */
export function rawExchange(
  port: number,
  head: Buffer | string,
  opts: { more?: () => Buffer | string | undefined; giveUpMs?: number; /** finish sending (half-close) after `head` */ end?: boolean } = {},
): Promise<RawExchange> {
  const giveUpMs = opts.giveUpMs ?? 5000;
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const socket = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let timer: NodeJS.Timeout | undefined;
    const received = () => Buffer.concat(chunks).toString('latin1');
    const giveUp = setTimeout(() => {
      if (timer) clearInterval(timer);
      socket.destroy();
      reject(new Error(`connection still open after ${giveUpMs} ms; received: ${received().slice(0, 300)}`));
    }, giveUpMs);
    socket.on('data', (c) => chunks.push(c));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(giveUp);
      if (timer) clearInterval(timer);
      const response = received();
      // the factory's answer is checked against the OpenAPI document like every fetch response
      announceRawExchange(port, head, response);
      resolve({ response, status: Number(/^HTTP\/1\.[01] (\d{3})/.exec(response)?.[1] ?? 0), closedAfterMs: Date.now() - started });
    });
    socket.on('connect', () => {
      socket.write(head);
      if (opts.end) socket.end();
      else if (opts.more) {
        timer = setInterval(() => {
          if (socket.destroyed || !socket.writable) return;
          const next = opts.more!();
          if (next === undefined) clearInterval(timer);
          else socket.write(next);
        }, 20);
      }
    });
  });
}
