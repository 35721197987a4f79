/**
 * `/v2/siderolabs/<image>/…` (anchor-api §5.6): the upstream source images (installer-base, imager, catalogs, ...)
 * through the factory's own registry, e.g. for air-gapped clients that can reach only the factory. A plain reverse
 * proxy to the configured upstream registry: images and their original signatures pass through untouched.
 */
import http from 'node:http';
import type { Request, Response } from 'express';
import type { UpstreamSettings } from '@factory/config';
import { endToEndHeaders, RegistryError, type ProxyRoute } from '@factory/registry';
import type { Logger } from '@factory/telemetry';

/** The anchor's image map: name under `/v2/siderolabs/` → upstream component repository. */
export function sourceRepository(name: string, components: UpstreamSettings['components']): string | undefined {
  const map: Record<string, string> = {
    'installer-base': components.installerBase,
    installer: components.installer,
    imager: components.imager,
    extensions: components.extensions,
    overlays: components.overlays,
    'talosctl-all': components.talosctl,
  };
  return Object.prototype.hasOwnProperty.call(map, name) ? map[name] : undefined;
}

/** Plain HTTP only: credentials or TLS to the upstream would be handed to whoever pulls through the factory. */
function plainHttp(u: UpstreamSettings): boolean {
  const host = u.registry.replace(/:\d+$/, '');
  return u.insecure || host === 'localhost' || host === '127.0.0.1' || host === '[::1]';
}

export function createSourceProxy(u: UpstreamSettings, logger: Logger): (route: ProxyRoute, req: Request, res: Response) => Promise<void> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  return (route, req, res) =>
    new Promise<void>((resolve, reject) => {
      const repo = sourceRepository(route.image, u.components);
      if (!repo) return reject(new RegistryError(404, `unknown image: ${route.image}`));
      if (!plainHttp(u) || u.username) return reject(new RegistryError(503, 'proxying to an authorized/secure backing registry is not possible'));
      // The router admitted only OCI-grammar names and references; the query is re-encoded so that no byte the
      // client sent unescaped reaches the upstream request line.
      const search = req.originalUrl.includes('?') ? new URLSearchParams(req.originalUrl.slice(req.originalUrl.indexOf('?') + 1)).toString() : '';
      const query = search ? `?${search}` : '';
      const path = `/v2/${u.namespace ? `${u.namespace}/` : ''}${repo}/${route.resource}/${route.reference}${query}`;
      // the client's credentials are for the factory, never for the upstream
      const headers = endToEndHeaders(req.headers, ['authorization', 'host']);
      headers.host = u.registry;
      const upstream = http.request({ host: u.registry.replace(/:\d+$/, ''), port: Number(/:(\d+)$/.exec(u.registry)?.[1] ?? 80), method: req.method, path, headers, agent }, (up) => {
        res.status(up.statusCode ?? 502);
        for (const [name, value] of Object.entries(endToEndHeaders(up.headers))) res.setHeader(name, value!);
        up.pipe(res);
        up.on('end', () => resolve());
        up.on('error', (err) => reject(err));
      });
      upstream.on('error', (err) => {
        logger.warn({ err: err.message, path }, 'source image proxy failed');
        reject(new RegistryError(502, `upstream registry: ${err.message}`));
      });
      res.on('close', () => {
        if (!res.writableFinished) upstream.destroy();
      });
      upstream.end();
    });
}
