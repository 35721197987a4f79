import fs from 'node:fs';
import path from 'node:path';
import { buildDiskImage, planDisk } from '../src/disk';
import { buildUki, talosOsRelease } from '../src/uki';
import { readImageFiles } from '../../../tools/demo-releases/src';
const DEMO = path.resolve(__dirname, '../../../.cache/demo-releases');
test('smoke', async () => {
  const tmp = '/tmp/dsmoke';
  const img = readImageFiles(path.join(DEMO, 'oci/siderolabs/imager'), 'v1.11.3', 'amd64');
  for (const n of ['vmlinuz', 'initramfs.xz', 'systemd-stub.efi', 'systemd-boot.efi']) fs.writeFileSync(path.join(tmp, n), img.get(`usr/install/amd64/${n}`)!.data);
  await buildUki({ stub: path.join(tmp, 'systemd-stub.efi'), kernel: path.join(tmp, 'vmlinuz'), initrd: path.join(tmp, 'initramfs.xz'), cmdline: 'console=ttyS0', osRelease: talosOsRelease('v1.11.3'), out: path.join(tmp, 'uki.efi') });
  const plan = planDisk({ version: 'v1.11.3', arch: 'amd64', bootloader: 'dual-boot', baseSizeMiB: 1246, sectorSize: 512 });
  const info = await buildDiskImage({ plan, out: path.join(tmp, 'disk.raw'), workDir: path.join(tmp, 'wd'), keepWorkDir: true,
    contents: { kernel: path.join(tmp, 'vmlinuz'), initramfs: path.join(tmp, 'initramfs.xz'), cmdline: 'talos.platform=metal console=ttyS0 panic=-1', version: 'v1.11.3', arch: 'amd64', uki: path.join(tmp, 'uki.efi'), sdBoot: path.join(tmp, 'systemd-boot.efi'), meta: new Map([[0x0c, 'hello']]) } });
  console.log(JSON.stringify({ ...info, meta: [...(info.meta ?? [])] }, null, 1));
}, 600000);
