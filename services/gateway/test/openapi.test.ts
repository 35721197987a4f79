/**
 * `GET /openapi.json` serves the document of libs/openapi, and the document cannot fall behind the gateway: every
 * route `createApp` registers (with every optional route on) is documented with the same methods.
 */
import type { AddressInfo } from 'node:net';
import http from 'node:http';
import { OPENAPI_DOCUMENT } from '@factory/openapi';
import { createLogger, createMetricsRegistry } from '@factory/telemetry';
import { createApp, JobCaller } from '../src/app';
import type { AssetRoutes } from '../src/assets';
import type { BuildRoutes } from '../src/builds';
import type { NotifyRouteOptions } from '../src/notify/routes';
import type { UiOptions } from '../src/ui/routes';
import { Routes } from '../src/compat';
import type { TalosctlRoutes } from '../src/talosctl';

const jobs = { call: async () => ({}), workerCount: async () => 1, ping: async () => undefined } as unknown as JobCaller;
const gatewayOptions = () => ({
  jobs,
  logger: createLogger('gateway-test', 'silent'),
  metrics: createMetricsRegistry('gateway-test'),
  serverTag: 'test',
  allowedOrigins: ['*'],
  maxSchematicBytes: 4096,
  // every optional route on (they are only registered, never called here)
  assets: {} as AssetRoutes,
  talosctl: {} as TalosctlRoutes,
  builds: {} as BuildRoutes,
  notify: {} as NotifyRouteOptions,
  ui: { externalUrl: 'http://factory.test/', externalPxeUrl: 'http://factory.test/' } as UiOptions,
  llmsText: 'llms',
});

test('every route of the gateway is documented with its methods (the /v2 registry is documented separately)', () => {
  const registered: string[] = [];
  const add = jest.spyOn(Routes.prototype, 'add').mockImplementation(function (this: Routes, methods: string[], path: string) {
    for (const m of methods) registered.push(`${m} ${path.replace(/:([a-zA-Z]+)/g, '{$1}')}`);
  });
  try {
    createApp(gatewayOptions());
  } finally {
    add.mockRestore();
  }
  const paths = OPENAPI_DOCUMENT.paths as Record<string, Record<string, unknown>>;
  // the document's parameter names may differ from the code's (`{file}` for `:path`): compare by shape
  const shape = (p: string) => p.replace(/\{[^}]+\}/g, '{}');
  const documented = Object.entries(paths)
    .filter(([p]) => !p.startsWith('/v2'))
    .flatMap(([p, item]) => Object.keys(item).map((m) => `${m.toUpperCase()} ${p}`));
  const documentedShapes = new Set(documented.map(shape));
  expect(registered.filter((r) => !documentedShapes.has(shape(r)))).toEqual([]);
  const registeredShapes = new Set(registered.map(shape));
  expect(documented.filter((d) => !registeredShapes.has(shape(d)))).toEqual([]);
});

test('GET /openapi.json: 200, application/json, the document', async () => {
  const server = http.createServer(createApp(gatewayOptions()));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const res = await fetch(`${base}/openapi.json`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(await res.json()).toEqual(OPENAPI_DOCUMENT);
    expect((await fetch(`${base}/openapi.json`, { method: 'HEAD' })).status).toBe(405);
  } finally {
    await new Promise((r) => server.close(r));
  }
});
