/**
 * The wizard's state (anchor-api §9): the form fields of every step, read from a query string or a form body,
 * validated against the catalog, and the step they select (the first unmet condition). Pure: the catalog answers are
 * passed in. The same state gives the shareable URL (`/?<query>`, never the embedded machine configuration), the
 * hidden fields a step's form carries, and the Back link.
 */
import type { ExtensionEntry } from '@factory/catalog';
import { Arch, compareSemver, offeredFor, parseSemver, PlatformInfo, PLATFORMS, SbcInfo, SBCS, SemVer, supportsEmbeddedConfig, supportsOverlays, supportsSecureBoot } from '@factory/talos';
import type { MessageKey } from './i18n';

export type Target = 'metal' | 'cloud' | 'sbc';
export const TARGETS: readonly Target[] = ['metal', 'cloud', 'sbc'];
export const ARCHES: readonly Arch[] = ['amd64', 'arm64'];
export const BOOTLOADERS = ['auto', 'sd-boot', 'grub', 'dual-boot'] as const;
export type Bootloader = (typeof BOOTLOADERS)[number];

export type StepId = 'hardware' | 'version' | 'cloud' | 'sbc' | 'arch' | 'extensions' | 'customization' | 'final';

/** Limits of what a form may carry; beyond them the request is a 400 naming the field. */
export const FIELD_LIMITS = {
  cmdline: 4 * 1024,
  'embedded-config': 256 * 1024,
  'overlay-options': 64 * 1024,
  /** any other single value (names, versions, IDs) */
  scalar: 256,
  /** extensions (and their selected twin) */
  extensions: 256,
  /** a search query */
  search: 256,
} as const;

/** The "no extensions" marker: a hidden `extensions=-` lets the extensions step count as done with none chosen. */
export const NO_EXTENSIONS = '-';

/** Bootloader selection appeared in Talos 1.12.0-alpha.2 (anchor §9). */
const BOOTLOADER_MIN = parseSemver('1.12.0-alpha.2') as SemVer;
/** `talosctl cluster create qemu --schematic-id` appeared in Talos 1.12.0-alpha.2. */
export const LOCAL_CLUSTER_MIN = BOOTLOADER_MIN;

/** A request the wizard cannot serve: a 400 page with this one-line message. */
export class WizardInputError extends Error {
  constructor(
    readonly key: MessageKey,
    readonly params: Record<string, string | number> = {},
  ) {
    super(`${key} ${JSON.stringify(params)}`);
    this.name = 'WizardInputError';
  }
}

/** Values remembered for "Back" (the `selected-*` twins) or preloaded from a stored schematic. */
export interface Selected {
  target?: string;
  version?: string;
  platform?: string;
  board?: string;
  arch?: string;
  secureboot?: boolean;
  extensions?: string[];
  cmdline?: string;
  bootloader?: string;
  overlayOptions?: string;
}

export interface WizardState {
  target?: Target;
  /** no `v` */
  version?: string;
  platform?: string;
  board?: string;
  /** the chosen board's overlay, as the catalog has it (set by validateState; never read from the form) */
  boardOverlay?: { name: string; image: string };
  arch?: Arch;
  secureboot: boolean;
  /** as submitted, with `-` */
  extensions?: string[];
  cmdlineSet: boolean;
  cmdline: string;
  bootloader: Bootloader;
  /** absent: not submitted (a preloaded schematic's may apply) */
  embeddedConfig?: string;
  overlayOptions: string;
  /** `schematic-id`: the stored schematic the fields were preloaded from */
  schematicId?: string;
  selected: Selected;
}

/** What validation needs from the catalog (answers for the state's version only). */
export interface WizardCatalog {
  /** offered versions, `v`-prefixed */
  versions: string[];
  /** the official extensions of `v<version>` (called only when the state names a version and extensions) */
  extensions(versionTag: string): Promise<ExtensionEntry[]>;
  /** whether the factory signs Secure Boot assets */
  secureBoot: boolean;
  /** the official overlays of `v<version>` (called only when the state names a version and a board) */
  overlays(versionTag: string): Promise<Array<{ name: string; image: string }>>;
}

// --- reading ---------------------------------------------------------------------------------------------------

function normalizeNewlines(s: string): string {
  return s.replace(/\r\n?/g, '\n');
}

function one(params: URLSearchParams, name: string, limit: number = FIELD_LIMITS.scalar): string | undefined {
  const v = params.get(name);
  if (v === null) return undefined;
  if (v.length > limit) throw new WizardInputError('error.tooLong', { field: name, limit });
  return v;
}

