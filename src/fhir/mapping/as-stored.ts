// The plan a create stored, without mapping the FHIR server's answer back (issue 18: that mapping was the
// costliest step of a create). When every resource came back exactly as it was sent, the server having added only
// its id, versionId, lastUpdated and a "#..." source, and having rewritten the urn:uuid references to the ids it
// gave, the stored plan is the plan that was mapped, with those ids. That rests on plan -> FHIR -> plan being the
// identity for plans that carry no foreign FHIR (test/fhir/mapping/mapping.test.ts); test/fhir/mapping/
// as-stored.test.ts holds this answer equal to the mapped-back one. Anything else (a plan with unmappedFhir, an
// update, an answer that differs from what was sent: HAPI re-encodes a narrative's XHTML) gives undefined, and
// the caller maps the answer back.
import type { Bundle, BundleEntry, Resource } from 'fhir/r4.js';
import type { SharedCarePlan } from '../../model/care-plan.js';
import { isPlainObject, jsonEqual } from './carry.js';

export interface PlanAsStored {
  plan: SharedCarePlan;
  version: string;
  /** The stored resources, CarePlan first, without the Provenance. */
  resources: Resource[];
}

export function planAsStored(
  plan: SharedCarePlan,
  request: Bundle,
  response: Bundle,
): PlanAsStored | undefined {
  if (plan.id !== undefined || carriesForeignFhir(plan)) return undefined;
  const sent = request.entry ?? [];
  const got = response.entry ?? [];
  if (sent.length < 1 || sent.length !== got.length) return undefined;
  const storedAs = new Map<string, string>();
  for (let i = 0; i < sent.length; i++) {
    const resource = got[i].resource;
    const fullUrl = sent[i].fullUrl;
    if (sent[i].request?.method !== 'POST' || !fullUrl?.startsWith('urn:uuid:')) return undefined;
    if (!resource?.id || resource.resourceType !== sent[i].resource?.resourceType) return undefined;
    storedAs.set(fullUrl, `${resource.resourceType}/${resource.id}`);
  }
  const resources: Resource[] = [];
  for (let i = 0; i < sent.length; i++) {
    const resource = got[i].resource as Resource;
    if (resource.resourceType === 'Provenance') continue;
    if (!storedAsSent(sent[i].resource as Resource, resource, storedAs)) return undefined;
    resources.push(resource);
  }
  const withIds = planWithStoredIds(plan, got);
  if (!withIds) return undefined;
  const carePlan = resources[0];
  const version = carePlan.meta?.versionId;
  const lastUpdated = carePlan.meta?.lastUpdated;
  return {
    plan: {
      ...withIds,
      ...(version ? { version } : {}),
      ...(lastUpdated ? { lastUpdated } : {}),
    },
    version: version ?? '',
    resources,
  };
}

/**
 * The plan with the ids the server gave, in the order planToTransaction writes the entries: the CarePlan, then
 * the goals, the care team, what matters, the preferences, the barriers and the strengths (contained parts, whose
 * ids start with "#", are not entries). Undefined if the entries do not line up with the parts.
 */
function planWithStoredIds(plan: SharedCarePlan, got: BundleEntry[]): SharedCarePlan | undefined {
  let next = 1;
  let aligned = got[0].resource?.resourceType === 'CarePlan';
  const stored = <T extends { id?: string }>(part: T, resourceType: string): T => {
    if (part.id !== undefined) return part;
    const resource = got[next++]?.resource;
    if (resource?.resourceType !== resourceType) aligned = false;
    const { id: _none, ...rest } = part;
    return { id: resource?.id, ...rest } as T;
  };
  const storedAll = <T extends { id?: string }>(parts: T[] | undefined, resourceType: string) =>
    parts ? { value: parts.map((part) => stored(part, resourceType)) } : undefined;
  const goals = storedAll(plan.goals, 'Goal');
  const careTeam = plan.careTeam && stored(plan.careTeam, 'CareTeam');
  const whatMatters = plan.whatMatters && stored(plan.whatMatters, 'Observation');
  const preferences = storedAll(plan.preferences, 'Observation');
  const barriers = storedAll(plan.barriers, 'Observation');
  const strengths = storedAll(plan.strengths, 'Condition');
  const provenanceIndex = got.length - 1;
  if (!aligned || next !== provenanceIndex || got[provenanceIndex].resource?.resourceType !== 'Provenance')
    return undefined;
  const { id: _none, ...rest } = plan;
  return {
    id: got[0].resource?.id,
    ...rest,
    ...(goals ? { goals: goals.value } : {}),
    ...(careTeam ? { careTeam } : {}),
    ...(whatMatters ? { whatMatters } : {}),
    ...(preferences ? { preferences: preferences.value } : {}),
    ...(barriers ? { barriers: barriers.value } : {}),
    ...(strengths ? { strengths: strengths.value } : {}),
  };
}

/** Foreign FHIR the plan carries (unmappedFhir), or a report of what was not taken: outside the identity above. */
function carriesForeignFhir(value: unknown): boolean {
  if (Array.isArray(value)) return value.some(carriesForeignFhir);
  if (!isPlainObject(value)) return false;
  for (const key in value) {
    if (key === 'unmappedFhir' || key === 'notTaken') return true;
    if (carriesForeignFhir(value[key])) return true;
  }
  return false;
}

/**
 * The stored resource is the sent one: equal but for the id and the server's meta stamps (versionId,
 * lastUpdated, a "#..." source), with every urn:uuid reference of the transaction turned into the id it got.
 */
function storedAsSent(sent: Resource, got: Resource, storedAs: ReadonlyMap<string, string>): boolean {
  const { id: _sentId, meta: sentMeta, ...sentRest } = sent;
  const { id: _gotId, meta: gotMeta, ...gotRest } = got;
  const { versionId: _v, lastUpdated: _l, source, ...gotOwnMeta } = gotMeta ?? {};
  const ownMeta = source === undefined || source.startsWith('#') ? gotOwnMeta : { ...gotOwnMeta, source };
  return jsonEqual(sentMeta ?? {}, ownMeta) && sameWithReferences(sentRest, gotRest, storedAs, '');
}

function sameWithReferences(
  sent: unknown,
  got: unknown,
  storedAs: ReadonlyMap<string, string>,
  key: string,
): boolean {
  if (sent === got) return true;
  if (typeof sent === 'string') return key === 'reference' && storedAs.get(sent) === got;
  if (Array.isArray(sent)) {
    if (!Array.isArray(got) || got.length !== sent.length) return false;
    for (let i = 0; i < sent.length; i++)
      if (!sameWithReferences(sent[i], got[i], storedAs, '')) return false;
    return true;
  }
  if (!isPlainObject(sent) || !isPlainObject(got)) return false;
  let keys = 0;
  for (const k in sent) {
    if (sent[k] === undefined) continue;
    keys++;
    if (!sameWithReferences(sent[k], got[k], storedAs, k)) return false;
  }
  for (const _k in got) keys--;
  return keys === 0;
}
