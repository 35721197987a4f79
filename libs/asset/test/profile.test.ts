/**
 * The asset profile at the edge: version, path and enhancement checks in the anchor's order and texts (anchor-api
 * §1.3, §3.5–3.6), the identity (hence key) the profile names, and what each output kind carries.
 */
import type { ExtensionEntry, OverlayEntry } from '@factory/catalog';
import { FactoryError, JobVanishedError } from '@factory/errors';
import { parseSchematic } from '@factory/schematic';
import { formatAssetPath, parseAssetPath, parsePxePath } from '@factory/talos';
import { createHash } from 'node:crypto';
import { AssetProfile, assetKey, buildSpecOf, CatalogView, completeProfile, ensureAsset, resolveAssetProfile, secureBootSignerId } from '../src';

const VERSIONS = ['v1.6.7', 'v1.7.7', 'v1.11.3', 'v1.12.2'];
const ext = (name: string): ExtensionEntry => ({ name, ref: `ghcr.io/${name}:1`, digest: `sha256:${'a'.repeat(63)}${name.length % 10}`, author: '', description: '' });
const CATALOG_EXTENSIONS = [ext('siderolabs/hello'), ext('siderolabs/gasket-driver'), ext('siderolabs/intel-ucode')];
const OVERLAYS: OverlayEntry[] = [{ name: 'rpi_generic', image: 'siderolabs/sbc-raspberrypi', ref: 'ghcr.io/siderolabs/sbc-raspberrypi:v0.1.0', digest: `sha256:${'b'.repeat(64)}` }];

/** A catalog that counts what it was asked. */
function catalog(): CatalogView & { calls: string[] } {
  const calls: string[] = [];
  const available = (tag: string) => {
    if (!VERSIONS.includes(tag)) throw new FactoryError(404, `version ${tag.slice(1)} is not available`);
  };
  return {
    calls,
    versions: async () => (calls.push('versions'), VERSIONS),
    extensions: async (tag) => (calls.push(`extensions ${tag}`), available(tag), CATALOG_EXTENSIONS),
    overlays: async (tag) => (calls.push(`overlays ${tag}`), available(tag), OVERLAYS),
  };
}

async function profileOf(yaml: string, rawVersion: string, path: string, c: CatalogView = catalog(), pxe = false): Promise<AssetProfile> {
  const schematic = parseSchematic(yaml);
  return resolveAssetProfile(
    {
      schematicId: 'f'.repeat(64),
      schematic,
      schematicYaml: yaml,
      rawVersion,
      parsePath: () => (pxe ? parsePxePath(path) : parseAssetPath(path)),
      assetPath: (r) => (pxe ? `cmdline-${r.platform}-${r.arch}` : formatAssetPath(r)),
    },
    c,
  );
}

async function failure(p: Promise<unknown>): Promise<[number, string]> {
  try {
    await p;
  } catch (err) {
    if (err instanceof FactoryError) return [err.status, err.message];
    throw err;
  }
  throw new Error('expected a FactoryError');
}

const PLAIN = 'customization:\n  extraKernelArgs:\n    - vga=791\n';
const WITH_EXTENSIONS = 'customization:\n  systemExtensions:\n    officialExtensions:\n      - siderolabs/hello\n      - siderolabs/gasket\n';
const WITH_OVERLAY = 'overlay:\n  image: siderolabs/sbc-raspberrypi\n  name: rpi_generic\n  options:\n    configTxtAppend: dtoverlay=x\ncustomization: {}\n';
const EMBEDDED = 'customization:\n  embeddedMachineConfiguration: |\n    apiVersion: v1alpha1\n    kind: HostnameConfig\n';

