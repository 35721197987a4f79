import { GoFloat, GoTime, goFloat } from '@factory/goyaml';
import { SchematicError, assertCommunity, canonicalYaml, parseSchematic, schematicId } from '@factory/schematic';

function errorOf(body: string | Buffer, opts?: { enterprise?: boolean }): string {
  try {
    parseSchematic(body, opts);
  } catch (e) {
    expect(e).toBeInstanceOf(SchematicError);
    expect(e).toBeInstanceOf(Error);
    const msg = (e as Error).message;
    expect(msg).not.toMatch(/[\r\n]/);
    return msg;
  }
  throw new Error('expected a SchematicError');
}

const canon = (body: string) => canonicalYaml(parseSchematic(body));

describe('error messages (anchor-api §1.4)', () => {
  test('empty body is EOF', () => {
    expect(errorOf('')).toBe('EOF');
    expect(errorOf(Buffer.alloc(0))).toBe('EOF');
    expect(errorOf('   \n\n')).toBe('EOF');
    expect(errorOf('# just a comment\n')).toBe('EOF');
    expect(errorOf('...\n')).toBe('EOF'); // stray document end markers are skipped
  });

  test('unknown top-level field', () => {
    expect(errorOf('something: x\n')).toBe('yaml: construct errors: line 1: field something not found in type schematic.Schematic');
    expect(errorOf('{"something": 1}')).toBe('yaml: construct errors: line 1: field something not found in type schematic.Schematic');
  });

  test('meta key out of uint8 range', () => {
    expect(errorOf('customization:\n  meta:\n    - key: 256\n      value: foo\n')).toBe(
      'yaml: construct errors: line 3: cannot construct !!int `256` into uint8',
    );
    expect(errorOf('customization:\n  meta:\n    - key: -1\n      value: foo\n')).toBe(
      'yaml: construct errors: line 3: cannot construct !!int `-1` into uint8',
    );
    expect(errorOf('customization:\n  meta:\n    - key: 0x100\n      value: foo\n')).toBe(
      'yaml: construct errors: line 3: cannot construct !!int `0x100` into uint8',
    );
  });

  test('bootloader outside none|dual-boot|sd-boot|grub', () => {
    expect(errorOf('customization:\n  bootloader: auto\n')).toBe(
      'yaml: construct errors: line 2: auto does not belong to BootloaderKind values',
    );
    expect(errorOf('customization:\n  bootloader: 1\n')).toBe('yaml: construct errors: line 2: 1 does not belong to BootloaderKind values');
    expect(errorOf('customization:\n  bootloader: [grub]\n')).toBe(
      'yaml: construct errors: line 2: cannot construct !!seq into imageropts.BootloaderKind (TextUnmarshaler)',
    );
  });

  test('owner in the community edition', () => {
    expect(errorOf('owner: alice\n')).toBe('owner field is only supported in Enterprise edition');
    expect(errorOf('{"owner":"alice","customization":{}}')).toBe('owner field is only supported in Enterprise edition');
    // empty owner is fine
    expect(canon('owner: ""\n')).toBe('customization: {}\n');
    // enterprise accepts it; assertCommunity is the separate check
    const s = parseSchematic('owner: alice\n', { enterprise: true });
    expect(s.owner).toBe('alice');
    expect(() => assertCommunity(s)).toThrow(new SchematicError('owner field is only supported in Enterprise edition'));
    expect(() => assertCommunity({ customization: {} })).not.toThrow();
  });

  test('unknown fields at every level', () => {
    const body = [
      'overlay:',
      '  nme: x',
      'customization:',
      '  extraKernelArg: [a]',
      '  meta:',
      '    - key: 1',
      '      val: x',
      '  systemExtensions:',
      '    officialExtension: [a]',
      '  secureboot:',
      '    enroll: force',
      '  diskImage:',
      '    size: 1',
      '',
    ].join('\n');
    expect(errorOf(body)).toBe(
      'yaml: construct errors: ' +
        [
          'line 2: field nme not found in type schematic.Overlay',
          'line 4: field extraKernelArg not found in type schematic.Customization',
          'line 7: field val not found in type schematic.MetaValue',
          'line 9: field officialExtension not found in type schematic.SystemExtensions',
          'line 11: field enroll not found in type schematic.SecureBootCustomization',
          'line 13: field size not found in type schematic.DiskImageCustomization',
        ].join('; '),
    );
  });

  test('wrong types', () => {
    expect(errorOf('customization:\n  extraKernelArgs: {a: b}\n')).toBe('yaml: construct errors: line 2: cannot construct !!map into []string');
    expect(errorOf('customization:\n  extraKernelArgs: vga=791\n')).toBe(
      'yaml: construct errors: line 2: cannot construct !!str `vga=791` into []string',
    );
    expect(errorOf('customization:\n  extraKernelArgs: [[a]]\n')).toBe('yaml: construct errors: line 2: cannot construct !!seq into string');
    expect(errorOf('customization:\n  meta: {key: 1, value: a}\n')).toBe(
      'yaml: construct errors: line 2: cannot construct !!map into []schematic.MetaValue',
    );
    expect(errorOf('customization:\n  meta: [5]\n')).toBe('yaml: construct errors: line 2: cannot construct !!int `5` into schematic.MetaValue');
    expect(errorOf('customization: [a]\n')).toBe('yaml: construct errors: line 1: cannot construct !!seq into schematic.Customization');
    expect(errorOf('customization: x\n')).toBe('yaml: construct errors: line 1: cannot construct !!str `x` into schematic.Customization');
    expect(errorOf('customization:\n  secureboot:\n    includeWellKnownCertificates: "true"\n')).toBe(
      'yaml: construct errors: line 3: cannot construct !!str `true` into bool',
    );
    expect(errorOf('customization:\n  secureboot:\n    includeWellKnownCertificates: 1\n')).toBe(
      'yaml: construct errors: line 3: cannot construct !!int `1` into bool',
    );
    expect(errorOf('customization:\n  diskImage:\n    sectorSize: -512\n')).toBe(
      'yaml: construct errors: line 3: cannot construct !!int `-512` into uint',
    );
    expect(errorOf('customization:\n  diskImage:\n    sectorSize: "4096"\n')).toBe(
      'yaml: construct errors: line 3: cannot construct !!str `4096` into uint',
    );
    expect(errorOf('customization:\n  diskImage:\n    sectorSize: 512.5\n')).toBe(
      'yaml: construct errors: line 3: cannot construct !!float `512.5` into uint',
    );
    expect(errorOf('customization:\n  meta:\n    - key: "10"\n      value: x\n')).toBe(
      'yaml: construct errors: line 3: cannot construct !!str `10` into uint8',
    );
    expect(errorOf('overlay:\n  options: [a]\n')).toBe('yaml: construct errors: line 2: cannot construct !!seq into map[string]interface {}');
    expect(errorOf('overlay:\n  name: {a: b}\n')).toBe('yaml: construct errors: line 2: cannot construct !!map into string');
    // long values are shortened like go-yaml does
    expect(errorOf('customization:\n  systemExtensions:\n    officialExtensions: siderolabs/gvisor\n')).toBe(
      'yaml: construct errors: line 3: cannot construct !!str `siderol...` into []string',
    );
  });

  test('a body that is not a mapping', () => {
    expect(errorOf('foo\n')).toBe('yaml: construct errors: line 1: cannot construct !!str `foo` into schematic.Schematic');
    expect(errorOf('- a\n')).toBe('yaml: construct errors: line 1: cannot construct !!seq into schematic.Schematic');
    expect(errorOf('123')).toBe('yaml: construct errors: line 1: cannot construct !!int `123` into schematic.Schematic');
    expect(errorOf('"{}"')).toBe('yaml: construct errors: line 1: cannot construct !!str `{}` into schematic.Schematic');
    // a null document is the empty schematic (go-yaml leaves the struct untouched)
    expect(canon('null')).toBe('customization: {}\n');
  });

  test('several errors are reported together, in document order', () => {
    expect(errorOf('a: 1\ncustomization:\n  meta:\n    - key: 300\n      value: x\n  bootloader: auto\nb: 2\n')).toBe(
      'yaml: construct errors: line 1: field a not found in type schematic.Schematic; ' +
        'line 4: cannot construct !!int `300` into uint8; line 6: auto does not belong to BootloaderKind values; ' +
        'line 7: field b not found in type schematic.Schematic',
    );
  });

  test('duplicate keys', () => {
    expect(errorOf('customization: {}\ncustomization: {}\n')).toBe(
      'yaml: construct errors: line 2: mapping key "customization" already defined at line 1',
    );
    expect(errorOf('{"customization": {"bootloader": "grub", "bootloader": "grub"}}')).toBe(
      'yaml: construct errors: line 1: mapping key "bootloader" already defined at line 1',
    );
  });

  test('syntax errors', () => {
    expect(errorOf('customization: [a, b\n')).toMatch(/^yaml: line \d+: /);
    expect(errorOf('customization:\n\textraKernelArgs: [a]\n')).toMatch(/^yaml: line 2: /);
    expect(errorOf('{"customization": {]}')).toMatch(/^yaml: line 1: /);
    expect(canon('{"customization": }')).toBe('customization: {}\n'); // valid YAML: a null value
    expect(errorOf('customization: *nope\n')).toBe("yaml: line 1: unknown anchor 'nope' referenced");
    // libyaml does not know the JSON escape \/ ...
    expect(errorOf('{"customization": {"extraKernelArgs": ["a\\/b"]}}')).toBe(
      'yaml: line 1: found unknown escape character while parsing a quoted scalar',
    );
    // ... but accepts \' in double quotes
    expect(canon('customization: {"extraKernelArgs": ["a\\\'b"]}')).toBe("customization:\n    extraKernelArgs:\n        - a'b\n");
  });

  test('reader errors', () => {
    expect(errorOf(Buffer.from([0x63, 0x3a, 0x20, 0xff, 0x0a]))).toBe('yaml: invalid leading UTF-8 octet (value: 255)');
    expect(errorOf('customization: {extraKernelArgs: ["a\u0001"]}')).toBe('yaml: control characters are not allowed (value: 1)');
  });

  test('resolver errors on explicit tags', () => {
    expect(errorOf('customization:\n  extraKernelArgs: [!!int foo]\n')).toBe('yaml: cannot construct !!str `foo` as a !!int');
  });
});

