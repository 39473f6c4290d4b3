// US Core profile rules (outbound only, when meta.profile claims the profile).
import { asArray, hasChoice, hasPrimitive, isObject, type Json, type ReportFn } from './rule-kit.js';

const US_CORE_SD = 'http://hl7.org/fhir/us/core/StructureDefinition/';
/** The default US Core version the service claims (US_CORE_VERSION, config.ts). */
export const US_CORE_VERSION = '6.1.0';
/** The US Core versions whose rules below are written (the service claims one of them, US_CORE_VERSION). */
const RULE_VERSIONS = ['6.1.0', '7.0.0'] as const;

/**
 * True when meta.profile claims `us-core-<name>` unversioned or `|<version>` of a version the rules follow
 * (6.1.0 and 7.0.0: the rules below are the same in both, see each rule; 7.0.0 only for the preferences, which
 * 6.1.0 does not have). Other versions may differ and are not checked here.
 */
export function claims(r: Json, name: string, versions: readonly string[] = RULE_VERSIONS): boolean {
  const meta = r.meta;
  if (!isObject(meta) || !Array.isArray(meta.profile)) return false;
  const url = US_CORE_SD + name;
  for (const p of meta.profile) if (p === url || versions.some((v) => p === `${url}|${v}`)) return true;
  return false;
}

const hasCoding = (cc: unknown, system: string, code: string): boolean =>
  isObject(cc) && asArray(cc.coding).some((c) => isObject(c) && c.system === system && c.code === code);

/**
 * US Core CarePlan 6.1.0 (https://hl7.org/fhir/us/core/STU6.1/StructureDefinition-us-core-careplan.html; the same in
 * 7.0.0, https://hl7.org/fhir/us/core/STU7/StructureDefinition-us-core-careplan.html):
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
 * US Core Goal 6.1.0 (https://hl7.org/fhir/us/core/STU6.1/StructureDefinition-us-core-goal.html; 7.0.0 adds no
 * cardinality, https://hl7.org/fhir/us/core/STU7/StructureDefinition-us-core-goal.html):
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
 * US Core CareTeam 6.1.0 (https://hl7.org/fhir/us/core/STU6.1/StructureDefinition-us-core-careteam.html; the same in
 * 7.0.0, https://hl7.org/fhir/us/core/STU7/StructureDefinition-us-core-careteam.html):
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
 * US Core Provenance 6.1.0 (https://hl7.org/fhir/us/core/STU6.1/StructureDefinition-us-core-provenance.html; the same
 * in 7.0.0, https://hl7.org/fhir/us/core/STU7/StructureDefinition-us-core-provenance.html):
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

/** The US Core versions of a profile rule, where they are not RULE_VERSIONS. */
export const PROFILE_VERSION: Record<string, readonly string[]> = {
  'us-core-care-experience-preference': ['7.0.0'],
  'us-core-treatment-intervention-preference': ['7.0.0'],
};

export const PROFILE_RULES: Record<
  string,
  Array<[profile: string, check: (r: Json, report: ReportFn) => void]>
> = {
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
