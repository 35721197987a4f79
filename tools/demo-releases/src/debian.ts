/**
 * Debian inputs: resolve, download (apt-get download, cached) and unpack the kernel, busybox-static and
 * systemd-boot-efi packages of one architecture into a small cached "kernel kit". The kernel and busybox come from
 * the system's release (bookworm); systemd-boot-efi comes from trixie (see `fetchTrixieSdBoot`).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { Arch } from './oci';
import { mkdirp, rmrf, run, sha256File } from './util';

/** Bump when the kit layout changes. */
const KIT_FORMAT = 3;

/** Modules the demo init loads (with their dependencies, resolved from modules.dep). */
export const INIT_MODULE_ROOTS = ['loop', 'squashfs', 'overlay', 'virtio_pci', 'virtio_blk', 'virtio_mmio'];

export function defaultCacheDir(): string {
  return process.env.DEMO_CACHE_DIR || path.join(os.homedir(), '.cache', 'talos-factory-demo');
}

export interface DebPackage {
  name: string;
  arch: Arch;
  version: string;
  file: string;
  sha256: string;
}

export interface KitModule {
  name: string;
  /** path relative to lib/modules/<kver>, e.g. kernel/fs/squashfs/squashfs.ko */
  rel: string;
  file: string;
}

export interface KernelKit {
  arch: Arch;
  kver: string;
  packages: DebPackage[];
  dir: string;
  /** bzImage (amd64) or uncompressed Image (arm64) */
  vmlinuz: string;
  busybox: string;
  systemdStub: string;
  systemdBoot: string;
  /** modules for the initramfs, in load order (dependencies first) */
  modules: KitModule[];
  dummy: KitModule;
  /** modules.builtin, modules.builtin.modinfo, modules.order (absolute paths) */
  metaFiles: string[];
}

type Log = (line: string) => void;

/** apt options: keep a private binary package cache (the docker-clean config disables the system one). */
function aptOpts(cacheDir: string): string[] {
  return ['-o', `Dir::Cache::pkgcache=${path.join(cacheDir, 'apt-pkgcache.bin')}`, '-o', `Dir::Cache::srcpkgcache=${path.join(cacheDir, 'apt-srcpkgcache.bin')}`];
}

function parseStanzas(text: string): Array<Record<string, string>> {
  const out: Array<Record<string, string>> = [];
  let cur: Record<string, string> = {};
  for (const line of text.split('\n')) {
    if (line === '') {
      if (cur.Package) out.push(cur);
      cur = {};
      continue;
    }
    const m = /^([A-Za-z0-9-]+):\s*(.*)$/.exec(line);
    if (m) cur[m[1]] = m[2];
  }
  if (cur.Package) out.push(cur);
  return out;
}

async function aptShow(cacheDir: string, specs: string[]): Promise<Array<Record<string, string>>> {
  const res = await run('apt-cache', [...aptOpts(cacheDir), 'show', '--no-all-versions', ...specs], { allowFailure: true }).catch(() => null);
  if (!res) return [];
  return parseStanzas(res.stdout.toString());
}

async function foreignArchEnabled(arch: Arch): Promise<boolean> {
  const native = (await run('dpkg', ['--print-architecture'])).stdout.toString().trim();
  if (native === arch) return true;
  const foreign = (await run('dpkg', ['--print-foreign-architectures'])).stdout.toString().split(/\s+/);
  return foreign.includes(arch);
}

/** Make sure apt knows packages of `arch` (adds the foreign architecture and runs apt-get update if root). */
export async function ensureAptArch(arch: Arch, cacheDir: string, log: Log): Promise<boolean> {
  // fast path: the architecture is enabled and apt has package lists for it
  const lists = (() => {
    try {
      return fs.readdirSync('/var/lib/apt/lists');
    } catch {
      return [];
    }
  })();
  if ((await foreignArchEnabled(arch)) && lists.some((f) => f.includes(`_binary-${arch}_Packages`))) return true;
  if ((await aptShow(cacheDir, [`busybox-static:${arch}`])).length) return true;
  if (!(await foreignArchEnabled(arch))) {
    if (process.getuid?.() !== 0) return false;
    log(`[demo-releases] enabling dpkg architecture ${arch} and running apt-get update`);
    await run('dpkg', ['--add-architecture', arch]);
  }
  await run('apt-get', ['update', '-qq'], { allowFailure: true });
  return (await aptShow(cacheDir, [`busybox-static:${arch}`])).length > 0;
}

