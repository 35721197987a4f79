/**
 * The fuzz cases: a deterministic stream of requests from a seed. Five families — schematic bodies, URL paths,
 * headers on served objects, OCI distribution requests and malformed HTTP on a raw socket. Asset paths that would
 * be valid are drawn only from a few assets the run builds beforehand (`PREBUILT`), every other asset path is invalid
 * by construction, so the fuzz measures the edge and never queues hundreds of cold builds — except some follow-up
 * cases (`ACCEPTED` in their path, about a schematic an earlier fuzzed body created), which ask for its kernel command
 * line: one cheap build each, where odd kernel arguments and META values meet the profile.
 */

/** Small, fast, seedable PRNG (sfc32 seeded through splitmix32), so a seed replays the same cases. */
export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: number) {
    let s = seed >>> 0;
    const next = () => {
      s = (s + 0x9e3779b9) >>> 0;
      let z = s;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      return (z ^ (z >>> 16)) >>> 0;
    };
    [this.a, this.b, this.c, this.d] = [next(), next(), next(), next()];
  }

  /** uniform in [0, 1) */
  next(): number {
    const t = (((this.a + this.b) >>> 0) + this.d) >>> 0;
    this.d = (this.d + 1) >>> 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) >>> 0;
    this.c = ((this.c << 21) | (this.c >>> 11)) >>> 0;
    this.c = (this.c + t) >>> 0;
    return t / 4294967296;
  }

  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)];
  }

  bytes(n: number): Buffer {
    const out = Buffer.alloc(n);
    for (let i = 0; i < n; i++) out[i] = Math.floor(this.next() * 256);
    return out;
  }

  /** a string of `n` characters from `alphabet` */
  text(n: number, alphabet: string): string {
    let s = '';
    for (let i = 0; i < n; i++) s += alphabet[Math.floor(this.next() * alphabet.length)];
    return s;
  }
}

/** What a run knows before the cases are sent: made in its setup, deterministic for the demo releases. */
export interface FuzzWorld {
  /** the schematic without customization (its ID is fixed) */
  defaultId: string;
  /** a few more schematics created during setup (extensions, overlay, kernel args) */
  knownIds: string[];
  /** the version whose `PREBUILT` assets exist */
  version: string;
  /** offered versions (asset paths under them other than `PREBUILT` are never valid in a case) */
  versions: string[];
  /** ETag of the prebuilt kernel, for If-Range / If-None-Match / If-Match cases */
  kernelEtag: string;
  /** upstream image digests the demo registry holds */
  upstreamDigests: string[];
  /** digests of the prebuilt installer `installer/<defaultId>:<version>` (index, manifests, config, layers) */
  installerDigests: string[];
}

/** Assets of `world.defaultId` at `world.version` built before the run; fuzzed valid asset paths stay within these. */
export const PREBUILT = { image: ['kernel-amd64', 'cmdline-metal-amd64'], pxe: ['metal-amd64'], installer: 'installer' } as const;

export type Family = 'schematic' | 'path' | 'header' | 'oci' | 'raw' | 'follow-up';

/** Stands for the ID of a schematic a fuzzed body created, in a follow-up case's path (the runner fills it in). */
export const ACCEPTED = '{accepted}';

export interface HttpCase {
  n: number;
  family: Family;
  /** one line saying what the case is (printed with a failure) */
  what: string;
  transport: 'http';
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: Buffer;
}

export interface RawCase {
  n: number;
  family: Family;
  what: string;
  transport: 'raw';
  bytes: Buffer;
  /** keep sending side open after `bytes` (the server must still answer and close within the hang bound) */
  keepOpen?: boolean;
}

export type FuzzCase = HttpCase | RawCase;

const HEX = '0123456789abcdef';
const ALNUM = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
const PRINTABLE = ALNUM + ' -_.~!*\'();:@&=+$,/?#[]%"<>\\^`{|}';
const NASTY = ['%00', '%0d%0a', '%0a', '%20', '%25', '%2e%2e', '%2f', '%5c', '%ff', '%e4%b8%ad', '%c0%af', '%', '%g1', '..', '.', '//', '\\', '~', '\u00e9', '\u4e2d', '\ud83d\ude00', '\u202e', ';', '?', '#'];
const INVALID_UTF8 = [Buffer.from([0xff]), Buffer.from([0xfe, 0xff]), Buffer.from([0xc0, 0xaf]), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from([0xe2, 0x82]), Buffer.from([0xf8, 0x88, 0x80, 0x80, 0x80]), Buffer.from([0x80])];
const CONTENT_TYPES = ['application/yaml', 'application/x-yaml', 'text/yaml', 'application/json', 'text/plain', 'application/octet-stream', 'multipart/form-data; boundary=x', 'application/x-www-form-urlencoded', 'text/html; charset=latin1', 'application/json; charset=utf-16', '', ';;;', 'a'.repeat(2000)];
const PLATFORMS = ['metal', 'aws', 'gcp', 'azure', 'openstack', 'nocloud', 'vmware', 'digital-ocean', 'hcloud'];
/** versions no asset can be built for (not offered, or not versions); an offered one would be a cold build */
const BAD_VERSIONS = ['v1.1.0', 'v9.9.9', 'abc', 'v1.12', 'v1.12.2.1', 'v-1.0.0', 'v1.12.2-alpha.0', 'not-a-version', '', '..', 'v1.12.2%00', `v${'1'.repeat(300)}.0.0`, 'v0.0.0', 'v1.12.2+x', '%76%31'];
const EXTENSIONS = ['siderolabs/hello', 'siderolabs/intel-ucode', 'siderolabs/dummy-module', 'siderolabs/gasket-driver', 'siderolabs/nope', 'hello', '', '../../etc', 'siderolabs/hello:1.2.0', 'ghcr.io/siderolabs/hello'];

