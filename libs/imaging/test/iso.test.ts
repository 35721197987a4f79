/**
 * ISO builder (libs/imaging/src/iso), talos-formats.md §7: file lists, volume ids, El Torito entries, partition
 * tables, ESP contents, bit-reproducibility, and four boots (one at a time):
 *   GRUB ISO (demo v1.7.7) under SeaBIOS and under OVMF (GRUB x86_64-efi core),
 *   hybrid ISO (demo v1.11.3) under SeaBIOS (GRUB) and under OVMF (systemd-boot -> UKI).
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  buildIso,
  espSizeBytes,
  grubCfg,
  grubEarlyConfig,
  grubIsoUuid,
  IsoOptions,
  isoDateStamp,
  isoVolumeId,
  isoVolumeSetId,
  loaderConf,
  MIN_ESP_BYTES,
} from '../src/iso';
import { grubEscape } from '../src/grub-escape';
import { buildUki, parsePe, talosOsRelease, talosUkiProfiles } from '../src/uki';
import { bootQemu, BootResult } from '../../../tools/demo-releases/src';
import { DEMO_DIR, demoHasArm64, extractDemoImager } from '../../../test/support/demo-imager';
import { testIf } from '../../../test/support/skip';
import { expectMainProfileBooted, ovmfArgs, sdBootEntry } from '../../../test/support/boot';

const DEMO = DEMO_DIR;
const MTOOLS_ENV = { ...process.env, MTOOLS_SKIP_CHECK: '1', MTOOLSRC: '/dev/null' };
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const sha256File = (p: string) => sha256(fs.readFileSync(p));
const log = (msg: string) => {
  // eslint-disable-next-line no-console
  console.log(msg);
};

/**
 * Builds with a whileWritten consumer collecting what it is handed: the ISO's bytes as xorriso writes them (GPT
 * images), which must be exactly the finished file even if xorriso patched anything it had already written.
 */
async function buildStreamed(o: IsoOptions): Promise<{ built: Awaited<ReturnType<typeof buildIso>>; taken?: { size: number; bytes: Buffer } }> {
  let taken: { size: number; bytes: Buffer } | undefined;
  const built = await buildIso({
    ...o,
    whileWritten: async (size, body) => {
      const chunks: Buffer[] = [];
      for await (const c of body) chunks.push(c as Buffer);
      taken = { size, bytes: Buffer.concat(chunks) };
    },
  });
  return { built, taken };
}

interface Files {
  kernel: string;
  initramfs: string;
  stub: string;
  sdBoot: string;
}

let tmp: string;
const files: Record<string, Files> = {};
const haveArm64 = demoHasArm64(DEMO);
const testArm64 = testIf(haveArm64, `the demo releases in ${DEMO} have no arm64 inputs (releases.json arm64Missing)`);

function extract(version: string, arch: 'amd64' | 'arm64'): Files {
  return extractDemoImager(version, arch, path.join(tmp, 'in', `${version}-${arch}`), DEMO);
}

beforeAll(() => {
  if (!fs.existsSync(path.join(DEMO, 'releases.json'))) throw new Error(`demo releases missing in ${DEMO} (run scripts/setup.sh / tools/demo-releases build)`);
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'iso-test-'));
  files['v1.7.7'] = extract('v1.7.7', 'amd64');
  files['v1.11.3'] = extract('v1.11.3', 'amd64');
  if (haveArm64) files['v1.12.2-arm64'] = extract('v1.12.2', 'arm64');
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

// ---------------------------------------------------------------- inspection helpers

