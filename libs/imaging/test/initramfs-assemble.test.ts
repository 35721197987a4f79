/**
 * assembleInitramfs and its building blocks (talos-formats §3.4, §4): manifest/extensions.yaml bytes, string-sorted
 * extension order, determinism, xz vs zstd by version, microcode prepend + firmware move, depmod -> modules.dep.sqsh,
 * compatibility checks, SELinux labels in the squashfs, and the cpio writer against GNU cpio.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CpioNode, newcArchive } from '@factory/archive';
import { parseSemver } from '@factory/talos';
import {
  assembleInitramfs,
  constraintAllows,
  EMBEDDED_CONFIG_SELINUX_LABEL,
  ExtensionCompatibilityError,
  ExtensionDir,
  extractLayers,
  loadExtension,
  mksquashfsTree,
  parseManifest,
  schematicManifestYaml,
  writeEmbeddedConfigExtension,
  writeSchematicExtension,
} from '../src/initramfs';
import { readCpio, readImageFiles, readReleases, resolveImage } from '../../../tools/demo-releases/src';
import { DEMO_DIR } from '../../../test/support/demo-imager';
import { extensionsYamlVector, SCHEMATIC_MANIFEST_VECTOR } from '../../../test/support/vectors';

const DEMO = DEMO_DIR;
const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');
const EMPTY_SCHEMATIC_ID = '376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba';

let tmp: string;
let n = 0;
const scratch = (name: string) => path.join(tmp, `${name}-${n++}`);

beforeAll(() => {
  if (!fs.existsSync(path.join(DEMO, 'releases.json'))) throw new Error(`demo releases missing in ${DEMO} (run scripts/setup.sh / tools/demo-releases build)`);
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'initramfs-assemble-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

// ---------------------------------------------------------------------------------------------------------------
// helpers

const bases = new Map<string, string>();
/** The demo imager's amd64 initramfs.xz for a Talos version (cached on disk). */
function demoBase(version: string): string {
  let p = bases.get(version);
  if (!p) {
    const files = readImageFiles(path.join(DEMO, 'oci/siderolabs/imager'), version);
    p = path.join(tmp, `base-${version}.xz`);
    fs.writeFileSync(p, files.get('usr/install/amd64/initramfs.xz')!.data);
    bases.set(version, p);
  }
  return p;
}

function demoTag(version: string, name: string): string {
  return readReleases(DEMO)!.versions.find((v) => v.version === version)!.extensions.find((e) => e.name === name)!.tag;
}

async function demoExtension(version: string, name: string): Promise<ExtensionDir> {
  const layout = path.join(DEMO, 'oci/siderolabs', name);
  const img = resolveImage(layout, demoTag(version, name), 'amd64');
  const dir = scratch(name);
  const { selinux } = await extractLayers(
    img.manifest.layers.map((l) => async () => fs.createReadStream(path.join(layout, 'blobs/sha256', l.digest.replace(/^sha256:/, '')))),
    dir,
  );
  return { dir, selinux };
}

function manifestYaml(o: { name: string; version: string; constraint?: string; author?: string; description?: string }): string {
  return [
    'version: v1alpha1',
    'metadata:',
    `  name: ${o.name}`,
    `  version: "${o.version}"`,
    `  author: ${o.author ?? 'Test'}`,
    '  description: |',
    `    ${o.description ?? `${o.name} test extension.`}`,
    '  compatibility:',
    '    talos:',
    `      version: "${o.constraint ?? '>= v1.0.0'}"`,
    '',
  ].join('\n');
}

/** A plain extension directory with the given rootfs files (path -> content or {data, mode}). */
function makeExt(o: { name: string; version: string; constraint?: string; author?: string; description?: string; files?: Record<string, string | Buffer | { data: string | Buffer; mode: number }> }): ExtensionDir {
  const dir = scratch(`ext-${o.name}`);
  fs.mkdirSync(path.join(dir, 'rootfs'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'manifest.yaml'), manifestYaml(o));
  for (const [rel, v] of Object.entries(o.files ?? {})) {
    const p = path.join(dir, 'rootfs', rel);
    fs.mkdirSync(path.dirname(p), { recursive: true });
    const data = typeof v === 'string' || Buffer.isBuffer(v) ? v : v.data;
    fs.writeFileSync(p, data);
    fs.chmodSync(p, typeof v === 'string' || Buffer.isBuffer(v) ? 0o644 : v.mode);
  }
  return { dir };
}

interface Output {
  raw: Buffer;
  early: ReturnType<typeof readCpio>;
  earlyBytes: Buffer;
  appended: Buffer;
  appendedCpio: Buffer;
  late: ReturnType<typeof readCpio>;
}

