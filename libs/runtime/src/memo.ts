/**
 * Remembers the promise of a load under its key, so concurrent and later asks share one load; a failed load is
 * forgotten, so the next ask tries again. The cache decides how much is kept (a BoundedMap keeps it bounded).
 */
export function memoPromise<K, T>(cache: Map<K, Promise<T>>, key: K, load: () => Promise<T>): Promise<T> {
  let p = cache.get(key);
  if (!p) {
    p = load();
    cache.set(key, p);
    p.catch(() => {
      if (cache.get(key) === p) cache.delete(key);
    });
  }
  return p;
}
