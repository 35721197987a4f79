/**
 * The factory's OpenAPI 3.1 document: every public route of the gateway (the anchor's, and the build, pre-warm and
 * webhook API of issue 14) and, in summary, the `/v2` registry. The gateway serves it at `GET /openapi.json`; the
 * integration tests validate every response they receive from a factory against it (test/support/openapi.ts), so
 * a route, status, content type or body shape that changes without this document fails the tests.
 *
 * Conventions the document relies on (kept here once):
 * - Errors are the anchor's: a status with a one-line `text/plain; charset=utf-8` body ending in `\n` (`ErrorText`).
 * - JSON bodies of the anchor's routes are `application/json` (no charset); the issue 14 routes may add
 *   `; charset=utf-8` (a media-type key without parameters accepts any parameters).
 * - Schemas are JSON Schema 2020-12 (the 3.1 dialect) and use only keywords a plain 2020-12 validator knows, so the
 *   tests can check bodies with ajv directly.
 */

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

const schemaRef = (name: string): JsonObject => ({ $ref: `#/components/schemas/${name}` });
const responseRef = (name: string): JsonObject => ({ $ref: `#/components/responses/${name}` });
const paramRef = (name: string): JsonObject => ({ $ref: `#/components/parameters/${name}` });

const TEXT = 'text/plain; charset=utf-8';
const JSON_TYPE = 'application/json';

/** A JSON response of the given schema. */
const json = (description: string, schema: JsonObject, headers?: JsonObject): JsonObject => ({
  description,
  ...(headers ? { headers } : {}),
  content: { [JSON_TYPE]: { schema } },
});

/** The anchor's error statuses by name (components.responses), so each operation lists the statuses it can give. */
const ERROR_RESPONSES: Record<number, string> = {
  400: 'BadRequest',
  402: 'PaymentRequired',
  404: 'NotFound',
  409: 'Conflict',
  412: 'PreconditionFailed',
  413: 'PayloadTooLarge',
  416: 'RangeNotSatisfiable',
  422: 'UnprocessableContent',
  429: 'TooManyRequests',
  500: 'InternalError',
  501: 'NotImplemented',
  502: 'BadGateway',
  503: 'ServiceUnavailable',
};

/** `{ "400": {$ref BadRequest}, … }` for the listed statuses. */
function errors(...statuses: number[]): JsonObject {
  const out: JsonObject = {};
  for (const status of statuses) {
    const name = ERROR_RESPONSES[status];
    if (!name) throw new Error(`no error response for status ${status}`);
    out[String(status)] = responseRef(name);
  }
  return out;
}

/** What every route that asks another service may answer besides its own results. */
const SERVICE_FAULTS = [500, 503];
/** Validation of `/image`-like paths (schematic 404, version 400, path 400, enhancement 400/404). */
const ASSET_INPUT = [400, 404];
/** A cold build: per-client limits (429), size limit (422), build failures (500/501/502), storage and queues (503). */
const BUILD_FAULTS = [422, 429, 500, 501, 502, 503];

const emptyResponse = (description: string): JsonObject => ({ description });

const redirect = (description: string): JsonObject => ({
  description,
  headers: { Location: { required: true, schema: { type: 'string', format: 'uri-reference' } } },
  // Express's redirect writes a short text body; the cached hot path sends none.
  content: { [TEXT]: { schema: { type: 'string' } } },
});

const binary = (description: string, mediaTypes: string[], headers: JsonObject): JsonObject => ({
  description,
  headers,
  content: Object.fromEntries(mediaTypes.map((t) => [t, { schema: { type: 'string', contentMediaType: t } }])),
});

const ASSET_MEDIA_TYPES = [
  'application/x-iso9660-image',
  'application/efi',
  'application/x-xz',
  'application/gzip',
  'application/x-qemu-disk',
  'application/x-tar',
  'application/octet-stream',
];

const OCI_DOCUMENT_TYPES = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
];

const downloadHeaders: JsonObject = {
  'Content-Disposition': { required: true, schema: { type: 'string' } },
  // not on the checksum lines of `/image/…/<asset>.sha256|.sha512`
  ETag: { description: '`"<sha256 of the asset>"` (on the asset, not on its checksum line)', schema: { type: 'string' } },
  'Accept-Ranges': { schema: { type: 'string', const: 'bytes' } },
};

/** Conditional and range request headers honoured on downloads (RFC 9110). */
const downloadParams: Json[] = [paramRef('Range'), paramRef('IfRange'), paramRef('IfMatch'), paramRef('IfNoneMatch')];

/** GET/HEAD of a stored (or built on demand) file: `/image` assets and talosctl binaries. */
function downloadResponses(mediaTypes: string[]): JsonObject {
  return {
    '200': binary('The file (HEAD: its headers only).', mediaTypes, downloadHeaders),
    '206': binary('The requested byte range.', mediaTypes, { ...downloadHeaders, 'Content-Range': { required: true, schema: { type: 'string' } } }),
    '302': redirect('Redirect to a presigned object-storage URL (S3 storage, GET, not on the PXE host).'),
    '304': { description: 'If-None-Match matched the ETag.', headers: { ETag: { required: true, schema: { type: 'string' } } } },
  };
}

const tags: Json[] = [
  { name: 'schematics', description: 'Create and read schematics (the customisation an image is built from).' },
  { name: 'catalog', description: 'Talos versions, official extensions and overlays offered by the upstream registry.' },
  { name: 'assets', description: 'Boot assets, disk images and iPXE scripts, built on first request.' },
  { name: 'builds', description: 'Builds as resources: queue, watch and list them (issue 14).' },
  { name: 'prewarm', description: 'Assets built ahead of time for every new Talos version.' },
  { name: 'webhooks', description: 'Notifications of finished builds and new Talos versions.' },
  { name: 'keys', description: 'Public keys of the factory (cosign, Secure Boot).' },
  { name: 'talosctl', description: 'talosctl binaries of a Talos version.' },
  { name: 'registry', description: 'OCI distribution API (read-only): installer images and the source-image proxy.' },
  { name: 'meta', description: 'Health, readiness, metrics and descriptions of the API.' },
  { name: 'ui', description: 'The web UI: a wizard from hardware to download links (server-rendered HTML, anchor-api §9).' },
];

