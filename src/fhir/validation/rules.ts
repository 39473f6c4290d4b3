/**
 * Hand-written FHIR rules that the official R4 JSON schema cannot express. Each rule cites its source.
 *
 * Sources:
 * - FHIR R4 (4.0.1): https://hl7.org/fhir/R4/ (resource pages, "Constraints" and "Terminology Bindings").
 * - US Core 6.1.0: https://hl7.org/fhir/us/core/STU6.1/ (profile pages, "Mandatory and Must Support").
 * - US Core 7.0.0: https://hl7.org/fhir/us/core/STU7/ (the preference profiles only).
 *
 * Rule ids reported:
 * - 'fhir-r4-cardinality'  a 1..1 primitive the schema can not require (it may come as `_x` instead of `x`)
 * - 'fhir-r4-binding'      a `code` outside a required value set the schema types only as `code`
 * - 'fhir-r4-date'         a date/dateTime/instant that has the right shape but is not a calendar date
 * - 'cpl-3', 'gol-1', 'ext-1', 'dom-2'   R4 invariants (ids as in the specification)
 * - 'us-core-careplan', 'us-core-goal', 'us-core-careteam', 'us-core-care-experience-preference',
 *   'us-core-treatment-intervention-preference', 'us-core-provenance'   US Core profile rules, outbound only,
 *   applied when meta.profile claims the profile unversioned or in the version the rule follows: 6.1.0, but
 *   7.0.0 for the two preference profiles (https://hl7.org/fhir/us/core/STU7/), which 6.1.0 does not have
 *
 * Paths are JSON pointers relative to the resource. A missing element is reported at the pointer where it
 * would be (e.g. /extension/0/url); an invariant at the element that carries it (e.g. /activity/2).
 */
import { BASE_RULES } from './base-rules.js';
import { walk } from './element-walk.js';
import type { IssueCount, Json, ReportFn, ValidationMode } from './rule-kit.js';
import { claims, PROFILE_RULES, PROFILE_VERSION } from './us-core-rules.js';

export type { IssueCount, ReportFn, ValidationMode } from './rule-kit.js';
export { escapePointer } from './rule-kit.js';
export { US_CORE_VERSION } from './us-core-rules.js';
export { REQUIRED_VALUE_SETS } from './value-sets.js';

// ---------------------------------------------------------------------------------------------------------

/**
 * Applies every hand-written rule to one resource (not to the resources nested in it: the caller
 * dispatches those). `contained` is true for a resource inside another resource's contained[].
 * `elementsDecided`: a generated decider accepted the resource, and with it the walk's rules (dates, extensions,
 * depth: element-walk.ts), which are then not walked again.
 */
export function checkResourceRules(
  resource: Json,
  resourceType: string,
  mode: ValidationMode,
  contained: boolean,
  report: ReportFn,
  count: IssueCount = { full: false, omitted: 0 },
  elementsDecided = false,
): void {
  // dom-2: "If the resource is contained in another resource, it SHALL NOT contain nested Resources"
  // (https://hl7.org/fhir/R4/domainresource.html#invs)
  if (contained && Array.isArray(resource.contained) && resource.contained.length > 0) {
    report('/contained', 'dom-2: a contained resource SHALL NOT contain nested resources', 'dom-2');
  }
  if (!elementsDecided) walk(resource, [], report, 0, count);
  BASE_RULES[resourceType]?.(resource, report);
  if (mode === 'outbound') {
    const profiles = PROFILE_RULES[resourceType];
    if (profiles)
      for (const [profile, check] of profiles)
        if (claims(resource, profile, PROFILE_VERSION[profile])) check(resource, report);
  }
}
