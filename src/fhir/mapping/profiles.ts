// The profile claims the mapping writes: a built resource with its carried elements merged and its claim first.
import type { Resource } from 'fhir/r4.js';
import { mergeCarried } from './carry.js';
import { withoutManagedIdentifiers } from './plan-parts.js';

export function profiled<T extends Resource>(
  resource: T,
  profile: string | undefined,
  carried: Record<string, unknown> | undefined,
): T {
  const merged = mergeCarried(resource, withoutManagedIdentifiers(carried));
  if (!profile) return merged;
  const profiles = [profile, ...(merged.meta?.profile ?? []).filter((p) => p !== profile)];
  return { ...merged, meta: { ...merged.meta, profile: profiles } };
}
