// Every URL, system and code the mapping emits, in one place, each with where it comes from.
import type { CareTeamMember } from '../../model/care-plan.js';

/** The one canonical base for this project's own definitions. Never changes once released. */
export const CANONICAL_BASE = 'https://shared-care-plans.org/fhir';

export const SYSTEM = {
  snomed: 'http://snomed.info/sct',
  loinc: 'http://loinc.org',
  ucum: 'http://unitsofmeasure.org',
  goalPriority: 'http://terminology.hl7.org/CodeSystem/goal-priority',
  goalAchievement: 'http://terminology.hl7.org/CodeSystem/goal-achievement',
  observationCategory: 'http://terminology.hl7.org/CodeSystem/observation-category',
  conditionCategory: 'http://terminology.hl7.org/CodeSystem/condition-category',
  conditionClinical: 'http://terminology.hl7.org/CodeSystem/condition-clinical',
  usCoreCarePlanCategory: 'http://hl7.org/fhir/us/core/CodeSystem/careplan-category',
  usCoreConditionCategory: 'http://hl7.org/fhir/us/core/CodeSystem/condition-category',
  // SDOH Clinical Care 3.0.0 temporary codes (IG source input/fsh/codesystems/SDOHCCCodeSystemTemporaryCodes.fsh),
  // incl. the protective-factor category for strengths (a category code there, line 36; not in SDOHCC 2.x).
  sdohTemporaryCodes: 'http://hl7.org/fhir/us/sdoh-clinicalcare/CodeSystem/SDOHCC-CodeSystemTemporaryCodes',
  // Person-Centered Outcomes 1.0.0 concepts, incl. the what-matters category (PCO IG source
  // input/fsh/PCOTerminology.fsh: CodeSystem PCOConcepts, Id pco-concepts-temporary, canonical http://hl7.org/fhir/us/pco).
  pcoConcepts: 'http://hl7.org/fhir/us/pco/CodeSystem/pco-concepts-temporary',
  /**
   * PCO 1.0.0 personal health inventory (WhatMattersTerminology.fsh): it has no what-matters code. Earlier versions
   * of this service sent the what-matters category in it; only read, never written.
   */
  pcoPersonalHealthInventory: 'http://hl7.org/fhir/us/pco/CodeSystem/personal-health-inventory-temporary',
  careTeamRole: `${CANONICAL_BASE}/CodeSystem/care-team-role`,
  barrierCategory: `${CANONICAL_BASE}/CodeSystem/barrier-category`,
  whatMattersComponent: `${CANONICAL_BASE}/CodeSystem/what-matters`,
  /** Identifies a CarePlan created through POST /care-plans with an Idempotency-Key (see idempotency). */
  idempotencyKey: `${CANONICAL_BASE}/sid/idempotency-key`,
  /** A hash of the request that created the CarePlan, to tell a replay from a reused key. */
  idempotencyRequest: `${CANONICAL_BASE}/sid/idempotency-request`,
  /** Names a goal inside its plan so activities, barriers and strengths can link to it. */
  goalKey: `${CANONICAL_BASE}/sid/goal-key`,
  /**
   * The service's own identifier of a plan: on its CarePlan and on every resource the service wrote as a part of
   * it. A resource is read, changed or deleted as a part of a plan only when it carries this identifier with the
   * plan's value (and the plan's subject): a reference alone proves nothing (issue 12).
   */
  planPart: `${CANONICAL_BASE}/sid/care-plan`,
} as const;

/** The US Core versions the service can claim (US_CORE_VERSION); 6.1.0, the version most certified systems support, by default. */
export const US_CORE_VERSIONS = ['6.1.0', '7.0.0'] as const;
export type UsCoreVersion = (typeof US_CORE_VERSIONS)[number];
export const DEFAULT_US_CORE_VERSION: UsCoreVersion = '6.1.0';

export interface UsCoreProfiles {
  carePlan: string;
  goal: string;
  careTeam: string;
  provenance: string;
  careExperiencePreference?: string;
  treatmentInterventionPreference?: string;
}

/**
 * The profiles claimed at one US Core version, each of which exists in that version's package
 * (hl7.fhir.us.core-6.1.0 / -7.0.0, StructureDefinition-<id>.json). The preference profiles
 * (us-core-care-experience-preference, us-core-treatment-intervention-preference) first appear in 7.0.0, so at
 * 6.1.0 a preference Observation claims none.
 */
