/**
 * Kernel command line construction (anchor §3.4, talos-formats §5, §9.2).
 *
 * `KernelCmdline` reproduces the semantics of the Go `procfs.Cmdline` the imager uses: an ordered list of keys, each
 * with an ordered list of values; rendering emits `key=value` per value (bare `key` for an empty value), all values of
 * a key adjacent, keys in first-seen order.
 */
import { goGzip } from '@factory/gocompat';
import { canonicalPlatformName, platformKernelArgs } from './platforms';
import type { Arch, OutputKind } from './profile';
import { dropInitOnAlloc, extraArgsApply, ima, isoHaltIfInstalled, metaApplies, metaGzip, moduleSigEnforce, nvmeTimeoutAwsOnly, procMemForceOverride, selinux } from './quirks';
import type { SemVer } from './version';

export interface KernelParam {
  key: string;
  values: string[];
}

/** Go's `unicode.IsSpace` set, as `strings.Fields` uses it. */
const GO_SPACE = /[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+/;

/**
 * Parse arguments the go-procfs way: (a list is joined with spaces) split on whitespace; each field is `key` (empty
 * value) or `key=value` (split at the first `=`); repeated keys are grouped under their first occurrence.
 */
export function parseKernelArgs(args: string | readonly string[]): KernelParam[] {
  const line = typeof args === 'string' ? args : args.join(' ');
  const out: KernelParam[] = [];
  for (const field of line.split(GO_SPACE)) {
    if (!field) continue;
    const eq = field.indexOf('=');
    const key = eq < 0 ? field : field.slice(0, eq);
    const value = eq < 0 ? '' : field.slice(eq + 1);
    const existing = out.find((p) => p.key === key);
    if (existing) existing.values.push(value);
    else out.push({ key, values: [value] });
  }
  return out;
}

export interface AppendAllOptions {
  /** Keys whose whole value list is replaced (in place) instead of appended to. */
  overwrite?: readonly string[];
  /** `-key` removes the key entirely, `-key=value` removes just those values. */
  deleteNegated?: boolean;
}

export class KernelCmdline {
  private params: KernelParam[];

  constructor(initial: string | readonly string[] = '') {
    this.params = parseKernelArgs(initial);
  }

  /** The values of a key (a copy), or undefined when the key is absent. */
  get(key: string): string[] | undefined {
    const p = this.params.find((x) => x.key === key);
    return p ? [...p.values] : undefined;
  }

  has(key: string): boolean {
    return this.params.some((x) => x.key === key);
  }

  keys(): string[] {
    return this.params.map((p) => p.key);
  }

  /** Replace the key's values in place, or add the key at the end. */
  set(key: string, values: readonly string[]): this {
    const next = { key, values: [...values] };
    const i = this.params.findIndex((x) => x.key === key);
    if (i >= 0) this.params[i] = next;
    else this.params.push(next);
    return this;
  }

  /** `set` for every parsed key of `args`. */
  setAll(args: string | readonly string[]): this {
    for (const p of parseKernelArgs(args)) this.set(p.key, p.values);
    return this;
  }

  /** Add a value to the key's group, or add the key at the end. */
  append(key: string, value: string): this {
    const p = this.params.find((x) => x.key === key);
    if (p) p.values.push(value);
    else this.params.push({ key, values: [value] });
    return this;
  }

  /**
   * Append every parsed value of `args` to its key group. With `deleteNegated`, a key starting with `-` (longer than
   * `-` itself) deletes instead: if its first value is empty (`-key`) the whole key goes, else (`-key=v`) the listed
   * values go (the key stays, possibly with no values). Keys in `overwrite` are `set` with all their values.
   */
  appendAll(args: string | readonly string[], opts: AppendAllOptions = {}): this {
    for (const p of parseKernelArgs(args)) {
      if (opts.deleteNegated && p.key.length > 1 && p.key.startsWith('-')) {
        const key = p.key.slice(1);
        if (p.values[0] === '') this.deleteAll(key);
        else this.delete(key, p.values);
        continue;
      }
      if (opts.overwrite?.includes(p.key)) {
        this.set(p.key, p.values);
        continue;
      }
      for (const v of p.values) this.append(p.key, v);
    }
    return this;
  }

  /** Remove the listed values from the key (the key itself stays, even if left without values). */
  delete(key: string, values: readonly string[]): this {
    const p = this.params.find((x) => x.key === key);
    if (p) p.values = p.values.filter((v) => !values.includes(v));
    return this;
  }

  /** Remove the key and all its values. */
  deleteAll(key: string): this {
    const i = this.params.findIndex((x) => x.key === key);
    if (i >= 0) this.params.splice(i, 1);
    return this;
  }

  toString(): string {
    const out: string[] = [];
    for (const p of this.params) for (const v of p.values) out.push(v === '' ? p.key : `${p.key}=${v}`);
    return out.join(' ');
  }
}

/** Talos default kernel arguments for a version (talos-formats §5.2), in order; `slab_nomerge=` renders bare. */
export function defaultKernelArgs(version: SemVer): string[] {
  const out: string[] = [];
  if (!dropInitOnAlloc(version)) out.push('init_on_alloc=1');
  out.push('slab_nomerge=', 'pti=on', 'consoleblank=0');
  if (!nvmeTimeoutAwsOnly(version)) out.push('nvme_core.io_timeout=4294967295');
  out.push('printk.devkmsg=on');
  if (ima(version)) out.push('ima_template=ima-ng', 'ima_appraise=fix', 'ima_hash=sha512');
  if (selinux(version)) out.push('selinux=1');
  if (moduleSigEnforce(version)) out.push('module.sig_enforce=1');
  if (procMemForceOverride(version)) out.push('proc_mem.force_override=never');
  return out;
}

/**
 * Secure boot kernel arguments. The factory's pinned imager (Talos v1.14.0-rc.1) adds `lockdown=confidentiality` for
 * every version; Talos master only does for < 1.14 — follow it when the pinned library moves on.
 */
export function secureBootKernelArgs(_version: SemVer): string[] {
  return ['lockdown=confidentiality'];
}

export interface MetaValue {
  /** 0–255 */
  key: number;
  value: string;
}

/** META payload text: `0x<hex key>=<value>` joined by `;` (lowercase hex, no padding). */
export function encodeMetaPayload(meta: readonly MetaValue[]): string {
  return meta.map((m) => `0x${m.key.toString(16)}=${m.value}`).join(';');
}

/**
 * `INSTALLER_META_BASE64=<b64>` for `talos.environment=` (talos-formats §9.2): the payload, gzipped (best
 * compression) first only when Talos ≥ 1.6.3 and the raw payload is longer than 256 bytes, then standard base64.
 */
export function metaEnvValue(meta: readonly MetaValue[], version: SemVer): string {
  let raw: Buffer = Buffer.from(encodeMetaPayload(meta), 'utf8');
  if (metaGzip(version) && raw.length > 256) raw = goGzip(raw, 9);
  return `INSTALLER_META_BASE64=${raw.toString('base64')}`;
}

export interface CmdlineInput {
  platform: string;
  arch: Arch;
  version: SemVer;
  kind: OutputKind;
  secureboot: boolean;
  /** Kernel args from the overlay installer's `get-options` (SBC overlays). */
  overlayArgs?: string[];
  /** META values (added as `talos.environment=…` unless the output is a disk image). */
  meta?: MetaValue[];
  /** Schematic `extraKernelArgs`. */
  extraArgs?: string[];
}

/**
 * The imager's kernel command line (no trailing newline), in the order of talos-formats §5.1:
 * `talos.platform=<name>`, platform args (set), ISO ≥ 1.8 `talos.halt_if_installed=1`, overlay args (set), defaults
 * (append), secure boot args (append), META env arg (append; not for disk images), then extra args where `console`
 * and `talos.platform` replace, `-key` / `-key=value` delete and everything else appends to its key group.
 *
 * This is the imager's view: it uses `meta` and `extraArgs` as given. Use `buildFactoryCmdline` to also apply the
 * factory's per-output rules of which schematic customizations reach the imager.
 */
export function buildCmdline(input: CmdlineInput): string {
  const { platform, arch, version, kind } = input;
  const c = new KernelCmdline();
  const platformArgs = platformKernelArgs(platform, arch, version); // throws for unknown platforms
  c.append('talos.platform', canonicalPlatformName(platform));
  c.setAll(platformArgs);
  if (kind === 'iso' && isoHaltIfInstalled(version)) c.append('talos.halt_if_installed', '1');
  if (input.overlayArgs?.length) c.setAll(input.overlayArgs);
  c.appendAll(defaultKernelArgs(version));
  if (input.secureboot) c.appendAll(secureBootKernelArgs(version));
  if (input.meta?.length && kind !== 'image') c.append('talos.environment', metaEnvValue(input.meta, version));
  if (input.extraArgs?.length) c.appendAll(input.extraArgs, { overwrite: ['console', 'talos.platform'], deleteNegated: true });
  return c.toString();
}

/**
 * `buildCmdline` after the factory's profile enhancement (anchor §3.5): extra args only where `extraArgsApply`, META
 * only where `metaApplies` (and then only rendered for non-disk outputs). This is what `cmdline-*` assets, PXE
 * scripts, UKI/ISO/installer `.cmdline` sections and disk image grub.cfg get.
 */
export function buildFactoryCmdline(input: CmdlineInput): string {
  return buildCmdline({
    ...input,
    extraArgs: extraArgsApply(input.kind, input.version, input.secureboot) ? input.extraArgs : undefined,
    meta: metaApplies(input.kind) ? input.meta : undefined,
  });
}

/**
 * The longest kernel command line the factory writes: Linux keeps at most COMMAND_LINE_SIZE − 1 bytes (2048 on x86
 * and arm64) and silently drops the rest, so a longer one would boot with arguments missing — or, for the
 * `talos.environment` META argument at the end, with a corrupt one.
 */
export const KERNEL_CMDLINE_MAX_BYTES = 2047;

/** Why a command line cannot be booted as written, or undefined when it fits. */
export function cmdlineLengthProblem(cmdline: string): string | undefined {
  const bytes = Buffer.byteLength(cmdline, 'utf8');
  if (bytes <= KERNEL_CMDLINE_MAX_BYTES) return undefined;
  return `kernel command line is ${bytes} bytes, more than the ${KERNEL_CMDLINE_MAX_BYTES} bytes Linux accepts (extraKernelArgs and META values take part in it)`;
}

/**
 * Command line of the UKI reset profile / GRUB reset entry: the full command line plus
 * `talos.experimental.wipe=system` (ISO) or `talos.experimental.wipe=system:EPHEMERAL,STATE` (disk image, installer).
 */
export function resetCmdline(base: string, kind: 'iso' | 'image' | 'installer'): string {
  return `${base} talos.experimental.wipe=${kind === 'iso' ? 'system' : 'system:EPHEMERAL,STATE'}`;
}
