/**
 * The document is valid OpenAPI 3.1 (checked by @apidevtools/swagger-parser against the official 3.1 schema, plus
 * its semantic checks: unique operation IDs, declared path parameters, resolvable references), and it says what
 * the contract of issue 14 says about builds.
 */
import SwaggerParser from '@apidevtools/swagger-parser';
import { JsonObject, OPENAPI_DOCUMENT } from '../src';

// the validator dereferences in place: it gets a copy
const copy = (): JsonObject => structuredClone(OPENAPI_DOCUMENT);

test('the document validates as OpenAPI 3.1', async () => {
  const api = (await SwaggerParser.validate(copy() as never)) as unknown as JsonObject;
  expect(api.openapi).toBe('3.1.0');
});

test('the validator is not a no-op: a document with a broken operation is refused', async () => {
  const broken = copy();
  // a response without its required description, a parameter in no valid place, a reference to nothing
  ((broken.paths as JsonObject)['/versions'] as { get: { responses: JsonObject } }).get.responses['200'] = { content: {} };
  await expect(SwaggerParser.validate(broken as never)).rejects.toThrow(/description|200/);
  const badParameter = copy();
  ((badParameter.paths as JsonObject)['/versions'] as { get: { parameters: JsonObject[] } }).get.parameters[0].in = 'body';
  await expect(SwaggerParser.validate(badParameter as never)).rejects.toThrow();
  const dangling = copy();
  ((dangling.paths as JsonObject)['/versions'] as { get: { responses: JsonObject } }).get.responses['404'] = { $ref: '#/components/responses/Nowhere' };
  await expect(SwaggerParser.validate(dangling as never)).rejects.toThrow(/Nowhere/);
});

test('every error response is the anchor’s one-line plain text (or an OCI error under /v2, or the web UI’s HTML page)', () => {
  const responses = (OPENAPI_DOCUMENT.components as { responses: Record<string, { content?: Record<string, { schema: JsonObject }> }> }).responses;
  const paths = OPENAPI_DOCUMENT.paths as Record<string, Record<string, { tags?: string[]; responses: Record<string, JsonObject> }>>;
  let uiErrors = 0;
  for (const [path, item] of Object.entries(paths)) {
    for (const [method, op] of Object.entries(item)) {
      for (const [status, response] of Object.entries(op.responses)) {
        if (Number(status) < 400) continue;
        if (op.tags?.includes('ui')) {
          // a person reads these: an HTML page (or fragment) with the one-line message
          expect({ at: `${method} ${path} ${status}`, types: Object.keys((response as { content?: JsonObject }).content ?? {}) }).toEqual({ at: `${method} ${path} ${status}`, types: ['text/html; charset=utf-8'] });
          uiErrors++;
          continue;
        }
        const name = String(response.$ref ?? '').replace('#/components/responses/', '');
        const content = responses[name]?.content;
        expect({ at: `${method} ${path} ${status}`, text: content?.['text/plain; charset=utf-8']?.schema }).toEqual({
          at: `${method} ${path} ${status}`,
          text: { $ref: '#/components/schemas/ErrorText' },
        });
      }
    }
  }
  expect(uiErrors).toBeGreaterThan(0);
});

test('the Build schema has exactly the fields of the contract, and the build routes their statuses', () => {
  const build = (OPENAPI_DOCUMENT.components as { schemas: Record<string, { properties: JsonObject }> }).schemas.Build;
  expect(Object.keys(build.properties).sort()).toEqual(
    ['id', 'schematic', 'version', 'asset', 'state', 'queuePosition', 'stage', 'percent', 'bytes', 'size', 'sha256', 'url', 'error', 'priority', 'createdAt', 'updatedAt', 'stages', 'log'].sort(),
  );
  const paths = OPENAPI_DOCUMENT.paths as Record<string, Record<string, { responses: JsonObject }>>;
  const statuses = (path: string, method: string) => Object.keys(paths[path][method].responses);
  expect(statuses('/builds', 'post')).toEqual(expect.arrayContaining(['202', '400', '404', '413', '429']));
  expect(statuses('/builds/{id}', 'get')).toEqual(expect.arrayContaining(['200', '400', '404']));
  expect(statuses('/image/{schematic}/{version}/{path}', 'get')).toEqual(expect.arrayContaining(['200', '202', '206', '302', '304', '400', '402', '404', '412', '416', '429']));
  expect(statuses('/webhooks', 'post')).toContain('201');
  expect(statuses('/prewarm/{schematic}', 'delete')).toContain('204');
});