describe('errors in the anchor order and texts', () => {
  test('malformed version, then path, then enhancement', async () => {
    expect(await failure(profileOf(PLAIN, 'abc', 'metal-amd64.ssd'))).toEqual([400, 'invalid version "abc": expected a semantic version such as v1.11.0']);
    expect(await failure(profileOf(PLAIN, 'v1.11.3', 'metal-amd64.ssd'))).toEqual([400, 'error parsing profile from path: invalid profile path: "metal-amd64.ssd"']);
    expect(await failure(profileOf(PLAIN, 'v1.11.3', 'kernel-foo'))).toEqual([400, 'error parsing profile from path: invalid architecture: "foo"']);
    expect(await failure(profileOf(PLAIN, 'v1.11.3', 'nowhere-amd64.iso'))).toEqual([400, 'error parsing profile from path: unknown platform: "nowhere"']);
    expect(await failure(profileOf(PLAIN, 'v1.11.3', 'metal', catalog(), true))).toEqual([400, 'error parsing profile from path: invalid platform-arch: "metal"']);
  });

  test('secure boot is refused before anything is looked up', async () => {
    const c = catalog();
    expect(await failure(profileOf(WITH_EXTENSIONS, 'v1.11.3', 'metal-amd64-secureboot.iso', c))).toEqual([400, 'error enhancing profile from schematic: secure boot is disabled']);
    expect(await failure(profileOf(PLAIN, 'v1.11.3', 'metal-amd64-secureboot', c, true))).toEqual([400, 'error enhancing profile from schematic: secure boot is disabled']);
    expect(c.calls).toEqual([]);
  });

  describe('Secure Boot enabled (the signing service offers a certificate)', () => {
    const CERT_SHA = 'c'.repeat(64);
    const sbCatalog = (): CatalogView & { calls: string[] } => Object.assign(catalog(), { secureBoot: async () => ({ signerId: CERT_SHA }) });
    const SB = (enroll: string) => `customization:\n  secureboot:\n    enrollKeys: ${enroll}\n    includeWellKnownCertificates: true\n`;

    test('a Secure Boot profile names the signing certificate: a rotated key gives other asset keys', async () => {
      const p = await profileOf(PLAIN, 'v1.11.3', 'metal-amd64-secureboot.iso', sbCatalog());
      expect(p).toMatchObject({ secureboot: true, signer: CERT_SHA, kind: 'iso' });
      expect(buildSpecOf(p).signer).toBe(CERT_SHA);
      const rotated = Object.assign(catalog(), { secureBoot: async () => ({ signerId: 'd'.repeat(64) }) });
      expect(assetKey(await profileOf(PLAIN, 'v1.11.3', 'metal-amd64-secureboot.iso', rotated))).not.toBe(assetKey(p));
      // outputs that are not signed keep the keys they had
      const plain = await profileOf(PLAIN, 'v1.11.3', 'metal-amd64.iso', sbCatalog());
      expect(plain.signer).toBeUndefined();
      expect(assetKey(plain)).toBe(assetKey(await profileOf(PLAIN, 'v1.11.3', 'metal-amd64.iso')));
    });

    test('enrollKeys: validated for Secure Boot outputs only (the anchor text), applied to ISOs and disk images only', async () => {
      expect(await failure(profileOf(SB('sometimes'), 'v1.11.3', 'metal-amd64-secureboot.iso', sbCatalog()))).toEqual([
        400,
        'error enhancing profile from schematic: invalid secureboot enrollKeys value "sometimes": sometimes does not belong to SDBootEnrollKeys values',
      ]);
      expect(await failure(profileOf(SB('sometimes'), 'v1.11.3', 'metal-amd64-secureboot-uki.efi', sbCatalog()))).toEqual([
        400,
        'error enhancing profile from schematic: invalid secureboot enrollKeys value "sometimes": sometimes does not belong to SDBootEnrollKeys values',
      ]);
      // not a Secure Boot output: the value is never looked at
      expect((await profileOf(SB('sometimes'), 'v1.11.3', 'metal-amd64.iso', sbCatalog())).enrollKeys).toBeUndefined();
      expect(await profileOf(SB('force'), 'v1.11.3', 'metal-amd64-secureboot.iso', sbCatalog())).toMatchObject({ enrollKeys: 'force', includeWellKnownCertificates: true });
      expect((await profileOf(SB('manual'), 'v1.11.3', 'metal-amd64-secureboot.raw.xz', sbCatalog())).enrollKeys).toBe('manual');
      const uki = await profileOf(SB('force'), 'v1.11.3', 'metal-amd64-secureboot-uki.efi', sbCatalog());
      expect(uki.enrollKeys).toBeUndefined();
      expect(uki.includeWellKnownCertificates).toBe(true);
    });

    test('the anchor order: embedded configuration before Secure Boot, Secure Boot before the overlay', async () => {
      expect(await failure(profileOf(EMBEDDED, 'v1.11.3', 'metal-amd64-secureboot.iso'))).toEqual([400, 'error enhancing profile from schematic: embedding configuration is not supported for Talos version v1.11.3']);
      expect(await failure(profileOf(WITH_OVERLAY, 'v1.6.7', 'metal-arm64-secureboot.raw.xz'))).toEqual([400, 'error enhancing profile from schematic: secure boot is disabled']);
    });
  });

  test('overlay and embedded configuration gates apply to outputs that carry extensions only', async () => {
    expect(await failure(profileOf(WITH_OVERLAY, 'v1.6.7', 'metal-arm64.raw.xz'))).toEqual([400, 'error enhancing profile from schematic: overlay is not supported for Talos version v1.6.7']);
    expect((await profileOf(WITH_OVERLAY, 'v1.6.7', 'kernel-arm64')).overlay).toBeUndefined();
    expect(await failure(profileOf(EMBEDDED, 'v1.11.3', 'metal-amd64.iso'))).toEqual([400, 'error enhancing profile from schematic: embedding configuration is not supported for Talos version v1.11.3']);
    expect((await profileOf(EMBEDDED, 'v1.11.3', 'cmdline-metal-amd64')).embeddedConfig).toBeUndefined();
    expect((await profileOf(EMBEDDED, 'v1.12.2', 'metal-amd64.iso')).embeddedConfig).toBe('apiVersion: v1alpha1\nkind: HostnameConfig\n');
  });

  test('extensions: unknown → 400, version not available → 404 through the catalog', async () => {
    const only = 'customization:\n  systemExtensions:\n    officialExtensions:\n      - siderolabs/nope\n';
    expect(await failure(profileOf(only, 'v1.11.3', 'initramfs-amd64.xz'))).toEqual([400, 'error enhancing profile from schematic: official extension "siderolabs/nope" is not available for Talos version v1.11.3']);
    expect(await failure(profileOf(WITH_EXTENSIONS, '1.4.0', 'initramfs-amd64.xz'))).toEqual([404, 'error enhancing profile from schematic: error getting official extensions: version 1.4.0 is not available']);
  });

  test('version not available: the anchor text per output kind', async () => {
    expect(await failure(profileOf(PLAIN, '1.4.0', 'kernel-amd64'))).toEqual([404, 'failed to get kernel: version 1.4.0 is not available']);
    expect(await failure(profileOf(PLAIN, 'v1.4.0', 'metal-amd64.iso'))).toEqual([404, 'failed to get kernel: version 1.4.0 is not available']);
    expect(await failure(profileOf(PLAIN, 'v1.4.0', 'installer-amd64.tar'))).toEqual([404, 'error enhancing profile from schematic: failed to get base installer: version 1.4.0 is not available']);
  });

  test('unknown overlay name → 400; overlay.image is never what selects it', async () => {
    const other = WITH_OVERLAY.replace('name: rpi_generic', 'name: rock64');
    expect(await failure(profileOf(other, 'v1.11.3', 'metal-arm64.raw.xz'))).toEqual([400, 'error enhancing profile from schematic: overlay "rock64" is not available for Talos version v1.11.3']);
    const spoofed = WITH_OVERLAY.replace('image: siderolabs/sbc-raspberrypi', 'image: evil.example/pwn');
    expect((await profileOf(spoofed, 'v1.11.3', 'metal-arm64.raw.xz')).overlay).toEqual({ name: 'rpi_generic', image: 'siderolabs/sbc-raspberrypi', digest: OVERLAYS[0].digest });
  });

  test('disk sector size other than 512 or 4096 → 400 for disk images only', async () => {
    const odd = 'customization:\n  diskImage:\n    sectorSize: 1024\n';
    expect(await failure(profileOf(odd, 'v1.11.3', 'metal-amd64.raw.xz'))).toEqual([400, 'error enhancing profile from schematic: unsupported disk sector size 1024: use 512 or 4096']);
    expect((await profileOf(odd, 'v1.11.3', 'metal-amd64.iso')).kind).toBe('iso');
  });
});

