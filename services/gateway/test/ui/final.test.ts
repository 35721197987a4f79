/**
 * The final page's links per platform (anchor-api §9 "Final page contents"): disk images, ISO, PXE, installer
 * references (unified per-platform installers from Talos 1.10), extra assets, Secure Boot variants.
 */
import { finalModel, pageAssets } from '../../src/ui/final';
import { readForm, validateState } from '../../src/ui/state';
import { EXTENSIONS, VERSIONS, OVERLAYS } from './harness';

const ID = 'a'.repeat(64);
const modelOf = async (q: string) =>
  finalModel({
    state: await validateState(readForm(new URLSearchParams(`${q}&extensions=-&cmdline-set=1`)), { versions: VERSIONS, secureBoot: true, extensions: async () => EXTENSIONS, overlays: async () => OVERLAYS }),
    schematicId: ID,
    externalUrl: 'https://f.example:8443/',
    externalPxeUrl: 'http://pxe.example/',
  });

test('bare metal amd64: raw.zst, qcow2, ISO, PXE, installer, extra assets', async () => {
  const m = await modelOf('target=metal&version=1.12.2&arch=amd64');
  expect(pageAssets(m).map((a) => a.path)).toEqual(['metal-amd64.raw.zst', 'metal-amd64.qcow2', 'metal-amd64.iso', 'kernel-amd64', 'cmdline-metal-amd64', 'initramfs-amd64.xz', 'metal-amd64-uki.efi']);
  expect(m.diskImages[0].url).toBe(`https://f.example:8443/image/${ID}/v1.12.2/metal-amd64.raw.zst`);
  expect(m.pxeUrl).toBe(`http://pxe.example/pxe/${ID}/v1.12.2/metal-amd64`);
  expect(m.installRef).toBe(`f.example:8443/metal-installer/${ID}:v1.12.2`);
  expect(m.localClusterCommand).toBe(`talosctl cluster create qemu --schematic-id=${ID} --talos-version=v1.12.2`);
  expect(m.booterCommand).toBe(`docker run --rm --network host ghcr.io/siderolabs/booter:v0.3.0 --talos-version=v1.12.2 --schematic-id=${ID}`);
  expect(m.talosctlListUrl).toBe('https://f.example:8443/talosctl/v1.12.2');
});

test('Secure Boot: the -secureboot variants, only the SB UKI as extra asset', async () => {
  const m = await modelOf('target=metal&version=1.12.2&arch=arm64&secureboot=true');
  expect(pageAssets(m).map((a) => a.path)).toEqual(['metal-arm64-secureboot.raw.zst', 'metal-arm64-secureboot.iso', 'metal-arm64-secureboot-uki.efi']);
  expect(m.pxeUrl).toBe(`http://pxe.example/pxe/${ID}/v1.12.2/metal-arm64-secureboot`);
  expect(m.upgradeRef).toBe(`f.example:8443/metal-installer-secureboot/${ID}:v1.12.2`);
});

test('a disk-image-only cloud: its disk image, no installation section, no extra assets', async () => {
  const m = await modelOf('target=cloud&version=1.12.2&platform=aws&arch=arm64');
  expect(pageAssets(m).map((a) => a.path)).toEqual(['aws-arm64.raw.xz']);
  expect(m.installRef).toBeUndefined();
  expect(m.pxeUrl).toBeUndefined();
  expect(m.upgradeRef).toBe(`f.example:8443/aws-installer/${ID}:v1.12.2`);
  const hcloud = await modelOf('target=cloud&version=1.12.2&platform=hcloud');
  expect(pageAssets(hcloud).map((a) => a.path)).toEqual(['hcloud-amd64.raw.xz']);
  const vultr = await modelOf('target=cloud&version=1.12.2&platform=vultr');
  expect(pageAssets(vultr).map((a) => a.path)).toEqual(['vultr-amd64.iso']);
  expect(vultr.installRef).toBe(`f.example:8443/vultr-installer/${ID}:v1.12.2`);
});

test('boards: metal-arm64.raw.xz; before Talos 1.10 the installer is the generic one', async () => {
  const m = await modelOf('target=sbc&version=1.7.7&board=rpi_generic');
  expect(pageAssets(m).map((a) => a.path)).toEqual(['metal-arm64.raw.xz']);
  expect(m.installRef).toBeUndefined();
  expect(m.upgradeRef).toBe(`f.example:8443/installer/${ID}:v1.7.7`);
  expect(m.localClusterCommand).toBeUndefined();
  expect(m.talosctlListUrl).toBeUndefined();
});
