// The profile claims the mapping writes: a built resource with its carried elements merged and its claim first.
import type { Resource } from 'fhir/r4.js';
import { mergeCarried } from './carry.js';
import { withoutManagedIdentifiers } from './plan-parts.js';

/** `resource` is one the caller has just built and owns: its meta is set in place (no copy of the resource). */
export function profiled<T extends Resource>(
  resource: T,
  profile: string | undefined,
  carried: Record<string, unknown> | undefined,
): T {
  const merged = mergeCarried(resource, withoutManagedIdentifiers(carried));
  if (!profile) return merged;
  const profiles = [profile, ...(merged.meta?.profile ?? []).filter((p) => p !== profile)];
  // `merged` is `resource` or mergeCarried's copy of it, never a carried object; the key order is a spread's
  merged.meta = { ...merged.meta, profile: profiles };
  return merged;
}
