/**
 * YAML work limits (issue 10, item 1): a hostile body is refused with a one-line `yaml: ...` message naming the
 * limit, after a small bounded amount of work; real schematics (a few KB, a few aliases) are untouched.
 */
import { Schematic, SchematicError, YAML_LIMITS, canonicalYaml, parseSchematic, schematicId } from '@factory/schematic';

const MiB = 1024 * 1024;
/** Generous: the limits stop these bodies in ~1–100 ms; CI machines are slow and shared. */
const QUICK_MS = 1000;

/** The message of the SchematicError `body` is refused with, and how long the refusal took. */
function refusal(body: string): { message: string; ms: number } {
  const started = process.hrtime.bigint();
  try {
    parseSchematic(body);
  } catch (e) {
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    expect(e).toBeInstanceOf(SchematicError);
    const message = (e as Error).message;
    expect(message).not.toMatch(/[\r\n]/);
    return { message, ms };
  }
  throw new Error('expected a SchematicError');
}

function expectQuickRefusal(name: string, body: string, message: string | RegExp): void {
  const r = refusal(body);
  process.stdout.write(`${name}: ${body.length} bytes refused in ${r.ms.toFixed(1)} ms: ${r.message}\n`);
  if (typeof message === 'string') expect(r.message).toBe(message);
  else expect(r.message).toMatch(message);
  expect(r.ms).toBeLessThan(QUICK_MS);
}

/** `head` + as many `unit`s as fit in `size` bytes + `tail`. */
function fill(head: string, unit: string, tail: string, size = MiB): string {
  return head + unit.repeat(Math.floor((size - head.length - tail.length) / unit.length)) + tail;
}

const tooManyAliases = `yaml: document contains excessive aliasing (more than ${YAML_LIMITS.maxAliases} aliases)`;
const tooManyTokens = `yaml: document is too large (more than ${YAML_LIMITS.maxTokens} YAML tokens)`;
const tooDeep = `yaml: exceeded max depth of ${YAML_LIMITS.maxDepth}`;