/** Split an assembled initramfs into [early cpio] + base + appended and decode the parts. */
function readOutput(out: string, base: string): Output {
  const raw = fs.readFileSync(out);
  const b = fs.readFileSync(base);
  const off = raw.indexOf(b);
  expect(off).toBeGreaterThanOrEqual(0);
  const earlyBytes = raw.subarray(0, off);
  const appended = raw.subarray(off + b.length);
  const tool = appended[0] === 0xfd ? 'xz' : 'zstd';
  const appendedCpio = execFileSync(tool, ['-dc'], { input: appended, maxBuffer: 1 << 30 });
  return { raw, early: readCpio(earlyBytes), earlyBytes, appended, appendedCpio, late: readCpio(appendedCpio) };
}

function unsquash(file: string): { dir: string; list: string[]; info: string } {
  const dir = scratch('unsquash');
  execFileSync('unsquashfs', ['-no-xattrs', '-n', '-d', dir, file], { stdio: 'ignore' });
  const list = execFileSync('unsquashfs', ['-lls', file], { encoding: 'utf8' })
    .split('\n')
    .filter((l) => l.includes('squashfs-root'))
    .map((l) => l.replace(/^.*squashfs-root/, '') || '/');
  const info = execFileSync('unsquashfs', ['-s', file], { encoding: 'utf8' });
  return { dir, list, info };
}

/** Hash of a whole tree (paths, types, modes, contents, link targets) to prove inputs are not modified. */
function treeHash(root: string): string {
  const h = createHash('sha256');
  const walk = (d: string, rel: string) => {
    for (const name of fs.readdirSync(d).sort()) {
      const p = path.join(d, name);
      const st = fs.lstatSync(p);
      h.update(`${rel}/${name} ${st.mode}\n`);
      if (st.isDirectory()) walk(p, `${rel}/${name}`);
      else if (st.isSymbolicLink()) h.update(fs.readlinkSync(p));
      else h.update(fs.readFileSync(p));
    }
  };
  walk(root, '');
  return h.digest('hex');
}

// ---------------------------------------------------------------------------------------------------------------

describe('virtual extensions', () => {
  test('schematic manifest.yaml is byte-identical to the talos-formats §3.4 rendering', async () => {
    const expected = SCHEMATIC_MANIFEST_VECTOR;
    const o = { id: EMPTY_SCHEMATIC_ID, canonicalYaml: 'customization: {}\n', externalUrl: 'https://factory.talos.dev', version: 'v1.11.3' };
    expect(schematicManifestYaml(o)).toBe(expected);
    const dir = scratch('schematic');
    await writeSchematicExtension(dir, o);
    expect(fs.readFileSync(path.join(dir, 'manifest.yaml'), 'utf8')).toBe(expected);
    expect(fs.statSync(path.join(dir, 'manifest.yaml')).mode & 0o777).toBe(0o644);
    for (const d of ['rootfs', 'rootfs/usr', 'rootfs/usr/local', 'rootfs/usr/local/share', 'rootfs/usr/local/share/schematic']) {
      expect(fs.statSync(path.join(dir, d)).mode & 0o777).toBe(0o755);
    }
    const idFile = path.join(dir, 'rootfs/usr/local/share/schematic', EMPTY_SCHEMATIC_ID);
    expect(fs.statSync(idFile).size).toBe(0);
    expect(fs.statSync(idFile).mode & 0o777).toBe(0o644);
    expect(fs.readdirSync(dir).sort()).toEqual(['manifest.yaml', 'rootfs']);
    // the manifest round-trips through the Talos loader
    expect((await loadExtension(dir)).manifest.metadata).toEqual({
      name: 'schematic',
      version: EMPTY_SCHEMATIC_ID,
      author: 'Image Factory (https://factory.talos.dev)',
      description: 'Virtual extension which specifies the schematic of the image built with schematic.',
      compatibility: { talos: { version: '>= 1.0.0' } },
      extraInfo: 'customization: {}\n',
    });
  });

  test('schematic extension has no extraInfo before Talos 1.7', () => {
    const y = schematicManifestYaml({ id: EMPTY_SCHEMATIC_ID, canonicalYaml: 'customization: {}\n', externalUrl: 'https://f.example', version: 'v1.6.7' });
    expect(y).not.toContain('extraInfo');
    expect(y.endsWith("            version: '>= 1.0.0'\n")).toBe(true);
  });

  test('embedded-config extension: sha256 version, 0400 config, SELinux label', async () => {
    const dir = scratch('embedded');
    const config = 'version: v1alpha1\nmachine:\n  type: worker\n';
    const { selinux } = await writeEmbeddedConfigExtension(dir, config);
    expect(fs.readFileSync(path.join(dir, 'manifest.yaml'), 'utf8')).toBe(
      [
        'version: v1alpha1',
        'metadata:',
        '    name: embedded-config',
        `    version: ${sha256(config)}`,
        '    author: Imager',
        '    description: Virtual extension which embeds the machine configuration.',
        '    compatibility:',
        '        talos:',
        "            version: '>= 1.0.0'",
        '',
      ].join('\n'),
    );
    const cfg = path.join(dir, 'rootfs/usr/local/etc/talos/config.yaml');
    expect(fs.readFileSync(cfg, 'utf8')).toBe(config);
    expect(fs.statSync(cfg).mode & 0o777).toBe(0o400);
    expect([...selinux]).toEqual([['rootfs/usr/local/etc/talos/config.yaml', 'system_u:object_r:system_state_t:s0']]);
  });
});

