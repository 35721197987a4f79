/**
 * UKI writer (libs/imaging/src/uki): PE/COFF structure per talos-formats.md §6.1/§6.2, checked with our own parser
 * and binutils' objdump (+ sbverify when installed), determinism, `.uname` detection on the demo kernels, and one
 * boot: the UKI as EFI/BOOT/BOOTX64.EFI on a vvfat ESP under OVMF.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  assemblePe,
  buildUki,
  defaultSplashBmp,
  IMAGE_SCN_CNT_CODE,
  IMAGE_SCN_CNT_INITIALIZED_DATA,
  kernelVersionFromBzImage,
  parsePe,
  peSectionData,
  talosOsRelease,
  talosUkiProfiles,
  UKI_SECTION_CHARACTERISTICS,
} from '../src/uki';
import { SOURCE_DATE_EPOCH } from '../src/reproducible';
import { bootQemu, readReleases } from '../../../tools/demo-releases/src';
import { DEMO_DIR, extractDemoImager } from '../../../test/support/demo-imager';
import { testIf } from '../../../test/support/skip';
import { expectMainProfileBooted, ovmfArgs } from '../../../test/support/boot';

const DEMO = DEMO_DIR;
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
/** MajorImageVersion's offset in the PE32+ optional header (PE/COFF specification) */
const OPT_MAJOR_IMAGE_VERSION = 44;
const alignUp = (n: number, a: number) => Math.ceil(n / a) * a;
const have = (tool: string) => spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0;

interface Inputs {
  stub: string;
  kernel: string;
  initrd: string;
}

let tmp: string;
const inputs: Record<string, Inputs> = {};
let kernelRelease: string;

function extract(version: string, arch: 'amd64' | 'arm64'): Inputs {
  const { stub, kernel, initramfs } = extractDemoImager(version, arch, path.join(tmp, `${version}-${arch}`), DEMO);
  return { stub, kernel, initrd: initramfs };
}

beforeAll(() => {
  if (!fs.existsSync(path.join(DEMO, 'releases.json'))) throw new Error(`demo releases missing in ${DEMO} (run scripts/setup.sh / tools/demo-releases build)`);
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'uki-test-'));
  const releases = readReleases(DEMO)!;
  kernelRelease = releases.kernel.amd64!.version;
  inputs['v1.11.3'] = extract('v1.11.3', 'amd64');
  inputs['v1.12.2'] = extract('v1.12.2', 'amd64');
  if (releases.arches.includes('arm64')) inputs['v1.12.2-arm64'] = extract('v1.12.2', 'arm64');
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const CMDLINE = 'console=ttyS0 panic=-1 talos.platform=metal fixture.uki=1';
const RESET_CMDLINE = `${CMDLINE} talos.experimental.wipe=system`;

describe('kernelVersionFromBzImage', () => {
  test('detects the demo kernel release from the bzImage header', () => {
    const kernel = fs.readFileSync(inputs['v1.11.3'].kernel);
    expect(kernel.toString('latin1', 0x202, 0x206)).toBe('HdrS');
    expect(kernelVersionFromBzImage(kernel)).toBe(kernelRelease);
    // a header prefix is enough (the writer only reads the first ~64 KiB of large kernels)
    expect(kernelVersionFromBzImage(kernel.subarray(0, 0x10300))).toBe(kernelRelease);
  });

  test('arm64 Image and garbage give undefined', () => {
    const arm = inputs['v1.12.2-arm64'];
    if (arm) expect(kernelVersionFromBzImage(fs.readFileSync(arm.kernel))).toBeUndefined();
    expect(kernelVersionFromBzImage(Buffer.alloc(4096))).toBeUndefined();
    expect(kernelVersionFromBzImage(Buffer.from('MZ'))).toBeUndefined();
    const fake = Buffer.alloc(0x400);
    fake.write('HdrS', 0x202, 'latin1');
    fake.writeUInt16LE(0x100, 0x20e);
    fake.write('5.15.0-test #1 SMP\0', 0x300, 'latin1');
    expect(kernelVersionFromBzImage(fake)).toBe('5.15.0-test');
  });
});