describe('the build job carries references; the worker derives the same profile', () => {
  const CUSTOMIZED =
    'customization:\n  extraKernelArgs:\n    - vga=791\n  meta:\n    - key: 10\n      value: ' + 'm'.repeat(5000) + '\n  embeddedMachineConfiguration: |\n    apiVersion: v1alpha1\n    kind: HostnameConfig\n  systemExtensions:\n    officialExtensions:\n      - siderolabs/hello\n  bootloader: sd-boot\n  diskImage:\n    sectorSize: 4096\n';
  test.each([
    ['metal-amd64.raw.xz', 'v1.12.2'],
    ['metal-amd64.iso', 'v1.12.2'],
    ['kernel-amd64', 'v1.11.3'],
    ['cmdline-metal-amd64', 'v1.11.3'],
  ])('%s: the spec has no schematic content, same asset key, and completes to the edge profile', async (path, version) => {
    const p = await profileOf(CUSTOMIZED, version, path);
    const spec = buildSpecOf(p);
    const carried = JSON.stringify(spec);
    for (const content of ['vga=791', 'mmmmm', 'HostnameConfig', 'sd-boot', 'customization']) expect(carried).not.toContain(content);
    expect(carried.length).toBeLessThan(1024);
    expect(assetKey(spec)).toBe(assetKey(p));
    expect(completeProfile(spec, parseSchematic(CUSTOMIZED), CUSTOMIZED)).toEqual(p);
  });
});

