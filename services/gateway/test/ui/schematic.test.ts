/**
 * The schematic a wizard state describes (anchor-api §9, round-trip vectors of §11): kernel arguments split on single
 * spaces, extensions sorted without `-`, the board's overlay with parsed options, the bootloader unless auto, the
 * embedded configuration — canonical YAML equal to what POST /schematics stores for it.
 */
import { canonicalYaml, parseSchematic, schematicId } from '@factory/schematic';
import { parseOverlayOptions, preloadFrom, wizardSchematic, overlayOptionsText } from '../../src/ui/schematic';
import { readForm, stateFields, stateUrl, validateState, WizardInputError } from '../../src/ui/state';
import { EXTENSIONS, VERSIONS, OVERLAYS } from './harness';

const catalog = { versions: VERSIONS, secureBoot: true, extensions: async () => EXTENSIONS, overlays: async () => OVERLAYS };
const stateOf = (q: string) => validateState(readForm(new URLSearchParams(q)), catalog);

test('SBC rpi_5, unsorted extensions with "-", grub, overlay options: the anchor round trip', async () => {
  const s = await stateOf(
    'target=sbc&version=1.12.4&board=rpi_5&extensions=siderolabs/intel-ucode&extensions=-&extensions=siderolabs/amd-ucode&cmdline-set=1&cmdline=console%3DttyS0%20-quiet&bootloader=grub&overlay-options=configTxtAppend%3A%20%22dtoverlay%3Dvc4%22%0Alist%3A%20%5B1%2C%202%5D',
  );
  expect(s.platform).toBe('metal');
  expect(s.arch).toBe('arm64');
  const schematic = wizardSchematic(s, undefined);
  const yaml = canonicalYaml(schematic);
  expect(yaml).toBe(
    [
      'overlay:',
      '    image: siderolabs/sbc-raspberrypi',
      '    name: rpi_5',
      '    options:',
      '        configTxtAppend: dtoverlay=vc4',
      '        list:',
      '            - 1',
      '            - 2',
      'customization:',
      '    extraKernelArgs:',
      '        - console=ttyS0',
      '        - -quiet',
      '    systemExtensions:',
      '        officialExtensions:',
      '            - siderolabs/amd-ucode',
      '            - siderolabs/intel-ucode',
      '    bootloader: grub',
      '',
    ].join('\n'),
  );
  // what POST /schematics stores for the same text: same canonical form, same ID
  expect(canonicalYaml(parseSchematic(yaml))).toBe(yaml);
  expect(schematicId(parseSchematic(yaml))).toBe(schematicId(schematic));
});

test('an empty wizard (metal, no extensions, no args, auto bootloader) is the default schematic', async () => {
  const s = await stateOf('target=metal&version=1.12.2&arch=amd64&extensions=-&cmdline-set=1&cmdline=&bootloader=auto');
  expect(schematicId(wizardSchematic(s, undefined))).toBe('376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba');
});

test('kernel arguments are split on single spaces, trimmed, and empty ones dropped', async () => {
  const s = await stateOf('target=metal&version=1.12.2&arch=amd64&extensions=-&cmdline-set=1&cmdline=%20noapic%20%20nolapic%20');
  expect(wizardSchematic(s, undefined).customization.extraKernelArgs).toEqual(['noapic', 'nolapic']);
  expect(schematicId(wizardSchematic(s, undefined))).toBe('9cba8e32753f91a16c1837ab8abf356af021706ef284aef07380780177d9a06c');
});

test('the embedded configuration goes into the schematic (vector of §2.3) and never into a URL', async () => {
  const config = 'apiVersion: v1alpha1\r\nkind: HostnameConfig\r\nhostname: worker-33';
  const s = await stateOf(`target=metal&version=1.12.2&arch=amd64&extensions=-&cmdline-set=1&embedded-config=${encodeURIComponent(config)}`);
  expect(s.embeddedConfig).toBe('apiVersion: v1alpha1\nkind: HostnameConfig\nhostname: worker-33');
  expect(schematicId(wizardSchematic(s, s.embeddedConfig))).toBe('02f29f9a702fceec4fc2e2e51314d63710fc1b192ebb1629ac12301949d49c8c');
  for (const url of [stateUrl(s), stateUrl(s, { schematicId: null }), stateUrl(s, { schematicId: 'a'.repeat(64) })]) {
    expect(url).not.toContain('embedded-config');
    expect(url).not.toContain('HostnameConfig');
  }
  expect(stateFields(s).map(([name]) => name)).not.toContain('embedded-config');
});

test('overlay options: parsed as the schematic parser does; bad YAML is a 400 naming the line', () => {
  expect(parseOverlayOptions('')).toBeUndefined();
  expect(parseOverlayOptions('a: 1\nb: [x, y]\n')).toEqual({ a: 1, b: ['x', 'y'] });
  expect(() => parseOverlayOptions('a: 1\n  b: [')).toThrow(WizardInputError);
  expect(() => parseOverlayOptions('- just\n- a list')).toThrow(WizardInputError);
});

test('a stored schematic preloads the steps (and the embedded configuration)', () => {
  const yaml = canonicalYaml({
    overlay: { image: 'siderolabs/sbc-raspberrypi', name: 'rpi_generic', options: { configTxtAppend: 'x', n: 2 } },
    customization: { embeddedMachineConfiguration: 'kind: X', extraKernelArgs: ['a', 'b'], systemExtensions: { officialExtensions: ['siderolabs/gvisor'] }, bootloader: 'sd-boot' },
  });
  const preload = preloadFrom(parseSchematic(yaml));
  expect(preload).toEqual({
    selected: { target: 'sbc', board: 'rpi_generic', extensions: ['siderolabs/gvisor'], cmdline: 'a b', bootloader: 'sd-boot', overlayOptions: "configTxtAppend: x\n'n': 2" },
    embeddedConfig: 'kind: X',
  });
  expect(parseOverlayOptions(overlayOptionsText({ configTxtAppend: 'x', n: 2 }))).toEqual({ configTxtAppend: 'x', n: 2 });
});