const HTML = 'text/html; charset=utf-8';
/** An HTML answer of the wizard: a whole page, or with JavaScript the step's fragment. */
const htmlPage = (description: string, headers?: JsonObject): JsonObject => ({ description, ...(headers ? { headers } : {}), content: { [HTML]: { schema: { type: 'string' } } } });
/** What the wizard answers besides its page: bad input (400), an unknown stored schematic (404), limits and faults, all as HTML. */
const UI_FAILURES: JsonObject = Object.fromEntries(
  [400, 404, 429, 500, 503].map((status) => [String(status), htmlPage(status === 400 ? 'Bad input: a page with a one-line message.' : 'A page naming the failure.')]),
);
const WIZARD_QUERY = 'The wizard fields of anchor-api §9 (target, version, arch, platform, board, secureboot, bootloader, extensions, cmdline, cmdline-set, overlay-options, selected-* twins, schematic-id, lang).';

const paths: JsonObject = {
  // --- meta ---------------------------------------------------------------------------------------------------------
  '/healthz': {
    get: { tags: ['meta'], operationId: 'getHealth', summary: 'Liveness', responses: { '200': emptyResponse('The process serves HTTP (empty body).') } },
    head: { tags: ['meta'], operationId: 'headHealth', summary: 'Liveness (headers only)', responses: { '200': emptyResponse('The process serves HTTP.') } },
  },
  '/readyz': {
    get: {
      tags: ['meta'],
      operationId: 'getReadiness',
      summary: 'Readiness: Redis, a worker on every queue, storage and upstream answer',
      responses: { '200': emptyResponse('Ready (empty body).'), '503': responseRef('NotReady') },
    },
    head: {
      tags: ['meta'],
      operationId: 'headReadiness',
      summary: 'Readiness (headers only)',
      responses: { '200': emptyResponse('Ready.'), '503': responseRef('NotReady') },
    },
  },
  '/metrics': {
    get: {
      tags: ['meta'],
      operationId: 'getMetrics',
      summary: "The gateway's Prometheus metrics",
      responses: {
        '200': { description: 'Prometheus text exposition format.', content: { 'text/plain': { schema: { type: 'string' } } } },
        ...errors(500),
      },
    },
  },
  '/llms.txt': {
    get: {
      tags: ['meta'],
      operationId: 'getLlmsText',
      summary: 'A plain-text description of the API for language models',
      responses: { '200': { description: 'Markdown text.', content: { [TEXT]: { schema: { type: 'string', minLength: 1 } } } } },
    },
  },
  '/openapi.json': {
    get: {
      tags: ['meta'],
      operationId: 'getOpenApiDocument',
      summary: 'This document',
      responses: { '200': json('The OpenAPI 3.1 document.', { type: 'object', required: ['openapi', 'info', 'paths'] }) },
    },
  },

  // --- web UI -------------------------------------------------------------------------------------------------------
  '/': {
    get: {
      tags: ['ui'],
      operationId: 'getWizard',
      summary: 'The wizard step for the query (every step is a shareable GET URL)',
      description: WIZARD_QUERY + ' `?lang=` sets the language cookie (and `Hx-Redirect`); an empty one is 400.',
      responses: { '200': htmlPage('The page with the step.'), ...UI_FAILURES },
    },
    head: { tags: ['ui'], operationId: 'headWizard', summary: 'The wizard step (headers only)', responses: { '200': htmlPage('The page with the step.'), ...UI_FAILURES } },
  },
  '/ui/wizard': {
    post: {
      tags: ['ui'],
      operationId: 'postWizardStep',
      summary: 'The next (or previous) step for a submitted form',
      description: `Form-encoded. ${WIZARD_QUERY} With the script (\`HX-Request\`): the step's fragment and \`Hx-Push-Url\`; without: a 303 to the step's shareable URL.`,
      requestBody: { required: true, content: { 'application/x-www-form-urlencoded': { schema: { type: 'string' } } } },
      responses: { '200': htmlPage('The step fragment.'), '303': redirect('The shareable URL of the next step.'), ...UI_FAILURES },
    },
  },
  '/ui/extensions-list': {
    post: {
      tags: ['ui'],
      operationId: 'postExtensionsList',
      summary: 'The extension checkboxes matching a search (selected ones always kept)',
      requestBody: { required: true, content: { 'application/x-www-form-urlencoded': { schema: { type: 'string' } } } },
      responses: { '200': htmlPage('The list fragment.'), ...UI_FAILURES },
    },
  },
  '/ui/version-doc': {
    get: { tags: ['ui'], operationId: 'getVersionDoc', summary: "The version's documentation links", responses: { '200': htmlPage('A fragment.'), ...UI_FAILURES } },
  },
  '/css/wizard.css': {
    get: { tags: ['ui'], operationId: 'getWizardCss', summary: 'The wizard stylesheet', responses: { '200': { description: 'CSS.', content: { 'text/css; charset=utf-8': { schema: { type: 'string' } } } } } },
    head: { tags: ['ui'], operationId: 'headWizardCss', summary: 'The wizard stylesheet (headers only)', responses: { '200': { description: 'CSS.', content: { 'text/css; charset=utf-8': { schema: { type: 'string' } } } } } },
  },
  '/js/wizard.js': {
    get: { tags: ['ui'], operationId: 'getWizardScript', summary: 'The wizard script', responses: { '200': { description: 'JavaScript.', content: { 'text/javascript; charset=utf-8': { schema: { type: 'string' } } } } } },
    head: { tags: ['ui'], operationId: 'headWizardScript', summary: 'The wizard script (headers only)', responses: { '200': { description: 'JavaScript.', content: { 'text/javascript; charset=utf-8': { schema: { type: 'string' } } } } } },
  },

  // --- schematics ---------------------------------------------------------------------------------------------------
  '/schematics': {
    post: {
      tags: ['schematics'],
      operationId: 'createSchematic',
      summary: 'Create a schematic (idempotent: the ID is the SHA-256 of its canonical form)',
      description:
        'The body is YAML (JSON is a subset of it); the Content-Type is ignored. Parsed strictly: unknown keys and wrong ' +
        "types are 400 with go-yaml's message. Unknown extensions or overlays are accepted here and refused when an " +
        'asset is built.',
      requestBody: {
        required: true,
        content: { 'application/yaml': { schema: schemaRef('Schematic') }, [JSON_TYPE]: { schema: schemaRef('Schematic') } },
      },
      responses: {
        '201': json('Created (or already present).', schemaRef('SchematicCreated')),
        ...errors(400, 413, 429, ...SERVICE_FAULTS),
      },
    },
  },
  '/schematics/{schematic}': {
    get: {
      tags: ['schematics'],
      operationId: 'getSchematic',
      summary: 'The canonical YAML of a schematic',
      parameters: [paramRef('SchematicPath')],
      responses: {
        '200': { description: 'Canonical YAML.', content: { 'application/yaml': { schema: { type: 'string' } } } },
        ...errors(404, ...SERVICE_FAULTS),
      },
    },
  },

  // --- catalog ------------------------------------------------------------------------------------------------------
  '/versions': {
    get: {
      tags: ['catalog'],
      operationId: 'listVersions',
      summary: 'Talos versions offered, ascending',
      parameters: [
        {
          name: 'broken',
          in: 'query',
          description: '`true` lists the versions configured as broken instead (any other value is ignored).',
          schema: { type: 'string' },
        },
      ],
      responses: { '200': json('Version tags.', { type: 'array', items: schemaRef('VersionTag') }), ...errors(502, ...SERVICE_FAULTS) },
    },
  },
  '/version/{version}/extensions/official': {
    get: {
      tags: ['catalog'],
      operationId: 'listOfficialExtensions',
      summary: 'Official system extensions of a version',
      parameters: [paramRef('VersionPath')],
      responses: {
        '200': json('Extensions.', { type: 'array', items: schemaRef('Extension') }),
        ...errors(400, 404, 502, ...SERVICE_FAULTS),
      },
    },
  },
  '/version/{version}/overlays/official': {
    get: {
      tags: ['catalog'],
      operationId: 'listOfficialOverlays',
      summary: 'Official overlays (board support) of a version; `[]` before Talos 1.7',
      parameters: [paramRef('VersionPath')],
      responses: {
        '200': json('Overlays.', { type: 'array', items: schemaRef('Overlay') }),
        ...errors(400, 404, 502, ...SERVICE_FAULTS),
      },
    },
  },

  // --- assets -------------------------------------------------------------------------------------------------------
  '/image/{schematic}/{version}/{path}': {
    get: imageOperation('get'),
    head: imageOperation('head'),
  },
  '/pxe/{schematic}/{version}/{path}': {
    get: {
      tags: ['assets'],
      operationId: 'getPxeScript',
      summary: 'iPXE script booting the kernel and initramfs of the schematic',
      description: '`path` is `<platform>-<arch>[-secureboot]`. Never redirected, so iPXE without HTTPS can follow it.',
      parameters: [paramRef('SchematicPath'), paramRef('VersionPath'), { name: 'path', in: 'path', required: true, schema: { type: 'string' } }],
      responses: {
        '200': { description: 'iPXE script.', content: { [TEXT]: { schema: { type: 'string', pattern: '^#!ipxe\\n' } } } },
        ...errors(...ASSET_INPUT, ...BUILD_FAULTS),
      },
    },
  },

  // --- builds (issue 14) ------------------------------------------------------------------------------------------
  '/builds': {
    post: {
      tags: ['builds'],
      operationId: 'createBuilds',
      summary: 'Queue builds: one per (version, asset); an asset already stored is a build in state `done`',
      description:
        'Each (version, asset) is validated exactly as `/image/<schematic>/<version>/<asset>` is, with the same texts. ' +
        'A build ID is the asset’s identity: the build a `GET /image` of the same asset waits on.',
      requestBody: { required: true, content: { [JSON_TYPE]: { schema: schemaRef('BuildRequest') } } },
      responses: {
        '202': json('Builds in request order.', schemaRef('BuildList'), {
          Location: { description: '`/builds/<id>` when exactly one build was asked for.', schema: { type: 'string' } },
        }),
        ...errors(400, 404, 413, 429, ...SERVICE_FAULTS),
      },
    },
    get: {
      tags: ['builds'],
      operationId: 'listBuilds',
      summary: 'Recent builds, newest first',
      parameters: [
        { name: 'schematic', in: 'query', schema: schemaRef('SchematicId') },
        { name: 'version', in: 'query', schema: { type: 'string' } },
        { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 100, default: 20 } },
      ],
      responses: { '200': json('Builds.', schemaRef('BuildList')), ...errors(400, ...SERVICE_FAULTS) },
    },
  },
  '/builds/{id}': {
    get: {
      tags: ['builds'],
      operationId: 'getBuild',
      summary: 'A build (unknown or expired: 404)',
      parameters: [paramRef('BuildIdPath')],
      responses: { '200': json('The build.', schemaRef('Build')), ...errors(400, 404, ...SERVICE_FAULTS) },
    },
  },
  '/builds/{id}/events': {
    get: {
      tags: ['builds'],
      operationId: 'getBuildEvents',
      summary: 'Server-Sent Events of a build until it is done or failed',
      description:
        'Each event: `id: <n>` (1, 2, 3 … per build), `event: build`, `data: <Build JSON>`. The first event is the current ' +
        'state; one event follows per state, stage or percent change; the server closes the stream after a `done` or ' +
        '`failed` event. `: keepalive` comments every 15 s.',
      parameters: [
        paramRef('BuildIdPath'),
        {
          name: 'Last-Event-ID',
          in: 'header',
          description: 'Replays the events after this one that are still kept (at least the last 200), then continues live.',
          schema: { type: 'string', pattern: '^[0-9]+$' },
        },
      ],
      responses: {
        '200': { description: 'Event stream of `Build` objects.', content: { 'text/event-stream': { schema: { type: 'string' }, 'x-event-data': schemaRef('Build') } } },
        ...errors(400, 404, ...SERVICE_FAULTS),
      },
    },
  },

  // --- pre-warm (issue 14) ----------------------------------------------------------------------------------------
  '/prewarm/{schematic}': {
    put: {
      tags: ['prewarm'],
      operationId: 'putPrewarm',
      summary: 'Set the assets built for this schematic whenever a new Talos version appears',
      parameters: [paramRef('SchematicPath')],
      requestBody: { required: true, content: { [JSON_TYPE]: { schema: schemaRef('PrewarmRequest') } } },
      responses: { '200': json('The pre-warm set.', schemaRef('Prewarm')), ...errors(400, 404, 413, ...SERVICE_FAULTS) },
    },
    get: {
      tags: ['prewarm'],
      operationId: 'getPrewarm',
      summary: "The schematic's pre-warm set",
      parameters: [paramRef('SchematicPath')],
      responses: { '200': json('The pre-warm set.', schemaRef('Prewarm')), ...errors(400, 404, ...SERVICE_FAULTS) },
    },
    delete: {
      tags: ['prewarm'],
      operationId: 'deletePrewarm',
      summary: 'Remove the pre-warm set',
      parameters: [paramRef('SchematicPath')],
      responses: { '204': emptyResponse('Removed (or there was none).'), ...errors(400, 404, ...SERVICE_FAULTS) },
    },
  },

  // --- webhooks (issue 14) ----------------------------------------------------------------------------------------
  '/webhooks': {
    post: {
      tags: ['webhooks'],
      operationId: 'createWebhook',
      summary: 'Register a webhook (the secret is never echoed)',
      description: 'http/https targets only; loopback and private addresses are refused unless the factory allows them; at most 20 hooks per schematic.',
      requestBody: { required: true, content: { [JSON_TYPE]: { schema: schemaRef('WebhookRequest') } } },
      responses: {
        '201': json('Registered.', schemaRef('Webhook'), { Location: { description: '`/webhooks/<id>`', schema: { type: 'string' } } }),
        ...errors(400, 404, 413, ...SERVICE_FAULTS),
      },
    },
  },
  '/webhooks/{id}': {
    get: {
      tags: ['webhooks'],
      operationId: 'getWebhook',
      summary: 'A webhook',
      parameters: [paramRef('WebhookIdPath')],
      responses: { '200': json('The webhook.', schemaRef('Webhook')), ...errors(400, 404, ...SERVICE_FAULTS) },
    },
    delete: {
      tags: ['webhooks'],
      operationId: 'deleteWebhook',
      summary: 'Remove a webhook (409 for one configured by FACTORY_WEBHOOKS)',
      parameters: [paramRef('WebhookIdPath')],
      responses: { '204': emptyResponse('Removed.'), ...errors(400, 404, 409, ...SERVICE_FAULTS) },
    },
  },
  '/webhooks/{id}/deliveries': {
    get: {
      tags: ['webhooks'],
      operationId: 'listWebhookDeliveries',
      summary: 'Delivery attempts of a webhook, newest first (last 100)',
      parameters: [paramRef('WebhookIdPath')],
      responses: { '200': json('Delivery attempts.', schemaRef('DeliveryList')), ...errors(400, 404, ...SERVICE_FAULTS) },
    },
  },

  // --- keys ---------------------------------------------------------------------------------------------------------
  '/oci/cosign/signing-key.pub': {
    get: {
      tags: ['keys'],
      operationId: 'getCosignPublicKey',
      summary: 'PEM public key that signs installer images and stored assets (`cosign verify --key`)',
      responses: {
        '200': { description: 'PEM `PUBLIC KEY`.', content: { 'application/x-pem-file': { schema: { type: 'string', pattern: '^-----BEGIN PUBLIC KEY-----' } } } },
        ...errors(...SERVICE_FAULTS),
      },
    },
  },
  '/secureboot/signing-cert.pem': {
    get: {
      tags: ['keys'],
      operationId: 'getSecureBootCertificate',
      summary: 'The Secure Boot signing certificate (500 when Secure Boot is not configured, as the anchor answers)',
      responses: {
        '200': { description: 'PEM `CERTIFICATE`.', content: { 'application/x-pem-file': { schema: { type: 'string', pattern: '-----BEGIN CERTIFICATE-----' } } } },
        ...errors(...SERVICE_FAULTS),
      },
    },
  },

  // --- talosctl -----------------------------------------------------------------------------------------------------
  '/talosctl/{version}': {
    get: {
      tags: ['talosctl'],
      operationId: 'listTalosctl',
      summary: 'Absolute download URLs of the talosctl binaries of a version, sorted (`[]` before Talos 1.11)',
      parameters: [paramRef('VersionPath')],
      responses: {
        '200': json('URLs.', { type: 'array', items: { type: 'string', format: 'uri' } }),
        ...errors(400, 404, 502, ...SERVICE_FAULTS),
      },
    },
  },
  '/talosctl/{version}/{file}': {
    get: talosctlDownload('get'),
    head: talosctlDownload('head'),
  },

  // --- registry (summary) -------------------------------------------------------------------------------------------
  '/v2': registryPing(''),
  '/v2/': registryPing('Slash'),
  '/v2/{image}/{schematic}/manifests/{reference}': registryPath('Manifest', 'An installer image index of the schematic (built on first pull).', [
    paramRef('InstallerImagePath'),
    paramRef('SchematicPath'),
    { name: 'reference', in: 'path', required: true, description: 'A Talos version tag, `latest`, or a digest.', schema: { type: 'string' } },
  ]),
  '/v2/{image}/{schematic}/blobs/{digest}': registryPath('Blob', 'A blob of an installer image.', [paramRef('InstallerImagePath'), paramRef('SchematicPath'), paramRef('DigestPath')]),
  '/v2/{image}/{schematic}/referrers/{digest}': registryPath('Referrers', 'OCI referrers index of a manifest (signatures).', [
    paramRef('InstallerImagePath'),
    paramRef('SchematicPath'),
    paramRef('DigestPath'),
    { name: 'artifactType', in: 'query', schema: { type: 'string' } },
  ]),
  '/v2/siderolabs/{image}/manifests/{reference}': sourceProxyPath('Manifest'),
  '/v2/siderolabs/{image}/blobs/{reference}': sourceProxyPath('Blob'),
  '/v2/siderolabs/{image}/referrers/{reference}': sourceProxyPath('Referrers'),
  '/v2/siderolabs/{image}/tags/list': {
    get: { tags: ['registry'], operationId: 'listSourceImageTags', summary: 'Tags of an upstream source image (proxied)', parameters: [paramRef('SourceImagePath')], responses: sourceProxyResponses() },
    // every /v2 path answers HEAD as GET (anchor-api §1.2)
    head: { tags: ['registry'], operationId: 'headSourceImageTags', summary: 'Tags of an upstream source image (headers only)', parameters: [paramRef('SourceImagePath')], responses: sourceProxyResponses() },
  },
};

