import { GoBytesString, GoTime, formatGoFloat, goFloat, goMap, marshal, sortGoMapKeys } from '@factory/goyaml';
import { extensionsYamlVector, SCHEMATIC_MANIFEST_VECTOR } from '../../../test/support/vectors';

describe('block structure (go-yaml v4 Marshal defaults)', () => {
  test('4-space indent, sequences indented under their key', () => {
    expect(marshal({ customization: { extraKernelArgs: ['noapic', 'nolapic'] } })).toBe(
      'customization:\n    extraKernelArgs:\n        - noapic\n        - nolapic\n',
    );
  });

  test('sequence of maps continues at "- " + 2', () => {
    expect(marshal({ customization: { meta: [{ key: 10, value: 'foo' }, { key: 11, value: 'bar' }] } })).toBe(
      'customization:\n    meta:\n        - key: 10\n          value: foo\n        - key: 11\n          value: bar\n',
    );
  });

  test('empty collections', () => {
    expect(marshal({ customization: {} })).toBe('customization: {}\n');
    expect(marshal({ a: [] })).toBe('a: []\n');
    expect(marshal({})).toBe('{}\n');
    expect(marshal([])).toBe('[]\n');
    expect(marshal([{}, []])).toBe('- {}\n- []\n');
    expect(marshal(new Map())).toBe('{}\n');
  });

  test('nested sequences and maps', () => {
    expect(marshal([[1, []], { a: {} }, [{ a: 1, b: [1, 2] }]])).toBe(
      '- - 1\n  - []\n- a: {}\n- - a: 1\n    b:\n        - 1\n        - 2\n',
    );
    expect(marshal({ a: { b: { c: [{ d: { e: 'f' } }] } } })).toBe(
      'a:\n    b:\n        c:\n            - d:\n                e: f\n',
    );
  });

  test('root scalars and null', () => {
    expect(marshal('x')).toBe('x\n');
    expect(marshal(null)).toBe('null\n');
    expect(marshal({ a: null, b: undefined })).toBe('a: null\n');
    expect(marshal([undefined])).toBe('- null\n');
    expect(marshal(true)).toBe('true\n');
  });

  test('insertion order of plain objects is kept', () => {
    expect(marshal({ z: 1, a: 2, m: 3 })).toBe('z: 1\na: 2\nm: 3\n');
  });

  test('keys longer than 128 bytes use the complex key form', () => {
    const k = 'k'.repeat(129);
    expect(marshal({ [k]: 'v' })).toBe(`? ${k}\n: v\n`);
    expect(marshal({ ['k'.repeat(128)]: 'v' })).toBe(`${'k'.repeat(128)}: v\n`);
  });
});

describe('literal blocks', () => {
  test('|- without trailing newline, | with one, +4 relative to the key', () => {
    expect(
      marshal({ customization: { embeddedMachineConfiguration: 'apiVersion: v1alpha1\nkind: HostnameConfig\nhostname: worker-33' } }),
    ).toBe('customization:\n    embeddedMachineConfiguration: |-\n        apiVersion: v1alpha1\n        kind: HostnameConfig\n        hostname: worker-33\n');
    expect(marshal({ a: 'x\ny\n' })).toBe('a: |\n    x\n    y\n');
  });

  test('keep chomping for trailing blank lines', () => {
    expect(marshal({ a: 'x\n\n' })).toBe('a: |+\n    x\n\n');
  });

  test('empty lines carry no indentation', () => {
    expect(marshal({ a: 'x\n\ny' })).toBe('a: |-\n    x\n\n    y\n');
  });

  test('leading space gets an indentation indicator', () => {
    expect(marshal({ a: ' x\ny' })).toBe('a: |4-\n     x\n    y\n');
  });

  test('in sequences and sequences of maps', () => {
    expect(marshal(['a\nb'])).toBe('- |-\n  a\n  b\n');
    expect(marshal({ l: ['a\nb'] })).toBe('l:\n    - |-\n      a\n      b\n');
    expect(marshal({ m: [{ key: 1, value: 'a\nb\n' }] })).toBe('m:\n    - key: 1\n      value: |\n        a\n        b\n');
  });

  test('root literal', () => {
    expect(marshal('a\nb')).toBe('|-\n    a\n    b\n');
  });

  test('fallbacks to double quotes', () => {
    expect(marshal({ a: '\n' })).toBe('a: "\\n"\n'); // too short for a block
    expect(marshal({ a: ' \n' })).toBe('a: " \\n"\n'); // only whitespace
    expect(marshal({ a: 'x \ny' })).toBe('a: "x \\ny"\n'); // trailing space on a line
    expect(marshal({ a: 'x\n y' })).toBe('a: |-\n    x\n     y\n');
    expect(marshal({ a: 'x\ty\nz' })).toBe('a: |-\n    x\ty\n    z\n'); // tabs are fine in blocks
    // a multi-line key is not a simple key: explicit "? " form, where the literal block is allowed
    expect(marshal({ 'k\ney': 1 })).toBe('? |-\n    k\n    ey\n: 1\n');
  });
});

