/**
 * The client checked against the factory's OpenAPI document (libs/openapi, issue 14 item 4): every request the client
 * makes is a documented operation (path template and method), and its JSON types have exactly the properties of the
 * document's schemas, with the same ones required. Declared skipped, saying why, in a checkout without the document.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { Build, BuildStage, Extension, FactoryClient, Overlay, SchematicCreated } from '@factory/client';
import { describeIf } from '../../../test/support/skip';

const HAS_DOCUMENT = existsSync(path.join(__dirname, '../../openapi/src/index.ts'));

type Json = { [key: string]: unknown };
/** The keys a type must have (not optional). */
type RequiredKeys<T> = { [K in keyof T]-?: object extends Pick<T, K> ? never : K }[keyof T];
/** Every property of T, each marked required or not: a compile error when a property is added or removed. */
type Fields<T> = { [K in keyof T]-?: K extends RequiredKeys<T> ? 'required' : 'optional' };

const BUILD: Fields<Build> = {
  id: 'required', schematic: 'required', version: 'required', asset: 'required', state: 'required', queuePosition: 'optional',
  stage: 'optional', percent: 'optional', bytes: 'optional', size: 'optional', sha256: 'optional', url: 'required',
  error: 'optional', priority: 'required', createdAt: 'required', updatedAt: 'required', stages: 'required', log: 'required',
};
const STAGE: Fields<BuildStage> = { name: 'required', startedAt: 'required', durationMs: 'optional' };
const EXTENSION: Fields<Extension> = { name: 'required', ref: 'required', digest: 'required', author: 'required', description: 'required' };
const OVERLAY: Fields<Overlay> = { name: 'required', image: 'required', ref: 'required', digest: 'required' };
const SCHEMATIC_CREATED: Fields<SchematicCreated> = { id: 'required', schematic: 'required' };

/** `{property: 'required' | 'optional'}` of an object schema. */
function schemaFields(schema: Json): Record<string, string> {
  const required = new Set((schema.required as string[] | undefined) ?? []);
  return Object.fromEntries(Object.keys(schema.properties as Json).map((k) => [k, required.has(k) ? 'required' : 'optional']));
}

describeIf(HAS_DOCUMENT, 'libs/openapi (the OpenAPI document) is not in this checkout')('the client against the OpenAPI document', () => {
  let schemas: Record<string, Json>;
  let paths: Record<string, Json>;
  beforeAll(() => {
    // loaded only when present (a skipped describe's body still runs, so not at module or describe level)
    const document = (require(path.join(__dirname, '../../openapi/src')) as { OPENAPI_DOCUMENT: Json }).OPENAPI_DOCUMENT;
    schemas = (document.components as Json).schemas as Record<string, Json>;
    paths = document.paths as Record<string, Json>;
  });

  it('has exactly the properties of the documented schemas, the same ones required', () => {
    expect(BUILD).toEqual(schemaFields(schemas.Build));
    expect(STAGE).toEqual(schemaFields(((schemas.Build.properties as Json).stages as Json).items as Json));
    expect(EXTENSION).toEqual(schemaFields(schemas.Extension));
    expect(OVERLAY).toEqual(schemaFields(schemas.Overlay));
    expect(SCHEMATIC_CREATED).toEqual(schemaFields(schemas.SchematicCreated));
  });

  it('makes only documented requests', async () => {
    const made: [string, string][] = [];
    const recording = new FactoryClient({
      baseUrl: 'http://factory.test',
      fetch: async (input, init) => {
        made.push([(init?.method ?? 'GET').toLowerCase(), new URL(String(input)).pathname]);
        throw new Error('recorded');
      },
    });
    const id = 'a'.repeat(64);
    const calls: (() => Promise<unknown>)[] = [
      () => recording.createSchematic('{}'),
      () => recording.getSchematic(id),
      () => recording.versions(),
      () => recording.extensions('v1.12.2'),
      () => recording.overlays('v1.12.2'),
      () => recording.createBuilds({ schematic: id, version: 'v1.12.2', assets: ['kernel-amd64'] }),
      () => recording.getBuild(id),
      () => recording.listBuilds({ schematic: id }),
      () => recording.buildEvents(id, { maxReconnects: 0, reconnectDelayMs: 0 }).next(),
      () => recording.download(id, 'v1.12.2', 'metal-amd64.iso', { range: { start: 1 }, respondAsync: true }),
      () => recording.checksum(id, 'v1.12.2', 'metal-amd64.iso'),
      () => recording.pxeScript(id, 'v1.12.2', 'metal-amd64'),
    ];
    for (const call of calls) await call().catch(() => undefined);
    expect(made).toHaveLength(calls.length);
    const templates = Object.keys(paths).map((t) => ({ t, re: new RegExp(`^${t.replace(/\{[^}]+\}/g, '[^/]+')}$`) }));
    const undocumented = made.filter(([method, p]) => !templates.some(({ t, re }) => re.test(p) && paths[t][method] !== undefined));
    expect(undocumented).toEqual([]);
  });
});
