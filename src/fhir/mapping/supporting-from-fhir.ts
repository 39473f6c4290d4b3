// FHIR -> plan for the supporting information: what matters, preferences, barriers and strengths.
import type { Condition, Observation, Resource } from 'fhir/r4.js';
import type { Barrier, Preference, Reference, Strength, WhatMatters } from '../../model/care-plan.js';
import { cloneJson, type Json, jsonEqual } from './carry.js';
import {
  EXTENSION,
  HEALTH_CONCERN_CATEGORY,
  LEGACY_STRENGTH_CODE,
  LEGACY_WHAT_MATTERS_CATEGORY,
  PERSONAL_VALUE_CODE,
  PREFERENCE_CODE,
  SYSTEM,
  type UsCoreProfiles,
  WHAT_MATTERS_CATEGORY,
  WHAT_MATTERS_CODE,
} from './codes.js';
import {
  finish,
  type Obj,
  takeIdentifiers,
  takeIfEqual,
  takeMeta,
  takeSubject,
  text,
  wholeReference,
} from './read-helpers.js';
import { barrierFromValue, isBarrierCode, strengthCategories } from './shapes.js';

/** Common part of the Observations and Conditions the plan maps: status, subject, meta, identifiers. */
function supportingRest(resource: Resource, patient: Reference, ownClaim?: string): Obj {
  const rest: Obj = cloneJson(resource) as unknown as Obj;
  takeMeta(rest, ownClaim);
  takeIdentifiers(rest);
  takeSubject(rest, 'subject', patient);
  return rest;
}

function takePerformer(rest: Obj): Reference | undefined {
  if (!Array.isArray(rest.performer) || rest.performer.length !== 1) return undefined;
  const performer = wholeReference(rest.performer[0]);
  if (performer) delete rest.performer;
  return performer;
}

/**
 * What every Observation of the patient's own words holds (what matters, preferences): the words
 * (valueString), when (effectiveDateTime), who said it (one performer), and the remainder to carry.
 */
function statementFromFhir(observation: Observation, id: string | undefined, rest: Obj) {
  const statement: { statement: string; id?: string; recordedOn?: string; expressedBy?: Reference } = {
    statement: observation.valueString as string,
  };
  if (id) statement.id = id;
  if (typeof observation.effectiveDateTime === 'string') statement.recordedOn = observation.effectiveDateTime;
  const performer = takePerformer(rest);
  if (performer) statement.expressedBy = performer;
  const unmapped = finish(rest, ['resourceType', 'id', 'status', 'code', 'valueString', 'effectiveDateTime']);
  return unmapped ? { ...statement, unmappedFhir: unmapped } : statement;
}

export function whatMattersFromFhir(
  observation: Observation,
  id: string | undefined,
  patient: Reference,
): WhatMatters | undefined {
  if (!jsonEqual(observation.code, WHAT_MATTERS_CODE) || !text(observation.valueString)) return undefined;
  if (observation.status !== 'final') return undefined;
  const rest = supportingRest(observation, patient);
  // The category as written now, or as earlier versions of this service wrote it (in the wrong PCO code system).
  const categories = [WHAT_MATTERS_CATEGORY, LEGACY_WHAT_MATTERS_CATEGORY];
  if (!categories.some((c) => takeIfEqual(rest, 'category', [{ coding: [{ ...c }] }]))) return undefined;
  const values: string[] = [];
  if (Array.isArray(rest.component)) {
    const others = (observation.component ?? []).filter((c) => {
      if (Object.keys(c).length === 2 && jsonEqual(c.code, PERSONAL_VALUE_CODE) && text(c.valueString)) {
        values.push(c.valueString as string);
        return false;
      }
      return true;
    });
    if (others.length) rest.component = others as unknown as Json;
    else delete rest.component;
  }
  const whatMatters: WhatMatters = statementFromFhir(observation, id, rest);
  if (values.length) whatMatters.values = values;
  return whatMatters;
}