export function usCoreProfiles(version: UsCoreVersion = DEFAULT_US_CORE_VERSION): UsCoreProfiles {
  const profile = (id: string) => `http://hl7.org/fhir/us/core/StructureDefinition/${id}|${version}`;
  return {
    carePlan: profile('us-core-careplan'),
    goal: profile('us-core-goal'),
    careTeam: profile('us-core-careteam'),
    provenance: profile('us-core-provenance'),
    ...(version === '6.1.0'
      ? {}
      : {
          careExperiencePreference: profile('us-core-care-experience-preference'),
          treatmentInterventionPreference: profile('us-core-treatment-intervention-preference'),
        }),
  };
}

/** The profiles of the default version (6.1.0). */
export const PROFILE = usCoreProfiles();

export const EXTENSION = {
  // FHIR core extensions (hl7.fhir.r4.core / extensions pack), used by MCC eCare Plan for goal agreement.
  goalAcceptance: 'http://hl7.org/fhir/StructureDefinition/goal-acceptance',
  pertainsToGoal: 'http://hl7.org/fhir/StructureDefinition/resource-pertainsToGoal',
  /** This project's extension for shared decisions: schemas/StructureDefinition-shared-decision.json */
  sharedDecision: `${CANONICAL_BASE}/StructureDefinition/shared-decision`,
  /**
   * A value that changes with every write of a plan, so the CarePlan gets a new version whenever any part of the
   * plan changes, also on servers that skip no-op updates (the plan's ETag covers its Goals, CareTeam, ...).
   */
  planRevision: `${CANONICAL_BASE}/StructureDefinition/plan-revision`,
  /**
   * Who recorded a goal, or a person's agreement with it, when, and the note given with an agreement
   * (schemas/fhir/StructureDefinition-contribution.json): goal-acceptance has no place for these.
   */
  contribution: `${CANONICAL_BASE}/StructureDefinition/contribution`,
  /**
   * A profile a resource claimed when the service read it, kept but no longer claimed (on meta): the service claims
   * only the profiles it checks. schemas/fhir/StructureDefinition-source-profile-claim.json
   */
  sourceProfileClaim: `${CANONICAL_BASE}/StructureDefinition/source-profile-claim`,
} as const;

/** LOINC codes of the US Core 7.0.0 preference Observation profiles (fixed codes there). */
export const PREFERENCE_CODE = {
  'care-experience': { system: SYSTEM.loinc, code: '95541-9', display: 'Care experience preference' },
  'treatment-intervention': {
    system: SYSTEM.loinc,
    code: '75773-2',
    display: 'Goals, preferences, and priorities for medical treatment [Reported]',
  },
} as const;

/**
 * The code of a barrier Observation: SNOMED CT 811791000000103 with the display the PCO 1.0.0 IG source gives it,
 * "Identifying barriers to goal achievement" (input/fsh/PCOGoalBarrier.fsh, ValueSet GoalBarrierCodes; the same in
 * GASExamples.fsh). The Observation claims no PCO profile: the Goal Barrier profile (pco-goal-barrier, parent US
 * Core Simple Observation) requires category[us-core] = survey and other US Core Simple Observation elements that a
 * barrier here does not have, so the service follows PCO's code only and says so by claiming nothing.
 */
export const BARRIER_CODE = {
  system: SYSTEM.snomed,
  code: '811791000000103',
  display: 'Identifying barriers to goal achievement',
} as const;

/** The barrier code as earlier versions of this service wrote it (a display PCO does not give): read, never written. */
export const LEGACY_BARRIER_CODE = {
  system: SYSTEM.snomed,
  code: '811791000000103',
  display: 'Barrier to goal',
} as const;

/**
 * PCO "what matters" category on the what-matters assessment Observation: PCOConcepts#what-matters "What Matters"
 * (PCO 1.0.0 PCOTerminology.fsh; used as category[pco] in WhatMattersProfiles.fsh / GASExamples.fsh).
 */
export const WHAT_MATTERS_CATEGORY = {
  system: SYSTEM.pcoConcepts,
  code: 'what-matters',
  display: 'What Matters',
} as const;

/** The what-matters category as earlier versions of this service wrote it (wrong code system): read, never written. */
export const LEGACY_WHAT_MATTERS_CATEGORY = {
  system: SYSTEM.pcoPersonalHealthInventory,
  code: 'what-matters',
  display: 'What Matters Most',
} as const;

/** The code of the "what matters to me" Observation, and of each personal value in it (this project's codes). */
export const WHAT_MATTERS_CODE = {
  coding: [{ system: SYSTEM.whatMattersComponent, code: 'what-matters', display: 'What matters to me' }],
};
export const PERSONAL_VALUE_CODE = {
  coding: [{ system: SYSTEM.whatMattersComponent, code: 'value', display: 'Personal value' }],
};