export function generateCases(seed: number, count: number, world: FuzzWorld): FuzzCase[] {
  const rng = new Rng(seed);
  const cases: FuzzCase[] = [];
  for (let n = 0; n < count; n++) {
    const roll = rng.next();
    const make = roll < 0.3 ? schematicCase : roll < 0.56 ? pathCase : roll < 0.71 ? headerCase : roll < 0.87 ? ociCase : roll < 0.97 ? rawCase : followUpCase;
    cases.push(make(rng, world, n));
  }
  return cases;
}

// --- schematic bodies ------------------------------------------------------------------------------------------

function schematicCase(rng: Rng, world: FuzzWorld, n: number): FuzzCase {
  const pick = rng.next();
  let body: Buffer;
  let what: string;
  if (pick < 0.35) {
    const doc = randomSchematic(rng);
    const json = rng.chance(0.35);
    body = Buffer.from(json ? JSON.stringify(doc, null, rng.chance(0.5) ? 2 : undefined) : toYaml(doc, 0));
    what = `${json ? 'JSON' : 'YAML'} schematic`;
    if (rng.chance(0.5)) {
      body = mutate(rng, body);
      what += ' (mutated)';
    }
  } else if (pick < 0.45) {
    ({ body, what } = aliasBody(rng));
  } else if (pick < 0.55) {
    ({ body, what } = deepBody(rng));
  } else if (pick < 0.63) {
    ({ body, what } = hugeBody(rng));
  } else if (pick < 0.73) {
    const doc = Buffer.from(toYaml(randomSchematic(rng), 0));
    const at = rng.int(0, doc.length);
    body = Buffer.concat([doc.subarray(0, at), rng.pick(INVALID_UTF8), doc.subarray(at)]);
    what = 'schematic with invalid UTF-8';
  } else if (pick < 0.83) {
    body = Buffer.from(toYaml(randomValue(rng, 0), 0));
    what = 'random YAML document';
  } else if (pick < 0.9) {
    body = rng.bytes(rng.int(0, 4096));
    what = 'random bytes';
  } else {
    body = Buffer.from(rng.pick(['', '---', '...', '--- !!binary AAAA', '%YAML 1.1\n---\n{}', '%TAG ! tag:x,2000:\n--- !x {}', '? [a]\n: b', '{customization: !!str}', '[1, 2', '"\\uD800"', '!!python/object:os.system {}', 'customization: &a\n  <<: *a', 'a: !!int 0x_', '- &x\n- *y', '{}\n---\n' + 'a: ['.repeat(50)]));
    what = 'YAML edge document';
  }
  const headers: Record<string, string> = {};
  if (rng.chance(0.6)) headers['content-type'] = rng.pick(CONTENT_TYPES);
  if (rng.chance(0.05)) headers['content-encoding'] = rng.pick(['gzip', 'br', 'identity', 'x']);
  return { n, family: 'schematic', what, transport: 'http', method: 'POST', path: rng.chance(0.95) ? '/schematics' : rng.pick(['/schematics/', '/schematics?x=1', `/schematics/${world.defaultId}`]), headers, body };
}

/** A schematic-shaped value with random, sometimes wrong, types in every field. */
function randomSchematic(rng: Rng): Record<string, unknown> {
  const customization: Record<string, unknown> = {};
  if (rng.chance(0.6)) customization.extraKernelArgs = rng.chance(0.85) ? Array.from({ length: rng.int(0, 6) }, () => kernelArg(rng)) : randomValue(rng, 2);
  if (rng.chance(0.4)) customization.systemExtensions = rng.chance(0.85) ? { officialExtensions: Array.from({ length: rng.int(0, 4) }, () => rng.pick(EXTENSIONS)) } : randomValue(rng, 2);
  if (rng.chance(0.3)) customization.meta = rng.chance(0.8) ? Array.from({ length: rng.int(0, 3) }, () => ({ key: rng.pick([0, 10, 12, 255, 256, -1, 'x', 1.5]), value: rng.text(rng.int(0, 40), PRINTABLE) })) : randomValue(rng, 2);
  if (rng.chance(0.2)) customization.secureboot = { includeWellKnownCertificates: rng.pick([true, false, 'yes', 1, null]) };
  if (rng.chance(0.1)) customization.bootloader = rng.pick(['sd-boot', 'grub', 'dual-boot', 'auto', 'x', 3]);
  if (rng.chance(0.1)) customization[rng.text(rng.int(1, 10), ALNUM)] = randomValue(rng, 2);
  const doc: Record<string, unknown> = {};
  if (rng.chance(0.9)) doc.customization = customization;
  if (rng.chance(0.15)) doc.overlay = { image: rng.pick(['siderolabs/sbc-fixture', 'x', '']), name: rng.pick(['fixture_board', 'rpi_generic', '']), ...(rng.chance(0.3) ? { options: randomValue(rng, 2) } : {}) };
  if (rng.chance(0.05)) doc[rng.text(rng.int(1, 12), ALNUM)] = randomValue(rng, 2);
  return doc;
}

