/**
 * OCI distribution client: manifests, blobs, tags, pushes; bearer-token and basic auth; bounded retries; digest checks.
 */
import { createHash, Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { Readable, Transform, TransformCallback } from 'node:stream';
import { request, Dispatcher } from 'undici';
import { OciError, RegistryErrorDetail } from './errors';
import {
  MANIFEST_ACCEPT, MediaTypes, assertReference, assertRepository, digestWithAlgorithm, isDigest, isImageManifestMediaType,
  isIndexMediaType, parseDigest, sha256Digest,
} from './media';

export interface RegistryClientOptions {
  /** host[:port], e.g. "ghcr.io" or "127.0.0.1:5000" ("docker.io" is mapped to "registry-1.docker.io") */
  registry: string;
  /** plain http (local registries/mirrors) */
  insecure?: boolean;
  /** basic credentials (also used to obtain bearer tokens) */
  auth?: { username: string; password: string };
  /** per request: time to response headers, and maximum idle time between body chunks; default 60 s */
  timeoutMs?: number;
  userAgent?: string;
  /** retries for idempotent requests on 429/5xx/network errors (default 3, i.e. at most 4 attempts) */
  retries?: number;
  /** first backoff delay, doubled on each retry, with jitter (default 250 ms); Retry-After is honoured up to 30 s */
  retryDelayMs?: number;
  /** custom undici dispatcher (connection pool / proxy); default is undici's global dispatcher */
  dispatcher?: Dispatcher;
}

export interface Platform { os: string; architecture: string; variant?: string }

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: Platform;
  annotations?: Record<string, string>;
  artifactType?: string;
}

export interface FetchedManifest {
  mediaType: string;
  digest: string;
  raw: Buffer;
  json: any;
}

/** Largest manifest accepted (the distribution spec recommends registries accept at least 4 MiB). */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
const MAX_ERROR_BODY = 64 * 1024;
const MAX_TOKEN_BODY = 1024 * 1024;
const MAX_TAGS_PAGE = 16 * 1024 * 1024;
const MAX_REDIRECTS = 10;
const MAX_TAG_PAGES = 10000;
const DEFAULT_UA = 'talos-image-factory-oci/0.1';

type Method = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
type Body = Buffer | (() => Readable);

interface DoOptions {
  method: Method;
  url: string;
  headers?: Record<string, string>;
  body?: Body;
  /** token scope; undefined = no repository scope (ping) */
  scope?: string;
  idempotent: boolean;
  followRedirects?: boolean;
  /** no registry auth handling at all (token endpoint requests) */
  noAuth?: boolean;
}

interface Response {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Dispatcher.ResponseData['body'];
  url: string;
}

export interface Challenge { scheme: string; params: Record<string, string> }
interface CachedToken { token: string; expiresAt: number }

function header(res: Response, name: string): string | undefined {
  const v = res.headers[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}

function headerAll(res: Response, name: string): string[] {
  const v = res.headers[name.toLowerCase()];
  if (v === undefined) return [];
  return Array.isArray(v) ? v : [v];
}

function stripParams(contentType: string | undefined): string | undefined {
  if (!contentType) return undefined;
  const t = contentType.split(';')[0].trim();
  return t || undefined;
}

/** Destroys a stream without an unhandled 'error' (undici bodies emit an abort error when destroyed). */
function destroyQuietly(s: Readable): void {
  s.on('error', () => { /* ignored */ });
  s.destroy();
}

async function dump(res: Response): Promise<void> {
  try { await res.body.dump({ limit: 256 * 1024 }); } catch { /* ignore */ }
}

/** Reads a body fully, failing with TOO_LARGE past max bytes. */
async function readBounded(stream: Readable, max: number, what: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const chunk of stream) {
    const b = chunk as Buffer;
    n += b.length;
    if (n > max) {
      destroyQuietly(stream);
      throw new OciError('TOO_LARGE', `${what}: larger than ${max} bytes`);
    }
    chunks.push(b);
  }
  return Buffer.concat(chunks, n);
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Splits at commas that are not inside a quoted string. */
function splitOutsideQuotes(s: string): string[] {
  const out: string[] = [];
  let cur = '';
  let inQuote = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (inQuote && c === '\\' && i + 1 < s.length) { cur += c + s[++i]; continue; }
    if (c === '"') inQuote = !inQuote;
    if (c === ',' && !inQuote) { out.push(cur); cur = ''; continue; }
    cur += c;
  }
  out.push(cur);
  return out;
}