describe('buildUki structure (§6.1/§6.2)', () => {
  let out: string;
  let uki: Buffer;
  let stub: Buffer;
  let result: Awaited<ReturnType<typeof buildUki>>;
  const osrel = talosOsRelease('v1.11.3');

  beforeAll(async () => {
    out = path.join(tmp, 'struct.efi');
    const t0 = Date.now();
    result = await buildUki({ ...inputs['v1.11.3'], cmdline: CMDLINE, osRelease: osrel, out });
    // eslint-disable-next-line no-console
    console.log(`UKI build (v1.11.3, ${(fs.statSync(out).size / 1048576).toFixed(1)} MiB): ${Date.now() - t0} ms`);
    uki = fs.readFileSync(out);
    stub = fs.readFileSync(inputs['v1.11.3'].stub);
  });

  test('the demo stub is trixie\'s profile-aware systemd-stub (PE32+, ImageVersion >= 257, .sbat, no COFF symbols)', () => {
    const s = parsePe(stub);
    expect(s.pe32plus).toBe(true);
    // systemd's elf2efi writes the systemd version as the PE image version; >= 257 honours .profile sections
    expect(stub.readUInt16LE(s.optionalHeaderOffset + OPT_MAJOR_IMAGE_VERSION)).toBeGreaterThanOrEqual(257);
    expect(s.sectionAlignment).toBe(0x1000);
    expect(s.sections.map((x) => x.name)).toEqual(expect.arrayContaining(['.sbat', '.sdmagic']));
    expect(s.numberOfSymbols).toBe(0);
    expect(result.strippedSymbolBytes).toBe(0);
  });

  test('a stub\'s COFF symbol table is left out (the same UKI as from the stub without one)', async () => {
    // bookworm's stub (252) carried one; trixie's has none, so append a one-symbol table + empty string table
    const s = parsePe(stub);
    const withSymbols = Buffer.concat([stub, Buffer.alloc(18), Buffer.from([4, 0, 0, 0])]);
    withSymbols.writeUInt32LE(stub.length, s.eLfanew + 4 + 8); // PointerToSymbolTable
    withSymbols.writeUInt32LE(1, s.eLfanew + 4 + 12); // NumberOfSymbols
    const symStub = path.join(tmp, 'stub-with-symbols.efi');
    fs.writeFileSync(symStub, withSymbols);
    const symOut = path.join(tmp, 'struct-from-symbol-stub.efi');
    const r = await buildUki({ ...inputs['v1.11.3'], stub: symStub, cmdline: CMDLINE, osRelease: osrel, out: symOut });
    expect(r.strippedSymbolBytes).toBe(22);
    expect(sha256(fs.readFileSync(symOut))).toBe(sha256(uki));
  });

  test('DOS header, PE signature at 0x80, COFF header', () => {
    expect(uki.subarray(0, 0x3c).equals(stub.subarray(0, 0x3c))).toBe(true);
    expect(uki.readUInt32LE(0x3c)).toBe(0x80);
    expect(uki.subarray(0x40, 0x80).every((b) => b === 0)).toBe(true);
    expect(uki.toString('latin1', 0x80, 0x84)).toBe('PE\0\0');
    const p = parsePe(uki);
    const s = parsePe(stub);
    expect(p.machine).toBe(s.machine);
    expect(p.characteristics).toBe(s.characteristics);
    expect(p.timeDateStamp).toBe(SOURCE_DATE_EPOCH);
    expect(p.numberOfSections).toBe(s.numberOfSections + 6);
    // COFF symbol table stripped: pointer and count zeroed, the trailing table not copied
    expect(p.pointerToSymbolTable).toBe(0);
    expect(p.numberOfSymbols).toBe(0);
  });

  test('optional header: linker 0.0, CheckSum 0, recomputed sizes, data directories untouched', () => {
    const p = parsePe(uki);
    const s = parsePe(stub);
    expect([p.majorLinkerVersion, p.minorLinkerVersion, p.checkSum]).toEqual([0, 0, 0]);
    expect(p.sizeOfOptionalHeader).toBe(240);
    expect(p.sizeOfHeaders).toBe(alignUp(0x80 + 4 + 20 + 240 + 40 * p.numberOfSections, p.fileAlignment));
    // the spec's formula (0x80 + 20 + 240 + 40n, without the 4-byte signature) gives the same aligned value
    expect(alignUp(0x80 + 20 + 240 + 40 * p.numberOfSections, p.fileAlignment)).toBe(p.sizeOfHeaders);
    const last = p.sections[p.sections.length - 1];
    expect(p.sizeOfImage).toBe(alignUp(last.virtualAddress + last.virtualSize, p.sectionAlignment));
    const sum = (flag: number) => p.sections.filter((x) => x.characteristics & flag).reduce((a, x) => a + x.sizeOfRawData, 0);
    expect(p.sizeOfCode).toBe(sum(IMAGE_SCN_CNT_CODE));
    expect(p.sizeOfInitializedData).toBe(sum(IMAGE_SCN_CNT_INITIALIZED_DATA));
    for (const k of ['magic', 'addressOfEntryPoint', 'baseOfCode', 'imageBase', 'sectionAlignment', 'fileAlignment', 'subsystem', 'sizeOfUninitializedData'] as const) {
      expect(p[k]).toEqual(s[k]);
    }
    expect(p.dataDirectories).toEqual(s.dataDirectories);
  });

  test('stub sections keep VAs and bytes; raw data contiguous from SizeOfHeaders', () => {
    const p = parsePe(uki);
    const s = parsePe(stub);
    let off = p.sizeOfHeaders;
    for (const x of p.sections) {
      expect(x.pointerToRawData).toBe(off);
      expect(x.sizeOfRawData % p.fileAlignment).toBe(0);
      off += x.sizeOfRawData;
    }
    expect(uki.length).toBe(off);
    s.sections.forEach((orig, i) => {
      const x = p.sections[i];
      expect([x.name, x.virtualAddress, x.virtualSize, x.sizeOfRawData, x.characteristics]).toEqual([orig.name, orig.virtualAddress, orig.virtualSize, orig.sizeOfRawData, orig.characteristics]);
      const copied = uki.subarray(x.pointerToRawData, x.pointerToRawData + x.sizeOfRawData);
      expect(copied.equals(stub.subarray(orig.pointerToRawData, orig.pointerToRawData + orig.sizeOfRawData))).toBe(true);
    });
  });

  test('appended sections: order, VA chain, sizes, characteristics, contents, zero padding', () => {
    const p = parsePe(uki);
    const n = parsePe(stub).sections.length;
    const added = p.sections.slice(n);
    expect(added.map((x) => x.name)).toEqual(['.osrel', '.cmdline', '.uname', '.splash', '.linux', '.initrd']);
    let prev = p.sections[n - 1];
    for (const x of added) {
      expect(x.virtualAddress).toBe(alignUp(prev.virtualAddress + prev.virtualSize, p.sectionAlignment));
      expect(x.sizeOfRawData).toBe(alignUp(x.virtualSize, p.fileAlignment));
      expect(x.characteristics).toBe(UKI_SECTION_CHARACTERISTICS);
      expect(x.characteristics).toBe(0x40000040);
      const padding = uki.subarray(x.pointerToRawData + x.virtualSize, x.pointerToRawData + x.sizeOfRawData);
      expect(padding.every((b) => b === 0)).toBe(true);
      prev = x;
    }
    const data = (name: string) => peSectionData(uki, added.find((x) => x.name === name)!);
    expect(data('.osrel').toString()).toBe(osrel);
    expect(osrel).toBe(
      'NAME="Talos"\nID=talos\nVERSION_ID=v1.11.3\nPRETTY_NAME="Talos (v1.11.3)"\nHOME_URL="https://www.talos.dev/"\n' +
        'BUG_REPORT_URL="https://github.com/siderolabs/talos/issues"\nVENDOR_NAME="Sidero Labs"\nVENDOR_URL="https://www.siderolabs.com/"\n',
    );
    expect(data('.cmdline').toString()).toBe(CMDLINE);
    expect(data('.uname').toString()).toBe(kernelRelease);
    expect(data('.splash')).toEqual(defaultSplashBmp());
    expect(sha256(data('.linux'))).toBe(sha256(fs.readFileSync(inputs['v1.11.3'].kernel)));
    expect(sha256(data('.initrd'))).toBe(sha256(fs.readFileSync(inputs['v1.11.3'].initrd)));
    expect(result.sections.slice(n)).toEqual(added.map((x) => ({ name: x.name, virtualAddress: x.virtualAddress, size: x.virtualSize })));
  });

  test('default splash is a valid 24-bit BMP', () => {
    const bmp = defaultSplashBmp();
    expect(bmp.toString('latin1', 0, 2)).toBe('BM');
    expect(bmp.readUInt32LE(2)).toBe(bmp.length);
    expect([bmp.readInt32LE(18), bmp.readInt32LE(22), bmp.readUInt16LE(28), bmp.readUInt32LE(30)]).toEqual([64, 64, 24, 0]);
  });

  // binutils is part of the documented host packages
  testIf(have('objdump'), 'objdump is not installed (binutils)')('objdump agrees on the section table', () => {
    const txt = execFileSync('objdump', ['-h', out], { encoding: 'utf8' });
    const rows = [...txt.matchAll(/^\s*\d+\s+(\S+)\s+([0-9a-f]+)\s+([0-9a-f]+)\s+[0-9a-f]+\s+([0-9a-f]+)/gm)].map((m) => ({
      name: m[1],
      size: parseInt(m[2], 16),
      vma: parseInt(m[3], 16),
      off: parseInt(m[4], 16),
    }));
    const p = parsePe(uki);
    // objdump prints VMAs, i.e. ImageBase + RVA (trixie's stub is linked at a non-zero ImageBase)
    const vma = (rva: number) => Number(p.imageBase + BigInt(rva));
    expect(rows).toEqual(p.sections.map((x) => ({ name: x.name, size: x.virtualSize, vma: vma(x.virtualAddress), off: x.pointerToRawData })));
    const x = execFileSync('objdump', ['-x', out], { encoding: 'utf8' });
    expect(x).toMatch(/Time\/Date\s+Sat Jun\s+1 21:34:52 2019/);
    expect(x).not.toMatch(/HAS_SYMS/);
  });

  testIf(have('sbverify'), 'sbverify is not installed (optional: apt-get install sbsigntool)')('sbverify --list sees a well-formed unsigned image (no "gaps between sections" warning)', () => {
    const r = spawnSync('sbverify', ['--list', out], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(`${r.stdout}${r.stderr}`).toMatch(/No signature table present/);
    expect(`${r.stdout}${r.stderr}`).not.toMatch(/gaps|warning/i);
  });
});

describe('buildUki options', () => {
  test('profiles (>= 1.10 ISO layout): .profile(main) .profile(reset) .cmdline after .initrd', async () => {
    const out = path.join(tmp, 'profiles.efi');
    await buildUki({
      ...inputs['v1.12.2'],
      cmdline: CMDLINE,
      osRelease: talosOsRelease('v1.12.2'),
      profiles: talosUkiProfiles(CMDLINE, 'iso'),
      out,
    });
    const b = fs.readFileSync(out);
    const p = parsePe(b);
    expect(p.sections.slice(-9).map((x) => x.name)).toEqual(['.osrel', '.cmdline', '.uname', '.splash', '.linux', '.initrd', '.profile', '.profile', '.cmdline']);
    const tail = p.sections.slice(-3).map((x) => peSectionData(b, x).toString());
    expect(tail).toEqual(['ID=main', 'ID=reset\nTITLE=Reset system disk', RESET_CMDLINE]);
  });

  test('talosUkiProfiles: main only for the UKI output; reset-maintenance for disk images and installers (§6.2)', () => {
    expect(talosUkiProfiles(CMDLINE, undefined)).toEqual([{ profile: 'ID=main' }]);
    for (const kind of ['image', 'installer'] as const) {
      expect(talosUkiProfiles(CMDLINE, kind)).toEqual([
        { profile: 'ID=main' },
        { profile: 'ID=reset-maintenance\nTITLE=Reset to maintenance mode', cmdline: `${CMDLINE} talos.experimental.wipe=system:EPHEMERAL,STATE` },
      ]);
    }
  });

  test('uname: null omits .uname, a string overrides; arm64 kernels get none; custom splash', async () => {
    const base = { ...inputs['v1.11.3'], cmdline: CMDLINE, osRelease: talosOsRelease('v1.11.3') };
    const a = path.join(tmp, 'nouname.efi');
    await buildUki({ ...base, uname: null, out: a, splash: Buffer.from('BMfake') });
    const pa = parsePe(fs.readFileSync(a));
    expect(pa.sections.map((x) => x.name)).not.toContain('.uname');
    expect(peSectionData(fs.readFileSync(a), pa.sections.find((x) => x.name === '.splash')!).toString()).toBe('BMfake');
    const b = path.join(tmp, 'uname.efi');
    const r = await buildUki({ ...base, uname: '9.9.9-custom', out: b });
    expect(r.uname).toBe('9.9.9-custom');
    const arm = inputs['v1.12.2-arm64'];
    if (arm) {
      const c = path.join(tmp, 'arm64.efi');
      const rc = await buildUki({ ...arm, cmdline: 'console=ttyAMA0', osRelease: talosOsRelease('v1.12.2'), out: c });
      const pc = parsePe(fs.readFileSync(c));
      expect(pc.machine).toBe(0xaa64);
      expect(rc.uname).toBeUndefined();
      expect(pc.sections.slice(-5).map((x) => x.name)).toEqual(['.osrel', '.cmdline', '.splash', '.linux', '.initrd']);
      for (const x of pc.sections.slice(-5)) expect(x.virtualAddress % pc.sectionAlignment).toBe(0);
    }
  });

  test('deterministic: two builds are bit-identical; the epoch only changes TimeDateStamp', async () => {
    const base = { ...inputs['v1.11.3'], cmdline: CMDLINE, osRelease: talosOsRelease('v1.11.3') };
    const a = path.join(tmp, 'det-a.efi');
    const b = path.join(tmp, 'det-b.efi');
    const c = path.join(tmp, 'det-c.efi');
    await buildUki({ ...base, out: a });
    fs.utimesSync(base.kernel, new Date(), new Date());
    await buildUki({ ...base, out: b });
    await buildUki({ ...base, out: c, sourceDateEpoch: 1700000000 });
    const [ba, bb, bc] = [a, b, c].map((f) => fs.readFileSync(f));
    expect(sha256(ba)).toBe(sha256(bb));
    expect(parsePe(bc).timeDateStamp).toBe(1700000000);
    // COFF TimeDateStamp lives at 0x80 + 4 + 4
    expect(ba.length).toBe(bc.length);
    expect(ba.subarray(0, 0x88).equals(bc.subarray(0, 0x88))).toBe(true);
    expect(ba.subarray(0x8c).equals(bc.subarray(0x8c))).toBe(true);
  });

  test('sign hook runs on the unsigned temp file before the rename', async () => {
    const out = path.join(tmp, 'signed.efi');
    let seen = '';
    await buildUki({
      ...inputs['v1.11.3'],
      cmdline: CMDLINE,
      osRelease: talosOsRelease('v1.11.3'),
      out,
      sign: async (p) => {
        seen = p;
        expect(fs.existsSync(out)).toBe(false);
        fs.appendFileSync(p, Buffer.from('SIG'));
      },
    });
    expect(seen).not.toBe(out);
    expect(fs.existsSync(seen)).toBe(false);
    expect(fs.readFileSync(out).subarray(-3).toString()).toBe('SIG');
  });

  test('errors: non-PE stub, missing kernel, bad section name leave no output behind', async () => {
    const notPe = path.join(tmp, 'notpe.bin');
    fs.writeFileSync(notPe, Buffer.alloc(1024));
    const out = path.join(tmp, 'err.efi');
    const base = { ...inputs['v1.11.3'], cmdline: CMDLINE, osRelease: 'x', out };
    await expect(buildUki({ ...base, stub: notPe })).rejects.toThrow(/MZ/);
    await expect(buildUki({ ...base, kernel: path.join(tmp, 'missing') })).rejects.toThrow(/ENOENT/);
    await expect(
      assemblePe({ stub: inputs['v1.11.3'].stub, sections: [{ name: '.toolongname', data: Buffer.from('x') }], out, timeDateStamp: 0 }),
    ).rejects.toThrow(/invalid section name/);
    expect(fs.readdirSync(tmp).filter((f) => f.startsWith('err.efi'))).toEqual([]);
  });

  test('streams large payloads with bounded memory (600 MiB sparse initrd)', async () => {
    const big = path.join(tmp, 'big-initrd');
    const fd = fs.openSync(big, 'w');
    fs.ftruncateSync(fd, 600 * 1024 * 1024);
    fs.writeSync(fd, Buffer.from('END'), 0, 3, 600 * 1024 * 1024 - 3);
    fs.closeSync(fd);
    const out = path.join(tmp, 'big.efi');
    const rss0 = process.memoryUsage().rss;
    let peak = rss0;
    const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
    try {
      await buildUki({ ...inputs['v1.11.3'], initrd: big, cmdline: CMDLINE, osRelease: 'x', out });
    } finally {
      clearInterval(timer);
    }
    const fdo = fs.openSync(out, 'r');
    const head = Buffer.alloc(4096);
    fs.readSync(fdo, head, 0, head.length, 0);
    const p = parsePe(head);
    const initrd = p.sections.find((x) => x.name === '.initrd')!;
    expect(initrd.virtualSize).toBe(600 * 1024 * 1024);
    const endBuf = Buffer.alloc(3);
    fs.readSync(fdo, endBuf, 0, 3, initrd.pointerToRawData + initrd.virtualSize - 3);
    fs.closeSync(fdo);
    expect(endBuf.toString()).toBe('END');
    expect(peak - rss0).toBeLessThan(64 * 1024 * 1024);
    fs.rmSync(out);
    fs.rmSync(big);
  }, 60000);
});

describe('boot', () => {
  test('multi-profile UKI (demo v1.11.3, main + reset) as EFI/BOOT/BOOTX64.EFI on a vvfat ESP boots its main profile under OVMF', async () => {
    const esp = path.join(tmp, 'esp');
    fs.mkdirSync(path.join(esp, 'EFI', 'BOOT'), { recursive: true });
    const out = path.join(esp, 'EFI', 'BOOT', 'BOOTX64.EFI');
    // started by the firmware, no boot loader picks a profile: the stub boots profile 0 (main), not the last .cmdline
    await buildUki({ ...inputs['v1.11.3'], cmdline: CMDLINE, osRelease: talosOsRelease('v1.11.3'), profiles: talosUkiProfiles(CMDLINE, 'iso'), out });
    const r = await bootQemu({ args: [...ovmfArgs(tmp), '-drive', `file=fat:${esp},format=raw,if=virtio,readonly=on`], timeoutMs: 150000 });
    // eslint-disable-next-line no-console
    console.log(`UKI boot under OVMF: ${r.ms} ms`);
    if (!r.report.done) throw new Error(`no "FIXTURE done"; serial tail:\n${r.serial.slice(-3000)}`);
    expectMainProfileBooted(r.report, CMDLINE);
    expect(r.report.talosVersion).toBe('v1.11.3');
  }, 180000);
});