function kernelArg(rng: Rng): unknown {
  const r = rng.next();
  if (r < 0.6) return `${rng.text(rng.int(1, 12), 'abcdefghijklmnopqrstuvwxyz_.')}=${rng.text(rng.int(0, 20), ALNUM + ',:./')}`;
  if (r < 0.75) return rng.text(rng.int(0, 60), PRINTABLE);
  if (r < 0.85) return rng.pick(NASTY) + rng.text(rng.int(0, 5), ALNUM);
  return randomValue(rng, 3);
}

function randomValue(rng: Rng, depth: number): unknown {
  const r = rng.next();
  if (depth <= 0 || r < 0.5) {
    return rng.pick<unknown>([null, true, false, 0, -1, 1e308, 3.14, '', 'x', rng.text(rng.int(0, 30), PRINTABLE), '~', 'null', '0x1f', '.inf', '2001-01-01', 'yes', 'on', '<<']);
  }
  if (r < 0.75) return Array.from({ length: rng.int(0, 4) }, () => randomValue(rng, depth - 1));
  const map: Record<string, unknown> = {};
  for (let i = rng.int(0, 4); i > 0; i--) map[rng.text(rng.int(1, 8), ALNUM)] = randomValue(rng, depth - 1);
  return map;
}

/** Block YAML for plain data (flow collections for empty ones); strings JSON-quoted, which YAML reads back. */
function toYaml(value: unknown, indent: number): string {
  const pad = ' '.repeat(indent);
  if (Array.isArray(value)) {
    if (!value.length) return '[]\n';
    return value.map((v) => `${pad}- ${nested(v, indent + 2)}`).join('');
  }
  if (value && typeof value === 'object') {
    const entries = Object.entries(value);
    if (!entries.length) return '{}\n';
    return entries.map(([k, v]) => `${pad}${JSON.stringify(k)}: ${nested(v, indent + 2)}`).join('');
  }
  return `${JSON.stringify(value)}\n`;
}

function nested(value: unknown, indent: number): string {
  if (value && typeof value === 'object' && Object.keys(value).length) return `\n${toYaml(value, indent)}`;
  return toYaml(value, indent);
}

function mutate(rng: Rng, body: Buffer): Buffer {
  const out = Buffer.from(body);
  const ops = rng.int(1, 4);
  let buf = out;
  for (let i = 0; i < ops && buf.length; i++) {
    const at = rng.int(0, buf.length - 1);
    switch (rng.int(0, 5)) {
      case 0: // flip a byte
        buf[at] ^= 1 << rng.int(0, 7);
        break;
      case 1: // delete a run
        buf = Buffer.concat([buf.subarray(0, at), buf.subarray(Math.min(buf.length, at + rng.int(1, 8)))]);
        break;
      case 2: // duplicate a run
        buf = Buffer.concat([buf.subarray(0, at), buf.subarray(at, at + rng.int(1, 40)), buf.subarray(at)]);
        break;
      case 3: // insert YAML syntax
        buf = Buffer.concat([buf.subarray(0, at), Buffer.from(rng.pick(['&a ', '*a', ': ', '- ', '[', ']', '{', '}', '\n', '\t', '"', "'", '!!', '|', '>', '#', '---\n', '? ', '<<: *a\n', '\r\n', '\0'])), buf.subarray(at)]);
        break;
      case 4: // replace with a nasty token
        buf = Buffer.concat([buf.subarray(0, at), Buffer.from(rng.pick(NASTY)), buf.subarray(at + 1)]);
        break;
      default: // truncate
        buf = buf.subarray(0, at);
    }
  }
  return buf;
}

function aliasBody(rng: Rng): { body: Buffer; what: string } {
  const kind = rng.int(0, 3);
  if (kind === 0) {
    const count = rng.pick([3, 50, 999, 1001, 6000, 20000, 50000]);
    return { body: Buffer.from(`customization:\n  extraKernelArgs: [&a x, ${'*a, '.repeat(count)}*a]\n`), what: `${count} aliases in a flow list` };
  }
  if (kind === 1) {
    // billion laughs: each level a list of 9 aliases of the previous level
    const levels = rng.int(2, 9);
    let doc = 'l0: &l0 [lol]\n';
    for (let i = 1; i <= levels; i++) doc += `l${i}: &l${i} [${Array.from({ length: 9 }, () => `*l${i - 1}`).join(', ')}]\n`;
    return { body: Buffer.from(doc + `customization:\n  extraKernelArgs: *l${levels}\n`), what: `billion laughs, ${levels} levels` };
  }
  if (kind === 2) {
    return { body: Buffer.from(`a: &a {b: *a}\ncustomization: *a\n`), what: 'self-referencing alias' };
  }
  const names = rng.int(1, 3000);
  let doc = 'x:\n';
  for (let i = 0; i < names; i++) doc += `  - &n${i} v${i}\n`;
  doc += `customization:\n  extraKernelArgs: [${Array.from({ length: rng.int(1, 200) }, () => `*n${rng.int(0, names - 1)}`).join(', ')}]\n`;
  return { body: Buffer.from(doc), what: `${names} anchors, aliases picked among them` };
}

