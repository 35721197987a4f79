/**
 * Every response an integration test receives from a factory is checked against the OpenAPI document
 * (libs/openapi): the operation is found by path templating, its status must be documented, the Content-Type must be
 * one the response documents, JSON bodies must validate against their schema (ajv, JSON Schema 2020-12 as OpenAPI
 * 3.1 uses) and text bodies against theirs (errors: one line ending in a newline), and required headers must be
 * present. `openapi-setup.ts` (jest setupFilesAfterEnv of the integration project) records the responses; a test
 * that received an undocumented response fails.
 */
import Ajv2020, { ValidateFunction } from 'ajv/dist/2020';
import addFormats from 'ajv-formats';
import { JsonObject, OPENAPI_DOCUMENT } from '@factory/openapi';

/** A response as a client saw it. */
export interface ObservedResponse {
  method: string;
  /** absolute URL or path (with query) of the request */
  url: string;
  status: number;
  /** lower-case header names */
  headers: Record<string, string>;
  /** the body as text when it was read (JSON and text bodies); undefined when it was not */
  body?: string;
}

type Responses = Record<string, JsonObject>;

const METHODS = ['get', 'head', 'post', 'put', 'delete', 'patch', 'options'];
const SCHEMA_BASE = 'https://factory.invalid/openapi/schemas/';

interface PathTemplate {
  key: string;
  segments: Array<string | null>; // null: a template parameter (one segment)
  literals: number;
}

export class OpenApiChecker {
  private readonly ajv: Ajv2020;
  private readonly templates: PathTemplate[];
  private readonly validators = new Map<string, ValidateFunction>();