describe('decoding like go-yaml', () => {
  test('non-string scalars into string fields keep their source text', () => {
    expect(canon('customization:\n  extraKernelArgs: [123, 0x10, true, 1.5, .inf, ~, "", <<]\n  meta: [{key: 1, value: 5}]\n')).toBe(
      'customization:\n    extraKernelArgs:\n        - "123"\n        - "0x10"\n        - "true"\n        - "1.5"\n' +
        '        - ".inf"\n        - ""\n        - \'<<\'\n    meta:\n        - key: 1\n          value: "5"\n',
    );
    // null elements are dropped from lists; a null key leaves the zero value
    expect(canon('customization:\n  extraKernelArgs: [a, null, b]\n  meta: [~, {key: ~, value: v}]\n')).toBe(
      'customization:\n    extraKernelArgs:\n        - a\n        - b\n    meta:\n        - key: 0\n          value: v\n',
    );
  });

  test('timestamps do not go into string fields', () => {
    expect(errorOf('customization:\n  extraKernelArgs: [2024-01-01]\n')).toBe(
      'yaml: construct errors: line 2: cannot construct !!timestamp `2024-01-01` into string',
    );
    expect(canon('customization:\n  extraKernelArgs: ["2024-01-01"]\n')).toBe('customization:\n    extraKernelArgs:\n        - "2024-01-01"\n');
  });

  test('YAML 1.1 ints for META keys and sizes', () => {
    for (const k of ['10', '0xa', '0XA', '0o12', '012', '0b1010', '+10', '1_0', '10.0', '1e1']) {
      expect(canon(`customization:\n  meta:\n    - key: ${k}\n      value: x\n`)).toBe('customization:\n    meta:\n        - key: 10\n          value: x\n');
    }
    expect(canon('customization:\n  meta: [{key: 0, value: ""}, {key: 255, value: a}]\n')).toBe(
      'customization:\n    meta:\n        - key: 0\n          value: ""\n        - key: 255\n          value: a\n',
    );
  });

  test('booleans accept YAML 1.1 spellings', () => {
    for (const b of ['true', 'True', 'yes', 'on', 'Y', 'ON']) {
      expect(canon(`customization:\n  secureboot:\n    includeWellKnownCertificates: ${b}\n`)).toBe(
        'customization:\n    secureboot:\n        includeWellKnownCertificates: true\n',
      );
    }
    expect(canon('customization:\n  secureboot:\n    includeWellKnownCertificates: off\n')).toBe('customization: {}\n');
  });

  test('bootloader is case-insensitive and none is the zero value', () => {
    expect(parseSchematic('customization: {bootloader: Dual-Boot}').customization.bootloader).toBe('dual-boot');
    expect(parseSchematic('customization: {bootloader: None}').customization).toEqual({});
    expect(parseSchematic('customization: {bootloader: ~}').customization).toEqual({});
    expect(errorOf('customization: {bootloader: ""}')).toBe('yaml: construct errors: line 1:  does not belong to BootloaderKind values');
  });

  test('empty things collapse', () => {
    expect(
      parseSchematic(
        'overlay: {image: "", name: "", options: {}}\ncustomization:\n  extraKernelArgs: []\n  meta: []\n  systemExtensions: {officialExtensions: []}\n' +
          '  secureboot: {includeWellKnownCertificates: false, enrollKeys: ""}\n  diskImage: {sectorSize: 0}\n  embeddedMachineConfiguration: ""\n',
      ),
    ).toEqual({ customization: {} });
  });

  test('overlay with only options keeps image and name as ""', () => {
    expect(canon('overlay: {options: {a: 1}}')).toBe('overlay:\n    image: ""\n    name: ""\n    options:\n        a: 1\ncustomization: {}\n');
    expect(canon('overlay: {name: x}')).toBe('overlay:\n    image: ""\n    name: x\ncustomization: {}\n');
  });

  test('only the first document is read', () => {
    expect(canon('...\n---\ncustomization: {extraKernelArgs: [a]}\n---\nfoo: 1\n')).toBe('customization:\n    extraKernelArgs:\n        - a\n');
    expect(canon('customization: {extraKernelArgs: [a]}\n---\nfoo: bar\n')).toBe('customization:\n    extraKernelArgs:\n        - a\n');
    expect(canon('---\ncustomization: {extraKernelArgs: [a]}\n...\n---\n[broken\n')).toBe(
      'customization:\n    extraKernelArgs:\n        - a\n',
    );
  });

  test('anchors, aliases and merge keys', () => {
    expect(canon('customization:\n  extraKernelArgs: &a [x, y]\n  systemExtensions:\n    officialExtensions: *a\n')).toBe(
      "customization:\n    extraKernelArgs:\n        - x\n        - 'y'\n    systemExtensions:\n        officialExtensions:\n            - x\n            - 'y'\n",
    );
    expect(canon('customization:\n  <<: {extraKernelArgs: [a], bootloader: grub}\n  extraKernelArgs: [b]\n')).toBe(
      'customization:\n    extraKernelArgs:\n        - b\n    bootloader: grub\n',
    );
    expect(canon('customization:\n  <<: [{bootloader: grub}, {bootloader: sd-boot, extraKernelArgs: [x]}]\n')).toBe(
      'customization:\n    extraKernelArgs:\n        - x\n    bootloader: grub\n',
    );
    expect(errorOf('customization:\n  <<: 5\n')).toBe('yaml: line 2: map merge requires map or sequence of maps as the value');
    expect(errorOf('overlay:\n  name: x\n  options: &o\n    a: [*o]\n')).toBe("yaml: line 4: anchor 'o' value contains itself");
  });

  test('excessive aliasing is refused', () => {
    const lines = ['a0: &a0 [x, x, x, x, x, x, x, x, x, x]'];
    for (let i = 1; i < 9; i++) lines.push(`a${i}: &a${i} [${Array(10).fill(`*a${i - 1}`).join(', ')}]`);
    const body = `overlay:\n  name: x\n  options:\n${lines.map((l) => '    ' + l).join('\n')}\n`;
    expect(errorOf(body)).toMatch(/document contains excessive aliasing/);
  });

  test('UTF-16 and BOM bodies', () => {
    expect(schematicId(parseSchematic(Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from('customization: {}\n', 'utf16le')])))).toBe(
      '376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba',
    );
    expect(canon('\ufeffcustomization: {extraKernelArgs: [a]}')).toBe('customization:\n    extraKernelArgs:\n        - a\n');
  });

  test('multi-line plain and folded scalars', () => {
    expect(canon('customization:\n  extraKernelArgs:\n    - a\n      b\n  embeddedMachineConfiguration: >\n    x\n    y\n')).toBe(
      'customization:\n    embeddedMachineConfiguration: |\n        x y\n    extraKernelArgs:\n        - a b\n',
    );
  });
});

