/**
 * iPXE scripts served at `/pxe/:schematic/:version/:path` (anchor §4, talos-formats §5.5).
 */
import type { Arch } from './profile';

/** Go `path.Clean`. */
export function cleanPath(p: string): string {
  if (p === '') return '.';
  const rooted = p.startsWith('/');
  const out: string[] = [];
  for (const seg of p.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') {
      if (out.length && out[out.length - 1] !== '..') out.pop();
      else if (!rooted) out.push('..');
      continue;
    }
    out.push(seg);
  }
  const joined = out.join('/');
  if (rooted) return `/${joined}`;
  return joined === '' ? '.' : joined;
}

/** Go `path.Join`: non-empty elements joined with `/`, then cleaned; `''` when all are empty. */
export function joinPath(...elems: string[]): string {
  const nonEmpty = elems.filter((e) => e !== '');
  return nonEmpty.length ? cleanPath(nonEmpty.join('/')) : '';
}

/**
 * Go `(*url.URL).JoinPath(elems...).String()`: the base path and the elements are joined and cleaned, one trailing
 * slash of the last element is kept, query and fragment of the base are kept. `http://h:1234/` and `http://h:1234`
 * both give `http://h:1234/image/...`; a base path prefix (`https://h/factory/`) is kept.
 */
export function urlJoin(base: string, ...elems: string[]): string {
  let u: URL;
  try {
    u = new URL(base);
  } catch {
    // Not an absolute URL: plain path join (the service always configures absolute URLs).
    const p = joinPath(base, ...elems);
    return elems.length && elems[elems.length - 1].endsWith('/') && !p.endsWith('/') ? `${p}/` : p;
  }
  const first = u.pathname.startsWith('/') ? u.pathname : `/${u.pathname}`;
  let p = joinPath(first, ...elems);
  const last = elems.length ? elems[elems.length - 1] : first;
  if (last.endsWith('/') && !p.endsWith('/')) p += '/';
  u.pathname = p;
  return u.toString();
}

export interface PxeScriptInput {
  /** `http.externalPXEURL` (or `externalURL`), possibly with a path prefix and/or trailing slash. */
  baseUrl: string;
  schematicId: string;
  /** Version as requested, `v` added when missing (`v1.11.0`). */
  versionTag: string;
  /** Normalized architecture (`x86_64`/`i386` already mapped to amd64). */
  arch: Arch;
  /** Platform as given in the path (used in the secure boot UKI file name). */
  platform: string;
  secureboot: boolean;
  /** Body of the `cmdline-<platform>-<arch>[-secureboot]` asset. */
  cmdline: string;
}

/**
 * The script, byte-exact: `#!ipxe`, blank line, `imgfree`, then either `kernel <kernel URL> <cmdline>` /
 * `initrd <initramfs URL>` or (secure boot) `kernel <UKI URL> <cmdline>`, then `boot`; `\n` line ends, final newline.
 */
export function pxeScript(input: PxeScriptInput): string {
  const version = input.versionTag.startsWith('v') ? input.versionTag : `v${input.versionTag}`;
  const asset = (file: string) => urlJoin(input.baseUrl, 'image', input.schematicId, version, file);
  if (input.secureboot) {
    const uki = asset(`${input.platform}-${input.arch}-secureboot-uki.efi`);
    return `#!ipxe\n\nimgfree\nkernel ${uki} ${input.cmdline}\nboot\n`;
  }
  const kernel = asset(`kernel-${input.arch}`);
  const initrd = asset(`initramfs-${input.arch}.xz`);
  return `#!ipxe\n\nimgfree\nkernel ${kernel} ${input.cmdline}\ninitrd ${initrd}\nboot\n`;
}