function cachedDebs(debDir: string, pattern: RegExp): string[] {
  if (!fs.existsSync(debDir)) return [];
  return fs.readdirSync(debDir).filter((f) => pattern.test(f)).sort();
}

/** A key that changes whenever apt's package lists change (so a resolution can be reused without apt-cache). */
function aptListsKey(): string {
  const dir = '/var/lib/apt/lists';
  try {
    return fs
      .readdirSync(dir)
      .filter((f) => f.includes('_Packages') || f.endsWith('Release'))
      .sort()
      .map((f) => {
        const st = fs.statSync(path.join(dir, f));
        return `${f}:${st.size}:${st.mtimeMs}`;
      })
      .join('|');
  } catch {
    return 'no-lists';
  }
}

/** Packages taken from the system's apt sources (bookworm); systemd-boot-efi is added from trixie. */
const PACKAGE_ROLES = ['kernel', 'busybox-static'] as const;

/** Debian package holding systemd-boot and systemd-stub (`usr/lib/systemd/boot/efi/*.efi{,.stub}`). */
export const SD_BOOT_PACKAGE = 'systemd-boot-efi';
/**
 * Oldest systemd whose stub boots multi-profile UKIs as real Talos does (>= 1.10 UKIs carry `.profile` sections,
 * talos-formats.md §6.2). bookworm's 252 ignores `.profile` and takes the last `.cmdline` — the reset profile's
 * `talos.experimental.wipe=...` — and its systemd-boot shows one menu entry per UKI instead of one per profile.
 */
export const MIN_SD_BOOT_SYSTEMD = 257;

/** repository root (this file is tools/demo-releases/{src,dist}/debian.*) */
const REPO_ROOT = path.resolve(__dirname, '..', '..', '..');

/** systemd's major version in a Debian version string (`257.13-1~deb13u1` -> 257, `1:252.39-1` -> 252). */
export function systemdMajor(debVersion: string): number {
  const m = /^(?:\d+:)?(\d+)/.exec(debVersion);
  return m ? Number(m[1]) : 0;
}

/** Newest cached `systemd-boot-efi_<version>_<arch>.deb` of a profile-aware systemd, if any. */
function cachedSdBoot(debDir: string, arch: Arch): { file: string; version: string } | undefined {
  const found = cachedDebs(debDir, new RegExp(`^${SD_BOOT_PACKAGE}_.+_${arch}\\.deb$`))
    .map((f) => ({ file: path.join(debDir, f), version: f.split('_')[1].replace(/%3a/gi, ':') }))
    .filter((d) => systemdMajor(d.version) >= MIN_SD_BOOT_SYSTEMD)
    .sort((a, b) => systemdMajor(a.version) - systemdMajor(b.version) || a.version.localeCompare(b.version, 'en', { numeric: true }));
  return found[found.length - 1];
}

/**
 * Trixie's systemd-boot-efi for `arch` (systemd >= 257: a systemd-stub that honours `.profile` sections and a
 * systemd-boot that lists one entry per UKI profile). A cached .deb in `<cacheDir>/debs` is used as it is (so a
 * warm machine builds offline and the inputs stay pinned; delete it to move to a newer trixie point release);
 * otherwise it is downloaded by scripts/fetch-trixie-deb.sh, the same private apt configuration setup.sh fetches
 * cosign with (the system's apt sources and state are never touched). apt-get download verifies it against the
 * signed trixie lists.
 */
