import {
  DEFAULT_SCHEMATIC_ID,
  Schematic,
  canonicalYaml,
  extensionsOf,
  isSchematicId,
  parseSchematic,
  schematicId,
} from '@factory/schematic';
import { createHash } from 'crypto';

const sha256 = (s: string) => createHash('sha256').update(s, 'utf8').digest('hex');

interface Vector {
  name: string;
  /** request bodies that must all decode to the same schematic */
  inputs: string[];
  /** the same schematic built by hand */
  schematic?: Schematic;
  canonical: string;
  id: string;
  enterprise?: boolean;
}

/** The full docs/api.md POST /schematics example (anchor-api §2.3, last row), comments included. */
const DOCS_EXAMPLE = `customization:
    extraKernelArgs: # optional
        - vga=791
    meta: # optional, allows to set initial Talos META
      - key: 0xa
        value: "{}"
    systemExtensions: # optional
      officialExtensions: # optional
        - siderolabs/gvisor
        - siderolabs/amd-ucode
    secureboot: # optional, only applies to SecureBoot images
       # optional, include well-known UEFI certificates into auto-enrollment database (SecureBoot ISO only)
      includeWellKnownCertificates: true
       # optional, how systemd-boot enrolls SecureBoot keys on first boot: off, manual, if-safe, force
       # defaults to if-safe (auto-enrolls only in a VM); use force for unattended bare-metal enrollment in setup mode
      enrollKeys: force
    bootloader: sd-boot # optional, defaults to auto (bootloader chosen by imager), other options: dual-boot, grub
    embeddedMachineConfiguration: | # optional, embedded machine configuration (YAML-encoded)
      apiVersion: v1alpha1
      kind: HostnameConfig
      hostname: my-custom-hostname
      auto: off
      ---
      apiVersion: v1alpha1
      kind: KmsgLogConfig
      name: remote-log
      url: tcp://10.0.0.50:5044/
    diskImage: # optional, only applies to disk images
      sectorSize: 4096 # optional, disk image sector size in bytes, defaults to 512 if not set
overlay: # optional
  image: ghcr.io/siderolabs/sbc-raspberry-pi # overlay image
  name: rpi_generic # overlay name
  options: # optional, any valid yaml, depends on the overlay implementation
    data: "mydata"
`;

const DOCS_EXAMPLE_CANONICAL = `overlay:
    image: ghcr.io/siderolabs/sbc-raspberry-pi
    name: rpi_generic
    options:
        data: mydata
customization:
    embeddedMachineConfiguration: |
        apiVersion: v1alpha1
        kind: HostnameConfig
        hostname: my-custom-hostname
        auto: off
        ---
        apiVersion: v1alpha1
        kind: KmsgLogConfig
        name: remote-log
        url: tcp://10.0.0.50:5044/
    extraKernelArgs:
        - vga=791
    meta:
        - key: 10
          value: '{}'
    systemExtensions:
        officialExtensions:
            - siderolabs/gvisor
            - siderolabs/amd-ucode
    bootloader: sd-boot
    secureboot:
        enrollKeys: force
        includeWellKnownCertificates: true
    diskImage:
        sectorSize: 4096
`;

