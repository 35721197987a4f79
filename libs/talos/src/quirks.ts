/**
 * Version quirks: what the factory's (Talos v1.14.0-rc.1) imager and profile enhancement do differently per requested
 * Talos version (talos-formats §11, anchor §3.5–3.7). Prerelease and build parts are ignored, as Talos quirks do:
 * 1.11.0-beta.1 counts as 1.11.0.
 */
import type { Arch, OutputKind } from './profile';
import type { SemVer } from './version';
import { atLeast } from './version';

const since =
  (major: number, minor: number, patch = 0) =>
  (v: SemVer): boolean =>
    atLeast(v, major, minor, patch);

/** ≥ 1.4: GRUB menus (ISO and disk) carry a "Reset Talos installation" entry. */
export const grubResetEntries = since(1, 4);
/** ≥ 1.5: UKI output, secure boot outputs and sd-boot are possible (imager ships systemd-boot/stub). */
export const supportsUki = since(1, 5);
/** ≥ 1.5: secure boot outputs (same gate as UKI). */
export const supportsSecureBoot = supportsUki;
/** ≥ 1.5: multi-document machine configs. */
export const supportsMultidoc = since(1, 5);
/** ≥ 1.6.3: the `talos.environment` META payload is gzipped when longer than 256 bytes. */
export const metaGzip = since(1, 6, 3);
/** ≥ 1.7: overlays (schematic `overlay`); older versions answer 400 `overlay is not supported…`. */
export const supportsOverlays = since(1, 7);
/** ≥ 1.7: the schematic extension manifest carries `extraInfo` (the canonical schematic YAML). */
export const schematicExtraInfo = since(1, 7);
/** ≥ 1.8: zstd (`-18`) for the initramfs and extension squashfs, instead of xz. */
export const usesZstd = since(1, 8);
/** ≥ 1.8: ISO volume label (`-volid`/`-volset-id`). */
export const isoVolumeLabel = since(1, 8);
/** ≥ 1.8: ISO kernel command line carries `talos.halt_if_installed=1`. */
export const isoHaltIfInstalled = since(1, 8);
/** ≥ 1.8: disk images no longer contain STATE/EPHEMERAL partitions (Talos creates them itself). */
export const skipDataPartitions = since(1, 8);
/** < 1.8: metal amd64 platform args include `console=ttyS0` before `console=tty0`. */
export const metalConsoleTtyS0 = (v: SemVer): boolean => !atLeast(v, 1, 8);
/** ≥ 1.10: `selinux=1` default kernel argument. */
export const selinux = since(1, 10);
/** ≥ 1.10: UEFI boots via systemd-boot + UKI even without secure boot (dual-boot amd64 disks, hybrid ISOs). */
export const sdBootForUefi = since(1, 10);
/** ≥ 1.10: usr-merge — modules/firmware live under `/usr/lib/…` instead of `/lib/…`. */
export const usrMerge = since(1, 10);
/** ≥ 1.10: UKIs carry `.profile` sections (main + reset profile). */
export const ukiProfiles = since(1, 10);
/** ≥ 1.10: unified installer (`installer-base` + UKI layer, extra kernel args baked in). */
export const unifiedInstaller = since(1, 10);
/** ≤ 1.10.99: IMA default kernel args (`ima_template=ima-ng ima_appraise=fix ima_hash=sha512`). */
export const ima = (v: SemVer): boolean => !atLeast(v, 1, 10, 100);
/** ≥ 1.11: BOOT partition is 2000 MiB (1000 MiB before); UKI ESP grows accordingly. */
export const boot2GiB = since(1, 11);
/** ≥ 1.11 (incl. 1.11 prereleases): the factory serves talosctl downloads. */
export const talosctlDownloads = since(1, 11);
/** ≥ 1.12: embedded machine configuration; older versions answer 400 (except kernel/cmdline outputs). */
export const supportsEmbeddedConfig = since(1, 12);
/** ≥ 1.12: ISO bootloader follows the schematic (`dual-boot`/`sd-boot`/`grub`); ignored below. */
export const isoBootloaderSelectable = since(1, 12);
/** ≥ 1.12: `module.sig_enforce=1` default kernel argument. */
export const moduleSigEnforce = since(1, 12);
/** ≥ 1.13: `proc_mem.force_override=never` default kernel argument. */
export const procMemForceOverride = since(1, 13);
/** ≥ 1.11 (prereleases too): `siderolabs/talosctl-all` exists and `/talosctl/<version>` lists it; older versions list `[]`. */
export const supportsTalosctl = since(1, 11);
/** ≥ 1.14: `init_on_alloc=1` is no longer a default kernel argument. */
export const dropInitOnAlloc = since(1, 14);
/** ≥ 1.14: `nvme_core.io_timeout=4294967295` moves from the defaults to the AWS platform args. */
export const nvmeTimeoutAwsOnly = since(1, 14);
/** ≥ 1.14: mkfs.xfs is bounded by a 64 GiB minimum allocation group size. */
export const xfsMinAllocationGroup = since(1, 14);
/** ≥ 1.10: installer images are referenced per platform (`metal-installer`), before as `installer` (anchor §9). */
export const platformInstallerImages = since(1, 10);

/** Kernel modules directory inside the rootfs/initramfs. */
export function kernelModulesPath(v: SemVer): string {
  return usrMerge(v) ? '/usr/lib/modules' : '/lib/modules';
}

/** Firmware directory inside the rootfs/initramfs. */
export function firmwarePath(v: SemVer): string {
  return usrMerge(v) ? '/usr/lib/firmware' : '/lib/firmware';
}

