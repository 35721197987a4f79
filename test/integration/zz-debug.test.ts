import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ensureDemoReleases, startServices } from '../support/factory';
import { startRedis, startRegistry } from '../support/procs';
jest.setTimeout(900_000);
test('debug', async () => {
  const demoDir = ensureDemoReleases();
  const [redis, upstream] = await Promise.all([startRedis(), startRegistry(path.join(demoDir, 'registry'))]);
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'fault-http-dbg-'));
  const factory = await startServices({ REDIS_URL: redis.url, FACTORY_DATA_DIR: path.join(tmp, 'data'), FACTORY_UPSTREAM_REGISTRY: upstream.host, FACTORY_UPSTREAM_INSECURE: 'true', FACTORY_UPSTREAM_PUBLIC_KEY: path.join(demoDir, 'cosign.pub'), FACTORY_HANDOFF_SECRET: 'f'.repeat(48), REGISTRY_HOST: '127.0.0.1', LOG_LEVEL: 'info' });
  const created = await fetch(`${factory.url}/schematics`, { method: 'POST', body: 'customization:\n  extraKernelArgs: [conditional]\n' });
  const id = ((await created.json()) as { id: string }).id;
  writeFileSync('/tmp/h-http/url', `${factory.url} ${id} ${factory.env.FACTORY_REGISTRY_URL}\n`);
  while (!require('node:fs').existsSync('/tmp/h-http/stop')) {
    await new Promise((r) => setTimeout(r, 1000));
    writeFileSync('/tmp/h-http/logs', [...factory.logs].map(([n, l]) => `--- ${n}\n${l.slice(-3000)}`).join('\n'));
  }
  await factory.stop(); await redis.stop(); await upstream.stop();
});
