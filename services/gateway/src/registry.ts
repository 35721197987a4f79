/**
 * `/v2` on the API's host and port: a streaming reverse proxy to the registry-proxy service, which serves the OCI
 * distribution API (in Kubernetes an ingress routes `/v2` to it directly). Status, end-to-end headers and bodies pass
 * through, so redirects to presigned blob URLs, ranged blob reads and conditional requests (304/412, decided by the
 * registry-proxy alone — this proxy never evaluates them again) work as if the client talked to it directly.
 * Internal `X-Factory-*` headers are dropped in both directions.
 */
import http, { IncomingMessage, ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import { endToEndHeaders, HANDOFF_LENGTH_HEADER, HANDOFF_OBJECT_HEADER, HANDOFF_RANGE_HEADER, HANDOFF_REQUEST_HEADER } from '@factory/registry';
import { CLIENT_HEADER, CLIENT_PROOF_HEADER } from '@factory/ratelimit';
import type { ObjectStore } from '@factory/storage';
import type { Logger } from '@factory/telemetry';

export function isRegistryPath(url: string | undefined): boolean {
  return url !== undefined && (url === '/v2' || url.startsWith('/v2/') || url.startsWith('/v2?'));
}

export interface RegistryProxyOptions {
  /** e.g. http://127.0.0.1:8081 */
  target: string;
  logger: Logger;
  /** the request is abandoned when the registry-proxy sends no response headers in time (builds run detached) */
  timeoutMs: number;
  /**
   * The object store when it is a local directory shared with the registry-proxy, and the secret both hold
   * (FACTORY_HANDOFF_SECRET): blob bodies are then read here after the registry-proxy has checked and described
   * them — preconditions and Range decided there — (one hop less than relaying its stream).
   */
  handoff?: { store: ObjectStore; secret: string };
  /** tells the registry-proxy who the client is (its per-client limits on installer builds), proven by the secret */
  client?: { of: (req: IncomingMessage) => string; proof: string };
}

export function createRegistryProxy(o: RegistryProxyOptions): (req: IncomingMessage, res: ServerResponse) => void {
  const target = new URL(o.target);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 256, noDelay: true } as http.AgentOptions);
  return (req, res) => {
    const headers = endToEndHeaders(req.headers);
    delete headers['content-length'];
    delete headers['transfer-encoding'];
    // The registry-proxy needs the host the client used (signature identities, absolute URLs).
    headers['x-forwarded-host'] = req.headers.host ?? '';
    headers['x-forwarded-proto'] = 'http';
    // as every reverse proxy does: the peer joins the chain (a registry-proxy trusting this gateway reads its client)
    const peer = req.socket.remoteAddress;
    if (peer) headers['x-forwarded-for'] = headers['x-forwarded-for'] ? `${String(headers['x-forwarded-for'])}, ${peer}` : peer;
    headers.host = target.host;
    if (o.handoff && req.method === 'GET') headers[HANDOFF_REQUEST_HEADER] = o.handoff.secret;
    if (o.client) {
      headers[CLIENT_HEADER] = o.client.of(req);
      headers[CLIENT_PROOF_HEADER] = o.client.proof;
    }
    const upstream = http.request(
      { protocol: target.protocol, hostname: target.hostname, port: target.port, method: req.method, path: req.url, headers, agent, timeout: o.timeoutMs },
      (up) => {
        const out = endToEndHeaders(up.headers);
        const objectKey = up.headers[HANDOFF_OBJECT_HEADER];
        if (typeof objectKey === 'string' && o.handoff) {
          up.resume();
          void serveObject(o.handoff.store, objectKey, up, out, res).catch((err: Error) => {
            o.logger.warn({ err: err.message, url: req.url }, 'blob hand-off failed');
            if (!res.headersSent) {
              res.writeHead(502, { 'Content-Type': 'text/plain; charset=utf-8' });
              res.end('registry blob is not available\n');
            } else {
              res.destroy();
            }
          });
          return;
        }
        res.writeHead(up.statusCode ?? 502, out);
        res.socket?.setNoDelay(true);
        up.pipe(res);
        up.on('error', () => res.destroy());
      },
    );
    upstream.on('timeout', () => upstream.destroy(new Error('registry-proxy did not answer in time')));
    upstream.on('error', (err) => {
      o.logger.warn({ err: err.message, url: req.url }, 'registry-proxy request failed');
      if (!res.headersSent) {
        res.writeHead(502, { 'Content-Type': 'text/plain; charset=utf-8' });
        res.end('registry is not available\n');
      } else {
        res.destroy();
      }
    });
    // A client that goes away stops the transfer; builds continue in the background (they are jobs).
    res.on('close', () => {
      if (!res.writableFinished) upstream.destroy();
    });
    // The factory's registry is read-only: no request body is forwarded (a push is answered without one).
    upstream.end();
  };
}

/**
 * Streams a blob the registry-proxy described: status and (end-to-end, so already without the internal) headers are
 * its own, the span is the one it chose; only the body is read here.
 */
async function serveObject(store: ObjectStore, key: string, up: IncomingMessage, headers: http.OutgoingHttpHeaders, res: ServerResponse): Promise<void> {
  const length = Number(up.headers[HANDOFF_LENGTH_HEADER]);
  const rangeHeader = up.headers[HANDOFF_RANGE_HEADER];
  const m = typeof rangeHeader === 'string' ? /^(\d+)-(\d+)$/.exec(rangeHeader) : null;
  const got = await store.get(key, m ? { start: Number(m[1]), end: Number(m[2]) } : undefined);
  if (!got) throw new Error(`object ${key} is missing`);
  if (!Number.isSafeInteger(length)) {
    (got.body as NodeJS.ReadableStream & { destroy?: () => void }).destroy?.();
    throw new Error(`object ${key}: the registry-proxy named no length`);
  }
  headers['content-length'] = String(length);
  res.writeHead(up.statusCode ?? 200, headers);
  await pipeline(got.body as NodeJS.ReadableStream, res);
}
