/**
 * A Map that holds at most `limit` entries and forgets the oldest-inserted one first. Every in-process cache of the
 * factory (schematics, redirects, digests, manifest bytes) is one of these, so none can grow without bound.
 * Re-setting an existing key keeps its position (insertion order, not recency: the values cached are immutable).
 */
export class BoundedMap<K, V> extends Map<K, V> {
  constructor(readonly limit: number) {
    super();
    if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`BoundedMap limit must be a positive integer, got ${limit}`);
  }

  override set(key: K, value: V): this {
    if (this.size >= this.limit && !this.has(key)) this.delete(this.keys().next().value as K);
    return super.set(key, value);
  }
}
