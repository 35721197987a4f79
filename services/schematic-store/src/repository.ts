/**
 * Schematics live durably in the object store (S3 or the local directory) under `schematics/<id>.yaml`, keyed by
 * their content hash, never only in Redis. An in-memory cache sits in front: positive entries never expire
 * (schematics are immutable), negative ones expire after a short TTL so a schematic created through another
 * replica becomes visible.
 */
import type { ObjectStore } from '@factory/storage';
import { FactoryError } from '@factory/errors';
import { BoundedMap } from '@factory/runtime';
import { isSchematicId, MAX_SCHEMATIC_BYTES, readStoredSchematic, schematicObjectKey } from '@factory/schematic';

export { MAX_SCHEMATIC_BYTES };

/** Default `SCHEMATIC_CACHE_BYTES`: hundreds of thousands of typical (≤ 1 KB) schematics, 64 of the largest. */
export const DEFAULT_CACHE_BYTES = 64 * 1024 * 1024;

export interface RepositoryMetrics {
  cacheSize(n: number): void;
}

export class SchematicRepository {
  private readonly cache: BoundedMap<string, string>;
  // Bounded too: unknown IDs are attacker-chosen.
  private readonly negative: BoundedMap<string, number>;
  private readonly inflight = new Map<string, Promise<string | null>>();

  constructor(
    private readonly store: ObjectStore,
    capacity = 100_000,
    private readonly negativeTtlMs = 30_000,
    private readonly metrics?: RepositoryMetrics,
    /** bytes of schematics kept in memory: a schematic may be 1 MiB, so the count alone does not bound memory */
    cacheBytes = DEFAULT_CACHE_BYTES,
  ) {
    this.cache = new BoundedMap(capacity, { maxWeight: cacheBytes, weigh: (yaml) => yaml.length });
    this.negative = new BoundedMap(capacity);
  }

  static key(id: string): string {
    return schematicObjectKey(id);
  }

  /** Canonical YAML of a stored schematic, or null. Content is checked against its ID on every read from storage. */
  async get(id: string): Promise<string | null> {
    if (!isSchematicId(id)) return null;
    const hit = this.cache.get(id);
    if (hit !== undefined) {
      // refresh LRU position
      this.cache.delete(id);
      this.cache.set(id, hit);
      return hit;
    }
    const neg = this.negative.get(id);
    if (neg !== undefined && neg > Date.now()) return null;
    let p = this.inflight.get(id);
    if (!p) {
      p = this.load(id).finally(() => this.inflight.delete(id));
      this.inflight.set(id, p);
    }
    return p;
  }

  private async load(id: string): Promise<string | null> {
    const yaml = await readStoredSchematic(this.store, id);
    if (yaml === null) {
      // A racing put may have filled the cache meanwhile: never let a negative entry shadow it.
      if (!this.cache.has(id)) this.negative.set(id, Date.now() + this.negativeTtlMs);
      return null;
    }
    this.remember(id, yaml);
    return yaml;
  }

  /** Stores a canonical schematic; returns false when it already existed (a duplicate create). */
  async put(id: string, yaml: string): Promise<boolean> {
    if (this.cache.has(id)) return false;
    const size = Buffer.byteLength(yaml, 'utf8');
    if (size > MAX_SCHEMATIC_BYTES) throw new FactoryError(413, `schematic too large: its canonical form is ${size} bytes, the limit is ${MAX_SCHEMATIC_BYTES}`);
    const key = SchematicRepository.key(id);
    const existing = await this.store.head(key);
    if (!existing) {
      await this.store.put(key, Buffer.from(yaml, 'utf8'), { contentType: 'application/yaml', expectedSha256: id });
    }
    this.remember(id, yaml);
    return !existing;
  }

  private remember(id: string, yaml: string): void {
    this.negative.delete(id);
    this.cache.set(id, yaml);
    this.metrics?.cacheSize(this.cache.size);
  }

  /** characters of schematics in the cache (UTF-16 code units: about their bytes for the ASCII a schematic mostly is) */
  get cachedBytes(): number {
    return this.cache.weight;
  }

  async ping(): Promise<void> {
    await this.store.ping();
  }
}