function many(params: URLSearchParams, name: string): string[] | undefined {
  const all = params.getAll(name);
  if (!all.length) return undefined;
  if (all.length > FIELD_LIMITS.extensions) throw new WizardInputError('error.tooMany', { field: name, limit: FIELD_LIMITS.extensions });
  for (const v of all) if (v.length > FIELD_LIMITS.scalar) throw new WizardInputError('error.tooLong', { field: name, limit: FIELD_LIMITS.scalar });
  return all;
}

const nonEmpty = (s: string | undefined) => (s ? s : undefined);

/** The fields of a query string or form body, checked for size and form only (no catalog). */
export function readForm(params: URLSearchParams): WizardState {
  const target = nonEmpty(one(params, 'target'));
  if (target !== undefined && !TARGETS.includes(target as Target)) throw new WizardInputError('error.unknownTarget', { value: target });
  const arch = nonEmpty(one(params, 'arch'));
  if (arch !== undefined && !ARCHES.includes(arch as Arch)) throw new WizardInputError('error.unknownArch', { value: arch });
  const secureboot = one(params, 'secureboot');
  if (secureboot !== undefined && !['', 'true', 'false', 'on'].includes(secureboot)) throw new WizardInputError('error.badValue', { field: 'secureboot', value: secureboot });
  const bootloader = nonEmpty(one(params, 'bootloader')) ?? 'auto';
  if (!BOOTLOADERS.includes(bootloader as Bootloader)) throw new WizardInputError('error.unknownBootloader', { value: bootloader });
  const cmdlineSet = one(params, 'cmdline-set');
  if (cmdlineSet !== undefined && !['', '1', 'true'].includes(cmdlineSet)) throw new WizardInputError('error.badValue', { field: 'cmdline-set', value: cmdlineSet });
  const schematicId = nonEmpty(one(params, 'schematic-id'));
  if (schematicId !== undefined && !/^[0-9a-f]{64}$/.test(schematicId)) throw new WizardInputError('error.badSchematicId', { value: schematicId });
  const embedded = one(params, 'embedded-config', FIELD_LIMITS['embedded-config']);
  const version = nonEmpty(one(params, 'version'));
  const selectedSecureboot = one(params, 'selected-secureboot');
  const selectedOverlay = one(params, 'selected-overlay-options', FIELD_LIMITS['overlay-options']);
  return {
    target: target as Target | undefined,
    version: version?.replace(/^v/, ''),
    platform: nonEmpty(one(params, 'platform')),
    board: nonEmpty(one(params, 'board')),
    arch: arch as Arch | undefined,
    secureboot: secureboot === 'true' || secureboot === 'on',
    extensions: many(params, 'extensions'),
    cmdlineSet: cmdlineSet === '1' || cmdlineSet === 'true',
    cmdline: (one(params, 'cmdline', FIELD_LIMITS.cmdline) ?? '').trim(),
    bootloader: bootloader as Bootloader,
    ...(embedded !== undefined ? { embeddedConfig: normalizeNewlines(embedded) } : {}),
    overlayOptions: normalizeNewlines(one(params, 'overlay-options', FIELD_LIMITS['overlay-options']) ?? ''),
    ...(schematicId ? { schematicId } : {}),
    selected: dropUndefined({
      target: nonEmpty(one(params, 'selected-target')),
      version: nonEmpty(one(params, 'selected-version'))?.replace(/^v/, ''),
      platform: nonEmpty(one(params, 'selected-platform')),
      board: nonEmpty(one(params, 'selected-board')),
      arch: nonEmpty(one(params, 'selected-arch')),
      secureboot: selectedSecureboot === undefined ? undefined : selectedSecureboot === 'true',
      extensions: many(params, 'selected-extensions'),
      cmdline: one(params, 'selected-cmdline', FIELD_LIMITS.cmdline),
      bootloader: nonEmpty(one(params, 'selected-bootloader')),
      overlayOptions: selectedOverlay === undefined ? undefined : normalizeNewlines(selectedOverlay),
    }),
  };
}

function dropUndefined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

// --- catalog rules ------------------------------------------------------------------------------------------------

export function semverOf(version: string): SemVer {
  const v = parseSemver(version);
  if (!v) throw new WizardInputError('error.unknownVersion', { value: version });
  return v;
}