export function preferenceFromFhir(
  observation: Observation,
  id: string | undefined,
  patient: Reference,
  profiles: UsCoreProfiles,
): Preference | undefined {
  const kind = (Object.keys(PREFERENCE_CODE) as Preference['kind'][]).find((k) =>
    jsonEqual(observation.code, { coding: [PREFERENCE_CODE[k]] }),
  );
  if (!kind || !text(observation.valueString) || observation.status !== 'final') return undefined;
  // Recognised by its code, whatever preference profile (of any version) it claims: the service claims none at
  // US Core 6.1.0 (the profiles exist only from 7.0.0); a claim other than the service's own is kept (takeMeta).
  const own =
    kind === 'care-experience' ? profiles.careExperiencePreference : profiles.treatmentInterventionPreference;
  const rest = supportingRest(observation, patient, own);
  return { kind, ...statementFromFhir(observation, id, rest) };
}

export function barrierFromFhir(
  observation: Observation,
  id: string | undefined,
  patient: Reference,
  goalLinks: (refs: unknown) => string[] | undefined,
): Barrier | undefined {
  if (!isBarrierCode(observation.code) || observation.status !== 'final') return undefined;
  const value = barrierFromValue(observation);
  if (!value) return undefined;
  const rest = supportingRest(observation, patient);
  delete rest.valueString;
  delete rest.valueCodeableConcept;
  const barrier: Barrier = { ...value };
  if (id) barrier.id = id;
  const performer = takePerformer(rest);
  if (performer) barrier.expressedBy = performer;
  if (typeof observation.effectiveDateTime === 'string') {
    barrier.recordedOn = observation.effectiveDateTime;
    delete rest.effectiveDateTime;
  }
  const goals = goalLinks(observation.focus);
  if (goals) {
    barrier.goals = goals;
    delete rest.focus;
  }
  const unmapped = finish(rest, ['resourceType', 'id', 'status', 'code']);
  if (unmapped) barrier.unmappedFhir = unmapped;
  return barrier;
}

export function strengthFromFhir(
  condition: Condition,
  id: string | undefined,
  patient: Reference,
  goalLinks: (refs: unknown) => string[] | undefined,
): Strength | undefined {
  const statement = text(condition.code?.text);
  if (!statement) return undefined;
  // As written now: category [health-concern, SDOHCC protective-factor], code = the words only. As earlier versions
  // of this service wrote it: category [health-concern], protective-factor as the code (with the words as text).
  const current =
    jsonEqual(condition.code, { text: statement }) && jsonEqual(condition.category, strengthCategories());
  const legacy =
    jsonEqual(condition.code, { coding: [{ ...LEGACY_STRENGTH_CODE }], text: statement }) &&
    jsonEqual(condition.category, [{ coding: [{ ...HEALTH_CONCERN_CATEGORY }] }]);
  if (!current && !legacy) return undefined;
  const rest = supportingRest(condition, patient);
  const clinical = { coding: [{ system: SYSTEM.conditionClinical, code: 'active' }] };
  if (!takeIfEqual(rest, 'clinicalStatus', clinical)) return undefined;
  delete rest.category;
  const strength: Strength = { statement };
  if (id) strength.id = id;
  const goalExtensions = (condition.extension ?? []).filter((e) => e.url === EXTENSION.pertainsToGoal);
  const goals = goalLinks(goalExtensions.map((e) => e.valueReference));
  if (goals?.length && goalExtensions.every((e) => Object.keys(e).length === 2)) {
    strength.goals = goals;
    const others = (condition.extension ?? []).filter((e) => e.url !== EXTENSION.pertainsToGoal);
    if (others.length) rest.extension = others as unknown as Json;
    else delete rest.extension;
  }
  const asserter = wholeReference(rest.asserter);
  if (asserter) {
    strength.expressedBy = asserter;
    delete rest.asserter;
  }
  if (typeof condition.recordedDate === 'string') {
    strength.recordedOn = condition.recordedDate;
    delete rest.recordedDate;
  }
  const unmapped = finish(rest, ['resourceType', 'id', 'code']);
  if (unmapped) strength.unmappedFhir = unmapped;
  return strength;
}
