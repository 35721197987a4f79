import { parseExtensionsCatalog, parseOverlaysCatalog } from '../src/parse';

const D1 = 'sha256:' + 'a'.repeat(64);
const D2 = 'sha256:' + 'b'.repeat(64);

describe('extensions catalog (talos-formats §2.1)', () => {
  const lines = [
    `ghcr.io/siderolabs/gvisor:20231214.0-v1.7.0@${D1}`,
    'a line without a digest is skipped',
    '',
    `  localhost:5100/extension-testing/my-extension:v1.0.0@${D2}  `,
  ].join('\n');
  const descriptions = [
    `ghcr.io/siderolabs/gvisor:20231214.0-v1.7.0@${D1}:`,
    '  author: Sidero Labs',
    '  description: |',
    '    gVisor container runtime <&>',
  ].join('\n');

  test('file order, registry rewrite, descriptions by full line', () => {
    const got = parseExtensionsCatalog(lines, descriptions, 'factory.example:5000');
    expect(got.map((e) => [e.name, e.ref, e.digest, e.author, e.description])).toEqual([
      ['siderolabs/gvisor', 'factory.example:5000/siderolabs/gvisor:20231214.0-v1.7.0', D1, 'Sidero Labs', 'gVisor container runtime <&>\n'],
      ['extension-testing/my-extension', 'factory.example:5000/extension-testing/my-extension:v1.0.0', D2, '', ''],
    ]);
  });

  test('quoted keys and missing descriptions file', () => {
    const quoted = `"ghcr.io/siderolabs/gvisor:20231214.0-v1.7.0@${D1}":\n  author: X\n  description: Y\n`;
    expect(parseExtensionsCatalog(lines, quoted, 'ghcr.io')[0]).toMatchObject({ author: 'X', description: 'Y' });
    expect(parseExtensionsCatalog(lines, undefined, 'ghcr.io')[0]).toMatchObject({ author: '', description: '' });
  });

  test('bad digests are rejected', () => {
    expect(() => parseExtensionsCatalog('ghcr.io/a/b:1@sha256:xyz', undefined, 'ghcr.io')).toThrow(/digest/);
  });
});

describe('overlays catalog (talos-formats §2.2)', () => {
  test('name, repository path as image, tagged ref, digest', () => {
    const yaml = `overlays:\n  - name: rpi_generic\n    image: ghcr.io/siderolabs/sbc-raspberrypi:v0.1.0\n    digest: ${D1}\n  - name: rpi_5\n    image: ghcr.io/siderolabs/sbc-raspberrypi:v0.1.0\n    digest: ${D1}\n`;
    expect(parseOverlaysCatalog(yaml)).toEqual([
      { name: 'rpi_generic', image: 'siderolabs/sbc-raspberrypi', ref: 'ghcr.io/siderolabs/sbc-raspberrypi:v0.1.0', digest: D1, repository: 'siderolabs/sbc-raspberrypi' },
      { name: 'rpi_5', image: 'siderolabs/sbc-raspberrypi', ref: 'ghcr.io/siderolabs/sbc-raspberrypi:v0.1.0', digest: D1, repository: 'siderolabs/sbc-raspberrypi' },
    ]);
    expect(parseOverlaysCatalog('overlays: []\n')).toEqual([]);
    expect(() => parseOverlaysCatalog('overlays: [{name: x}]')).toThrow(/needs name, image and digest/);
  });
});
