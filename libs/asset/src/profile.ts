/**
 * The asset profile: one request for one asset, parsed from its path, enhanced from the schematic and validated —
 * the factory's equivalent of the anchor's "parse profile from path, enhance from schematic" steps. The edge (gateway
 * `/image` and `/pxe`, registry-proxy `/v2` installers) resolves it before anything is queued, so every permanent
 * 4xx answer is given without a build slot; the build job's payload is this profile and the build-worker trusts it.
 */
import { EXTENSION_ALIASES } from '@factory/catalog';
import type { ExtensionEntry, OverlayEntry } from '@factory/catalog';
import { FactoryError, isFactoryError } from '@factory/errors';
import { goQuote } from '@factory/gocompat';
import { BootloaderKind, extensionsOf, MetaValue, Schematic } from '@factory/schematic';
import {
  AssetRequest,
  buildFactoryCmdline,
  cmdlineLengthProblem,
  diskMetaProblem,
  formatSemver,
  parseRequestVersion,
  ProfilePathError,
  SemVer,
  supportsEmbeddedConfig,
  supportsOverlays,
  tagOf,
} from '@factory/talos';
import { AssetIdentity, secureBootSignerId } from './identity';

/** An official extension to pull, pinned by the catalog's digest (`name` is its repository, e.g. `siderolabs/gvisor`). */
export interface ExtensionRef {
  name: string;
  digest: string;
}

/** The schematic's overlay as the catalog lists it (`image` is its repository), pinned by digest. */
export interface OverlayRef {
  name: string;
  image: string;
  digest: string;
}

/** Sector sizes a disk image may have. */
export type SectorSize = 512 | 4096;

/**
 * What a `build.asset` job carries: the asset's identity and its upstream inputs pinned by digest — references only,
 * never the schematic's content (its YAML, embedded machine configuration and META values can reach a megabyte and
 * would sit in Redis for every queued build). The build-worker reads the schematic by ID (completeProfile).
 */
export interface AssetBuildSpec extends AssetIdentity {
  /** Official extensions, in schematic order (none for kernel and cmdline, which carry no extensions). */
  extensions: ExtensionRef[];
  /** Only for outputs that carry extensions. */
  overlay?: OverlayRef;
}

/** What an asset is built from: its spec plus what the schematic says for this output. */
export interface AssetProfile extends AssetBuildSpec {
  /** The schematic's canonical YAML: the schematic extension carries it, and overlay options are decoded from it. */
  schematicYaml: string;
  /** The schematic's customization; which output gets what is the rule table of @factory/talos (cmdline, quirks). */
  extraKernelArgs: string[];
  meta: MetaValue[];
  bootloader?: BootloaderKind;
  sectorSize: SectorSize;
  /** Only from Talos 1.12, and only for outputs that carry extensions. */
  embeddedConfig?: string;
  /**
   * Secure Boot ISOs and disk images: systemd-boot's `secure-boot-enroll` (the schematic's `secureboot.enrollKeys`;
   * the output's default when absent). Ignored elsewhere, as in the anchor.
   */
  enrollKeys?: EnrollKeys;
  /** Secure Boot outputs: add the well-known UEFI CA certificates to the enrolment databases. */
  includeWellKnownCertificates?: boolean;
}

/** systemd-boot's `secure-boot-enroll` values, as Talos' SDBootEnrollKeys enumerates them. */
export const ENROLL_KEYS = ['off', 'manual', 'if-safe', 'force'] as const;
export type EnrollKeys = (typeof ENROLL_KEYS)[number];
const isEnrollKeys = (v: string): v is EnrollKeys => (ENROLL_KEYS as readonly string[]).includes(v);

const takesExtensions = (kind: AssetIdentity['kind']) => kind !== 'kernel' && kind !== 'cmdline';

/**
 * The profile of a spec given its schematic: the one derivation of an output's customization from a schematic, used
 * by the edge (before its checks) and by the build-worker (from the stored schematic the job names).
 */
export function completeProfile(spec: AssetBuildSpec, schematic: Schematic, schematicYaml: string): AssetProfile {
  const c = schematic.customization;
  const embeddedConfig = takesExtensions(spec.kind) ? c.embeddedMachineConfiguration : undefined;
  const enrollKeys = spec.secureboot && (spec.kind === 'iso' || spec.kind === 'image') ? c.secureboot?.enrollKeys : undefined;
  return {
    ...spec,
    schematicYaml,
    extraKernelArgs: [...(c.extraKernelArgs ?? [])],
    meta: (c.meta ?? []).map(({ key, value }) => ({ key, value })),
    ...(c.bootloader ? { bootloader: c.bootloader } : {}),
    sectorSize: (c.diskImage?.sectorSize ?? 512) as SectorSize,
    ...(embeddedConfig ? { embeddedConfig } : {}),
    ...(enrollKeys && isEnrollKeys(enrollKeys) ? { enrollKeys } : {}),
    ...(spec.secureboot && c.secureboot?.includeWellKnownCertificates ? { includeWellKnownCertificates: true } : {}),
  };
}

