import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import net from 'node:net';

/** How long after draining starts an idle keep-alive connection is left open for one more request (see drainable). */
export const IDLE_CONNECTION_GRACE_MS = 2000;

export interface HttpDrain {
  /** True once drain() was called: readiness answers 503 so that load balancers stop sending requests. */
  readonly draining: boolean;
  /**
   * Stops accepting connections, answers every request still arriving on an open connection (and those in flight)
   * with `Connection: close`, and resolves once every connection is closed: in-flight requests finished, idle ones
   * closed after IDLE_CONNECTION_GRACE_MS. The caller's shutdown deadline bounds requests that never finish.
   */
  drain(): Promise<void>;
}

/**
 * Graceful stop of an HTTP server that loses no request of a keep-alive client. Closing idle keep-alive connections
 * at once (what `http.Server.close` does since Node 19) races with clients that are sending their next request on
 * them: that request is lost with a reset no client may safely retry. Instead, every connection ends with a response
 * that says `Connection: close` (the client sends its next request elsewhere); only connections that stayed idle for
 * the whole grace are closed without one. New connections are refused as soon as draining starts, which load balancers
 * (and clients with more than one address) retry elsewhere. Attach before the server takes requests.
 */
export function drainable(server: Server): HttpDrain {
  const inFlight = new Map<ServerResponse, IncomingMessage>();
  let draining = false;
  let settle: (() => void) | undefined;
  const settleWhenIdle = () => {
    if (draining && inFlight.size === 0) settle?.();
  };
  // Before the application's listener, so that the header is decided before any handler answers.
  server.prependListener('request', (req: IncomingMessage, res: ServerResponse) => {
    inFlight.set(res, req);
    if (draining) res.shouldKeepAlive = false;
    const done = () => {
      inFlight.delete(res);
      settleWhenIdle();
    };
    res.once('finish', done);
    res.once('close', done);
  });
  return {
    get draining() {
      return draining;
    },
    async drain() {
      if (draining) return;
      draining = true;
      for (const [res, req] of inFlight) {
        if (!res.headersSent) res.shouldKeepAlive = false;
        // Its headers already promised keep-alive: the connection is closed once the response is out.
        else res.once('finish', () => req.socket.destroySoon());
      }
      // net.Server's close: stop listening without http.Server's immediate closing of idle connections.
      const closed = new Promise<void>((resolve) => net.Server.prototype.close.call(server, () => resolve()));
      const requestsDone = new Promise<void>((resolve) => {
        settle = resolve;
        settleWhenIdle();
      });
      await Promise.all([requestsDone, new Promise((r) => setTimeout(r, IDLE_CONNECTION_GRACE_MS))]);
      // Requests that arrive meanwhile are answered with Connection: close and tracked again; wait for those too.
      while (inFlight.size > 0) await new Promise<void>((resolve) => (settle = resolve));
      server.closeIdleConnections();
      await closed;
    },
  };
}
