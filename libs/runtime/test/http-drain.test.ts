/**
 * drainable: a server stopped under keep-alive load loses no request — a request arriving on an idle keep-alive
 * connection after the drain began is answered (with Connection: close), one in flight finishes, and new connections
 * are refused (which a load balancer retries elsewhere).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { drainable, IDLE_CONNECTION_GRACE_MS } from '../src';

jest.setTimeout(15_000);

function get(agent: http.Agent, port: number, path: string): Promise<{ status: number; connection: string | undefined; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path, agent }, (res) => {
        let body = '';
        res.on('data', (d) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode!, connection: res.headers.connection, body }));
      })
      .on('error', reject);
  });
}

test('drain: in-flight and idle keep-alive connections get their answer with Connection: close, new connections are refused', async () => {
  let release: (() => void) | undefined;
  const server = http.createServer((req, res) => {
    if (req.url === '/slow') release = () => res.end('slow');
    else res.end('fast');
  });
  const drain = drainable(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const { port } = server.address() as AddressInfo;
  const agent = new http.Agent({ keepAlive: true, maxSockets: 2 });

  // two keep-alive connections: one will carry a request in flight, the other stays idle
  for (const warm of await Promise.all([get(agent, port, '/warm'), get(agent, port, '/warm')])) expect(warm).toMatchObject({ status: 200, connection: 'keep-alive' });
  const slow = get(agent, port, '/slow');
  while (!release) await new Promise((r) => setTimeout(r, 5));

  const drained = drain.drain();
  expect(drain.draining).toBe(true);
  // The client reuses its idle connection right after the drain began: answered, and told to go elsewhere next time.
  await new Promise((r) => setTimeout(r, 50));
  expect(await get(agent, port, '/idle-reused')).toEqual({ status: 200, connection: 'close', body: 'fast' });
  // A new connection is refused.
  await expect(get(new http.Agent(), port, '/new')).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  release();
  expect(await slow).toEqual({ status: 200, connection: 'close', body: 'slow' });

  const t = Date.now();
  await drained;
  expect(Date.now() - t).toBeLessThan(IDLE_CONNECTION_GRACE_MS + 1000);
  agent.destroy();
});