export async function fetchTrixieSdBoot(arch: Arch, debDir: string, log: Log): Promise<DebPackage> {
  let hit = cachedSdBoot(debDir, arch);
  if (!hit) {
    const script = path.join(REPO_ROOT, 'scripts', 'fetch-trixie-deb.sh');
    log(`[demo-releases] fetching ${SD_BOOT_PACKAGE}:${arch} from Debian trixie (${path.relative(REPO_ROOT, script)})`);
    const res = await run('bash', [script, '--arch', arch, '--deb-only', SD_BOOT_PACKAGE, debDir], { allowFailure: true }).catch((e: Error) => ({
      code: -1,
      stdout: Buffer.alloc(0),
      stderr: e.message,
    }));
    const file = res.stdout.toString().trim().split('\n').pop() ?? '';
    if (res.code !== 0 || !file || !fs.existsSync(file)) {
      throw new Error(
        `cannot fetch Debian trixie's ${SD_BOOT_PACKAGE}:${arch} (systemd >= ${MIN_SD_BOOT_SYSTEMD}), which the demo releases ship as ` +
          `their systemd-stub and systemd-boot so that multi-profile UKIs boot their main profile as on real Talos; ` +
          `nothing usable is cached in ${debDir}. Check access to the Debian mirror (FACTORY_TRIXIE_MIRROR overrides it) ` +
          `or put a ${SD_BOOT_PACKAGE}_<version>_${arch}.deb of systemd >= ${MIN_SD_BOOT_SYSTEMD} there.\n` +
          `fetch-trixie-deb.sh exited ${res.code}: ${res.stderr.trim().split('\n').slice(-8).join('\n')}`,
      );
    }
    hit = cachedSdBoot(debDir, arch);
    if (!hit) throw new Error(`fetch-trixie-deb.sh gave ${path.basename(file)}, not a ${SD_BOOT_PACKAGE} of systemd >= ${MIN_SD_BOOT_SYSTEMD} for ${arch}`);
  }
  return { name: SD_BOOT_PACKAGE, arch, version: hit.version, file: hit.file, sha256: sha256File(hit.file) };
}

/**
 * Resolve the candidate kernel/busybox-static packages for each arch and make sure their .debs are in
 * `<cacheDir>/debs` (apt-get download; falls back to cached .debs when apt cannot resolve a package), then add
 * trixie's systemd-boot-efi (fetchTrixieSdBoot). Returns arch -> [kernel, busybox-static, systemd-boot-efi].
 */
