import { marshal, needsQuoting, scalarStyle } from '@factory/goyaml';

/** anchor-api.md §2.2: go-yaml v4 Marshal scalar quoting. */
const doubleQuoted: Array<[string, string]> = [
  ['true', '"true"'],
  ['123', '"123"'],
  ['1.5', '"1.5"'],
  ['0xa', '"0xa"'],
  ['null', '"null"'],
  ['~', '"~"'],
  ['', '""'],
  ['2001-01-01', '"2001-01-01"'],
  ['.inf', '".inf"'],
  ['tab\there', '"tab\\there"'],
  // more values that would resolve to another type
  ['False', '"False"'],
  ['NULL', '"NULL"'],
  ['-0', '"-0"'],
  ['+12', '"+12"'],
  ['0o17', '"0o17"'],
  ['012', '"012"'],
  ['08', '"08"'],
  ['1_000', '"1_000"'],
  ['1e3', '"1e3"'],
  ['.5', '".5"'],
  ['-.INF', '"-.INF"'],
  ['.NaN', '".NaN"'],
  ['2001-12-14t21:59:43.10-05:00', '"2001-12-14t21:59:43.10-05:00"'],
  ['2001-12-14 21:59:43.10', '"2001-12-14 21:59:43.10"'],
  ['18446744073709551615', '"18446744073709551615"'],
  ['99999999999999999999', '"99999999999999999999"'],
];

const singleQuoted: Array<[string, string]> = [
  ['on', "'on'"],
  ['off', "'off'"],
  ['yes', "'yes'"],
  ['no', "'no'"],
  ['y', "'y'"],
  ['n', "'n'"],
  ['{}', "'{}'"],
  ['[a]', "'[a]'"],
  ['a: b', "'a: b'"],
  ['- x', "'- x'"],
  ['#x', "'#x'"],
  ['x #y', "'x #y'"],
  [' lead', "' lead'"],
  ['@at', "'@at'"],
  ['*star', "'*star'"],
  ['&amp', "'&amp'"],
  ['!bang', "'!bang'"],
  ['%pct', "'%pct'"],
  ['|p', "'|p'"],
  ['>g', "'>g'"],
  ['<<', "'<<'"],
  ["'sq", "'''sq'"],
  // more
  ['Yes', "'Yes'"],
  ['OFF', "'OFF'"],
  ['trail ', "'trail '"],
  ['-', "'-'"],
  [':', "':'"],
  ['? x', "'? x'"],
  ['---', "'---'"],
  ['...', "'...'"],
  ['`tick', "'`tick'"],
  ['"dq', '\'"dq\''],
  [',comma', "',comma'"],
  ['1:20', "'1:20'"],
  ['a:', "'a:'"],
  ['{"externalIPs":["1.2.3.4"]}', '\'{"externalIPs":["1.2.3.4"]}\''],
  ['apiVersion: v1alpha1/nkind: HostnameConfig', "'apiVersion: v1alpha1/nkind: HostnameConfig'"],
  ['>= 1.0.0', "'>= 1.0.0'"],
];

const plain: string[] = [
  'a:b',
  "x'y",
  '=foo',
  '-console',
  'console=ttyS0,115200n8',
  'ü',
  'NaN',
  '?q',
  'x,y',
  'x]',
  '\\back',
  // more
  'noapic',
  'vga=791',
  'siderolabs/amd-ucode',
  'ghcr.io/siderolabs/sbc-raspberrypi:v0.1.0',
  'a#b',
  'a b',
  'nan',
  'True1',
  '0x',
  '1.2.3',
  '-x',
  'tcp://10.0.0.50:5044/',
  'Image Factory (https://factory.talos.dev)',
  '20231214.0-v1.7.0',
  '2001-13-01', // not a valid date: stays a string
];

describe('go-yaml scalar quoting (anchor-api §2.2)', () => {
  test.each(doubleQuoted)('double-quoted: %j', (input, expected) => {
    expect(marshal({ v: input })).toBe(`v: ${expected}\n`);
    expect(scalarStyle(input)).toBe('double');
    expect(needsQuoting(input)).toBe(true);
  });

  test.each(singleQuoted)('single-quoted: %j', (input, expected) => {
    expect(marshal({ v: input })).toBe(`v: ${expected}\n`);
    expect(scalarStyle(input)).toBe('single');
    expect(needsQuoting(input)).toBe(true);
  });

  test.each(plain.map((p) => [p]))('plain: %j', (input) => {
    expect(marshal({ v: input })).toBe(`v: ${input}\n`);
    expect(scalarStyle(input)).toBe('plain');
    expect(needsQuoting(input)).toBe(false);
  });

  test('keys follow the same rules', () => {
    // (integer-like keys would be reordered by JS objects themselves, so they get their own call)
    expect(marshal({ on: 1, 'a b': 3, '': 4 })).toBe("'on': 1\na b: 3\n\"\": 4\n");
    expect(marshal({ '123': 2 })).toBe('"123": 2\n');
    expect(scalarStyle('a\nb', { simpleKey: true })).toBe('double');
  });

  test('double-quoted escapes', () => {
    expect(marshal('a\u0001b')).toBe('"a\\x01b"\n');
    expect(marshal('x\u0085y')).toBe('"x\\Ny"\n');
    expect(marshal('nb\u00a0sp')).toBe('nb\u00a0sp\n'); // printable: stays plain
    expect(marshal('\ttab')).toBe('"\\ttab"\n');
    expect(marshal('q"\\\t')).toBe('"q\\"\\\\\\t"\n');
    expect(marshal('emoji 😀')).toBe('"emoji \\U0001F600"\n'); // go-yaml treats 4-byte UTF-8 as non-printable
    expect(marshal('\ufeffbom')).toBe('"\\uFEFF\\x62\\x6F\\x6D"\n'); // leading BOM escapes everything (libyaml quirk)
    expect(marshal('del\u007f')).toBe('"del\\x7F"\n');
    // LS is a line break for libyaml but printable: plain is refused, single quotes keep it raw
    expect(marshal('\u2028')).toBe("'\u2028'\n");
  });

  test('scalarStyle reports literal blocks', () => {
    expect(scalarStyle('a\nb')).toBe('literal');
    expect(scalarStyle('a\n')).toBe('literal');
    expect(scalarStyle('\n')).toBe('double');
    expect(scalarStyle(' \n ')).toBe('double');
    expect(scalarStyle('a \nb')).toBe('double');
  });
});
