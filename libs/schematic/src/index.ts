/**
 * @factory/schematic — the Image Factory schematic model: strict parsing (go-yaml v4 Decoder with KnownFields),
 * canonical serialization (go-yaml v4 Marshal bytes) and the schematic ID (sha256 of those bytes).
 */
import { createHash } from 'crypto';
import { GoBytesString, GoFloat, GoTime, marshal } from '@factory/goyaml';
import {
  ConstructError,
  Constructor,
  FatalConstructError,
  GoDynMap,
  GoType,
  T_BOOL,
  T_MAP_STRING_ANY,
  T_STRING,
  T_UINT,
  T_UINT8,
  zeroValue,
} from './construct';
import { GNode, YamlEOF, YamlLimitError, YamlSyntaxError, decodeBody, parseFirstDocument } from './yamlnode';

export { YAML_LIMITS } from './yamlnode';
export { MAX_SCHEMATIC_BYTES, SCHEMATICS_PREFIX, schematicObjectKey, readStoredSchematic } from './stored';
export type { SchematicObjectReader } from './stored';

export interface MetaValue {
  key: number;
  value: string;
}

export type BootloaderKind = 'dual-boot' | 'sd-boot' | 'grub';

/**
 * A schematic. Field order is the canonical order. Absent fields are the Go zero values (and are omitted from
 * the canonical form).
 *
 * `overlay.options` holds the decoded free-form YAML (Go map[string]any):
 *  - mappings with only string keys -> plain objects (key order irrelevant: keys are sorted on output);
 *    mappings with other key types -> `Map` (keys: string, number/bigint, boolean, null, GoFloat, GoTime);
 *  - ints -> number (bigint beyond 2^53); floats -> number, or `GoFloat` when integral (so `1.0` stays a float
 *    and re-serializes as go-yaml does: `1`, `1e+06`, ...); bools, strings, null as is; timestamps -> `GoTime`;
 *    `!!binary` data that is not UTF-8 -> `GoBytesString`; sequences -> arrays.
 */
export interface Schematic {
  owner?: string;
  overlay?: { image: string; name: string; options?: Record<string, unknown> };
  customization: {
    embeddedMachineConfiguration?: string;
    extraKernelArgs?: string[];
    meta?: MetaValue[];
    systemExtensions?: { officialExtensions?: string[] };
    bootloader?: BootloaderKind; // 'none' is the zero value -> omitted
    secureboot?: { enrollKeys?: string; includeWellKnownCertificates?: boolean };
    diskImage?: { sectorSize?: number };
  };
}

/** A schematic that cannot be accepted; `message` is a single line, suitable as an HTTP 400 body. */
export class SchematicError extends Error {
  constructor(message: string) {
    super(message.replace(/\s*[\r\n]+\s*/g, ' '));
    this.name = 'SchematicError';
  }
}

export const DEFAULT_SCHEMATIC_ID = '376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba';

export const OWNER_NOT_SUPPORTED = 'owner field is only supported in Enterprise edition';

// --- Go type model -----------------------------------------------------------------------------------------------

const BOOTLOADER_NAMES = ['none', 'dual-boot', 'sd-boot', 'grub'] as const;
const BOOTLOADERS = new Map<string, number>(BOOTLOADER_NAMES.map((n, i) => [n, i]));

/** imageropts.BootloaderKind (enumer -text): exact name, then lower-cased name lookup. */
function parseBootloader(text: string): { ok: true; value: unknown } | { ok: false; error: string } {
  const v = BOOTLOADERS.get(text) ?? BOOTLOADERS.get(text.toLowerCase());
  if (v === undefined) return { ok: false, error: `${text} does not belong to BootloaderKind values` };
  return { ok: true, value: v };
}

