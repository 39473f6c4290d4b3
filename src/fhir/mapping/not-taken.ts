// What $from-fhir did not take: every resource of the input besides the CarePlan that the plan does not hold as a
// part, with why, so that nothing is dropped silently. Pure: no I/O.
import type { CarePlan, Reference, Resource } from 'fhir/r4.js';
import type { NotTaken, SharedCarePlan } from '../../model/care-plan.js';
import type { UsCoreVersion } from './codes.js';
import { planFromFhir } from './from-fhir.js';
import type { FhirPlanSource } from './plan-source.js';

const PART_TYPES = new Set(['Goal', 'CareTeam', 'Observation', 'Condition']);

/**
 * The plan, and the input resources it does not take. A Goal, CareTeam, Observation or Condition the CarePlan does
 * not reference is not taken, also when it is about the same patient: a plan holds only the parts its CarePlan names
 * (the CarePlan's author decided what belongs to it), and a reference the plan keeps (unmappedFhir) to a resource it
 * cannot hold as a part (an Observation that is no what-matters, preference or barrier, ...) stays a reference.
 */
export function planFromFhirWithReport(
  source: FhirPlanSource,
  usCoreVersion?: UsCoreVersion,
): { plan: SharedCarePlan; notTaken: NotTaken[] } {
  const taken = new Set<Resource>();
  const referenced = new Set<Resource>();
  const tracked: FhirPlanSource = {
    ...source,
    resolve: (reference) => {
      const resource = source.resolve(reference);
      if (resource) referenced.add(resource);
      return resource;
    },
    taken: (resource) => taken.add(resource),
  };
  const plan = planFromFhir(tracked, usCoreVersion);
  // References the mapping did not follow (activities, addresses, ...) still make a resource referenced.
  for (const reference of referencesIn(source.carePlan)) {
    const resource = source.resolve(reference);
    if (resource) referenced.add(resource);
  }
  const notTaken: NotTaken[] = [];
  for (const { pointer, resource } of source.others ?? []) {
    if (taken.has(resource)) continue;
    notTaken.push({ pointer, resource: label(resource), ...why(resource, referenced.has(resource)) });
  }
  return { plan, notTaken };
}

function why(resource: Resource, referenced: boolean): Pick<NotTaken, 'reason' | 'detail'> {
  if (resource.resourceType === 'CarePlan') {
    return {
      reason: 'other-care-plan',
      detail: 'another CarePlan of the Bundle: map it with ?carePlan=<its id or fullUrl>',
    };
  }
  if (referenced) {
    return {
      reason: 'kept-as-reference',
      detail: PART_TYPES.has(resource.resourceType)
        ? `the CarePlan references this ${resource.resourceType}, but it is none of the parts a plan holds (or not exactly as the plan can hold it): the reference is kept in unmappedFhir, the resource is not`
        : `the CarePlan references this ${resource.resourceType}: the plan keeps the reference, never the resource`,
    };
  }
  return {
    reason: 'not-referenced',
    detail: PART_TYPES.has(resource.resourceType)
      ? `the CarePlan does not reference this ${resource.resourceType}: a plan holds only the parts its CarePlan references, also of the same patient`
      : `the CarePlan does not reference this ${resource.resourceType}`,
  };
}

function label(resource: Resource): string {
  return resource.id ? `${resource.resourceType}/${resource.id}` : resource.resourceType;
}

/** Every literal reference in a CarePlan (outside its contained resources). */
function referencesIn(carePlan: CarePlan): string[] {
  const found: string[] = [];
  const visit = (value: unknown, depth: number): void => {
    if (depth > 64 || value === null || typeof value !== 'object') return;
    if (Array.isArray(value)) {
      for (const item of value) visit(item, depth + 1);
      return;
    }
    for (const [key, item] of Object.entries(value)) {
      if (key === 'contained') continue;
      if (key === 'reference' && typeof item === 'string') found.push(item);
      else visit(item, depth + 1);
    }
  };
  visit(carePlan as unknown as Reference, 0);
  return found;
}