function deepBody(rng: Rng): { body: Buffer; what: string } {
  const depth = rng.pick([10, 99, 100, 101, 1000, 10000, 100000]);
  const kind = rng.int(0, 3);
  if (kind === 0) return { body: Buffer.from('customization:\n  extraKernelArgs: ' + '['.repeat(depth) + ']'.repeat(depth) + '\n'), what: `flow lists ${depth} deep` };
  if (kind === 1) return { body: Buffer.from('{"customization":' + '{"a":'.repeat(depth) + '1' + '}'.repeat(depth) + '}'), what: `JSON objects ${depth} deep` };
  if (kind === 2) {
    const d = Math.min(depth, 2000);
    let doc = 'customization:\n';
    for (let i = 0; i < d; i++) doc += `${' '.repeat(i + 2)}k${i}:\n`;
    return { body: Buffer.from(doc), what: `block maps ${d} deep` };
  }
  return { body: Buffer.from('['.repeat(depth)), what: `unclosed flow list ${depth} deep` };
}

function hugeBody(rng: Rng): { body: Buffer; what: string } {
  const size = rng.pick([4096, 65 * 1024, 70 * 1024, 300 * 1024, 1024 * 1024 - 64, 1024 * 1024 + 1, 1536 * 1024]);
  const kind = rng.int(0, 3);
  const filler = rng.pick(['a', 'x=', ' ', '\u4e2d', '\\']);
  const long = filler.repeat(Math.ceil(size / Buffer.byteLength(filler))).slice(0, size);
  if (kind === 0) return { body: Buffer.from(`customization:\n  extraKernelArgs:\n    - ${JSON.stringify(long)}\n`), what: `kernel argument of ${size} characters` };
  if (kind === 1) return { body: Buffer.from(`customization:\n  meta:\n    - key: 12\n      value: ${JSON.stringify(long)}\n`), what: `META value of ${size} characters` };
  if (kind === 2) return { body: Buffer.from(`customization:\n  extraKernelArgs: [${Array.from({ length: Math.floor(size / 8) }, (_, i) => `a${i}`).join(', ')}]\n`), what: `${Math.floor(size / 8)} kernel arguments` };
  return { body: Buffer.from(`# ${long}\ncustomization: {}\n`), what: `comment of ${size} characters` };
}

// --- paths -------------------------------------------------------------------------------------------------------