const T_STRINGS: GoType = { k: 'slice', name: '[]string', elem: T_STRING };
const T_META: GoType = {
  k: 'struct',
  name: 'schematic.MetaValue',
  fields: [
    { key: 'key', type: T_UINT8 },
    { key: 'value', type: T_STRING },
  ],
};
const T_OVERLAY: GoType = {
  k: 'struct',
  name: 'schematic.Overlay',
  fields: [
    { key: 'image', type: T_STRING },
    { key: 'name', type: T_STRING },
    { key: 'options', type: T_MAP_STRING_ANY },
  ],
};
const T_CUSTOMIZATION: GoType = {
  k: 'struct',
  name: 'schematic.Customization',
  fields: [
    { key: 'embeddedMachineConfiguration', type: T_STRING },
    { key: 'extraKernelArgs', type: T_STRINGS },
    { key: 'meta', type: { k: 'slice', name: '[]schematic.MetaValue', elem: T_META } },
    {
      key: 'systemExtensions',
      type: { k: 'struct', name: 'schematic.SystemExtensions', fields: [{ key: 'officialExtensions', type: T_STRINGS }] },
    },
    { key: 'bootloader', type: { k: 'text', name: 'imageropts.BootloaderKind', zero: 0, parse: parseBootloader } },
    {
      key: 'secureboot',
      type: {
        k: 'struct',
        name: 'schematic.SecureBootCustomization',
        fields: [
          { key: 'enrollKeys', type: T_STRING },
          { key: 'includeWellKnownCertificates', type: T_BOOL },
        ],
      },
    },
    {
      key: 'diskImage',
      type: { k: 'struct', name: 'schematic.DiskImageCustomization', fields: [{ key: 'sectorSize', type: T_UINT }] },
    },
  ],
};
const T_SCHEMATIC: GoType = {
  k: 'struct',
  name: 'schematic.Schematic',
  fields: [
    { key: 'owner', type: T_STRING },
    { key: 'overlay', type: T_OVERLAY },
    { key: 'customization', type: T_CUSTOMIZATION },
  ],
};

// --- decoded Go values -> public model ---------------------------------------------------------------------------

type GoStruct = Record<string, unknown>;

function toPublicAny(v: unknown): unknown {
  if (v === null || typeof v === 'string' || typeof v === 'boolean') return v;
  if (typeof v === 'bigint') return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  if (v instanceof GoFloat) return Number.isInteger(v.value) ? v : v.value;
  if (v instanceof GoTime || v instanceof GoBytesString) return v;
  if (Array.isArray(v)) return v.map(toPublicAny);
  if (v instanceof GoDynMap) {
    if (v.stringKeys) return toPublicStringMap(v);
    return new Map(v.entries().map(([k, val]) => [toPublicAny(k), toPublicAny(val)]));
  }
  return v;
}

function toPublicStringMap(m: GoDynMap): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  for (const [k, v] of m.entries()) {
    if (k === '__proto__') {
      Object.defineProperty(o, k, { value: toPublicAny(v), enumerable: true, writable: true, configurable: true });
    } else {
      o[k as string] = toPublicAny(v);
    }
  }
  return o;
}

function stringsOf(v: unknown): string[] {
  return Array.isArray(v) ? (v as string[]) : [];
}

function toSchematic(g: GoStruct): Schematic {
  const out: Schematic = { customization: {} };
  if (g.owner) out.owner = g.owner as string;

  const ov = g.overlay as GoStruct;
  const options = ov.options as GoDynMap | null;
  if (ov.image || ov.name || (options && options.size > 0)) {
    out.overlay = { image: ov.image as string, name: ov.name as string };
    if (options && options.size > 0) out.overlay.options = toPublicStringMap(options);
  }

  const c = g.customization as GoStruct;
  const oc = out.customization;
  if (c.embeddedMachineConfiguration) oc.embeddedMachineConfiguration = c.embeddedMachineConfiguration as string;
  const args = stringsOf(c.extraKernelArgs);
  if (args.length > 0) oc.extraKernelArgs = [...args];
  const meta = Array.isArray(c.meta) ? (c.meta as GoStruct[]) : [];
  if (meta.length > 0) oc.meta = meta.map((m) => ({ key: Number(m.key as bigint), value: m.value as string }));
  const exts = stringsOf((c.systemExtensions as GoStruct).officialExtensions);
  if (exts.length > 0) oc.systemExtensions = { officialExtensions: [...exts] };
  const bl = c.bootloader as number;
  if (bl !== 0) oc.bootloader = BOOTLOADER_NAMES[bl] as BootloaderKind;
  const sb = c.secureboot as GoStruct;
  if (sb.enrollKeys || sb.includeWellKnownCertificates) {
    oc.secureboot = {};
    if (sb.enrollKeys) oc.secureboot.enrollKeys = sb.enrollKeys as string;
    if (sb.includeWellKnownCertificates) oc.secureboot.includeWellKnownCertificates = true;
  }
  const sectorSize = (c.diskImage as GoStruct).sectorSize as bigint;
  if (sectorSize !== 0n) oc.diskImage = { sectorSize: Number(sectorSize) };
  return out;
}

// --- parsing -----------------------------------------------------------------------------------------------------