describe('what a resolved profile carries', () => {
  test('extensions resolved by name and alias, pinned by digest, in schematic order', async () => {
    const p = await profileOf(WITH_EXTENSIONS, '1.11.3', 'metal-x86_64.iso');
    expect(p).toMatchObject({ version: 'v1.11.3', kind: 'iso', platform: 'metal', arch: 'amd64', secureboot: false, outFormat: 'raw', path: 'metal-amd64.iso' });
    expect(p.extensions).toEqual([
      { name: 'siderolabs/hello', digest: CATALOG_EXTENSIONS[0].digest },
      { name: 'siderolabs/gasket-driver', digest: CATALOG_EXTENSIONS[1].digest },
    ]);
    expect(p.schematicYaml).toBe(WITH_EXTENSIONS);
  });

  test('kernel and cmdline carry no extensions and ask no catalog for them', async () => {
    const c = catalog();
    const p = await profileOf(WITH_EXTENSIONS, 'v1.11.3', 'kernel-amd64', c);
    expect(p.extensions).toEqual([]);
    expect(c.calls).toEqual(['versions']);
  });

  test('customization is carried for the recipes; the key is the identity only', async () => {
    const yaml = 'customization:\n  extraKernelArgs:\n    - a=1\n  meta:\n    - key: 10\n      value: x\n  bootloader: sd-boot\n';
    const p = await profileOf(yaml, 'v1.12.2', 'metal-amd64.qcow2');
    expect(p).toMatchObject({ extraKernelArgs: ['a=1'], meta: [{ key: 10, value: 'x' }], bootloader: 'sd-boot', sectorSize: 512, disk: { format: 'qcow2', formatOptions: 'cluster_size=8k' } });
    const same = await profileOf(yaml, 'v1.12.2', 'metal-x86_64.qcow2');
    expect(assetKey(same)).toBe(assetKey(p));
    expect(assetKey(await profileOf(yaml, 'v1.12.2', 'metal-amd64.raw'))).not.toBe(assetKey(p));
  });

  test('the asset key is stable (objects stored before this change keep their names)', () => {
    const identity = { schematicId: 'f'.repeat(64), version: 'v1.11.3', kind: 'iso' as const, platform: 'metal', arch: 'amd64' as const, secureboot: false, outFormat: 'raw' as const, path: 'metal-amd64.iso' };
    // sha256 of {"recipe":1,"schematicId":…,"version":"v1.11.3","kind":"iso",…,"disk":null}, as libs/queue computed it
    expect(assetKey(identity)).toBe('dfe99b4607a9863d6130a22c584bb45028be95c7a0b08e474bbfaf49191d4477');
  });
});

