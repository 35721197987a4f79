/**
 * Logging (pino, JSON lines) and Prometheus metrics (prom-client) shared by every service. Each service owns one
 * metrics Registry labelled with its name, and non-HTTP services expose it on a small listener with /healthz.
 */
import http from 'node:http';
import pino, { Logger } from 'pino';
import { collectDefaultMetrics, Registry } from 'prom-client';

export type { Logger } from 'pino';

export function createLogger(service: string, level = 'info'): Logger {
  return pino({ name: service, level, base: { service, pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime });
}

export function createMetricsRegistry(service: string): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ service });
  collectDefaultMetrics({ register: registry });
  return registry;
}

export interface HealthCheck {
  /** Resolves when healthy; rejects with a reason otherwise. */
  (): Promise<void>;
}

/** A tiny HTTP listener for /metrics, /healthz and /readyz, used by services that have no HTTP API of their own. */
export async function startMetricsServer(opts: {
  port: number;
  host: string;
  registry: Registry;
  ready?: HealthCheck;
  logger: Logger;
}): Promise<http.Server | undefined> {
  if (!opts.port) return undefined;
  const server = http.createServer((req, res) => {
    const url = (req.url ?? '/').split('?')[0];
    if (url === '/metrics') {
      opts.registry
        .metrics()
        .then((body) => {
          res.writeHead(200, { 'Content-Type': opts.registry.contentType });
          res.end(body);
        })
        .catch((err) => {
          res.writeHead(500, { 'Content-Type': 'text/plain; charset=utf-8' });
          res.end(`${String(err?.message ?? err)}\n`);
        });
      return;
    }
    if (url === '/healthz') {
      res.writeHead(200);
      res.end();
      return;
    }
    if (url === '/readyz') {
      (opts.ready ? opts.ready() : Promise.resolve())
        .then(() => {
          res.writeHead(200);
          res.end();
        })
        .catch((err) => {
          res.writeHead(503, { 'Content-Type': 'text/plain; charset=utf-8' });
          res.end(`not ready: ${String(err?.message ?? err)}\n`);
        });
      return;
    }
    res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' });
    res.end('404 page not found\n');
  });
  server.on('error', (err) => opts.logger.error({ err }, 'metrics listener error'));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => resolve());
  });
  opts.logger.info({ port: opts.port, host: opts.host }, 'metrics listener up');
  return server;
}

export { Registry, Counter, Gauge, Histogram } from 'prom-client';
