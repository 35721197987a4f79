/**
 * Overlay installer execution (libs/imaging/src/overlay), talos-formats.md §10: the real demo overlay
 * `siderolabs/sbc-fixture:v0.1.0` (its `installers/fixture_board` shell script) for get-options and install, the
 * request serialization, the profile fragment, and the confinement: timeout (whole process group), output cap,
 * stderr on failure, clean environment, privilege drop to nobody when running as root.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  getOptionsRequest,
  installRequest,
  nobodyIdentity,
  OverlayInstallerError,
  overlayGetOptions,
  overlayInstall,
  parseOptionsReply,
  readOverlayProfile,
  runInstaller,
} from '../src/overlay';
import { readImageFiles } from '../../../tools/demo-releases/src';
import { DEMO_DIR } from '../../../test/support/demo-imager';
import { testIf } from '../../../test/support/skip';
import { rejectionOf } from '../../../test/support/expect';
import { pidGone } from '../../../test/support/pids';

const DEMO = DEMO_DIR;
const LAYOUT = path.join(DEMO, 'oci/siderolabs/sbc-fixture');
const isRoot = process.getuid?.() === 0;
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

let tmp: string;
let overlayRoot: string;
let installer: string;
let blob: Buffer;

/** A directory under the (world-searchable) test root, world-searchable itself, as the factory should stage. */
function dir(...p: string[]): string {
  const d = path.join(tmp, ...p);
  fs.mkdirSync(d, { recursive: true, mode: 0o755 });
  fs.chmodSync(d, 0o755);
  return d;
}

function script(name: string, body: string): string {
  const f = path.join(dir('scripts'), name);
  fs.writeFileSync(f, `#!/bin/sh\n${body}\n`, { mode: 0o755 });
  return f;
}


beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'overlay-test-'));
  fs.chmodSync(tmp, 0o755);
  overlayRoot = dir('overlay');
  const files = readImageFiles(LAYOUT, 'v0.1.0', 'amd64');
  for (const [p, e] of files) {
    const dst = path.join(overlayRoot, p);
    if (e.type === 'directory' || e.type === '5') {
      fs.mkdirSync(dst, { recursive: true, mode: 0o755 });
    } else {
      fs.mkdirSync(path.dirname(dst), { recursive: true, mode: 0o755 });
      fs.writeFileSync(dst, e.data, { mode: e.mode & 0o777 });
      fs.chmodSync(dst, e.mode & 0o777);
    }
  }
  installer = path.join(overlayRoot, 'installers/fixture_board');
  blob = fs.readFileSync(path.join(overlayRoot, 'artifacts/amd64/fixture/blob.bin'));
});

afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('demo overlay sbc-fixture:v0.1.0', () => {
  test('layout: installer script, profile and artifact', () => {
    expect(fs.readFileSync(installer, 'utf8').startsWith('#!/bin/sh')).toBe(true);
    expect(fs.statSync(installer).mode & 0o111).not.toBe(0);
    expect(blob.toString()).toContain('FIXTURE-OVERLAY-BLOB');
  });

  test('get-options without options', async () => {
    const r = await overlayGetOptions(installer, undefined);
    expect(r).toEqual({ name: 'fixture_board', kernelArgs: ['console=ttyS0', 'fixture.overlay=1'], partitionOptions: { offset: 2048 } });
  });

  test('get-options: fixtureValue changes the kernel argument', async () => {
    const r = await overlayGetOptions(installer, { fixtureValue: 'forty-two', other: { nested: [1, 2] } });
    expect(r.name).toBe('fixture_board');
    expect(r.kernelArgs).toEqual(['console=ttyS0', 'fixture.overlay=forty-two']);
    expect(r.partitionOptions).toEqual({ offset: 2048 });
    const n = await overlayGetOptions(installer, { fixtureValue: 7 });
    expect(n.kernelArgs).toContain('fixture.overlay=7');
  });

  test('install writes the blob to <mountPrefix>/boot/EFI and into the disk at LBA 64', async () => {
    const work = dir('install');
    const mountPrefix = path.join(work, 'mnt');
    fs.mkdirSync(path.join(mountPrefix, 'boot/EFI/EFI/BOOT'), { recursive: true });
    fs.writeFileSync(path.join(mountPrefix, 'boot/EFI/EFI/BOOT/BOOTX64.EFI'), 'staged before install');
    fs.chmodSync(mountPrefix, 0o700); // handed over to the installer for the run anyway
    const disk = path.join(work, 'disk.raw');
    fs.writeFileSync(disk, Buffer.alloc(1024 * 1024));
    fs.chmodSync(disk, 0o600);
    const input = {
      installDisk: disk,
      mountPrefix,
      artifactsPath: path.join(overlayRoot, 'artifacts'),
      extraOptions: { fixtureValue: 'x', configTxtAppend: 'a: b\n' },
    };
    await overlayInstall(installer, input);

    expect(fs.readFileSync(path.join(mountPrefix, 'boot/EFI/fixture-blob.bin')).equals(blob)).toBe(true);
    // the installer records its stdin: exactly the Go-style request document
    expect(fs.readFileSync(path.join(mountPrefix, 'boot/EFI/fixture-install.yaml'), 'utf8')).toBe(installRequest(input));
    const d = fs.readFileSync(disk);
    expect(d.subarray(64 * 512, 64 * 512 + blob.length).equals(blob)).toBe(true);
    expect(d.subarray(0, 64 * 512).every((b) => b === 0)).toBe(true);
    expect(d.length).toBe(1024 * 1024);
    // pre-existing entries keep their owner/mode; with the privilege drop new ones come back to us
    const me = { uid: process.getuid!(), gid: process.getgid!() };
    for (const p of ['', 'boot', 'boot/EFI', 'boot/EFI/fixture-blob.bin', 'boot/EFI/fixture-install.yaml', 'boot/EFI/EFI/BOOT/BOOTX64.EFI']) {
      const st = fs.statSync(path.join(mountPrefix, p));
      expect([p, st.uid, st.gid]).toEqual([p, me.uid, me.gid]);
    }
    expect(fs.statSync(disk).uid).toBe(me.uid);
    expect(fs.statSync(mountPrefix).mode & 0o777).toBe(0o700);
    expect(fs.statSync(disk).mode & 0o777).toBe(0o600);
  });

  test('install without an existing disk only stages files', async () => {
    const mountPrefix = path.join(dir('install2'), 'mnt'); // created by overlayInstall
    await overlayInstall(installer, {
      installDisk: path.join(tmp, 'install2/missing.raw'),
      mountPrefix,
      artifactsPath: path.join(overlayRoot, 'artifacts'),
      extraOptions: undefined,
    });
    expect(sha256(fs.readFileSync(path.join(mountPrefix, 'boot/EFI/fixture-blob.bin')))).toBe(sha256(blob));
    expect(fs.existsSync(path.join(tmp, 'install2/missing.raw'))).toBe(false);
  });

  test('profile fragment', async () => {
    expect(await readOverlayProfile(path.join(overlayRoot, 'profiles/fixture_board.yaml'))).toEqual({ arch: 'amd64', bootloader: 'grub' });
  });
});