/** mkfs.xfs config file used for the version. */
export function xfsMkfsConfig(v: SemVer): string {
  if (atLeast(v, 1, 13)) return '/usr/share/xfsprogs/mkfs/lts_6.18.conf';
  if (atLeast(v, 1, 10)) return '/usr/share/xfsprogs/mkfs/lts_6.12.conf';
  if (atLeast(v, 1, 8)) return '/usr/share/xfsprogs/mkfs/lts_6.6.conf';
  return '/usr/share/xfsprogs/mkfs/lts_6.1.conf';
}

/** Partition sizes (MiB) the imager uses for disk images. */
export interface PartitionSizesMiB {
  grubEfi: number;
  grubBios: number;
  grubBoot: number;
  /** ESP size for sd-boot (UKI) layouts = grubEfi + grubBios + grubBoot. */
  ukiEfi: number;
  meta: number;
  state: number;
  ephemeralMin: number;
}

export function partitionSizesMiB(v: SemVer): PartitionSizesMiB {
  const grubBoot = boot2GiB(v) ? 2000 : 1000;
  return { grubEfi: 100, grubBios: 1, grubBoot, ukiEfi: 100 + 1 + grubBoot, meta: 1, state: 100, ephemeralMin: 2048 };
}

/** Schematic `bootloader` values; `none` is the zero value (= not set). */
export type BootloaderKind = 'none' | 'dual-boot' | 'sd-boot' | 'grub';
export type EffectiveBootloader = Exclude<BootloaderKind, 'none'>;

export interface BootloaderInput {
  version: SemVer;
  arch: Arch;
  secureboot: boolean;
  /** The schematic's `customization.bootloader`; absent or `none` = not set. */
  bootloader?: BootloaderKind;
}

/**
 * Bootloader the imager picks for a disk image (anchor §3.7; also ISO ≥ 1.12): an explicit choice wins unless secure
 * boot; secure boot → sd-boot; arm64 on ≥ 1.10 → sd-boot; < 1.10 → grub; otherwise dual-boot.
 */
export function diskBootloader({ version, arch, secureboot, bootloader }: BootloaderInput): EffectiveBootloader {
  if (bootloader && bootloader !== 'none' && !secureboot) return bootloader;
  if (secureboot) return 'sd-boot';
  const sdBoot = sdBootForUefi(version);
  if (arch === 'arm64' && sdBoot) return 'sd-boot';
  if (!sdBoot) return 'grub';
  return 'dual-boot';
}

/**
 * Disk size (MiB) after the imager's growth: + (BOOT − 1000 MiB), and for dual-boot + BIOS + BOOT (anchor §3.7).
 * `requestedMiB` is `AssetRequest.disk.sizeMiB`.
 */
export function adjustedDiskSizeMiB(requestedMiB: number, bootloader: EffectiveBootloader, v: SemVer): number {
  const ps = partitionSizesMiB(v);
  let size = requestedMiB + ps.grubBoot - 1000;
  if (bootloader === 'dual-boot') size += ps.grubBios + ps.grubBoot;
  return size;
}

export type IsoFlavour = 'grub' | 'hybrid' | 'uefi';

/**
 * ISO flavour (talos-formats §7.1): secure boot → UEFI-only; ≥ 1.12 → by bootloader (dual-boot → hybrid, sd-boot →
 * UEFI-only, grub → GRUB; default dual-boot on amd64, sd-boot on arm64); 1.10/1.11 → hybrid; older → GRUB.
 */
export function isoFlavour(input: BootloaderInput): IsoFlavour {
  if (input.secureboot) return 'uefi';
  if (isoBootloaderSelectable(input.version)) {
    switch (diskBootloader(input)) {
      case 'dual-boot':
        return 'hybrid';
      case 'sd-boot':
        return 'uefi';
      case 'grub':
        return 'grub';
    }
  }
  if (sdBootForUefi(input.version)) return 'hybrid';
  return 'grub';
}

/**
 * Whether the output uses a UKI (talos-formats §6): the UKI output itself (≥ 1.5); ISO/disk/installer with secure boot
 * (≥ 1.5) or on ≥ 1.10. (The upstream imager also assembles an unused UKI for non-SB ISO/disk/installer on 1.5–1.9.)
 */
export function embedsUki(kind: OutputKind, version: SemVer, secureboot: boolean): boolean {
  switch (kind) {
    case 'uki':
      return supportsUki(version);
    case 'iso':
    case 'installer':
    case 'image':
      return (supportsUki(version) && secureboot) || sdBootForUefi(version);
    default:
      return false;
  }
}

/**
 * Whether the schematic's `extraKernelArgs` reach this output (anchor §3.5): kernel/initramfs never; cmdline, ISO
 * and disk images always; UKI and installer only with secure boot or Talos ≥ 1.10.
 */
export function extraArgsApply(kind: OutputKind, version: SemVer, secureboot: boolean): boolean {
  switch (kind) {
    case 'kernel':
    case 'initramfs':
      return false;
    case 'uki':
    case 'installer':
      return secureboot || unifiedInstaller(version);
    default:
      return true;
  }
}

/**
 * Whether schematic META values go into this output's profile (anchor §3.5): cmdline and ISO (as a
 * `talos.environment` kernel arg) and disk images (written to the META partition); never kernel, initramfs, UKI or
 * installer.
 */
export function metaApplies(kind: OutputKind): boolean {
  return kind === 'cmdline' || kind === 'iso' || kind === 'image';
}
