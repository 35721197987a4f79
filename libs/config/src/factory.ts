import path from 'node:path';
import { EnvReader } from './env';

/** Settings every service shares: where Redis is, where objects live, who we are upstream. */
export interface RedisSettings {
  url: string;
  /** Prefix for every BullMQ key, so several factories can share one Redis. */
  prefix: string;
}

export type StorageSettings =
  | { kind: 'local'; dir: string }
  | {
      kind: 's3';
      bucket: string;
      endpoint?: string;
      region: string;
      accessKeyId?: string;
      secretAccessKey?: string;
      forcePathStyle: boolean;
      publicEndpoint?: string;
      presignTtlSeconds: number;
    };

export interface UpstreamSettings {
  /** Registry host[:port] holding siderolabs/imager, extensions, overlays... (ghcr.io or a mirror). */
  registry: string;
  /** Optional path prefix in front of `siderolabs/...` (e.g. a Harbor proxy project). */
  namespace: string;
  insecure: boolean;
  username?: string;
  password?: string;
  /** PEM public key that upstream images' cosign signatures must verify against; undefined = verification off. */
  publicKeyFile?: string;
  verifySignatures: boolean;
  components: {
    imager: string;
    installerBase: string;
    installer: string;
    extensions: string;
    overlays: string;
    talosctl: string;
  };
  minTalosVersion: string;
  brokenTalosVersions: string[];
  versionRecheckMs: number;
}

export interface CommonSettings {
  logLevel: string;
  dataDir: string;
  redis: RedisSettings;
  storage: StorageSettings;
  /** Port of the small /metrics + /healthz listener every non-HTTP service runs; 0 disables it. */
  metricsPort: number;
  metricsHost: string;
}

/** Where objects are stored: an S3 bucket when S3_BUCKET is set, else a local directory under the data directory. */
export function readStorage(r: EnvReader): StorageSettings {
  const dataDir = path.resolve(r.string('FACTORY_DATA_DIR', '.data'));
  const bucket = r.string('S3_BUCKET');
  if (bucket) {
    return {
      kind: 's3',
      bucket,
      endpoint: r.url('S3_ENDPOINT'),
      region: r.string('S3_REGION', 'us-east-1'),
      accessKeyId: r.string('S3_ACCESS_KEY_ID') ?? r.string('AWS_ACCESS_KEY_ID'),
      secretAccessKey: r.string('S3_SECRET_ACCESS_KEY') ?? r.string('AWS_SECRET_ACCESS_KEY'),
      forcePathStyle: r.bool('S3_FORCE_PATH_STYLE', true),
      publicEndpoint: r.url('S3_PUBLIC_ENDPOINT'),
      presignTtlSeconds: Math.round(r.duration('S3_PRESIGN_TTL', 3_600_000) / 1000) || 3600,
    };
  }
  return { kind: 'local', dir: path.resolve(r.string('FACTORY_STORAGE_DIR', path.join(dataDir, 'objects'))) };
}

export function readCommon(r: EnvReader, opts: { defaultMetricsPort?: number } = {}): CommonSettings {
  const dataDir = path.resolve(r.string('FACTORY_DATA_DIR', '.data'));
  const storage = readStorage(r);
  return {
    logLevel: r.oneOf('LOG_LEVEL', ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const, 'info'),
    dataDir,
    redis: {
      url: r.required('REDIS_URL', 'e.g. redis://:password@127.0.0.1:6379; `npm start` spawns one when unset'),
      prefix: r.string('FACTORY_QUEUE_PREFIX', 'factory'),
    },
    storage,
    metricsPort: r.port('METRICS_PORT', opts.defaultMetricsPort ?? 0),
    metricsHost: r.string('METRICS_HOST', '127.0.0.1'),
  };
}