describe('protocol documents', () => {
  test('get-options request is go-yaml Marshal of the options map (sorted keys, 4-space indent)', () => {
    expect(getOptionsRequest(undefined)).toBe('{}\n');
    expect(getOptionsRequest({})).toBe('{}\n');
    expect(getOptionsRequest({ zeta: 1, alpha: { y: 'yes', x: [1, 'two'] }, configTxtAppend: 'dtoverlay=vc4\nfoo=1\n' })).toBe(
      "alpha:\n    x:\n        - 1\n        - two\n    'y': 'yes'\nconfigTxtAppend: |\n    dtoverlay=vc4\n    foo=1\nzeta: 1\n",
    );
    expect(() => getOptionsRequest(['a'])).toThrow(/mapping/);
  });

  test('install request: struct order, extraOptions omitted when empty', () => {
    expect(installRequest({ installDisk: '/d', mountPrefix: '/m', artifactsPath: '/a', extraOptions: {} })).toBe(
      'installDisk: /d\nmountPrefix: /m\nartifactsPath: /a\n',
    );
    expect(installRequest({ installDisk: '/d', mountPrefix: '/m', artifactsPath: '/a', extraOptions: { b: 2, a: 1 } })).toBe(
      'installDisk: /d\nmountPrefix: /m\nartifactsPath: /a\nextraOptions:\n    a: 1\n    b: 2\n',
    );
  });

  test('get-options reply parsing (scalars as text, like Go string fields)', () => {
    expect(parseOptionsReply('name: rpi_generic\nkernelArgs:\n  - console=tty0\n  - 1\n')).toEqual({ name: 'rpi_generic', kernelArgs: ['console=tty0', '1'] });
    expect(parseOptionsReply('name: b\npartitionOptions:\n  offset: 0x800\n').partitionOptions).toEqual({ offset: 2048 });
    expect(parseOptionsReply('name: b\npartitionOptions: {}\n').partitionOptions).toEqual({});
    expect(() => parseOptionsReply('kernelArgs: []\n')).toThrow(/name is missing/);
    expect(() => parseOptionsReply('name: b\npartitionOptions:\n  offset: -1\n')).toThrow(/unsigned/);
    expect(() => parseOptionsReply('name: [\n')).toThrow(/invalid YAML/);
  });

  test('profile fragment with customization; unknown bootloader rejected', async () => {
    const f = path.join(dir('profiles'), 'p.yaml');
    fs.writeFileSync(
      f,
      'arch: arm64\nplatform: metal\ncustomization:\n  extraKernelArgs:\n    - console=ttyS2,1500000n8\n    - 1\noutput:\n  kind: image\n  imageOptions:\n    diskSize: 1306525696\n    bootloader: sd-boot\n',
    );
    expect(await readOverlayProfile(f)).toEqual({ arch: 'arm64', bootloader: 'sd-boot', extraKernelArgs: ['console=ttyS2,1500000n8', '1'] });
    fs.writeFileSync(f, 'output:\n  imageOptions:\n    bootloader: lilo\n');
    await expect(readOverlayProfile(f)).rejects.toThrow(/unknown bootloader/);
    fs.writeFileSync(f, 'arch: amd64\n');
    expect(await readOverlayProfile(f)).toEqual({ arch: 'amd64' });
  });
});