function imageOperation(method: 'get' | 'head'): JsonObject {
  const responses: JsonObject = {
    ...downloadResponses(ASSET_MEDIA_TYPES),
    '202': json('Prefer: respond-async and the asset is not stored yet: the build that will produce it.', schemaRef('Build'), {
      Location: { required: true, description: '`/builds/<id>`', schema: { type: 'string' } },
      'Preference-Applied': { required: true, schema: { type: 'string', const: 'respond-async' } },
    }),
    ...errors(...ASSET_INPUT, 402, 412, 416, ...BUILD_FAULTS),
  };
  // `<asset>.sha256` / `.sha512`: `<hex>  <filename>\n`
  (responses['200'] as { content: JsonObject }).content[TEXT] = { schema: { type: 'string', pattern: '^[0-9a-f]{64}([0-9a-f]{64})?  [^\\n]+\\n$' } };
  return {
    tags: ['assets'],
    operationId: method === 'get' ? 'getImage' : 'headImage',
    summary: method === 'get' ? 'Download an asset, building it on first request' : 'Asset headers (builds it too, as the anchor does)',
    description:
      '`path` is an asset path as in the anchor (`metal-amd64.iso`, `kernel-amd64`, `aws-amd64.raw.xz`, …); `<asset>.sha256` ' +
      'and `<asset>.sha512` answer its checksum line; `<asset>.sigstore.json` is 402 (enterprise). Validation order: ' +
      'schematic (404), version (400), path (400), enhancement from the schematic (400/404), then build.',
    parameters: [
      paramRef('SchematicPath'),
      paramRef('VersionPath'),
      { name: 'path', in: 'path', required: true, schema: { type: 'string' } },
      { name: 'filename', in: 'query', description: 'Download name in Content-Disposition (the path stays what decides the content).', schema: { type: 'string' } },
      {
        name: 'Prefer',
        in: 'header',
        description: '`respond-async`: answer 202 with the build instead of waiting for it (issue 14).',
        schema: { type: 'string' },
      },
      ...downloadParams,
    ],
    responses,
  };
}