// anchor-api.md §2.3, first table (upstream vectors) and second table (computed with the same library).
const vectors: Vector[] = [
  {
    name: 'default (empty)',
    inputs: [
      '{}',
      'customization: {}',
      'customization: {"extraKernelArgs": []}',
      'customization:\n  bootloader: none\n',
      'customization:\n  bootloader: NONE\n',
      '{"customization": {"systemExtensions": {}, "secureboot": {"includeWellKnownCertificates": false}, "diskImage": {"sectorSize": 0}}}',
      '---\n',
      '~\n',
      'overlay: {}\ncustomization: {meta: [], extraKernelArgs: ~, embeddedMachineConfiguration: ""}\n',
    ],
    schematic: { customization: {} },
    canonical: 'customization: {}\n',
    id: '376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba',
  },
  {
    name: 'extraKernelArgs noapic nolapic',
    inputs: [
      '{"customization": {"extraKernelArgs": ["noapic", "nolapic"]}}',
      '{"customization": {"extraKernelArgs": ["noapic", "nolapic"], "systemExtensions": {}}}',
      'customization:\n  extraKernelArgs:\n  - noapic\n  - nolapic\n',
    ],
    schematic: { customization: { extraKernelArgs: ['noapic', 'nolapic'] } },
    canonical: 'customization:\n    extraKernelArgs:\n        - noapic\n        - nolapic\n',
    id: '9cba8e32753f91a16c1837ab8abf356af021706ef284aef07380780177d9a06c',
  },
  {
    name: 'meta 10=foo',
    inputs: [
      '{"customization": {"meta": [{"key": 10, "value": "foo"}], "extraKernelArgs": [], "systemExtensions": {}}}',
      'customization:\n  meta:\n    - key: 0xa\n      value: foo\n',
      'customization:\n  meta:\n    - key: 0o12\n      value: foo\n',
      'customization:\n  meta:\n    - key: 012\n      value: foo\n',
      'customization:\n  meta:\n    - {value: foo, key: 10.0}\n',
    ],
    schematic: { customization: { meta: [{ key: 10, value: 'foo' }] } },
    canonical: 'customization:\n    meta:\n        - key: 10\n          value: foo\n',
    id: 'd308a2a5ee2277bed5fbaa104fcbc8d59122abfa737df987a95b4ca763459a7f',
  },
  {
    name: 'secureboot includeWellKnownCertificates',
    inputs: [
      '{"customization":{"secureboot": {"includeWellKnownCertificates": true}}}',
      'customization:\n  secureboot:\n    includeWellKnownCertificates: yes\n',
    ],
    schematic: { customization: { secureboot: { includeWellKnownCertificates: true } } },
    canonical: 'customization:\n    secureboot:\n        includeWellKnownCertificates: true\n',
    id: 'fa8e05f142a851d3ee568eb0a8e5841eaf6b0ebc8df9a63df16ac5ed2c04f3e6',
  },
  {
    name: '4k sector disk image',
    inputs: ['{"customization":{"diskImage":{"sectorSize":4096}}}', 'customization:\n  diskImage:\n    sectorSize: 0x1000\n'],
    schematic: { customization: { diskImage: { sectorSize: 4096 } } },
    canonical: 'customization:\n    diskImage:\n        sectorSize: 4096\n',
    id: '92833e9ddd9bb9e11b2464fa5525429f01866306d52ebd882ee08d7918f6d1ea',
  },
  {
    name: 'overlay rpi_generic',
    inputs: [
      '{"overlay": {"name": "rpi_generic", "image": "siderolabs/sbc-raspberrypi"}}',
      '{"overlay": {"name": "rpi_generic", "image": "siderolabs/sbc-raspberrypi"},"customization":{}}',
      'overlay:\n  name: rpi_generic\n  image: siderolabs/sbc-raspberrypi\n  options: {}\n',
    ],
    schematic: { overlay: { image: 'siderolabs/sbc-raspberrypi', name: 'rpi_generic' }, customization: {} },
    canonical: 'overlay:\n    image: siderolabs/sbc-raspberrypi\n    name: rpi_generic\ncustomization: {}\n',
    id: 'ee21ef4a5ef808a9b7484cc0dda0f25075021691c8c09a276591eedb638ea1f9',
  },
  {
    name: 'kernel args + meta + extensions (profile test)',
    inputs: [
      'customization:\n  systemExtensions:\n    officialExtensions: [siderolabs/amd-ucode, siderolabs/intel-ucode]\n  extraKernelArgs: [noapic, nolapic]\n  meta: [{key: 0xa, value: foo}]\n',
    ],
    schematic: {
      customization: {
        extraKernelArgs: ['noapic', 'nolapic'],
        meta: [{ key: 10, value: 'foo' }],
        systemExtensions: { officialExtensions: ['siderolabs/amd-ucode', 'siderolabs/intel-ucode'] },
      },
    },
    canonical:
      'customization:\n    extraKernelArgs:\n        - noapic\n        - nolapic\n    meta:\n        - key: 10\n          value: foo\n' +
      '    systemExtensions:\n        officialExtensions:\n            - siderolabs/amd-ucode\n            - siderolabs/intel-ucode\n',
    id: '6ba13d510dcc57f233b9b498d34a3c919c1abdd5675b46ad53cf4f2e66362f82',
  },
  {
    name: 'overlay + kernel args + extensions (profile test)',
    inputs: [
      '{"customization":{"extraKernelArgs":["noapic","nolapic"],"systemExtensions":{"officialExtensions":["siderolabs/amd-ucode","siderolabs/intel-ucode"]}},' +
        '"overlay":{"name":"rpi_generic","image":"ghcr.io/siderolabs/sbc-raspberrypi:v0.1.0"}}',
    ],
    schematic: {
      overlay: { image: 'ghcr.io/siderolabs/sbc-raspberrypi:v0.1.0', name: 'rpi_generic' },
      customization: {
        extraKernelArgs: ['noapic', 'nolapic'],
        systemExtensions: { officialExtensions: ['siderolabs/amd-ucode', 'siderolabs/intel-ucode'] },
      },
    },
    canonical:
      'overlay:\n    image: ghcr.io/siderolabs/sbc-raspberrypi:v0.1.0\n    name: rpi_generic\n' +
      'customization:\n    extraKernelArgs:\n        - noapic\n        - nolapic\n' +
      '    systemExtensions:\n        officialExtensions:\n            - siderolabs/amd-ucode\n            - siderolabs/intel-ucode\n',
    id: '1da25204d18e6db95cb65ce2e38424b2ad94b2519a53aef34e45f07cc73ca5e8',
  },
  {
    name: 'aliased nvidia extensions (profile test)',
    inputs: [
      JSON.stringify({
        customization: {
          systemExtensions: {
            officialExtensions: [
              'siderolabs/nvidia-container-toolkit',
              'siderolabs/nvidia-open-gpu-kernel-modules',
              'siderolabs/nonfree-kmod-nvidia',
              'siderolabs/nvidia-fabricmanager',
              'siderolabs/i915-ucode',
              'siderolabs/amdgpu-firmware',
            ],
          },
        },
      }),
    ],
    canonical:
      'customization:\n    systemExtensions:\n        officialExtensions:\n' +
      [
        'siderolabs/nvidia-container-toolkit',
        'siderolabs/nvidia-open-gpu-kernel-modules',
        'siderolabs/nonfree-kmod-nvidia',
        'siderolabs/nvidia-fabricmanager',
        'siderolabs/i915-ucode',
        'siderolabs/amdgpu-firmware',
      ]
        .map((e) => `            - ${e}\n`)
        .join(''),
    id: '42c5a897579913a97ad7edc56c0d858bc4dd8639951e02b084edbb2e190a7898',
  },
  {
    name: 'embedded machine configuration (|- block)',
    inputs: [
      'customization:\n  embeddedMachineConfiguration: |-\n    apiVersion: v1alpha1\n    kind: HostnameConfig\n    hostname: worker-33\n',
      JSON.stringify({ customization: { embeddedMachineConfiguration: 'apiVersion: v1alpha1\nkind: HostnameConfig\nhostname: worker-33' } }),
    ],
    schematic: { customization: { embeddedMachineConfiguration: 'apiVersion: v1alpha1\nkind: HostnameConfig\nhostname: worker-33' } },
    canonical: 'customization:\n    embeddedMachineConfiguration: |-\n        apiVersion: v1alpha1\n        kind: HostnameConfig\n        hostname: worker-33\n',
    id: '02f29f9a702fceec4fc2e2e51314d63710fc1b192ebb1629ac12301949d49c8c',
  },
  // --- second table ---
  {
    name: 'integration: kernel args',
    inputs: ['{"customization":{"extraKernelArgs":["nolapic","nomodeset"]}}'],
    canonical: 'customization:\n    extraKernelArgs:\n        - nolapic\n        - nomodeset\n',
    id: 'e0fb1129bbbdfb5d002e94af4cdce712a8370e850950a33a242d4c3f178c532d',
  },
  {
    name: 'integration: system extensions',
    inputs: ['{"customization":{"systemExtensions":{"officialExtensions":["siderolabs/amd-ucode","siderolabs/gvisor","siderolabs/gasket-driver"]}}}'],
    canonical:
      'customization:\n    systemExtensions:\n        officialExtensions:\n            - siderolabs/amd-ucode\n            - siderolabs/gvisor\n            - siderolabs/gasket-driver\n',
    id: '51ff3e49313773332729a5c04e57af0dbe2e6d3f65ff638e6d4c3a05065fefff',
  },
  {
    name: 'integration: meta (value single-quoted)',
    inputs: [
      JSON.stringify({ customization: { meta: [{ key: 10, value: '{"externalIPs":["1.2.3.4"]}' }] } }),
      'customization:\n  meta:\n    - key: 10\n      value: \'{"externalIPs":["1.2.3.4"]}\'\n',
    ],
    schematic: { customization: { meta: [{ key: 10, value: '{"externalIPs":["1.2.3.4"]}' }] } },
    canonical: 'customization:\n    meta:\n        - key: 10\n          value: \'{"externalIPs":["1.2.3.4"]}\'\n',
    id: 'fe866116408a5a13dab7d5003eb57a00954ea81ebeec3fbbcd1a6d4462a00036',
  },
  {
    name: 'bootloader grub',
    inputs: ['{"customization":{"bootloader":"grub"}}', 'customization:\n  bootloader: GRUB\n'],
    schematic: { customization: { bootloader: 'grub' } },
    canonical: 'customization:\n    bootloader: grub\n',
    id: '39d496b2cbdb6265d3b714514c5334bf010f1b4d31b23b9e38c80fb2f3ad7ecb',
  },
  {
    name: 'bootloader sd-boot',
    inputs: ['{"customization":{"bootloader":"sd-boot"}}', 'customization:\n  bootloader: SD-Boot\n'],
    schematic: { customization: { bootloader: 'sd-boot' } },
    canonical: 'customization:\n    bootloader: sd-boot\n',
    id: '9ed5fecdacb36b5c5427b87d409f1065cfb2df69b0f71c58b868d9d466d8dab3',
  },
  {
    name: 'bootloader dual-boot',
    inputs: ['{"customization":{"bootloader":"dual-boot"}}'],
    schematic: { customization: { bootloader: 'dual-boot' } },
    canonical: 'customization:\n    bootloader: dual-boot\n',
    id: '43a1a6104d8dcd6547983f4ed13abb6f5e8a1b2fdad796c69e7db6e95d122884',
  },
  {
    name: 'single-line embedded config with literal /n (single-quoted)',
    inputs: [
      JSON.stringify({
        customization: { embeddedMachineConfiguration: 'apiVersion: v1alpha1/nkind: HostnameConfig/nhostname: my-custom-hostname/nauto: off' },
      }),
    ],
    canonical:
      "customization:\n    embeddedMachineConfiguration: 'apiVersion: v1alpha1/nkind: HostnameConfig/nhostname: my-custom-hostname/nauto: off'\n",
    id: '79312a00a1ccfee2c4ecad20fcb972ef75fce4e62053384d97885de26852c413',
  },
  {
    name: 'extension-testing/my-extension',
    inputs: ['{"customization":{"systemExtensions":{"officialExtensions":["extension-testing/my-extension"]}}}'],
    canonical: 'customization:\n    systemExtensions:\n        officialExtensions:\n            - extension-testing/my-extension\n',
    id: '9414259a4d71e1c9ab92bfaf673f83ac85afe39839ed91e28ca6e1177f576437',
  },
  {
    name: 'gvisor + amd-ucode (order preserved)',
    inputs: ['{"customization":{"systemExtensions":{"officialExtensions":["siderolabs/gvisor","siderolabs/amd-ucode"]}}}'],
    canonical: 'customization:\n    systemExtensions:\n        officialExtensions:\n            - siderolabs/gvisor\n            - siderolabs/amd-ucode\n',
    id: 'a993cf18ef6a65e3fc6d2f651c0363981b6b2e823829ad95a2557cfc97ca6595',
  },
  {
    name: 'docs example vga=791',
    inputs: ['{"customization":{"extraKernelArgs":["vga=791"]}}'],
    schematic: { customization: { extraKernelArgs: ['vga=791'] } },
    canonical: 'customization:\n    extraKernelArgs:\n        - vga=791\n',
    id: 'eea1f9534c46d95c4715a2f13d17eacb927c13a42ef087c79b22c3bd0c49d073',
  },
  {
    name: 'secureboot enrollKeys force',
    inputs: ['{"customization":{"secureboot":{"enrollKeys":"force"}}}'],
    schematic: { customization: { secureboot: { enrollKeys: 'force' } } },
    canonical: 'customization:\n    secureboot:\n        enrollKeys: force\n',
    id: 'f5212e5887c51d0b6a4c4686781c0b2a41a56b51549e4b9c06095d9d733c8a28',
  },
  {
    name: 'owner alice (enterprise)',
    inputs: ['{"owner":"alice"}'],
    schematic: { owner: 'alice', customization: {} },
    canonical: 'owner: alice\ncustomization: {}\n',
    id: '325e789382e85e76ab77e38cb320a816e2c9550cb5afe960b21f75e06605e2e9',
    enterprise: true,
  },
  {
    name: 'full docs/api.md example',
    inputs: [DOCS_EXAMPLE],
    schematic: {
      overlay: { image: 'ghcr.io/siderolabs/sbc-raspberry-pi', name: 'rpi_generic', options: { data: 'mydata' } },
      customization: {
        embeddedMachineConfiguration:
          'apiVersion: v1alpha1\nkind: HostnameConfig\nhostname: my-custom-hostname\nauto: off\n---\n' +
          'apiVersion: v1alpha1\nkind: KmsgLogConfig\nname: remote-log\nurl: tcp://10.0.0.50:5044/\n',
        extraKernelArgs: ['vga=791'],
        meta: [{ key: 10, value: '{}' }],
        systemExtensions: { officialExtensions: ['siderolabs/gvisor', 'siderolabs/amd-ucode'] },
        bootloader: 'sd-boot',
        secureboot: { enrollKeys: 'force', includeWellKnownCertificates: true },
        diskImage: { sectorSize: 4096 },
      },
    },
    canonical: DOCS_EXAMPLE_CANONICAL,
    id: '7dc6a7fa48654d7b3f4782189b422b50ebde04737857153996fa2af4ff6a8a28',
  },
];

