/**
 * Download response details for assets (anchor §1.3) and small artifact texts (talos-formats §6.2, §7).
 */
import { isoVolumeLabel } from './quirks';
import type { SemVer } from './version';
import { parseTolerant } from './version';

/** Go `filepath.Ext`: the suffix from the final `.` of the final path element, or `''`. */
export function fileExt(path: string): string {
  for (let i = path.length - 1; i >= 0 && path[i] !== '/'; i--) {
    if (path[i] === '.') return path.slice(i);
  }
  return '';
}

/**
 * `Content-Type` of an asset, from the (suffix-stripped) request path — not the `?filename=` override — by its last
 * extension. The anchor's fallback is the host MIME database; we pin `.tar` → `application/x-tar` and everything
 * else (`.zst`, `.vhd`, `.ova`, `.raw`, no extension, …) → `application/octet-stream`.
 */
export function contentTypeFor(path: string): string {
  switch (fileExt(path)) {
    case '.efi':
      return 'application/efi';
    case '.iso':
      return 'application/x-iso9660-image';
    case '.xz':
      return 'application/x-xz';
    case '.gz':
      return 'application/gzip';
    case '.qcow2':
      return 'application/x-qemu-disk';
    case '.tar':
      return 'application/x-tar';
    default:
      return 'application/octet-stream';
  }
}

/**
 * `Content-Disposition` for a download. An ASCII name is written exactly as the anchor writes it (no escaping); a
 * name with other characters, which an HTTP header cannot carry as they are, gets the RFC 6266 / RFC 8187 form: an
 * ASCII fallback (`_` for each other character) plus `filename*=UTF-8''<percent-encoded>`. Control characters are
 * the caller's to remove (the gateway's download names never have them).
 */
export function contentDisposition(filename: string): string {
  if (/^[\x20-\x7e]*$/.test(filename)) return `attachment; filename="${filename}"`;
  const fallback = filename.replace(/[^\x20-\x7e]/gu, '_').replace(/["\\]/g, '_');
  return `attachment; filename="${fallback}"; filename*=UTF-8''${rfc8187Encode(filename)}`;
}

/** RFC 8187 `value-chars`: UTF-8 bytes, everything but `attr-char` percent-encoded. */
function rfc8187Encode(value: string): string {
  return encodeURIComponent(value).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** Download file name: the `?filename=` query value when non-empty, else the (suffix-stripped) path. */
export function downloadFileName(path: string, filenameQuery?: string | null): string {
  return filenameQuery ? filenameQuery : path;
}

/** Go's tolerant parse used by Talos quirks; an unparseable version counts as "latest". */
function quirkVersion(versionTag: string): SemVer | undefined {
  return parseTolerant(versionTag);
}

/**
 * The UKI `.osrel` section / os-release text for the factory's Talos builds (`NAME="Talos"`), ending with a newline.
 * `versionTag` is the `v`-prefixed tag (`v1.11.5`).
 */
export function osRelease(versionTag: string, name = 'Talos'): string {
  const id = name.toLowerCase().replace(/ /g, '_');
  return (
    `NAME="${name}"\n` +
    `ID=${id}\n` +
    `VERSION_ID=${versionTag}\n` +
    `PRETTY_NAME="${name} (${versionTag})"\n` +
    `HOME_URL="https://www.talos.dev/"\n` +
    `BUG_REPORT_URL="https://github.com/siderolabs/talos/issues"\n` +
    `VENDOR_NAME="Sidero Labs"\n` +
    `VENDOR_URL="https://www.siderolabs.com/"\n`
  );
}

/** ISO label `Talos-<tag>` (the `SB-` form exists upstream but the generator never uses it). */
export function isoLabel(versionTag: string): string {
  return `Talos-${versionTag}`;
}

/** Turn a label into an ISO9660 volume ID: uppercase, `[A-Z0-9_]` only (`.`/`-`/`_` → `_`), at most 32 chars. */
export function toVolumeId(label: string): string {
  let out = '';
  for (const ch of label.toUpperCase()) {
    if ((ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9')) out += ch;
    else if (ch === '_' || ch === '-' || ch === '.') out += '_';
  }
  return out.slice(0, 32);
}

function labelled(versionTag: string): boolean {
  const v = quirkVersion(versionTag);
  return v === undefined || isoVolumeLabel(v);
}

/** xorriso `-volid` for the ISO (`TALOS_V1_11_5`); undefined before Talos 1.8 (no explicit label). */
export function isoVolumeId(versionTag: string): string | undefined {
  return labelled(versionTag) ? toVolumeId(isoLabel(versionTag)) : undefined;
}

/** xorriso `-volset-id` for the ISO (`Talos-v1.11.5`); undefined before Talos 1.8. */
export function isoVolumeSetId(versionTag: string): string | undefined {
  return labelled(versionTag) ? isoLabel(versionTag) : undefined;
}

/** File name of the UKI inside a UEFI/hybrid ISO: `EFI/Linux/Talos-<tag>.efi`. */
export function isoUkiPath(versionTag: string): string {
  return `EFI/Linux/Talos-${versionTag}.efi`;
}