function talosctlDownload(method: 'get' | 'head'): JsonObject {
  return {
    tags: ['talosctl'],
    operationId: method === 'get' ? 'getTalosctl' : 'headTalosctl',
    summary: 'A talosctl binary of a version (extracted once, stored, signed and served like assets)',
    parameters: [paramRef('VersionPath'), { name: 'file', in: 'path', required: true, description: 'A name from the listing, e.g. `talosctl-linux-amd64`.', schema: { type: 'string' } }, ...downloadParams],
    responses: {
      ...downloadResponses(['application/octet-stream', 'application/vnd.microsoft.portable-executable']),
      ...errors(400, 404, 412, 416, ...BUILD_FAULTS),
    },
  };
}

function registryPing(suffix: string): JsonObject {
  const op = (method: 'get' | 'head') => ({
    tags: ['registry'],
    operationId: `${method}RegistryPing${suffix}`,
    summary: 'OCI distribution API version check',
    responses: { '200': emptyResponse('The registry API is served (empty body).') },
  });
  return { get: op('get'), head: op('head') };
}

/** OCI errors: the anchor's one-line text, or the distribution spec's JSON error body where registries use it. */
function registryResponses(success?: JsonObject): JsonObject {
  const failure = responseRef('RegistryFailure');
  return {
    ...(success ?? { '200': { description: 'As answered by the upstream registry.', content: { '*/*': {} } } }),
    '304': { description: 'If-None-Match matched.' },
    '307': { description: 'Redirect to the object or upstream URL.', headers: { Location: { required: true, schema: { type: 'string' } } } },
    ...Object.fromEntries([400, 401, 403, 404, 412, 416, 429, 500, 502, 503].map((s) => [String(s), failure])),
  };
}