  constructor(private readonly doc: JsonObject = OPENAPI_DOCUMENT) {
    // strict: a keyword ajv does not know is a mistake in the document; `required` in if/then names properties declared beside it
    this.ajv = new Ajv2020({ strict: true, strictRequired: false, allErrors: true });
    addFormats(this.ajv);
    const components = doc.components as { schemas: Record<string, JsonObject> };
    for (const [name, schema] of Object.entries(components.schemas)) this.ajv.addSchema(rebase(schema), SCHEMA_BASE + name);
    this.templates = Object.keys(doc.paths as JsonObject).map((key) => {
      const segments = key.split('/').map((s) => (/^\{[^}]+\}$/.test(s) ? null : s));
      return { key, segments, literals: segments.filter((s) => s !== null).length };
    });
  }

  /** The documented path (template) a request path falls under; the most specific one when several match. */
  matchPath(pathname: string): string | undefined {
    const parts = this.routedPath(pathname).split('/');
    let best: PathTemplate | undefined;
    for (const t of this.templates) {
      if (t.segments.length !== parts.length) continue;
      if (!t.segments.every((s, i) => (s === null ? parts[i] !== '' : s === parts[i]))) continue;
      if (!best || t.literals > best.literals) best = t;
    }
    return best?.key;
  }

  /** The path as the router sees it: under a prefix of `x-path-normalisation` (`/v2/`) without its extra slashes. */
  private routedPath(pathname: string): string {
    for (const [prefix, rule] of Object.entries((this.doc['x-path-normalisation'] ?? {}) as Record<string, string>)) {
      if (rule !== 'trim-slashes' || !pathname.startsWith(prefix)) continue;
      const rest = pathname.slice(prefix.length).replace(/^\/+|\/+$/g, '');
      return rest ? prefix + rest : prefix.replace(/\/$/, '');
    }
    return pathname;
  }

  /** What may answer `method` on `pathname`: the operation's responses, or the router's (x-router-responses). */
  private allowedResponses(method: string, pathname: string): { where: string; responses: Responses } {
    const router = this.doc['x-router-responses'] as Record<string, Responses>;
    const withAny = (where: string, responses: Responses) => ({ where, responses: { ...router.anyRequest, ...responses } });
    const key = this.matchPath(pathname);
    const m = method.toLowerCase();
    if (!key) return withAny(`${method} ${pathname} (no documented path)`, m === 'options' ? { ...router.unknownPath, ...router.options } : router.unknownPath);
    const item = (this.doc.paths as Record<string, Record<string, JsonObject>>)[key];
    const op = METHODS.includes(m) ? item[m] : undefined;
    if (!op) return withAny(`${method} ${key} (method not documented)`, m === 'options' ? router.options : router.otherMethod);
    return withAny(`${method} ${key}`, op.responses as Responses);
  }

  /** Problems of one response; empty when it is what the document says. */
  check(r: ObservedResponse): string[] {
    const { where, responses } = this.allowedResponses(r.method, pathnameOf(r.url));
    const status = String(r.status);
    const documented = responses[status] ?? responses[`${status[0]}XX`] ?? responses.default;
    if (!documented) return [`${where}: status ${status} is not documented (documented: ${Object.keys(responses).join(', ')})`];
    const response = this.resolve(documented);
    const at = `${where} → ${status}`;
    const problems: string[] = [];
    for (const [name, header] of Object.entries((response.headers ?? {}) as Record<string, JsonObject>)) {
      const h = this.resolve(header);
      if (h.required === true && name.toLowerCase() !== 'content-type' && r.headers[name.toLowerCase()] === undefined) problems.push(`${at}: required header ${name} is missing`);
    }
    problems.push(...this.checkContent(at, r, response.content as Record<string, JsonObject> | undefined));
    return problems;
  }

  /** A request the client followed to another host (storage): the operation must document a redirect. */
  checkFollowedRedirect(method: string, url: string): string[] {
    const { where, responses } = this.allowedResponses(method, pathnameOf(url));
    return Object.keys(responses).some((s) => /^3(\d\d|XX)$/.test(s) && s !== '304') ? [] : [`${where}: answered with a redirect, but no redirect is documented`];
  }

  private checkContent(at: string, r: ObservedResponse, content: Record<string, JsonObject> | undefined): string[] {
    const head = r.method.toUpperCase() === 'HEAD';
    const contentType = r.headers['content-type'];
    const empty = head || r.body === '' || r.headers['content-length'] === '0';
    if (!content) {
      if (!head && r.body !== undefined && r.body !== '') return [`${at}: documented without a body, got ${r.body.length} characters (${contentType ?? 'no Content-Type'})`];
      return [];
    }
    if (!contentType) {
      // redirects and header-only answers may come without a body at all
      if (empty && (r.status >= 300 || head)) return [];
      return [`${at}: no Content-Type (documented: ${Object.keys(content).join(', ')})`];
    }
    const mediaKey = matchMediaType(contentType, Object.keys(content));
    if (!mediaKey) return [`${at}: Content-Type ${contentType} is not documented (documented: ${Object.keys(content).join(', ')})`];
    if (head || r.body === undefined) return [];
    const schema = content[mediaKey].schema as JsonObject | undefined;
    if (!schema) return [];
    const base = baseType(mediaKey);
    let value: unknown;
    if (base === 'application/json' || base.endsWith('+json')) {
      try {
        value = JSON.parse(r.body);
      } catch {
        return [`${at}: body is not JSON: ${JSON.stringify(r.body.slice(0, 200))}`];
      }
    } else if (base.startsWith('text/') || base === 'application/yaml' || base === 'application/x-pem-file') {
      value = r.body;
    } else {
      return [];
    }
    const validate = this.validator(`${at} ${mediaKey}`, schema);
    if (validate(value)) return [];
    return [`${at} (${contentType}): ${this.ajv.errorsText(validate.errors, { dataVar: 'body' })}; body: ${JSON.stringify(r.body.slice(0, 300))}`];
  }

  private validator(key: string, schema: JsonObject): ValidateFunction {
    let v = this.validators.get(key);
    if (!v) {
      v = this.ajv.compile(rebase(schema));
      this.validators.set(key, v);
    }
    return v;
  }

  /** Follows a local `$ref` (components.responses, components.parameters, …). */
  private resolve(node: JsonObject): JsonObject {
    let current = node;
    for (let i = 0; i < 8 && typeof current.$ref === 'string'; i++) {
      const ref = current.$ref;
      if (!ref.startsWith('#/')) throw new Error(`non-local $ref ${ref}`);
      current = ref
        .slice(2)
        .split('/')
        .reduce<JsonObject>((o, k) => o[k.replace(/~1/g, '/').replace(/~0/g, '~')] as JsonObject, this.doc);
      if (!current) throw new Error(`unresolved $ref ${ref}`);
    }
    return current;
  }
}

