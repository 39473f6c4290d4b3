// plan -> FHIR R4 transaction Bundle. Pure: no I/O; ids for new resources come from the injected generator.
import type {
  Bundle,
  BundleEntry,
  CarePlan,
  CarePlanActivity,
  CareTeam,
  Condition,
  Extension,
  CodeableConcept as FhirCodeableConcept,
  Goal as FhirGoal,
  GoalTarget as FhirGoalTarget,
  Reference as FhirReference,
  Identifier,
  Observation,
  Resource,
} from 'fhir/r4.js';
import type {
  Activity,
  Barrier,
  CareTeamMember,
  Goal,
  GoalAgreement,
  GoalTarget,
  Preference,
  SharedCarePlan,
  SharedDecision,
  Strength,
  WhatMatters,
} from '../../care-plan/care-plan.js';
import { cloneJson, compact, mergeCarried } from './carry.js';
import {
  ACHIEVEMENT_DISPLAY,
  BARRIER_CODE,
  BARRIER_LABEL,
  EXTENSION,
  GOAL_PRIORITY_DISPLAY,
  PERSONAL_VALUE_CODE,
  PREFERENCE_CODE,
  PROFILE,
  ROLE_LABEL,
  ROLE_SNOMED,
  STRENGTH_CODE,
  SYSTEM,
  WHAT_MATTERS_CATEGORY,
  WHAT_MATTERS_CODE,
} from './codes.js';
import { carePlanNarrative } from './narrative.js';

export interface ToFhirOptions {
  /** Generates the uuid of a `urn:uuid:` fullUrl for each new resource. */
  newUuid: () => string;
  /**
   * Makes every created resource conditional on identifiers derived from an idempotency key, so that a
   * replayed or concurrent request creates nothing twice.
   */
  idempotency?: { keyHash: string; requestHash: string };
  /** The CarePlan version the caller read: the CarePlan update is conditional on it (If-Match). */
  ifMatchVersion?: string;
  /** References (Type/id) to resources the plan no longer holds: deleted in the same transaction. */
  deleteReferences?: string[];
  /** A fresh value for the plan-revision extension, so that every write gives the CarePlan a new version. */
  revision?: string;
  /** Identifiers the stored CarePlan holds already (e.g. its idempotency key), kept on update. */
  carePlanIdentifiers?: Identifier[];
}

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

/** Where a resource of the plan lives and how other resources point at it. */
interface Placement {
  resourceType: string;
  /** The FHIR reference other resources use: Type/id, #id (contained) or urn:uuid:... */
  reference: string;
  /** Logical id, when the resource has one already (update) or is contained. */
  id?: string;
  contained: boolean;
}

function place(resourceType: string, id: string | undefined, newUuid: () => string): Placement {
  if (id?.startsWith('#')) return { resourceType, reference: id, id: id.slice(1), contained: true };
  if (id) return { resourceType, reference: `${resourceType}/${id}`, id, contained: false };
  return { resourceType, reference: `urn:uuid:${newUuid()}`, contained: false };
}

const reference = (ref: string): FhirReference => ({ reference: ref });