export function readUpstream(r: EnvReader): UpstreamSettings {
  const verify = r.bool('FACTORY_UPSTREAM_VERIFY', true);
  const publicKeyFile = r.string('FACTORY_UPSTREAM_PUBLIC_KEY');
  if (verify && !publicKeyFile) {
    r.problem(
      'FACTORY_UPSTREAM_PUBLIC_KEY (a cosign PEM public key file) is required to verify upstream images; ' +
        'set FACTORY_UPSTREAM_VERIFY=false to turn verification off explicitly',
    );
  }
  const min = r.string('FACTORY_MIN_TALOS_VERSION', '1.2.0');
  if (!/^\d+\.\d+\.\d+$/.test(min)) r.problem(`FACTORY_MIN_TALOS_VERSION must look like 1.2.0, got ${JSON.stringify(min)}`);
  return {
    registry: r.string('FACTORY_UPSTREAM_REGISTRY', 'ghcr.io'),
    namespace: r.string('FACTORY_UPSTREAM_NAMESPACE', '').replace(/^\/+|\/+$/g, ''),
    insecure: r.bool('FACTORY_UPSTREAM_INSECURE', false),
    username: r.string('FACTORY_UPSTREAM_USERNAME'),
    password: r.string('FACTORY_UPSTREAM_PASSWORD'),
    publicKeyFile: verify ? publicKeyFile : undefined,
    verifySignatures: verify,
    components: {
      imager: 'siderolabs/imager',
      installerBase: 'siderolabs/installer-base',
      installer: 'siderolabs/installer',
      extensions: 'siderolabs/extensions',
      overlays: 'siderolabs/overlays',
      talosctl: 'siderolabs/talosctl-all',
    },
    minTalosVersion: min,
    brokenTalosVersions: r.list('FACTORY_BROKEN_TALOS_VERSIONS').map((v) => v.replace(/^v/, '')),
    versionRecheckMs: r.duration('FACTORY_VERSION_RECHECK_INTERVAL', 15 * 60_000),
  };
}

export interface ExternalSettings {
  /** Public base URL of the factory (links, PXE scripts, the schematic extension's author). */
  externalUrl: string;
  /** Base URL for PXE scripts (defaults to externalUrl). */
  externalPxeUrl: string;
  /**
   * Host whose requests are streamed, never redirected (iPXE firmware often cannot follow HTTPS redirects). Only
   * set when a PXE URL is configured: the anchor also applies it when the PXE URL merely defaults to the external
   * URL, which silently disables redirects for everyone; we do not.
   */
  noRedirectHost?: string;
}

export function readExternal(r: EnvReader): ExternalSettings {
  const externalUrl = r.url('FACTORY_EXTERNAL_URL', 'https://localhost/') ?? 'https://localhost/';
  const configuredPxe = r.url('FACTORY_EXTERNAL_PXE_URL');
  const externalPxeUrl = configuredPxe ?? externalUrl;
  return { externalUrl, externalPxeUrl, noRedirectHost: configuredPxe ? new URL(configuredPxe).host : undefined };
}

/** The shortest hand-off secret accepted: 128 bits as hex. */
const MIN_HANDOFF_SECRET = 32;

/**
 * FACTORY_HANDOFF_SECRET, shared by the gateway and the registry-proxy on one local object directory: a gateway
 * `/v2` request carrying it may be answered with the blob's object key (the hand-off) instead of its bytes. Unset:
 * no hand-off (the gateway relays blob bodies). `npm start` generates one per run.
 */
export function readHandoffSecret(r: EnvReader): string | undefined {
  const secret = r.string('FACTORY_HANDOFF_SECRET');
  if (secret !== undefined && (secret.length < MIN_HANDOFF_SECRET || !/^[\x21-\x7e]+$/.test(secret))) {
    r.problem(`FACTORY_HANDOFF_SECRET must be at least ${MIN_HANDOFF_SECRET} printable characters without spaces`);
    return undefined;
  }
  return secret;
}

/** Deadlines for *receiving* a request on a public listener (not for answering it: asset requests wait for builds). */
export interface ReceiveTimeouts {
  headersTimeoutMs: number;
  requestTimeoutMs: number;
}

export function readReceiveTimeouts(r: EnvReader): ReceiveTimeouts {
  return {
    headersTimeoutMs: r.duration('FACTORY_HEADERS_TIMEOUT', 10_000),
    requestTimeoutMs: r.duration('FACTORY_REQUEST_TIMEOUT', 30_000),
  };
}

/**
 * Secure Boot key material of the signing service (the anchor's `secureBoot.enabled` and `secureBoot.file.*`): the
 * UKI signing key and certificate and the PCR signing key (RSA, PKCS#1 PEM), all three configured or none; the PK and
 * KEK enrolment pairs, each configured as key + certificate or generated. Unconfigured keys are generated into the
 * signing key directory when FACTORY_SECUREBOOT_GENERATE_KEYS is on (the embedded `npm start` turns it on).
 */