/** Versions offered for a target, newest first, `v`-less. SBCs need overlays (Talos 1.7+). */
export function versionsFor(target: Target | undefined, versions: string[]): string[] {
  return versions
    .map((tag) => tag.replace(/^v/, ''))
    .map((v) => ({ v, s: parseSemver(v) }))
    .filter((x): x is { v: string; s: SemVer } => !!x.s && (target !== 'sbc' || supportsOverlays(x.s)))
    .sort((a, b) => compareSemver(b.s, a.s))
    .map((x) => x.v);
}

/** The default version: the newest stable one (or the newest at all when there is no stable one). */
export function defaultVersion(versions: string[]): string | undefined {
  return versions.find((v) => !parseSemver(v)?.prerelease.length) ?? versions[0];
}

/** Cloud platforms offered for a version (every platform of Appendix A except bare metal). */
export function cloudPlatformsFor(version: SemVer): PlatformInfo[] {
  return PLATFORMS.filter((p) => p.name !== 'metal' && offeredFor(p, version));
}

/**
 * Boards offered for a version: those of the SBC table (Appendix A) whose overlay the version's catalog has, then the
 * catalog's other overlays as boards of their own name (a private or mirrored catalog may carry boards the table does
 * not know). A board whose overlay is not in the catalog is not offered: its disk image could not be built.
 */
export function boardsFor(version: SemVer, overlays: Array<{ name: string; image: string }>): SbcInfo[] {
  const inCatalog = (b: SbcInfo) => overlays.some((o) => o.name === b.overlayName && o.image === b.overlayImage);
  const known = SBCS.filter((b) => offeredFor(b, version) && inCatalog(b));
  const taken = (o: { name: string; image: string }) => SBCS.some((b) => b.name === o.name || (b.overlayName === o.name && b.overlayImage === o.image));
  const extra = overlays.filter((o) => !taken(o)).map((o) => ({ name: o.name, label: o.name, overlayName: o.name, overlayImage: o.image }));
  return [...known, ...extra.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))];
}

export function platformInfo(name: string): PlatformInfo | undefined {
  return PLATFORMS.find((p) => p.name === name);
}

/** Secure Boot is offered for Talos 1.5+, on bare metal or a platform that supports it, when the factory signs. */
export function secureBootOffered(state: Pick<WizardState, 'target' | 'platform' | 'version'>, factorySecureBoot: boolean): boolean {
  if (!factorySecureBoot || !state.version || state.target === 'sbc') return false;
  const v = parseSemver(state.version);
  if (!v || !supportsSecureBoot(v)) return false;
  if (state.target === 'metal') return true;
  return !!state.platform && !!platformInfo(state.platform)?.secureBoot;
}

export function bootloaderOffered(version: string | undefined): boolean {
  const v = version ? parseSemver(version) : undefined;
  return !!v && compareSemver(v, BOOTLOADER_MIN) >= 0;
}

export function embeddedConfigOffered(version: string | undefined): boolean {
  const v = version ? parseSemver(version) : undefined;
  return !!v && supportsEmbeddedConfig(v);
}

export function overlayOptionsOffered(state: Pick<WizardState, 'target' | 'version'>): boolean {
  const v = state.version ? parseSemver(state.version) : undefined;
  return state.target === 'sbc' && !!v && supportsOverlays(v);
}

/**
 * The state checked against the catalog, with what the choices imply filled in: bare metal and boards run the
 * `metal` platform, boards are arm64, single-architecture cloud platforms have their architecture. Throws
 * WizardInputError for anything the steps would never offer.
 */