/** The spec of a profile: what its build job carries. */
export function buildSpecOf(profile: AssetProfile): AssetBuildSpec {
  const { schematicId, version, kind, platform, arch, secureboot, outFormat, disk, path, signer, extensions, overlay } = profile;
  return {
    schematicId,
    version,
    kind,
    platform,
    arch,
    secureboot,
    outFormat,
    ...(disk !== undefined ? { disk } : {}),
    path,
    ...(signer ? { signer } : {}),
    extensions,
    ...(overlay ? { overlay } : {}),
  };
}

/** What the edge needs to know about the upstream catalog (UpstreamCatalog fits, and so does a queue-backed view). */
export interface CatalogView {
  /** Offered versions, `v`-prefixed. */
  versions(): Promise<string[]>;
  /** The version's official extensions; a FactoryError 404 when the version is not available. */
  extensions(versionTag: string): Promise<ExtensionEntry[]>;
  /** The version's official overlays; a FactoryError 404 when the version is not available. */
  overlays(versionTag: string): Promise<OverlayEntry[]>;
  /**
   * What the signing service offers for Secure Boot outputs; undefined (or no such method) when Secure Boot is off,
   * and every Secure Boot request is then the anchor's 400 "secure boot is disabled".
   */
  secureBoot?(): Promise<SecureBootOffer | undefined>;
}

export interface SecureBootOffer {
  /** names the signing certificate and own PK/KEK (secureBootSignerId): part of every Secure Boot asset's identity (AssetIdentity.signer) */
  signerId: string;
}

export interface ProfileInput {
  schematicId: string;
  schematic: Schematic;
  schematicYaml: string;
  /** The version as requested (`1.11.0` or `v1.11.0`). */
  rawVersion: string;
  /** Parses the request path; throws ProfilePathError for a bad one. */
  parsePath(): AssetRequest;
  /** The canonical asset path of the parsed request. */
  assetPath(request: AssetRequest): string;
}

const ENHANCE = 'error enhancing profile from schematic';
const enhanceError = (status: number, msg: string) => new FactoryError(status, `${ENHANCE}: ${msg}`);

/** A version as requested: 400 when malformed (the anchor answers 500; it is the client's mistake). */
export function parseVersionParam(raw: string): SemVer {
  const v = parseRequestVersion(raw);
  if (!v) throw new FactoryError(400, `invalid version ${JSON.stringify(raw)}: expected a semantic version such as v1.11.0`);
  return v;
}

/**
 * Version, then path, then enhancement from the schematic (anchor-api §1.3 steps 3–5 and the availability check of
 * step 7), each failing with the anchor's status and text. The schematic lookup (step 2) is the caller's.
 */
export async function resolveAssetProfile(input: ProfileInput, catalog: CatalogView): Promise<AssetProfile> {
  const version = parseVersionParam(input.rawVersion);
  let request: AssetRequest;
  try {
    request = input.parsePath();
  } catch (err) {
    if (err instanceof ProfilePathError) throw new FactoryError(400, `error parsing profile from path: ${err.message}`);
    throw err;
  }
  return enhanceProfile(
    { schematicId: input.schematicId, version: tagOf(version), ...request, path: input.assetPath(request) },
    version,
    input.schematic,
    input.schematicYaml,
    catalog,
  );
}