describe('schematic golden vectors (anchor-api §2.3)', () => {
  for (const v of vectors) {
    describe(v.name, () => {
      test('canonical text hashes to the ID', () => {
        expect(sha256(v.canonical)).toBe(v.id);
      });

      test.each(v.inputs.map((i) => [i]))('input %j', (input) => {
        const s = parseSchematic(input, { enterprise: v.enterprise });
        expect(canonicalYaml(s)).toBe(v.canonical);
        expect(schematicId(s)).toBe(v.id);
        // Buffer bodies decode the same
        expect(schematicId(parseSchematic(Buffer.from(input, 'utf8'), { enterprise: v.enterprise }))).toBe(v.id);
      });

      if (v.schematic) {
        test('hand-built schematic', () => {
          expect(canonicalYaml(v.schematic!)).toBe(v.canonical);
          expect(schematicId(v.schematic!)).toBe(v.id);
          // and parsing yields exactly that normalized object
          expect(parseSchematic(v.inputs[0], { enterprise: v.enterprise })).toEqual(v.schematic);
        });
      }

      test('round trip: parse(canonical) -> same canonical', () => {
        const s = parseSchematic(v.canonical, { enterprise: v.enterprise });
        expect(canonicalYaml(s)).toBe(v.canonical);
        expect(schematicId(s)).toBe(v.id);
      });
    });
  }

  test('POST response example of anchor-api §1.4', () => {
    const s = parseSchematic('{"customization":{"extraKernelArgs":["vga=791"]}}');
    expect(JSON.stringify({ id: schematicId(s), schematic: canonicalYaml(s) })).toBe(
      '{"id":"eea1f9534c46d95c4715a2f13d17eacb927c13a42ef087c79b22c3bd0c49d073","schematic":"customization:\\n    extraKernelArgs:\\n        - vga=791\\n"}',
    );
  });

  test('helpers', () => {
    expect(DEFAULT_SCHEMATIC_ID).toBe('376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba');
    expect(schematicId({ customization: {} })).toBe(DEFAULT_SCHEMATIC_ID);
    expect(isSchematicId(DEFAULT_SCHEMATIC_ID)).toBe(true);
    expect(isSchematicId(DEFAULT_SCHEMATIC_ID.toUpperCase())).toBe(false);
    expect(isSchematicId(DEFAULT_SCHEMATIC_ID.slice(1))).toBe(false);
    expect(isSchematicId(DEFAULT_SCHEMATIC_ID + '0')).toBe(false);
    expect(isSchematicId('g'.repeat(64))).toBe(false);
    expect(isSchematicId('aaaaaaaaaaaa')).toBe(false);
    expect(extensionsOf(parseSchematic(DOCS_EXAMPLE))).toEqual(['siderolabs/gvisor', 'siderolabs/amd-ucode']);
    expect(extensionsOf({ customization: {} })).toEqual([]);
    const dup = parseSchematic('customization: {systemExtensions: {officialExtensions: [b, a, b]}}');
    expect(extensionsOf(dup)).toEqual(['b', 'a', 'b']);
  });
});