/** The source-image proxy passes the upstream registry's answers through: any error status it gives. */
function sourceProxyResponses(): JsonObject {
  const failure = responseRef('RegistryFailure');
  return { ...registryResponses(), '206': { description: 'A byte range of a blob.', content: { '*/*': {} } }, '4XX': failure, '5XX': failure };
}

function registryPath(kind: 'Manifest' | 'Blob' | 'Referrers', summary: string, parameters: Json[]): JsonObject {
  const documentContent = Object.fromEntries(OCI_DOCUMENT_TYPES.map((t) => [t, { schema: schemaRef('OciDocument') }]));
  const success: JsonObject =
    kind === 'Blob'
      ? {
          '200': { description: 'The blob.', content: { 'application/octet-stream': { schema: { type: 'string' } } } },
          '206': { description: 'A byte range of the blob.', content: { 'application/octet-stream': { schema: { type: 'string' } } } },
        }
      : { '200': { description: kind === 'Manifest' ? 'The manifest or index.' : 'The referrers index.', content: documentContent } };
  const op = (method: 'get' | 'head') => ({
    tags: ['registry'],
    operationId: `${method}Installer${kind}`,
    summary,
    parameters,
    responses: registryResponses(success),
  });
  return { get: op('get'), head: op('head') };
}

