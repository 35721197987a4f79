/**
 * Step selection (anchor-api §9: the first unmet condition wins), implied fields, Back, and what bad input is refused.
 */
import { parseSemver } from '@factory/talos';
import { wizardSchematic } from '../../src/ui/schematic';
import { backState, boardsFor, currentStep, hiddenFields, readForm, stateUrl, validateState, WizardInputError } from '../../src/ui/state';
import { EXTENSIONS, VERSIONS, OVERLAYS } from './harness';

const catalog = (secureBoot = true) => ({ versions: VERSIONS, secureBoot, extensions: async () => EXTENSIONS, overlays: async () => OVERLAYS });
const stateOf = async (q: string, secureBoot = true) => validateState(readForm(new URLSearchParams(q)), catalog(secureBoot));
const stepOf = async (q: string) => currentStep(await stateOf(q));

test('the first unmet step is shown', async () => {
  expect(await stepOf('')).toBe('hardware');
  expect(await stepOf('target=metal')).toBe('version');
  expect(await stepOf('target=cloud&version=1.12.2')).toBe('cloud');
  expect(await stepOf('target=sbc&version=1.12.2')).toBe('sbc');
  expect(await stepOf('target=metal&version=1.12.2')).toBe('arch');
  expect(await stepOf('target=cloud&version=1.12.2&platform=aws')).toBe('arch');
  // single-architecture platforms and boards skip the architecture step
  expect(await stepOf('target=cloud&version=1.12.2&platform=hcloud')).toBe('extensions');
  expect(await stepOf('target=sbc&version=1.12.2&board=rpi_generic')).toBe('extensions');
  expect(await stepOf('target=metal&version=1.12.2&arch=amd64&extensions=-')).toBe('customization');
  expect(await stepOf('target=metal&version=1.12.2&arch=amd64&extensions=-&cmdline-set=1')).toBe('final');
});

test('boards imply metal and arm64; bare metal implies the metal platform', async () => {
  const sbc = await stateOf('target=sbc&version=1.12.2&board=rpi_generic&arch=amd64');
  expect([sbc.platform, sbc.arch]).toEqual(['metal', 'arm64']);
  const metal = await stateOf('target=metal&version=1.12.2&platform=aws');
  expect(metal.platform).toBe('metal');
});

test('Back opens the previous shown step and remembers every later choice', async () => {
  const final = await stateOf('target=sbc&version=1.12.2&board=rpi_generic&extensions=-&extensions=siderolabs/gvisor&cmdline-set=1&cmdline=a%20b&overlay-options=x%3A%201');
  const toCustomization = backState(final)!;
  expect(currentStep(toCustomization)).toBe('customization');
  expect(stateUrl(toCustomization)).toBe('/?target=sbc&version=1.12.2&platform=metal&board=rpi_generic&arch=arm64&extensions=-&extensions=siderolabs%2Fgvisor&selected-cmdline=a+b&selected-overlay-options=x%3A+1');
  const toExtensions = backState(toCustomization)!;
  expect(currentStep(toExtensions)).toBe('extensions');
  // the board step comes before extensions for boards (no architecture step)
  const toBoard = backState(toExtensions)!;
  expect(currentStep(toBoard)).toBe('sbc');
  expect(toBoard.selected).toMatchObject({ board: 'rpi_generic', extensions: ['-', 'siderolabs/gvisor'], cmdline: 'a b', overlayOptions: 'x: 1' });
  const toVersion = backState(toBoard)!;
  expect(currentStep(toVersion)).toBe('version');
  const toHardware = backState(toVersion)!;
  expect(currentStep(toHardware)).toBe('hardware');
  expect(backState(toHardware)).toBeUndefined();
  expect(stateUrl(toHardware)).toBe(
    '/?selected-target=sbc&selected-version=1.12.2&selected-board=rpi_generic&selected-extensions=-&selected-extensions=siderolabs%2Fgvisor&selected-cmdline=a+b&selected-overlay-options=x%3A+1',
  );
});

test("a step's hidden fields carry the state but not what its own controls set", async () => {
  const s = await stateOf('target=metal&version=1.12.2&selected-arch=arm64&selected-extensions=siderolabs/gvisor');
  expect(hiddenFields(s, 'arch')).toEqual([
    ['target', 'metal'],
    ['version', '1.12.2'],
    ['selected-extensions', 'siderolabs/gvisor'],
  ]);
});