function profiled<T extends Resource>(
  resource: T,
  profile: string | undefined,
  carried: Record<string, unknown> | undefined,
): T {
  const merged = mergeCarried(resource, carried);
  if (!profile) return merged;
  const profiles = [profile, ...(merged.meta?.profile ?? []).filter((p) => p !== profile)];
  return { ...merged, meta: { ...merged.meta, profile: profiles } };
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

function acceptanceExtension(agreement: GoalAgreement): Extension {
  return {
    url: EXTENSION.goalAcceptance,
    extension: [
      { url: 'individual', valueReference: { ...agreement.who } },
      { url: 'status', valueCode: agreement.status },
      ...(agreement.priority ? [{ url: 'priority', valueCodeableConcept: agreement.priority }] : []),
    ],
  };
}

function goalTarget(target: GoalTarget): FhirGoalTarget {
  return compact({
    measure: target.measure,
    detailQuantity: target.quantity,
    detailRange: target.range,
    detailString: target.text,
    dueDate: target.dueDate,
  });
}

/** Identifier and conditional-create criteria that make a new resource idempotent. */
function idempotencyIdentifier(options: ToFhirOptions, suffix: string): Identifier | undefined {
  if (!options.idempotency) return undefined;
  return { system: SYSTEM.idempotencyKey, value: `${options.idempotency.keyHash}${suffix}` };
}

interface Built {
  placement: Placement;
  resource: Resource;
  identifier?: Identifier;
}

export function planToTransaction(plan: SharedCarePlan, options: ToFhirOptions): Bundle {
  const patient: FhirReference = { ...plan.patient };
  const built: Built[] = [];
  const goalReference = new Map<string, string>();

  const add = (
    resourceType: string,
    id: string | undefined,
    suffix: string,
    make: (p: Placement, identifier?: Identifier) => Resource,
  ) => {
    const placement = place(resourceType, id, options.newUuid);
    const identifier = !id ? idempotencyIdentifier(options, suffix) : undefined;
    built.push({ placement, resource: make(placement, identifier), identifier });
    return placement;
  };

  const goalPlacements = (plan.goals ?? []).map((goal, index) => {
    const placement = add('Goal', goal.id, `/goal/${index}`, (p, identifier) =>
      buildGoal(goal, p, patient, identifier),
    );
    if (goal.key) goalReference.set(goal.key, placement.reference);
    if (goal.id) goalReference.set(goal.id, placement.reference);
    return placement;
  });
  const linkGoals = (links: string[] | undefined): FhirReference[] =>
    (links ?? []).map((link) => reference(goalReference.get(link) ?? `Goal/${link}`));

  const careTeam = plan.careTeam;
  const careTeamPlacement = careTeam
    ? add('CareTeam', careTeam.id, '/care-team', (p, identifier) =>
        profiled<CareTeam>(
          compact({
            resourceType: 'CareTeam',
            id: p.id,
            identifier: identifier ? [identifier] : undefined,
            status: careTeam.status,
            name: careTeam.name,
            subject: patient,
            participant: careTeam.members.map((m) =>
              mergeCarried(
                compact({ role: m.role ? [careTeamRoleConcept(m)] : undefined, member: { ...m.member } }),
                m.unmappedFhir,
              ),
            ),
          }) as CareTeam,
          careTeam.members.length > 0 && careTeam.members.every((m) => m.role) ? PROFILE.careTeam : undefined,
          careTeam.unmappedFhir,
        ),
      )
    : undefined;

  const supporting: Placement[] = [];
  if (plan.whatMatters) {
    const whatMatters = plan.whatMatters;
    supporting.push(
      add('Observation', whatMatters.id, '/what-matters', (p, identifier) =>
        buildWhatMatters(whatMatters, p, patient, identifier),
      ),
    );
  }
  (plan.preferences ?? []).forEach((preference, index) => {
    supporting.push(
      add('Observation', preference.id, `/preference/${index}`, (p, identifier) =>
        buildPreference(preference, p, patient, identifier),
      ),
    );
  });
  (plan.barriers ?? []).forEach((barrier, index) => {
    supporting.push(
      add('Observation', barrier.id, `/barrier/${index}`, (p, identifier) =>
        buildBarrier(barrier, p, patient, identifier, linkGoals(barrier.goals)),
      ),
    );
  });
  (plan.strengths ?? []).forEach((strength, index) => {
    supporting.push(
      add('Condition', strength.id, `/strength/${index}`, (p, identifier) =>
        buildStrength(strength, p, patient, identifier, linkGoals(strength.goals)),
      ),
    );
  });

  const carried = plan.unmappedFhir;
  const carriedCategories = (carried?.category ?? []) as FhirCodeableConcept[];
  const hasAssessPlan = carriedCategories.some((c) =>
    c.coding?.some(
      (coding) => coding.system === SYSTEM.usCoreCarePlanCategory && coding.code === 'assess-plan',
    ),
  );
  const carePlanPlacement = place('CarePlan', plan.id, options.newUuid);
  const carePlanIdentifiers: Identifier[] = [...(options.carePlanIdentifiers ?? [])];
  if (!plan.id && options.idempotency) {
    carePlanIdentifiers.push(
      { system: SYSTEM.idempotencyKey, value: options.idempotency.keyHash },
      { system: SYSTEM.idempotencyRequest, value: options.idempotency.requestHash },
    );
  }
  const contained = built.filter((b) => b.placement.contained).map((b) => b.resource);
  const hasCarriedText = carried?.text !== undefined;
  const carePlan = profiled<CarePlan>(
    compact({
      resourceType: 'CarePlan',
      id: carePlanPlacement.id,
      text: hasCarriedText ? undefined : { status: 'generated', div: carePlanNarrative(plan) },
      contained,
      extension: [
        ...(plan.decisions ?? []).map(decisionExtension),
        ...(options.revision ? [{ url: EXTENSION.planRevision, valueString: options.revision }] : []),
      ],
      identifier: carePlanIdentifiers,
      status: plan.status,
      intent: plan.intent,
      category: hasAssessPlan ? undefined : [ASSESS_PLAN_CATEGORY],
      title: plan.title,
      description: plan.description,
      subject: patient,
      period: plan.period,
      created: plan.created,
      author: plan.author,
      contributor: plan.contributors,
      careTeam: careTeamPlacement ? [reference(careTeamPlacement.reference)] : undefined,
      goal: goalPlacements.map((p) => reference(p.reference)),
      supportingInfo: supporting.map((p) => reference(p.reference)),
      activity: (plan.activities ?? []).map((activity) => buildActivity(activity, linkGoals(activity.goals))),
    }) as CarePlan,
    // US Core 6.1.0 CarePlan requires an assess-plan category and a narrative.
    PROFILE.carePlan,
    carried,
  );

  const entries: BundleEntry[] = [];
  const idempotent = !plan.id && options.idempotency ? carePlanIdentifiers[0] : undefined;
  entries.push(entryFor(carePlanPlacement, carePlan, idempotent, options.ifMatchVersion));
  for (const b of built) {
    if (!b.placement.contained) entries.push(entryFor(b.placement, b.resource, b.identifier));
  }
  for (const ref of options.deleteReferences ?? []) entries.push({ request: { method: 'DELETE', url: ref } });
  return { resourceType: 'Bundle', type: 'transaction', entry: entries };
}

function entryFor(
  placement: Placement,
  resource: Resource,
  identifier?: Identifier,
  ifMatch?: string,
): BundleEntry {
  if (placement.id) {
    return {
      fullUrl: undefined,
      resource,
      request: compact({
        method: 'PUT' as const,
        url: `${placement.resourceType}/${placement.id}`,
        ifMatch: ifMatch ? `W/"${ifMatch}"` : undefined,
      }),
    };
  }
  return {
    fullUrl: placement.reference,
    resource,
    request: compact({
      method: 'POST' as const,
      url: placement.resourceType,
      ifNoneExist: identifier ? `identifier=${identifier.system}|${identifier.value}` : undefined,
    }),
  };
}

function buildGoal(goal: Goal, p: Placement, patient: FhirReference, identifier?: Identifier): FhirGoal {
  const identifiers: Identifier[] = [];
  if (goal.key) identifiers.push({ system: SYSTEM.goalKey, value: goal.key });
  if (identifier) identifiers.push(identifier);
  const resource = compact({
    resourceType: 'Goal',
    id: p.id,
    extension: (goal.agreements ?? []).map(acceptanceExtension),
    identifier: identifiers,
    lifecycleStatus: goal.lifecycleStatus,
    achievementStatus: goal.achievementStatus ? GOAL_ACHIEVEMENT(goal.achievementStatus) : undefined,
    priority: goal.priority ? GOAL_PRIORITY(goal.priority) : undefined,
    description: compact({ coding: goal.description.coding, text: goal.description.text }),
    subject: patient,
    startDate: goal.startDate,
    target: (goal.targets ?? []).map(goalTarget),
    expressedBy: goal.expressedBy,
  }) as FhirGoal;
  // US Core 6.1.0 Goal: lifecycleStatus, description and subject, all always present here.
  return profiled(resource, PROFILE.goal, goal.unmappedFhir);
}

/**
 * What every Observation of the patient's own words holds (what matters, preferences): the words as
 * valueString, when they were said, and who said them.
 */
function statementObservation(
  said: Pick<Preference, 'statement' | 'recordedOn' | 'expressedBy'>,
  p: Placement,
  patient: FhirReference,
  identifier: Identifier | undefined,
  coded: Pick<Observation, 'code'> & Partial<Observation>,
): Observation {
  return compact({
    resourceType: 'Observation',
    id: p.id,
    identifier: identifier ? [identifier] : undefined,
    status: 'final',
    subject: patient,
    effectiveDateTime: said.recordedOn,
    performer: said.expressedBy ? [{ ...said.expressedBy }] : undefined,
    valueString: said.statement,
    ...coded,
  }) as Observation;
}

function buildWhatMatters(
  whatMatters: WhatMatters,
  p: Placement,
  patient: FhirReference,
  identifier?: Identifier,
): Observation {
  const observation = statementObservation(whatMatters, p, patient, identifier, {
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

function buildPreference(
  preference: Preference,
  p: Placement,
  patient: FhirReference,
  identifier?: Identifier,
): Observation {
  const observation = statementObservation(preference, p, patient, identifier, {
    code: { coding: [{ ...PREFERENCE_CODE[preference.kind] }] },
  });
  const profile =
    preference.kind === 'care-experience'
      ? PROFILE.careExperiencePreference
      : PROFILE.treatmentInterventionPreference;
  return profiled(observation, profile, preference.unmappedFhir);
}

function buildBarrier(
  barrier: Barrier,
  p: Placement,
  patient: FhirReference,
  identifier: Identifier | undefined,
  goals: FhirReference[],
): Observation {
  const value = barrier.category
    ? {
        valueCodeableConcept: {
          coding: [
            {
              system: SYSTEM.barrierCategory,
              code: barrier.category,
              display: BARRIER_LABEL[barrier.category],
            },
          ],
          text: barrier.statement,
        },
      }
    : { valueString: barrier.statement };
  return profiled<Observation>(
    compact({
      resourceType: 'Observation',
      id: p.id,
      identifier: identifier ? [identifier] : undefined,
      status: 'final',
      code: { coding: [{ ...BARRIER_CODE }] },
      subject: patient,
      focus: goals,
      ...value,
    }) as Observation,
    undefined,
    barrier.unmappedFhir,
  );
}

function buildStrength(
  strength: Strength,
  p: Placement,
  patient: FhirReference,
  identifier: Identifier | undefined,
  goals: FhirReference[],
): Condition {
  return profiled<Condition>(
    compact({
      resourceType: 'Condition',
      id: p.id,
      extension: goals.map((goal) => ({ url: EXTENSION.pertainsToGoal, valueReference: goal })),
      identifier: identifier ? [identifier] : undefined,
      clinicalStatus: { coding: [{ system: SYSTEM.conditionClinical, code: 'active' }] },
      category: [
        {
          coding: [
            { system: SYSTEM.usCoreConditionCategory, code: 'health-concern', display: 'Health Concern' },
          ],
        },
      ],
      code: { coding: [{ ...STRENGTH_CODE }], text: strength.statement },
      subject: patient,
    }) as Condition,
    undefined,
    strength.unmappedFhir,
  );
}

function buildActivity(activity: Activity, goals: FhirReference[]): CarePlanActivity {
  const base: CarePlanActivity = !activity.status
    ? compact({ id: activity.id, reference: activity.reference ? { ...activity.reference } : undefined })
    : compact({
        id: activity.id,
        detail: compact({
          code: activity.code,
          status: activity.status,
          scheduledPeriod: activity.scheduled,
          scheduledString: activity.scheduledText,
          performer: activity.performers?.map((p) => ({ ...p })),
          description: activity.description,
          goal: goals,
        }) as CarePlanActivity['detail'],
      });
  return mergeCarried(base, activity.unmappedFhir);
}