function sourceProxyPath(kind: 'Manifest' | 'Blob' | 'Referrers'): JsonObject {
  const op = (method: 'get' | 'head') => ({
    tags: ['registry'],
    operationId: `${method}SourceImage${kind}`,
    summary: 'Upstream source image (installer-base, installer, imager, extensions, overlays, talosctl-all), proxied unchanged',
    parameters: [paramRef('SourceImagePath'), { name: 'reference', in: 'path', required: true, schema: { type: 'string' } }],
    responses: sourceProxyResponses(),
  });
  return { get: op('get'), head: op('head') };
}

// --- schemas ------------------------------------------------------------------------------------------------------
const ISO_TIME: JsonObject = { type: 'string', format: 'date-time' };
const HEX64: JsonObject = { type: 'string', pattern: '^[0-9a-f]{64}$' };

const schemas: JsonObject = {
  ErrorText: {
    type: 'string',
    description: "The anchor's error body: one line of text ending in a newline.",
    pattern: '^[^\\n]*\\n$',
  },
  SchematicId: { ...HEX64, description: 'SHA-256 of the canonical schematic YAML.' },
  VersionTag: { type: 'string', pattern: '^v[0-9]+\\.[0-9]+\\.[0-9]+' },
  Schematic: {
    type: 'object',
    additionalProperties: false,
    properties: {
      overlay: {
        type: 'object',
        additionalProperties: false,
        properties: { image: { type: 'string' }, name: { type: 'string' }, options: { type: 'object' } },
      },
      customization: {
        type: 'object',
        additionalProperties: false,
        properties: {
          extraKernelArgs: { type: 'array', items: { type: 'string' } },
          meta: {
            type: 'array',
            items: { type: 'object', additionalProperties: false, properties: { key: { type: 'integer', minimum: 0, maximum: 255 }, value: { type: 'string' } } },
          },
          systemExtensions: {
            type: 'object',
            additionalProperties: false,
            properties: { officialExtensions: { type: 'array', items: { type: 'string' } } },
          },
          secureboot: {
            type: 'object',
            additionalProperties: false,
            properties: { enrollKeys: { type: 'string' }, includeWellKnownCertificates: { type: 'boolean' } },
          },
          bootloader: { type: 'string', enum: ['none', 'dual-boot', 'sd-boot', 'grub'] },
          embeddedMachineConfiguration: { type: 'string' },
          diskImage: { type: 'object', additionalProperties: false, properties: { sectorSize: { type: 'integer' } } },
        },
      },
    },
  },
  SchematicCreated: {
    type: 'object',
    additionalProperties: false,
    required: ['id', 'schematic'],
    properties: { id: schemaRef('SchematicId'), schematic: { type: 'string', description: 'Canonical YAML.' } },
  },
  Extension: {
    type: 'object',
    additionalProperties: false,
    required: ['name', 'ref', 'digest', 'author', 'description'],
    properties: {
      name: { type: 'string' },
      ref: { type: 'string' },
      digest: { type: 'string', pattern: '^sha256:[0-9a-f]{64}$' },
      author: { type: 'string' },
      description: { type: 'string' },
    },
  },
  Overlay: {
    type: 'object',
    additionalProperties: false,
    required: ['name', 'image', 'ref', 'digest'],
    properties: { name: { type: 'string' }, image: { type: 'string' }, ref: { type: 'string' }, digest: { type: 'string', pattern: '^sha256:[0-9a-f]{64}$' } },
  },
  Build: {
    type: 'object',
    description: 'A build of one asset; its `id` is the asset’s identity (libs/asset assetKey).',
    additionalProperties: false,
    required: ['id', 'schematic', 'version', 'asset', 'state', 'url', 'priority', 'createdAt', 'updatedAt', 'stages', 'log'],
    properties: {
      id: HEX64,
      schematic: schemaRef('SchematicId'),
      version: schemaRef('VersionTag'),
      asset: { type: 'string', minLength: 1 },
      state: { type: 'string', enum: ['queued', 'running', 'done', 'failed'] },
      queuePosition: { type: 'integer', minimum: 0, description: 'Only when queued, when known (0 = next to start).' },
      stage: { type: 'string', description: 'Current stage while running; kept on done.' },
      percent: { type: 'number', minimum: 0, maximum: 100 },
      bytes: { type: 'integer', minimum: 0, description: 'Bytes written so far, while running, when known.' },
      size: { type: 'integer', minimum: 0 },
      sha256: HEX64,
      url: { type: 'string', format: 'uri', description: 'Where the asset is (or will be) served: `<externalUrl>/image/<schematic>/<version>/<asset>`.' },
      error: {
        type: 'object',
        additionalProperties: false,
        required: ['status', 'message'],
        properties: { status: { type: 'integer', minimum: 400, maximum: 599 }, message: { type: 'string' } },
      },
      priority: { type: 'string', enum: ['user', 'prewarm'] },
      createdAt: ISO_TIME,
      updatedAt: ISO_TIME,
      stages: {
        type: 'array',
        items: {
          type: 'object',
          additionalProperties: false,
          required: ['name', 'startedAt'],
          properties: { name: { type: 'string' }, startedAt: ISO_TIME, durationMs: { type: 'integer', minimum: 0, description: 'Absent on the current stage.' } },
        },
      },
      log: { type: 'array', maxItems: 50, items: { type: 'string' }, description: 'The last lines of the build log, `<ISO time> <text>`.' },
    },
    allOf: [
      // the position is given when it is known (the job may be between the queue and a worker)
      { if: { properties: { state: { const: 'queued' } } }, else: { not: { required: ['queuePosition'] } } },
      { if: { properties: { state: { const: 'done' } } }, then: { required: ['size', 'sha256'] } },
      { if: { properties: { state: { const: 'failed' } } }, then: { required: ['error'] }, else: { not: { required: ['error'] } } },
    ],
  },
  BuildList: { type: 'object', additionalProperties: false, required: ['builds'], properties: { builds: { type: 'array', items: schemaRef('Build') } } },
  BuildRequest: {
    type: 'object',
    additionalProperties: false,
    required: ['schematic', 'assets'],
    properties: {
      schematic: { type: 'string' },
      version: { type: 'string' },
      versions: { type: 'array', minItems: 1, items: { type: 'string' }, description: 'Several versions at once (upgrade rollouts).' },
      assets: { type: 'array', minItems: 1, items: { type: 'string' }, description: 'Asset paths as in `/image`; versions × assets ≤ 32.' },
    },
    oneOf: [{ required: ['version'] }, { required: ['versions'] }],
  },
  PrewarmRequest: {
    type: 'object',
    additionalProperties: false,
    required: ['assets'],
    properties: { assets: { type: 'array', maxItems: 16, items: { type: 'string' } } },
  },
  Prewarm: {
    type: 'object',
    additionalProperties: false,
    required: ['schematic', 'assets', 'updatedAt'],
    properties: { schematic: schemaRef('SchematicId'), assets: { type: 'array', maxItems: 16, items: { type: 'string' } }, updatedAt: ISO_TIME },
  },
  WebhookEvent: { type: 'string', enum: ['build.succeeded', 'build.failed', 'version.available'] },
  WebhookRequest: {
    type: 'object',
    additionalProperties: false,
    required: ['url', 'secret', 'events'],
    properties: {
      url: { type: 'string', format: 'uri' },
      secret: { type: 'string', minLength: 1 },
      events: { type: 'array', minItems: 1, items: schemaRef('WebhookEvent') },
      schematic: { ...HEX64, description: 'Only events of this schematic (absent: all).' },
    },
  },
  Webhook: {
    type: 'object',
    additionalProperties: false,
    required: ['id', 'url', 'events', 'createdAt'],
    properties: {
      id: { type: 'string', minLength: 1 },
      url: { type: 'string', format: 'uri' },
      events: { type: 'array', items: schemaRef('WebhookEvent') },
      schematic: { type: ['string', 'null'], description: 'Absent or null: every schematic.' },
      createdAt: ISO_TIME,
    },
  },
  Delivery: {
    type: 'object',
    additionalProperties: false,
    required: ['id', 'event', 'attempt', 'at'],
    properties: {
      id: { type: 'string' },
      event: schemaRef('WebhookEvent'),
      attempt: { type: 'integer', minimum: 1 },
      status: { type: ['integer', 'null'], description: "The receiver's HTTP status (null: no answer)." },
      error: { type: ['string', 'null'] },
      at: ISO_TIME,
    },
  },
  DeliveryList: { type: 'object', additionalProperties: false, required: ['deliveries'], properties: { deliveries: { type: 'array', maxItems: 100, items: schemaRef('Delivery') } } },
  WebhookPayload: {
    type: 'object',
    additionalProperties: false,
    required: ['id', 'event', 'createdAt', 'data'],
    properties: {
      id: { type: 'string', description: 'Delivery ID (also in `X-Factory-Delivery`).' },
      event: schemaRef('WebhookEvent'),
      createdAt: ISO_TIME,
      data: { oneOf: [schemaRef('Build'), { type: 'object', additionalProperties: false, required: ['version'], properties: { version: schemaRef('VersionTag') } }] },
    },
  },
  OciDocument: { type: 'object', required: ['schemaVersion'], properties: { schemaVersion: { const: 2 }, mediaType: { type: 'string' } } },
  OciErrors: {
    type: 'object',
    required: ['errors'],
    properties: {
      errors: {
        type: 'array',
        items: { type: 'object', required: ['code', 'message'], properties: { code: { type: 'string' }, message: { type: 'string' }, detail: {} } },
      },
    },
  },
};