describe('overlay options (map[string]any)', () => {
  const body = [
    'overlay:',
    '  image: img',
    '  name: rpi',
    '  options:',
    '    z: 1',
    '    a10: x',
    '    a2: [1.0, 1e6, 1.5, .inf, 2001-01-01, ~, yes, "no", 0x10, 9007199254740993]',
    '    m: {b: 1, a: {y: 2, x: 3}}',
    '    k: {1: a, true: b}',
    '    "": empty',
    '    n: ~',
    '',
  ].join('\n');

  test('keys are sorted recursively and values keep their Go types', () => {
    expect(canon(body)).toBe(
      [
        'overlay:',
        '    image: img',
        "    name: rpi",
        '    options:',
        '        "": empty',
        '        a2:',
        '            - 1',
        '            - 1e+06',
        '            - 1.5',
        '            - .inf',
        '            - 2001-01-01T00:00:00Z',
        '            - null',
        "            - 'yes'",
        "            - 'no'",
        '            - 16',
        '            - 9007199254740993',
        '        a10: x',
        '        k:',
        '            true: b',
        '            1: a',
        '        m:',
        '            a:',
        '                x: 3',
        "                'y': 2",
        '            b: 1',
        "        'n': null",
        '        z: 1',
        'customization: {}',
        '',
      ].join('\n'),
    );
  });

  test('public representation', () => {
    const s = parseSchematic(body);
    const o = s.overlay!.options!;
    expect(o.z).toBe(1);
    expect(o.n).toBeNull();
    expect(o.m).toEqual({ b: 1, a: { y: 2, x: 3 } });
    const a2 = o.a2 as unknown[];
    expect(a2[0]).toEqual(goFloat(1));
    expect(a2[1]).toBeInstanceOf(GoFloat);
    expect(a2[2]).toBe(1.5);
    expect(a2[4]).toEqual(new GoTime(2001, 1, 1, 0, 0, 0, 0, 0));
    expect(a2[8]).toBe(16);
    expect(a2[9]).toBe(9007199254740993n);
    expect(o.k).toBeInstanceOf(Map);
    // round trip through the canonical text is stable
    expect(canon(canonicalYaml(s))).toBe(canonicalYaml(s));
  });

  test('hand-built options are emitted as Go maps', () => {
    const id = schematicId({ overlay: { image: 'i', name: 'n', options: { b: { d: 1, c: [{ f: 1, e: 2 }] }, a: 1.0, x: goFloat(2) } }, customization: {} });
    const text = canonicalYaml({ overlay: { image: 'i', name: 'n', options: { b: { d: 1, c: [{ f: 1, e: 2 }] }, a: 1.0, x: goFloat(2) } }, customization: {} });
    expect(text).toBe(
      "overlay:\n    image: i\n    name: 'n'\n    options:\n        a: 1\n        b:\n            c:\n                - e: 2\n                  f: 1\n            d: 1\n        x: 2\ncustomization: {}\n",
    );
    expect(id).toBe(schematicId(parseSchematic(text)));
  });

  test('__proto__ is an ordinary key', () => {
    const s = parseSchematic('overlay:\n  name: x\n  options: {__proto__: {polluted: 1}}\n');
    expect(Object.prototype.hasOwnProperty.call(s.overlay!.options!, '__proto__')).toBe(true);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(canonicalYaml(s)).toBe('overlay:\n    image: ""\n    name: x\n    options:\n        __proto__:\n            polluted: 1\ncustomization: {}\n');
  });
});

describe('canonicalYaml on hand-built schematics', () => {
  test('omitempty rules', () => {
    expect(
      canonicalYaml({
        overlay: { image: '', name: '' },
        customization: {
          extraKernelArgs: [],
          meta: [],
          systemExtensions: {},
          secureboot: { includeWellKnownCertificates: false },
          diskImage: { sectorSize: 0 },
        },
      }),
    ).toBe('customization: {}\n');
  });

  test('invalid values are refused', () => {
    expect(() => canonicalYaml({ customization: { meta: [{ key: 256, value: 'x' }] } })).toThrow(SchematicError);
    expect(() => canonicalYaml({ customization: { bootloader: 'auto' as 'grub' } })).toThrow(
      new SchematicError('auto does not belong to BootloaderKind values'),
    );
  });
});