describe('alias limits', () => {
  test('the 40 KB alias bomb of issue 10 (6,000+ aliases of one scalar) is refused quickly', () => {
    const body = 'customization:\n  extraKernelArgs: [&a x' + ', *a'.repeat(10_000) + ']\n';
    expect(body.length).toBeGreaterThan(40_000);
    expectQuickRefusal('alias bomb 10k', body, tooManyAliases);
  });

  test('1 MiB of aliases (~350k) is refused quickly', () => {
    expectQuickRefusal('alias bomb 1 MiB', fill('customization:\n  extraKernelArgs: [&a x', ',*a', ']\n'), tooManyAliases);
  });

  test('aliases that expand beyond maxExpandedNodes are refused', () => {
    const big = Array(2000).fill('x').join(', ');
    const body = `overlay:\n  name: x\n  options:\n    a: &a [${big}]\n    b: [${Array(30).fill('*a').join(', ')}]\n`;
    expectQuickRefusal('expanded nodes', body, `yaml: document contains excessive aliasing (more than ${YAML_LIMITS.maxExpandedNodes} nodes after alias expansion)`);
  });

  test('a long scalar aliased many times is refused by maxExpandedChars', () => {
    const body = `customization:\n  extraKernelArgs: [&a ${'k'.repeat(100_000)}${', *a'.repeat(30)}]\n`;
    expectQuickRefusal(
      'expanded characters',
      body,
      `yaml: document contains excessive aliasing (more than ${YAML_LIMITS.maxExpandedChars} characters of scalars after alias expansion)`,
    );
  });

  test("go-yaml's own ratio rule still answers a billion-laughs document", () => {
    const lines = ['a0: &a0 [x, x, x, x, x, x, x, x, x, x]'];
    for (let i = 1; i < 9; i++) lines.push(`a${i}: &a${i} [${Array(10).fill(`*a${i - 1}`).join(', ')}]`);
    const body = `overlay:\n  name: x\n  options:\n${lines.map((l) => '    ' + l).join('\n')}\n`;
    // go-yaml's ratio rule or maxExpandedNodes, whichever comes first (here the node limit).
    expectQuickRefusal('billion laughs', body, /^yaml: (line \d+: )?document contains excessive aliasing/);
  });

  test('aliases chained into deep nesting are refused by maxDepth', () => {
    // Each text within the depth limit; `c` holds `b` at its bottom, twice as deep as either.
    const half = Math.ceil(YAML_LIMITS.maxDepth / 2) + 2;
    const body = `overlay:\n  name: x\n  options:\n    b: &b ${'['.repeat(half)}x${']'.repeat(half)}\n    c: ${'['.repeat(half)}*b${']'.repeat(half)}\n`;
    expectQuickRefusal('alias nesting depth', body, tooDeep);
  });

  test('up to maxAliases aliases are accepted and give the same ID as the written-out schematic', () => {
    const n = YAML_LIMITS.maxAliases;
    const aliased = `customization:\n  extraKernelArgs: [&a console=ttyS0${', *a'.repeat(n)}]\n`;
    const written = `customization:\n  extraKernelArgs: [${Array(n + 1).fill('console=ttyS0').join(', ')}]\n`;
    const started = process.hrtime.bigint();
    const id = schematicId(parseSchematic(aliased));
    process.stdout.write(`${n} aliases accepted in ${(Number(process.hrtime.bigint() - started) / 1e6).toFixed(1)} ms\n`);
    expect(id).toBe(schematicId(parseSchematic(written)));
  });

  test('a real schematic with a few aliases and a merge key keeps its ID', () => {
    const aliased = [
      'customization:',
      '  extraKernelArgs: &args [console=ttyS0, net.ifnames=0]',
      '  systemExtensions:',
      '    officialExtensions: &exts',
      '      - siderolabs/nvidia-open-gpu-kernel-modules-lts',
      '      - siderolabs/nvidia-container-toolkit-lts',
      'overlay:',
      '  image: siderolabs/sbc-raspberrypi',
      '  name: rpi_generic',
      '  options:',
      '    base: &base {configTxtAppend: "dtoverlay=vc4-kms-v3d", args: *args}',
      '    again: {<<: *base, exts: *exts}',
      '',
    ].join('\n');
    const written = [
      'customization:',
      '  extraKernelArgs: [console=ttyS0, net.ifnames=0]',
      '  systemExtensions:',
      '    officialExtensions: [siderolabs/nvidia-open-gpu-kernel-modules-lts, siderolabs/nvidia-container-toolkit-lts]',
      'overlay:',
      '  image: siderolabs/sbc-raspberrypi',
      '  name: rpi_generic',
      '  options:',
      '    base: {configTxtAppend: "dtoverlay=vc4-kms-v3d", args: [console=ttyS0, net.ifnames=0]}',
      '    again:',
      '      configTxtAppend: "dtoverlay=vc4-kms-v3d"',
      '      args: [console=ttyS0, net.ifnames=0]',
      '      exts: [siderolabs/nvidia-open-gpu-kernel-modules-lts, siderolabs/nvidia-container-toolkit-lts]',
      '',
    ].join('\n');
    expect(schematicId(parseSchematic(aliased))).toBe(schematicId(parseSchematic(written)));
  });
});