export interface SecureBootSettings {
  enabled: boolean;
  generateKeys: boolean;
  signingKeyFile?: string;
  signingCertFile?: string;
  pcrKeyFile?: string;
  pkKeyFile?: string;
  pkCertFile?: string;
  kekKeyFile?: string;
  kekCertFile?: string;
}

export const SECUREBOOT_ENV = {
  enabled: 'FACTORY_SECUREBOOT_ENABLED',
  generateKeys: 'FACTORY_SECUREBOOT_GENERATE_KEYS',
  signingKeyFile: 'FACTORY_SECUREBOOT_SIGNING_KEY_FILE',
  signingCertFile: 'FACTORY_SECUREBOOT_SIGNING_CERT_FILE',
  pcrKeyFile: 'FACTORY_SECUREBOOT_PCR_KEY_FILE',
  pkKeyFile: 'FACTORY_SECUREBOOT_PK_KEY_FILE',
  pkCertFile: 'FACTORY_SECUREBOOT_PK_CERT_FILE',
  kekKeyFile: 'FACTORY_SECUREBOOT_KEK_KEY_FILE',
  kekCertFile: 'FACTORY_SECUREBOOT_KEK_CERT_FILE',
} as const;

export function readSecureBoot(r: EnvReader): SecureBootSettings {
  const file = (name: string) => {
    const v = r.string(name);
    return v === undefined ? undefined : path.resolve(v);
  };
  const s = {
    signingKeyFile: file(SECUREBOOT_ENV.signingKeyFile),
    signingCertFile: file(SECUREBOOT_ENV.signingCertFile),
    pcrKeyFile: file(SECUREBOOT_ENV.pcrKeyFile),
    pkKeyFile: file(SECUREBOOT_ENV.pkKeyFile),
    pkCertFile: file(SECUREBOOT_ENV.pkCertFile),
    kekKeyFile: file(SECUREBOOT_ENV.kekKeyFile),
    kekCertFile: file(SECUREBOOT_ENV.kekCertFile),
  };
  const allOrNone = (keys: Array<keyof typeof s>, what: string) => {
    const missing = keys.filter((k) => !s[k]);
    if (missing.length > 0 && missing.length < keys.length) {
      r.problem(`${what} is configured in part: set ${missing.map((k) => SECUREBOOT_ENV[k]).join(' and ')} too, or none of ${keys.map((k) => SECUREBOOT_ENV[k]).join(', ')}`);
    }
    return missing.length === 0;
  };
  const filesConfigured = allOrNone(['signingKeyFile', 'signingCertFile', 'pcrKeyFile'], 'Secure Boot signing');
  allOrNone(['pkKeyFile', 'pkCertFile'], 'the Secure Boot platform key (PK)');
  allOrNone(['kekKeyFile', 'kekCertFile'], 'the Secure Boot key exchange key (KEK)');
  const generateKeys = r.bool(SECUREBOOT_ENV.generateKeys, false);
  const enabled = r.bool(SECUREBOOT_ENV.enabled, filesConfigured || generateKeys);
  const partlyConfigured = !filesConfigured && !!(s.signingKeyFile || s.signingCertFile || s.pcrKeyFile);
  if (enabled && !filesConfigured && !partlyConfigured && !generateKeys) {
    r.problem(
      `${SECUREBOOT_ENV.enabled}=true needs ${SECUREBOOT_ENV.signingKeyFile}, ${SECUREBOOT_ENV.signingCertFile} and ${SECUREBOOT_ENV.pcrKeyFile} ` +
        `(or ${SECUREBOOT_ENV.generateKeys}=true to generate the keys into the signing key directory)`,
    );
  }
  return { enabled, generateKeys, ...s };
}

// --- issue 14: build records (h/builds) ---------------------------------------------------------------------------

/** How long a build record (GET /builds/<id>, its events) is kept after the build ended. */
export function readBuildRetention(r: EnvReader): number {
  const ms = r.duration('FACTORY_BUILD_RETENTION', 24 * 3600_000);
  if (ms < 1000) r.problem('FACTORY_BUILD_RETENTION must be at least 1s');
  return ms;
}

/** The events a webhook may subscribe to (issue 14). */
export const WEBHOOK_EVENTS = ['build.succeeded', 'build.failed', 'version.available'] as const;
export type WebhookEvent = (typeof WEBHOOK_EVENTS)[number];