export async function validateState(state: WizardState, catalog: WizardCatalog): Promise<WizardState> {
  const s: WizardState = { ...state, selected: { ...state.selected } };
  let version: SemVer | undefined;
  if (s.version !== undefined) {
    if (!versionsFor(s.target, catalog.versions).includes(s.version)) throw new WizardInputError('error.unknownVersion', { value: s.version });
    version = semverOf(s.version);
  }
  if (s.target === 'metal') {
    s.platform = 'metal';
    s.board = undefined;
  } else if (s.target === 'cloud') {
    s.board = undefined;
    if (s.platform !== undefined) {
      const p = platformInfo(s.platform);
      if (!p || p.name === 'metal' || (version && !offeredFor(p, version))) throw new WizardInputError('error.unknownPlatform', { value: s.platform });
      if (p.arches.length === 1) s.arch = p.arches[0];
      else if (s.arch && !p.arches.includes(s.arch)) throw new WizardInputError('error.unknownArch', { value: s.arch });
    }
  } else if (s.target === 'sbc') {
    if (s.board !== undefined) {
      // boards come after the version: a board without one is never offered
      const b = version ? boardsFor(version, await catalog.overlays(`v${s.version}`)).find((x) => x.name === s.board) : undefined;
      if (!b) throw new WizardInputError('error.unknownBoard', { value: s.board });
      s.boardOverlay = { name: b.overlayName, image: b.overlayImage };
      s.platform = 'metal';
      s.arch = 'arm64';
    } else {
      s.platform = undefined;
    }
  } else {
    s.platform = undefined;
    s.board = undefined;
  }
  if (s.target !== 'sbc' || s.board === undefined) s.boardOverlay = undefined;
  if (s.secureboot && !secureBootOffered(s, catalog.secureBoot)) throw new WizardInputError('error.secureBootUnavailable');
  if (s.extensions && s.version) {
    const known = new Set((await catalog.extensions(`v${s.version}`)).map((e) => e.name));
    for (const name of s.extensions) {
      if (name !== NO_EXTENSIONS && !known.has(name)) throw new WizardInputError('error.unknownExtension', { value: name, version: s.version });
    }
  }
  if (s.bootloader !== 'auto') {
    if (!bootloaderOffered(s.version)) throw new WizardInputError('error.bootloaderUnavailable');
    if (s.bootloader === 'grub' && s.secureboot) throw new WizardInputError('error.grubSecureBoot');
  }
  if (s.embeddedConfig && s.version && !embeddedConfigOffered(s.version)) throw new WizardInputError('error.embeddedUnavailable', { version: s.version });
  if (s.overlayOptions.trim() && s.target !== undefined && !overlayOptionsOffered(s)) throw new WizardInputError('error.overlayOptionsUnavailable');
  return s;
}

// --- steps ----------------------------------------------------------------------------------------------------

interface StepDef {
  id: Exclude<StepId, 'final'>;
  /** the form fields this step sets */
  fields: readonly string[];
  applies(s: WizardState): boolean;
  done(s: WizardState): boolean;
}

/** Cloud platforms with one architecture, and boards, skip the architecture step. */
function archChosenByStep(s: WizardState): boolean {
  if (s.target === 'sbc') return false;
  if (s.target === 'cloud' && s.platform && (platformInfo(s.platform)?.arches.length ?? 2) === 1) return false;
  return true;
}

export const STEPS: readonly StepDef[] = [
  { id: 'hardware', fields: ['target'], applies: () => true, done: (s) => !!s.target },
  { id: 'version', fields: ['version'], applies: () => true, done: (s) => !!s.version },
  { id: 'cloud', fields: ['platform'], applies: (s) => s.target === 'cloud', done: (s) => !!s.platform },
  { id: 'sbc', fields: ['board'], applies: (s) => s.target === 'sbc', done: (s) => !!s.board },
  { id: 'arch', fields: ['arch', 'secureboot'], applies: archChosenByStep, done: (s) => !!s.arch },
  { id: 'extensions', fields: ['extensions'], applies: () => true, done: (s) => s.extensions !== undefined },
  { id: 'customization', fields: ['cmdline-set', 'cmdline', 'bootloader', 'embedded-config', 'overlay-options'], applies: () => true, done: (s) => s.cmdlineSet },
];

/** The first unmet step (anchor §9 step selection). */
export function currentStep(s: WizardState): StepId {
  for (const step of STEPS) if (step.applies(s) && !step.done(s)) return step.id;
  return 'final';
}

/** 1-based position of a step among the steps this state shows, and how many there are. */
export function stepPosition(s: WizardState, id: StepId): { index: number; count: number } {
  const shown = STEPS.filter((st) => st.applies(s));
  const count = shown.length + 1;
  const index = id === 'final' ? count : Math.max(1, shown.findIndex((st) => st.id === id) + 1);
  return { index, count };
}

/** The selected-twin values of the fields a step set. */
function rememberedOf(s: WizardState, step: StepDef): Selected {
  switch (step.id) {
    case 'hardware':
      return { target: s.target };
    case 'version':
      return { version: s.version };
    case 'cloud':
      return { platform: s.platform };
    case 'sbc':
      return { board: s.board };
    case 'arch':
      return { arch: s.arch, secureboot: s.secureboot };
    case 'extensions':
      return { extensions: s.extensions };
    case 'customization':
      return { cmdline: s.cmdline, bootloader: s.bootloader, overlayOptions: s.overlayOptions };
  }
}