describe('ensureAsset', () => {
  const info = { key: 'k', size: 3, sha256: 'c'.repeat(64), contentType: 'application/x-iso9660-image', etag: 'e', metadata: { sha512: 'd'.repeat(128) } };
  const record = (key: string) => ({ key, size: 3, sha256: 'c'.repeat(64), sha512: 'd'.repeat(128), contentType: 'application/x-iso9660-image' });
  const signature = Buffer.from('{"signature":"x"}');
  /** A store holding the asset (and its signature file) once `published()` says so. */
  const lookup = (published: () => boolean, signed = true) => ({
    head: async () => (published() ? info : null),
    getBuffer: async (key: string) => (published() && signed && key.endsWith('.sig') ? signature : null),
  });

  test('a published asset is answered without a job; a missing one is one job named by its key', async () => {
    const p = await profileOf(PLAIN, 'v1.11.3', 'metal-amd64.iso');
    const calls: Array<{ jobId: string; key: string }> = [];
    let built = false;
    const jobs = { call: async (_n: 'build.asset', payload: { key: string }, o: { jobId: string }) => (calls.push({ jobId: o.jobId, key: payload.key }), (built = true), record(`assets/${payload.key}`)) };
    const hit = await ensureAsset(jobs, lookup(() => true), p, { timeoutMs: 1000 });
    expect(hit).toEqual({ record: record(`assets/${assetKey(p)}`), validator: '3:e:', signature });
    expect(calls).toEqual([]);
    expect((await ensureAsset(jobs, lookup(() => built), p, { timeoutMs: 1000 })).record.key).toBe(`assets/${assetKey(p)}`);
    expect(calls).toEqual([{ jobId: `asset-${assetKey(p)}`, key: assetKey(p) }]);
  });

  test('not published until its signature file is written: the build job completes it', async () => {
    const p = await profileOf(PLAIN, 'v1.11.3', 'metal-amd64.iso');
    let signed = false;
    const jobs = { call: async () => ((signed = true), record('x')) };
    const store = { head: async () => info, getBuffer: async () => (signed ? signature : null) };
    expect((await ensureAsset(jobs, store, p, { timeoutMs: 1000 })).signature).toBe(signature);
    expect(signed).toBe(true);
  });

  test('a job removed before its result was read: the published object answers', async () => {
    const p = await profileOf(PLAIN, 'v1.11.3', 'metal-amd64.iso');
    let heads = 0;
    const store = lookup(() => heads++ > 0);
    const jobs = {
      call: async (): Promise<never> => {
        throw new JobVanishedError('x');
      },
    };
    expect((await ensureAsset(jobs, store, p, { timeoutMs: 1000 })).record.sha256).toBe(info.sha256);
  });
});