describe('confinement', () => {
  test('clean environment, private working directory, stdin closed, identity', async () => {
    const s = script('probe', 'cat >/dev/null\necho "uid=$(id -u) gid=$(id -g) groups=$(id -G)"\necho "cwd=$(pwd)"\nenv | sort');
    process.env.OVERLAY_TEST_SECRET = 'leak';
    try {
      const { stdout } = await runInstaller(s, 'get-options', 'a: b\n');
      const out = stdout.toString();
      const who = isRoot ? nobodyIdentity() : { uid: process.getuid!(), gid: process.getgid!() };
      expect(out).toContain(`uid=${who.uid} gid=${who.gid} groups=${who.gid}\n`);
      expect(out).toMatch(/cwd=\/.*overlay-installer-/);
      const env = out.split('\n').filter((l) => /^[A-Za-z_]+=/.test(l) && !l.startsWith('uid=') && !l.startsWith('cwd='));
      // sh adds PWD (and dash nothing else); nothing leaks from our environment
      expect(env.map((l) => l.split('=')[0]).sort()).toEqual(['PATH', 'PWD']);
      expect(out).not.toContain('leak');
    } finally {
      delete process.env.OVERLAY_TEST_SECRET;
    }
  });

  test('a sleeping installer is killed at the timeout, with its whole process group', async () => {
    const pidDir = dir('pids');
    fs.chmodSync(pidDir, 0o1777);
    const s = script('sleeper', `sleep 300 &\necho $! > ${pidDir}/bg.pid\nsleep 300`);
    const t0 = Date.now();
    const e = await rejectionOf(overlayGetOptions(s, {}, { timeoutMs: 700 }), OverlayInstallerError);
    const elapsed = Date.now() - t0;
    expect(e.reason).toBe('timeout');
    expect(e.message).toMatch(/timed out after 700 ms/);
    expect(elapsed).toBeLessThan(5000);
    const bg = Number(fs.readFileSync(path.join(pidDir, 'bg.pid'), 'utf8'));
    expect(bg).toBeGreaterThan(0);
    expect(await pidGone(bg)).toBe(true);
  });

  test('background children are killed when the installer exits', async () => {
    const pidDir = dir('pids2');
    fs.chmodSync(pidDir, 0o1777);
    const s = script('forker', `sleep 300 >/dev/null 2>&1 &\necho $! > ${pidDir}/bg.pid\necho name: x`);
    const r = await overlayGetOptions(s, {});
    expect(r.name).toBe('x');
    const bg = Number(fs.readFileSync(path.join(pidDir, 'bg.pid'), 'utf8'));
    expect(await pidGone(bg)).toBe(true);
  });

  test('an installer flooding stdout is cut at maxOutputBytes', async () => {
    const s = script('flood', 'while :; do echo "kernelArgs: xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"; done');
    const t0 = Date.now();
    const e = await rejectionOf(overlayGetOptions(s, {}, { maxOutputBytes: 64 * 1024, timeoutMs: 20000 }), OverlayInstallerError);
    expect(e.reason).toBe('output');
    expect(e.message).toMatch(/stdout exceeded 65536 bytes/);
    expect(Date.now() - t0).toBeLessThan(10000);
  });

  test('an installer flooding stderr is cut too', async () => {
    const s = script('errflood', 'while :; do echo "noise noise noise noise noise noise" >&2; done');
    const e = await rejectionOf(overlayGetOptions(s, {}, { maxOutputBytes: 32 * 1024, timeoutMs: 20000 }), OverlayInstallerError);
    expect(e.reason).toBe('output');
    expect(e.stderrTail.length).toBeLessThanOrEqual(4096);
  });

  test('a failing installer surfaces the tail of its stderr and its status', async () => {
    const s = script('fail', 'cat >/dev/null\necho "first line" >&2\necho "unsupported board revision 7" >&2\nexit 3');
    const e = await rejectionOf(overlayGetOptions(s, {}), OverlayInstallerError);
    expect(e.reason).toBe('exit');
    expect(e.exitCode).toBe(3);
    expect(e.message).toContain('unsupported board revision 7');
    expect(e.stderrTail).toContain('first line');
  });

  test('a reply that is not YAML fails as a protocol error', async () => {
    const s = script('garbage', 'echo "name: [unclosed"');
    const e = await rejectionOf(overlayGetOptions(s, {}), OverlayInstallerError);
    expect(e.reason).toBe('protocol');
  });

  test('a missing installer fails cleanly', async () => {
    const e = await rejectionOf(overlayGetOptions(path.join(tmp, 'nope'), {}), OverlayInstallerError);
    expect(e.reason).toBe('spawn');
  });

  testIf(isRoot, 'needs root (chown of staging dirs)')('as root: our private staging dirs become searchable (only), foreign ones are refused', async () => {
    const hidden = fs.mkdtempSync(path.join(tmp, 'hidden-')); // 0700, like the build worker's mkdtemp
    const disk = path.join(hidden, 'disk.raw');
    fs.writeFileSync(disk, Buffer.alloc(65536));
    const input = { installDisk: disk, mountPrefix: path.join(hidden, 'mnt'), artifactsPath: path.join(overlayRoot, 'artifacts'), extraOptions: {} };
    await overlayInstall(installer, input);
    expect(fs.statSync(hidden).mode & 0o777).toBe(0o701); // search added, listing not
    expect(fs.readFileSync(disk).subarray(64 * 512, 64 * 512 + blob.length).equals(blob)).toBe(true);
    expect(fs.statSync(disk).uid).toBe(0);

    // a directory owned by someone else is never changed: the run is refused instead of done as root
    const foreign = path.join(dir('foreign-parent'), 'foreign');
    fs.mkdirSync(foreign, { mode: 0o700 });
    fs.chownSync(foreign, 4242, 4242);
    const disk2 = path.join(foreign, 'disk.raw');
    fs.writeFileSync(disk2, Buffer.alloc(65536));
    const e = await rejectionOf(overlayInstall(installer, { ...input, installDisk: disk2, mountPrefix: path.join(dir('ok'), 'mnt') }), OverlayInstallerError);
    expect(e.reason).toBe('access');
    expect(e.message).toContain(foreign);
    expect(fs.statSync(foreign).mode & 0o777).toBe(0o700);
    // runAs: 'current' is the explicit opt-out
    await overlayInstall(installer, { ...input, installDisk: disk2, mountPrefix: path.join(foreign, 'mnt') }, { runAs: 'current' });
    expect(fs.readFileSync(disk2).subarray(64 * 512, 64 * 512 + blob.length).equals(blob)).toBe(true);
  });
});