/** Parses WWW-Authenticate challenges: `Bearer realm="…",service="…",scope="…"`, `Basic realm="…"` (several per header too). */
export function parseWwwAuthenticate(values: string[]): Challenge[] {
  const out: Challenge[] = [];
  for (const value of values) {
    let current: Challenge | undefined;
    for (const item of splitOutsideQuotes(value)) {
      let t = item.trim();
      if (!t) continue;
      const start = /^([A-Za-z][A-Za-z0-9!#$%&'*+.^_`|~-]*)(?!\s*=)(?:\s+|$)/.exec(t);
      if (start) {
        current = { scheme: start[1].toLowerCase(), params: {} };
        out.push(current);
        t = t.slice(start[0].length).trim();
        if (!t) continue;
      }
      const pm = /^([A-Za-z0-9_-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|(.*))$/s.exec(t);
      if (pm && current) current.params[pm[1].toLowerCase()] = pm[2] !== undefined ? pm[2].replace(/\\(.)/g, '$1') : pm[3].trim();
    }
  }
  return out;
}

/** Parses the `next` target of a `Link: <url>; rel="next"` header. */
function parseNextLink(values: string[]): string | undefined {
  for (const v of values) {
    for (const part of v.split(/,(?=\s*<)/)) {
      const m = /^\s*<([^>]*)>\s*(.*)$/.exec(part);
      if (m && /(?:^|;)\s*rel\s*=\s*"?next"?/i.test(m[2])) return m[1];
    }
  }
  return undefined;
}

/** Transform that hashes and counts what passes through; errors with DIGEST_MISMATCH / TOO_LARGE. */
class VerifyingStream extends Transform {
  private readonly hash: Hash;
  private count = 0;

  constructor(private readonly expected: string, private readonly maxBytes: number, private readonly what: string) {
    super();
    this.hash = createHash(parseDigest(expected).algorithm);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.count += chunk.length;
    if (this.count > this.maxBytes) {
      cb(new OciError('TOO_LARGE', `${this.what}: larger than ${this.maxBytes} bytes`));
      return;
    }
    this.hash.update(chunk);
    cb(null, chunk);
  }

  override _flush(cb: TransformCallback): void {
    const { algorithm } = parseDigest(this.expected);
    const got = `${algorithm}:${this.hash.digest('hex')}`;
    if (got !== this.expected) cb(new OciError('DIGEST_MISMATCH', `${this.what}: content digest ${got} does not match ${this.expected}`));
    else cb();
  }
}

export class RegistryClient {
  readonly registry: string;
  readonly baseUrl: string;
  private readonly opts: RegistryClientOptions;
  private readonly timeoutMs: number;
  private readonly retries: number;
  private readonly retryDelayMs: number;
  private readonly userAgent: string;
  private readonly origin: string;
  private bearer?: { realm: string; service?: string };
  private basic = false;
  private readonly tokens = new Map<string, CachedToken>();
  private readonly pendingTokens = new Map<string, Promise<void>>();

  constructor(opts: RegistryClientOptions) {
    if (!opts.registry || /[/\s]/.test(opts.registry)) throw new OciError('INVALID', `invalid registry host: ${JSON.stringify(opts.registry)}`);
    this.opts = opts;
    this.registry = opts.registry === 'docker.io' || opts.registry === 'index.docker.io' ? 'registry-1.docker.io' : opts.registry;
    this.baseUrl = `${opts.insecure ? 'http' : 'https'}://${this.registry}`;
    this.origin = new URL(this.baseUrl).origin;
    this.timeoutMs = opts.timeoutMs ?? 60_000;
    this.retries = Math.max(0, opts.retries ?? 3);
    this.retryDelayMs = opts.retryDelayMs ?? 250;
    this.userAgent = opts.userAgent ?? DEFAULT_UA;
  }

  // ------------------------------------------------------------------------------------------------------------------
  // public API

  /** GET /v2/ (authenticating if the registry asks for it). */
  async ping(): Promise<void> {
    const res = await this.do({ method: 'GET', url: `${this.baseUrl}/v2/`, idempotent: true });
    if (res.status >= 200 && res.status < 300) { await dump(res); return; }
    throw await this.failure(res, 'ping');
  }

  /** All tags of a repository, following `Link: <…>; rel="next"` pagination. `pageSize` adds `?n=` to the first request. */
  async listTags(repo: string, opts: { pageSize?: number } = {}): Promise<string[]> {
    assertRepository(repo);
    let url: string | undefined = `${this.baseUrl}/v2/${repo}/tags/list` + (opts.pageSize ? `?n=${opts.pageSize}` : '');
    const tags: string[] = [];
    for (let page = 0; url; page++) {
      if (page >= MAX_TAG_PAGES) throw new OciError('INVALID', `tags of ${repo}: more than ${MAX_TAG_PAGES} pages`);
      const res = await this.do({ method: 'GET', url, scope: pullScope(repo), idempotent: true, followRedirects: true,
        headers: { accept: 'application/json' } });
      if (res.status !== 200) throw await this.failure(res, `list tags of ${repo}`);
      const raw = await readBounded(res.body, MAX_TAGS_PAGE, `tags of ${repo}`);
      let json: any;
      try { json = JSON.parse(raw.toString('utf8')); } catch { throw new OciError('INVALID', `tags of ${repo}: response is not JSON`); }
      if (json && Array.isArray(json.tags)) for (const t of json.tags) if (typeof t === 'string') tags.push(t);
      const next = parseNextLink(headerAll(res, 'link'));
      url = next ? new URL(next, res.url).href : undefined;
    }
    return tags;
  }

  /** Fetches a manifest by tag or digest and verifies its digest (ref digest and Docker-Content-Digest header). */
  async getManifest(repo: string, ref: string): Promise<FetchedManifest> {
    assertRepository(repo);
    assertReference(ref);
    const what = `manifest ${repo}:${ref}`;
    const res = await this.do({ method: 'GET', url: `${this.baseUrl}/v2/${repo}/manifests/${ref}`, scope: pullScope(repo),
      idempotent: true, followRedirects: true, headers: { accept: MANIFEST_ACCEPT } });
    if (res.status !== 200) throw await this.failure(res, what);
    const len = Number(header(res, 'content-length'));
    if (Number.isFinite(len) && len > MAX_MANIFEST_BYTES) {
      destroyQuietly(res.body);
      throw new OciError('TOO_LARGE', `${what}: ${len} bytes exceeds ${MAX_MANIFEST_BYTES}`);
    }
    const raw = await readBounded(res.body, MAX_MANIFEST_BYTES, what);
    const computed = sha256Digest(raw);
    let digest = computed;
    if (isDigest(ref)) {
      const { algorithm } = parseDigest(ref);
      const got = digestWithAlgorithm(algorithm, raw);
      if (got !== ref) throw new OciError('DIGEST_MISMATCH', `${what}: content digest ${got} does not match the requested digest`);
      digest = ref;
    }
    const hdr = header(res, 'docker-content-digest');
    if (hdr && isDigest(hdr.trim())) {
      const h = hdr.trim();
      let algorithm: 'sha256' | 'sha512' | undefined;
      try { algorithm = parseDigest(h).algorithm; } catch { algorithm = undefined; }
      if (algorithm && digestWithAlgorithm(algorithm, raw) !== h) {
        throw new OciError('DIGEST_MISMATCH', `${what}: content does not match Docker-Content-Digest ${h} (got ${computed})`);
      }
    }
    let json: any;
    try { json = JSON.parse(raw.toString('utf8')); } catch { throw new OciError('INVALID', `${what}: not valid JSON`); }
    if (!json || typeof json !== 'object' || Array.isArray(json)) throw new OciError('INVALID', `${what}: not a JSON object`);
    if (json.schemaVersion === 1) throw new OciError('INVALID', `${what}: Docker schema 1 manifests are not supported`);
    const mediaType = manifestMediaType(json, stripParams(header(res, 'content-type')));
    if (!mediaType) throw new OciError('INVALID', `${what}: cannot determine the manifest media type`);
    return { mediaType, digest, raw, json };
  }

  /** HEAD a manifest: its descriptor, or null when the registry answers 404. */
  async headManifest(repo: string, ref: string): Promise<Descriptor | null> {
    assertRepository(repo);
    assertReference(ref);
    const what = `manifest ${repo}:${ref}`;
    const res = await this.do({ method: 'HEAD', url: `${this.baseUrl}/v2/${repo}/manifests/${ref}`, scope: pullScope(repo),
      idempotent: true, followRedirects: true, headers: { accept: MANIFEST_ACCEPT } });
    await dump(res);
    if (res.status === 404) return null;
    if (res.status !== 200) throw this.statusError(res.status, what, []);
    const digest = header(res, 'docker-content-digest')?.trim();
    const mediaType = stripParams(header(res, 'content-type'));
    const size = Number(header(res, 'content-length'));
    if (!digest || !isDigest(digest) || !mediaType || mediaType === 'application/octet-stream' || !Number.isFinite(size)) {
      // registry does not describe the manifest on HEAD: fetch it
      try {
        const m = await this.getManifest(repo, ref);
        return { mediaType: m.mediaType, digest: m.digest, size: m.raw.length };
      } catch (err) {
        if (err instanceof OciError && err.code === 'NOT_FOUND') return null;
        throw err;
      }
    }
    if (isDigest(ref) && digest !== ref) throw new OciError('DIGEST_MISMATCH', `${what}: registry reports digest ${digest}`);
    return { mediaType, digest, size };
  }

  /** Tag or digest → image manifest: an index is resolved to the entry for `platform`; an image manifest is returned as is. */
  async resolveImage(repo: string, ref: string, platform: Platform): Promise<FetchedManifest> {
    const m = await this.getManifest(repo, ref);
    if (!isIndexMediaType(m.mediaType)) return m;
    const entry = selectPlatform(m.json, platform);
    if (!entry) {
      const available = (Array.isArray(m.json.manifests) ? m.json.manifests : [])
        .map((d: any) => d?.platform ? `${d.platform.os}/${d.platform.architecture}${d.platform.variant ? '/' + d.platform.variant : ''}` : '?')
        .join(', ');
      throw new OciError('NOT_FOUND', `${repo}:${ref}: no manifest for platform ${platform.os}/${platform.architecture}` +
        `${platform.variant ? '/' + platform.variant : ''} (available: ${available || 'none'})`);
    }
    const child = await this.getManifest(repo, entry.digest);
    if (!isImageManifestMediaType(child.mediaType)) {
      throw new OciError('INVALID', `${repo}@${entry.digest}: platform entry is ${child.mediaType}, not an image manifest`);
    }
    return child;
  }

  /**
   * Streams a blob. Redirects are followed (Authorization dropped when leaving the registry's origin). The stream errors
   * with DIGEST_MISMATCH at its end when the content does not match, or with TOO_LARGE once more than maxBytes arrived
   * (the promise itself rejects with TOO_LARGE when Content-Length already says so).
   */
  async getBlobStream(repo: string, digest: string, opts: { maxBytes?: number } = {}): Promise<Readable> {
    assertRepository(repo);
    parseDigest(digest);
    const maxBytes = opts.maxBytes ?? Number.MAX_SAFE_INTEGER;
    const what = `blob ${repo}@${digest}`;
    const res = await this.do({ method: 'GET', url: `${this.baseUrl}/v2/${repo}/blobs/${digest}`, scope: pullScope(repo),
      idempotent: true, followRedirects: true });
    if (res.status !== 200) throw await this.failure(res, what);
    const len = Number(header(res, 'content-length'));
    if (Number.isFinite(len) && len > maxBytes) {
      destroyQuietly(res.body);
      throw new OciError('TOO_LARGE', `${what}: ${len} bytes exceeds ${maxBytes}`);
    }
    const verifier = new VerifyingStream(digest, maxBytes, what);
    const body = res.body;
    body.on('error', (e: Error) => {
      verifier.destroy(e instanceof OciError ? e : new OciError('UNAVAILABLE', `${what}: ${e.message}`, { cause: e }));
    });
    verifier.on('close', () => { if (!body.destroyed) destroyQuietly(body); });
    body.pipe(verifier);
    return verifier;
  }

  /** Whole blob in memory (verified, at most maxBytes). */
  async getBlob(repo: string, digest: string, maxBytes: number): Promise<Buffer> {
    const stream = await this.getBlobStream(repo, digest, { maxBytes });
    return readBounded(stream, maxBytes, `blob ${repo}@${digest}`);
  }

  /** HEAD a blob: its size, or null when absent. */
  async headBlob(repo: string, digest: string): Promise<{ size: number } | null> {
    return this.headBlobScoped(repo, digest, pullScope(repo));
  }

  /** Monolithic upload (POST, then PUT with ?digest=); skipped when the blob already exists. Returns the digest. */
  async pushBlob(repo: string, data: Buffer): Promise<string> {
    const digest = sha256Digest(data);
    await this.upload(repo, digest, data.length, data);
    return digest;
  }

  /** Uploads a file without loading it into memory (digest computed by a first pass unless given). Returns the digest. */
  async pushBlobFile(repo: string, filePath: string, digest?: string): Promise<{ digest: string; size: number }> {
    const size = (await stat(filePath)).size;
    let d = digest;
    if (!d) {
      const h = createHash('sha256');
      for await (const chunk of createReadStream(filePath)) h.update(chunk as Buffer);
      d = 'sha256:' + h.digest('hex');
    }
    parseDigest(d);
    await this.upload(repo, d, size, () => createReadStream(filePath));
    return { digest: d, size };
  }

  /** PUT a manifest under a tag or digest; returns its sha256 digest. */
  async pushManifest(repo: string, ref: string, mediaType: string, raw: Buffer): Promise<string> {
    assertRepository(repo);
    assertReference(ref);
    const digest = sha256Digest(raw);
    if (isDigest(ref)) {
      const { algorithm } = parseDigest(ref);
      if (digestWithAlgorithm(algorithm, raw) !== ref) throw new OciError('DIGEST_MISMATCH', `manifest pushed as ${ref} has digest ${digest}`);
    }
    const what = `push manifest ${repo}:${ref}`;
    const res = await this.do({ method: 'PUT', url: `${this.baseUrl}/v2/${repo}/manifests/${ref}`, scope: pushScope(repo),
      idempotent: true, body: raw, headers: { 'content-type': mediaType } });
    if (res.status !== 201 && res.status !== 200 && res.status !== 202) throw await this.failure(res, what);
    await dump(res);
    const hdr = header(res, 'docker-content-digest')?.trim();
    if (hdr && hdr.startsWith('sha256:') && hdr !== digest) {
      throw new OciError('DIGEST_MISMATCH', `${what}: registry stored digest ${hdr}, expected ${digest}`);
    }
    return digest;
  }

  /** DELETE a manifest by digest (registries usually refuse deletion by tag). */
  async deleteManifest(repo: string, digest: string): Promise<void> {
    assertRepository(repo);
    parseDigest(digest);
    const res = await this.do({ method: 'DELETE', url: `${this.baseUrl}/v2/${repo}/manifests/${digest}`, scope: deleteScope(repo),
      idempotent: true });
    if (res.status !== 202 && res.status !== 200 && res.status !== 204) throw await this.failure(res, `delete manifest ${repo}@${digest}`);
    await dump(res);
  }

  // ------------------------------------------------------------------------------------------------------------------
  // upload helpers

  private async headBlobScoped(repo: string, digest: string, scope: string): Promise<{ size: number } | null> {
    assertRepository(repo);
    parseDigest(digest);
    const res = await this.do({ method: 'HEAD', url: `${this.baseUrl}/v2/${repo}/blobs/${digest}`, scope, idempotent: true,
      followRedirects: true });
    await dump(res);
    if (res.status === 404) return null;
    if (res.status !== 200) throw this.statusError(res.status, `blob ${repo}@${digest}`, []);
    const size = Number(header(res, 'content-length'));
    return { size: Number.isFinite(size) ? size : -1 };
  }

  private async upload(repo: string, digest: string, size: number, body: Body): Promise<void> {
    assertRepository(repo);
    const scope = pushScope(repo);
    if (await this.headBlobScoped(repo, digest, scope)) return;
    const what = `push blob ${repo}@${digest}`;
    for (let attempt = 1; ; attempt++) {
      try {
        const start = await this.do({ method: 'POST', url: `${this.baseUrl}/v2/${repo}/blobs/uploads/`, scope, idempotent: false,
          headers: { 'content-length': '0' } });
        if (start.status !== 202 && start.status !== 201) throw await this.failure(start, `${what} (start upload)`);
        await dump(start);
        const location = header(start, 'location');
        if (!location) throw new OciError('INVALID', `${what}: registry returned no upload location`);
        const loc = new URL(location, this.baseUrl).href;
        const putUrl = loc + (loc.includes('?') ? '&' : '?') + 'digest=' + encodeURIComponent(digest);
        const res = await this.do({ method: 'PUT', url: putUrl, scope, idempotent: false, body,
          headers: { 'content-type': 'application/octet-stream', 'content-length': String(size) } });
        if (res.status !== 201 && res.status !== 200 && res.status !== 204) throw await this.failure(res, what);
        await dump(res);
        const hdr = header(res, 'docker-content-digest')?.trim();
        if (hdr && hdr !== digest) throw new OciError('DIGEST_MISMATCH', `${what}: registry stored digest ${hdr}`);
        return;
      } catch (err) {
        if (err instanceof OciError && err.code === 'UNAVAILABLE' && attempt <= this.retries) {
          await sleep(this.backoff(attempt));
          continue;
        }
        throw err;
      }
    }
  }

  // ------------------------------------------------------------------------------------------------------------------
  // HTTP core

  private sameOrigin(url: string): boolean {
    try { return new URL(url).origin === this.origin; } catch { return false; }
  }

  private backoff(attempt: number): number {
    const base = this.retryDelayMs * 2 ** (attempt - 1);
    return Math.min(base + Math.random() * base * 0.25, 30_000);
  }

  private cachedToken(scopeKey: string): string | undefined {
    const t = this.tokens.get(scopeKey);
    if (!t) return undefined;
    if (Date.now() >= t.expiresAt) { this.tokens.delete(scopeKey); return undefined; }
    return t.token;
  }

  private authHeader(url: string, scope: string | undefined): string | undefined {
    if (!this.sameOrigin(url)) return undefined;
    const token = this.cachedToken(scope ?? '');
    if (token) return `Bearer ${token}`;
    if (this.basic && this.opts.auth) return basicAuth(this.opts.auth);
    return undefined;
  }

  private async roundTrip(method: Method, url: string, headers: Record<string, string>, body: Body | undefined): Promise<Response> {
    const res = await request(url, {
      method,
      headers,
      body: body === undefined ? undefined : Buffer.isBuffer(body) ? body : body(),
      headersTimeout: this.timeoutMs,
      bodyTimeout: this.timeoutMs,
      maxRedirections: 0,
      dispatcher: this.opts.dispatcher,
    } as Parameters<typeof request>[1]);
    return { status: res.statusCode, headers: res.headers, body: res.body, url };
  }

  /**
   * One logical request: authentication (cached token / basic, or challenge → token → one retry), manual redirects
   * (Authorization only sent to the registry's own origin), bounded retries with backoff for idempotent requests.
   */
  private async do(o: DoOptions): Promise<Response> {
    const maxAttempts = o.idempotent ? this.retries + 1 : 1;
    let authRetried = false;
    for (let attempt = 1; ; attempt++) {
      let url = o.url;
      let res: Response;
      let sentAuth: string | undefined;
      try {
        if (!o.noAuth && this.bearer && this.sameOrigin(url) && !this.cachedToken(o.scope ?? '')) {
          await this.fetchToken(o.scope ?? '', o.scope ? [o.scope] : []);
        }
        for (let redirects = 0; ; redirects++) {
          const headers: Record<string, string> = { 'user-agent': this.userAgent, ...o.headers };
          // explicit credentials (token endpoint) never follow a redirect to another origin
          if (redirects > 0 && headers.authorization && new URL(url).origin !== new URL(o.url).origin) delete headers.authorization;
          const auth = o.noAuth ? undefined : this.authHeader(url, o.scope);
          if (auth && !headers.authorization) headers.authorization = auth;
          sentAuth = headers.authorization;
          res = await this.roundTrip(o.method, url, headers, o.body);
          const location = header(res, 'location');
          if (o.followRedirects && [301, 302, 303, 307, 308].includes(res.status) && location) {
            await dump(res);
            if (redirects >= MAX_REDIRECTS) throw new OciError('UNAVAILABLE', `${o.method} ${o.url}: too many redirects`);
            url = new URL(location, url).href;
            continue;
          }
          break;
        }
      } catch (err) {
        if (err instanceof OciError) throw err;
        if (attempt < maxAttempts) { await sleep(this.backoff(attempt)); continue; }
        const e = err as Error & { code?: string };
        throw new OciError('UNAVAILABLE', `${o.method} ${redact(url)}: ${e.code ? e.code + ' ' : ''}${e.message}`, { cause: err });
      }
      if (res.status === 401 && !o.noAuth && !authRetried && this.sameOrigin(res.url)) {
        authRetried = true;
        const challenges = parseWwwAuthenticate(headerAll(res, 'www-authenticate'));
        await dump(res);
        this.tokens.delete(o.scope ?? '');
        const ok = await this.handleChallenge(challenges, o.scope, sentAuth);
        if (!ok) {
          const schemes = challenges.map((c) => c.scheme).join(', ') || 'none';
          throw new OciError('UNAUTHORIZED', `${o.method} ${redact(o.url)}: authentication required (challenge: ${schemes}` +
            `${this.opts.auth ? '' : ', no credentials configured'})`, { status: 401 });
        }
        attempt--; // the authenticated retry does not count against the retry budget
        continue;
      }
      if ((res.status === 429 || res.status >= 500) && attempt < maxAttempts) {
        const ra = retryAfterMs(header(res, 'retry-after'));
        await dump(res);
        await sleep(ra !== undefined ? Math.min(ra, 30_000) : this.backoff(attempt));
        continue;
      }
      return res;
    }
  }

  /** Acts on a 401 challenge. Returns true when a retry with new credentials makes sense. */
  private async handleChallenge(challenges: Challenge[], scope: string | undefined, sentAuth: string | undefined): Promise<boolean> {
    const bearer = challenges.find((c) => c.scheme === 'bearer' && c.params.realm);
    if (bearer) {
      this.bearer = { realm: bearer.params.realm, service: bearer.params.service };
      this.basic = false;
      const scopes: string[] = [];
      if (bearer.params.scope) scopes.push(...bearer.params.scope.split(' ').filter(Boolean));
      if (scope && !scopes.includes(scope)) scopes.push(scope);
      await this.fetchToken(scope ?? '', scopes, true);
      return true;
    }
    if (challenges.some((c) => c.scheme === 'basic') && this.opts.auth && sentAuth !== basicAuth(this.opts.auth)) {
      this.basic = true;
      return true;
    }
    return false;
  }

  /** Gets a token for `scopes` from the bearer realm and caches it under `key`; single-flight per key. */
  private async fetchToken(key: string, scopes: string[], force = false): Promise<void> {
    if (!force && this.cachedToken(key)) return;
    const pending = this.pendingTokens.get(key);
    if (pending) return pending;
    const p = this.requestToken(key, scopes).finally(() => this.pendingTokens.delete(key));
    this.pendingTokens.set(key, p);
    return p;
  }

  private async requestToken(key: string, scopes: string[]): Promise<void> {
    const realm = this.bearer!;
    let u: URL;
    try { u = new URL(realm.realm); } catch { throw new OciError('INVALID', `invalid bearer realm: ${JSON.stringify(realm.realm)}`); }
    if (realm.service) u.searchParams.append('service', realm.service);
    for (const s of scopes) u.searchParams.append('scope', s);
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.opts.auth) headers.authorization = basicAuth(this.opts.auth);
    const res = await this.do({ method: 'GET', url: u.href, idempotent: true, noAuth: true, followRedirects: true, headers });
    if (res.status !== 200) {
      const err = await this.failure(res, `token request to ${u.origin}${u.pathname}`);
      throw err;
    }
    const raw = await readBounded(res.body, MAX_TOKEN_BODY, 'token response');
    let json: any;
    try { json = JSON.parse(raw.toString('utf8')); } catch { throw new OciError('UNAUTHORIZED', 'token response is not JSON'); }
    const token = typeof json?.token === 'string' && json.token ? json.token
      : typeof json?.access_token === 'string' && json.access_token ? json.access_token : undefined;
    if (!token) throw new OciError('UNAUTHORIZED', 'token response has no token');
    const expiresIn = typeof json.expires_in === 'number' && json.expires_in > 0 ? json.expires_in : 60;
    let issued = Date.now();
    if (typeof json.issued_at === 'string') {
      const t = Date.parse(json.issued_at);
      // trust issued_at only when clocks roughly agree
      if (Number.isFinite(t) && Math.abs(t - issued) < 5 * 60_000) issued = Math.min(issued, t);
    }
    const lifetimeMs = expiresIn * 1000;
    const margin = Math.min(30_000, lifetimeMs / 2);
    this.tokens.set(key, { token, expiresAt: issued + lifetimeMs - margin });
  }

  private statusError(status: number, what: string, details: RegistryErrorDetail[], extra = ''): OciError {
    const code = status === 404 ? 'NOT_FOUND' : status === 401 || status === 403 ? 'UNAUTHORIZED' : 'UNAVAILABLE';
    const msg = details.length ? details.map((d) => d.message ? `${d.code}: ${d.message}` : d.code).join('; ') : extra;
    return new OciError(code, `${what}: HTTP ${status}${msg ? ' ' + msg : ''}`, { status, details: details.length ? details : undefined });
  }

  /** Turns a non-success response into an OciError (reads a bounded part of its body for the registry's error codes). */
  private async failure(res: Response, what: string): Promise<OciError> {
    let details: RegistryErrorDetail[] = [];
    let text = '';
    try {
      const raw = await readBounded(res.body, MAX_ERROR_BODY, 'error body');
      text = raw.toString('utf8');
      const json = JSON.parse(text);
      if (json && Array.isArray(json.errors)) {
        details = json.errors.filter((e: any) => e && typeof e.code === 'string')
          .map((e: any) => ({ code: e.code, message: typeof e.message === 'string' ? e.message : undefined, detail: e.detail }));
      }
    } catch {
      destroyQuietly(res.body);
    }
    return this.statusError(res.status, what, details, text.trim().slice(0, 200));
  }
}

function pullScope(repo: string): string { return `repository:${repo}:pull`; }
function pushScope(repo: string): string { return `repository:${repo}:pull,push`; }
function deleteScope(repo: string): string { return `repository:${repo}:delete`; }

function basicAuth(a: { username: string; password: string }): string {
  return 'Basic ' + Buffer.from(`${a.username}:${a.password}`).toString('base64');
}

function retryAfterMs(v: string | undefined): number | undefined {
  if (!v) return undefined;
  if (/^\d+$/.test(v.trim())) return Number(v.trim()) * 1000;
  const t = Date.parse(v);
  return Number.isFinite(t) ? Math.max(0, t - Date.now()) : undefined;
}

/** URL without its query (upload locations and CDN URLs carry secrets there). */
function redact(url: string): string {
  try { const u = new URL(url); return `${u.origin}${u.pathname}`; } catch { return url; }
}

function manifestMediaType(json: any, contentType: string | undefined): string | undefined {
  if (typeof json.mediaType === 'string' && json.mediaType) return json.mediaType;
  if (contentType && contentType !== 'application/octet-stream' && contentType !== 'text/plain') return contentType;
  if (Array.isArray(json.manifests)) return MediaTypes.ociIndex;
  if (json.config && Array.isArray(json.layers)) return MediaTypes.ociManifest;
  return undefined;
}

/** Picks the index entry for a platform: os+architecture must match; a requested variant must match, else prefer none/any. */
export function selectPlatform(index: any, platform: Platform): Descriptor | undefined {
  const list: any[] = Array.isArray(index?.manifests) ? index.manifests : [];
  const candidates = list.filter((d) => d && typeof d.digest === 'string' && d.platform &&
    d.platform.os === platform.os && d.platform.architecture === platform.architecture);
  if (platform.variant) return candidates.find((d) => d.platform.variant === platform.variant);
  return candidates.find((d) => !d.platform.variant) ?? candidates[0];
}