/**
 * The category of a strength's Condition: SDOHCC 3.0.0 `#protective-factor "Protective Factor"`, a category code
 * ("Category for Social Determinant of Health artifacts that pertain to Protective Factors",
 * SDOHCCCodeSystemTemporaryCodes.fsh:36; SDOHCCCondition.fsh binds it on Condition.category). The Condition's code
 * is the patient's words (code.text).
 */
export const STRENGTH_CATEGORY = {
  system: SYSTEM.sdohTemporaryCodes,
  code: 'protective-factor',
  display: 'Protective Factor',
} as const;

/** US Core condition-category health-concern, the first category of a strength's Condition. */
export const HEALTH_CONCERN_CATEGORY = {
  system: SYSTEM.usCoreConditionCategory,
  code: 'health-concern',
  display: 'Health Concern',
} as const;

/**
 * The code of a strength's Condition as earlier versions of this service wrote it (protective-factor used as a
 * code, category health-concern only): read, never written.
 */
export const LEGACY_STRENGTH_CODE = {
  system: SYSTEM.sdohTemporaryCodes,
  code: 'protective-factor',
  display: 'Protective factor',
} as const;

export type CareTeamRole = NonNullable<CareTeamMember['role']>;

/** Plain-language labels, used in narratives and as CodeableConcept.text. */
export const ROLE_LABEL: Record<CareTeamRole, string> = {
  patient: 'Patient',
  caregiver: 'Caregiver',
  'family-member': 'Family member',
  friend: 'Friend',
  physician: 'Physician',
  nurse: 'Nurse',
  therapist: 'Therapist',
  pharmacist: 'Pharmacist',
  'social-worker': 'Social worker',
  'care-coordinator': 'Care coordinator',
  administrative: 'Administrative staff',
  other: 'Other',
};

/**
 * SNOMED CT codes for the roles that have one. The patient (116154003) and caregiver (133932002) codes are
 * the ones MCC eCare Plan and US Core slice on; roles without a well-established code carry only this
 * project's code.
 */
export const ROLE_SNOMED: Partial<Record<CareTeamRole, { code: string; display: string }>> = {
  patient: { code: '116154003', display: 'Patient' },
  caregiver: { code: '133932002', display: 'Caregiver' },
  'family-member': { code: '303071001', display: 'Person in the family' },
  friend: { code: '113163005', display: 'Friend' },
  physician: { code: '309343006', display: 'Physician' },
  nurse: { code: '106292003', display: 'Professional nurse' },
  pharmacist: { code: '46255001', display: 'Pharmacist' },
  'social-worker': { code: '106328005', display: 'Social worker' },
  administrative: { code: '224608005', display: 'Administrative healthcare staff' },
};

export const BARRIER_LABEL = {
  transportation: 'Transportation',
  cost: 'Cost',
  'health-literacy': 'Health literacy',
  language: 'Language',
  housing: 'Housing',
  food: 'Food',
  'caregiver-support': 'Caregiver support',
  time: 'Time',
  other: 'Other',
} as const;

export const GOAL_PRIORITY_DISPLAY = {
  'high-priority': 'High Priority',
  'medium-priority': 'Medium Priority',
  'low-priority': 'Low Priority',
} as const;

export const ACHIEVEMENT_DISPLAY = {
  'in-progress': 'In Progress',
  improving: 'Improving',
  worsening: 'Worsening',
  'no-change': 'No Change',
  achieved: 'Achieved',
  sustaining: 'Sustaining',
  'not-achieved': 'Not Achieved',
  'no-progress': 'No Progress',
  'not-attainable': 'Not Attainable',
} as const;

/** Server-managed elements that never belong in a carried remainder. */
export const OWN_IDENTIFIER_SYSTEMS: readonly string[] = [
  SYSTEM.idempotencyKey,
  SYSTEM.idempotencyRequest,
  SYSTEM.goalKey,
  SYSTEM.planPart,
];

/**
 * Identifiers only the service writes, from what it stored (never from a caller's body): they decide which plan a
 * resource belongs to and which request created it, so carried (unmappedFhir) copies of them are dropped.
 */
export const MANAGED_IDENTIFIER_SYSTEMS: readonly string[] = [
  SYSTEM.idempotencyKey,
  SYSTEM.idempotencyRequest,
  SYSTEM.planPart,
];
