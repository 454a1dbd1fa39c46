/**
 * Values built once and shared: a bounded memo, and deep freezing for what several readers share.
 */

/** The value for `key`, built on first use; the map is cleared when it reaches `max` entries. */
export function memo<K, V>(map: Map<K, V>, max: number, key: K, build: () => V): V {
  if (map.has(key)) return map.get(key) as V;
  const value = build();
  if (map.size >= max) map.clear();
  map.set(key, value);
  return value;
}

/** Freeze an object and everything in it (a shared value must never change under its readers). */
export function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object' && !Object.isFrozen(o)) {
    Object.freeze(o);
    for (const v of Object.values(o)) deepFreeze(v);
  }
  return o;
}