function schematicIdLike(rng: Rng, world: FuzzWorld): { id: string; known: 'default' | 'other' | 'unknown' } {
  const r = rng.next();
  if (r < 0.35) return { id: world.defaultId, known: 'default' };
  if (r < 0.55) return { id: rng.pick(world.knownIds), known: 'other' };
  if (r < 0.75) return { id: rng.text(64, HEX), known: 'unknown' };
  return { id: rng.pick([rng.text(rng.int(0, 70), HEX), rng.text(64, HEX).toUpperCase(), world.defaultId + rng.pick(NASTY), rng.text(rng.int(1, 100), PRINTABLE.replace(/[/?#%]/g, '')), '..', '%2e%2e', world.defaultId.slice(0, 63) + 'g', `${world.defaultId}/x`]), known: 'unknown' };
}

/** An asset file name that no request may build: prebuilt for the default schematic, invalid otherwise. */
function assetName(rng: Rng, prebuiltOk: boolean): string {
  const r = rng.next();
  if (prebuiltOk && r < 0.45) {
    const name = rng.pick(PREBUILT.image);
    return rng.pick([name, name, `${name}.sha256`, `${name}.sha512`, `${name}?filename=${rng.pick(['k', '%e4%b8%ad', '..%2fx', '%00', 'a%0d%0ab', '"q"', 'x'.repeat(300)])}`]);
  }
  return rng.pick([
    `${rng.text(rng.int(1, 10), 'abcdefghijklmnopqrstuvwxyz')}-amd64.iso`,
    `metal-${rng.pick(['mips', 'x86', 'AMD64', 'amd', 'arm', 'riscv64', ''])}.iso`,
    `kernel-${rng.pick(['mips', 'x86', 'AMD64', '', 'amd64-'])}`,
    `${rng.pick(PLATFORMS)}-amd64.${rng.pick(['isox', 'tar', 'qcow3', 'raw.gz.xz', 'iso.sha1', 'exe'])}`,
    `initramfs-amd64.${rng.pick(['gz', 'zst', 'xz.bak', ''])}`,
    `${rng.pick(PLATFORMS)}-amd64${rng.pick(['-secureboot', '-uki'])}.${rng.pick(['img', 'txt'])}`,
    `cmdline-${rng.pick(['', 'nope', 'metal'])}-${rng.pick(['', 'mips'])}`,
    rng.text(rng.int(0, 40), PRINTABLE.replace(/[?#]/g, '')),
    rng.pick(NASTY) + 'kernel-amd64',
    'kernel-amd64' + rng.pick(['%00', '%0d%0a', '%2f..', '/..', '/x', '.sha1', '.SHA256', '.sha256.sha256']),
    '',
  ]);
}

function pathCase(rng: Rng, world: FuzzWorld, n: number): FuzzCase {
  const { id, known } = schematicIdLike(rng, world);
  const r = rng.next();
  let path: string;
  let what: string;
  if (r < 0.3) {
    const version = known === 'default' && rng.chance(0.6) ? world.version : rng.chance(0.5) ? rng.pick(world.versions) : rng.pick(BAD_VERSIONS);
    // a valid asset name only with the default schematic at the prebuilt version: anything else would be a cold build
    const name = assetName(rng, known === 'default' && version === world.version);
    path = `/image/${id}/${version}/${name}`;
    what = 'asset path';
  } else if (r < 0.42) {
    const version = known === 'default' && rng.chance(0.6) ? world.version : rng.pick(BAD_VERSIONS);
    const prebuilt = known === 'default' && version === world.version;
    const name = prebuilt && rng.chance(0.5) ? rng.pick(PREBUILT.pxe) : rng.pick([`${rng.pick(PLATFORMS)}-mips`, 'metal', 'metal-amd64-x', rng.text(rng.int(0, 20), ALNUM), 'metal-amd64.iso', `metal-amd64${rng.pick(NASTY)}`]);
    path = `/pxe/${id}/${version}/${name}`;
    what = 'PXE path';
  } else if (r < 0.55) {
    path = rng.pick([`/schematics/${id}`, `/schematics/${id}/`, `/schematics/${id}/x`, `/schematics/${id}?a=b`, '/schematics', '/schematics/']);
    what = 'schematic path';
  } else if (r < 0.7) {
    const v = rng.chance(0.5) ? rng.pick(world.versions) : rng.pick(BAD_VERSIONS);
    path = rng.pick(['/versions', `/version/${v}/extensions/official`, `/version/${v}/overlays/official`, `/version/${v}/extensions/${rng.pick(['official', 'all', '', '..'])}`, `/version/${v}`, '/versions/', '/versions?x=%00']);
    what = 'catalog path';
  } else if (r < 0.8) {
    path = rng.pick(['/', '/healthz', '/readyz', '/metrics', '/oci/cosign/signing-key.pub', '/favicon.ico', '/image', '/image/', '/pxe/', '/v2', '/../../etc/passwd', '/%2e%2e/%2e%2e/etc/passwd', '/image/..%2f..%2f..%2fetc/passwd', '//image//', '/?' + 'a=1&'.repeat(2000), '/*', '/image/%', '/%ff%fe']);
    what = 'fixed path';
  } else {
    const segs = Array.from({ length: rng.int(1, 8) }, () => rng.chance(0.3) ? rng.pick(NASTY) : rng.text(rng.int(0, 20), ALNUM + '-._~%'));
    path = '/' + segs.join('/');
    if (rng.chance(0.2)) path += '/' + 'a'.repeat(rng.pick([1000, 7000, 20000]));
    what = 'random path';
  }
  const method = rng.chance(0.8) ? 'GET' : rng.pick(['HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH', 'TRACE', 'PROPFIND']);
  // methods other than GET/HEAD on asset paths are rejected before anything is built; HEAD stays within the same rules
  const headers: Record<string, string> = {};
  if (rng.chance(0.15)) headers.origin = rng.pick(['https://example.com', 'null', 'http://localhost', '*', 'x'.repeat(500)]);
  if (method === 'OPTIONS' && rng.chance(0.7)) headers['access-control-request-method'] = rng.pick(['GET', 'POST', 'DELETE', 'X']);
  return { n, family: 'path', what: `${what}`, transport: 'http', method, path: toRequestTarget(path), headers, body: ['POST', 'PUT', 'PATCH'].includes(method) && rng.chance(0.5) ? rng.bytes(rng.int(0, 200)) : undefined };
}

/** Characters Node's client refuses in a path (non-ASCII, controls, space) are percent-encoded; raw cases send them. */
function toRequestTarget(path: string): string {
  return path.replace(/[^\x21-\x7e]/gu, (c) => encodeURIComponent(c));
}

/**
 * A request about a schematic a fuzzed body created: read it back, an invalid asset or installer reference under it,
 * or (one in six) its PXE script or command line — a cold `cmdline-*` build, cheap.
 */
function followUpCase(rng: Rng, world: FuzzWorld, n: number): FuzzCase {
  const r = rng.next();
  let path: string;
  let what: string;
  if (r < 0.17) {
    const target = rng.pick(['metal-amd64', 'metal-amd64-secureboot', 'aws-arm64']);
    path = rng.chance(0.7) ? `/pxe/${ACCEPTED}/${world.version}/${target}` : `/image/${ACCEPTED}/${world.version}/cmdline-${target}`;
    what = 'command line of a fuzz-created schematic';
  } else if (r < 0.6) {
    path = `/schematics/${ACCEPTED}`;
    what = 'a fuzz-created schematic read back';
  } else if (r < 0.8) {
    path = `/image/${ACCEPTED}/${rng.pick(world.versions)}/${assetName(rng, false)}`;
    what = 'invalid asset of a fuzz-created schematic';
  } else {
    const ref = rng.pick([...BAD_VERSIONS.filter((v) => v && !world.versions.includes(v)), `sha256:${rng.text(64, HEX)}`]);
    path = rng.pick([`/v2/installer/${ACCEPTED}/manifests/${ref}`, `/v2/metal-installer-secureboot/${ACCEPTED}/manifests/${ref}`, `/v2/installer/${ACCEPTED}/tags/list`, `/v2/installer/${ACCEPTED}/blobs/sha256:${rng.text(64, HEX)}`]);
    what = 'OCI request on a fuzz-created schematic';
  }
  return { n, family: 'follow-up', what, transport: 'http', method: rng.chance(0.85) ? 'GET' : 'HEAD', path: toRequestTarget(path), headers: {} };
}

// --- headers -----------------------------------------------------------------------------------------------------

function headerCase(rng: Rng, world: FuzzWorld, n: number): FuzzCase {
  const target = rng.pick([
    `/image/${world.defaultId}/${world.version}/kernel-amd64`,
    `/image/${world.defaultId}/${world.version}/kernel-amd64`,
    `/image/${world.defaultId}/${world.version}/cmdline-metal-amd64`,
    `/image/${world.defaultId}/${world.version}/kernel-amd64.sha512`,
    `/pxe/${world.defaultId}/${world.version}/metal-amd64`,
    `/schematics/${world.defaultId}`,
    '/versions',
    `/v2/siderolabs/imager/manifests/${world.version}`,
    `/v2/siderolabs/imager/blobs/${rng.pick(world.upstreamDigests)}`,
    `/v2/${PREBUILT.installer}/${world.defaultId}/manifests/${world.version}`,
    `/v2/${PREBUILT.installer}/${world.defaultId}/manifests/${rng.pick(world.installerDigests)}`,
    `/v2/${PREBUILT.installer}/${world.defaultId}/blobs/${rng.pick(world.installerDigests)}`,
    '/v2/',
  ]);
  const headers: Record<string, string> = {};
  for (let i = rng.int(1, 4); i > 0; i--) {
    const [name, value] = rng.pick<() => [string, string]>([
      () => ['range', rangeValue(rng)],
      () => ['if-range', rng.pick([`"${world.kernelEtag}"`, world.kernelEtag, '"x"', 'W/"x"', 'Tue, 15 Nov 1994 08:12:31 GMT', '', rng.text(40, PRINTABLE)])],
      () => ['if-none-match', rng.pick([`"${world.kernelEtag}"`, `"${rng.pick(world.installerDigests)}"`, '*', `W/"${world.kernelEtag}"`, `"a", "${world.kernelEtag}"`, '"x"', ',,,', rng.text(30, PRINTABLE)])],
      () => ['if-match', rng.pick([`"${world.kernelEtag}"`, '*', '"x"', 'W/"x"', '', rng.text(30, PRINTABLE)])],
      () => ['if-modified-since', rng.pick(['Tue, 15 Nov 1994 08:12:31 GMT', 'yesterday', '0', ''])],
      () => ['accept', rng.pick(['*/*', 'application/json', 'application/vnd.oci.image.index.v1+json', 'application/vnd.docker.distribution.manifest.v2+json', 'text/html;q=0.1, */*;q=0', 'x/y;q=abc', ',,,', 'a'.repeat(5000)])],
      () => ['accept-encoding', rng.pick(['gzip', 'br', 'zstd', 'identity;q=0', '*;q=0', 'x'])],
      () => ['host', rng.pick(['localhost', 'example.com:99999', '[::1]', 'a b', '', 'x'.repeat(300)])],
      () => ['x-forwarded-for', rng.pick(['1.2.3.4', 'x', '::1, 1.1.1.1'])],
      () => ['x-forwarded-proto', rng.pick(['https', 'gopher', ''])],
      () => ['authorization', rng.pick(['Bearer x', 'Basic !!!', 'Basic ' + Buffer.from('a:b').toString('base64'), ''])],
      () => ['cookie', 'a=' + 'b'.repeat(rng.int(0, 6000))],
      () => ['content-type', rng.pick(CONTENT_TYPES)],
      () => ['origin', rng.pick(['https://example.com', 'null', 'x'])],
      () => [`x-${rng.text(rng.int(1, 20), 'abcdefghijklmnopqrstuvwxyz-')}`, rng.text(rng.int(0, 100), PRINTABLE)],
      () => ['x-factory-object', rng.pick(['../../etc/passwd', 'objects/x', ''])],
      () => ['x-factory-handoff', rng.pick(['x', 'a'.repeat(64)])],
    ])();
    headers[name] = value;
  }
  return { n, family: 'header', what: `headers ${Object.keys(headers).join(', ')}`, transport: 'http', method: rng.chance(0.8) ? 'GET' : 'HEAD', path: target, headers };
}

function rangeValue(rng: Rng): string {
  const a = rng.int(0, 5000);
  const b = rng.int(0, 5000);
  return rng.pick([
    `bytes=${a}-${b}`,
    `bytes=${a}-`,
    `bytes=-${b}`,
    `bytes=0-0`,
    `bytes=${a}-${b},${b}-${a}`,
    `bytes=${Array.from({ length: 200 }, (_, i) => `${i}-${i}`).join(',')}`,
    'bytes=99999999999999999999-',
    'bytes=-0',
    'bytes=0--1',
    'bytes= 1 - 2',
    'bytes=abc',
    'items=0-1',
    'bytes',
    '',
    `bytes=${a}-${b}`.toUpperCase(),
    `bytes=${Number.MAX_SAFE_INTEGER}-${Number.MAX_SAFE_INTEGER + 2}`,
    'bytes=1e3-2e3',
  ]);
}

// --- OCI -------------------------------------------------------------------------------------------------------------

function ociCase(rng: Rng, world: FuzzWorld, n: number): FuzzCase {
  const { id, known } = schematicIdLike(rng, world);
  const repo = rng.pick([
    `installer/${id}`,
    `metal-installer/${id}`,
    `installer-secureboot/${id}`,
    `${rng.pick(PLATFORMS)}-installer/${id}`,
    'siderolabs/imager',
    'siderolabs/installer-base',
    'siderolabs/extensions',
    'siderolabs/hello',
    'siderolabs/nope',
    'installer',
    rng.text(rng.int(1, 30), 'abcdefghijklmnopqrstuvwxyz0123456789._-/'),
    rng.text(rng.int(1, 10), ALNUM) + rng.pick(NASTY),
    'a/'.repeat(rng.int(1, 100)) + 'b',
  ]);
  const installerRepo = repo.includes('installer/') || repo.startsWith('installer-secureboot/');
  const prebuiltInstaller = repo === `${PREBUILT.installer}/${world.defaultId}`;
  // a valid tag on a known schematic's installer repository is a cold installer build: never sent, but the prebuilt one
  const tagChoices = prebuiltInstaller
    ? [world.version, world.version, ...BAD_VERSIONS.filter((v) => !world.versions.includes(v))]
    : installerRepo && known !== 'unknown'
      ? BAD_VERSIONS.filter((v) => !world.versions.includes(v))
      : [...world.versions, ...BAD_VERSIONS, 'latest'];
  const digest = rng.pick([rng.pick(prebuiltInstaller ? world.installerDigests : world.upstreamDigests), rng.pick(world.installerDigests), `sha256:${rng.text(64, HEX)}`, `sha256:${rng.text(rng.int(0, 70), HEX)}`, `sha512:${rng.text(128, HEX)}`, `md5:${rng.text(32, HEX)}`, 'sha256:' + rng.pick(NASTY), `sha256:${rng.text(64, HEX).toUpperCase()}`]);
  const reference = rng.chance(0.6) ? rng.pick(tagChoices) : digest;
  const r = rng.next();
  let path: string;
  let method = rng.chance(0.75) ? 'GET' : 'HEAD';
  if (r < 0.35) path = `/v2/${repo}/manifests/${reference}`;
  else if (r < 0.6) path = `/v2/${repo}/blobs/${digest}`;
  else if (r < 0.7) path = `/v2/${repo}/tags/list${rng.pick(['', '?n=1', '?n=-1', '?n=abc&last=%00', `?n=${'9'.repeat(30)}`])}`;
  else if (r < 0.78) path = `/v2/${repo}/referrers/${digest}${rng.pick(['', '?artifactType=x', '?artifactType=%00'])}`;
  else if (r < 0.85) path = rng.pick(['/v2/', '/v2', '/v2/_catalog', '/v2/_catalog?n=1', '/v2//', '/v2/../', '/v2/%2e%2e/manifests/x']);
  else {
    method = rng.pick(['POST', 'PUT', 'PATCH', 'DELETE']);
    path = rng.pick([`/v2/${repo}/blobs/uploads/`, `/v2/${repo}/blobs/uploads/${rng.text(36, HEX)}?digest=${digest}`, `/v2/${repo}/manifests/${reference}`, `/v2/${repo}/blobs/${digest}`]);
  }
  const headers: Record<string, string> = {};
  if (rng.chance(0.5)) headers.accept = rng.pick(['application/vnd.oci.image.index.v1+json', 'application/vnd.oci.image.manifest.v1+json', 'application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json', 'application/vnd.docker.distribution.manifest.v1+prettyjws', '*/*', 'text/html', 'x'.repeat(3000)]);
  if (rng.chance(0.2)) headers.range = rangeValue(rng);
  if (rng.chance(0.1)) headers['if-none-match'] = rng.pick(['*', `"${rng.pick(world.upstreamDigests)}"`, `"${rng.pick(world.installerDigests)}"`, '"x"']);
  if (rng.chance(0.1)) headers.authorization = rng.pick(['Bearer abc', 'Basic Og==', 'Bearer ' + 'a'.repeat(4000)]);
  const body = method === 'GET' || method === 'HEAD' ? undefined : rng.chance(0.5) ? Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', layers: [] })) : rng.bytes(rng.int(0, 300));
  if (body && rng.chance(0.5)) headers['content-type'] = rng.pick(['application/vnd.oci.image.manifest.v1+json', 'application/octet-stream']);
  return { n, family: 'oci', what: `OCI ${method} ${path.split('/').slice(2).filter((s) => ['manifests', 'blobs', 'tags', 'referrers', 'uploads', '_catalog'].includes(s)).join('/') || 'base'}`, transport: 'http', method, path: toRequestTarget(path), headers, body };
}

// --- malformed HTTP on a raw socket ----------------------------------------------------------------------------------

function rawCase(rng: Rng, world: FuzzWorld, n: number): FuzzCase {
  const asset = `/image/${world.defaultId}/${world.version}/kernel-amd64`;
  const kind = rng.int(0, 13);
  const crlf = '\r\n';
  let head: string | Buffer;
  let what: string;
  const close = 'Connection: close\r\n';
  switch (kind) {
    case 0: {
      const bad = rng.pick(['\0', '%00', '\r\n', '\n', ' ', '\t', '\u00e9', '\u4e2d', '\x7f', '\x1b[31m', '"', '<script>']);
      const base = rng.pick([`/v2/siderolabs/imager/manifests/a${bad}b`, `/schematics/${bad}`, `/image/${world.defaultId}/${world.version}/kernel-amd64${bad}`, `/versions${bad}`, `/v2/installer/${world.defaultId}/manifests/${bad}`, `/pxe/${bad}/x/y`]);
      head = Buffer.concat([Buffer.from('GET '), Buffer.from(base, rng.chance(0.5) ? 'utf8' : 'latin1'), Buffer.from(` HTTP/1.1\r\nHost: x\r\n${close}\r\n`)]);
      what = `unescaped ${JSON.stringify(bad)} in the request line`;
      break;
    }
    case 1: {
      const len = rng.pick([9000, 16 * 1024, 70 * 1024, 200 * 1024]);
      head = `GET /${'a'.repeat(len)} HTTP/1.1\r\nHost: x\r\n${close}\r\n`;
      what = `request line of ${len} bytes`;
      break;
    }
    case 2: {
      const claimed = rng.pick([100, 1000, 2_000_000_000, 1024 * 1024 + 1, 99999999999999]);
      head = `POST /schematics HTTP/1.1\r\nHost: x\r\nContent-Length: ${claimed}\r\n${close}\r\ncustomization: {}\n`;
      // past the body limit the server must not wait for the rest: the client keeps its side open
      if (claimed > 1024 * 1024 && rng.chance(0.5)) {
        return { n, family: 'raw', what: `Content-Length ${claimed} with 18 bytes, the connection kept open`, transport: 'raw', bytes: Buffer.from(head), keepOpen: true };
      }
      what = `Content-Length ${claimed} with 18 bytes, then the client stops sending`;
      break;
    }
    case 3: {
      const body = 'customization: {}\nextra bytes after the declared length';
      head = `POST /schematics HTTP/1.1\r\nHost: x\r\nContent-Length: ${rng.int(0, 17)}\r\n${close}\r\n${body}`;
      what = 'Content-Length shorter than the body';
      break;
    }
    case 4: {
      head = `POST /schematics HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: ${rng.pick(['6', '5', '-1', 'abc', '5, 5'])}\r\n${close}\r\nhello`;
      what = 'two Content-Length headers';
      break;
    }
    case 5: {
      head = `POST /schematics HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n${close}\r\n0\r\n\r\n`;
      what = 'Content-Length and chunked together';
      break;
    }
    case 6: {
      const chunk = rng.pick(['zz\r\nab\r\n0\r\n\r\n', 'ffffffffffffffff\r\nab', '-1\r\n', '5\r\nab\r\n0\r\n\r\n', '1;ext=' + 'x'.repeat(5000) + '\r\na\r\n0\r\n\r\n', '0\r\nTrailer: ' + 'y'.repeat(20000) + '\r\n\r\n', '100000\r\n' + 'a'.repeat(1000)]);
      head = `POST /schematics HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: ${rng.pick(['chunked', 'Chunked', 'gzip, chunked', 'chunked, gzip', 'identity'])}\r\n${close}\r\n${chunk}`;
      what = 'malformed chunked body';
      break;
    }
    case 7: {
      head = `GET ${asset} HTTP/1.1\r\nHost: x\r\n${'X-A: ' + 'b'.repeat(rng.pick([1000, 17000, 70000]))}\r\n${close}\r\n`;
      what = 'huge header';
      break;
    }
    case 8: {
      head = `GET ${asset} HTTP/1.1\r\nHost: x\r\n${Array.from({ length: rng.pick([100, 2100, 5000]) }, (_, i) => `X-${i}: v`).join(crlf)}\r\n${close}\r\n`;
      what = 'many headers';
      break;
    }
    case 9: {
      const line = rng.pick(['GET /versions', 'GET /versions HTTP/2.0', 'GET /versions HTTP/1.2', 'GET /versions HTTP/0.9', 'get /versions HTTP/1.1', 'GET  /versions  HTTP/1.1', 'BREW /versions HTTP/1.1', 'GET versions HTTP/1.1', 'GET http://x/versions HTTP/1.1', 'CONNECT x:443 HTTP/1.1', 'GET * HTTP/1.1', '\r\n\r\nGET /versions HTTP/1.1', 'GET /versions HTTP/1.1 extra']);
      head = `${line}\r\nHost: x\r\n${close}\r\n`;
      what = `odd request line ${JSON.stringify(line.slice(0, 40))}`;
      break;
    }
    case 10: {
      const bad = rng.pick(['X-A b\r\n', ' folded\r\n', 'X-\0: v\r\n', 'X-A: v\0w\r\n', ': v\r\n', 'Host: y\r\n', 'X-A: \xff\xfe\r\n', 'Range: bytes=0-1\r\nRange: bytes=2-3\r\n']);
      head = Buffer.from(`GET ${asset} HTTP/1.1\r\nHost: x\r\n${bad}${close}\r\n`, 'latin1');
      what = `malformed header ${JSON.stringify(bad.trim().slice(0, 30))}`;
      break;
    }
    case 11: {
      head = `GET ${asset} HTTP/1.1\r\nHost: x\r\nExpect: ${rng.pick(['100-continue', 'x'])}\r\n${close}\r\n`;
      what = 'Expect header';
      break;
    }
    case 12: {
      // pipelined requests, the last one closing
      const count = rng.int(2, 20);
      head = Array.from({ length: count }, (_, i) => `GET ${rng.pick(['/versions', '/healthz', `/schematics/${world.defaultId}`, asset + '.sha256'])} HTTP/1.1\r\nHost: x\r\n${i === count - 1 ? close : ''}\r\n`).join('');
      what = `${count} pipelined requests`;
      break;
    }
    default: {
      head = rng.bytes(rng.int(1, 2000));
      what = 'random bytes instead of a request';
    }
  }
  return { n, family: 'raw', what, transport: 'raw', bytes: typeof head === 'string' ? Buffer.from(head, 'utf8') : head };
}
