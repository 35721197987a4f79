import type { CatalogExtension, CatalogOverlay } from '@factory/catalog';
import { FactoryError } from '@factory/errors';
import { CatalogReader, upstreamHandlers } from '../src/upstream-handlers';

const GVISOR: CatalogExtension = {
  name: 'siderolabs/gvisor',
  ref: 'ghcr.io/siderolabs/gvisor:20231214.0-v1.7.0',
  digest: 'sha256:' + 'a'.repeat(64),
  author: 'Sidero Labs',
  description: 'This system extension provides gVisor using containerd runtime handler.',
  repository: 'siderolabs/gvisor',
  tag: '20231214.0-v1.7.0',
};
const RPI: CatalogOverlay = {
  name: 'rpi_generic',
  image: 'siderolabs/sbc-raspberrypi',
  ref: 'ghcr.io/siderolabs/sbc-raspberrypi:v0.1.0',
  digest: 'sha256:' + 'b'.repeat(64),
  repository: 'siderolabs/sbc-raspberrypi',
};

/** The catalog calls the fakes saw in the current test. */
const calls: string[] = [];
beforeEach(() => {
  calls.length = 0;
});

/** A catalog fake: fixed answers, recorded in `calls`, with optional overrides (failures, other answers). */
function fakeCatalog(overrides: Partial<CatalogReader> = {}): CatalogReader {
  const catalog: CatalogReader = {
    registry: 'mirror.example:5000',
    versions: async () => (calls.push('versions'), ['v1.6.7', 'v1.7.0']),
    brokenVersions: () => (calls.push('brokenVersions'), ['v1.6.9']),
    extensions: async (v: string) => (calls.push(`extensions ${v}`), [GVISOR]),
    overlays: async (v: string) => (calls.push(`overlays ${v}`), [RPI]),
    ping: async () => void calls.push('ping'),
    talosctl: async (v: string) => (
      calls.push(`talosctl ${v}`), { version: 'v1.11.0', digest: 'sha256:' + 'c'.repeat(64), files: [{ name: 'talosctl-linux-amd64', size: 3 }] }
    ),
    ...overrides,
  };
  return catalog;
}

describe('upstream handlers', () => {
  test('upstream.versions answers the offered versions, or the configured broken ones', async () => {
    const catalog = fakeCatalog();
    const handlers = upstreamHandlers(catalog);
    expect(await handlers['upstream.versions']({ broken: false })).toEqual({ versions: ['v1.6.7', 'v1.7.0'] });
    expect(await handlers['upstream.versions']({ broken: true })).toEqual({ versions: ['v1.6.9'] });
    expect(calls).toEqual(['versions', 'brokenVersions']);
  });

  test('upstream.extensions passes the version through and answers only the contract fields, in catalog order', async () => {
    const second: CatalogExtension = { ...GVISOR, name: 'siderolabs/amd-ucode', repository: 'siderolabs/amd-ucode' };
    const catalog = fakeCatalog({ extensions: async (v: string) => (calls.push(`extensions ${v}`), [GVISOR, second]) });
    const reply = await upstreamHandlers(catalog)['upstream.extensions']({ version: '1.7.0' });
    expect(reply).toEqual({
      extensions: [
        { name: GVISOR.name, ref: GVISOR.ref, digest: GVISOR.digest, author: GVISOR.author, description: GVISOR.description },
        { name: second.name, ref: second.ref, digest: second.digest, author: second.author, description: second.description },
      ],
    });
    for (const e of reply.extensions) expect(Object.keys(e)).toEqual(['name', 'ref', 'digest', 'author', 'description']);
    expect(calls).toEqual(['extensions 1.7.0']);
  });

  test('upstream.overlays passes the version through and answers only the contract fields', async () => {
    const catalog = fakeCatalog();
    const reply = await upstreamHandlers(catalog)['upstream.overlays']({ version: 'v1.7.0' });
    expect(reply).toEqual({ overlays: [{ name: RPI.name, image: RPI.image, ref: RPI.ref, digest: RPI.digest }] });
    expect(Object.keys(reply.overlays[0])).toEqual(['name', 'image', 'ref', 'digest']);
    expect(calls).toEqual(['overlays v1.7.0']);
  });

  test('the catalog’s FactoryErrors (unknown or malformed version) reach the caller unchanged', async () => {
    const notAvailable = new FactoryError(404, 'version 1.99.0 is not available');
    const malformed = new FactoryError(400, 'invalid version "x": expected a semantic version such as v1.11.0');
    const catalog = fakeCatalog({
      extensions: async () => {
        throw notAvailable;
      },
      overlays: async () => {
        throw malformed;
      },
    });
    const handlers = upstreamHandlers(catalog);
    await expect(handlers['upstream.extensions']({ version: 'v1.99.0' })).rejects.toBe(notAvailable);
    await expect(handlers['upstream.overlays']({ version: 'x' })).rejects.toBe(malformed);
  });

  test('upstream.ping answers with the upstream registry once the catalog is readable, and fails when it is not', async () => {
    const catalog = fakeCatalog();
    expect(await upstreamHandlers(catalog)['upstream.ping']({})).toEqual({ registry: 'mirror.example:5000' });
    expect(calls).toEqual(['ping']);

    const down = fakeCatalog({
      ping: async () => {
        throw new Error('connect ECONNREFUSED 127.0.0.1:5000');
      },
    });
    await expect(upstreamHandlers(down)['upstream.ping']({})).rejects.toThrow('ECONNREFUSED');
  });

  test('upstream.talosctl passes the version through and answers the release: version, pinned digest, files', async () => {
    const reply = await upstreamHandlers(fakeCatalog())['upstream.talosctl']({ version: 'v1.11.0' });
    expect(reply).toEqual({ version: 'v1.11.0', digest: 'sha256:' + 'c'.repeat(64), files: [{ name: 'talosctl-linux-amd64', size: 3 }] });
    expect(calls).toEqual(['talosctl v1.11.0']);
  });
});