function formatConstructErrors(errors: ConstructError[]): string {
  return (
    'yaml: construct errors: ' +
    errors.map((e) => (e.line > 0 ? `line ${e.line}: ` : '<unknown position>: ') + e.message).join('; ')
  );
}

function located(message: string, line: number): string {
  return line > 0 ? `yaml: line ${line}: ${message}` : `yaml: ${message}`;
}

export interface ParseOptions {
  /**
   * Enterprise edition: accept a non-empty `owner`. Default false (community): a non-empty owner is rejected with
   * `owner field is only supported in Enterprise edition` (upstream's Schematic.Validate(false)).
   */
  enterprise?: boolean;
}

/**
 * Decode a POST /schematics body exactly like upstream (go-yaml v4 Decoder, KnownFields(true), first document
 * only) and validate it for the community edition. Returns the normalized schematic (zero values omitted).
 *
 * Error messages (SchematicError.message):
 *  - empty stream (empty body, only whitespace/comments): `EOF`;
 *  - type / unknown-field / duplicate-key errors: `yaml: construct errors: line N: ...[; line M: ...]`, in
 *    go-yaml's words (`field x not found in type schematic.Schematic`, `cannot construct !!int \`256\` into uint8`,
 *    `auto does not belong to BootloaderKind values`, `cannot construct !!seq into string`, ...);
 *  - syntax errors: `yaml: line N: <parser message>`; reader errors (bad UTF-8, control characters):
 *    `yaml: <message>` (go-yaml itself reports these as "go-yaml load error in <stage> at L.C: ...");
 *  - community edition with an owner: `owner field is only supported in Enterprise edition`;
 *  - a body beyond YAML_LIMITS: `yaml: document contains excessive aliasing (more than 1000 aliases)`,
 *    `yaml: document is too large (more than 25000 YAML tokens)`, `yaml: exceeded max depth of 100`, ... (go-yaml's
 *    own ratio rule gives `yaml: line N: document contains excessive aliasing`).
 *
 * A bare null document (`---`, `~`, `null`) decodes to the empty schematic, as in go-yaml; any other non-mapping
 * document is rejected (`cannot construct !!str \`foo\` into schematic.Schematic`, `!!seq`, ...).
 */
export function parseSchematic(body: string | Buffer, opts: ParseOptions = {}): Schematic {
  let root: GNode;
  let decoded: GoStruct;
  try {
    const text = decodeBody(body);
    root = parseFirstDocument(text);
    const c = new Constructor();
    decoded = c.construct(root, T_SCHEMATIC, zeroValue(T_SCHEMATIC)).value as GoStruct;
    if (c.errors.length > 0) throw new SchematicError(formatConstructErrors(c.errors));
  } catch (e) {
    if (e instanceof SchematicError) throw e;
    if (e instanceof YamlEOF) throw new SchematicError('EOF');
    if (e instanceof YamlSyntaxError || e instanceof FatalConstructError) throw new SchematicError(located(e.message, e.line));
    if (e instanceof YamlLimitError) throw new SchematicError(`yaml: ${e.message}`);
    // The yaml package's composer recurses; a stack overflow there is a depth limit too.
    if (e instanceof RangeError) throw new SchematicError('yaml: exceeded max depth');
    throw e;
  }
  const ss = (decoded.customization as GoStruct).diskImage as GoStruct;
  if ((ss.sectorSize as bigint) > BigInt(Number.MAX_SAFE_INTEGER)) {
    // Deviation: Go accepts any uint64; this model keeps sectorSize as a JS number.
    throw new SchematicError(`yaml: diskImage.sectorSize ${ss.sectorSize} is out of the supported range`);
  }
  const s = toSchematic(decoded);
  if (!opts.enterprise) assertCommunity(s);
  return s;
}

/**
 * A request body as the text the parser reads (UTF-8, or UTF-16 with a BOM, like go-yaml's reader), checked the way
 * parseSchematic checks it: invalid UTF-8 or a forbidden control character is a SchematicError in go-yaml's words
 * (`yaml: invalid leading UTF-8 octet (value: 255)`), never replaced by U+FFFD. For callers that carry a body
 * onward as a string (the gateway hands it to the schematic-store as job data).
 */
export function decodeSchematicBody(body: Uint8Array): string {
  try {
    return decodeBody(body);
  } catch (e) {
    if (e instanceof YamlSyntaxError) throw new SchematicError(located(e.message, e.line));
    throw e;
  }
}