describe('numbers, booleans, special values', () => {
  test('ints and floats', () => {
    expect(marshal({ a: 10, b: -3, c: 1.5, d: 12345678901234567890n })).toBe('a: 10\nb: -3\nc: 1.5\nd: 12345678901234567890\n');
    expect(marshal([NaN, Infinity, -Infinity, -0])).toBe('- .nan\n- .inf\n- -.inf\n- -0\n');
    expect(marshal([goFloat(1), goFloat(1e6), goFloat(123456), goFloat(1234567)])).toBe('- 1\n- 1e+06\n- 123456\n- 1.234567e+06\n');
  });

  test('Go strconv.FormatFloat(f, g, -1, 64)', () => {
    const cases: Array<[number, string]> = [
      [0.1, '0.1'],
      [0.0001, '0.0001'],
      [0.00001, '1e-05'],
      [1.5e-7, '1.5e-07'],
      [100000, '100000'],
      [1000000, '1e+06'],
      [123456.7, '123456.7'],
      [1e21, '1e+21'],
      [1.7976931348623157e308, '1.7976931348623157e+308'],
      [5e-324, '5e-324'],
      [-2.5, '-2.5'],
      [3.14159, '3.14159'],
    ];
    for (const [f, s] of cases) expect(formatGoFloat(f)).toBe(s);
  });

  test('timestamps', () => {
    expect(marshal({ t: new GoTime(2001, 1, 1, 0, 0, 0, 0, 0) })).toBe('t: 2001-01-01T00:00:00Z\n');
    expect(marshal({ t: new GoTime(2001, 12, 14, 21, 59, 43, 100000000, -5 * 3600) })).toBe('t: 2001-12-14T21:59:43.1-05:00\n');
    expect(marshal({ t: new Date(Date.UTC(2020, 1, 3, 4, 5, 6, 7)) })).toBe('t: 2020-02-03T04:05:06.007Z\n');
  });

  test('binary strings', () => {
    expect(marshal({ b: new GoBytesString(Buffer.from('hello')) })).toBe('b: hello\n');
    expect(marshal({ b: new GoBytesString(new Uint8Array([0xff, 0xfe, 0xfd])) })).toBe('b: !!binary //79\n');
    const long = new GoBytesString(new Uint8Array(60).fill(0xff));
    expect(marshal({ b: long })).toBe(
      'b: !!binary |\n    ' + '/'.repeat(70) + '\n    ' + '/'.repeat(10) + '\n',
    );
  });
});

describe('Go map key ordering', () => {
  test('Map keys are sorted, plain objects are not', () => {
    // the nested plain object is a struct: its insertion order is kept
    expect(marshal(goMap({ b: 1, a: { z: 1, y: 2 } }))).toBe("a:\n    z: 1\n    'y': 2\nb: 1\n");
    expect(marshal(new Map<unknown, unknown>([['b', 1], ['a', new Map([['z', 1], ['y', 2]])]]))).toBe("a:\n    'y': 2\n    z: 1\nb: 1\n");
  });

  test('natural order for digit runs, numbers before strings, bool before int on ties', () => {
    expect(sortGoMapKeys(['a10', 'a2', 'a1', 'b', 'A', 'a'])).toEqual(['A', 'a', 'a1', 'a2', 'a10', 'b']);
    expect(sortGoMapKeys(['x', 10, 2, true, 1.5, null])).toEqual([true, 1.5, 2, 10, null, 'x']);
    expect(sortGoMapKeys(['a01', 'a1', 'a001'])).toEqual(['a1', 'a01', 'a001']);
    expect(sortGoMapKeys(['1.10', '1.9', '1.2'])).toEqual(['1.2', '1.9', '1.10']);
    expect(sortGoMapKeys(['a-b', 'a_b', 'ab', 'a.b'])).toEqual(['a-b', 'a.b', 'a_b', 'ab']);
  });
});

