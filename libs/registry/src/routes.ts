/**
 * The `/v2` route grammar (anchor-api.md §5.1) and installer repository names (§5.2). Pure functions, no I/O.
 */
import { goQuote } from '@factory/gocompat';

export type RegistryResource = 'manifests' | 'blobs' | 'referrers';
export type ProxyResource = 'manifests' | 'blobs' | 'referrers' | 'tags';

/** `GET|HEAD /v2` or `/v2/`: the OCI base check. */
export interface PingRoute {
  kind: 'ping';
}

/** `/v2/<image>/<schematicId>/<manifests|blobs|referrers>/<reference>`: the factory's own (generated) images. */
export interface SchematicRoute {
  kind: 'schematic';
  image: string;
  schematicId: string;
  resource: RegistryResource;
  reference: string;
}

/** `/v2/siderolabs/<image...>/<manifests|blobs|referrers>/<ref>` and `/v2/siderolabs/<image...>/tags/list`. */
export interface ProxyRoute {
  kind: 'proxy';
  /** repository below `siderolabs/`, possibly with slashes (e.g. `talosctl/v.13.5`) */
  image: string;
  resource: ProxyResource;
  reference: string;
}

// OCI distribution spec grammar ("pulling manifests", "content discovery"): repository path components, tags and
// digests. Anything else is refused before a request is made on the client's behalf.
const NAME_COMPONENT = /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$/;
const TAG = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;
const DIGEST = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;
// The registered algorithms (OCI image spec, "Digests"), the only ones a registry verifies: any other, or an encoded
// part of the wrong form, is DIGEST_INVALID here (docker-registry takes such a manifest reference for a tag and 500s).
const REGISTERED_DIGEST = /^(?:sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/;

export const isOciRepositoryName = (name: string): boolean => name.split('/').every((c) => NAME_COMPONENT.test(c));
export const isOciTag = (reference: string): boolean => TAG.test(reference);
export const isOciDigest = (reference: string): boolean => DIGEST.test(reference) && REGISTERED_DIGEST.test(reference);

/**
 * Why a source-image route breaks the OCI grammar, as the registry error a client gets (400 with an OCI error code),
 * or undefined when it is well formed: a repository name, and a tag or digest for manifests, a digest for blobs and
 * referrers.
 */
export function proxyRouteGrammarError(route: ProxyRoute): { ociCode: 'NAME_INVALID' | 'TAG_INVALID' | 'DIGEST_INVALID'; message: string } | undefined {
  if (!isOciRepositoryName(route.image)) return { ociCode: 'NAME_INVALID', message: 'invalid repository name' };
  switch (route.resource) {
    case 'manifests':
      if (isOciTag(route.reference) || isOciDigest(route.reference)) return undefined;
      // shaped like a digest (a tag has no ':') but of no registered algorithm or form
      if (DIGEST.test(route.reference)) return { ociCode: 'DIGEST_INVALID', message: 'invalid digest' };
      return { ociCode: 'TAG_INVALID', message: 'invalid tag or digest' };
    case 'blobs':
    case 'referrers':
      return isOciDigest(route.reference) ? undefined : { ociCode: 'DIGEST_INVALID', message: 'invalid digest' };
    default:
      return undefined;
  }
}

/** Not a registry route: the anchor answers `404` with this text (plus a newline). */
export interface RouteNotFound {
  kind: 'error';
  status: 404;
  error: string;
}

export type RegistryRoute = PingRoute | SchematicRoute | ProxyRoute;

function trimSlashes(s: string): string {
  let a = 0;
  let b = s.length;
  while (a < b && s[a] === '/') a++;
  while (b > a && s[b - 1] === '/') b--;
  return s.slice(a, b);
}

/**
 * Parses the part of the URL path below `/v2` (e.g. `/installer/<id>/manifests/v1.11.0`; `''` or `/` is the ping).
 * `path` should be the decoded path as received, with its leading `/`: it is quoted verbatim in the 404 text.
 */
export function parseRegistryPath(path: string): RegistryRoute | RouteNotFound {
  const notFound = (): RouteNotFound => ({ kind: 'error', status: 404, error: `unknown registry path: ${goQuote(path)}` });
  const trimmed = trimSlashes(path);
  if (trimmed === '') return { kind: 'ping' };
  const segments = trimmed.split('/');
  if (segments.length < 3) return notFound();
  const reference = segments[segments.length - 1];
  const resource = segments[segments.length - 2];
  const repo = segments.slice(0, -2);
  if (reference === '') return notFound();

  if (repo[0] === 'siderolabs') {
    const ok =
      resource === 'manifests' || resource === 'blobs' || resource === 'referrers' || (resource === 'tags' && reference === 'list');
    if (!ok) return notFound();
    const image = repo.slice(1).join('/');
    if (image === '') return notFound();
    return { kind: 'proxy', image, resource: resource as ProxyResource, reference };
  }

  if (resource !== 'manifests' && resource !== 'blobs' && resource !== 'referrers') return notFound();
  if (repo.length !== 2) return notFound();
  return { kind: 'schematic', image: repo[0], schematicId: repo[1], resource, reference };
}

export interface InstallerImage {
  /** Talos platform (`metal` for the legacy `installer` names); not validated here. */
  platform: string;
  secureboot: boolean;
}

const SB_SUFFIX = '-installer-secureboot';
const SUFFIX = '-installer';

/**
 * `installer` / `installer-secureboot` (metal) and `<platform>-installer[-secureboot]`; anything else → null, which the
 * caller reports as `400 invalid image: <name>` (after the schematic lookup). An empty platform prefix
 * (`-installer`) is accepted like the anchor does and means the default platform, metal.
 */
export function parseInstallerImageName(name: string): InstallerImage | null {
  if (name === 'installer') return { platform: 'metal', secureboot: false };
  if (name === 'installer-secureboot') return { platform: 'metal', secureboot: true };
  if (name.endsWith(SB_SUFFIX)) return { platform: name.slice(0, -SB_SUFFIX.length) || 'metal', secureboot: true };
  if (name.endsWith(SUFFIX)) return { platform: name.slice(0, -SUFFIX.length) || 'metal', secureboot: false };
  return null;
}

/** The exact anchor text for an image name that does not parse (status 400). */
export function invalidImageMessage(name: string): string {
  return `invalid image: ${name}`;
}

/**
 * Manifest references the anchor hands to the builder (`latest` and anything starting with `v`); all others
 * (digests, `sha256-<hex>.sig` signature tags, referrers-tag fallbacks, …) are served straight from storage.
 */
export function isBuildReference(reference: string): boolean {
  if (reference === 'latest') return true;
  return !reference.startsWith('sha256:') && reference.startsWith('v');
}
