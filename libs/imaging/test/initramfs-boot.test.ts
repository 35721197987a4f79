/**
 * One real boot: the demo v1.11.3 amd64 kernel + an initramfs assembled by assembleInitramfs from the demo base
 * initramfs and the demo extensions hello, intel-ucode, dummy-module plus a schematic extension. The demo init
 * (tools/demo-releases) mounts every layer like Talos init does and reports what it finds on the serial console.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { assembleInitramfs, extractLayers, writeSchematicExtension } from '../src/initramfs';
import { bootQemu, readImageFiles, readReleases, resolveImage } from '../../../tools/demo-releases/src';
import { DEMO_DIR } from '../../../test/support/demo-imager';

const DEMO = DEMO_DIR;
const V = 'v1.11.3';
const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

function layerOpeners(name: string, tag: string) {
  const layout = path.join(DEMO, 'oci/siderolabs', name);
  const img = resolveImage(layout, tag, 'amd64');
  return img.manifest.layers.map((l) => async () => fs.createReadStream(path.join(layout, 'blobs/sha256', l.digest.replace(/^sha256:/, ''))));
}

let tmp: string;
beforeAll(() => {
  if (!fs.existsSync(path.join(DEMO, 'releases.json'))) throw new Error(`demo releases missing in ${DEMO} (run scripts/setup.sh / tools/demo-releases build)`);
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'initramfs-boot-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

test('demo v1.11.3 kernel boots the assembled initramfs: extensions, schematic, firmware, microcode, modules', async () => {
  const releases = readReleases(DEMO)!;
  const kver = releases.kernel.amd64!.version;
  const exts = releases.versions.find((x) => x.version === V)!.extensions;
  const tagOf = (n: string) => exts.find((e) => e.name === n)!.tag;

  const imager = readImageFiles(path.join(DEMO, 'oci/siderolabs/imager'), V);
  const kernel = path.join(tmp, 'vmlinuz');
  const base = path.join(tmp, 'initramfs-base.xz');
  fs.writeFileSync(kernel, imager.get('usr/install/amd64/vmlinuz')!.data);
  fs.writeFileSync(base, imager.get('usr/install/amd64/initramfs.xz')!.data);

  const dirs = [];
  for (const name of ['hello', 'intel-ucode', 'dummy-module']) {
    const dir = path.join(tmp, 'ext', name);
    const { selinux } = await extractLayers(layerOpeners(name, tagOf(name)), dir);
    dirs.push({ dir, selinux });
  }
  const canonicalYaml =
    'customization:\n    systemExtensions:\n        officialExtensions:\n' +
    '            - siderolabs/hello\n            - siderolabs/intel-ucode\n            - siderolabs/dummy-module\n';
  const id = sha256(canonicalYaml);
  const schematicDir = path.join(tmp, 'ext', 'schematic');
  await writeSchematicExtension(schematicDir, { id, canonicalYaml, externalUrl: 'https://factory.example.test', version: V });
  dirs.push({ dir: schematicDir, selinux: undefined });

  const out = path.join(tmp, 'initramfs-amd64.xz');
  const work = path.join(tmp, 'work');
  const t0 = Date.now();
  const res = await assembleInitramfs({ base, version: V, extensions: dirs, workDir: work, out });
  const assembleMs = Date.now() - t0;
  process.stderr.write(`[initramfs-boot] assembled 3 extensions + schematic for ${V} in ${assembleMs} ms (${fs.statSync(out).size} bytes)\n`);

  expect(res.modulesDep).toBe(true);
  expect(res.microcode).toEqual(['kernel/x86/microcode/GenuineIntel.bin']);
  const expectedExtensions = [
    { name: 'hello', version: tagOf('hello') },
    { name: 'intel-ucode', version: tagOf('intel-ucode') },
    { name: 'dummy-module', version: tagOf('dummy-module') },
    { name: 'schematic', version: id },
    { name: 'modules.dep', version: kver },
  ];
  expect(res.layers).toEqual(['0.sqsh', '1.sqsh', '2.sqsh', '3.sqsh', 'modules.dep.sqsh'].map((image, i) => ({ image, ...expectedExtensions[i] })));

  const boot = await bootQemu({ kernel, initrd: out, append: 'console=ttyS0 panic=-1 talos.platform=metal', timeoutMs: 180000 });
  const r = boot.report;
  if (process.env.INITRAMFS_BOOT_DUMP) process.stderr.write(r.lines.join("\n") + "\n");
  if (!r.done) process.stderr.write(boot.serial.slice(-6000));
  process.stderr.write(`[initramfs-boot] boot to "FIXTURE done": ${(boot.ms / 1000).toFixed(1)} s\n`);
  expect(r.done).toBe(true);
  expect(r.talosVersion).toBe(V);
  expect(r.kernel).toBe(kver);
  expect(r.kmods).toMatchObject({ loop: 'loaded', squashfs: 'loaded', overlay: 'loaded' });

  // extensions in order, with versions; every layer mounted and byte-identical to what was staged
  expect(r.extensions).toEqual(expectedExtensions);
  expect(r.layerCount).toBe(5);
  for (const [i, l] of r.layers.entries()) {
    expect(l).toMatchObject({ index: i, image: res.layers[i].image, mounted: true });
    expect(l.sha256).toBe(sha256(fs.readFileSync(path.join(work, 'staging', res.layers[i].image))));
  }
  expect(r.extensionsYaml).toContain(`        version: ${id}\n`);
  expect(r.extensionsYaml).toContain('        extraInfo: |\n            customization:\n');

  // schematic ID and the hello marker
  expect(r.schematics).toEqual([id]);
  expect(r.layers[3].schematics).toEqual([id]);
  expect(r.markers).toEqual({ hello: `hello ${tagOf('hello')}` });

  // firmware moved into the initramfs (not in the squashfs), microcode in the early cpio
  expect(r.firmware).toEqual(['/usr/lib/firmware/fixture/fw.bin']);
  expect(r.layers[1].files).toEqual([]);
  expect(r.microcode).toEqual({ 'GenuineIntel.bin': 64 });

  // dummy.ko stays in its own layer; modules.dep layer carries the combined index; the module loads from the overlay
  expect(r.layers[2].modules).toEqual([`usr/lib/modules/${kver}/extras/dummy.ko`]);
  expect(r.layers[4].modulesIndex).toEqual(expect.arrayContaining([`usr/lib/modules/${kver}/modules.dep`, `usr/lib/modules/${kver}/modules.alias`]));
  expect(r.modulesDep).toContain('extras/dummy.ko:');
  expect(r.moduleLoads).toEqual({ dummy: 'ok' });
  expect(r.rootfs).toBe('ok');
  expect(r.overlay).toBe('ok');
}, 300000);
