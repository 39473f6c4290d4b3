// One builder and one recogniser per FHIR shape the mapping writes and reads back: the recogniser takes a value only
// when the builder, given what it read, makes exactly that value again (so nothing is lost on the way back).
import type { Extension, CodeableConcept as FhirCodeableConcept, Observation } from 'fhir/r4.js';
import type { Barrier, CareTeamMember, GoalAgreement, SharedDecision } from '../../model/care-plan.js';
import { compact, jsonEqual } from './carry.js';
import {
  ACHIEVEMENT_DISPLAY,
  BARRIER_CODE,
  BARRIER_LABEL,
  EXTENSION,
  GOAL_PRIORITY_DISPLAY,
  HEALTH_CONCERN_CATEGORY,
  LEGACY_BARRIER_CODE,
  ROLE_LABEL,
  ROLE_SNOMED,
  STRENGTH_CATEGORY,
  SYSTEM,
} from './codes.js';
import { text, wholeCodeableConcept, wholeReference, wholeReferences } from './read-helpers.js';

export const ASSESS_PLAN_CATEGORY: FhirCodeableConcept = {
  coding: [{ system: SYSTEM.usCoreCarePlanCategory, code: 'assess-plan' }],
};

export const GOAL_ACHIEVEMENT = (code: keyof typeof ACHIEVEMENT_DISPLAY): FhirCodeableConcept => ({
  coding: [{ system: SYSTEM.goalAchievement, code, display: ACHIEVEMENT_DISPLAY[code] }],
});

export const GOAL_PRIORITY = (code: keyof typeof GOAL_PRIORITY_DISPLAY): FhirCodeableConcept => ({
  coding: [{ system: SYSTEM.goalPriority, code, display: GOAL_PRIORITY_DISPLAY[code] }],
});

export function careTeamRoleConcept(member: Pick<CareTeamMember, 'role' | 'roleText'>): FhirCodeableConcept {
  const role = member.role ?? 'other';
  const snomed = ROLE_SNOMED[role];
  return compact({
    coding: [
      ...(snomed ? [{ system: SYSTEM.snomed, code: snomed.code, display: snomed.display }] : []),
      { system: SYSTEM.careTeamRole, code: role, display: ROLE_LABEL[role] },
    ],
    text: member.roleText,
  });
}

/** A role the model can hold exactly (one CodeableConcept as the mapping builds it), or undefined. */
export function roleFromFhir(
  roles: FhirCodeableConcept[] | undefined,
): Pick<CareTeamMember, 'role' | 'roleText'> | undefined {
  if (roles?.length !== 1) return undefined;
  const code = roles[0].coding?.find((c) => c.system === SYSTEM.careTeamRole)?.code;
  if (!code || !(code in ROLE_LABEL)) return undefined;
  const candidate = compact({ role: code as CareTeamMember['role'], roleText: text(roles[0].text) });
  return jsonEqual(careTeamRoleConcept(candidate), roles[0]) ? candidate : undefined;
}

export function decisionExtension(decision: SharedDecision): Extension {
  const part = (url: string, value: Omit<Extension, 'url'>): Extension => ({ url, ...value });
  return {
    url: EXTENSION.sharedDecision,
    extension: [
      part('question', { valueString: decision.question }),
      ...decision.options.map((option) =>
        part('option', {
          extension: [
            part('title', { valueString: option.title }),
            ...(option.pros ?? []).map((pro) => part('pro', { valueString: pro })),
            ...(option.cons ?? []).map((con) => part('con', { valueString: con })),
          ],
        }),
      ),
      ...(decision.chosenOption ? [part('chosenOption', { valueString: decision.chosenOption })] : []),
      ...(decision.rationale ? [part('rationale', { valueString: decision.rationale })] : []),
      ...(decision.participants ?? []).map((p) => part('participant', { valueReference: { ...p } })),
      ...(decision.decidedOn ? [part('decidedOn', { valueDateTime: decision.decidedOn })] : []),
    ],
  };
}

export function acceptanceExtension(agreement: GoalAgreement): Extension {
  return {
    url: EXTENSION.goalAcceptance,
    extension: [
      { url: 'individual', valueReference: { ...agreement.who } },
      { url: 'status', valueCode: agreement.status },
      ...(agreement.priority ? [{ url: 'priority', valueCodeableConcept: agreement.priority }] : []),
    ],
  };
}

