/**
 * `/talosctl/...` at the gateway: the listing is asked of the registry-proxy once per version and remembered; only
 * names of the listing reach the asset path (with the binary's target: key, content type, its build job); versions
 * are checked against the offered list on every request (a withdrawn version stops being served).
 */
import type { AddressInfo } from 'node:net';
import http from 'node:http';
import type { Request, Response } from 'express';
import { AssetTarget, talosctlAssetKey } from '@factory/asset';
import type { TalosctlRelease } from '@factory/catalog';
import { createLogger, createMetricsRegistry } from '@factory/telemetry';
import { createApp, JobCaller } from '../src/app';
import type { AssetRoutes } from '../src/assets';
import { TalosctlRoutes } from '../src/talosctl';

const DIGEST = 'sha256:' + 'd'.repeat(64);
const RELEASE: TalosctlRelease = { version: 'v1.11.0', digest: DIGEST, files: [{ name: 'talosctl-darwin-arm64', size: 4 }, { name: 'talosctl-linux-amd64', size: 5 }, { name: 'talosctl-windows-amd64.exe', size: 6 }] };

async function serve(offered: string[]) {
  const calls: string[] = [];
  const served: Array<{ target: AssetTarget; filename: string }> = [];
  const jobs = {
    call: async (name: string, payload: { version: string }) => {
      calls.push(`${name} ${payload.version}`);
      if (name !== 'upstream.talosctl') throw new Error(`unexpected job ${name}`);
      return payload.version === 'v1.7.0' ? { version: 'v1.7.0', digest: '', files: [] } : RELEASE;
    },
    workerCount: async () => 1,
    ping: async () => undefined,
  } as unknown as JobCaller;
  const assets = {
    serveTarget: async (_req: Request, res: Response, target: AssetTarget, filename: string) => {
      served.push({ target, filename });
      res.status(200).end('bytes');
    },
  } as unknown as AssetRoutes;
  const talosctl = new TalosctlRoutes({ jobs, assets, catalog: { versions: async () => offered }, externalUrl: 'https://factory.example/' });
  const app = createApp({ jobs, assets, talosctl, llmsText: 'guide\n', logger: createLogger('gateway-test', 'silent'), metrics: createMetricsRegistry('gateway-test'), serverTag: 'test', allowedOrigins: ['*'], maxSchematicBytes: 4096 });
  const server = http.createServer(app);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { base, calls, served, offered, close: () => new Promise<void>((r) => server.close(() => r())) };
}

test('the listing: absolute URLs, sorted, asked once per version', async () => {
  const gw = await serve(['v1.7.0', 'v1.11.0']);
  try {
    for (const v of ['v1.11.0', '1.11.0']) {
      const res = await fetch(`${gw.base}/talosctl/${v}`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('application/json');
      expect(await res.json()).toEqual([
        'https://factory.example/talosctl/v1.11.0/talosctl-darwin-arm64',
        'https://factory.example/talosctl/v1.11.0/talosctl-linux-amd64',
        'https://factory.example/talosctl/v1.11.0/talosctl-windows-amd64.exe',
      ]);
    }
    expect(await (await fetch(`${gw.base}/talosctl/v1.7.0`)).text()).toBe('[]\n');
    expect(gw.calls).toEqual(['upstream.talosctl v1.11.0', 'upstream.talosctl v1.7.0']);
  } finally {
    await gw.close();
  }
});

test('a download names the binary of the listing; anything else never reaches the asset path', async () => {
  const gw = await serve(['v1.7.0', 'v1.11.0']);
  try {
    const ok = await fetch(`${gw.base}/talosctl/1.11.0/talosctl-linux-amd64`);
    expect(ok.status).toBe(200);
    expect(gw.served).toHaveLength(1);
    const { target, filename } = gw.served[0];
    expect(filename).toBe('talosctl-linux-amd64');
    expect(target.key).toBe(talosctlAssetKey({ version: 'v1.11.0', digest: DIGEST, file: 'talosctl-linux-amd64' }));
    expect(target.contentType).toBe('application/octet-stream');
    expect((await fetch(`${gw.base}/talosctl/v1.11.0/talosctl-windows-amd64.exe`)).status).toBe(200);
    expect(gw.served[1].target.contentType).toBe('application/vnd.microsoft.portable-executable');
    gw.served.length = 1;

    const cases: Array<[string, number, string]> = [
      ['/talosctl/v1.11.0/talosctl-plan9-amd64', 404, 'talosctl file "talosctl-plan9-amd64" is not available for Talos version v1.11.0\n'],
      ['/talosctl/v1.11.0/..%2F..%2Fetc%2Fpasswd', 404, 'talosctl file "../../etc/passwd" is not available for Talos version v1.11.0\n'],
      ['/talosctl/v1.7.0/talosctl-linux-amd64', 404, 'version 1.7.0 is not available\n'],
      ['/talosctl/v1.12.0/talosctl-linux-amd64', 404, 'version 1.12.0 is not available\n'],
      ['/talosctl/v1.x/talosctl-linux-amd64', 400, 'invalid version "v1.x": expected a semantic version such as v1.11.0\n'],
    ];
    for (const [p, status, body] of cases) {
      const res = await fetch(`${gw.base}${p}`);
      expect([p, res.status, await res.text()]).toEqual([p, status, body]);
    }
    expect(gw.served).toHaveLength(1);

    // a version withdrawn from the offered list is no longer served, although its listing is remembered
    gw.offered.splice(gw.offered.indexOf('v1.11.0'), 1);
    const withdrawn = await fetch(`${gw.base}/talosctl/v1.11.0/talosctl-linux-amd64`);
    expect(withdrawn.status).toBe(404);
    expect(await withdrawn.text()).toBe('version 1.11.0 is not available\n');
  } finally {
    await gw.close();
  }
});

test('/llms.txt: the given text as text/plain; GET only', async () => {
  const gw = await serve([]);
  try {
    const res = await fetch(`${gw.base}/llms.txt`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/plain; charset=utf-8');
    expect(await res.text()).toBe('guide\n');
    expect((await fetch(`${gw.base}/llms.txt`, { method: 'POST' })).status).toBe(405);
  } finally {
    await gw.close();
  }
});