function xorriso(iso: string, ...cmds: string[]): string {
  return execFileSync('xorriso', ['-indev', iso, ...cmds], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
}

/** path -> `ls -l`-style mode/owner line, from `-find / -exec lsdl` */
function isoListing(iso: string): Map<string, { mode: string; uid: string; gid: string; size: number }> {
  const out = new Map<string, { mode: string; uid: string; gid: string; size: number }>();
  for (const line of xorriso(iso, '-find', '/', '-exec', 'lsdl').split('\n')) {
    const m = /^(\S+)\s+\d+\s+(\S+)\s+(\S+)\s+(\d+)\s+.*?'(.*)'$/.exec(line);
    if (m) out.set(m[5], { mode: m[1], uid: m[2], gid: m[3], size: Number(m[4]) });
  }
  return out;
}

function isoExtract(iso: string, isoPath: string): Buffer {
  const dst = path.join(tmp, `extract-${process.hrtime.bigint()}`);
  execFileSync('xorriso', ['-osirrox', 'on', '-indev', iso, '-extract', isoPath, dst], { stdio: 'ignore' });
  const b = fs.readFileSync(dst);
  fs.rmSync(dst, { force: true });
  return b;
}

interface ElTorito {
  entries: Array<{ n: number; platform: string; path?: string; opts?: string }>;
  catalogPath?: string;
}

function elTorito(iso: string): ElTorito {
  const txt = xorriso(iso, '-report_el_torito', 'plain');
  const r: ElTorito = { entries: [] };
  for (const line of txt.split('\n')) {
    let m = /^El Torito boot img :\s+(\d+)\s+(\S+)/.exec(line);
    if (m) r.entries.push({ n: Number(m[1]), platform: m[2] });
    m = /^El Torito img path :\s+(\d+)\s+(\S+)/.exec(line);
    if (m) r.entries.find((e) => e.n === Number(m![1]))!.path = m[2];
    m = /^El Torito img opts :\s+(\d+)\s+(.*)$/.exec(line);
    if (m) r.entries.find((e) => e.n === Number(m![1]))!.opts = m[2].trim();
    m = /^El Torito cat path :\s+(\S+)/.exec(line);
    if (m) r.catalogPath = m[1];
  }
  return r;
}

interface SystemArea {
  summary: string;
  partitionOffset: number;
  mbr: Array<{ n: number; type: string; start: number; blocks: number }>;
  gpt: Array<{ n: number; name: string; start: number; size: number; path?: string }>;
}

function systemArea(iso: string): SystemArea {
  const txt = xorriso(iso, '-report_system_area', 'plain');
  const r: SystemArea = { summary: '', partitionOffset: 0, mbr: [], gpt: [] };
  const gpt = (n: number) => {
    let g = r.gpt.find((x) => x.n === n);
    if (!g) r.gpt.push((g = { n, name: '', start: 0, size: 0 }));
    return g;
  };
  for (const line of txt.split('\n')) {
    let m = /^System area summary: (.*)$/.exec(line);
    if (m) r.summary = m[1].trim();
    m = /^Partition offset\s+:\s+(\d+)/.exec(line);
    if (m) r.partitionOffset = Number(m[1]);
    m = /^MBR partition\s+:\s+(\d+)\s+\S+\s+(\S+)\s+(\d+)\s+(\d+)/.exec(line);
    if (m) r.mbr.push({ n: Number(m[1]), type: m[2], start: Number(m[3]), blocks: Number(m[4]) });
    m = /^GPT partname local :\s+(\d+)\s+(.*)$/.exec(line);
    if (m) gpt(Number(m[1])).name = m[2].trim();
    m = /^GPT start and size :\s+(\d+)\s+(\d+)\s+(\d+)/.exec(line);
    if (m) Object.assign(gpt(Number(m[1])), { start: Number(m[2]), size: Number(m[3]) });
    m = /^GPT partition path :\s+(\d+)\s+(\S+)/.exec(line);
    if (m) gpt(Number(m[1])).path = m[2];
  }
  return r;
}

function pvd(iso: string): Record<string, string> {
  const r: Record<string, string> = {};
  for (const line of xorriso(iso, '-pvd_info').split('\n')) {
    const m = /^([A-Za-z. ]+?)\s*:\s?(.*)$/.exec(line);
    if (m) r[m[1]] = m[2];
  }
  return r;
}

/** mtools view of a FAT image inside a file at a byte offset */
function fat(img: string, offset = 0) {
  const spec = offset ? `${img}@@${offset}` : img;
  return {
    ls(): string[] {
      // mdir -/ -b: bare recursive listing of full paths (directories end with /)
      return execFileSync('mdir', ['-/', '-b', '-i', spec, '::/'], { encoding: 'utf8', env: MTOOLS_ENV })
        .split('\n')
        .map((l) => l.trim())
        .filter(Boolean)
        .map((l) => l.replace(/^::/, '').replace(/\/$/, ''))
        .sort();
    },
    read(p: string): Buffer {
      return execFileSync('mtype', ['-i', spec, `::${p}`], { env: MTOOLS_ENV, maxBuffer: 1 << 30 });
    },
    attrs(p: string): string {
      return execFileSync('mattrib', ['-i', spec, `::${p}`], { encoding: 'utf8', env: MTOOLS_ENV });
    },
    label(): string {
      return execFileSync('mlabel', ['-s', '-i', spec, '::'], { encoding: 'utf8', env: MTOOLS_ENV }).trim();
    },
  };
}


function expectBooted(r: BootResult, what: string): void {
  if (!r.report.done) throw new Error(`${what}: no "FIXTURE done" (timedOut=${r.timedOut}); serial tail:\n${r.serial.slice(-3000)}`);
}

async function timedBuild(label: string, o: IsoOptions): Promise<void> {
  const t0 = Date.now();
  await buildIso(o);
  log(`ISO build ${label}: ${Date.now() - t0} ms, ${(fs.statSync(o.out).size / 1048576).toFixed(1)} MiB`);
}

// ---------------------------------------------------------------- texts

describe('ISO config texts', () => {
  test('grub.cfg follows the §7.2 template, GRUB-escaped, with and without the reset entry', () => {
    const cmdline = 'talos.platform=metal console=ttyS0 a="b c" x=$y;z|w&v<u>t{s}r\\q';
    const esc = 'talos.platform=metal console=ttyS0 a=\\"b c\\" x=\\$y\\;z\\|w\\&v\\<u\\>t\\{s\\}r\\\\q';
    expect(grubEscape(cmdline)).toBe(esc);
    const entry = (title: string, args: string) =>
      `menuentry "${title}" {\n\tset gfxmode=auto\n\tset gfxpayload=text\n\tlinux /boot/vmlinuz ${args}\n\tinitrd /boot/initramfs.xz\n}\n`;
    const head = 'set default=0\nset timeout=3\n\ninsmod all_video\n\nterminal_input console\nterminal_output console\n\n';
    expect(grubCfg(cmdline, { resetEntry: true })).toBe(
      `${head}${entry('Talos ISO', esc)}\n${entry('Reset Talos installation', `${esc} talos.experimental.wipe=system`)}`,
    );
    expect(grubCfg('a b', { resetEntry: false })).toBe(`${head}${entry('Talos ISO', 'a b')}`);
  });

  test('loader.conf, volume ids, dates, ESP size', () => {
    expect(loaderConf('off')).toBe('# systemd-boot configuration\n\ntimeout 10\n\nsecure-boot-enroll off\n');
    expect(loaderConf('if-safe')).toBe('# systemd-boot configuration\n\ntimeout 10\n\nsecure-boot-enroll if-safe\n');
    expect(isoVolumeId('v1.11.5')).toBe('TALOS_V1_11_5');
    expect(isoVolumeId('v1.12.0-alpha.0+g1/x')).toBe('TALOS_V1_12_0_ALPHA_0G1X');
    expect(isoVolumeId('v1.12.0-beta.1-averyveryverylongsuffix')).toHaveLength(32);
    expect(isoVolumeSetId('v1.11.5')).toBe('Talos-v1.11.5');
    expect(isoDateStamp(1559424892)).toBe('2019060121345200');
    expect(grubIsoUuid(1559424892)).toBe('2019-06-01-21-34-52-00');
    expect(grubEarlyConfig(1559424892)).toBe('search --no-floppy --fs-uuid --set=root 2019-06-01-21-34-52-00\nset prefix=($root)/boot/grub\n');
    const MiB = 1048576;
    expect(espSizeBytes(140891, 9682944)).toBe(MIN_ESP_BYTES); // 10 + 1 + 10 MiB = 21 MiB < FAT32 minimum
    expect(espSizeBytes(200 * 1024, 100 * MiB + 1)).toBe(10 * MiB + 1 * MiB + 101 * MiB);
  });

  test('option validation', async () => {
    const base = { arch: 'amd64' as const, version: 'v1.11.3', kernel: 'k', initramfs: 'i', cmdline: '', resetEntry: true, out: path.join(tmp, 'x.iso'), workDir: tmp };
    await expect(buildIso({ ...base, flavour: 'hybrid' })).rejects.toThrow(/needs uki and sdBoot/);
    await expect(buildIso({ ...base, flavour: 'grub', arch: 'arm64' })).rejects.toThrow(/UEFI-only/);
    await expect(buildIso({ ...base, flavour: 'grub' })).rejects.toThrow(/does not exist/);
    expect(fs.existsSync(base.out)).toBe(false);
  });
});

// ---------------------------------------------------------------- GRUB ISO

describe('GRUB ISO (demo v1.7.7, < 1.8: no volume label)', () => {
  const CMDLINE = 'talos.platform=metal console=ttyS0 console=tty0 panic=-1 fixture.iso=grub';
  let iso: string;
  let opts: IsoOptions;

  beforeAll(async () => {
    iso = path.join(tmp, 'grub.iso');
    opts = { flavour: 'grub', arch: 'amd64', version: 'v1.7.7', ...files['v1.7.7'], cmdline: CMDLINE, resetEntry: true, out: iso, workDir: path.join(tmp, 'wd-grub') };
    await timedBuild('grub (v1.7.7)', opts);
  }, 120000);

  test('file list and contents', () => {
    const ls = isoListing(iso);
    const paths = [...ls.keys()];
    expect(paths.filter((p) => p !== '/' && p.split('/').length === 2).sort()).toEqual(['/boot', '/boot.catalog', '/efi.img']);
    for (const p of ['/boot/vmlinuz', '/boot/initramfs.xz', '/boot/grub/grub.cfg', '/boot/grub/i386-pc/eltorito.img', '/boot/grub/i386-pc/normal.mod', '/boot/grub/i386-pc/linux.mod', '/boot/grub/i386-pc/all_video.mod', '/boot/grub/i386-pc/command.lst', '/boot/grub/x86_64-efi/normal.mod', '/boot/grub/x86_64-efi/linux.mod']) {
      expect(paths).toContain(p);
    }
    expect(paths.filter((p) => /^\/(EFI|loader)/.test(p))).toEqual([]);
    // -r: owner 0, read-only modes, fixed dates
    for (const [p, e] of ls) {
      expect([p, e.uid, e.gid]).toEqual([p, '0', '0']);
      expect(e.mode).toMatch(/^[-de]r.xr.xr.x$|^[-e]r--r--r--$/);
    }
    expect(xorriso(iso, '-lsdl', '/boot/vmlinuz')).toMatch(/Jun\s+1\s+2019/);
    expect(isoExtract(iso, '/boot/grub/grub.cfg').toString()).toBe(grubCfg(CMDLINE, { resetEntry: true }));
    expect(sha256(isoExtract(iso, '/boot/vmlinuz'))).toBe(sha256File(files['v1.7.7'].kernel));
    expect(sha256(isoExtract(iso, '/boot/initramfs.xz'))).toBe(sha256File(files['v1.7.7'].initramfs));
  });

  test('volume: xorriso default id (no label < 1.8), dates from SOURCE_DATE_EPOCH', () => {
    const v = pvd(iso);
    expect(v['Volume Id']).toBe('ISOIMAGE');
    expect(v['Creation Time']).toBe('2019060121345200');
    expect(v['Modif. Time']).toBe('2019060121345200');
  });

  test('El Torito: BIOS GRUB eltorito.img + UEFI /efi.img; GPT like grub-mkrescue (without HFS+)', () => {
    const et = elTorito(iso);
    expect(et.catalogPath).toBe('/boot.catalog');
    expect(et.entries.map((e) => [e.platform, e.path])).toEqual([['BIOS', '/boot/grub/i386-pc/eltorito.img'], ['UEFI', '/efi.img']]);
    expect(et.entries[0].opts).toBe('boot-info-table grub2-boot-info');
    const sa = systemArea(iso);
    expect(sa.summary).toMatch(/protective-msdos-label grub2-mbr/);
    expect(sa.mbr.map((m) => m.type)).toEqual(['0xee']);
    expect(sa.gpt.map((g) => g.name)).toEqual(['Gap0', 'EFI boot partition', 'Gap1']);
    expect(sa.gpt[1].path).toBe('/efi.img');
  });

  test('efi.img: 2.88 MB FAT with a GRUB x86_64-efi efi/boot/bootx64.efi, serial = epoch', () => {
    const img = path.join(tmp, 'grub-efi.img');
    fs.writeFileSync(img, isoExtract(iso, '/efi.img'));
    expect(fs.statSync(img).size).toBe(2880 * 1024);
    const f = fat(img);
    expect(f.ls()).toEqual(['/efi', '/efi/boot', '/efi/boot/bootx64.efi']);
    const core = f.read('/efi/boot/bootx64.efi');
    expect(parsePe(core).machine).toBe(0x8664);
    // the embedded early config searches the ISO by its date UUID
    expect(core.includes(Buffer.from('--fs-uuid --set=root 2019-06-01-21-34-52-00'))).toBe(true);
    const minfo = execFileSync('minfo', ['-i', img, '::'], { encoding: 'utf8', env: MTOOLS_ENV });
    expect(minfo).toMatch(/serial number: 5CF2EF7C/i); // 1559424892 = 0x5CF2EF7C
  });

  test('bit-reproducible: rebuild after touching inputs, other workDir, later time', async () => {
    const now = new Date();
    fs.utimesSync(files['v1.7.7'].kernel, now, now);
    const again = path.join(tmp, 'grub-2.iso');
    await buildIso({ ...opts, out: again, workDir: path.join(tmp, 'wd-grub-2') });
    expect(sha256File(again)).toBe(sha256File(iso));
    fs.rmSync(again);
  }, 120000);

  test('streamed while written (GPT declares the size): the bytes taken are the finished image', async () => {
    const again = path.join(tmp, 'grub-streamed.iso');
    const { built, taken } = await buildStreamed({ ...opts, out: again, workDir: path.join(tmp, 'wd-grub-s') });
    const bytes = fs.readFileSync(again);
    expect(built.streamed).toBe(true);
    expect(taken!.size).toBe(bytes.length);
    expect(sha256(taken!.bytes)).toBe(sha256(bytes));
    expect(sha256(bytes)).toBe(sha256File(iso));
    fs.rmSync(again);
  }, 120000);

  test('boots under SeaBIOS from -cdrom (GRUB i386-pc)', async () => {
    const r = await bootQemu({ args: ['-cdrom', iso], timeoutMs: 150000 });
    log(`GRUB ISO boot, SeaBIOS: ${r.ms} ms`);
    expectBooted(r, 'GRUB ISO / SeaBIOS');
    expect(r.report.firmwareMode).toBe('bios');
    expect(r.report.cmdline).toBe(`BOOT_IMAGE=/boot/vmlinuz ${CMDLINE}`);
    expect(r.report.talosVersion).toBe('v1.7.7');
  }, 180000);

  test('boots under OVMF from -cdrom (GRUB x86_64-efi from /efi.img)', async () => {
    const r = await bootQemu({ args: [...ovmfArgs(tmp), '-cdrom', iso], timeoutMs: 150000 });
    log(`GRUB ISO boot, OVMF: ${r.ms} ms`);
    expectBooted(r, 'GRUB ISO / OVMF');
    expect(r.report.firmwareMode).toBe('uefi');
    expect(r.report.cmdline).toBe(`BOOT_IMAGE=/boot/vmlinuz ${CMDLINE}`);
  }, 180000);
});

// ---------------------------------------------------------------- hybrid ISO

describe('hybrid ISO (demo v1.11.3)', () => {
  const CMDLINE = 'talos.platform=metal console=tty0 console=ttyS0 panic=-1 talos.halt_if_installed=1 fixture.iso=hybrid';
  // the UKI carries the factory's ISO profiles (main + "Reset system disk"); the demo stub (systemd >= 257) boots
  // the main one unless the reset entry is chosen
  const UKI_CMDLINE = `${CMDLINE} fixture.uki=1`;
  let iso: string;
  let uki: string;
  let opts: IsoOptions;

  beforeAll(async () => {
    uki = path.join(tmp, 'hybrid-uki.efi');
    await buildUki({
      stub: files['v1.11.3'].stub, kernel: files['v1.11.3'].kernel, initrd: files['v1.11.3'].initramfs, cmdline: UKI_CMDLINE,
      osRelease: talosOsRelease('v1.11.3'), profiles: talosUkiProfiles(UKI_CMDLINE, 'iso'), out: uki,
    });
    iso = path.join(tmp, 'hybrid.iso');
    opts = {
      flavour: 'hybrid', arch: 'amd64', version: 'v1.11.3', ...files['v1.11.3'], cmdline: CMDLINE, resetEntry: true, uki, sdBoot: files['v1.11.3'].sdBoot,
      enrollKeys: 'off', volumeId: isoVolumeId('v1.11.3'), volumeSetId: isoVolumeSetId('v1.11.3'), out: iso, workDir: path.join(tmp, 'wd-hybrid'),
    };
    await timedBuild('hybrid (v1.11.3)', opts);
  }, 120000);

  test('file list: GRUB tree + UEFI tree, efiboot.img excluded', () => {
    const ls = isoListing(iso);
    const paths = [...ls.keys()];
    expect(paths.filter((p) => p !== '/' && p.split('/').length === 2).sort()).toEqual(['/EFI', '/boot', '/boot.catalog', '/loader']);
    for (const p of ['/boot/vmlinuz', '/boot/initramfs.xz', '/boot/grub/grub.cfg', '/boot/grub/i386-pc/eltorito.img', '/boot/grub/i386-pc/normal.mod', '/EFI/BOOT/BOOTX64.EFI', '/EFI/Linux/Talos-v1.11.3.efi', '/loader/loader.conf', '/loader/random-seed']) {
      expect(paths).toContain(p);
    }
    expect(paths.filter((p) => /x86_64-efi|efiboot\.img|efi\.img/.test(p))).toEqual([]);
    expect(isoExtract(iso, '/boot/grub/grub.cfg').toString()).toBe(grubCfg(CMDLINE, { resetEntry: true }));
    expect(isoExtract(iso, '/loader/loader.conf').toString()).toBe(loaderConf('off'));
    expect(isoExtract(iso, '/loader/random-seed')).toEqual(Buffer.alloc(32));
    expect(ls.get('/loader/random-seed')!.mode).toBe('-r--r--r--');
    expect(sha256(isoExtract(iso, '/EFI/Linux/Talos-v1.11.3.efi'))).toBe(sha256File(uki));
    expect(sha256(isoExtract(iso, '/EFI/BOOT/BOOTX64.EFI'))).toBe(sha256File(files['v1.11.3'].sdBoot));
  });

  test('volume id / set id (>= 1.8) and dates', () => {
    const v = pvd(iso);
    expect(v['Volume Id']).toBe('TALOS_V1_11_3');
    expect(v['Volume Set Id']).toBe('Talos-v1.11.3');
    expect(v['Creation Time']).toBe('2019060121345200');
  });

  test('El Torito BIOS (GRUB) + UEFI (appended partition 2); GPT ISO9660 / Appended2 / Gap1', () => {
    const et = elTorito(iso);
    expect(et.catalogPath).toBe('/boot.catalog');
    expect(et.entries.map((e) => [e.platform, e.path])).toEqual([['BIOS', '/boot/grub/i386-pc/eltorito.img'], ['UEFI', undefined]]);
    const sa = systemArea(iso);
    expect(sa.partitionOffset).toBe(16);
    expect(sa.gpt.map((g) => g.name)).toEqual(['ISO9660', 'Appended2', 'Gap1']);
    const gdisk = execFileSync('sgdisk', ['-p', iso], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    expect(gdisk).toMatch(/^\s+2\s+\d+\s+\d+\s+34\.0 MiB\s+EF00\s+Appended2$/m);
  });

  test('ESP (appended partition): EFI + loader trees, FAT label EFI, random-seed read-only', () => {
    const part = systemArea(iso).gpt.find((g) => g.name === 'Appended2')!;
    expect(part.size * 512).toBe(MIN_ESP_BYTES);
    const f = fat(iso, part.start * 512);
    expect(f.ls()).toEqual(['/EFI', '/EFI/BOOT', '/EFI/BOOT/BOOTX64.EFI', '/EFI/Linux', '/EFI/Linux/Talos-v1.11.3.efi', '/loader', '/loader/loader.conf', '/loader/random-seed']);
    expect(f.label()).toMatch(/EFI/);
    expect(f.read('/loader/loader.conf').toString()).toBe(loaderConf('off'));
    expect(f.read('/loader/random-seed')).toEqual(Buffer.alloc(32));
    expect(f.attrs('/loader/random-seed')).toMatch(/^\s*A?\s+R\s+::\/loader\/random-seed/);
    expect(f.attrs('/loader/loader.conf')).not.toMatch(/R\s+::/);
    expect(sha256(f.read('/EFI/Linux/Talos-v1.11.3.efi'))).toBe(sha256File(uki));
  });

  test('bit-reproducible', async () => {
    const now = new Date();
    fs.utimesSync(uki, now, now);
    const again = path.join(tmp, 'hybrid-2.iso');
    const built = await buildIso({ ...opts, out: again, workDir: path.join(tmp, 'wd-hybrid-2'), md5: true });
    expect(sha256File(again)).toBe(sha256File(iso));
    // the digests, hashed while xorriso wrote the image, are those of the finished file
    const bytes = fs.readFileSync(again);
    expect(built).toMatchObject({
      size: bytes.length,
      sha256: sha256(bytes),
      md5: createHash('md5').update(bytes).digest('hex'),
    });
    // no SHA-512 at build time: derived on request from stored bytes (Sha512Deriver)
    expect(built).not.toHaveProperty('sha512');
    fs.rmSync(again);
  }, 120000);

  test('streamed while written (GPT declares the size): the bytes taken are the finished image, and the digests theirs', async () => {
    const again = path.join(tmp, 'hybrid-streamed.iso');
    const { built, taken } = await buildStreamed({ ...opts, out: again, workDir: path.join(tmp, 'wd-hybrid-s'), md5: true });
    const bytes = fs.readFileSync(again);
    expect(built.streamed).toBe(true);
    expect(taken!.size).toBe(bytes.length);
    expect(sha256(taken!.bytes)).toBe(sha256(bytes));
    expect(sha256(bytes)).toBe(sha256File(iso));
    expect(built).toMatchObject({ size: bytes.length, sha256: sha256(bytes), md5: createHash('md5').update(bytes).digest('hex') });
    fs.rmSync(again);
  }, 120000);

  test('a consumer that fails mid-stream fails the build with its error; no image is left', async () => {
    const again = path.join(tmp, 'hybrid-failed.iso');
    await expect(
      buildIso({
        ...opts, out: again, workDir: path.join(tmp, 'wd-hybrid-f'),
        whileWritten: async (_size, body) => {
          for await (const _c of body) throw new Error('the upload broke');
        },
      }),
    ).rejects.toThrow('the upload broke');
    expect(fs.existsSync(again)).toBe(false);
  }, 120000);

  test('boots under SeaBIOS from -cdrom (GRUB entry)', async () => {
    const r = await bootQemu({ args: ['-cdrom', iso], timeoutMs: 150000 });
    log(`hybrid ISO boot, SeaBIOS: ${r.ms} ms`);
    expectBooted(r, 'hybrid ISO / SeaBIOS');
    expect(r.report.firmwareMode).toBe('bios');
    expect(r.report.cmdline).toBe(`BOOT_IMAGE=/boot/vmlinuz ${CMDLINE}`);
    expect(r.report.talosVersion).toBe('v1.11.3');
  }, 180000);

  test('boots under OVMF from -cdrom: systemd-boot menu -> UKI, main profile', async () => {
    // loader.conf keeps the spec's `timeout 10`; the test presses Enter on the default entry as soon as the
    // countdown is on the serial console (without it sd-boot waits the 10 s and boots the same entry).
    const r = await bootQemu({ args: [...ovmfArgs(tmp), '-cdrom', iso], input: sdBootEntry(0), timeoutMs: 150000 });
    log(`hybrid ISO boot, OVMF (sd-boot -> UKI): ${r.ms} ms (Enter pressed at ${r.keySentAtMs ?? '-'} ms)`);
    expectBooted(r, 'hybrid ISO / OVMF');
    // one entry per profile; titles from the UKI's .osrel PRETTY_NAME and the profile's TITLE
    expect(r.serial).toContain('Talos (v1.11.3)');
    expect(r.serial).toContain('Talos (v1.11.3) (Reset system disk)');
    expectMainProfileBooted(r.report, UKI_CMDLINE);
  }, 180000);
});

// ---------------------------------------------------------------- UEFI-only ISO

describe('UEFI-only ISO (sd-boot)', () => {
  let iso: string;
  let opts: IsoOptions;

  beforeAll(async () => {
    const uki = path.join(tmp, 'uefi-uki.efi');
    await buildUki({ stub: files['v1.11.3'].stub, kernel: files['v1.11.3'].kernel, initrd: files['v1.11.3'].initramfs, cmdline: 'console=ttyS0', osRelease: talosOsRelease('v1.11.3'), out: uki });
    iso = path.join(tmp, 'uefi.iso');
    opts = {
      flavour: 'uefi', arch: 'amd64', version: 'v1.11.3', ...files['v1.11.3'], cmdline: 'unused', resetEntry: true, uki, sdBoot: files['v1.11.3'].sdBoot,
      enrollKeys: 'manual', volumeId: isoVolumeId('v1.11.3'), volumeSetId: isoVolumeSetId('v1.11.3'), out: iso, workDir: path.join(tmp, 'wd-uefi'),
    };
    await timedBuild('uefi (v1.11.3 amd64)', opts);
  }, 120000);

  test('tree, modes (no -r: random-seed 0444), no BIOS boot, MBR 0x83 + 0xef', () => {
    const ls = isoListing(iso);
    expect([...ls.keys()].sort()).toEqual(['/', '/EFI', '/EFI/BOOT', '/EFI/BOOT/BOOTX64.EFI', '/EFI/Linux', '/EFI/Linux/Talos-v1.11.3.efi', '/boot.catalog', '/loader', '/loader/loader.conf', '/loader/random-seed']);
    expect(ls.get('/loader/random-seed')!.mode).toBe('-r--r--r--');
    expect(ls.get('/loader/loader.conf')!.mode).toBe('-rw-r--r--');
    expect(ls.get('/EFI')!.mode).toBe('drwxr-xr-x');
    for (const e of ls.values()) expect([e.uid, e.gid]).toEqual(['0', '0']);
    expect(isoExtract(iso, '/loader/loader.conf').toString()).toBe(loaderConf('manual'));
    const et = elTorito(iso);
    expect(et.entries.map((e) => e.platform)).toEqual(['UEFI']);
    const sa = systemArea(iso);
    expect(sa.partitionOffset).toBe(16);
    expect(sa.gpt).toEqual([]);
    expect(sa.mbr.map((m) => m.type)).toEqual(['0x83', '0xef']);
    const f = fat(iso, sa.mbr[1].start * 512);
    expect(f.ls()).toContain('/EFI/BOOT/BOOTX64.EFI');
    expect(f.read('/loader/loader.conf').toString()).toBe(loaderConf('manual'));
  });

  test('bit-reproducible', async () => {
    const again = path.join(tmp, 'uefi-2.iso');
    const built = await buildIso({ ...opts, out: again, workDir: path.join(tmp, 'wd-uefi-2'), md5: true });
    expect(sha256File(again)).toBe(sha256File(iso));
    const bytes = fs.readFileSync(again);
    expect(built).toMatchObject({ size: bytes.length, sha256: sha256(bytes), md5: createHash('md5').update(bytes).digest('hex') });
    fs.rmSync(again);
  }, 120000);

  test('no GPT, no declared size: not streamed (the caller stores the finished file)', async () => {
    const again = path.join(tmp, 'uefi-streamed.iso');
    const { built, taken } = await buildStreamed({ ...opts, out: again, workDir: path.join(tmp, 'wd-uefi-s') });
    expect(built.streamed).toBe(false);
    expect(taken).toBeUndefined();
    expect(sha256File(again)).toBe(sha256File(iso));
    fs.rmSync(again);
  }, 120000);

  testArm64('arm64: EFI/BOOT/BOOTAA64.EFI', async () => {
    const a = files['v1.12.2-arm64'];
    const uki = path.join(tmp, 'arm64-uki.efi');
    await buildUki({ stub: a.stub, kernel: a.kernel, initrd: a.initramfs, cmdline: 'console=ttyAMA0', osRelease: talosOsRelease('v1.12.2'), out: uki });
    const out = path.join(tmp, 'arm64.iso');
    await timedBuild('uefi (v1.12.2 arm64)', { flavour: 'uefi', arch: 'arm64', version: 'v1.12.2', ...a, cmdline: '', resetEntry: true, uki, sdBoot: a.sdBoot, out, workDir: path.join(tmp, 'wd-arm64') });
    const paths = [...isoListing(out).keys()];
    expect(paths).toContain('/EFI/BOOT/BOOTAA64.EFI');
    expect(paths).toContain('/EFI/Linux/Talos-v1.12.2.efi');
    expect(paths).not.toContain('/EFI/BOOT/BOOTX64.EFI');
    expect(pvd(out)['Volume Id']).toBe('ISOIMAGE');
  }, 120000);
});
