/**
 * HTTP behaviour the anchor (siderolabs/image-factory) has and clients rely on: plain-text error bodies ending in a
 * newline, httprouter's 404/405 texts, rs/cors headers. Go's JSON encoding is `goJsonEncode` from @factory/gocompat.
 */
import type { NextFunction, Request, Response } from 'express';
import { randomUUID } from 'node:crypto';
import { errorTextLine } from '@factory/http';

/** Sends exact bytes with exactly the given Content-Type (Express's send() would append a charset). */
export function sendBody(res: Response, status: number, contentType: string, body: string | Buffer): void {
  const buf = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  res.status(status);
  res.setHeader('Content-Type', contentType);
  res.setHeader('Content-Length', buf.length);
  res.end(res.req.method === 'HEAD' ? undefined : buf);
}

/** Go's http.Error: text/plain, nosniff, message + newline (control characters escaped: one line, see errorTextLine). */
export function sendError(res: Response, status: number, message: string): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.removeHeader('Content-Disposition');
  res.setHeader('X-Content-Type-Options', 'nosniff');
  sendBody(res, status, 'text/plain; charset=utf-8', errorTextLine(message));
}

export function identityHeaders(serverTag: string) {
  return (req: Request, res: Response, next: NextFunction): void => {
    res.setHeader('Server', `Image Factory ${serverTag}`);
    const inbound = req.header('x-request-id');
    res.setHeader('X-Request-ID', inbound && inbound.length <= 200 ? inbound : randomUUID());
    next();
  };
}

const CORS_METHODS = ['HEAD', 'GET', 'OPTIONS'];
const CORS_HEADERS = ['cache-control'];
const EXPOSED = 'Content-Disposition, Content-Length, Content-Type';

function originAllowed(origin: string, allowed: string[]): boolean {
  return allowed.some((a) => {
    if (a === '*') return true;
    if (a.includes('*')) {
      const [pre, post] = a.split('*', 2);
      return origin.startsWith(pre) && origin.endsWith(post) && origin.length >= pre.length + post.length;
    }
    return a.toLowerCase() === origin.toLowerCase();
  });
}

/** rs/cors semantics: HEAD/GET/OPTIONS only, `Cache-Control` as the one allowed request header, three exposed headers. */
export function cors(allowedOrigins: string[]) {
  const wildcard = allowedOrigins.includes('*');
  return (req: Request, res: Response, next: NextFunction): void => {
    const origin = req.header('origin');
    const preflight = req.method === 'OPTIONS' && !!req.header('access-control-request-method');
    if (preflight) {
      res.vary('Origin');
      res.vary('Access-Control-Request-Method');
      res.vary('Access-Control-Request-Headers');
      const method = (req.header('access-control-request-method') ?? '').toUpperCase();
      const headers = (req.header('access-control-request-headers') ?? '')
        .split(',')
        .map((h) => h.trim().toLowerCase())
        .filter(Boolean);
      if (origin && originAllowed(origin, allowedOrigins) && CORS_METHODS.includes(method) && headers.every((h) => CORS_HEADERS.includes(h))) {
        res.setHeader('Access-Control-Allow-Origin', wildcard ? '*' : origin);
        res.setHeader('Access-Control-Allow-Methods', method);
        if (headers.length) res.setHeader('Access-Control-Allow-Headers', headers.join(', '));
      }
      res.status(204).end();
      return;
    }
    if (origin) {
      res.vary('Origin');
      if (originAllowed(origin, allowedOrigins) && CORS_METHODS.includes(req.method)) {
        res.setHeader('Access-Control-Allow-Origin', wildcard ? '*' : origin);
        res.setHeader('Access-Control-Expose-Headers', EXPOSED);
      }
    }
    next();
  };
}

type Handler = (req: Request, res: Response) => Promise<void> | void;

interface RouteDef {
  methods: string[];
  pattern: RegExp;
  keys: string[];
  handler: Handler;
  name: string;
}

/**
 * A route table with httprouter's rules: a path parameter is one segment; HEAD is answered only where a route
 * registers it; a known path with another method gets 405 + Allow; unknown paths get `404 page not found`.
 */
export class Routes {
  private readonly defs: RouteDef[] = [];

  add(methods: string[], path: string, handler: Handler): void {
    const keys: string[] = [];
    const src = path
      .split('/')
      .map((seg) => {
        if (seg.startsWith(':')) {
          keys.push(seg.slice(1));
          return '([^/]+)';
        }
        if (seg.startsWith('*')) {
          keys.push(seg.slice(1));
          return '(.*)';
        }
        return seg.replace(/[.+?^${}()|[\]\\]/g, '\\$&');
      })
      .join('/');
    this.defs.push({ methods, pattern: new RegExp(`^${src}$`), keys, handler, name: path });
  }

  match(path: string): Array<{ def: RouteDef; params: Record<string, string> }> {
    const out = [];
    for (const def of this.defs) {
      const m = def.pattern.exec(path);
      if (!m) continue;
      const params: Record<string, string> = {};
      def.keys.forEach((k, i) => {
        try {
          params[k] = decodeURIComponent(m[i + 1]);
        } catch {
          params[k] = m[i + 1];
        }
      });
      out.push({ def, params });
    }
    return out;
  }

  middleware(onError: (err: unknown, req: Request, res: Response) => void) {
    return (req: Request, res: Response, next: NextFunction): void => {
      const matches = this.match(req.path);
      if (!matches.length) return next();
      const hit = matches.find((m) => m.def.methods.includes(req.method));
      if (!hit) {
        const allow = [...new Set(matches.flatMap((m) => m.def.methods))];
        if (req.method === 'OPTIONS') {
          res.setHeader('Allow', [...allow, 'OPTIONS'].join(', '));
          res.status(200).end();
          return;
        }
        res.setHeader('Allow', [...allow, 'OPTIONS'].join(', '));
        sendError(res, 405, 'Method Not Allowed');
        return;
      }
      (req as Request & { routeName?: string }).routeName = hit.def.name;
      Object.assign(req.params, hit.params);
      Promise.resolve()
        .then(() => hit.def.handler(req, res))
        .catch((err) => onError(err, req, res));
    };
  }
}
