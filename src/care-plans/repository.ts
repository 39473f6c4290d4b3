// The plans as the FHIR server stores them: read one (its CarePlan and the parts it references), read many,
// write a transaction, and turn a transaction's answer into the stored plan. All FHIR traffic of the care plan
// use cases passes here, through the gateway; FHIR server errors pass through as FhirServerError.
import type { Bundle, BundleEntry, CarePlan, Resource } from 'fhir/r4.js';
import { type CallContext, type FhirGateway, FhirServerError } from '../fhir/client/gateway.js';
import { planAsStored } from '../fhir/mapping/as-stored.js';
import { DEFAULT_US_CORE_VERSION, type UsCoreVersion } from '../fhir/mapping/codes.js';
import { planFromFhir, resolverFor } from '../fhir/mapping/from-fhir.js';
import { ownParts, partReferencesOf } from '../fhir/mapping/plan-parts.js';
import type { SharedCarePlan } from '../model/care-plan.js';
import type { StoredPlan } from './types.js';

export class PlanRepository {
  /** `usCoreVersion`: the version of the service's own profile claims, which reading takes as its own. */
  constructor(
    private readonly gateway: FhirGateway,
    private readonly usCoreVersion: UsCoreVersion = DEFAULT_US_CORE_VERSION,
  ) {}

  /** The FHIR server's base URL (where PUT entries of a transaction point). */
  get baseUrl(): string {
    return this.gateway.baseUrl;
  }

  /**
   * A stored plan by its CarePlan id. `admit` sees the CarePlan first and may refuse it (by throwing) before any
   * part is read.
   */
  async read(id: string, context: CallContext, admit: (carePlan: CarePlan) => void = () => {}) {
    const { resource: carePlan } = await this.gateway.read<CarePlan>('CarePlan', id, context);
    admit(carePlan);
    const found = await this.gateway.readMany(partReferencesOf(carePlan), context);
    return this.storedFrom(carePlan, found);
  }

  /** One resource by type and id (a person the caller's token names). */
  async readResource<T extends Resource>(type: string, id: string, context: CallContext): Promise<T> {
    return (await this.gateway.read<T>(type, id, context)).resource;
  }

  /** The stored plans of several CarePlans, their parts read in one batch. */
  async readMany(carePlans: CarePlan[], context: CallContext): Promise<StoredPlan[]> {
    const found = await this.gateway.readMany(carePlans.flatMap(partReferencesOf), context);
    return carePlans.map((carePlan) => this.storedFrom(carePlan, found));
  }

  /** Sends a transaction; `idempotent`: it may be retried (it is conditional all through). */
  transaction(bundle: Bundle, context: CallContext, idempotent: boolean): Promise<Bundle> {
    return this.gateway.transaction(bundle, { ...context, idempotent });
  }

  search(
    resourceType: 'CarePlan' | 'Provenance',
    params: Record<string, string>,
    context: CallContext,
  ): Promise<Bundle> {
    return this.gateway.search(resourceType, params, context);
  }

  /** The versions of a CarePlan, as the FHIR server's instance history gives them. */
  history(id: string, context: CallContext): Promise<Bundle> {
    return this.gateway.history('CarePlan', id, context);
  }

  /**
   * A stored plan from its CarePlan and the resources it references (found by Type/id). Only the resources that
   * prove they are the plan's parts are used; every other reference stays a reference (carried, never resolved).
   */
  storedFrom(carePlan: CarePlan, found: ReadonlyMap<string, Resource>): StoredPlan {
    const parts = ownParts(carePlan, found);
    return stored(carePlan, parts, [carePlan, ...parts.values()], this.usCoreVersion);
  }

  /**
   * The stored plan, from the transaction's answer (no second round trip). `created`: the plan a create mapped to
   * the request; when the server stored exactly that, it is the answer (as-stored.ts), else the answer is mapped.
   */
  planFromTransaction(
    request: Bundle,
    response: Bundle,
    previous: Resource[] = [],
    created?: SharedCarePlan,
  ): StoredPlan {
    const asStored = created && !previous.length ? planAsStored(created, request, response) : undefined;
    if (asStored) return asStored;
    const byReference = new Map<string, Resource>();
    for (const resource of previous) byReference.set(`${resource.resourceType}/${resource.id}`, resource);
    const resources: Resource[] = [];
    (response.entry ?? []).forEach((entry: BundleEntry, index: number) => {
      const resource = entry.resource;
      if (!resource || resource.resourceType === 'Provenance') return;
      resources.push(resource);
      const requested = request.entry?.[index];
      if (requested?.fullUrl) byReference.set(requested.fullUrl, resource);
      if (resource.id) byReference.set(`${resource.resourceType}/${resource.id}`, resource);
    });
    const carePlan = resources.find((r) => r.resourceType === 'CarePlan') as CarePlan | undefined;
    if (!carePlan?.id) {
      throw new FhirServerError('upstream', 'the FHIR server did not return the stored CarePlan');
    }
    return stored(carePlan, ownParts(carePlan, byReference), resources, this.usCoreVersion);
  }
}

function stored(
  carePlan: CarePlan,
  byReference: ReadonlyMap<string, Resource>,
  resources: Resource[],
  usCoreVersion: UsCoreVersion,
): StoredPlan {
  const lookup = resolverFor(carePlan, byReference);
  const resolve = (reference: string) => {
    const found = lookup(reference);
    return found && withoutServerStamp(found);
  };
  const plan = planFromFhir({ carePlan: withoutServerStamp(carePlan), resolve }, usCoreVersion);
  return { plan, version: carePlan.meta?.versionId ?? '', resources };
}

/**
 * Without the meta.source "#<request id>" a server stamps on every write (HAPI does): like versionId, it is the
 * server's, not the plan's. Only applied to what the service reads back from its own FHIR server.
 */
function withoutServerStamp<T extends Resource>(resource: T): T {
  const source = resource.meta?.source;
  if (!source?.startsWith('#')) return resource;
  const { source: _source, ...meta } = resource.meta ?? {};
  return { ...resource, meta };
}

/**
 * The resources of a stored plan as a FHIR Bundle (collection). `fullUrl`s use the FHIR server's public base URL;
 * without one (the embedded server, whose loopback address means nothing to a caller) entries have none.
 */
export function planResourcesBundle(stored: StoredPlan, publicBaseUrl: string | undefined): Bundle {
  const base = publicBaseUrl?.replace(/\/+$/, '');
  return {
    resourceType: 'Bundle',
    type: 'collection',
    entry: stored.resources.map((resource) => ({
      ...(base ? { fullUrl: `${base}/${resource.resourceType}/${resource.id}` } : {}),
      resource,
    })),
  };
}
