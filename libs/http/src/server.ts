/**
 * The factory's public HTTP servers (gateway, registry-proxy) and how long they listen to a client. Node's `requestTimeout` covers only *receiving* a
 * request (headers and body): the clock stops once the request is complete, so an asset GET that waits minutes for a
 * build is not cut by it, while a slow-loris client or an upload that never ends is. Node checks these deadlines
 * every `connectionsCheckingInterval` (30 s by default), so that interval is short here too.
 *
 * Request bodies: only `POST /schematics` reads one (up to its limit). A body announced larger than the limit is
 * refused before it is read, and a response to a request whose body was not read to the end closes the connection
 * instead of draining whatever the client still sends (a lying `Content-Length: 2000000000`, an endless chunked
 * upload).
 */
import http, { IncomingMessage, ServerResponse } from 'node:http';
import { FactoryError } from '@factory/errors';

export interface ReceiveLimits {
  /** Largest request body any route accepts (bytes). */
  maxBodyBytes: number;
  /** Deadline for the request headers (ms). */
  headersTimeoutMs: number;
  /** Deadline for the whole request, headers and body (ms); the response may take longer. */
  requestTimeoutMs: number;
  /** Which requests have their body read by a route (default: none). */
  readsBody?: (req: IncomingMessage) => boolean;
}

function announcesBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

/** `413` for a body announced larger than the limit, answered before any of it is read (the connection then closes). */
function refuseAnnouncedBody(req: IncomingMessage, res: ServerResponse, maxBodyBytes: number): boolean {
  const declared = req.headers['content-length'];
  if (declared === undefined || !/^\d+$/.test(declared) || Number(declared) <= maxBodyBytes) return false;
  const body = `request body too large: the limit is ${maxBodyBytes} bytes\n`;
  res.writeHead(413, {
    'Content-Type': 'text/plain; charset=utf-8',
    'X-Content-Type-Options': 'nosniff',
    'Content-Length': Buffer.byteLength(body),
    Connection: 'close',
  });
  res.end(body);
  return true;
}

/**
 * After a response to a request whose body was not received to the end, the connection is closed (FIN once the
 * response is sent) rather than kept reading: a client cannot hold it by sending a body nobody reads.
 */
function closeAfterUnreadBody(req: IncomingMessage, res: ServerResponse, readsBody: boolean): void {
  // A body no route reads: the answer says `Connection: close` up front, so a keep-alive client (a proxy's pool)
  // does not send its next request on a connection about to close.
  if (!readsBody && announcesBody(req)) res.shouldKeepAlive = false;
  res.once('finish', () => {
    if (!req.complete) req.socket.destroySoon();
  });
}

export function createBoundedServer(handler: (req: IncomingMessage, res: ServerResponse) => void, limits: ReceiveLimits): http.Server {
  // A header deadline past the request deadline would never fire.
  const headersTimeoutMs = Math.min(limits.headersTimeoutMs, limits.requestTimeoutMs);
  const checkEveryMs = Math.max(250, Math.min(1000, Math.floor(headersTimeoutMs / 4)));
  const server = http.createServer({ connectionsCheckingInterval: checkEveryMs, requestTimeout: limits.requestTimeoutMs, headersTimeout: headersTimeoutMs }, (req, res) => {
    closeAfterUnreadBody(req, res, limits.readsBody?.(req) ?? false);
    if (!refuseAnnouncedBody(req, res, limits.maxBodyBytes)) handler(req, res);
  });
  server.keepAliveTimeout = 65_000;
  return server;
}

/**
 * The whole request body, refused with a 413 the moment it passes `maxBytes` — whatever Content-Length announced
 * and without reading the rest (body-parser would drain it first; the connection closes instead). Bytes are taken as
 * sent: like Go's net/http, no Content-Encoding is undone.
 */
export function readRequestBody(req: IncomingMessage, res: ServerResponse, maxBytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let received = 0;
    const cleanup = () => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('aborted', onAborted);
    };
    const fail = (err: FactoryError) => {
      cleanup();
      req.pause();
      // Whatever the client still sends is not read: the connection closes after the answer.
      res.setHeader('Connection', 'close');
      reject(err);
    };
    const onData = (chunk: Buffer) => {
      received += chunk.length;
      if (received > maxBytes) fail(new FactoryError(413, `request body too large: the limit is ${maxBytes} bytes`));
      else chunks.push(chunk);
    };
    const onEnd = () => {
      cleanup();
      resolve(Buffer.concat(chunks, received));
    };
    const onError = () => fail(new FactoryError(400, 'could not read request body'));
    const onAborted = onError;
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('aborted', onAborted);
  });
}
