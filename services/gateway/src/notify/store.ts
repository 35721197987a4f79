/**
 * Durable records of pre-warm and webhooks, in the object store beside schematics.
 *
 * Why the object store and not Redis: it is where the factory keeps what it must not lose (schematics, assets and
 * their signatures); Redis holds queues and operational state that may be rebuilt (rate-limit windows, access
 * times) and may be a cache without persistence in a cluster (an external Redis). A registration lost with Redis would
 * silently stop notifications. What may be lost is kept in Redis (see DeliveryLog).
 *
 * Layout (never under `assets/`: the storage budget and the integrity scrub do not see these):
 *   notify/prewarm/<schematic>.json          {schematic, assets, updatedAt}
 *   notify/webhooks/<id>.json                the hook, with its secret
 *   notify/webhook-scope/<schematic|all>/<id> empty: the index of the hooks for one schematic (or for all)
 * Nothing is written here until a client registers something (the versions the check has seen are in Redis: see
 * Notifier.checkVersions).
 */
import type { ObjectStore } from '@factory/storage';
import type { WebhookEvent, WebhookSpec } from '@factory/config';

export interface PrewarmSet {
  schematic: string;
  assets: string[];
  updatedAt: string;
}

export interface StoredWebhook extends WebhookSpec {
  id: string;
  createdAt: string;
}

const RECORD_BYTES = 64 * 1024;
const ALL = 'all';
const JSON_TYPE = 'application/json';

export class NotifyStore {
  constructor(private readonly store: ObjectStore) {}

  private async read<T>(key: string): Promise<T | undefined> {
    const buf = await this.store.getBuffer(key, RECORD_BYTES);
    return buf ? (JSON.parse(buf.toString('utf8')) as T) : undefined;
  }

  private async write(key: string, value: unknown): Promise<void> {
    await this.store.put(key, Buffer.from(JSON.stringify(value)), { contentType: JSON_TYPE });
  }

  // --- pre-warm ---------------------------------------------------------------------------------------------------
  getPrewarm(schematic: string): Promise<PrewarmSet | undefined> {
    return this.read(`notify/prewarm/${schematic}.json`);
  }

  putPrewarm(set: PrewarmSet): Promise<void> {
    return this.write(`notify/prewarm/${set.schematic}.json`, set);
  }

  deletePrewarm(schematic: string): Promise<void> {
    return this.store.delete(`notify/prewarm/${schematic}.json`);
  }

  async listPrewarm(): Promise<PrewarmSet[]> {
    const sets: PrewarmSet[] = [];
    for await (const info of this.store.list('notify/prewarm/')) {
      const set = await this.read<PrewarmSet>(info.key);
      if (set) sets.push(set);
    }
    return sets;
  }

  // --- webhooks ---------------------------------------------------------------------------------------------------
  getWebhook(id: string): Promise<StoredWebhook | undefined> {
    return this.read(`notify/webhooks/${id}.json`);
  }

  /** The record first, then its index entry: an index entry always names a record (a crash leaves an unlisted one). */
  async putWebhook(hook: StoredWebhook): Promise<void> {
    await this.write(`notify/webhooks/${hook.id}.json`, hook);
    await this.store.put(`notify/webhook-scope/${hook.schematic ?? ALL}/${hook.id}`, Buffer.alloc(0));
  }

  async deleteWebhook(hook: StoredWebhook): Promise<void> {
    await this.store.delete(`notify/webhook-scope/${hook.schematic ?? ALL}/${hook.id}`);
    await this.store.delete(`notify/webhooks/${hook.id}.json`);
  }

  /** IDs of the hooks registered for `schematic` (undefined: those registered for all schematics). */
  async webhookIds(schematic: string | undefined): Promise<string[]> {
    const prefix = `notify/webhook-scope/${schematic ?? ALL}/`;
    const ids: string[] = [];
    for await (const info of this.store.list(prefix)) ids.push(info.key.slice(prefix.length));
    return ids;
  }

  /** The registered hooks an event reaches: those for its schematic and those for all (every hook when none given). */
  async webhooksFor(event: WebhookEvent, schematic: string | undefined): Promise<StoredWebhook[]> {
    const ids =
      schematic === undefined
        ? await (async () => {
            const all: string[] = [];
            for await (const info of this.store.list('notify/webhooks/')) all.push(info.key.slice('notify/webhooks/'.length).replace(/\.json$/, ''));
            return all;
          })()
        : [...(await this.webhookIds(schematic)), ...(await this.webhookIds(undefined))];
    const hooks = await Promise.all(ids.map((id) => this.getWebhook(id)));
    return hooks.filter((h): h is StoredWebhook => !!h && h.events.includes(event));
  }
}
