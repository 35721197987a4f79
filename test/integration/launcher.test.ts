/**
 * The embedded default (`npm start` runs tools/launcher): with nothing configured it spawns its own Redis, uses the
 * local data directory, serves the demo releases, runs the five services, and stops all of it on SIGTERM.
 * A second start on the same data directory still has the schematics.
 */
import { ChildProcess, execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../support/procs';
import { ensureDemoReleases } from '../support/factory';
import { descendants, launchFactory, stopProcess } from '../support/launcher';

jest.setTimeout(240_000);

let dataDir: string;
let demoDir: string;

beforeAll(() => {
  demoDir = ensureDemoReleases();
  dataDir = mkdtempSync(path.join(os.tmpdir(), 'factory-launcher-'));
});
const launched: ChildProcess[] = [];
afterAll(async () => {
  // A failed assertion must not leave a factory running (it would outlive the test and its data directory).
  for (const p of launched) if (p.exitCode === null && p.signalCode === null) await stop(p);
  rmSync(dataDir, { recursive: true, force: true });
});

/** Whether a TCP connection to host:port is accepted. */
function accepts(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port, timeout: 3000 });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
  });
}

/** Ports of the internal listeners the launcher reports: Redis, the demo registry, the registry-proxy's /v2, metrics. */
function internalPorts(output: string): number[] {
  const lines = output.split('\n').filter((l) => l.startsWith('[launcher]'));
  return lines.flatMap((l) => [...l.matchAll(/127\.0\.0\.1:(\d+)/g)].map((m) => Number(m[1])));
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

const launch = async (port: number) => {
  const launchedFactory = await launchFactory({ port, dataDir, demoDir });
  launched.push(launchedFactory.proc);
  return launchedFactory;
};
const stop = stopProcess;

test('npm start equivalent: everything embedded, clean shutdown, data survives a restart', async () => {
  const port = await freePort();
  const first = await launch(port);
  const url = `http://127.0.0.1:${port}`;
  const children = descendants(first.proc.pid!);
  // redis-server, docker-registry and the five services
  expect(children.length).toBeGreaterThanOrEqual(7);

  const created = await fetch(`${url}/schematics`, { method: 'POST', body: 'customization:\n  extraKernelArgs: [embedded]\n' });
  expect(created.status).toBe(201);
  const { id } = (await created.json()) as { id: string };
  expect(await (await fetch(`${url}/versions`)).json()).toEqual(['v1.7.7', 'v1.11.3', 'v1.12.2']);
  expect(existsSync(path.join(dataDir, 'keys'))).toBe(true);

  // docker pull on the API's port with local storage: the gateway reads blob bodies from the object directory after
  // the registry-proxy's checks (hand-off); skopeo verifies every digest it copies.
  const pullDir = mkdtempSync(path.join(os.tmpdir(), 'launcher-pull-'));
  const pulled = path.join(pullDir, 'layout');
  const copy = spawnSync('skopeo', ['copy', '--src-tls-verify=false', '--override-arch', 'amd64', `docker://127.0.0.1:${port}/installer/${id}:v1.12.2`, `oci:${pulled}:x`], { encoding: 'utf8', timeout: 300_000 });
  if (copy.status !== 0) throw new Error(`skopeo copy failed: ${copy.stderr}`);
  const index = JSON.parse(readFileSync(path.join(pulled, 'index.json'), 'utf8'));
  const manifest = JSON.parse(readFileSync(path.join(pulled, 'blobs/sha256', index.manifests[0].digest.slice(7)), 'utf8'));
  const layer = manifest.layers[manifest.layers.length - 1];
  const whole = readFileSync(path.join(pulled, 'blobs/sha256', layer.digest.slice(7)));
  const ranged = await fetch(`${url}/v2/installer/${id}/blobs/${layer.digest}`, { headers: { Range: 'bytes=100-1123' } });
  expect(ranged.status).toBe(206);
  expect(ranged.headers.get('content-range')).toBe(`bytes 100-1123/${layer.size}`);
  expect(ranged.headers.get('docker-content-digest')).toBe(layer.digest);
  expect(ranged.headers.get('x-factory-object')).toBeNull();
  expect(Buffer.from(await ranged.arrayBuffer())).toEqual(whole.subarray(100, 1124));
  rmSync(pullDir, { recursive: true, force: true });

  // Internal listeners are on loopback only: the registry-proxy's /v2 and the metrics ports (only the gateway is public).
  const registryPort = Number(/registry-proxy: \/v2 on http:\/\/127\.0\.0\.1:(\d+)/.exec(first.output())?.[1]);
  const ports = internalPorts(first.output());
  expect(ports).toContain(registryPort);
  expect(ports.length).toBeGreaterThanOrEqual(7); // Redis, demo registry, /v2, four metrics ports
  for (const p of ports) expect(await accepts('127.0.0.1', p)).toBe(true);
  // Tests send traffic to loopback only: the bound addresses are read with ss instead of probing other addresses.
  const listening = execFileSync('ss', ['-Hltn'], { encoding: 'utf8' });
  for (const p of ports) expect(listening).toMatch(new RegExp(`\\s127\\.0\\.0\\.1:${p}\\s`));
  // Straight from the registry-proxy port, a client never sees the gateway's hand-off headers (it lacks the secret).
  const direct = await fetch(`http://127.0.0.1:${registryPort}/v2/installer/${id}/blobs/${layer.digest}`, { headers: { 'X-Factory-Handoff': 'object', Range: 'bytes=0-9' } });
  expect(direct.status).toBe(206);
  expect([...direct.headers.keys()].filter((h) => h.startsWith('x-factory-'))).toEqual([]);
  expect(Buffer.from(await direct.arrayBuffer())).toEqual(whole.subarray(0, 10));

  expect(await stop(first.proc)).toBe(0);
  expect(children.filter(alive)).toEqual([]);

  const second = await launch(port);
  try {
    const got = await fetch(`${url}/schematics/${id}`);
    expect(got.status).toBe(200);
    expect(await got.text()).toBe('customization:\n    extraKernelArgs:\n        - embedded\n');
  } finally {
    expect(await stop(second.proc)).toBe(0);
  }
});
