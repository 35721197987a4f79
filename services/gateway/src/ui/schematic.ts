/**
 * The schematic a wizard state describes (anchor-api §9), and the other way round: the fields a stored schematic
 * preloads (`?schematic-id=`). The final page creates the derived schematic through the same job as
 * `POST /schematics` with its canonical YAML, so both give the same ID for the same content.
 */
import { canonicalYaml, parseSchematic, Schematic, SchematicError } from '@factory/schematic';
import { SBCS } from '@factory/talos';
import { NO_EXTENSIONS, overlayOptionsOffered, Selected, WizardInputError, WizardState } from './state';

const OPTIONS_PREFIX = 'overlay:\n    name: x\n    image: x\n    options:\n';
const OPTIONS_PREFIX_LINES = 4;

/**
 * Overlay options as the schematic parser reads them (Go's map[string]any decoding): the text is parsed as the value
 * of `overlay.options`, indented under it, so it can be nothing but that value. Empty text → no options.
 */
export function parseOverlayOptions(text: string): Record<string, unknown> | undefined {
  if (!text.trim()) return undefined;
  const indented = text
    .split('\n')
    .map((line) => `        ${line}`)
    .join('\n');
  try {
    return parseSchematic(`${OPTIONS_PREFIX}${indented}\n`).overlay?.options;
  } catch (err) {
    if (err instanceof SchematicError) {
      const message = err.message.replace(/line (\d+)/g, (_all, n: string) => `line ${Math.max(1, Number(n) - OPTIONS_PREFIX_LINES)}`).replace(/schematic\.Schematic/g, 'map[string]any');
      throw new WizardInputError('error.overlayOptions', { message });
    }
    throw err;
  }
}

/**
 * The schematic of a (validated) state: kernel arguments split on single spaces, extensions sorted without `-` (and
 * without repeats), the board's overlay with the parsed options (boards, Talos 1.7+), the bootloader unless `auto`,
 * the embedded machine configuration.
 */
export function wizardSchematic(s: WizardState, embeddedConfig: string | undefined): Schematic {
  const schematic: Schematic = { customization: {} };
  const c = schematic.customization;
  const overlay = s.target === 'sbc' ? s.boardOverlay : undefined;
  if (overlay && overlayOptionsOffered(s)) {
    const options = parseOverlayOptions(s.overlayOptions);
    schematic.overlay = { image: overlay.image, name: overlay.name, ...(options && Object.keys(options).length ? { options } : {}) };
  }
  if (embeddedConfig) c.embeddedMachineConfiguration = embeddedConfig;
  const args = s.cmdline
    .trim()
    .split(' ')
    .filter((a) => a !== '');
  if (args.length) c.extraKernelArgs = args;
  const extensions = [...new Set((s.extensions ?? []).filter((e) => e !== NO_EXTENSIONS))].sort();
  if (extensions.length) c.systemExtensions = { officialExtensions: extensions };
  if (s.bootloader !== 'auto') c.bootloader = s.bootloader;
  return schematic;
}

/** The text a stored schematic's overlay options are edited as: their canonical YAML, unindented. */
export function overlayOptionsText(options: Record<string, unknown> | undefined): string {
  if (!options || !Object.keys(options).length) return '';
  const yaml = canonicalYaml({ overlay: { image: '', name: '', options }, customization: {} });
  const lines = yaml.split('\n');
  const start = lines.indexOf('    options:') + 1;
  const out: string[] = [];
  for (let i = start; i < lines.length && (lines[i].startsWith('        ') || lines[i] === ''); i++) out.push(lines[i].slice(8));
  return out.join('\n').replace(/\n+$/, '');
}

/**
 * What a stored schematic preloads: the selected twins of the steps (the user still walks them, pre-filled) and the
 * embedded machine configuration, which never travels in a URL.
 */
export function preloadFrom(schematic: Schematic): { selected: Selected; embeddedConfig?: string } {
  const c = schematic.customization;
  const selected: Selected = {};
  const extensions = c.systemExtensions?.officialExtensions ?? [];
  selected.extensions = extensions.length ? [...extensions] : [NO_EXTENSIONS];
  if (c.extraKernelArgs?.length) selected.cmdline = c.extraKernelArgs.join(' ');
  if (c.bootloader) selected.bootloader = c.bootloader;
  if (schematic.overlay) {
    const overlay = schematic.overlay;
    selected.target = 'sbc';
    selected.board = boardByOverlay(overlay.name, overlay.image);
    const text = overlayOptionsText(overlay.options);
    if (text) selected.overlayOptions = text;
  }
  return { selected, ...(c.embeddedMachineConfiguration ? { embeddedConfig: c.embeddedMachineConfiguration } : {}) };
}

/**
 * The board whose overlay a schematic names: the SBC table's (by name and image, else by name), else the overlay's
 * own name (how boardsFor offers catalog overlays the table does not know).
 */
function boardByOverlay(name: string, image: string): string {
  return (SBCS.find((b) => b.overlayName === name && b.overlayImage === image) ?? SBCS.find((b) => b.overlayName === name))?.name ?? name;
}

/** Twins the state does not have yet take the preloaded values (the query wins). */
export function withPreload(s: WizardState, preload: { selected: Selected }): WizardState {
  return { ...s, selected: { ...preload.selected, ...s.selected } };
}
