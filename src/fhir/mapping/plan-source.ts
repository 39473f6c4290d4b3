// Where a plan's FHIR comes from: the CarePlan to map (alone, or picked from a Bundle) and how its references resolve.
import type { Bundle, CarePlan, Resource } from 'fhir/r4.js';
import { isPlainObject } from './carry.js';

/** A CarePlan and a way to find the resources it references. */
export interface FhirPlanSource {
  carePlan: CarePlan;
  /** Finds a referenced resource: contained (#id), in the same Bundle, or read from the server. */
  resolve(reference: string): Resource | undefined;
  /** The input's other resources (Bundle entries besides the CarePlan), to report those the plan does not take. */
  others?: { pointer: string; resource: Resource }[];
  /** Told of every resolved resource the mapping takes as a part of the plan. */
  taken?(resource: Resource): void;
}

export class PlanSourceError extends Error {
  constructor(
    message: string,
    readonly carePlans: string[] = [],
  ) {
    super(message);
  }
}

/** The CarePlan to map from a CarePlan (with contained resources) or a Bundle holding one or more. */
export function planSourceFromFhir(input: Resource, carePlanId?: string): FhirPlanSource {
  if (input.resourceType === 'CarePlan') {
    const carePlan = input as CarePlan;
    if (carePlanId && carePlan.id !== carePlanId) {
      throw new PlanSourceError(`the CarePlan's id is not "${carePlanId}"`);
    }
    return { carePlan, resolve: resolverFor(carePlan, new Map()) };
  }
  if (input.resourceType !== 'Bundle') {
    throw new PlanSourceError(`expected a CarePlan or a Bundle, got ${input.resourceType}`);
  }
  const bundle = resolveBundleReferences(input as Bundle);
  const index = new Map<string, Resource>();
  const carePlans: { key: string; carePlan: CarePlan; fullUrl?: string }[] = [];
  for (const entry of bundle.entry ?? []) {
    const resource = entry.resource;
    if (!resource) continue;
    if (entry.fullUrl) index.set(entry.fullUrl, resource);
    if (resource.id) index.set(`${resource.resourceType}/${resource.id}`, resource);
    if (resource.resourceType === 'CarePlan') {
      carePlans.push({
        key: resource.id ?? entry.fullUrl ?? '',
        carePlan: resource as CarePlan,
        fullUrl: entry.fullUrl,
      });
    }
  }
  const names = carePlans.map((c) => c.key);
  const chosen = carePlanId
    ? carePlans.filter((c) => c.carePlan.id === carePlanId || c.fullUrl === carePlanId)
    : carePlans;
  if (chosen.length === 0) {
    throw new PlanSourceError(
      carePlanId ? `the Bundle holds no CarePlan "${carePlanId}"` : 'the Bundle holds no CarePlan',
      names,
    );
  }
  if (chosen.length > 1) {
    throw new PlanSourceError(
      'the Bundle holds several CarePlans: name the one wanted with ?carePlan=<id>',
      names,
    );
  }
  const carePlan = chosen[0].carePlan;
  const others = (bundle.entry ?? []).flatMap((entry, i) =>
    entry.resource && entry.resource !== carePlan
      ? [{ pointer: `/entry/${i}/resource`, resource: entry.resource }]
      : [],
  );
  return { carePlan, resolve: resolverFor(carePlan, index), others };
}

/**
 * A copy of a Bundle in which references to entries by fullUrl (e.g. urn:uuid:...) whose resource has an id
 * become relative references (Type/id), as a server resolves them; other references stay as they are.
 */
export function resolveBundleReferences(bundle: Bundle): Bundle {
  const byFullUrl = new Map<string, string>();
  for (const entry of bundle.entry ?? []) {
    if (entry.fullUrl && entry.resource?.id) {
      byFullUrl.set(entry.fullUrl, `${entry.resource.resourceType}/${entry.resource.id}`);
    }
  }
  if (byFullUrl.size === 0) return bundle;
  const rewrite = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(rewrite);
    if (!isPlainObject(value)) return value;
    const result: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) {
      result[key] =
        key === 'reference' && typeof item === 'string' && byFullUrl.has(item)
          ? byFullUrl.get(item)
          : rewrite(item);
    }
    return result;
  };
  return {
    ...bundle,
    entry: bundle.entry?.map((entry) => ({ ...entry, resource: rewrite(entry.resource) as Resource })),
  };
}

const RELATIVE_REFERENCE = /([A-Z][A-Za-z]+\/[A-Za-z0-9\-.]{1,64})(\/_history\/.*)?$/;

/**
 * Resolves the references of a CarePlan: contained ones (#id) in the CarePlan, others in `index` (keyed by
 * fullUrl and by Type/id), also when written as an absolute or versioned URL.
 */
export function resolverFor(carePlan: CarePlan, index: ReadonlyMap<string, Resource>) {
  return (reference: string): Resource | undefined => {
    if (reference.startsWith('#')) return carePlan.contained?.find((r) => r.id === reference.slice(1));
    const direct = index.get(reference);
    if (direct) return direct;
    const relative = RELATIVE_REFERENCE.exec(reference);
    return relative ? index.get(relative[1]) : undefined;
  };
}