export async function resolvePackages(arches: Arch[], cacheDir: string, log: Log): Promise<Map<Arch, DebPackage[]>> {
  const debDir = mkdirp(path.join(cacheDir, 'debs'));
  const memo = path.join(cacheDir, 'resolution.json');
  // `roles` keeps memos of an older role list (which included bookworm's systemd-boot-efi) from being reused
  const key = `roles=${PACKAGE_ROLES.join(',')}#${aptListsKey()}#${arches.join(',')}`;
  let resolved: Record<string, Array<{ name: string; version: string; sha256: string }>> | null = null;
  try {
    const m = JSON.parse(fs.readFileSync(memo, 'utf8')) as { key: string; resolved: typeof resolved };
    if (m.key === key) resolved = m.resolved;
  } catch {
    /* no memo */
  }
  if (!resolved) {
    resolved = {};
    const deps = await run('apt-cache', [...aptOpts(cacheDir), 'depends', ...arches.map((a) => `linux-image-${a}:${a}`)], { allowFailure: true }).catch(() => null);
    const depText = deps?.stdout.toString() ?? '';
    const specs: string[] = [];
    const names: Record<string, string[]> = {};
    for (const a of arches) {
      const block = depText.split(/^(?=linux-image-)/m).find((b) => b.startsWith(`linux-image-${a}`)) ?? '';
      const km = /Depends:\s*(linux-image-[0-9][^\s:]*)/.exec(block);
      names[a] = [km ? km[1] : '', 'busybox-static'];
      for (const n of names[a]) if (n) specs.push(`${n}:${a}`);
    }
    const stanzas = await aptShow(cacheDir, specs);
    let complete = true;
    for (const a of arches) {
      resolved[a] = names[a].map((n) => {
        const st = stanzas.find((s) => s.Package === n && s.Architecture === a);
        if (!st) complete = false;
        return { name: n, version: st?.Version ?? '', sha256: st?.SHA256 ?? '' };
      });
    }
    if (complete) fs.writeFileSync(memo, JSON.stringify({ key, resolved }));
  }
  const out = new Map<Arch, DebPackage[]>();
  const toDownload: Array<{ spec: string; pkg: DebPackage }> = [];
  for (const a of arches) {
    const pkgs: DebPackage[] = [];
    for (let i = 0; i < PACKAGE_ROLES.length; i++) {
      const r = resolved[a][i];
      if (r.name && r.version) {
        const file = path.join(debDir, `${r.name}_${r.version.replace(/:/g, '%3a')}_${a}.deb`);
        const pkg: DebPackage = { name: r.name, arch: a, version: r.version, file, sha256: r.sha256 };
        if (!fs.existsSync(file)) toDownload.push({ spec: `${r.name}:${a}=${r.version}`, pkg });
        pkgs.push(pkg);
        continue;
      }
      // offline fallback: newest cached .deb
      const pattern = i === 0
        ? new RegExp(`^linux-image-[0-9][^_]*-${a}_.+_${a}\\.deb$`)
        : new RegExp(`^${PACKAGE_ROLES[i]}_.+_${a}\\.deb$`);
      const cands = cachedDebs(debDir, pattern);
      if (!cands.length) throw new Error(`cannot resolve ${PACKAGE_ROLES[i]} for ${a}: apt does not know it and nothing is cached in ${debDir}`);
      const file = path.join(debDir, cands[cands.length - 1]);
      const version = (await run('dpkg-deb', ['-f', file, 'Version'])).stdout.toString().trim();
      log(`[demo-releases] apt cannot resolve ${PACKAGE_ROLES[i]}:${a}; using cached ${path.basename(file)}`);
      pkgs.push({ name: cands[cands.length - 1].split('_')[0], arch: a, version, file, sha256: sha256File(file) });
    }
    out.set(a, pkgs);
  }
  if (toDownload.length) {
    log(`[demo-releases] apt-get download ${toDownload.map((d) => d.spec).join(' ')}`);
    await run('apt-get', [...aptOpts(cacheDir), '-o', 'APT::Sandbox::User=root', 'download', '-q', ...toDownload.map((d) => d.spec)], { cwd: debDir });
  }
  for (const pkgs of out.values()) {
    for (const p of pkgs) {
      if (!fs.existsSync(p.file)) throw new Error(`download of ${p.file} failed`);
      // verify each freshly downloaded file; cached files are trusted by name (fast warm start)
      if (toDownload.some((d) => d.pkg === p) && p.sha256 && sha256File(p.file) !== p.sha256) {
        fs.rmSync(p.file);
        throw new Error(`checksum mismatch for ${p.file}`);
      }
    }
  }
  // one at a time: the fetches share the private trixie apt lists
  for (const a of arches) out.get(a)!.push(await fetchTrixieSdBoot(a, debDir, log));
  return out;
}

interface DepMap {
  [rel: string]: string[];
}

function parseModulesDep(text: string): DepMap {
  const out: DepMap = {};
  for (const line of text.split('\n')) {
    const i = line.indexOf(':');
    if (i < 0) continue;
    out[line.slice(0, i)] = line.slice(i + 1).trim().split(/\s+/).filter(Boolean);
  }
  return out;
}

function moduleName(rel: string): string {
  return path.basename(rel).replace(/\.ko(\.[a-z]+)?$/, '');
}

/** Dependency-closed load order for the given root modules (dependencies first). Built-ins are skipped. */
export function moduleLoadOrder(deps: DepMap, roots: string[]): string[] {
  const byName = new Map<string, string>();
  for (const rel of Object.keys(deps)) byName.set(moduleName(rel).replace(/-/g, '_'), rel);
  const order: string[] = [];
  const seen = new Set<string>();
  const visit = (rel: string) => {
    if (seen.has(rel)) return;
    seen.add(rel);
    // the dependency list is transitive; visiting each keeps a valid order
    for (const d of deps[rel] ?? []) visit(d);
    order.push(rel);
  };
  for (const r of roots) {
    const rel = byName.get(r.replace(/-/g, '_'));
    if (rel) visit(rel);
  }
  return order;
}

function kitKey(pkgs: DebPackage[]): string {
  return `v${KIT_FORMAT}-` + pkgs.map((p) => `${p.name}_${p.version}`.replace(/[^A-Za-z0-9._+-]/g, '_')).join('+');
}

