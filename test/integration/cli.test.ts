/**
 * Issue 14 item 6: `talos-factory` run as a process (the compiled CLI through its bin, and once through `npx`)
 * against the five services on Redis, s3rver and the demo releases: schematic create → build --wait → download →
 * checksum verified; an interrupted download (a truncated `.part`) resumes with a Range request to identical bytes;
 * bad input gives one line and the exit code of what failed; progress is drawn under a pseudo-terminal (util-linux
 * `script`) and not without one. The build commands need the build API (services/gateway/src/builds.ts).
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOT, S3Factory, startFactoryOnS3 } from '../support/factory';
import { freePort } from '../support/procs';
import { describeIf, testIf } from '../support/skip';

jest.setTimeout(240_000);

const BIN = path.join(ROOT, 'tools/cli/bin/talos-factory.js');
const HAS_BUILD_API = existsSync(path.join(ROOT, 'services/gateway/src/builds.ts'));
const NO_BUILD_API = 'the build API (POST /builds, /builds/<id>/events) is not in this checkout';
const HAS_SCRIPT = spawnSync('script', ['--version'], { encoding: 'utf8' }).status === 0;
const VERSION = 'v1.11.3';

let env: S3Factory;
let dir: string;
let id: string;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The CLI as a process, stdout and stderr piped (no terminal). */
function cli(args: string[], o: { env?: NodeJS.ProcessEnv } = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [BIN, ...args], { cwd: dir, env: { ...process.env, TALOS_FACTORY_URL: env.factory.url, ...o.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    proc.stdout.on('data', (d) => (stdout += d));
    proc.stderr.on('data', (d) => (stderr += d));
    proc.on('error', reject);
    proc.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** The CLI under a pseudo-terminal (util-linux `script`): stdout and stderr both go to the terminal, captured together. */
function cliOnTerminal(args: string[]): Run {
  const command = [process.execPath, BIN, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  const r = spawnSync('script', ['-qec', command, '/dev/null'], { cwd: dir, env: { ...process.env, TALOS_FACTORY_URL: env.factory.url }, encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** The asset's bytes and recorded checksum as plain HTTP sees them (fetch follows the redirect to storage). */
async function served(asset: string): Promise<{ bytes: Buffer; sha256: string }> {
  const base = `${env.factory.url}/image/${id}/${VERSION}/${asset}`;
  const bytes = Buffer.from(await (await fetch(base)).arrayBuffer());
  const sum = (await (await fetch(`${base}.sha256`)).text()).split(' ')[0];
  return { bytes, sha256: sum };
}

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'cli-it-'));
  env = await startFactoryOnS3({ tmpPrefix: 'cli-' });
  writeFileSync(path.join(dir, 'schematic.yaml'), 'customization:\n  extraKernelArgs:\n    - talos.cli=test\n');
  const created = await cli(['schematic', 'create', '-f', 'schematic.yaml']);
  expect(created).toMatchObject({ code: 0, stderr: '' });
  id = created.stdout.trim();
});

afterAll(async () => {
  await env?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('talos-factory against the real factory', () => {
  test('schematic create prints the ID the factory computes; get, versions, extensions, pxe, installer-ref', async () => {
    expect(id).toMatch(/^[0-9a-f]{64}$/);
    const again = (await (await fetch(`${env.factory.url}/schematics`, { method: 'POST', body: readFileSync(path.join(dir, 'schematic.yaml')) })).json()) as { id: string };
    expect(again.id).toBe(id);
    expect(await cli(['schematic', 'get', id])).toEqual({ code: 0, stdout: 'customization:\n    extraKernelArgs:\n        - talos.cli=test\n', stderr: '' });
    const versions = JSON.parse((await cli(['versions', '--json'])).stdout) as string[];
    expect(versions).toContain(VERSION);
    const extensions = JSON.parse((await cli(['--json', 'extensions', VERSION])).stdout) as { name: string }[];
    expect(extensions.length).toBeGreaterThan(0);
    const pxe = await cli(['pxe', id, VERSION, 'metal-amd64', '--script']);
    expect(pxe.code).toBe(0);
    expect(pxe.stdout).toContain(`kernel ${env.factory.url}/image/${id}/${VERSION}/kernel-amd64 `);
    expect((await cli(['installer-ref', id, VERSION])).stdout).toBe(`${env.host}/metal-installer/${id}:${VERSION}\n`);
  });

  test('download builds the asset, writes it and verifies its sha256 (no progress without a terminal)', async () => {
    const r = await cli(['download', id, VERSION, 'kernel-amd64', '-o', 'kernel', '--json']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const result = JSON.parse(r.stdout);
    const truth = await served('kernel-amd64');
    expect(result).toMatchObject({ file: path.join(dir, 'kernel'), size: truth.bytes.length, sha256: truth.sha256, verified: true, resumedFrom: 0 });
    expect(sha256(readFileSync(path.join(dir, 'kernel')))).toBe(truth.sha256);
    expect(existsSync(path.join(dir, 'kernel.part'))).toBe(false);
  });

  test('an interrupted download (a truncated .part) resumes with a Range request and ends with identical bytes', async () => {
    const truth = await served('initramfs-amd64.xz');
    const half = Math.floor(truth.bytes.length / 2);
    writeFileSync(path.join(dir, 'initramfs.part'), truth.bytes.subarray(0, half));
    const r = await cli(['download', id, VERSION, 'initramfs-amd64.xz', '-o', 'initramfs', '--json']);
    expect(r).toMatchObject({ code: 0, stderr: '' });
    // resumedFrom is the start of the 206 the CLI received for `Range: bytes=<half>-` (a 200 would restart at 0)
    expect(JSON.parse(r.stdout)).toMatchObject({ resumedFrom: half, size: truth.bytes.length, sha256: truth.sha256 });
    expect(readFileSync(path.join(dir, 'initramfs')).equals(truth.bytes)).toBe(true);
  });

  test('a download killed mid-way resumes from where it stopped, to identical bytes', async () => {
    const truth = await served('metal-amd64.iso');
    const part = path.join(dir, 'killed.iso.part');
    // kill the first run as soon as its .part holds some bytes (a few tries: a fast machine may finish first)
    let kept = 0;
    for (let attempt = 0; attempt < 5 && kept === 0; attempt++) {
      rmSync(path.join(dir, 'killed.iso'), { force: true });
      const proc = spawn(process.execPath, [BIN, 'download', id, VERSION, 'metal-amd64.iso', '-o', 'killed.iso'], { cwd: dir, env: { ...process.env, TALOS_FACTORY_URL: env.factory.url }, stdio: 'ignore' });
      const exited = new Promise((r) => proc.once('exit', r));
      while (proc.exitCode === null) {
        const size = existsSync(part) ? statSync(part).size : 0;
        if (size > 0 && size < truth.bytes.length) {
          proc.kill('SIGKILL');
          break;
        }
        await new Promise((r) => setTimeout(r, 2));
      }
      await exited;
      kept = existsSync(part) ? statSync(part).size : 0;
      if (kept >= truth.bytes.length) kept = 0;
    }
    expect(kept).toBeGreaterThan(0);
    const r = await cli(['download', id, VERSION, 'metal-amd64.iso', '-o', 'killed.iso', '--json']);
    expect(r).toMatchObject({ code: 0, stderr: '' });
    expect(JSON.parse(r.stdout)).toMatchObject({ resumedFrom: kept, size: truth.bytes.length, sha256: truth.sha256 });
    expect(readFileSync(path.join(dir, 'killed.iso')).equals(truth.bytes)).toBe(true);
  });

  test('a .part that is not the asset fails the check and is fetched again from the start', async () => {
    const truth = await served('kernel-amd64');
    writeFileSync(path.join(dir, 'other.part'), Buffer.alloc(1000, 0x41));
    const r = await cli(['download', id, VERSION, 'kernel-amd64', '-o', 'other', '--json']);
    expect(r.stderr).toBe('talos-factory: other.part did not match the asset; downloading it again from the start\n');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ resumedFrom: 0, sha256: truth.sha256, verified: true });
    expect(readFileSync(path.join(dir, 'other')).equals(truth.bytes)).toBe(true);
    expect(existsSync(path.join(dir, 'other.part'))).toBe(false);
  });

  test('bad input: one line on stderr and the exit code of what failed', async () => {
    expect(await cli(['download', id, VERSION, 'metal-amd64.ssd'])).toEqual({ code: 4, stdout: '', stderr: 'talos-factory: error parsing profile from path: invalid profile path: "metal-amd64.ssd"\n' });
    expect(await cli(['schematic', 'get', '0'.repeat(64)])).toEqual({ code: 3, stdout: '', stderr: 'talos-factory: schematic not found\n' });
    expect(await cli(['extensions', 'v1.0.0'])).toEqual({ code: 3, stdout: '', stderr: 'talos-factory: version 1.0.0 is not available\n' });
    writeFileSync(path.join(dir, 'bad.yaml'), 'something: 1\n');
    expect(await cli(['schematic', 'create', '-f', 'bad.yaml'])).toEqual({ code: 4, stdout: '', stderr: 'talos-factory: yaml: construct errors: line 1: field something not found in type schematic.Schematic\n' });
    expect(await cli(['download', id, VERSION])).toEqual({ code: 2, stdout: '', stderr: 'talos-factory: download: missing arguments: <id> <version> <asset> (see talos-factory --help)\n' });
    const closed = `http://127.0.0.1:${await freePort()}`;
    expect(await cli(['versions'], { env: { TALOS_FACTORY_URL: closed } })).toEqual({ code: 5, stdout: '', stderr: `talos-factory: cannot reach ${closed}: ECONNREFUSED\n` });
  });

  testIf(HAS_SCRIPT, 'util-linux script is not installed')('under a pseudo-terminal the download draws its progress line; piped, it does not', async () => {
    const r = cliOnTerminal(['download', id, VERSION, 'cmdline-metal-amd64', '-o', 'cmdline']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('\r\x1b[2K');
    expect(r.stdout).toMatch(/cmdline  \[#{16}\] 100%  \d+\/\d+ B  .*\/s  ETA /);
    expect(r.stdout).toContain(`${path.join(dir, 'cmdline')}\r\n`);
    const piped = await cli(['download', id, VERSION, 'cmdline-metal-amd64', '-o', 'cmdline2']);
    expect(piped).toEqual({ code: 0, stdout: `${path.join(dir, 'cmdline2')}\n`, stderr: '' });
  });

  test('npx talos-factory runs the workspace bin from the checkout', () => {
    // as from a shell: without the npm_* settings of the package manager that runs jest
    const shellEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.toLowerCase().startsWith('npm_')));
    const r = spawnSync('npx', ['--no-install', 'talos-factory', '--url', env.factory.url, 'versions'], { cwd: ROOT, env: shellEnv, encoding: 'utf8', timeout: 60_000 });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout.split('\n')).toContain(VERSION);
  });
});

describeIf(HAS_BUILD_API, NO_BUILD_API)('talos-factory build commands (build API)', () => {
  test('schematic create → build --wait → download → checksum verified', async () => {
    const built = await cli(['build', id, VERSION, 'metal-amd64.iso', 'initramfs-amd64.xz', '--wait', '--json']);
    expect(built).toMatchObject({ code: 0, stderr: '' });
    const builds = JSON.parse(built.stdout).builds as { asset: string; state: string; sha256: string }[];
    expect(builds.map((b) => [b.asset, b.state])).toEqual([
      ['metal-amd64.iso', 'done'],
      ['initramfs-amd64.xz', 'done'],
    ]);
    const downloaded = await cli(['download', id, VERSION, 'metal-amd64.iso', '--json']);
    expect(downloaded).toMatchObject({ code: 0, stderr: '' });
    const result = JSON.parse(downloaded.stdout);
    expect(result).toMatchObject({ verified: true, sha256: builds[0].sha256, resumedFrom: 0 });
    expect(sha256(readFileSync(path.join(dir, 'metal-amd64.iso')))).toBe(builds[0].sha256);
    expect(statSync(path.join(dir, 'metal-amd64.iso')).size).toBe(result.size);
  });

  test('build: bad input is one line and exit 4/3', async () => {
    expect(await cli(['build', id, VERSION, 'metal-amd64.ssd'])).toEqual({ code: 4, stdout: '', stderr: 'talos-factory: error parsing profile from path: invalid profile path: "metal-amd64.ssd"\n' });
    expect(await cli(['build', '0'.repeat(64), VERSION, 'kernel-amd64'])).toEqual({ code: 3, stdout: '', stderr: `talos-factory: schematic ID "${'0'.repeat(64)}" not found\n` });
  });

  testIf(HAS_SCRIPT, 'util-linux script is not installed')('build --wait under a pseudo-terminal draws one bar per build; piped, none', async () => {
    const r = cliOnTerminal(['build', id, VERSION, 'metal-amd64.qcow2', 'kernel-arm64', '--wait']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/v1\.11\.3 metal-amd64\.qcow2  \[#{16}\] 100%  done/);
    expect(r.stdout).toMatch(/v1\.11\.3 kernel-arm64       \[#{16}\] 100%  done/);
    const piped = await cli(['build', id, VERSION, 'metal-amd64.qcow2', '--wait']);
    expect(piped.stderr).toBe('');
    expect(piped.stdout).toMatch(/ metal-amd64\.qcow2  done  [0-9a-f]{64}\n$/);
  });

  test('download of a cold asset shows the build, then the download, on a terminal', async () => {
    // a schematic of its own, so its ISO is certainly cold
    writeFileSync(path.join(dir, 'cold.yaml'), 'customization:\n  extraKernelArgs:\n    - talos.cli=cold\n');
    const cold = (await cli(['schematic', 'create', '-f', 'cold.yaml'])).stdout.trim();
    const r = cliOnTerminal(['download', cold, VERSION, 'metal-amd64.iso']);
    // with the output, so a failure shows what the terminal showed
    expect(`exit ${r.code}: ${r.code === 0 ? '' : r.stdout}`).toBe('exit 0: ');
    // the build as it was drawn before it ended (queued, or already running when the worker was quicker)
    expect(r.stdout).toMatch(/v1\.11\.3 metal-amd64\.iso  \[[#-]{16}\] +\d{1,2}%  (queued|starting|fetching imager)/);
    expect(r.stdout).toMatch(/v1\.11\.3 metal-amd64\.iso  \[#{16}\] 100%  done/);
    expect(r.stdout).toMatch(/metal-amd64\.iso  \[#{16}\] 100%  \S+\/\S+ \S+  \S+ \S+\/s  ETA /);
  });
});