describe('parse work limits on a 1 MiB body of other shapes', () => {
  test('a flow sequence of ~500k items', () => {
    expectQuickRefusal('flow sequence', fill('customization:\n  extraKernelArgs: [', 'x,', 'x]\n'), tooManyTokens);
  });

  test('a block sequence of ~170k items', () => {
    expectQuickRefusal('block sequence', fill('customization:\n  extraKernelArgs:\n', '  - x\n', ''), tooManyTokens);
  });

  test('a mapping of many keys', () => {
    let body = 'overlay:\n  name: x\n  options:\n';
    for (let i = 0; body.length < MiB - 30; i++) body += `    k${i}: v\n`;
    expectQuickRefusal('many keys', body, tooManyTokens);
  });

  test('comment lines only', () => {
    expectQuickRefusal('comments', fill('', '#\n', ''), tooManyTokens);
  });

  test('deep flow nesting', () => {
    const depth = Math.floor((MiB - 30) / 2);
    expectQuickRefusal('deep flow sequences', 'overlay:\n  options: ' + '['.repeat(depth) + ']'.repeat(depth) + '\n', tooDeep);
    const mapDepth = Math.floor((MiB - 30) / 5);
    expectQuickRefusal('deep flow mappings', 'overlay:\n  options: ' + '{a: '.repeat(mapDepth) + '}'.repeat(mapDepth) + '\n', tooDeep);
  });

  test('deep block nesting', () => {
    let body = 'overlay:\n  name: x\n  options:\n';
    for (let indent = 4; body.length < MiB / 4; indent++) body += ' '.repeat(indent) + 'a:\n';
    expectQuickRefusal('deep block mappings', body, tooDeep);
  });

  test('many small documents: only the first is read (as go-yaml’s Decoder does)', () => {
    const body = fill('customization: {extraKernelArgs: [a]}\n', '---\nb: [1]\n', '');
    const started = process.hrtime.bigint();
    expect(parseSchematic(body).customization.extraKernelArgs).toEqual(['a']);
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    process.stdout.write(`many documents: ${body.length} bytes accepted in ${ms.toFixed(1)} ms\n`);
    expect(ms).toBeLessThan(QUICK_MS);
  });

  test('a 1 MiB machine configuration scalar is still accepted (one token, however long)', () => {
    for (const [name, body] of [
      ['double-quoted', fill('customization:\n  embeddedMachineConfiguration: "', 'a', '"\n')],
      ['literal block', fill('customization:\n  embeddedMachineConfiguration: |\n', '    machine: {type: worker}\n', '')],
    ]) {
      const started = process.hrtime.bigint();
      const s = parseSchematic(body);
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      process.stdout.write(`${name} machine configuration: ${body.length} bytes accepted in ${ms.toFixed(1)} ms\n`);
      expect(s.customization.embeddedMachineConfiguration!.length).toBeGreaterThan(0.8 * MiB);
      expect(ms).toBeLessThan(QUICK_MS);
    }
  });
});

describe('the canonical form of an accepted schematic can be read back (it is, from the store)', () => {
  // Decoded nodes besides the list items: root map, `customization` key and map, `extraKernelArgs` key and list.
  const listOverhead = 5;
  const atNodeLimit = YAML_LIMITS.maxExpandedNodes - listOverhead;
  const shapes: Array<[string, (n: number) => Schematic]> = [
    // Multi-line items are written `- |-` blocks: the most tokens per node in a canonical form.
    ['multi-line kernel args', (n) => ({ customization: { extraKernelArgs: Array.from({ length: n }, (_, i) => `a\nb${i}`) } })],
    ['kernel args', (n) => ({ customization: { extraKernelArgs: Array.from({ length: n }, (_, i) => `a${i}`) } })],
  ];

  test.each(shapes)('%s at maxExpandedNodes', (_name, make) => {
    const s = make(atNodeLimit);
    const flow = JSON.stringify(s);
    const id = schematicId(parseSchematic(flow));
    expect(schematicId(parseSchematic(canonicalYaml(s)))).toBe(id);
    // One node more and the POST is refused: the limit is exactly there.
    expect(refusal(JSON.stringify(make(atNodeLimit + 1))).message).toMatch(/more than \d+ nodes after alias expansion/);
  });

  test('empty lists in overlay options (go-yaml writes `- []`) at maxExpandedNodes', () => {
    // root, overlay key + map, image and name pairs, options key + map, `l` key + list, customization key + map.
    const overhead = 13;
    const make = (n: number): Schematic => ({ overlay: { image: 'i', name: 'n', options: { l: Array.from({ length: n }, () => []) } }, customization: {} });
    const s = make(YAML_LIMITS.maxExpandedNodes - overhead);
    const id = schematicId(parseSchematic(JSON.stringify(s)));
    expect(schematicId(parseSchematic(canonicalYaml(s)))).toBe(id);
    expect(refusal(JSON.stringify(make(YAML_LIMITS.maxExpandedNodes - overhead + 1))).message).toMatch(/more than \d+ nodes after alias expansion/);
  });
});
