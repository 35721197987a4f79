/**
 * A tiny in-process OCI registry for unit tests (node:http): manifests, blobs, monolithic uploads, paginated tag lists,
 * optional bearer-token or basic auth, an optional blob redirect to a second "CDN" server, and request hooks for faults.
 */
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import { AddressInfo } from 'node:net';

export type MockAuth = 'none' | 'bearer' | 'basic';

export interface MockRegistryOptions {
  auth?: MockAuth;
  /** credentials accepted by basic auth and by the token endpoint */
  user?: { username: string; password: string };
  /** token endpoint grants pull tokens without credentials */
  anonymousPull?: boolean;
  /** name of the field carrying the token */
  tokenField?: 'token' | 'access_token';
  expiresIn?: number;
  /** tags/list page size when the client gives no n */
  defaultPageSize?: number;
  /** absolute (http://host/v2/...) instead of relative Link URLs */
  absoluteLinks?: boolean;
  /** redirect blob GETs to the CDN server */
  redirectBlobs?: boolean;
}

export interface LoggedRequest { method: string; url: string; headers: http.IncomingHttpHeaders }

/** Return true if the hook answered the request. */
export type Hook = (req: http.IncomingMessage, res: http.ServerResponse, body: Buffer) => boolean | void;

const sha256 = (b: Buffer) => 'sha256:' + createHash('sha256').update(b).digest('hex');

export class MockRegistry {
  readonly blobs = new Map<string, Buffer>();
  /** key: `${repo}@${digest}` → {mediaType, raw} */
  readonly manifests = new Map<string, { mediaType: string; raw: Buffer; headerDigest?: string }>();
  /** key: `${repo}:${tag}` → digest */
  readonly tags = new Map<string, string>();
  readonly requests: LoggedRequest[] = [];
  readonly cdnRequests: LoggedRequest[] = [];
  readonly tokenRequests: URL[] = [];
  hooks: Hook[] = [];
  /** tokens → {scopes, expiry} */
  readonly issued = new Map<string, { scopes: string[]; expires: number }>();
  private server!: http.Server;
  private cdn!: http.Server;
  private uploads = new Map<string, string>();
  port = 0;
  cdnPort = 0;

  constructor(readonly opts: MockRegistryOptions = {}) {}

  get host(): string { return `127.0.0.1:${this.port}`; }

  async start(): Promise<this> {
    this.server = http.createServer((req, res) => this.collect(req, res, (b) => this.handle(req, res, b)));
    this.cdn = http.createServer((req, res) => this.collect(req, res, () => this.handleCdn(req, res)));
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    await new Promise<void>((r) => this.cdn.listen(0, '127.0.0.1', r));
    this.port = (this.server.address() as AddressInfo).port;
    this.cdnPort = (this.cdn.address() as AddressInfo).port;
    return this;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    this.cdn.closeAllConnections();
    await new Promise((r) => this.server.close(r));
    await new Promise((r) => this.cdn.close(r));
  }

  // ---- direct store access for tests
  putBlob(data: Buffer): string {
    const d = sha256(data);
    this.blobs.set(d, data);
    return d;
  }

  putManifest(repo: string, obj: unknown, tag?: string, mediaType?: string): { digest: string; raw: Buffer } {
    const raw = Buffer.isBuffer(obj) ? obj : Buffer.from(JSON.stringify(obj));
    const d = sha256(raw);
    const mt = mediaType ?? (JSON.parse(raw.toString()).mediaType as string);
    this.manifests.set(`${repo}@${d}`, { mediaType: mt, raw });
    if (tag) this.tags.set(`${repo}:${tag}`, d);
    return { digest: d, raw };
  }

  revokeTokens(): void { this.issued.clear(); }

