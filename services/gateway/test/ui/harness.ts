/**
 * A gateway with the web UI over fake jobs: schematics created and read in memory with the real parser and
 * canonical form, a fixed catalog, Secure Boot on or off.
 */
import type { AddressInfo } from 'node:net';
import http from 'node:http';
import type { ExtensionEntry } from '@factory/catalog';
import { FactoryError } from '@factory/errors';
import { canonicalYaml, parseSchematic, schematicId } from '@factory/schematic';
import { RateLimitedError, RateLimiter } from '@factory/ratelimit';
import { createLogger, createMetricsRegistry } from '@factory/telemetry';
import { createApp, JobCaller } from '../../src/app';

/** The board overlays of the test catalog (every version): two boards of the SBC table and one it does not know. */
export const OVERLAYS = [
  { name: 'rpi_generic', image: 'siderolabs/sbc-raspberrypi' },
  { name: 'rpi_5', image: 'siderolabs/sbc-raspberrypi' },
  { name: 'my_board', image: 'example/sbc-custom' },
];
export const VERSIONS = ['v1.5.5', 'v1.7.7', 'v1.11.3', 'v1.12.2', 'v1.12.4', 'v1.13.0-alpha.1'];

const ext = (name: string, tag: string, description: string): ExtensionEntry => ({ name, ref: `ghcr.io/${name}:${tag}`, digest: `sha256:${'a'.repeat(64)}`, author: 'Sidero Labs', description });
export const EXTENSIONS: ExtensionEntry[] = [
  ext('siderolabs/amd-ucode', '20250101', 'AMD CPU microcode'),
  ext('siderolabs/gvisor', '20240101.0', 'gVisor container runtime'),
  ext('siderolabs/intel-ucode', '20250211', 'Intel CPU microcode'),
  ext('siderolabs/iscsi-tools', 'v0.1.6', 'iSCSI tools <for storage>'),
];

export interface Harness {
  base: string;
  schematics: Map<string, string>;
  close(): Promise<void>;
}

export async function startUi(o: { secureBoot?: boolean; talosctl?: string[]; schematicLimit?: number } = {}): Promise<Harness> {
  let schematicsTaken = 0;
  const limiter = {
    takeSchematic: async () => {
      if (o.schematicLimit !== undefined && ++schematicsTaken > o.schematicLimit) throw new RateLimitedError('too many schematics created by this client, retry later', 7);
    },
  } as unknown as RateLimiter;
  const schematics = new Map<string, string>();
  const jobs = {
    call: async (name: string, payload: Record<string, unknown>) => {
      if (name === 'schematic.create') {
        const s = parseSchematic(payload.body as string);
        const id = schematicId(s);
        schematics.set(id, canonicalYaml(s));
        return { id, yaml: canonicalYaml(s) };
      }
      if (name === 'schematic.get') {
        const yaml = schematics.get(payload.id as string);
        if (!yaml) throw new FactoryError(404, 'schematic not found');
        return { yaml };
      }
      throw new Error(`unexpected job ${name}`);
    },
    workerCount: async () => 1,
    ping: async () => undefined,
  } as unknown as JobCaller;
  const catalog = {
    versions: async () => VERSIONS,
    extensions: async (v: string) => {
      if (!VERSIONS.includes(v)) throw new FactoryError(404, `version ${v} is not available`);
      return EXTENSIONS;
    },
    overlays: async () => OVERLAYS.map((o) => ({ ...o, ref: `${o.image}:v1`, digest: `sha256:${'0'.repeat(64)}` })),
    secureBoot: async () => (o.secureBoot ? { signerId: 'c'.repeat(64) } : undefined),
  };
  const app = createApp({
    jobs,
    logger: createLogger('ui-test', 'silent'),
    metrics: createMetricsRegistry('ui-test'),
    serverTag: 'test',
    allowedOrigins: ['*'],
    maxSchematicBytes: 1024 * 1024,
    limits: { limiter, clientOf: () => 'client' },
    ui: {
      jobs,
      catalog,
      externalUrl: 'https://factory.example/',
      externalPxeUrl: 'https://pxe.example/',
      serverTag: 'test',
      ...(o.talosctl ? { talosctlFiles: async () => o.talosctl as string[] } : {}),
    },
  });
  const server = http.createServer(app);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { base, schematics, close: () => new Promise<void>((r) => server.close(() => r())) };
}
