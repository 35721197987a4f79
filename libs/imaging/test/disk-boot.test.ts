/**
 * Disk images booted under QEMU (TCG, one at a time, `-drive if=virtio,snapshot=on`), three boots:
 *   dual-boot v1.11.3 under SeaBIOS (MBR boot.img -> BIOS core.img -> GRUB -> BOOT:/A/vmlinuz),
 *   dual-boot v1.11.3 under OVMF (EFI/boot/BOOTX64.efi = systemd-boot -> EFI/Linux/Talos-v1.11.3.efi),
 *   grub v1.7.7 under SeaBIOS.
 * The initramfs is the demo one rebuilt by assembleInitramfs with a schematic extension, so the demo init reports
 * the schematic ID; it also lists the GPT partitions the kernel sees and dumps the first 4 KiB of META, which must
 * decode (decodeAdv) to the META values written.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { buildDiskImage, decodeAdv, DiskPlan, planDisk } from '../src/disk';
import { assembleInitramfs, writeSchematicExtension } from '../src/initramfs';
import { buildUki, talosOsRelease, talosUkiProfiles } from '../src/uki';
import { bootQemu, BootResult } from '../../../tools/demo-releases/src';
import { DEMO_DIR, extractDemoImager, readRange } from '../../../test/support/demo-imager';
import { expectMainProfileBooted, ovmfArgs, sdBootEntry } from '../../../test/support/boot';

const DEMO = DEMO_DIR;
const MiB = 1024 * 1024;
const BOOT_TIMEOUT_MS = 240000;
const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');
const log = (msg: string) => process.stderr.write(`[disk-boot] ${msg}\n`);

let tmp: string;
beforeAll(() => {
  if (!fs.existsSync(path.join(DEMO, 'releases.json'))) throw new Error(`demo releases missing in ${DEMO} (run scripts/setup.sh / tools/demo-releases build)`);
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'disk-boot-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

interface Prepared {
  kernel: string;
  initramfs: string;
  stub: string;
  sdBoot: string;
  schematicId: string;
}

/** demo kernel + the demo initramfs rebuilt with a schematic extension (as the factory does for every image) */
async function prepare(version: string): Promise<Prepared> {
  const dir = path.join(tmp, version);
  const { kernel, initramfs: base, stub, sdBoot } = extractDemoImager(version, 'amd64', dir, DEMO);
  const canonicalYaml = `customization:\n    meta:\n        - key: 12\n          value: disk-${version}\n`;
  const schematicId = sha256(canonicalYaml);
  const extDir = path.join(dir, 'schematic-ext');
  await writeSchematicExtension(extDir, { id: schematicId, canonicalYaml, externalUrl: 'https://factory.example.test', version });
  const initramfs = path.join(dir, 'initramfs-amd64.xz');
  await assembleInitramfs({ base, version, extensions: [{ dir: extDir, selinux: undefined }], workDir: path.join(dir, 'assemble'), out: initramfs });
  return { kernel, initramfs, stub, sdBoot, schematicId };
}

function metaOffset(plan: DiskPlan): bigint {
  return plan.partitions.find((p) => p.label === 'META')!.firstLba * BigInt(plan.sectorSize);
}

function expectBooted(r: BootResult, what: string): void {
  if (!r.report.done) throw new Error(`${what}: no "FIXTURE done" (timedOut=${r.timedOut}); serial tail:\n${r.serial.slice(-3000)}`);
}

/** what every boot must show: schematic, partitions, META read by the guest = META in the image = values written */
function expectDiskReport(r: BootResult, o: { img: string; plan: DiskPlan; schematicId: string; meta: Map<number, string> }): void {
  expect(r.report.schematics).toEqual([o.schematicId]);
  expect(r.report.partitions.map((p) => p.name)).toEqual(o.plan.partitions.map((p) => p.label));
  expect(r.report.partitions.map((p) => p.dev)).toEqual(o.plan.partitions.map((_, i) => `vda${i + 1}`));
  expect(r.report.metaPartition).toBe(`vda${o.plan.partitions.findIndex((p) => p.label === 'META') + 1}`);
  const guest = r.report.metaBytes!;
  expect(guest.length).toBe(4096);
  expect(guest.equals(readRange(o.img, metaOffset(o.plan), 4096))).toBe(true);
  // the 4 KiB the guest dumped holds the whole record list; the full block (with checksum) is verified from the image
  expect(decodeAdv(guest, { partial: true })).toEqual(o.meta);
  expect(decodeAdv(readRange(o.img, metaOffset(o.plan), MiB))).toEqual(o.meta);
}


const drive = (img: string) => ['-drive', `file=${img},format=raw,if=virtio,snapshot=on`];