describe('line folding (lineWidth 80)', () => {
  const words = (n: number) => Array(n).fill('word').join(' ');

  test('no folding by default (Marshal uses an unlimited width)', () => {
    expect(marshal({ k: words(30) })).toBe(`k: ${words(30)}\n`);
  });

  test('plain scalars fold at the first space past column 80', () => {
    expect(marshal({ k: words(30) }, { lineWidth: 80 })).toBe(`k: ${words(16)}\n    ${words(14)}\n`);
  });

  test('single- and double-quoted scalars fold too', () => {
    expect(marshal({ k: '#' + words(30) }, { lineWidth: 80 })).toBe(`k: '#${words(16)}\n    ${words(14)}'\n`);
    expect(marshal({ k: 'tab\t' + words(30) }, { lineWidth: 80 })).toBe(`k: "tab\\t${words(15)}\n    ${words(15)}"\n`);
  });

  test('keys and single long words never fold', () => {
    expect(marshal({ [words(20)]: 1 }, { lineWidth: 80 })).toBe(`${words(20)}: 1\n`);
    const long = 'x'.repeat(200);
    expect(marshal({ k: long }, { lineWidth: 80 })).toBe(`k: ${long}\n`);
  });

  test('literal blocks never fold', () => {
    const text = words(30) + '\n';
    expect(marshal({ k: text }, { lineWidth: 80 })).toBe(`k: |\n    ${words(30)}\n`);
  });

  test('extensions.yaml shape (talos-formats §4.3), byte-exact', () => {
    const doc = {
      layers: [
        {
          image: '0.sqsh',
          metadata: {
            name: 'gvisor',
            version: '20231214.0-v1.7.0',
            author: 'Sidero Labs',
            description: "This system extension provides gVisor using containerd's runtime handler.\n",
            compatibility: { talos: { version: '>= v1.7.0' } },
          },
        },
        {
          image: '1.sqsh',
          metadata: {
            name: 'schematic',
            version: '376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba',
            author: 'Image Factory (https://factory.talos.dev)',
            description: 'Virtual extension which specifies the schematic of the image built with schematic.',
            compatibility: { talos: { version: '>= 1.0.0' } },
            extraInfo: 'customization:\n    systemExtensions:\n        officialExtensions:\n            - siderolabs/gvisor\n',
          },
        },
        {
          image: 'modules.dep.sqsh',
          metadata: {
            name: 'modules.dep',
            version: '6.18.44-talos',
            author: 'Talos Machinery',
            description: 'Combined modules.dep for all extensions',
            compatibility: { talos: { version: '' } },
          },
        },
      ],
    };
    const expected = extensionsYamlVector('6.18.44-talos');
    expect(marshal(doc, { lineWidth: 80 })).toBe(expected);
  });

  test('schematic virtual extension manifest (talos-formats §3.4)', () => {
    const manifest = {
      version: 'v1alpha1',
      metadata: {
        name: 'schematic',
        version: '376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba',
        author: 'Image Factory (https://factory.talos.dev)',
        description: 'Virtual extension which specifies the schematic of the image built with schematic.',
        compatibility: { talos: { version: '>= 1.0.0' } },
        extraInfo: 'customization: {}\n',
      },
    };
    expect(marshal(manifest)).toBe(SCHEMATIC_MANIFEST_VECTOR);
  });
});

describe('options', () => {
  test('indent option', () => {
    expect(marshal({ a: { b: [1] } }, { indent: 2 })).toBe('a:\n  b:\n    - 1\n');
    expect(marshal({ a: { b: [1] } }, { indent: 1 })).toBe('a:\n  b:\n    - 1\n'); // out of range -> 2
  });

  test('rejects values YAML cannot carry', () => {
    expect(() => marshal({ a: () => 1 })).toThrow(TypeError);
    expect(() => marshal('\ud800')).toThrow(TypeError);
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(() => marshal(cyclic)).toThrow(TypeError);
  });
});