  // ---- internals
  private collect(req: http.IncomingMessage, res: http.ServerResponse, next: (b: Buffer) => void): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      try { next(Buffer.concat(chunks)); } catch (err) { res.statusCode = 500; res.end(String(err)); }
    });
  }

  private error(res: http.ServerResponse, status: number, code: string, message: string, headers: Record<string, string> = {}): void {
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(JSON.stringify({ errors: [{ code, message }] }));
  }

  private handleCdn(req: http.IncomingMessage, res: http.ServerResponse): void {
    this.cdnRequests.push({ method: req.method!, url: req.url!, headers: req.headers });
    const m = /^\/cdn\/(sha256:[0-9a-f]{64})/.exec(req.url!);
    const data = m ? this.blobs.get(m[1]) : undefined;
    if (!data) { res.statusCode = 404; res.end(); return; }
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': data.length });
    res.end(data);
  }

  private challenge(res: http.ServerResponse, scope: string | undefined): void {
    const h = this.opts.auth === 'basic'
      ? 'Basic realm="mock"'
      : `Bearer realm="http://127.0.0.1:${this.port}/token",service="mock-registry"${scope ? `,scope="${scope}"` : ''}`;
    this.error(res, 401, 'UNAUTHORIZED', 'authentication required', { 'www-authenticate': h });
  }

  private checkBasic(h: string | undefined): boolean {
    const u = this.opts.user;
    if (!u || !h?.startsWith('Basic ')) return false;
    return Buffer.from(h.slice(6), 'base64').toString() === `${u.username}:${u.password}`;
  }

  private handleToken(req: http.IncomingMessage, res: http.ServerResponse, url: URL): void {
    this.tokenRequests.push(url);
    const authed = this.checkBasic(req.headers.authorization);
    if (req.headers.authorization && !authed) { this.error(res, 401, 'UNAUTHORIZED', 'bad credentials'); return; }
    if (!authed && !this.opts.anonymousPull) { this.error(res, 401, 'UNAUTHORIZED', 'credentials required'); return; }
    const scopes: string[] = [];
    for (const s of url.searchParams.getAll('scope')) {
      const [type, name, actions] = s.split(':');
      const granted = actions.split(',').filter((a) => authed || a === 'pull');
      scopes.push(`${type}:${name}:${granted.join(',')}`);
    }
    const token = randomBytes(12).toString('hex');
    const expiresIn = this.opts.expiresIn ?? 300;
    this.issued.set(token, { scopes, expires: Date.now() + expiresIn * 1000 });
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ [this.opts.tokenField ?? 'token']: token, expires_in: expiresIn, issued_at: new Date().toISOString() }));
  }

  private authorized(req: http.IncomingMessage, repo: string | undefined, action: 'pull' | 'push'): boolean {
    const mode = this.opts.auth ?? 'none';
    if (mode === 'none') return true;
    const h = req.headers.authorization;
    if (mode === 'basic') return this.checkBasic(h);
    if (!h?.startsWith('Bearer ')) return false;
    const t = this.issued.get(h.slice(7));
    if (!t || t.expires < Date.now()) return false;
    if (!repo) return true;
    return t.scopes.some((s) => {
      const [, name, actions] = s.split(':');
      return name === repo && actions.split(',').includes(action);
    });
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse, body: Buffer): void {
    this.requests.push({ method: req.method!, url: req.url!, headers: req.headers });
    for (const h of this.hooks) if (h(req, res, body)) return;
    const url = new URL(req.url!, `http://${this.host}`);
    if (url.pathname === '/token') { this.handleToken(req, res, url); return; }
    if (url.pathname === '/v2/' || url.pathname === '/v2') {
      if (!this.authorized(req, undefined, 'pull')) { this.challenge(res, undefined); return; }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{}');
      return;
    }
    const m = /^\/v2\/(.+)\/(manifests|blobs|tags)\/(.*)$/.exec(url.pathname);
    if (!m) { this.error(res, 404, 'NOT_FOUND', 'no route'); return; }
    const [, repo, kind, rest] = m;
    const method = req.method!;
    const action = method === 'GET' || method === 'HEAD' ? 'pull' : 'push';
    if (!this.authorized(req, repo, action)) {
      this.challenge(res, `repository:${repo}:${action === 'pull' ? 'pull' : 'pull,push'}`);
      return;
    }
    if (kind === 'tags' && rest === 'list') return this.tagsList(res, repo, url);
    if (kind === 'manifests') return this.manifest(req, res, repo, decodeURIComponent(rest), body);
    if (kind === 'blobs') return this.blob(req, res, repo, rest, url, body);
    this.error(res, 404, 'NOT_FOUND', 'no route');
  }

  private tagsList(res: http.ServerResponse, repo: string, url: URL): void {
    const all = [...this.tags.keys()].filter((k) => k.startsWith(repo + ':')).map((k) => k.slice(repo.length + 1)).sort();
    if (!all.length) { this.error(res, 404, 'NAME_UNKNOWN', 'repository name not known to registry'); return; }
    const n = Number(url.searchParams.get('n') ?? this.opts.defaultPageSize ?? 1000);
    const last = url.searchParams.get('last');
    const startIdx = last ? all.findIndex((t) => t > last) : 0;
    const page = startIdx < 0 ? [] : all.slice(startIdx, startIdx + n);
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (page.length && all.indexOf(page[page.length - 1]) < all.length - 1) {
      const path = `/v2/${repo}/tags/list?n=${n}&last=${encodeURIComponent(page[page.length - 1])}`;
      headers.link = `<${this.opts.absoluteLinks ? `http://${this.host}${path}` : path}>; rel="next"`;
    }
    res.writeHead(200, headers);
    res.end(JSON.stringify({ name: repo, tags: page }));
  }

  private manifest(req: http.IncomingMessage, res: http.ServerResponse, repo: string, ref: string, body: Buffer): void {
    if (req.method === 'PUT') {
      const d = sha256(body);
      this.manifests.set(`${repo}@${d}`, { mediaType: String(req.headers['content-type']), raw: body });
      if (!ref.startsWith('sha256:')) this.tags.set(`${repo}:${ref}`, d);
      res.writeHead(201, { 'docker-content-digest': d, location: `/v2/${repo}/manifests/${d}` });
      res.end();
      return;
    }
    const digest = ref.startsWith('sha256:') ? ref : this.tags.get(`${repo}:${ref}`);
    const m = digest ? this.manifests.get(`${repo}@${digest}`) : undefined;
    if (!m || !digest) { this.error(res, 404, 'MANIFEST_UNKNOWN', 'manifest unknown'); return; }
    res.writeHead(200, { 'content-type': m.mediaType, 'content-length': m.raw.length, 'docker-content-digest': m.headerDigest ?? digest });
    res.end(req.method === 'HEAD' ? undefined : m.raw);
  }

  private blob(req: http.IncomingMessage, res: http.ServerResponse, repo: string, rest: string, url: URL, body: Buffer): void {
    if (rest.startsWith('uploads')) {
      if (req.method === 'POST') {
        const id = randomBytes(8).toString('hex');
        this.uploads.set(id, repo);
        res.writeHead(202, { location: `/v2/${repo}/blobs/uploads/${id}?_state=abc%3D%3D`, 'docker-upload-uuid': id, 'content-length': 0 });
        res.end();
        return;
      }
      if (req.method === 'PUT') {
        const id = rest.split('/')[1];
        if (!this.uploads.has(id)) { this.error(res, 404, 'BLOB_UPLOAD_UNKNOWN', 'unknown upload'); return; }
        const want = url.searchParams.get('digest');
        if (url.searchParams.get('_state') !== 'abc==') { this.error(res, 400, 'BLOB_UPLOAD_INVALID', 'state lost'); return; }
        if (want !== sha256(body)) { this.error(res, 400, 'DIGEST_INVALID', 'digest mismatch'); return; }
        this.uploads.delete(id);
        this.blobs.set(want, body);
        res.writeHead(201, { 'docker-content-digest': want, location: `/v2/${repo}/blobs/${want}` });
        res.end();
        return;
      }
    }
    const data = this.blobs.get(rest);
    if (!data) { this.error(res, 404, 'BLOB_UNKNOWN', 'blob unknown'); return; }
    if (req.method === 'GET' && this.opts.redirectBlobs) {
      res.writeHead(307, { location: `http://localhost:${this.cdnPort}/cdn/${rest}?X-Signature=s3cr3t` });
      res.end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': data.length, 'docker-content-digest': rest });
    res.end(req.method === 'HEAD' ? undefined : data);
  }
}
