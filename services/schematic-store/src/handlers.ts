/**
 * The `schematic.*` job handlers. They see the store only through `SchematicStorage` (the repository in production,
 * an in-memory fake in unit tests) and report through `SchematicMetrics`; `main.ts` only wires them to the queue.
 */
import { FactoryError } from '@factory/errors';
import type { PayloadOf, ResultOf } from '@factory/queue';
import { canonicalYaml, parseSchematic, schematicId, SchematicError } from '@factory/schematic';
import { withStorageFaults } from '@factory/storage';
import { Counter, Gauge, Registry } from '@factory/telemetry';
import type { RepositoryMetrics } from './repository';

/** What the handlers need of the schematic repository. */
export interface SchematicStorage {
  /** Canonical YAML of a stored schematic, or null when unknown. */
  get(id: string): Promise<string | null>;
  /** Stores a canonical schematic; false when it was already stored. */
  put(id: string, yaml: string): Promise<boolean>;
  /** Throws when the storage does not answer. */
  ping(): Promise<void>;
}

export interface SchematicMetrics {
  lookup(): void;
  created(): void;
  duplicateCreated(): void;
}

export interface SchematicHandlerDeps {
  storage: SchematicStorage;
  /** Storage backend named in the ping answer (`s3` or `local`). */
  storageKind: string;
  metrics: SchematicMetrics;
}

type SchematicJob = 'schematic.create' | 'schematic.get' | 'schematic.ping';
/** Assignable to the queue's `Handlers`; the handlers do not use the BullMQ job, so tests call them with a payload only. */
export type SchematicHandlers = { [K in SchematicJob]: (payload: PayloadOf<K>) => Promise<ResultOf<K>> };

export function schematicHandlers({ storage, storageKind, metrics }: SchematicHandlerDeps): SchematicHandlers {
  return {
    'schematic.create': async ({ body }) => {
      let schematic;
      try {
        schematic = parseSchematic(body);
      } catch (err) {
        // The parser's one-line message is the client's 400 body.
        if (err instanceof SchematicError) throw new FactoryError(400, err.message);
        throw err;
      }
      const yaml = canonicalYaml(schematic);
      const id = schematicId(schematic);
      const created = await withStorageFaults(() => storage.put(id, yaml));
      if (created) metrics.created();
      else metrics.duplicateCreated();
      return { id, yaml, created };
    },
    'schematic.get': async ({ id }) => {
      metrics.lookup();
      const yaml = await withStorageFaults(() => storage.get(id));
      if (yaml === null) throw new FactoryError(404, 'schematic not found');
      return { yaml };
    },
    'schematic.ping': async () => {
      await withStorageFaults(() => storage.ping());
      return { storage: storageKind };
    },
  };
}

/** The schematic-store's own metrics (handlers and repository cache), registered on `registry`. */
export function registerSchematicMetrics(registry: Registry): SchematicMetrics & RepositoryMetrics {
  const getTotal = new Counter({ name: 'image_factory_schematic_get_total', help: 'Schematic lookups', registers: [registry] });
  const createTotal = new Counter({ name: 'image_factory_schematic_create_total', help: 'Schematic creations', registers: [registry] });
  const duplicateTotal = new Counter({ name: 'image_factory_schematic_duplicate_create_total', help: 'Creations of an already stored schematic', registers: [registry] });
  const cacheSize = new Gauge({ name: 'image_factory_schematic_cache_size', help: 'Schematics in the in-memory cache', registers: [registry] });
  return {
    lookup: () => getTotal.inc(),
    created: () => createTotal.inc(),
    duplicateCreated: () => duplicateTotal.inc(),
    cacheSize: (n) => cacheSize.set(n),
  };
}
