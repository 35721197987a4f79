/**
 * Where a schematic lives in object storage, and how it is read back: `schematics/<id>.yaml`, the canonical YAML,
 * verified against its content-derived ID on every read. The schematic-store writes and caches them; the
 * build-worker reads them directly (a `build.asset` job carries the schematic ID, not its YAML).
 */
import { createHash } from 'crypto';

/** Largest canonical schematic stored, and read back: a schematic that could not be read again is never accepted. */
export const MAX_SCHEMATIC_BYTES = 1024 * 1024;

export const SCHEMATICS_PREFIX = 'schematics/';

export const schematicObjectKey = (id: string): string => `${SCHEMATICS_PREFIX}${id}.yaml`;

/** Structural: any object store's whole-object read fits. */
export interface SchematicObjectReader {
  getBuffer(key: string, maxBytes: number): Promise<Buffer | null>;
}

/** The stored canonical YAML of schematic `id`, or null when absent; throws when the stored bytes do not hash to `id`. */
export async function readStoredSchematic(store: SchematicObjectReader, id: string): Promise<string | null> {
  const buf = await store.getBuffer(schematicObjectKey(id), MAX_SCHEMATIC_BYTES);
  if (!buf) return null;
  const actual = createHash('sha256').update(buf).digest('hex');
  if (actual !== id) throw new Error(`stored schematic ${id} is corrupt (content hashes to ${actual})`);
  return buf.toString('utf8');
}