const textError = (description: string, headers?: JsonObject): JsonObject => ({
  description,
  ...(headers ? { headers } : {}),
  content: { [TEXT]: { schema: schemaRef('ErrorText') } },
});

const retryAfter = (required: boolean): JsonObject => ({ 'Retry-After': { required, description: 'Seconds to wait.', schema: { type: 'string', pattern: '^[0-9]+$' } } });

const responses: JsonObject = {
  BadRequest: textError('Invalid input, e.g. `error parsing profile from path: invalid profile path: "x"`, `invalid build request: …`.'),
  PaymentRequired: textError('An enterprise-only feature of the anchor (`.sigstore.json`).'),
  NotFound: textError('Not found, e.g. `schematic ID "x" not found`, `version 1.2.3 is not available`, `build <id> not found`.'),
  Conflict: textError('The resource cannot change this way (a webhook configured by FACTORY_WEBHOOKS cannot be deleted).'),
  PreconditionFailed: textError('If-Match did not match.'),
  PayloadTooLarge: textError('The request body is larger than the limit (`request body too large: …`).'),
  RangeNotSatisfiable: textError('The Range cannot be satisfied (`Content-Range: bytes */<size>`).'),
  UnprocessableContent: textError("The asset would exceed the factory's size limit."),
  TooManyRequests: textError('A per-client limit (cold builds, schematic creation) was reached.', retryAfter(true)),
  InternalError: textError('`internal server error` (nothing more is disclosed), or a build failure.'),
  NotImplemented: textError('An output this factory does not build.'),
  BadGateway: textError('The upstream registry answered with something unusable (a failed signature, a missing file).'),
  ServiceUnavailable: textError('Temporarily unavailable (storage fault, queue timeout, too many bodies in flight); retry.', retryAfter(false)),
  NotReady: textError('`not ready: <reason>` (or `not ready: shutting down` while draining).'),
  MethodNotAllowed: textError('`Method Not Allowed`: the path exists, the method does not.', { Allow: { required: true, schema: { type: 'string' } } }),
  RouteNotFound: textError('`404 page not found` (unknown path), or `unknown registry path: "…"` under `/v2`.'),
  Options: emptyResponse('OPTIONS: 200 with `Allow`, or 204 for a CORS preflight (empty body).'),
  RegistryFailure: {
    description: 'A registry error: one line of text, or an OCI error body (`{"errors":[{"code","message"}]}`).',
    content: { [TEXT]: { schema: schemaRef('ErrorText') }, [JSON_TYPE]: { schema: schemaRef('OciErrors') } },
  },
};

