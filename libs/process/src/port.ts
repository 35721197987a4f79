/** Loopback ports for helper processes and tests. */
import net from 'node:net';

/** How long a port handed out by this process is not handed out again (its taker may not have bound it yet). */
const HANDED_OUT_MS = 120_000;
const handedOut = new Map<number, number>();

/**
 * A TCP port that was free on 127.0.0.1 a moment ago (the OS picked it; someone else may take it in between). The OS
 * readily offers a port it just gave out again (about 4 % of 500 consecutive picks here), so neither a port this
 * process handed out in the last two minutes nor one of `exclude` (ports reserved otherwise, e.g. a configured
 * listen port) is returned.
 */
export async function freePort(o: { exclude?: ReadonlySet<number> } = {}): Promise<number> {
  const now = Date.now();
  for (const [p, at] of handedOut) if (now - at > HANDED_OUT_MS) handedOut.delete(p);
  for (let attempt = 0; ; attempt++) {
    const port = await anyFreePort();
    if ((!handedOut.has(port) && !o.exclude?.has(port)) || attempt >= 100) {
      handedOut.set(port, Date.now());
      return port;
    }
  }
}

function anyFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => resolve(typeof addr === 'object' && addr ? addr.port : 0));
    });
  });
}

/** Resolves once something accepts connections on 127.0.0.1:`port`; rejects after `timeoutMs`. */
export async function waitForPort(port: number, o: { timeoutMs?: number; what?: string } = {}): Promise<void> {
  const timeoutMs = o.timeoutMs ?? 15_000;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const sock = net.connect(port, '127.0.0.1');
      sock.once('connect', () => {
        sock.destroy();
        resolve(true);
      });
      sock.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`${o.what ?? 'port'} did not start listening on port ${port} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