describe('manifests and compatibility ranges', () => {
  test('manifest decoding follows go-yaml string semantics', () => {
    const m = parseManifest('version: v1alpha1\nmetadata:\n  name: x\n  version: 1.10\n  author: ~\n  description: >\n    folded\n    text\n  compatibility:\n    talos:\n      version: ">= v1.7.0"\n  extraInfo: ""\n');
    expect(m).toEqual({
      version: 'v1alpha1',
      metadata: { name: 'x', version: '1.10', author: '', description: 'folded text\n', compatibility: { talos: { version: '>= v1.7.0' } } },
    });
    expect(() => parseManifest('version: v1alpha1\nmetadata:\n  name: a\n  name: b\n')).toThrow();
    expect(() => parseManifest('')).toThrow('EOF');
  });

  test('extension directory validation like extensions.Load', async () => {
    const bad = makeExt({ name: 'bad', version: '1' });
    fs.writeFileSync(path.join(bad.dir, 'extra.txt'), 'x');
    await expect(loadExtension(bad.dir)).rejects.toThrow('unexpected file "extra.txt"');
    const noRoot = makeExt({ name: 'noroot', version: '1' });
    fs.rmSync(path.join(noRoot.dir, 'rootfs'), { recursive: true });
    await expect(loadExtension(noRoot.dir)).rejects.toThrow('extension rootfs is missing');
    const noManifest = makeExt({ name: 'nomanifest', version: '1' });
    fs.rmSync(path.join(noManifest.dir, 'manifest.yaml'));
    await expect(loadExtension(noManifest.dir)).rejects.toThrow('extension manifest is missing');
    const v2 = makeExt({ name: 'v2', version: '1' });
    fs.writeFileSync(path.join(v2.dir, 'manifest.yaml'), 'version: v1alpha2\nmetadata:\n  name: v2\n');
    await expect(loadExtension(v2.dir)).rejects.toThrow('unsupported manifest version: "v1alpha2"');
  });

  test('blang/semver ranges against the core Talos version', () => {
    const v = (s: string) => parseSemver(s)!;
    const cases: Array<[string, string, boolean]> = [
      ['', '1.0.0', true],
      ['>= v1.7.0', '1.11.3', true],
      ['>= v1.7.0', '1.6.9', false],
      ['>=v1.7.0', '1.7.0', true],
      ['>= 1.0.0', '1.2.0', true],
      ['>=1.5.0 <2.0.0', '1.11.3', true],
      ['>=1.5.0 <2.0.0', '2.0.0', false],
      ['>= v1.5.0 < v1.8.0', '1.8.0', false],
      ['<1.0.0 || >=1.9.0', '1.9.1', true],
      ['<1.0.0 || >=1.9.0', '1.8.1', false],
      ['>= v9.0.0', '1.11.3', false],
      ['1.11.3', '1.11.3', true],
      ['=1.11.3', '1.11.4', false],
      ['!=1.11.3', '1.11.4', true],
      ['>1.10.x', '1.11.0', true],
      ['>1.10.x', '1.10.9', false],
      ['1.x', '1.99.0', true],
      ['1.x', '2.0.0', false],
      ['<=1.10.x', '1.10.7', true],
      // a pre-release Talos version is tested by its core version
      ['>= v1.11.0', '1.11.0-beta.1', true],
      ['<1.11.0', '1.11.0-alpha.1', false],
    ];
    for (const [c, ver, want] of cases) expect([c, ver, constraintAllows(c, v(ver))]).toEqual([c, ver, want]);
    expect(() => constraintAllows('>= banana', v('1.0.0'))).toThrow(/error parsing Talos version constraint/);
    expect(() => constraintAllows('~> 1.0', v('1.0.0'))).toThrow(/error parsing Talos version constraint/);
    expect(() => constraintAllows('|| >=1.0.0', v('1.0.0'))).toThrow(/error parsing Talos version constraint/);
  });
});

