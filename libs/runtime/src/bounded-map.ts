/**
 * A Map that holds at most `limit` entries and forgets the oldest-inserted one first. Every in-process cache of the
 * factory (schematics, redirects, digests, manifest bytes) is one of these, so none can grow without bound.
 * Re-setting an existing key keeps its position (insertion order, not recency: the values cached are immutable).
 * With a weight budget (e.g. bytes), the oldest entries are also forgotten while the total weight is above it — a
 * count alone does not bound memory when one value may be a megabyte — except the entry just set.
 */
export class BoundedMap<K, V> extends Map<K, V> {
  /** total weight of the values held (0 without a budget) */
  weight = 0;

  constructor(
    readonly limit: number,
    private readonly budget?: { maxWeight: number; weigh: (value: V) => number },
  ) {
    super();
    if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`BoundedMap limit must be a positive integer, got ${limit}`);
  }

  override set(key: K, value: V): this {
    if (this.size >= this.limit && !this.has(key)) this.delete(this.keys().next().value as K);
    if (!this.budget) return super.set(key, value);
    if (this.has(key)) this.weight -= this.budget.weigh(super.get(key) as V);
    super.set(key, value);
    this.weight += this.budget.weigh(value);
    for (const oldest of this.keys()) {
      if (this.weight <= this.budget.maxWeight || oldest === key) break;
      this.delete(oldest);
    }
    return this;
  }

  override delete(key: K): boolean {
    if (this.budget && this.has(key)) this.weight -= this.budget.weigh(super.get(key) as V);
    return super.delete(key);
  }

  override clear(): void {
    this.weight = 0;
    super.clear();
  }
}