function cleared(s: WizardState, step: StepDef): WizardState {
  const out: WizardState = { ...s, selected: { ...s.selected, ...dropUndefined(rememberedOf(s, step)) } };
  switch (step.id) {
    case 'hardware':
      out.target = undefined;
      break;
    case 'version':
      out.version = undefined;
      break;
    case 'cloud':
    case 'sbc':
      out.platform = out.target === 'metal' ? 'metal' : undefined;
      out.board = undefined;
      out.arch = undefined;
      break;
    case 'arch':
      out.arch = undefined;
      out.secureboot = false;
      break;
    case 'extensions':
      out.extensions = undefined;
      break;
    case 'customization':
      out.cmdlineSet = false;
      out.cmdline = '';
      out.bootloader = 'auto';
      out.overlayOptions = '';
      break;
  }
  return out;
}

/**
 * The state "Back" leads to: the previous step shown is open again, its choice (and every later one) remembered in
 * the selected twins. Undefined on the first step.
 */
export function backState(s: WizardState): WizardState | undefined {
  const current = currentStep(s);
  const index = current === 'final' ? STEPS.length : STEPS.findIndex((st) => st.id === current);
  for (let i = index - 1; i >= 0; i--) {
    const step = STEPS[i];
    if (!step.applies(s)) continue;
    let out = s;
    // everything from the previous step on is open again (later fields may be set by implication)
    for (let j = STEPS.length - 1; j >= i; j--) if (STEPS[j].done(out) && STEPS[j].applies(out)) out = cleared(out, STEPS[j]);
    return out;
  }
  return undefined;
}

// --- URLs and hidden fields ---------------------------------------------------------------------------------------

/**
 * The fields of a state as ordered name/value pairs: what the shareable URL carries and the form repeats. The
 * embedded machine configuration is never among them; `schematicId` replaces the state's own (the final page names
 * the schematic it created when the configuration has to come from there).
 */
export function stateFields(s: WizardState, o: { schematicId?: string | null } = {}): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  const add = (name: string, value: string | undefined) => {
    if (value !== undefined && value !== '') out.push([name, value]);
  };
  add('target', s.target);
  add('version', s.version);
  if (s.target === 'cloud' || s.target === 'sbc') add('platform', s.platform);
  add('board', s.board);
  add('arch', s.arch);
  if (s.secureboot) add('secureboot', 'true');
  for (const e of s.extensions ?? []) add('extensions', e);
  if (s.cmdlineSet) {
    add('cmdline-set', '1');
    add('cmdline', s.cmdline);
    if (s.bootloader !== 'auto') add('bootloader', s.bootloader);
    add('overlay-options', s.overlayOptions);
  }
  const schematicId = o.schematicId === undefined ? s.schematicId : (o.schematicId ?? undefined);
  add('schematic-id', schematicId);
  // twins only for fields not set (a set field is its own memory)
  const sel = s.selected;
  if (!s.target) add('selected-target', sel.target);
  if (!s.version) add('selected-version', sel.version);
  if (!s.platform || s.target === 'metal') add('selected-platform', sel.platform);
  if (!s.board) add('selected-board', sel.board);
  if (!s.arch) {
    add('selected-arch', sel.arch);
    if (sel.secureboot) add('selected-secureboot', 'true');
  }
  if (!s.extensions) for (const e of sel.extensions ?? []) add('selected-extensions', e);
  if (!s.cmdlineSet) {
    add('selected-cmdline', sel.cmdline);
    if (sel.bootloader !== 'auto') add('selected-bootloader', sel.bootloader);
    add('selected-overlay-options', sel.overlayOptions);
  }
  return out;
}

export function queryOf(fields: Array<[string, string]>): string {
  return new URLSearchParams(fields).toString();
}

/** `/?<query>` (or `/`) for a state: the URL of its step. */
export function stateUrl(s: WizardState, o: { schematicId?: string | null } = {}): string {
  const q = queryOf(stateFields(s, o));
  return q ? `/?${q}` : '/';
}

/** The fields a step's form carries as hidden inputs: the state without what the step's own controls set. */
export function hiddenFields(s: WizardState, step: StepId): Array<[string, string]> {
  const own = new Set(step === 'final' ? [] : (STEPS.find((st) => st.id === step)?.fields ?? []));
  const ownTwins = new Set([...own].map((f) => `selected-${f}`));
  return stateFields(s).filter(([name]) => !own.has(name) && !ownTwins.has(name));
}