/** The path of a request URL as the server's router sees it: as sent (no dot-segment or percent normalisation). */
function pathnameOf(url: string): string {
  // (the authority is host and port only: a raw request-target such as `*` is kept as the path the router saw)
  return url.replace(/^[a-z][a-z0-9+.-]*:\/\/[a-z0-9.\-_~%@[\]:]*/i, '').split(/[?#]/)[0] || '/';
}

/** `#/components/schemas/X` → the URI the schema was registered under with ajv. */
function rebase(schema: JsonObject): JsonObject {
  return JSON.parse(JSON.stringify(schema).replace(/"#\/components\/schemas\//g, `"${SCHEMA_BASE}`)) as JsonObject;
}

function baseType(mediaType: string): string {
  return mediaType.split(';')[0].trim().toLowerCase();
}

function normalise(mediaType: string): string {
  return mediaType
    .split(';')
    .map((p) => p.trim().toLowerCase())
    .filter(Boolean)
    .join(';');
}

/**
 * The documented media type a Content-Type answers to: the same type with the same parameters, a key without
 * parameters for the same type (any parameters), `type/*`, then `*\/*`.
 */
export function matchMediaType(contentType: string, keys: string[]): string | undefined {
  const actual = normalise(contentType);
  const base = baseType(contentType);
  return (
    keys.find((k) => normalise(k) === actual) ??
    keys.find((k) => !k.includes(';') && baseType(k) === base) ??
    keys.find((k) => baseType(k) === `${base.split('/')[0]}/*`) ??
    keys.find((k) => baseType(k) === '*/*')
  );
}

// --- recording ------------------------------------------------------------------------------------------------------

export interface Violation {
  test: string;
  request: string;
  problems: string[];
}

/** Bodies read for checking: JSON and text, never event streams or large bodies. */
const MAX_CHECKED_BODY = 4 * 1024 * 1024;

function readsBody(method: string, headers: Record<string, string>): boolean {
  if (method.toUpperCase() === 'HEAD') return false;
  const type = baseType(headers['content-type'] ?? '');
  const length = Number(headers['content-length'] ?? 0);
  if (length > MAX_CHECKED_BODY) return false;
  return type === 'application/json' || type.endsWith('+json') || (type.startsWith('text/') && type !== 'text/event-stream') || type === 'application/yaml' || type === 'application/x-pem-file';
}

function headerRecord(headers: Headers): Record<string, string> {
  const out: Record<string, string> = {};
  headers.forEach((v, k) => {
    out[k.toLowerCase()] = v;
  });
  return out;
}

/**
 * Collects the responses of factories (an origin a test started, or anything answering with the factory's
 * `Server: Image Factory …` header) and the problems the checker finds in them. One per jest test file (module
 * registry), shared by the setup file and the test's modules through globalThis.
 */
export class ResponseRecorder {
  readonly checker = new OpenApiChecker();
  private readonly origins = new Set<string>();
  private readonly pending = new Set<Promise<void>>();
  private violations: Violation[] = [];
  /** responses checked so far (all tests of the file) */
  checked = 0;

  /** A factory's base URL (its gateway): every response from it is checked, even those without the Server header. */
  noteFactoryOrigin(url: string): void {
    this.origins.add(originOf(url));
  }

  private fromFactory(url: string, headers: Record<string, string>): boolean {
    return this.origins.has(originOf(url)) || (headers.server ?? '').startsWith('Image Factory');
  }

  /** Called by the fetch wrapper with the response it is about to hand back (before the test reads its body). */
  observeFetch(method: string, requestUrl: string, res: Response): void {
    const headers = headerRecord(res.headers);
    const test = currentTest();
    if (res.redirected && res.url && !this.fromFactory(res.url, headers)) {
      // the factory answered with a redirect to storage that fetch followed: only the redirect is the factory's
      if (this.origins.has(originOf(requestUrl))) this.add(test, `${method} ${requestUrl} (redirect followed)`, this.checker.checkFollowedRedirect(method, requestUrl));
      return;
    }
    const url = res.url || requestUrl;
    if (!this.fromFactory(url, headers)) return;
    const observed: ObservedResponse = { method, url, status: res.status, headers };
    if (!readsBody(method, headers)) {
      this.add(test, `${method} ${url}`, this.checker.check(observed));
      return;
    }
    const read = res
      .clone()
      .text()
      .then(
        (body) => this.add(test, `${method} ${url}`, this.checker.check({ ...observed, body })),
        // the test aborted or the connection broke: status and headers are still checked
        () => this.add(test, `${method} ${url}`, this.checker.check(observed)),
      )
      .finally(() => this.pending.delete(read));
    this.pending.add(read);
  }

  /** A response received some other way (node:http in the fuzz), body included when it was kept. */
  observe(r: ObservedResponse, via = ''): void {
    if (!this.fromFactory(r.url, r.headers) || answeredByNode(r)) return;
    this.add(currentTest(), `${r.method} ${r.url}${via}`, this.checker.check({ ...r, body: r.body !== undefined && readsBody(r.method, r.headers) ? r.body : undefined }));
  }

  /** A raw-socket exchange (test/support/raw-http.ts): the first final response of `response` (latin1) to `head`. */
  observeRaw(port: number, head: string, response: string): void {
    const requestLine = /^([A-Z]+) (\S+) HTTP\/1\.[01]\r?\n/.exec(head);
    const parsed = parseRawResponse(response);
    if (!requestLine || !parsed) return;
    this.observe({ method: requestLine[1], url: `http://127.0.0.1:${port}${requestLine[2]}`, ...parsed }, ' (raw)');
  }

  /** The checker itself failed on a response: reported as that response's violation. */
  noteFault(request: string, err: unknown): void {
    this.add(currentTest(), request, [`the OpenAPI check failed: ${(err as Error)?.stack ?? String(err)}`]);
  }

  private add(test: string, request: string, problems: string[]): void {
    this.checked++;
    if (problems.length) this.violations.push({ test, request, problems });
  }

  /** Waits (at most `timeoutMs`) for bodies still being read. */
  async settle(timeoutMs = 10_000): Promise<void> {
    if (!this.pending.size) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.allSettled([...this.pending]), new Promise((r) => (timer = setTimeout(r, timeoutMs)))]);
    clearTimeout(timer);
  }

  /** The violations found since the last call. */
  takeViolations(): Violation[] {
    const out = this.violations;
    this.violations = [];
    return out;
  }
}

/**
 * Node's HTTP server answers some requests itself before any route (or the factory's code) runs: malformed requests
 * (400), header or request timeouts (408), headers too large (431), unsupported versions (505), an `Expect` it does
 * not know (417). These carry no `Server` header and are not the API's.
 */
function answeredByNode(r: ObservedResponse): boolean {
  return r.headers.server === undefined && [400, 408, 417, 431, 505].includes(r.status);
}

/** `scheme://host[:port]` of a URL as sent (fuzzed paths need not parse as a URL). */
function originOf(url: string): string {
  return (/^[a-z][a-z0-9+.-]*:\/\/[^/?#*]*/i.exec(url)?.[0] ?? '').toLowerCase();
}

function currentTest(): string {
  try {
    return expect.getState().currentTestName ?? '(outside a test)';
  } catch {
    return '(outside a test)';
  }
}

/** Status, headers and body of the first final HTTP/1.x response in `raw` (latin1); chunked bodies are decoded. */
export function parseRawResponse(raw: string): { status: number; headers: Record<string, string>; body: string } | undefined {
  const end = raw.indexOf('\r\n\r\n');
  if (end < 0) return undefined;
  const lines = raw.slice(0, end).split('\r\n');
  const status = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0]);
  if (!status) return undefined;
  // an interim response (100 Continue) has no body: the final one follows
  if (status[1].startsWith('1')) return parseRawResponse(raw.slice(end + 4));
  const headers: Record<string, string> = {};
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  let body = raw.slice(end + 4);
  if (/chunked/i.test(headers['transfer-encoding'] ?? '')) {
    let out = '';
    let rest = body;
    for (;;) {
      const lineEnd = rest.indexOf('\r\n');
      const size = lineEnd < 0 ? NaN : parseInt(rest.slice(0, lineEnd), 16);
      if (!Number.isFinite(size) || size === 0) break;
      out += rest.slice(lineEnd + 2, lineEnd + 2 + size);
      rest = rest.slice(lineEnd + 2 + size + 2);
    }
    body = out;
  } else if (headers['content-length'] !== undefined) {
    body = body.slice(0, Number(headers['content-length']));
  }
  return { status: Number(status[1]), headers, body: Buffer.from(body, 'latin1').toString('utf8') };
}

const RECORDER = Symbol.for('factory.openapi.recorder');

/** The recorder of the current test file. */
export function responseRecorder(): ResponseRecorder {
  const g = globalThis as typeof globalThis & { [RECORDER]?: ResponseRecorder };
  g[RECORDER] ??= new ResponseRecorder();
  return g[RECORDER];
}

export function formatViolations(violations: Violation[]): string {
  return violations.map((v) => `${v.test}: ${v.request}\n  ${v.problems.join('\n  ')}`).join('\n');
}
