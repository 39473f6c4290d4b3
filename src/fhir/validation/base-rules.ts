// Base R4 rules per resource type that the official JSON schema cannot express.
import { asArray, hasChoice, isObject, type Json, type ReportFn, requirePrimitive } from './rule-kit.js';
import {
  CONDITION_CLINICAL_SYSTEM,
  CONDITION_VER_STATUS_SYSTEM,
  checkCode,
  checkCodingsOfSystem,
} from './value-sets.js';

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

export const BASE_RULES: Record<string, (r: Json, report: ReportFn) => void> = {
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