export function agreementFromExtension(extension: Extension): GoalAgreement | undefined {
  const parts = extension.extension ?? [];
  const who = wholeReference(parts.find((p) => p.url === 'individual')?.valueReference);
  const status = parts.find((p) => p.url === 'status')?.valueCode;
  const priority = wholeCodeableConcept(parts.find((p) => p.url === 'priority')?.valueCodeableConcept);
  if (!who || (status !== 'agree' && status !== 'disagree' && status !== 'pending')) return undefined;
  const agreement: GoalAgreement = priority ? { who, status, priority } : { who, status };
  return jsonEqual(acceptanceExtension(agreement), extension) ? agreement : undefined;
}

export function decisionFromExtension(extension: Extension): SharedDecision | undefined {
  const parts = extension.extension ?? [];
  const strings = (url: string, from = parts) =>
    from
      .filter((p) => p.url === url)
      .map((p) => p.valueString)
      .filter((v): v is string => !!text(v));
  const question = strings('question')[0];
  const options = parts
    .filter((p) => p.url === 'option')
    .map((p) => {
      const sub = p.extension ?? [];
      return compact({
        title: strings('title', sub)[0],
        pros: strings('pro', sub),
        cons: strings('con', sub),
      });
    });
  if (!question || !options.length || options.some((o) => !o.title)) return undefined;
  const decision: SharedDecision = compact({
    question,
    options: options as SharedDecision['options'],
    chosenOption: strings('chosenOption')[0],
    rationale: strings('rationale')[0],
    participants: wholeReferences(parts.filter((p) => p.url === 'participant').map((p) => p.valueReference)),
    decidedOn: parts.find((p) => p.url === 'decidedOn')?.valueDateTime,
  });
  return jsonEqual(decisionExtension(decision), extension) ? decision : undefined;
}

/** Condition.category of a strength: US Core health-concern and SDOHCC 3.0.0 protective-factor. */
export function strengthCategories(): FhirCodeableConcept[] {
  return [{ coding: [{ ...HEALTH_CONCERN_CATEGORY }] }, { coding: [{ ...STRENGTH_CATEGORY }] }];
}

/** The code of a barrier Observation (PCO's concept and display, see BARRIER_CODE). */
export function barrierCode(): FhirCodeableConcept {
  return { coding: [{ ...BARRIER_CODE }] };
}

/** A barrier's code as written now, or with the display earlier versions of this service wrote. */
export function isBarrierCode(code: unknown): boolean {
  return [BARRIER_CODE, LEGACY_BARRIER_CODE].some((c) => jsonEqual(code, { coding: [{ ...c }] }));
}

/** A barrier's value: its category as a coded value with the words as text, or the words alone. */
export function barrierValue(
  barrier: Pick<Barrier, 'statement' | 'category'>,
): Pick<Observation, 'valueCodeableConcept' | 'valueString'> {
  if (!barrier.category) return { valueString: barrier.statement };
  const category = barrier.category;
  return {
    valueCodeableConcept: {
      coding: [{ system: SYSTEM.barrierCategory, code: category, display: BARRIER_LABEL[category] }],
      text: barrier.statement,
    },
  };
}

/** The words and category of a barrier's value when barrierValue makes exactly that value again. */
export function barrierFromValue(
  observation: Pick<Observation, 'valueCodeableConcept' | 'valueString'>,
): Pick<Barrier, 'statement' | 'category'> | undefined {
  let candidate: Pick<Barrier, 'statement' | 'category'> | undefined;
  if (text(observation.valueString)) candidate = { statement: observation.valueString as string };
  else {
    const concept = observation.valueCodeableConcept;
    const category = concept?.coding?.[0]?.code as Barrier['category'];
    if (category && category in BARRIER_LABEL && text(concept?.text))
      candidate = { statement: concept?.text as string, category };
  }
  if (!candidate) return undefined;
  const value = barrierValue(candidate);
  const given = compact({
    valueString: observation.valueString,
    valueCodeableConcept: observation.valueCodeableConcept,
  });
  return jsonEqual(value, given) ? candidate : undefined;
}
