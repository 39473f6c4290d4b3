// plan -> FHIR for the plan's supporting information: what matters, preferences, barriers (Observations) and
// strengths (Conditions).
import type { Condition, Reference as FhirReference, Observation } from 'fhir/r4.js';
import type { Barrier, Preference, Strength, WhatMatters } from '../../model/care-plan.js';
import { cloneJson, compact } from './carry.js';
import {
  EXTENSION,
  PERSONAL_VALUE_CODE,
  PREFERENCE_CODE,
  SYSTEM,
  type UsCoreProfiles,
  WHAT_MATTERS_CATEGORY,
  WHAT_MATTERS_CODE,
} from './codes.js';
import { profiled } from './profiles.js';
import { barrierCode, barrierValue, strengthCategories } from './shapes.js';

/**
 * What every Observation of the patient's own words holds (what matters, preferences): the words as
 * valueString, when they were said, and who said them.
 */
export function statementObservation(
  said: Pick<Preference, 'statement' | 'recordedOn' | 'expressedBy'>,
  id: string | undefined,
  patient: FhirReference,
  coded: Pick<Observation, 'code'> & Partial<Observation>,
): Observation {
  return compact({
    resourceType: 'Observation',
    id,
    status: 'final',
    subject: patient,
    effectiveDateTime: said.recordedOn,
    performer: said.expressedBy ? [{ ...said.expressedBy }] : undefined,
    valueString: said.statement,
    ...coded,
  }) as Observation;
}

export function buildWhatMatters(
  whatMatters: WhatMatters,
  id: string | undefined,
  patient: FhirReference,
): Observation {
  const observation = statementObservation(whatMatters, id, patient, {
    category: [{ coding: [{ ...WHAT_MATTERS_CATEGORY }] }],
    code: cloneJson(WHAT_MATTERS_CODE),
    ...(whatMatters.values?.length
      ? {
          component: whatMatters.values.map((value) => ({
            code: cloneJson(PERSONAL_VALUE_CODE),
            valueString: value,
          })),
        }
      : {}),
  });
  return profiled(observation, undefined, whatMatters.unmappedFhir);
}

export function buildPreference(
  preference: Preference,
  id: string | undefined,
  patient: FhirReference,
  profiles: UsCoreProfiles,
): Observation {
  const observation = statementObservation(preference, id, patient, {
    code: { coding: [{ ...PREFERENCE_CODE[preference.kind] }] },
  });
  // The US Core preference profiles exist only from 7.0.0: at 6.1.0 none is claimed (usCoreProfiles).
  const profile =
    preference.kind === 'care-experience'
      ? profiles.careExperiencePreference
      : profiles.treatmentInterventionPreference;
  return profiled(observation, profile, preference.unmappedFhir);
}

export function buildBarrier(
  barrier: Barrier,
  id: string | undefined,
  patient: FhirReference,
  goals: FhirReference[],
): Observation {
  return profiled<Observation>(
    compact({
      resourceType: 'Observation',
      id,
      status: 'final',
      code: barrierCode(),
      subject: patient,
      focus: goals,
      effectiveDateTime: barrier.recordedOn,
      performer: barrier.expressedBy ? [{ ...barrier.expressedBy }] : undefined,
      ...barrierValue(barrier),
    }) as Observation,
    // No profile: PCO's Goal Barrier profile needs US Core Simple Observation elements a barrier here lacks.
    undefined,
    barrier.unmappedFhir,
  );
}

export function buildStrength(
  strength: Strength,
  id: string | undefined,
  patient: FhirReference,
  goals: FhirReference[],
): Condition {
  return profiled<Condition>(
    compact({
      resourceType: 'Condition',
      id,
      extension: goals.map((goal) => ({ url: EXTENSION.pertainsToGoal, valueReference: goal })),
      clinicalStatus: { coding: [{ system: SYSTEM.conditionClinical, code: 'active' }] },
      category: strengthCategories(),
      // SDOHCC 3.0.0 protective-factor is a category: the code is the patient's words only.
      code: { text: strength.statement },
      subject: patient,
      recordedDate: strength.recordedOn,
      asserter: strength.expressedBy ? { ...strength.expressedBy } : undefined,
    }) as Condition,
    undefined,
    strength.unmappedFhir,
  );
}