/** Unpack the packages into a cached kit (only the few files the demo releases need). */
export async function prepareKernelKit(arch: Arch, packages: DebPackage[], cacheDir: string): Promise<KernelKit> {
  const kitDir = path.join(cacheDir, 'kits', arch, kitKey(packages));
  const kitJson = path.join(kitDir, 'kit.json');
  if (fs.existsSync(kitJson)) {
    const kit = JSON.parse(fs.readFileSync(kitJson, 'utf8')) as KernelKit;
    if (kit.dir === kitDir) return kit;
  }
  const tmp = path.join(cacheDir, 'kits', `tmp-${arch}-${process.pid}`);
  rmrf(tmp);
  mkdirp(tmp);
  try {
    const [kpkg, bbpkg, sdpkg] = packages;
    const kx = path.join(tmp, 'kernel');
    const bx = path.join(tmp, 'busybox');
    const sx = path.join(tmp, 'sdboot');
    await Promise.all([
      run('dpkg-deb', ['-x', kpkg.file, kx]),
      run('dpkg-deb', ['-x', bbpkg.file, bx]),
      run('dpkg-deb', ['-x', sdpkg.file, sx]),
    ]);
    const vmlinuzName = fs.readdirSync(path.join(kx, 'boot')).find((f) => f.startsWith('vmlinuz-'));
    if (!vmlinuzName) throw new Error(`no /boot/vmlinuz-* in ${kpkg.file}`);
    const kver = vmlinuzName.slice('vmlinuz-'.length);
    const modRoot = path.join(kx, 'lib', 'modules', kver);
    await run('depmod', ['-b', kx, kver]);
    const deps = parseModulesDep(fs.readFileSync(path.join(modRoot, 'modules.dep'), 'utf8'));
    const outDir = mkdirp(path.join(tmp, 'kit'));
    const copyMod = (rel: string): KitModule => {
      const dst = path.join(outDir, 'modules', rel);
      mkdirp(path.dirname(dst));
      fs.copyFileSync(path.join(modRoot, rel), dst);
      return { name: moduleName(rel), rel, file: path.join(kitDir, 'modules', rel) };
    };
    const modules = moduleLoadOrder(deps, INIT_MODULE_ROOTS).map(copyMod);
    const dummyRel = Object.keys(deps).find((r) => moduleName(r) === 'dummy');
    if (!dummyRel) throw new Error('dummy.ko not found in the kernel package');
    const dummy = copyMod(dummyRel);
    const metaFiles: string[] = [];
    for (const f of ['modules.builtin', 'modules.builtin.modinfo', 'modules.order']) {
      if (fs.existsSync(path.join(modRoot, f))) {
        fs.copyFileSync(path.join(modRoot, f), path.join(outDir, f));
        metaFiles.push(path.join(kitDir, f));
      }
    }
    // kernel image: arm64 Debian ships a gzip-compressed Image; Talos ships the plain (EFI-stub capable) Image
    let kernel: Buffer = fs.readFileSync(path.join(kx, "boot", vmlinuzName));
    if (kernel[0] === 0x1f && kernel[1] === 0x8b) kernel = zlib.gunzipSync(kernel);
    fs.writeFileSync(path.join(outDir, 'vmlinuz'), kernel);
    fs.copyFileSync(path.join(bx, 'bin', 'busybox'), path.join(outDir, 'busybox'));
    const efiArch = arch === 'amd64' ? 'x64' : 'aa64';
    const efiDir = path.join(sx, 'usr', 'lib', 'systemd', 'boot', 'efi');
    fs.copyFileSync(path.join(efiDir, `linux${efiArch}.efi.stub`), path.join(outDir, 'systemd-stub.efi'));
    fs.copyFileSync(path.join(efiDir, `systemd-boot${efiArch}.efi`), path.join(outDir, 'systemd-boot.efi'));
    const kit: KernelKit = {
      arch,
      kver,
      packages,
      dir: kitDir,
      vmlinuz: path.join(kitDir, 'vmlinuz'),
      busybox: path.join(kitDir, 'busybox'),
      systemdStub: path.join(kitDir, 'systemd-stub.efi'),
      systemdBoot: path.join(kitDir, 'systemd-boot.efi'),
      modules,
      dummy,
      metaFiles,
    };
    fs.writeFileSync(path.join(outDir, 'kit.json'), JSON.stringify(kit, null, 2));
    rmrf(kitDir);
    mkdirp(path.dirname(kitDir));
    fs.renameSync(outDir, kitDir);
    return kit;
  } finally {
    rmrf(tmp);
  }
}