/** Community-edition validation: a non-empty owner is rejected (parseSchematic already does this by default). */
export function assertCommunity(s: Schematic): void {
  if (s.owner) throw new SchematicError(OWNER_NOT_SUPPORTED);
}

// --- canonical form ----------------------------------------------------------------------------------------------

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (v === null || typeof v !== 'object') return false;
  const p = Object.getPrototypeOf(v);
  return p === Object.prototype || p === null;
}

/** Public option values -> goyaml input with Go map semantics (every mapping becomes a sorted Go map). */
function toGoAny(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(toGoAny);
  if (v instanceof Map) return new Map([...v.entries()].map(([k, val]) => [k, toGoAny(val)]));
  if (isPlainObject(v)) {
    const m = new Map<string, unknown>();
    for (const [k, val] of Object.entries(v)) if (val !== undefined) m.set(k, toGoAny(val));
    return m;
  }
  return v;
}

function isEmptyOptions(o: unknown): boolean {
  if (o === null || o === undefined) return true;
  if (o instanceof Map) return o.size === 0;
  if (typeof o === 'object') {
    for (const v of Object.values(o as object)) if (v !== undefined) return false;
    return true;
  }
  return false;
}

function canonicalBootloader(b: string | undefined): string | undefined {
  if (b === undefined || b === '') return undefined;
  const v = parseBootloader(b);
  if (!v.ok) throw new SchematicError(v.error);
  return v.value === 0 ? undefined : BOOTLOADER_NAMES[v.value as number];
}

/** Go struct value for yaml.Marshal, honouring the omitempty tags of upstream's Schematic. */
function goValueOf(s: Schematic): Record<string, unknown> {
  const root: Record<string, unknown> = {};
  if (s.owner) root.owner = s.owner;
  const ov = s.overlay;
  if (ov && (ov.image || ov.name || !isEmptyOptions(ov.options))) {
    const o: Record<string, unknown> = { image: ov.image ?? '', name: ov.name ?? '' };
    if (!isEmptyOptions(ov.options)) o.options = toGoAny(ov.options);
    root.overlay = o;
  }
  const c = s.customization ?? {};
  const cust: Record<string, unknown> = {};
  if (c.embeddedMachineConfiguration) cust.embeddedMachineConfiguration = c.embeddedMachineConfiguration;
  if (c.extraKernelArgs && c.extraKernelArgs.length > 0) cust.extraKernelArgs = [...c.extraKernelArgs];
  if (c.meta && c.meta.length > 0) {
    cust.meta = c.meta.map((m) => {
      if (!Number.isInteger(m.key) || m.key < 0 || m.key > 255) throw new SchematicError(`meta key ${m.key} is not a uint8`);
      return { key: m.key, value: m.value ?? '' };
    });
  }
  const exts = c.systemExtensions?.officialExtensions;
  if (exts && exts.length > 0) cust.systemExtensions = { officialExtensions: [...exts] };
  const bl = canonicalBootloader(c.bootloader);
  if (bl) cust.bootloader = bl;
  const sb = c.secureboot;
  if (sb && (sb.enrollKeys || sb.includeWellKnownCertificates)) {
    const o: Record<string, unknown> = {};
    if (sb.enrollKeys) o.enrollKeys = sb.enrollKeys;
    if (sb.includeWellKnownCertificates) o.includeWellKnownCertificates = true;
    cust.secureboot = o;
  }
  const sectorSize = c.diskImage?.sectorSize;
  if (sectorSize) {
    if (!Number.isSafeInteger(sectorSize) || sectorSize < 0) throw new SchematicError(`sectorSize ${sectorSize} is not a uint`);
    cust.diskImage = { sectorSize };
  }
  root.customization = cust;
  return root;
}

/** The canonical YAML text: go-yaml v4 `yaml.Marshal(schematic)` bytes. */
export function canonicalYaml(s: Schematic): string {
  return marshal(goValueOf(s));
}

/** Schematic ID: lowercase hex SHA-256 of the canonical YAML. */
export function schematicId(s: Schematic): string {
  return createHash('sha256').update(canonicalYaml(s), 'utf8').digest('hex');
}

/** 64 lowercase hex characters. */
export function isSchematicId(id: string): boolean {
  return typeof id === 'string' && /^[0-9a-f]{64}$/.test(id);
}

/** The official extensions requested by the schematic, in schematic order (not sorted, not de-duplicated). */
export function extensionsOf(s: Schematic): string[] {
  return [...(s.customization?.systemExtensions?.officialExtensions ?? [])];
}