test.each([
  ['target=tablet', 'error.unknownTarget'],
  ['target=metal&version=9.9.9', 'error.unknownVersion'],
  ['target=sbc&version=1.5.5', 'error.unknownVersion'],
  ['target=cloud&version=1.12.2&platform=nowhere', 'error.unknownPlatform'],
  ['target=cloud&version=1.5.5&platform=akamai', 'error.unknownPlatform'],
  ['target=cloud&version=1.12.2&platform=metal', 'error.unknownPlatform'],
  ['target=sbc&version=1.12.2&board=rpi_5', 'error.unknownBoard'],
  ['target=metal&version=1.12.2&arch=riscv64', 'error.unknownArch'],
  ['target=cloud&version=1.12.2&platform=aws&arch=amd64&secureboot=true', 'error.secureBootUnavailable'],
  ['target=metal&version=1.12.2&arch=amd64&extensions=siderolabs/nope', 'error.unknownExtension'],
  ['target=metal&version=1.11.3&arch=amd64&extensions=-&cmdline-set=1&bootloader=grub', 'error.bootloaderUnavailable'],
  ['target=metal&version=1.12.2&arch=amd64&secureboot=true&extensions=-&cmdline-set=1&bootloader=grub', 'error.grubSecureBoot'],
  ['target=metal&version=1.12.2&arch=amd64&extensions=-&cmdline-set=1&bootloader=lilo', 'error.unknownBootloader'],
  ['target=metal&version=1.11.3&arch=amd64&extensions=-&cmdline-set=1&embedded-config=x', 'error.embeddedUnavailable'],
  ['target=metal&version=1.12.2&arch=amd64&extensions=-&cmdline-set=1&overlay-options=a%3A%201', 'error.overlayOptionsUnavailable'],
  ['cmdline-set=yes', 'error.badValue'],
  ['schematic-id=xyz', 'error.badSchematicId'],
  ['cmdline=<4097 characters>', 'error.tooLong'],
  ['embedded-config=<256 KiB + 1>', 'error.tooLong'],
  ['overlay-options=<64 KiB + 1>', 'error.tooLong'],
  ['target=<257 characters>', 'error.tooLong'],
])('%s is refused (%s)', async (label, key) => {
  const long: Record<string, number> = { cmdline: 4097, 'embedded-config': 256 * 1024 + 1, 'overlay-options': 64 * 1024 + 1, target: 257 };
  const m = /^([a-z-]+)=<.*>$/.exec(label);
  const q = m ? `${m[1]}=${'a'.repeat(long[m[1]])}` : label;
  const err = await stateOf(q).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(WizardInputError);
  expect((err as WizardInputError).key).toBe(key);
});

test('Secure Boot is refused when the factory does not sign', async () => {
  await expect(stateOf('target=metal&version=1.12.2&arch=amd64&secureboot=true', false)).rejects.toBeInstanceOf(WizardInputError);
  await expect(stateOf('target=metal&version=1.12.2&arch=amd64&secureboot=true', true)).resolves.toMatchObject({ secureboot: true });
  await expect(stateOf('target=cloud&version=1.12.2&platform=azure&arch=amd64&secureboot=true', true)).resolves.toMatchObject({ secureboot: true });
});

test('boards come from the catalog: table boards whose overlay it has, then its other overlays by their own name', async () => {
  const v = parseSemver('1.12.4')!;
  const names = (overlays: Array<{ name: string; image: string }>) => boardsFor(v, overlays).map((b) => b.name);
  expect(names(OVERLAYS)).toEqual(['rpi_generic', 'rpi_5', 'my_board']);
  // a table board whose overlay the catalog lacks is not offered (its disk image could not be built)
  expect(names([{ name: 'rpi_generic', image: 'siderolabs/sbc-raspberrypi' }])).toEqual(['rpi_generic']);
  // same name, another image: the table's board is not that overlay
  expect(names([{ name: 'rpi_generic', image: 'someone/else' }])).toEqual([]);
  expect(names([])).toEqual([]);
  // a catalog-only board validates and carries its catalog overlay into the schematic
  const s = await stateOf('target=sbc&version=1.12.4&board=my_board');
  expect(s.boardOverlay).toEqual({ name: 'my_board', image: 'example/sbc-custom' });
  expect(wizardSchematic({ ...s, extensions: ['-'], cmdlineSet: true }, undefined).overlay).toEqual({ name: 'my_board', image: 'example/sbc-custom' });
  await expect(validateState(readForm(new URLSearchParams('target=sbc&version=1.12.4&board=rpi_generic')), { ...catalog(), overlays: async () => [] })).rejects.toThrow(WizardInputError);
});
