/**
 * Overlay installer protocol (talos-formats §10.2) and profile fragment reading (§10.1).
 *
 * Requests are serialized the way the Go imager does (go-yaml `Marshal`: 4-space indent, map keys sorted,
 * struct fields in declaration order) with @factory/goyaml; replies and profiles are parsed with `yaml` using the
 * failsafe schema, so every scalar arrives as its text, like go-yaml decoding into Go `string` fields.
 */
import fs from 'node:fs';
import path from 'node:path';
import { marshal } from '@factory/goyaml';
import { parse } from 'yaml';
import { OverlayInstallerError, RunLimits, runInstaller } from './run';

export interface OverlayOptionsResult {
  name: string;
  kernelArgs: string[];
  partitionOptions?: { offset?: number };
}

export interface OverlayInstallInput {
  /** Disk image (or device) the installer may write boot blobs into. */
  installDisk: string;
  /** Staging root; the installer writes below `<mountPrefix>/boot/EFI/...`. Created when missing. */
  mountPrefix: string;
  /** The overlay image's `artifacts` directory. */
  artifactsPath: string;
  /** The schematic's `overlay.options`. */
  extraOptions: unknown;
}

export type Bootloader = 'grub' | 'sd-boot' | 'dual-boot';

export interface OverlayProfile {
  bootloader?: Bootloader;
  arch?: string;
  extraKernelArgs?: string[];
}

const MAX_PROFILE_BYTES = 1024 * 1024;

/** JS value -> the Go value a schematic map decodes to (objects become sorted maps, recursively). */
function goValue(v: unknown, where: string): unknown {
  if (v === null || v === undefined) return null;
  if (Array.isArray(v)) return v.map((x, i) => goValue(x, `${where}[${i}]`));
  if (v instanceof Map) return new Map([...v].map(([k, x]) => [String(k), goValue(x, `${where}.${String(k)}`)]));
  if (typeof v === 'object') {
    if (Object.getPrototypeOf(v) !== Object.prototype && Object.getPrototypeOf(v) !== null) {
      throw new TypeError(`overlay options: unsupported value at ${where}`);
    }
    return new Map(Object.entries(v as Record<string, unknown>).map(([k, x]) => [k, goValue(x, `${where}.${k}`)]));
  }
  if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return v;
  throw new TypeError(`overlay options: unsupported value at ${where}`);
}

/** `overlay.options` as the map[string]any the imager marshals (nil/absent -> `{}`). */
function optionsMap(options: unknown): Map<string, unknown> {
  if (options === null || options === undefined) return new Map();
  if (typeof options !== 'object' || Array.isArray(options)) throw new TypeError('overlay options must be a mapping');
  return goValue(options, 'options') as Map<string, unknown>;
}

/** YAML document fed to `get-options`. */
export function getOptionsRequest(options: unknown): string {
  return marshal(optionsMap(options));
}

/** YAML document fed to `install` (extraOptions omitted when empty, as `omitempty` does). */
export function installRequest(input: OverlayInstallInput): string {
  const extra = optionsMap(input.extraOptions);
  const doc: Record<string, unknown> = {
    installDisk: input.installDisk,
    mountPrefix: input.mountPrefix,
    artifactsPath: input.artifactsPath,
  };
  if (extra.size > 0) doc.extraOptions = extra;
  return marshal(doc);
}

const isNullText = (s: string) => s === '' || s === '~' || s === 'null' || s === 'Null' || s === 'NULL';

function asRecord(v: unknown, what: string): Record<string, unknown> {
  if (v === null || v === undefined || v === '') return {};
  if (typeof v !== 'object' || Array.isArray(v)) throw new Error(`${what} is not a mapping`);
  return v as Record<string, unknown>;
}

function asString(v: unknown, what: string): string {
  if (v === undefined) return '';
  if (typeof v !== 'string') throw new Error(`${what} is not a string`);
  return isNullText(v) ? '' : v;
}

function asStrings(v: unknown, what: string): string[] {
  if (v === undefined || (typeof v === 'string' && isNullText(v))) return [];
  if (!Array.isArray(v)) throw new Error(`${what} is not a list`);
  return v.map((x, i) => asString(x, `${what}[${i}]`));
}