describe('cpio writer', () => {
  test('byte-identical to GNU `cpio -H newc --create --reproducible --quiet -R +0:+0`', async () => {
    const dir = scratch('cpio');
    fs.mkdirSync(path.join(dir, 'a/b/c'), { recursive: true });
    fs.mkdirSync(path.join(dir, 'a-z'));
    fs.writeFileSync(path.join(dir, 'a/b/f.bin'), Buffer.alloc(1001, 7));
    fs.writeFileSync(path.join(dir, 'a-z/g'), 'x');
    fs.writeFileSync(path.join(dir, 'e'), '');
    fs.chmodSync(path.join(dir, 'a/b/f.bin'), 0o600);
    fs.symlinkSync('../a/b/f.bin', path.join(dir, 'a/link'));
    const mtime = 1559424892;
    // the listing order the assembler uses: depth first, byte order, directories before contents
    const order = ['a', 'a/b', 'a/b/c', 'a/b/f.bin', 'a/link', 'a-z', 'a-z/g', 'e'];
    for (const p of order) execFileSync('touch', ['-h', '-d', `@${mtime}`, path.join(dir, p)]);
    const gnu = execFileSync('cpio', ['-H', 'newc', '--create', '--reproducible', '--quiet', '-R', '+0:+0'], { cwd: dir, input: `${order.join('\n')}\n` });
    const nodes: CpioNode[] = order.map((p) => {
      const st = fs.lstatSync(path.join(dir, p));
      if (st.isDirectory()) return { type: 'dir', path: p, mode: st.mode & 0o7777, nlink: st.nlink };
      if (st.isSymbolicLink()) return { type: 'symlink', path: p, target: fs.readlinkSync(path.join(dir, p)) };
      return { type: 'file', path: p, mode: st.mode & 0o7777, size: st.size, sources: [{ path: path.join(dir, p), size: st.size }] };
    });
    const chunks: Buffer[] = [];
    for await (const c of newcArchive(nodes, mtime)) chunks.push(c);
    expect(Buffer.concat(chunks).equals(gnu)).toBe(true);
  });
});