describe('dual-boot v1.11.3 (metal) boots via SeaBIOS and via OVMF', () => {
  const CMDLINE = 'talos.platform=metal console=tty0 console=ttyS0 panic=-1 fixture.disk=grub';
  // the UKI carries the factory's disk-image profiles (main + "Reset to maintenance mode"); the demo stub
  // (systemd >= 257) boots the main one
  const UKI_CMDLINE = 'talos.platform=metal console=tty0 console=ttyS0 panic=-1 fixture.disk=uki';
  const META = new Map([[0x0a, 'addresses:\n  - 10.5.0.2/24\n'], [0x0c, 'hello "world"']]);
  const EXPECTED_META = new Map([...META, [0x11, 'dual-boot']]);
  let p: Prepared;
  let plan: DiskPlan;
  let img: string;

  beforeAll(async () => {
    p = await prepare('v1.11.3');
    const uki = path.join(tmp, 'v1.11.3', 'uki.efi');
    await buildUki({
      stub: p.stub, kernel: p.kernel, initrd: p.initramfs, cmdline: UKI_CMDLINE, osRelease: talosOsRelease('v1.11.3'),
      profiles: talosUkiProfiles(UKI_CMDLINE, 'image'), out: uki,
    });
    plan = planDisk({ version: 'v1.11.3', arch: 'amd64', bootloader: 'dual-boot', baseSizeMiB: 1246, sectorSize: 512 });
    img = path.join(tmp, 'metal-amd64.raw');
    const t0 = Date.now();
    const info = await buildDiskImage({
      plan, out: img, workDir: path.join(tmp, 'wd'),
      contents: { kernel: p.kernel, initramfs: p.initramfs, cmdline: CMDLINE, version: 'v1.11.3', arch: 'amd64', uki, sdBoot: p.sdBoot, meta: META },
    });
    log(`metal-amd64.raw v1.11.3 dual-boot: built in ${Date.now() - t0} ms (${Object.entries(info.steps).map(([k, v]) => `${k} ${v}`).join(', ')})`);
  }, 180000);

  test('SeaBIOS: MBR -> GRUB core.img (BIOS partition) -> grub.cfg on BOOT -> kernel', async () => {
    const r = await bootQemu({ args: drive(img), timeoutMs: BOOT_TIMEOUT_MS });
    log(`dual-boot SeaBIOS boot: ${r.ms} ms`);
    expectBooted(r, 'dual-boot / SeaBIOS');
    expect(r.serial).toContain('GRUB');
    expect(r.report.firmwareMode).toBe('bios');
    expect(r.report.cmdline).toBe(`BOOT_IMAGE=/A/vmlinuz ${CMDLINE}`);
    expect(r.report.talosVersion).toBe('v1.11.3');
    expectDiskReport(r, { img, plan, schematicId: p.schematicId, meta: EXPECTED_META });
  }, BOOT_TIMEOUT_MS + 30000);

  test('OVMF: systemd-boot (EFI/boot/BOOTX64.efi) -> UKI (EFI/Linux/Talos-v1.11.3.efi)', async () => {
    const r = await bootQemu({ args: [...ovmfArgs(tmp), ...drive(img)], input: sdBootEntry(0), timeoutMs: BOOT_TIMEOUT_MS });
    log(`dual-boot OVMF boot (sd-boot -> UKI): ${r.ms} ms (Enter at ${r.keySentAtMs ?? '-'} ms)`);
    expectBooted(r, 'dual-boot / OVMF');
    // one sd-boot entry per profile, titled from the UKI's .osrel and the profile's TITLE
    expect(r.serial).toContain('Talos (v1.11.3)');
    expect(r.serial).toContain('Talos (v1.11.3) (Reset to maintenance mode)');
    expectMainProfileBooted(r.report, UKI_CMDLINE);
    expectDiskReport(r, { img, plan, schematicId: p.schematicId, meta: EXPECTED_META });
  }, BOOT_TIMEOUT_MS + 30000);
});

describe('grub v1.7.7 (metal, with empty STATE/EPHEMERAL) boots via SeaBIOS', () => {
  test('MBR -> GRUB -> kernel; six partitions; META values', async () => {
    const p = await prepare('v1.7.7');
    const CMDLINE = 'talos.platform=metal console=ttyS0 console=tty0 panic=-1 fixture.disk=grub-legacy';
    const META = new Map([[0x0c, 'v1.7.7 meta']]);
    const plan = planDisk({ version: 'v1.7.7', arch: 'amd64', bootloader: 'grub', baseSizeMiB: 1246, sectorSize: 512 });
    const img = path.join(tmp, 'metal-amd64-v1.7.7.raw');
    await buildDiskImage({
      plan, out: img, workDir: path.join(tmp, 'wd'),
      contents: { kernel: p.kernel, initramfs: p.initramfs, cmdline: CMDLINE, version: 'v1.7.7', arch: 'amd64', meta: META },
    });
    const r = await bootQemu({ args: drive(img), timeoutMs: BOOT_TIMEOUT_MS });
    log(`grub v1.7.7 SeaBIOS boot: ${r.ms} ms`);
    expectBooted(r, 'grub v1.7.7 / SeaBIOS');
    expect(r.report.firmwareMode).toBe('bios');
    expect(r.report.cmdline).toBe(`BOOT_IMAGE=/A/vmlinuz ${CMDLINE}`);
    expect(r.report.talosVersion).toBe('v1.7.7');
    expect(plan.partitions.map((x) => x.label)).toEqual(['EFI', 'BIOS', 'BOOT', 'META', 'STATE', 'EPHEMERAL']);
    expectDiskReport(r, { img, plan, schematicId: p.schematicId, meta: META });
  }, BOOT_TIMEOUT_MS + 120000);
});
