/**
 * `/v2/siderolabs/<image>/…` (anchor-api §5.6): the upstream source images (installer-base, imager, catalogs, ...)
 * through the factory's own registry, e.g. for air-gapped clients that can reach only the factory. A plain reverse
 * proxy to the configured upstream registry: images and their original signatures pass through untouched.
 */
import http from 'node:http';
import type { Request, Response } from 'express';
import type { UpstreamSettings } from '@factory/config';
import { endToEndHeaders, manifestUnknown, RegistryError, type ProxyRoute } from '@factory/registry';
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
  const host = u.registry.replace(/:\d+$/, '');
  const port = Number(/:(\d+)$/.exec(u.registry)?.[1] ?? 80);
  const upstreamPath = (repo: string, resource: string, reference: string, query = '') => `/v2/${u.namespace ? `${u.namespace}/` : ''}${repo}/${resource}/${reference}${query}`;

  /** Whether the upstream holds `digest` as a blob of `repo` (HEAD, no body). */
  const blobExists = (repo: string, digest: string) =>
    new Promise<boolean>((resolve) => {
      const probe = http.request({ host, port, method: 'HEAD', path: upstreamPath(repo, 'blobs', digest), headers: { host: u.registry }, agent, timeout: 10_000 }, (up) => {
        up.resume();
        resolve(up.statusCode === 200);
      });
      probe.on('timeout', () => probe.destroy(new Error('timeout')));
      probe.on('error', () => resolve(false));
      probe.end();
    });

  return (route, req, res) =>
    new Promise<void>((resolve, reject) => {
      const repo = sourceRepository(route.image, u.components);
      if (!repo) return reject(new RegistryError(404, `unknown image: ${route.image}`));
      if (!plainHttp(u) || u.username) return reject(new RegistryError(503, 'proxying to an authorized/secure backing registry is not possible'));
      // The router admitted only OCI-grammar names and references; the query is re-encoded so that no byte the
      // client sent unescaped reaches the upstream request line.
      const search = req.originalUrl.includes('?') ? new URLSearchParams(req.originalUrl.slice(req.originalUrl.indexOf('?') + 1)).toString() : '';
      const path = upstreamPath(repo, route.resource, route.reference, search ? `?${search}` : '');
      // the client's credentials are for the factory, never for the upstream
      const headers = endToEndHeaders(req.headers, ['authorization', 'host']);
      headers.host = u.registry;
      const upstream = http.request({ host, port, method: req.method, path, headers, agent }, (up) => {
        const status = up.statusCode ?? 502;
        if (status >= 500) {
          // An upstream failure is not ours to relay as our own 500. One is a known upstream bug rather than a
          // failure: registry:2 answers 500 ("invalid character ... looking for beginning of value") when a
          // manifest is asked for by the digest of a layer or config blob, where ghcr.io answers 404.
          up.resume();
          const digest = route.resource === 'manifests' && /^sha256:[0-9a-f]{64}$/.test(route.reference) ? route.reference : undefined;
          const upstreamFailed = () => new RegistryError(502, `upstream registry answered ${status} for ${route.resource}/${route.reference}`);
          if (!digest) return reject(upstreamFailed());
          void blobExists(repo, digest).then((isBlob) => reject(isBlob ? manifestUnknown('manifest unknown: the digest names a blob, not a manifest') : upstreamFailed()));
          return;
        }
        res.status(status);
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