describe('assembleInitramfs', () => {
  const V = 'v1.11.3';

  test('extensions.yaml has the exact bytes of the talos-formats §4.3 shape (gvisor + schematic + modules.dep)', async () => {
    const dummy = await demoExtension(V, 'dummy-module');
    const kver = readReleases(DEMO)!.kernel.amd64!.version;
    const gvisor = makeExt({
      name: 'gvisor',
      version: '20231214.0-v1.7.0',
      author: 'Sidero Labs',
      constraint: '>= v1.7.0',
      description: "This system extension provides gVisor using containerd's runtime handler.",
      files: { [`usr/lib/modules/${kver}/extras/dummy.ko`]: fs.readFileSync(path.join(dummy.dir, `rootfs/usr/lib/modules/${kver}/extras/dummy.ko`)) },
    });
    const canonicalYaml = 'customization:\n    systemExtensions:\n        officialExtensions:\n            - siderolabs/gvisor\n';
    const schematic = scratch('schematic');
    await writeSchematicExtension(schematic, { id: EMPTY_SCHEMATIC_ID, canonicalYaml, externalUrl: 'https://factory.talos.dev', version: V });
    const out = scratch('out');
    const base = demoBase(V);
    const res = await assembleInitramfs({ base, version: V, extensions: [gvisor, { dir: schematic }], workDir: scratch('work'), out });
    expect(res.layers.map((l) => l.image)).toEqual(['0.sqsh', '1.sqsh', 'modules.dep.sqsh']);
    const yaml = readOutput(out, base).late.find((e) => e.path === 'extensions.yaml')!.data.toString();
    // talos-formats §4.3 verbatim, with the demo kernel's version instead of 6.18.44-talos
    expect(yaml).toBe(extensionsYamlVector(kver));
  }, 60000);

  test('12 extensions are ordered by directory name as strings (0, 1, 10, 11, 2, ...)', async () => {
    const exts = Array.from({ length: 12 }, (_, i) => makeExt({ name: `ext${i}`, version: `1.0.${i}`, files: { [`usr/local/etc/fixture-ext/ext${i}`]: `ext${i}\n` } }));
    const out = scratch('out');
    const base = demoBase(V);
    const res = await assembleInitramfs({ base, version: V, extensions: exts, workDir: scratch('work'), out });
    const order = [0, 1, 10, 11, 2, 3, 4, 5, 6, 7, 8, 9];
    expect(res.layers).toEqual(order.map((i) => ({ image: `${i}.sqsh`, name: `ext${i}`, version: `1.0.${i}` })));
    expect(res.modulesDep).toBe(false);
    expect(res.microcode).toEqual([]);
    const o = readOutput(out, base);
    expect(o.earlyBytes.length).toBe(0);
    // cpio listing: byte order of names, same as the layer order
    expect(o.late.map((e) => e.path)).toEqual([...order.map((i) => `${i}.sqsh`), 'extensions.yaml']);
    const yaml = o.late.find((e) => e.path === 'extensions.yaml')!.data.toString();
    expect([...yaml.matchAll(/- image: (\S+)\n {6}metadata:\n {8}name: (\S+)/g)].map((m) => `${m[1]}=${m[2]}`)).toEqual(order.map((i) => `${i}.sqsh=ext${i}`));
    // each squashfs carries its own extension's files
    for (const i of order) {
      const sq = path.join(scratch('sq'), `${i}.sqsh`);
      fs.mkdirSync(path.dirname(sq));
      fs.writeFileSync(sq, o.late.find((e) => e.path === `${i}.sqsh`)!.data);
      expect(unsquash(sq).list).toContain(`/usr/local/etc/fixture-ext/ext${i}`);
    }
  }, 120000);

  test('deterministic: same inputs twice give identical bytes, inputs unchanged', async () => {
    const exts = [
      await demoExtension(V, 'hello'),
      await demoExtension(V, 'intel-ucode'),
      await demoExtension(V, 'dummy-module'),
    ];
    const schematic = scratch('schematic');
    await writeSchematicExtension(schematic, { id: EMPTY_SCHEMATIC_ID, canonicalYaml: 'customization: {}\n', externalUrl: 'https://f.example', version: V });
    exts.push({ dir: schematic, selinux: undefined });
    const before = exts.map((e) => treeHash(e.dir));
    const a = scratch('out-a');
    const b = scratch('out-b');
    await assembleInitramfs({ base: demoBase(V), version: V, extensions: exts, workDir: scratch('work'), out: a });
    await assembleInitramfs({ base: demoBase(V), version: V, extensions: exts, workDir: scratch('work'), out: b });
    expect(sha256(fs.readFileSync(a))).toBe(sha256(fs.readFileSync(b)));
    expect(exts.map((e) => treeHash(e.dir))).toEqual(before);
    // a different SOURCE_DATE_EPOCH changes the bytes (mtimes are really taken from it)
    const c = scratch('out-c');
    await assembleInitramfs({ base: demoBase(V), version: V, extensions: exts, workDir: scratch('work'), out: c, sourceDateEpoch: 1700000000 });
    expect(sha256(fs.readFileSync(c))).not.toBe(sha256(fs.readFileSync(a)));
  }, 120000);

  test('layer cache: a cold and a warm cache give the bytes of no cache; a hit is really taken from the cache', async () => {
    const keyed = async (name: string) => ({ ...(await demoExtension(V, name)), contentKey: `demo ${name} ${V}` });
    const exts = [await keyed('hello'), await keyed('intel-ucode'), await keyed('dummy-module')];
    const schematic = scratch('schematic');
    await writeSchematicExtension(schematic, { id: EMPTY_SCHEMATIC_ID, canonicalYaml: 'customization: {}\n', externalUrl: 'https://f.example', version: V });
    exts.push({ dir: schematic, selinux: undefined } as (typeof exts)[number]);
    const layerCache = { dir: scratch('layers') };
    const build = async (cache?: typeof layerCache) => {
      const out = scratch('out');
      await assembleInitramfs({ base: demoBase(V), version: V, extensions: exts, workDir: scratch('work'), out, ...(cache ? { layerCache: cache, baseContentKey: `demo base ${V}` } : {}) });
      return sha256(fs.readFileSync(out));
    };
    const uncached = await build();
    expect(await build(layerCache)).toBe(uncached); // cold: builds and publishes
    const entries = fs.readdirSync(layerCache.dir).sort();
    // hello, intel-ucode, dummy-module and modules.dep; the schematic's own layer (no contentKey) is never cached
    expect(entries.filter((e) => e.endsWith('.sqsh'))).toHaveLength(4);
    expect(entries.filter((e) => e.endsWith('.json'))).toHaveLength(4);
    expect(entries.filter((e) => e.includes('.tmp-'))).toEqual([]);
    expect(await build(layerCache)).toBe(uncached); // warm: every cacheable layer from the cache

    // Proof that a hit is taken (not rebuilt): make every cached layer the same stand-in bytes, and the output changes.
    const stash = scratch('stash');
    fs.cpSync(layerCache.dir, stash, { recursive: true });
    for (const e of entries.filter((x) => x.endsWith('.sqsh'))) fs.writeFileSync(path.join(layerCache.dir, e), 'stand-in layer');
    expect(await build(layerCache)).not.toBe(uncached);
    // A torn entry (layer without sidecar) is a miss: rebuilt and published again.
    fs.rmSync(layerCache.dir, { recursive: true });
    fs.cpSync(stash, layerCache.dir, { recursive: true });
    for (const e of entries.filter((x) => x.endsWith('.json'))) fs.rmSync(path.join(layerCache.dir, e));
    expect(await build(layerCache)).toBe(uncached);
    expect(fs.readdirSync(layerCache.dir).sort()).toEqual(entries);
    // Another base identity is another modules.dep entry (its index depends on the base's modules).
    const out = scratch('out');
    await assembleInitramfs({ base: demoBase(V), version: V, extensions: exts, workDir: scratch('work'), out, layerCache, baseContentKey: 'another base' });
    expect(fs.readdirSync(layerCache.dir).filter((e) => e.endsWith('.sqsh'))).toHaveLength(5);
  }, 180000);

  test('compression by version: zstd -18 from 1.8, xz crc32 before (initramfs segment and squashfs)', async () => {
    for (const [version, kind] of [['v1.11.3', 'zstd'], ['v1.7.7', 'xz']] as const) {
      const ext = makeExt({ name: 'plain', version: '1', files: { 'usr/local/etc/fixture-ext/plain': 'plain\n' } });
      const out = scratch('out');
      const base = demoBase(version);
      await assembleInitramfs({ base, version, extensions: [ext], workDir: scratch('work'), out });
      const o = readOutput(out, base);
      if (kind === 'zstd') {
        expect(o.appended.readUInt32BE(0)).toBe(0x28b52ffd);
      } else {
        expect(o.appended.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))).toBe(true);
        // stream flags: check type 0x01 = CRC32 (the kernel's xz decoder needs it)
        expect(o.appended[7]).toBe(0x01);
      }
      const sq = path.join(scratch('sq'), '0.sqsh');
      fs.mkdirSync(path.dirname(sq));
      fs.writeFileSync(sq, o.late.find((e) => e.path === '0.sqsh')!.data);
      const info = unsquash(sq).info;
      if (kind === 'zstd') expect(info).toMatch(/Compression zstd\n\s+compression-level 18/);
      else expect(info).toMatch(/Compression xz/);
      expect(info).toContain('Creation or last append time Sat Jun  1 21:34:52 2019');
    }
  }, 60000);

  test('microcode goes into the prepended uncompressed cpio, firmware moves into the initramfs', async () => {
    const fw = 'usr/lib/firmware';
    const a = makeExt({
      name: 'fw-a',
      version: '1',
      files: {
        [`${fw}/intel-ucode/06-55-04`]: 'INTEL-A1|',
        [`${fw}/intel-ucode/06-8f-08`]: 'INTEL-A2|',
        [`${fw}/amd-ucode/microcode_amd_fam17h.bin`]: 'AMD-17|',
        [`${fw}/amd-ucode/README`]: 'not microcode\n',
        [`${fw}/vendor/shared.bin`]: 'from a, longer content\n',
        [`${fw}/vendor/secret.bin`]: { data: 'mode kept\n', mode: 0o600 },
        'usr/local/etc/fixture-ext/fw-a': 'fw-a\n',
      },
    });
    const b = makeExt({
      name: 'fw-b',
      version: '1',
      files: {
        [`${fw}/intel-ucode/06-55-04`]: 'INTEL-B1|',
        [`${fw}/amd-ucode/microcode_amd.bin`]: 'AMD-GEN|',
        [`${fw}/vendor/shared.bin`]: 'from b\n',
      },
    });
    const out = scratch('out');
    const base = demoBase(V);
    const work = scratch('work');
    const res = await assembleInitramfs({ base, version: V, extensions: [a, b], workDir: work, out });
    expect(res.microcode).toEqual(['kernel/x86/microcode/GenuineIntel.bin', 'kernel/x86/microcode/AuthenticAMD.bin']);
    const o = readOutput(out, base);
    // output = early cpio + untouched base + compressed appended cpio
    expect(o.raw.subarray(0, 6).toString()).toBe('070701');
    expect(o.earlyBytes.length % 512).toBe(0);
    expect(o.early.map((e) => [e.path, e.mode.toString(8)])).toEqual([
      ['kernel', '40755'],
      ['kernel/x86', '40755'],
      ['kernel/x86/microcode', '40755'],
      ['kernel/x86/microcode/AuthenticAMD.bin', '100644'],
      ['kernel/x86/microcode/GenuineIntel.bin', '100644'],
    ]);
    const early = Object.fromEntries(o.early.map((e) => [e.path, e.data.toString()]));
    expect(early['kernel/x86/microcode/GenuineIntel.bin']).toBe('INTEL-A1|INTEL-A2|INTEL-B1|');
    expect(early['kernel/x86/microcode/AuthenticAMD.bin']).toBe('AMD-17|AMD-GEN|');

    const late = new Map(o.late.map((e) => [e.path, e]));
    expect([...late.keys()]).toEqual([
      '0.sqsh',
      '1.sqsh',
      'extensions.yaml',
      'usr',
      'usr/lib',
      'usr/lib/firmware',
      'usr/lib/firmware/amd-ucode',
      'usr/lib/firmware/amd-ucode/README',
      'usr/lib/firmware/intel-ucode',
      'usr/lib/firmware/vendor',
      'usr/lib/firmware/vendor/secret.bin',
      'usr/lib/firmware/vendor/shared.bin',
    ]);
    expect(late.get('usr/lib/firmware/vendor/shared.bin')!.data.toString()).toBe('from b\n'); // later extension wins
    expect(late.get('usr/lib/firmware/vendor/secret.bin')!.mode & 0o7777).toBe(0o600);
    expect(late.get('usr/lib/firmware/amd-ucode/README')!.data.toString()).toBe('not microcode\n');

    // the squashfs no longer has the firmware tree (usr/lib stays, like after the imager's move)
    const sq0 = unsquash(path.join(work, 'staging/0.sqsh')).list;
    expect(sq0).toEqual(['/', '/usr', '/usr/lib', '/usr/local', '/usr/local/etc', '/usr/local/etc/fixture-ext', '/usr/local/etc/fixture-ext/fw-a']);
    // ... and the input directories still have everything
    expect(fs.existsSync(path.join(a.dir, 'rootfs', fw, 'intel-ucode/06-55-04'))).toBe(true);
  }, 60000);

  test('depmod: dummy-module extension -> modules.dep.sqsh (last) with the combined index', async () => {
    const kver = readReleases(DEMO)!.kernel.amd64!.version;
    const hello = await demoExtension(V, 'hello');
    const dummy = await demoExtension(V, 'dummy-module');
    const work = scratch('work');
    const res = await assembleInitramfs({ base: demoBase(V), version: V, extensions: [dummy, hello], workDir: work, out: scratch('out') });
    expect(res.modulesDep).toBe(true);
    expect(res.layers).toEqual([
      { image: '0.sqsh', name: 'dummy-module', version: demoTag(V, 'dummy-module') },
      { image: '1.sqsh', name: 'hello', version: demoTag(V, 'hello') },
      { image: 'modules.dep.sqsh', name: 'modules.dep', version: kver },
    ]);
    const md = unsquash(path.join(work, 'staging/modules.dep.sqsh'));
    expect(md.list).toEqual(
      expect.arrayContaining(['/', '/usr', '/usr/lib', '/usr/lib/modules', `/usr/lib/modules/${kver}`, `/usr/lib/modules/${kver}/modules.dep`, `/usr/lib/modules/${kver}/modules.dep.bin`, `/usr/lib/modules/${kver}/modules.alias`]),
    );
    expect(md.list.filter((p) => p.endsWith('.ko'))).toEqual([]);
    const dep = fs.readFileSync(path.join(md.dir, `usr/lib/modules/${kver}/modules.dep`), 'utf8');
    expect(dep).toMatch(/^extras\/dummy\.ko:$/m);
    expect(dep).toMatch(/^kernel\/fs\/squashfs\/squashfs\.ko:/m); // the base modules are still indexed
    // the module itself stays in the extension's own squashfs
    expect(unsquash(path.join(work, 'staging/0.sqsh')).list).toContain(`/usr/lib/modules/${kver}/extras/dummy.ko`);
  }, 60000);

  test('Talos < 1.10 paths: lib/firmware, lib/modules, xz (demo v1.7.7)', async () => {
    const v = 'v1.7.7';
    const kver = readReleases(DEMO)!.kernel.amd64!.version;
    const exts = [await demoExtension(v, 'intel-ucode'), await demoExtension(v, 'dummy-module')];
    const out = scratch('out');
    const work = scratch('work');
    const base = demoBase(v);
    const res = await assembleInitramfs({ base, version: v, extensions: exts, workDir: work, out });
    expect(res.microcode).toEqual(['kernel/x86/microcode/GenuineIntel.bin']);
    expect(res.layers.map((l) => l.name)).toEqual(['intel-ucode', 'dummy-module', 'modules.dep']);
    const o = readOutput(out, base);
    expect(o.late.map((e) => e.path)).toEqual(['0.sqsh', '1.sqsh', 'extensions.yaml', 'lib', 'lib/firmware', 'lib/firmware/fixture', 'lib/firmware/fixture/fw.bin', 'lib/firmware/intel-ucode', 'modules.dep.sqsh']);
    const md = unsquash(path.join(work, 'staging/modules.dep.sqsh'));
    expect(md.info).toMatch(/Compression xz/);
    expect(fs.readFileSync(path.join(md.dir, `lib/modules/${kver}/modules.dep`), 'utf8')).toMatch(/^extras\/dummy\.ko:$/m);
  }, 60000);

  test('an incompatible extension aborts the build with ExtensionCompatibilityError', async () => {
    const ok = makeExt({ name: 'fine', version: '1', constraint: '>= v1.7.0' });
    const tooNew = makeExt({ name: 'too-new', version: '1.0.0', constraint: '>= v9.0.0' });
    const out = scratch('out');
    const p = assembleInitramfs({ base: demoBase(V), version: V, extensions: [ok, tooNew], workDir: scratch('work'), out });
    await expect(p).rejects.toThrow(ExtensionCompatibilityError);
    await expect(p).rejects.toThrow("version constraint >= v9.0.0 can't be satisfied with Talos version 1.11.3");
    await expect(p).rejects.toMatchObject({ extension: 'too-new', constraint: '>= v9.0.0', version: '1.11.3' });
    expect(fs.existsSync(out)).toBe(false);
  });

  test('SELinux labels from PAX records end up as security.selinux xattrs in the squashfs (embedded-config)', async () => {
    const dir = scratch('embedded');
    const ec = await writeEmbeddedConfigExtension(dir, 'machine:\n  type: controlplane\n');
    const work = scratch('work');
    const res = await assembleInitramfs({ base: demoBase('v1.12.2'), version: 'v1.12.2', extensions: [{ dir, selinux: ec.selinux }], workDir: work, out: scratch('out') });
    expect(res.layers[0].name).toBe('embedded-config');
    const sq = path.join(work, 'staging/0.sqsh');
    const { info, list } = unsquash(sq);
    expect(info).toContain('Number of xattr ids 1');
    expect(list).toContain('/usr/local/etc/talos/config.yaml');
    // one small xattr block is stored raw (compression does not pay off), so the label is visible in the image
    expect(fs.readFileSync(sq).includes(Buffer.from(EMBEDDED_CONFIG_SELINUX_LABEL))).toBe(true);
    // an extension without labels gets no xattrs at all (host xattrs never leak in)
    const plain = makeExt({ name: 'plain', version: '1', files: { 'usr/local/x': 'x' } });
    const w2 = scratch('work');
    await assembleInitramfs({ base: demoBase('v1.12.2'), version: 'v1.12.2', extensions: [plain], workDir: w2, out: scratch('out') });
    expect(unsquash(path.join(w2, 'staging/0.sqsh')).info).toContain('Number of xattr ids 0');
  });

  test('squashfs from the generated tar keeps symlinks, hard links, long names and modes; SOURCE_DATE_EPOCH env is harmless', async () => {
    const root = scratch('tree');
    const deep = `usr/local/${'d'.repeat(90)}/${'f'.repeat(90)}`;
    fs.mkdirSync(path.join(root, 'usr/local/bin'), { recursive: true });
    fs.mkdirSync(path.join(root, 'usr/local/private'), { mode: 0o700 });
    fs.mkdirSync(path.dirname(path.join(root, deep)), { recursive: true });
    fs.writeFileSync(path.join(root, 'usr/local/bin/tool'), '#!/bin/sh\n', { mode: 0o755 });
    fs.symlinkSync('tool', path.join(root, 'usr/local/bin/link'));
    fs.linkSync(path.join(root, 'usr/local/bin/tool'), path.join(root, 'usr/local/bin/hard'));
    fs.writeFileSync(path.join(root, 'usr/local/private/secret'), 's', { mode: 0o600 });
    fs.writeFileSync(path.join(root, deep), 'deep');
    fs.chmodSync(path.join(root, 'usr/local/private'), 0o700);
    fs.chmodSync(path.join(root, 'usr/local/private/secret'), 0o600);
    fs.chmodSync(path.join(root, 'usr/local/bin/tool'), 0o755);
    const out = path.join(scratch('sq'), 'x.sqsh');
    fs.mkdirSync(path.dirname(out));
    process.env.SOURCE_DATE_EPOCH = '12345';
    try {
      const r = await mksquashfsTree(root, out, { zstd: true, mtime: 1559424892, labels: new Map([['usr/local/bin/tool', 'system_u:object_r:bin_t:s0']]) });
      expect(r).toEqual({ mode: 'tar', labels: 'stored' });
    } finally {
      delete process.env.SOURCE_DATE_EPOCH;
    }
    const lls = execFileSync('unsquashfs', ['-lls', out], { encoding: 'utf8' });
    const perms = Object.fromEntries(
      lls
        .split('\n')
        .filter((l) => l.includes('squashfs-root'))
        .map((l) => [l.replace(/^.*squashfs-root/, '').replace(/ -> .*$/, '') || '/', `${l.split(/\s+/)[0]} ${l.split(/\s+/)[1]}`]),
    );
    expect(perms['/']).toBe('drwxr-xr-x root/root');
    expect(perms['/usr/local/bin/tool']).toBe('-rwxr-xr-x root/root');
    expect(perms['/usr/local/bin/link']).toBe('lrwxrwxrwx root/root');
    expect(perms['/usr/local/private']).toBe('drwx------ root/root');
    expect(perms['/usr/local/private/secret']).toBe('-rw------- root/root');
    expect(perms[`/${deep}`]).toBe('-rw-r--r-- root/root');
    expect(lls).toContain('squashfs-root/usr/local/bin/link -> tool');
    expect(lls).toContain('2019-06-01 21:34');
    const { dir, info } = unsquash(out);
    expect(info).toContain('Number of xattr ids 1');
    expect(fs.readFileSync(path.join(dir, deep), 'utf8')).toBe('deep');
    expect(fs.statSync(path.join(dir, 'usr/local/bin/hard')).ino).toBe(fs.statSync(path.join(dir, 'usr/local/bin/tool')).ino);
  });

  test('mksquashfs directory-mode fallback (no -tar): excludes firmware, labels reported as dropped', async () => {
    const ext = makeExt({ name: 'fallback', version: '1', files: { 'usr/lib/firmware/a.bin': 'a', 'usr/local/b': 'b' } });
    const out = path.join(scratch('sq'), 'x.sqsh');
    fs.mkdirSync(path.dirname(out));
    const r = await mksquashfsTree(path.join(ext.dir, 'rootfs'), out, { zstd: true, mtime: 1559424892, exclude: ['usr/lib/firmware'], labels: new Map([['usr/local/b', 'x_t']]), mode: 'dir' });
    expect(r.mode).toBe('dir');
    expect(['dropped', 'stored']).toContain(r.labels);
    expect(unsquash(out).list).toEqual(['/', '/usr', '/usr/lib', '/usr/local', '/usr/local/b']);
  });
});