describe('limits of what Talos can boot with, refused before a build', () => {
  const metaYaml = (value: string, key = 10) => `customization:\n  meta:\n    - key: ${key}\n      value: '${value}'\n`;
  const argYaml = (arg: string) => `customization:\n  extraKernelArgs:\n    - ${arg}\n`;

  test('a META value larger than the META partition holds: 400 for disk images (every build used to fail with "ADV overflow")', async () => {
    const [status, message] = await failure(profileOf(metaYaml('x'.repeat(1024 * 1024)), 'v1.11.3', 'metal-amd64.raw.zst'));
    expect(status).toBe(400);
    expect(message).toMatch(/^error enhancing profile from schematic: META values take 1048601 bytes \(8 per key plus the value\), more than the 262104 bytes the META partition holds$/);
  });

  test('META that just fits (with the bootloader key the imager may add) is accepted for disk images', async () => {
    const fits = 262104 - 2 * 8 - 'dual-boot'.length;
    await expect(profileOf(metaYaml('x'.repeat(fits)), 'v1.11.3', 'metal-amd64.raw.zst')).resolves.toMatchObject({ kind: 'image' });
    expect((await failure(profileOf(metaYaml('x'.repeat(fits + 1)), 'v1.11.3', 'metal-amd64.raw.zst')))[0]).toBe(400);
  });

  test('META key 0 cannot be written into a disk image', async () => {
    expect(await failure(profileOf(metaYaml('a', 0), 'v1.11.3', 'metal-amd64.raw.xz'))).toEqual([400, 'error enhancing profile from schematic: META key 0 is reserved (it ends the META record list)']);
  });

  test('a 70 KB kernel argument: 400 for every output that carries a command line (PXE used to answer 500)', async () => {
    const yaml = argYaml(`foo=${'y'.repeat(70 * 1024)}`);
    for (const [path, pxe] of [['metal-amd64', true], ['cmdline-metal-amd64', false], ['metal-amd64.iso', false], ['metal-amd64.raw.xz', false], ['installer-amd64.tar', false]] as const) {
      const [status, message] = await failure(profileOf(yaml, 'v1.11.3', path, catalog(), pxe));
      expect([path, status]).toEqual([path, 400]);
      expect(message).toMatch(/^error enhancing profile from schematic: kernel command line is \d+ bytes, more than the 2047 bytes Linux accepts/);
    }
    // kernel and initramfs carry no command line
    await expect(profileOf(yaml, 'v1.11.3', 'kernel-amd64')).resolves.toMatchObject({ kind: 'kernel' });
  });

  test('a large META value counts against the command line of non-disk outputs (as talos.environment)', async () => {
    const yaml = metaYaml(Array.from({ length: 4000 }, (_, i) => (i * 7919) % 9973).join(','));
    expect((await failure(profileOf(yaml, 'v1.11.3', 'metal-amd64.iso')))[0]).toBe(400);
    // a disk image writes META into its partition instead
    await expect(profileOf(yaml, 'v1.11.3', 'metal-amd64.raw.xz')).resolves.toMatchObject({ kind: 'image' });
  });

  test('ordinary schematics are unaffected', async () => {
    await expect(profileOf(metaYaml('{"externalIPs":["1.2.3.4"]}'), 'v1.11.3', 'metal-amd64.iso')).resolves.toMatchObject({ kind: 'iso' });
    await expect(profileOf(argYaml('x'.repeat(1500)), 'v1.11.3', 'metal-amd64', catalog(), true)).resolves.toMatchObject({ kind: 'cmdline' });
  });
});

describe('secureBootSignerId: the certificates a Secure Boot asset is signed with and enrols', () => {
  const cert = '-----BEGIN CERTIFICATE-----\nsigning\n-----END CERTIFICATE-----\n';
  const pk = '-----BEGIN CERTIFICATE-----\npk\n-----END CERTIFICATE-----\n';
  const kek = '-----BEGIN CERTIFICATE-----\nkek\n-----END CERTIFICATE-----\n';

  test('the signing certificate alone is named by its SHA-256, as in earlier versions (existing asset keys stay)', () => {
    expect(secureBootSignerId({ signingCertPem: cert })).toBe(createHash('sha256').update(cert).digest('hex'));
    expect(secureBootSignerId({ signingCertPem: cert, pkCertPem: '', kekCertPem: undefined })).toBe(createHash('sha256').update(cert).digest('hex'));
  });

  test('own PK and KEK certificates each give another name, and so other asset keys', () => {
    const names = [
      secureBootSignerId({ signingCertPem: cert }),
      secureBootSignerId({ signingCertPem: cert, pkCertPem: pk }),
      secureBootSignerId({ signingCertPem: cert, kekCertPem: kek }),
      secureBootSignerId({ signingCertPem: cert, pkCertPem: pk, kekCertPem: kek }),
      // the same certificate as PK or as KEK is not the same configuration
      secureBootSignerId({ signingCertPem: cert, pkCertPem: kek }),
      secureBootSignerId({ signingCertPem: cert, pkCertPem: pk, kekCertPem: pk }),
    ];
    expect(new Set(names).size).toBe(names.length);
    for (const n of names) expect(n).toMatch(/^[0-9a-f]{64}$/);
    const identity = { schematicId: 'a'.repeat(64), version: 'v1.12.2', kind: 'iso', platform: 'metal', arch: 'amd64', secureboot: true, outFormat: 'raw', path: 'metal-amd64-secureboot.iso' } as const;
    expect(assetKey({ ...identity, signer: names[0] })).not.toBe(assetKey({ ...identity, signer: names[3] }));
  });
});