/** Go `strconv.ParseUint(s, 0, 64)` on a YAML int (underscores allowed), as decoding into uint64. */
function asUint(v: unknown, what: string): number | undefined {
  const s = asString(v, what).replace(/_/g, '');
  if (s === '') return undefined;
  const m = /^\+?(?:(0[xX][0-9a-fA-F]+)|(0[oO][0-7]+)|(0[bB][01]+)|(0[0-7]*)|([1-9][0-9]*))$/.exec(s);
  if (!m) throw new Error(`${what}: "${s}" is not an unsigned integer`);
  let n: bigint;
  if (m[1]) n = BigInt(m[1]);
  else if (m[2]) n = BigInt(`0o${m[2].slice(2)}`);
  else if (m[3]) n = BigInt(`0b${m[3].slice(2)}`);
  else if (m[4]) n = m[4] === '0' ? 0n : BigInt(`0o${m[4].slice(1)}`);
  else n = BigInt(m[5]);
  if (n > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error(`${what}: ${s} is too large`);
  return Number(n);
}

/** Parse the `get-options` reply. */
export function parseOptionsReply(stdout: string): OverlayOptionsResult {
  let doc: unknown;
  try {
    doc = parse(stdout, { schema: 'failsafe', uniqueKeys: true, maxAliasCount: 100 });
  } catch (e) {
    throw new OverlayInstallerError(`overlay installer get-options: invalid YAML: ${(e as Error).message}`, 'protocol');
  }
  try {
    const r = asRecord(doc, 'get-options reply');
    const name = asString(r.name, 'name');
    if (!name) throw new Error('name is missing');
    const out: OverlayOptionsResult = { name, kernelArgs: asStrings(r.kernelArgs, 'kernelArgs') };
    if (r.partitionOptions !== undefined) {
      const po = asRecord(r.partitionOptions, 'partitionOptions');
      const offset = asUint(po.offset, 'partitionOptions.offset');
      out.partitionOptions = offset === undefined ? {} : { offset };
    }
    return out;
  } catch (e) {
    if (e instanceof OverlayInstallerError) throw e;
    throw new OverlayInstallerError(`overlay installer get-options: ${(e as Error).message}`, 'protocol');
  }
}

/** `installer get-options`: the overlay's name, kernel arguments and partition options for these options. */
export async function overlayGetOptions(installer: string, options: unknown, o?: RunLimits): Promise<OverlayOptionsResult> {
  const req = getOptionsRequest(options);
  const { stdout } = await runInstaller(installer, 'get-options', req, o);
  return parseOptionsReply(stdout.toString('utf8'));
}

/**
 * `installer install`. When the installer runs as another user (root -> nobody), `mountPrefix` and `installDisk`
 * are handed to that user for the run and given back afterwards, `artifactsPath` is made readable, and our own
 * directories on the way get search permission (see `AccessPlan` in run.ts).
 */
export async function overlayInstall(installer: string, input: OverlayInstallInput, o?: RunLimits): Promise<void> {
  for (const [k, v] of Object.entries({ installDisk: input.installDisk, mountPrefix: input.mountPrefix, artifactsPath: input.artifactsPath })) {
    if (typeof v !== 'string') throw new TypeError(`overlayInstall: ${k} must be a string`);
    if (v && !path.isAbsolute(v)) throw new TypeError(`overlayInstall: ${k} must be an absolute path`);
  }
  if (!input.mountPrefix || !input.artifactsPath) throw new TypeError('overlayInstall: mountPrefix and artifactsPath are required');
  await fs.promises.mkdir(input.mountPrefix, { recursive: true });
  const diskExists = input.installDisk ? await fs.promises.stat(input.installDisk).then((s) => s.isFile(), () => false) : false;
  await runInstaller(installer, 'install', installRequest(input), o, {
    read: [input.artifactsPath],
    writeTrees: [input.mountPrefix],
    writeFiles: diskExists ? [input.installDisk] : [],
  });
}

/**
 * Read an overlay profile fragment (`profiles/<name>.yaml`) for the fields the factory merges: bootloader
 * (`output.imageOptions.bootloader`), arch and `customization.extraKernelArgs`.
 */
export async function readOverlayProfile(file: string): Promise<OverlayProfile> {
  const st = await fs.promises.stat(file);
  if (!st.isFile() || st.size > MAX_PROFILE_BYTES) throw new Error(`overlay profile ${file}: not a regular file of at most 1 MiB`);
  const text = await fs.promises.readFile(file, 'utf8');
  let doc: unknown;
  try {
    doc = parse(text, { schema: 'failsafe', uniqueKeys: true, maxAliasCount: 100 });
  } catch (e) {
    throw new Error(`overlay profile ${file}: invalid YAML: ${(e as Error).message}`);
  }
  const where = (s: string) => `overlay profile ${file}: ${s}`;
  const root = asRecord(doc, where('document'));
  const out: OverlayProfile = {};
  const arch = asString(root.arch, where('arch'));
  if (arch) out.arch = arch;
  const output = asRecord(root.output, where('output'));
  const imageOptions = asRecord(output.imageOptions, where('output.imageOptions'));
  const bl = asString(imageOptions.bootloader, where('output.imageOptions.bootloader'));
  if (bl) {
    if (bl !== 'grub' && bl !== 'sd-boot' && bl !== 'dual-boot') throw new Error(where(`unknown bootloader "${bl}"`));
    out.bootloader = bl;
  }
  const customization = asRecord(root.customization, where('customization'));
  if (customization.extraKernelArgs !== undefined) {
    out.extraKernelArgs = asStrings(customization.extraKernelArgs, where('customization.extraKernelArgs'));
  }
  return out;
}
