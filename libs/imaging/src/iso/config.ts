/** Text files and identifiers of Talos ISOs (talos-formats.md §7). */
import { grubEscape } from '../grub-escape';

export type EnrollKeys = 'off' | 'manual' | 'if-safe' | 'force';

/** kernel argument the ISO "Reset Talos installation" entry (and the ISO UKI reset profile) appends */
export const ISO_RESET_ARG = 'talos.experimental.wipe=system';

export interface GrubCfgOptions {
  /** add the "Reset Talos installation" entry (Talos >= 1.4) */
  resetEntry: boolean;
}

function entry(title: string, cmdline: string): string {
  return [
    `menuentry "${title}" {`,
    '\tset gfxmode=auto',
    '\tset gfxpayload=text',
    `\tlinux /boot/vmlinuz ${grubEscape(cmdline)}`,
    '\tinitrd /boot/initramfs.xz',
    '}',
  ].join('\n');
}

/** /boot/grub/grub.cfg of a GRUB or hybrid ISO (§7.2 template). */
export function grubCfg(cmdline: string, o: GrubCfgOptions): string {
  const parts = [
    'set default=0\nset timeout=3\n\ninsmod all_video\n\nterminal_input console\nterminal_output console\n',
    `${entry('Talos ISO', cmdline)}\n`,
  ];
  if (o.resetEntry) parts.push(`${entry('Reset Talos installation', `${cmdline} ${ISO_RESET_ARG}`)}\n`);
  return parts.join('\n');
}

/** /loader/loader.conf of a UEFI (sd-boot) or hybrid ISO (§7.3). */
export function loaderConf(enroll: EnrollKeys = 'off'): string {
  return `# systemd-boot configuration\n\ntimeout 10\n\nsecure-boot-enroll ${enroll}\n`;
}

/** ISO9660 volume id (Talos >= 1.8): `Talos-<version>` upper-cased, `.`/`-`/`_` -> `_`, other non [A-Z0-9] dropped, max 32. */
export function isoVolumeId(version: string): string {
  let out = '';
  for (const ch of `Talos-${version}`.toUpperCase()) {
    if (/[A-Z0-9]/.test(ch)) out += ch;
    else if (ch === '.' || ch === '-' || ch === '_') out += '_';
  }
  return out.slice(0, 32);
}

/** ISO9660 volume set id (Talos >= 1.8): `Talos-<version>`. */
export function isoVolumeSetId(version: string): string {
  return `Talos-${version}`;
}

function pad(n: number, w = 2): string {
  return String(n).padStart(w, '0');
}

/** `YYYYMMDDhhmmss00` (UTC) for xorriso `-volume_date uuid` / `--modification-date=`. */
export function isoDateStamp(epoch: number): string {
  const d = new Date(epoch * 1000);
  return `${pad(d.getUTCFullYear(), 4)}${pad(d.getUTCMonth() + 1)}${pad(d.getUTCDate())}${pad(d.getUTCHours())}${pad(d.getUTCMinutes())}${pad(d.getUTCSeconds())}00`;
}

/** The ISO9660 "UUID" as GRUB shows it (`YYYY-MM-DD-hh-mm-ss-cc`, from the volume modification date). */
export function grubIsoUuid(epoch: number): string {
  const s = isoDateStamp(epoch);
  return `${s.slice(0, 4)}-${s.slice(4, 6)}-${s.slice(6, 8)}-${s.slice(8, 10)}-${s.slice(10, 12)}-${s.slice(12, 14)}-${s.slice(14, 16)}`;
}
