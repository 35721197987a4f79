/**
 * `/v2` on the API's host and port: a streaming reverse proxy to the registry-proxy service, which serves the OCI
 * distribution API (in Kubernetes an ingress routes `/v2` to it directly). Status, headers and bodies pass through
 * untouched, so redirects to presigned blob URLs and ranged blob reads work as if the client talked to it directly.
 */
import http, { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '@factory/telemetry';

/** Hop-by-hop headers (RFC 9110 §7.6.1) are not forwarded in either direction. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'proxy-authorization', 'proxy-authenticate']);

export function isRegistryPath(url: string | undefined): boolean {
  return url !== undefined && (url === '/v2' || url.startsWith('/v2/') || url.startsWith('/v2?'));
}

export interface RegistryProxyOptions {
  /** e.g. http://127.0.0.1:8081 */
  target: string;
  logger: Logger;
  /** the request is abandoned when the registry-proxy sends no response headers in time (builds run detached) */
  timeoutMs: number;
}

export function createRegistryProxy(o: RegistryProxyOptions): (req: IncomingMessage, res: ServerResponse) => void {
  const target = new URL(o.target);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
  return (req, res) => {
    const headers: http.OutgoingHttpHeaders = {};
    for (const [name, value] of Object.entries(req.headers)) {
      if (value !== undefined && !HOP_BY_HOP.has(name)) headers[name] = value;
    }
    // The registry-proxy needs the host the client used (signature identities, absolute URLs).
    headers['x-forwarded-host'] = req.headers.host ?? '';
    headers['x-forwarded-proto'] = 'http';
    headers.host = target.host;
    const upstream = http.request(
      { protocol: target.protocol, hostname: target.hostname, port: target.port, method: req.method, path: req.url, headers, agent, timeout: o.timeoutMs },
      (up) => {
        const out: http.OutgoingHttpHeaders = {};
        for (const [name, value] of Object.entries(up.headers)) {
          if (value !== undefined && !HOP_BY_HOP.has(name)) out[name] = value;
        }
        res.writeHead(up.statusCode ?? 502, out);
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
    req.pipe(upstream);
  };
}