/** A webhook as configured (FACTORY_WEBHOOKS) or registered: where to POST which events, signed with `secret`. */
export interface WebhookSpec {
  url: string;
  secret: string;
  events: WebhookEvent[];
  /** only this schematic's build events (version.available is for every hook subscribed to it); absent: all */
  schematic?: string;
}

/** Pre-warm and webhook settings (gateway): global hooks, the SSRF guard's switch, delivery timing. */
export interface NotifySettings {
  /** FACTORY_WEBHOOKS: hooks every event goes to, besides the registered ones */
  globalWebhooks: WebhookSpec[];
  /** FACTORY_WEBHOOK_ALLOW_PRIVATE: loopback/private/link-local targets allowed (tests, closed networks) */
  allowPrivateTargets: boolean;
  /** FACTORY_WEBHOOK_TIMEOUT: one delivery attempt, connect to response headers */
  deliveryTimeoutMs: number;
  /** FACTORY_WEBHOOK_RETRY_DELAY: the first retry's delay; each next one doubles (6 attempts in all) */
  retryBaseDelayMs: number;
}

/**
 * Shape checks of one webhook object (a registration body or a FACTORY_WEBHOOKS entry); the first problem, or the
 * spec. Reachability (the SSRF guard) and the schematic's existence are checked by the caller.
 */
export function parseWebhookSpec(value: unknown): { problem: string } | { spec: WebhookSpec } {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return { problem: 'expected a JSON object' };
  const o = value as Record<string, unknown>;
  const unknown = Object.keys(o).filter((k) => !['url', 'secret', 'events', 'schematic'].includes(k));
  if (unknown.length) return { problem: `unknown field ${JSON.stringify(unknown[0])}` };
  if (typeof o.url !== 'string' || o.url.length > 2048) return { problem: '"url" must be a string (at most 2048 characters)' };
  let url: URL;
  try {
    url = new URL(o.url);
  } catch {
    return { problem: `"url" is not a URL: ${JSON.stringify(o.url)}` };
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return { problem: '"url" must be an http or https URL' };
  if (url.username || url.password) return { problem: '"url" must not carry credentials (sign with "secret")' };
  if (typeof o.secret !== 'string' || o.secret.length < 1 || o.secret.length > 1024) return { problem: '"secret" must be a string of 1 to 1024 characters' };
  if (!Array.isArray(o.events) || o.events.length === 0) return { problem: `"events" must be a non-empty array of ${WEBHOOK_EVENTS.join(', ')}` };
  for (const e of o.events) {
    if (!(WEBHOOK_EVENTS as readonly unknown[]).includes(e)) return { problem: `unknown event ${JSON.stringify(e)} (one of ${WEBHOOK_EVENTS.join(', ')})` };
  }
  if (o.schematic !== undefined && (typeof o.schematic !== 'string' || !/^[0-9a-f]{64}$/.test(o.schematic))) return { problem: '"schematic" must be a schematic ID' };
  const events = WEBHOOK_EVENTS.filter((e) => (o.events as unknown[]).includes(e));
  return { spec: { url: o.url, secret: o.secret, events, ...(o.schematic !== undefined ? { schematic: o.schematic as string } : {}) } };
}

export function readNotify(r: EnvReader): NotifySettings {
  const globalWebhooks: WebhookSpec[] = [];
  const raw = r.string('FACTORY_WEBHOOKS');
  if (raw !== undefined) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(raw);
    } catch {
      parsed = undefined;
    }
    if (!Array.isArray(parsed)) r.problem('FACTORY_WEBHOOKS must be a JSON array of {"url","secret","events","schematic"} objects');
    else {
      parsed.forEach((entry, i) => {
        const checked = parseWebhookSpec(entry);
        if ('problem' in checked) r.problem(`FACTORY_WEBHOOKS[${i}]: ${checked.problem}`);
        else globalWebhooks.push(checked.spec);
      });
    }
  }
  return {
    globalWebhooks,
    allowPrivateTargets: r.bool('FACTORY_WEBHOOK_ALLOW_PRIVATE', false),
    deliveryTimeoutMs: r.duration('FACTORY_WEBHOOK_TIMEOUT', 10_000),
    retryBaseDelayMs: r.duration('FACTORY_WEBHOOK_RETRY_DELAY', 30_000),
  };
}
