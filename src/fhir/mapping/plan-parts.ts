// Which stored resources are parts of a plan. A CarePlan's goal, careTeam and supportingInfo may hold references
// the service wrote (its parts) and references carried from elsewhere (unmappedFhir, other systems). Only a
// resource that proves it is a part is taken as one: it carries the plan's own identifier, written by the service,
// and has the plan's subject. Anything else stays a reference: never mapped, returned, changed or deleted as a part
// (issue 12: a reference to another patient's Goal must not make it part of this plan). Pure: no I/O.
import type { CarePlan, Identifier, Reference, Resource } from 'fhir/r4.js';
import { parseLiteralReference } from '../fhir-id.js';
import { MANAGED_IDENTIFIER_SYSTEMS, SYSTEM } from './codes.js';

/**
 * Where a CarePlan points at its parts, which resource types the service writes there, and how many parts a slot
 * can hold: the schema's maxItems (schemas/care-plan.schema.json: 100 goals; one care team; what matters, 100
 * preferences, 100 barriers, 100 strengths). The mapping writes its parts first and carried references after
 * them, so only the first `max` references of a slot can be parts: a plan carrying thousands of references costs
 * no more reads than its own parts.
 */
export const PART_SLOTS: {
  element: 'goal' | 'careTeam' | 'supportingInfo';
  types: readonly string[];
  max: number;
}[] = [
  { element: 'goal', types: ['Goal'], max: 100 },
  { element: 'careTeam', types: ['CareTeam'], max: 1 },
  { element: 'supportingInfo', types: ['Observation', 'Condition'], max: 1 + 3 * 100 },
];

/** The plan's own identifier value (SYSTEM.planPart) on its CarePlan, if the service wrote one. */
export function planKeyOf(carePlan: CarePlan): string | undefined {
  return carePlan.identifier?.find((i) => i.system === SYSTEM.planPart)?.value;
}

/**
 * The references (Type/id) that may be parts of a CarePlan: in its goal, careTeam and supportingInfo, of the types
 * the service writes there, with a valid id. Candidates only: `ownParts` decides.
 */
export function partReferencesOf(carePlan: CarePlan): string[] {
  // A CarePlan the service did not write (no plan identifier) has no parts to look for.
  if (!planKeyOf(carePlan)) return [];
  const references: string[] = [];
  for (const { element, types, max } of PART_SLOTS) {
    for (const ref of ((carePlan[element] ?? []) as Reference[]).slice(0, max)) {
      const literal = parseLiteralReference(ref.reference);
      if (literal && types.includes(literal.type)) references.push(ref.reference as string);
    }
  }
  return references;
}

/** True when `resource` is a part the service wrote for `carePlan`: the plan's identifier and its subject. */
export function isPartOf(carePlan: CarePlan, resource: Resource | undefined): boolean {
  const key = planKeyOf(carePlan);
  const subject = carePlan.subject?.reference;
  if (!key || !subject || !resource) return false;
  const part = resource as Resource & { identifier?: Identifier[]; subject?: Reference };
  return (
    part.subject?.reference === subject &&
    !!part.identifier?.some((i) => i.system === SYSTEM.planPart && i.value === key)
  );
}

/** The subset of `found` (keyed by Type/id) that is provably the CarePlan's parts. */
export function ownParts(carePlan: CarePlan, found: ReadonlyMap<string, Resource>): Map<string, Resource> {
  const own = new Map<string, Resource>();
  for (const reference of partReferencesOf(carePlan)) {
    const resource = found.get(reference);
    if (resource && isPartOf(carePlan, resource)) own.set(reference, resource);
  }
  return own;
}

/** The identifiers only the service writes (plan membership, idempotency), from a stored resource. */
export function managedIdentifiers(resource: Resource): Identifier[] {
  const identifiers = (resource as { identifier?: Identifier[] }).identifier ?? [];
  return identifiers.filter((i) => MANAGED_IDENTIFIER_SYSTEMS.includes(i.system ?? ''));
}

/** A carried remainder without managed identifiers: a body can never claim a plan's or a request's identity. */
export function withoutManagedIdentifiers(
  carried: Record<string, unknown> | undefined,
): Record<string, unknown> | undefined {
  if (!carried || !Array.isArray(carried.identifier)) return carried;
  const identifier = (carried.identifier as Identifier[]).filter(
    (i) => !MANAGED_IDENTIFIER_SYSTEMS.includes(i?.system ?? ''),
  );
  const { identifier: _dropped, ...rest } = carried;
  return identifier.length ? { ...rest, identifier } : rest;
}