/** Enhancement from the schematic (anchor §3.5) with its gates (§3.6), in the anchor's order. */
export async function enhanceProfile(identity: AssetIdentity, version: SemVer, schematic: Schematic, schematicYaml: string, catalog: CatalogView): Promise<AssetProfile> {
  const tag = identity.version;
  const c = schematic.customization;
  const withExtensions = takesExtensions(identity.kind);
  // The anchor's order: embedded configuration, Secure Boot, overlay.
  if (withExtensions && !!c.embeddedMachineConfiguration && !supportsEmbeddedConfig(version)) {
    throw enhanceError(400, `embedding configuration is not supported for Talos version ${tag}`);
  }
  if (identity.secureboot) {
    const offer = await catalog.secureBoot?.();
    if (!offer) throw enhanceError(400, 'secure boot is disabled');
    identity = { ...identity, signer: offer.signerId };
    const enroll = c.secureboot?.enrollKeys;
    if (enroll && !isEnrollKeys(enroll)) {
      // Go's enumer error text, wrapped as the anchor wraps it
      throw enhanceError(400, `invalid secureboot enrollKeys value ${goQuote(enroll)}: ${enroll} does not belong to SDBootEnrollKeys values`);
    }
  }
  if (withExtensions && schematic.overlay && (schematic.overlay.name || schematic.overlay.image) && !supportsOverlays(version)) {
    throw enhanceError(400, `overlay is not supported for Talos version ${tag}`);
  }
  const extensions = withExtensions ? await resolveExtensions(catalog, schematic, tag) : [];
  let overlay: OverlayRef | undefined;
  if (withExtensions && schematic.overlay?.name) {
    // Only overlay.name selects the overlay; overlay.image is user input and never pulled.
    const entry = (await catalog.overlays(tag)).find((o) => o.name === schematic.overlay!.name);
    if (!entry) throw enhanceError(400, `overlay "${schematic.overlay.name}" is not available for Talos version ${tag}`);
    overlay = { name: entry.name, image: entry.image, digest: entry.digest };
  }
  const profile = completeProfile({ ...identity, extensions, ...(overlay ? { overlay } : {}) }, schematic, schematicYaml);
  const { sectorSize, meta, extraKernelArgs } = profile;
  if (identity.kind === 'image' && sectorSize !== 512 && sectorSize !== 4096) {
    throw enhanceError(400, `unsupported disk sector size ${sectorSize}: use 512 or 4096`);
  }
  if (!(await catalog.versions()).includes(tag)) {
    const missing = `version ${formatSemver(version)} is not available`;
    throw identity.kind === 'installer' ? enhanceError(404, `failed to get base installer: ${missing}`) : new FactoryError(404, `failed to get kernel: ${missing}`);
  }
  // Limits of what Talos can boot with, checked before a build is queued (the anchor builds and fails, or boots
  // with a truncated command line). POST /schematics accepts such schematics, as the anchor does.
  if (identity.kind === 'image') {
    const problem = diskMetaProblem(meta);
    if (problem) throw enhanceError(400, problem);
  }
  if (identity.kind !== 'kernel' && identity.kind !== 'initramfs') {
    const cmdline = buildFactoryCmdline({
      platform: identity.platform,
      arch: identity.arch,
      version,
      kind: identity.kind,
      secureboot: identity.secureboot,
      meta: meta.length ? meta : undefined,
      extraArgs: extraKernelArgs.length ? extraKernelArgs : undefined,
    });
    const problem = cmdlineLengthProblem(cmdline);
    if (problem) throw enhanceError(400, problem);
  }
  return profile;
}

/** Official extensions by name (aliases for renamed ones), in schematic order; 400 for unknown ones. */
async function resolveExtensions(catalog: CatalogView, schematic: Schematic, tag: string): Promise<ExtensionRef[]> {
  const names = extensionsOf(schematic);
  if (!names.length) return [];
  let entries: ExtensionEntry[];
  try {
    entries = await catalog.extensions(tag);
  } catch (err) {
    if (isFactoryError(err) && err.status === 404) throw enhanceError(404, `error getting official extensions: ${err.message}`);
    throw err;
  }
  return names.map((name) => {
    const found = entries.find((e) => e.name === name) ?? entries.find((e) => e.name === EXTENSION_ALIASES[name]);
    if (!found) throw enhanceError(400, `official extension "${name}" is not available for Talos version ${tag}`);
    return { name: found.name, digest: found.digest };
  });
}

/**
 * A CatalogView's `secureBoot` from the signing service's public answer (`signing.secureBootPublic`), remembered for
 * `ttlMs` so that resolving a profile costs no queue round trip on the warm path; a failed ask is not remembered.
 */
export function secureBootOfferSource(ask: () => Promise<{ enabled: boolean; signingCertPem?: string; pkCertPem?: string; kekCertPem?: string }>, ttlMs = 30_000): () => Promise<SecureBootOffer | undefined> {
  let remembered: { at: number; offer: Promise<SecureBootOffer | undefined> } | undefined;
  return () => {
    const now = Date.now();
    if (!remembered || now - remembered.at >= ttlMs) {
      const offer = ask().then((p) =>
        p.enabled && p.signingCertPem ? { signerId: secureBootSignerId({ signingCertPem: p.signingCertPem, pkCertPem: p.pkCertPem, kekCertPem: p.kekCertPem }) } : undefined,
      );
      const entry = { at: now, offer };
      remembered = entry;
      offer.catch(() => {
        if (remembered === entry) remembered = undefined;
      });
    }
    return remembered.offer;
  };
}
