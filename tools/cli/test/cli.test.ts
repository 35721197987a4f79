/**
 * `talos-factory` in-process (main with captured streams) against the fake factory of test/support: every command,
 * the exit codes, one-line errors, progress only on a terminal, and downloads that resume and verify.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { freePort } from '@factory/process';
import { main } from '../src/main';
import { FakeFactory, FakeFactoryOptions, startFakeFactory } from '../../../test/support/fake-factory';

let fake: FakeFactory;
let dir: string;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function cli(argv: string[], opts: { tty?: boolean; stdin?: string; env?: NodeJS.ProcessEnv } = {}): Promise<Run> {
  let stdout = '';
  let stderr = '';
  const code = await main(argv, {
    stdout: { write: (s: string) => (stdout += s) },
    stderr: { write: (s: string) => (stderr += s), isTTY: opts.tty ?? false, columns: 200 },
    stdin: Readable.from([opts.stdin ?? '']),
    env: opts.env ?? { TALOS_FACTORY_URL: fake.url },
    cwd: dir,
  });
  return { code, stdout, stderr };
}

async function restart(opts: FakeFactoryOptions): Promise<void> {
  await fake.close();
  fake = await startFakeFactory(opts);
}

async function schematic(): Promise<string> {
  writeFileSync(path.join(dir, 'schematic.yaml'), 'customization:\n  extraKernelArgs: [vga=791]\n');
  const r = await cli(['schematic', 'create', '-f', 'schematic.yaml']);
  expect(r).toMatchObject({ code: 0, stderr: '' });
  return r.stdout.trim();
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

beforeEach(async () => {
  fake = await startFakeFactory({ stepMs: 5 });
  dir = mkdtempSync(path.join(os.tmpdir(), 'cli-test-'));
});
afterEach(async () => {
  await fake.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('talos-factory commands', () => {
  it('creates a schematic from a file or stdin and prints its ID; gets it back', async () => {
    const id = await schematic();
    expect(id).toMatch(/^[0-9a-f]{64}$/);
    const fromStdin = await cli(['--json', 'schematic', 'create', '-f', '-'], { stdin: 'customization:\n  extraKernelArgs: [vga=791]\n' });
    expect(JSON.parse(fromStdin.stdout)).toEqual({ id, schematic: 'customization:\n  extraKernelArgs: [vga=791]\n' });
    expect((await cli(['schematic', 'get', id])).stdout).toBe('customization:\n  extraKernelArgs: [vga=791]\n');
  });

  it('lists versions and extensions, as text and as JSON', async () => {
    expect((await cli(['versions'])).stdout).toBe('v1.9.5\nv1.11.3\nv1.12.2\n');
    expect(JSON.parse((await cli(['versions', '--json'])).stdout)).toEqual(['v1.9.5', 'v1.11.3', 'v1.12.2']);
    expect((await cli(['extensions', 'v1.12.2'])).stdout).toBe('siderolabs/gvisor  ghcr.io/siderolabs/gvisor:20231214.0  gVisor container runtime\n');
  });

  it('takes the URL from --url over TALOS_FACTORY_URL', async () => {
    const r = await cli(['--url', fake.url, 'versions'], { env: { TALOS_FACTORY_URL: 'http://127.0.0.1:9' } });
    expect(r.code).toBe(0);
  });

  it('prints PXE URLs and scripts and installer references', async () => {
    const id = await schematic();
    expect((await cli(['pxe', id, 'v1.12.2', 'metal-amd64'])).stdout).toBe(`${fake.url}/pxe/${id}/v1.12.2/metal-amd64\n`);
    expect((await cli(['pxe', id, 'v1.12.2', 'metal-amd64', '--script'])).stdout).toMatch(/^#!ipxe\n\nimgfree\nkernel /);
    const host = new URL(fake.url).host;
    expect((await cli(['installer-ref', id, '1.12.2'])).stdout).toBe(`${host}/metal-installer/${id}:v1.12.2\n`);
    expect((await cli(['installer-ref', id, 'v1.9.5', '--secureboot'])).stdout).toBe(`${host}/installer-secureboot/${id}:v1.9.5\n`);
    expect(JSON.parse((await cli(['installer-ref', id, 'v1.12.2', '--platform', 'aws', '--json'])).stdout)).toEqual({ ref: `${host}/aws-installer/${id}:v1.12.2` });
  });
});

describe('talos-factory failures: one line on stderr, an exit code that says what failed', () => {
  it.each([
    [['frobnicate'], 'talos-factory: unknown command "frobnicate" (see talos-factory --help)\n'],
    [['versions', '--fast'], 'talos-factory: unknown option --fast for versions (see talos-factory --help)\n'],
    [['build', 'abc', 'v1.12.2'], 'talos-factory: build: missing arguments: <id> <version> <asset>... (see talos-factory --help)\n'],
    [['schematic', 'create'], 'talos-factory: schematic create: -f <schematic.yaml> is required (see talos-factory --help)\n'],
    [['schematic', 'create', '-f', 'missing.yaml'], 'talos-factory: cannot read missing.yaml: ENOENT\n'],
    [['--url', 'localhost:8080', 'versions'], 'talos-factory: invalid factory URL "localhost:8080" (expected http:// or https://) (see talos-factory --help)\n'],
  ])('usage: %j → exit 2', async (argv, stderr) => {
    expect(await cli(argv)).toEqual({ code: 2, stdout: '', stderr });
  });

  it('not found → exit 3, refused input → exit 4, with the factory\'s text', async () => {
    expect(await cli(['schematic', 'get', 'f'.repeat(64)])).toEqual({ code: 3, stdout: '', stderr: 'talos-factory: schematic not found\n' });
    const id = await schematic();
    expect(await cli(['build', id, 'v1.12.2', 'nope.bin'])).toEqual({ code: 4, stdout: '', stderr: 'talos-factory: error parsing profile from path: invalid profile path: "nope.bin"\n' });
  });

  it('an unreachable factory → exit 5', async () => {
    const closed = `http://127.0.0.1:${await freePort()}`;
    const r = await cli(['versions'], { env: { TALOS_FACTORY_URL: closed } });
    expect(r).toEqual({ code: 5, stdout: '', stderr: `talos-factory: cannot reach ${closed}: ECONNREFUSED\n` });
  });

  it('prints help with the exit codes (exit 0), and usage without a command (exit 2)', async () => {
    const help = await cli(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('    6  checksum mismatch of a download');
    expect((await cli(['download', '--help'])).stdout).toMatch(/^Usage: talos-factory download <id> <version> <asset> \[--output <file>\]/);
    expect(await cli([])).toMatchObject({ code: 2, stdout: '' });
  });
});

describe('talos-factory build', () => {
  it('starts builds and prints them; --wait follows them to done, without progress when stderr is no terminal', async () => {
    const id = await schematic();
    const started = await cli(['build', id, 'v1.12.2', 'metal-amd64.iso', 'kernel-amd64', '--json']);
    expect(JSON.parse(started.stdout).builds.map((b: { asset: string }) => b.asset)).toEqual(['metal-amd64.iso', 'kernel-amd64']);
    const waited = await cli(['build', id, 'v1.12.2', 'metal-amd64.iso', 'kernel-amd64', '--wait']);
    expect(waited.code).toBe(0);
    expect(waited.stderr).toBe('');
    const lines = waited.stdout.trim().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(new RegExp(`^[0-9a-f]{64}  v1\\.12\\.2  metal-amd64\\.iso  done  ${sha256(fake.assetBytes(id, 'v1.12.2', 'metal-amd64.iso'))}$`));
  });

  it('draws a progress line per build on a terminal, ending at 100%', async () => {
    const id = await schematic();
    const r = await cli(['build', id, 'v1.12.2', 'metal-amd64.iso', 'kernel-amd64', '--wait'], { tty: true });
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('\r');
    expect(r.stderr).toMatch(/v1\.12\.2 metal-amd64\.iso  \[#{16}\] 100%  done/);
    expect(r.stderr).toMatch(/v1\.12\.2 kernel-amd64     \[#{16}\] 100%  done/);
    // two lines redrawn in place: the cursor goes back up one line
    expect(r.stderr).toContain('\x1b[1A');
  });

  it('a failed build exits with the code of its error (422 → 4)', async () => {
    const id = await schematic();
    const r = await cli(['build', id, 'v1.12.2', 'fail.iso', '--wait']);
    expect(r.code).toBe(4);
    expect(r.stdout).toMatch(/fail\.iso  failed: asset too large: 9 GiB > 8 GiB/);
  });
});

describe('talos-factory download', () => {
  it('builds a cold asset (202 + events), downloads and verifies it', async () => {
    const id = await schematic();
    const r = await cli(['download', id, 'v1.12.2', 'metal-amd64.iso', '--json']);
    expect(r).toMatchObject({ code: 0, stderr: '' });
    const bytes = fake.assetBytes(id, 'v1.12.2', 'metal-amd64.iso');
    const out = JSON.parse(r.stdout);
    expect(out).toMatchObject({ file: path.join(dir, 'metal-amd64.iso'), size: bytes.length, sha256: sha256(bytes), verified: true, resumedFrom: 0 });
    expect(out.build).toMatch(/^[0-9a-f]{64}$/);
    expect(readFileSync(path.join(dir, 'metal-amd64.iso')).equals(bytes)).toBe(true);
    expect(existsSync(path.join(dir, 'metal-amd64.iso.part'))).toBe(false);
    expect(fake.requests.some((q) => q.path.endsWith('/events'))).toBe(true);
    expect(fake.requests.some((q) => q.path.endsWith('metal-amd64.iso.sha256'))).toBe(true);
  });

  it('resumes a partial file with a Range request and ends with identical bytes', async () => {
    const id = await schematic();
    await cli(['build', id, 'v1.12.2', 'kernel-amd64', '--wait']);
    const bytes = fake.assetBytes(id, 'v1.12.2', 'kernel-amd64');
    writeFileSync(path.join(dir, 'k.part'), bytes.subarray(0, 100_000));
    const r = await cli(['download', id, 'v1.12.2', 'kernel-amd64', '-o', 'k', '--json']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ resumedFrom: 100_000, size: bytes.length });
    expect(fake.requests.filter((q) => q.path.endsWith('/kernel-amd64')).map((q) => q.headers.range)).toEqual(['bytes=100000-']);
    expect(readFileSync(path.join(dir, 'k')).equals(bytes)).toBe(true);
  });

  it('a complete .part (416 for its length) is checked and kept', async () => {
    const id = await schematic();
    await cli(['build', id, 'v1.12.2', 'kernel-amd64', '--wait']);
    const bytes = fake.assetBytes(id, 'v1.12.2', 'kernel-amd64');
    writeFileSync(path.join(dir, 'kernel-amd64.part'), bytes);
    const r = await cli(['download', id, 'v1.12.2', 'kernel-amd64']);
    expect(r).toEqual({ code: 0, stdout: `${path.join(dir, 'kernel-amd64')}\n`, stderr: '' });
    expect(readFileSync(path.join(dir, 'kernel-amd64')).equals(bytes)).toBe(true);
  });

  it('a .part with other bytes fails the check and is fetched once more from the start', async () => {
    const id = await schematic();
    await cli(['build', id, 'v1.12.2', 'kernel-amd64', '--wait']);
    const bytes = fake.assetBytes(id, 'v1.12.2', 'kernel-amd64');
    writeFileSync(path.join(dir, 'kernel-amd64.part'), Buffer.alloc(5000, 1));
    const r = await cli(['download', id, 'v1.12.2', 'kernel-amd64', '--json']);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('talos-factory: kernel-amd64.part did not match the asset; downloading it again from the start\n');
    expect(JSON.parse(r.stdout)).toMatchObject({ resumedFrom: 0, sha256: sha256(bytes) });
    expect(fake.requests.filter((q) => q.path.endsWith('/kernel-amd64')).map((q) => q.headers.range)).toEqual(['bytes=5000-', undefined]);
    expect(readFileSync(path.join(dir, 'kernel-amd64')).equals(bytes)).toBe(true);
  });

  it('a checksum mismatch exits 6 and removes the partial file', async () => {
    await restart({ stepMs: 5, wrongChecksum: true });
    const id = await schematic();
    const r = await cli(['download', id, 'v1.12.2', 'kernel-amd64']);
    expect(r.code).toBe(6);
    expect(r.stderr).toMatch(/^talos-factory: checksum mismatch for kernel-amd64: expected sha256 [0-9a-f]{64}, got [0-9a-f]{64}\n$/);
    expect(existsSync(path.join(dir, 'kernel-amd64.part'))).toBe(false);
    // resumed: fetched again whole once, then the same verdict
    writeFileSync(path.join(dir, 'kernel-amd64.part'), fake.assetBytes(id, 'v1.12.2', 'kernel-amd64').subarray(0, 100));
    const resumed = await cli(['download', id, 'v1.12.2', 'kernel-amd64']);
    expect(resumed.code).toBe(6);
    expect(resumed.stderr.split('\n')).toHaveLength(3);
    expect(existsSync(path.join(dir, 'kernel-amd64.part'))).toBe(false);
    expect(existsSync(path.join(dir, 'kernel-amd64'))).toBe(false);
  });

  it('shows build progress, then download progress with speed and ETA, on a terminal', async () => {
    const id = await schematic();
    const r = await cli(['download', id, 'v1.12.2', 'metal-amd64.iso'], { tty: true });
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/v1\.12\.2 metal-amd64\.iso  \[#{16}\] 100%  done/);
    expect(r.stderr).toMatch(/metal-amd64\.iso  \[#{16}\] 100%  256.0\/256.0 KiB  \S+ \S+\/s  ETA \S+/);
  });
});