const parameters: JsonObject = {
  SchematicPath: { name: 'schematic', in: 'path', required: true, description: 'Schematic ID (64 lowercase hex).', schema: { type: 'string' } },
  VersionPath: { name: 'version', in: 'path', required: true, description: 'Talos version, `v1.11.3` or `1.11.3`.', schema: { type: 'string' } },
  BuildIdPath: { name: 'id', in: 'path', required: true, description: 'Build ID (the asset key: 64 lowercase hex).', schema: { type: 'string' } },
  WebhookIdPath: { name: 'id', in: 'path', required: true, schema: { type: 'string' } },
  InstallerImagePath: {
    name: 'image',
    in: 'path',
    required: true,
    description: '`installer`, `installer-secureboot`, `<platform>-installer[-secureboot]`.',
    schema: { type: 'string' },
  },
  SourceImagePath: { name: 'image', in: 'path', required: true, description: 'installer-base, installer, imager, extensions, overlays or talosctl-all.', schema: { type: 'string' } },
  DigestPath: { name: 'digest', in: 'path', required: true, schema: { type: 'string', pattern: '^sha256:[0-9a-f]{64}$' } },
  Range: { name: 'Range', in: 'header', description: 'One byte range, `bytes=<start>-[<end>]` or `bytes=-<suffix>`.', schema: { type: 'string' } },
  IfRange: { name: 'If-Range', in: 'header', schema: { type: 'string' } },
  IfMatch: { name: 'If-Match', in: 'header', schema: { type: 'string' } },
  IfNoneMatch: { name: 'If-None-Match', in: 'header', schema: { type: 'string' } },
};

const webhooks: JsonObject = Object.fromEntries(
  ['build.succeeded', 'build.failed', 'version.available'].map((event) => [
    event,
    {
      post: {
        tags: ['webhooks'],
        operationId: `deliver${event.replace(/(^|\.)([a-z])/g, (_m, _d: string, c: string) => c.toUpperCase())}`,
        summary: `The \`${event}\` delivery to a registered URL`,
        description:
          'Headers: `X-Factory-Event`, `X-Factory-Delivery`, `X-Factory-Signature: sha256=<hex HMAC-SHA256(secret, raw body)>`. ' +
          'A 2xx answer is delivered; anything else is retried with exponential backoff (6 attempts).',
        parameters: ['X-Factory-Event', 'X-Factory-Delivery', 'X-Factory-Signature'].map((name) => ({ name, in: 'header', required: true, schema: { type: 'string' } })),
        requestBody: { required: true, content: { [JSON_TYPE]: { schema: schemaRef('WebhookPayload') } } },
        responses: { '2XX': { description: 'Delivered.' } },
      },
    },
  ]),
);

/**
 * Answers that belong to no single operation (the checker in test/support/openapi.ts applies them): an unknown path,
 * a known path with another method, OPTIONS, and a request body announced larger than any route accepts.
 */
const routerResponses: JsonObject = {
  unknownPath: { '404': responseRef('RouteNotFound'), '405': responseRef('MethodNotAllowed') },
  otherMethod: { '405': responseRef('MethodNotAllowed') },
  options: { '200': responseRef('Options'), '204': responseRef('Options') },
  anyRequest: { '413': responseRef('PayloadTooLarge') },
};

export const OPENAPI_DOCUMENT: JsonObject = {
  openapi: '3.1.0',
  jsonSchemaDialect: 'https://spec.openapis.org/oas/3.1/dialect/base',
  info: {
    title: 'Talos Linux Image Factory',
    version: '0.1.0',
    summary: 'Drop-in compatible Talos Linux Image Factory, with builds as resources',
    description:
      'The routes of siderolabs/image-factory (schematics, versions, assets, PXE, the `/v2` registry) and the build API of ' +
      'this factory (`/builds`, `/prewarm`, `/webhooks`). Errors are plain text: a status and one line ending in `\\n`. ' +
      'An unknown path is `404 page not found`, a known path with another method `405 Method Not Allowed` (with ' +
      '`Allow`), and a request body announced larger than the limit is 413 on any route (`x-router-responses`). Under ' +
      '`/v2/` the registry path is trimmed of leading and trailing slashes before it is routed (`/v2//` is the ping, ' +
      'anchor-api §5.1; `x-path-normalisation`).',
    license: { name: 'MPL-2.0', identifier: 'MPL-2.0' },
  },
  tags,
  paths,
  webhooks,
  components: { schemas, responses, parameters },
  'x-router-responses': routerResponses,
  'x-path-normalisation': { '/v2/': 'trim-slashes' },
};
