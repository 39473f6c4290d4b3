// FHIR R4 -> plan. Pure: no I/O. What the model has a field for goes into that field; everything else is
// carried in `unmappedFhir` so that FHIR -> plan -> FHIR keeps every element.
import type {
  CarePlanActivity,
  Condition,
  Extension,
  CareTeam as FhirCareTeam,
  Goal as FhirGoal,
  Reference as FhirReference,
  Observation,
  Resource,
} from 'fhir/r4.js';
import type {
  Activity,
  Barrier,
  CareTeam,
  CareTeamMember,
  Goal,
  GoalTarget,
  Preference,
  Reference,
  SharedCarePlan,
  Strength,
} from '../../model/care-plan.js';
import { cloneJson, compact, isPlainObject, type Json, type JsonObject, jsonEqual } from './carry.js';
import {
  ACHIEVEMENT_DISPLAY,
  DEFAULT_US_CORE_VERSION,
  EXTENSION,
  GOAL_PRIORITY_DISPLAY,
  type UsCoreProfiles,
  type UsCoreVersion,
  usCoreProfiles,
} from './codes.js';
import { notesFromAnnotations, takeContributions } from './contributions.js';
import { carePlanNarrative } from './narrative.js';
import type { FhirPlanSource } from './plan-source.js';
import {
  finish,
  type Obj,
  splitReference,
  takeExtensions,
  takeIdentifiers,
  takeMeta,
  takeOwnCode,
  takeSubject,
  text,
  wholeCodeableConcept,
  wholePeriod,
  wholeQuantity,
  wholeReference,
  wholeReferences,
} from './read-helpers.js';
import {
  ASSESS_PLAN_CATEGORY,
  agreementFromExtension,
  decisionFromExtension,
  GOAL_ACHIEVEMENT,
  GOAL_PRIORITY,
  roleFromFhir,
} from './shapes.js';
import {
  barrierFromFhir,
  preferenceFromFhir,
  strengthFromFhir,
  whatMattersFromFhir,
} from './supporting-from-fhir.js';

export {
  type FhirPlanSource,
  PlanSourceError,
  planSourceFromFhir,
  resolveBundleReferences,
  resolverFor,
} from './plan-source.js';

// ---------- the mapping ----------

/**
 * The plan a CarePlan holds. Resources are recognised by their content (codes, categories), whatever profile they
 * claim; the claim the service makes itself at `usCoreVersion` is taken, every other one kept (takeMeta).
 */
export function planFromFhir(
  source: FhirPlanSource,
  usCoreVersion: UsCoreVersion = DEFAULT_US_CORE_VERSION,
): SharedCarePlan {
  const profiles = usCoreProfiles(usCoreVersion);
  const carePlan = source.carePlan;
  const rest: Obj = cloneJson(carePlan) as unknown as Obj;
  const patientSplit = splitReference(carePlan.subject);
  const patient: Reference = patientSplit.model ?? {};
  if (patientSplit.rest) rest.subject = patientSplit.rest;
  else delete rest.subject;

  const containedUsed = new Set<string>();
  const resolveOwn = (reference: string | undefined): Resource | undefined => {
    if (!reference) return undefined;
    const resource = source.resolve(reference);
    if (resource && reference.startsWith('#')) containedUsed.add(reference.slice(1));
    return resource;
  };
  const idOf = (reference: string, resource: Resource): string | undefined =>
    reference.startsWith('#') ? reference : resource.id;

  // Goals first: the other parts link to them.
  const goals: Goal[] = [];
  const goalLinkByReference = new Map<string, string>();
  const carriedGoalRefs: FhirReference[] = [];
  for (const ref of carePlan.goal ?? []) {
    const resource = resolveOwn(wholeReference(ref)?.reference);
    if (resource?.resourceType !== 'Goal') {
      carriedGoalRefs.push(ref);
      continue;
    }
    const goal = goalFromFhir(
      resource as FhirGoal,
      idOf(ref.reference as string, resource),
      patient,
      profiles,
    );
    goals.push(goal);
    source.taken?.(resource);
    const link = goal.key ?? goal.id;
    if (link) {
      goalLinkByReference.set(ref.reference as string, link);
      if (resource.id) goalLinkByReference.set(`Goal/${resource.id}`, link);
    }
  }
  // Links to goals: only when every one resolves to a goal of this plan.
  const goalLinks = (refs: unknown): string[] | undefined => {
    const whole = wholeReferences(refs);
    if (!whole) return undefined;
    const links = whole.map((r) => (r.reference ? goalLinkByReference.get(r.reference) : undefined));
    return links.every((l): l is string => l !== undefined) ? links : undefined;
  };

  const plan: SharedCarePlan = {
    patient,
    status: carePlan.status,
    intent: carePlan.intent as SharedCarePlan['intent'],
  };
  if (carePlan.id) plan.id = carePlan.id;
  if (carePlan.meta?.versionId) plan.version = carePlan.meta.versionId;
  if (carePlan.meta?.lastUpdated) plan.lastUpdated = carePlan.meta.lastUpdated;
  takeMeta(rest, profiles.carePlan);
  takeIdentifiers(rest);
  if (text(carePlan.title)) plan.title = carePlan.title;
  if (text(carePlan.description)) plan.description = carePlan.description;
  const period = wholePeriod(carePlan.period);
  if (period) plan.period = period;
  if (typeof carePlan.created === 'string') plan.created = carePlan.created;
  const author = wholeReference(carePlan.author);
  if (author) plan.author = author;
  const contributors = wholeReferences(carePlan.contributor);
  if (contributors) plan.contributors = contributors;

  // category: the assess-plan category the mapping adds itself is not carried.
  if (Array.isArray(rest.category)) {
    const index = rest.category.findIndex((c) => jsonEqual(c, ASSESS_PLAN_CATEGORY));
    if (index >= 0) rest.category.splice(index, 1);
    if (!rest.category.length) delete rest.category;
  }

  if (goals.length) plan.goals = goals;
  if (carriedGoalRefs.length) rest.goal = carriedGoalRefs;
  else delete rest.goal;

  // Care team: the first CareTeam found; other references are carried.
  const careTeamRefs: FhirReference[] = [];
  for (const ref of carePlan.careTeam ?? []) {
    const resource = plan.careTeam ? undefined : resolveOwn(wholeReference(ref)?.reference);
    if (resource?.resourceType === 'CareTeam') {
      source.taken?.(resource);
      plan.careTeam = careTeamFromFhir(
        resource as FhirCareTeam,
        idOf(ref.reference as string, resource),
        patient,
        profiles,
      );
    } else careTeamRefs.push(ref);
  }
  if (careTeamRefs.length) rest.careTeam = careTeamRefs;
  else delete rest.careTeam;

  // Supporting information: what matters, preferences, barriers, strengths.
  const supportingRefs: FhirReference[] = [];
  const preferences: Preference[] = [];
  const barriers: Barrier[] = [];
  const strengths: Strength[] = [];
  for (const ref of carePlan.supportingInfo ?? []) {
    const reference = wholeReference(ref)?.reference;
    const resource = reference ? source.resolve(reference) : undefined;
    const id = resource && reference ? idOf(reference, resource) : undefined;
    let mapped = false;
    if (resource?.resourceType === 'Observation') {
      const observation = resource as Observation;
      const whatMatters = plan.whatMatters ? undefined : whatMattersFromFhir(observation, id, patient);
      const preference = whatMatters ? undefined : preferenceFromFhir(observation, id, patient, profiles);
      const barrier =
        whatMatters || preference ? undefined : barrierFromFhir(observation, id, patient, goalLinks);
      if (whatMatters) plan.whatMatters = whatMatters;
      if (preference) preferences.push(preference);
      if (barrier) barriers.push(barrier);
      mapped = !!(whatMatters || preference || barrier);
    } else if (resource?.resourceType === 'Condition') {
      const strength = strengthFromFhir(resource as Condition, id, patient, goalLinks);
      if (strength) strengths.push(strength);
      mapped = !!strength;
    }
    if (mapped && resource) source.taken?.(resource);
    if (mapped && reference?.startsWith('#')) containedUsed.add(reference.slice(1));
    if (!mapped) supportingRefs.push(ref);
  }
  if (preferences.length) plan.preferences = preferences;
  if (strengths.length) plan.strengths = strengths;
  if (barriers.length) plan.barriers = barriers;
  if (supportingRefs.length) rest.supportingInfo = supportingRefs;
  else delete rest.supportingInfo;

  // Activities.
  if (carePlan.activity?.length) {
    plan.activities = carePlan.activity.map((activity) => activityFromFhir(activity, goalLinks));
  }

  // The revision marker is rewritten on every write; it is not part of the plan.
  takeExtensions(rest, EXTENSION.planRevision, () => true);
  // Shared decisions.
  const decisions = takeExtensions(rest, EXTENSION.sharedDecision, decisionFromExtension);
  if (decisions.length) plan.decisions = decisions;

  // Contained resources the model took are rebuilt by the mapping; the others are carried.
  if (Array.isArray(rest.contained)) {
    const others = (rest.contained as Resource[]).filter((r) => !r.id || !containedUsed.has(r.id));
    if (others.length) rest.contained = others;
    else delete rest.contained;
  }

  // The narrative: ours (exactly what the mapping generates) is regenerated; anyone else's is carried.
  const unmapped = finish(rest, [
    'resourceType',
    'id',
    'status',
    'intent',
    ...(plan.title ? ['title'] : []),
    ...(plan.description ? ['description'] : []),
    ...(plan.period ? ['period'] : []),
    ...(plan.created ? ['created'] : []),
    ...(plan.author ? ['author'] : []),
    ...(plan.contributors ? ['contributor'] : []),
    'activity',
  ]);
  if (unmapped) plan.unmappedFhir = unmapped;
  const narrative = carePlan.text;
  if (
    narrative?.status === 'generated' &&
    narrative.div === carePlanNarrative(plan) &&
    Object.keys(narrative).length === 2
  ) {
    delete plan.unmappedFhir?.text;
    if (plan.unmappedFhir && !Object.keys(plan.unmappedFhir).length) delete plan.unmappedFhir;
  }
  return plan;
}

function goalFromFhir(
  resource: FhirGoal,
  id: string | undefined,
  patient: Reference,
  profiles: UsCoreProfiles,
): Goal {
  const rest: Obj = cloneJson(resource) as unknown as Obj;
  takeMeta(rest, profiles.goal);
  const key = takeIdentifiers(rest);
  const description: Goal['description'] = {};
  const descriptionRest: Obj = isPlainObject(resource.description) ? { ...resource.description } : {};
  if (text(descriptionRest.text)) {
    description.text = descriptionRest.text as string;
    delete descriptionRest.text;
  }
  const codingConcept = wholeCodeableConcept({ coding: descriptionRest.coding });
  if (codingConcept?.coding) {
    description.coding = codingConcept.coding;
    delete descriptionRest.coding;
  }
  if (Object.keys(descriptionRest).length) rest.description = descriptionRest as JsonObject;
  else delete rest.description;
  const goal: Goal = { description, lifecycleStatus: resource.lifecycleStatus };
  if (id) goal.id = id;
  if (key) goal.key = key;
  const expressedBy = wholeReference(resource.expressedBy);
  if (expressedBy) {
    goal.expressedBy = expressedBy;
    delete rest.expressedBy;
  }
  const achievement = takeOwnCode(rest, 'achievementStatus', ACHIEVEMENT_DISPLAY, GOAL_ACHIEVEMENT);
  if (achievement) goal.achievementStatus = achievement;
  const priority = takeOwnCode(rest, 'priority', GOAL_PRIORITY_DISPLAY, GOAL_PRIORITY);
  if (priority) goal.priority = priority;
  if (typeof resource.startDate === 'string') {
    goal.startDate = resource.startDate;
    delete rest.startDate;
  }
  const targets = resource.target?.map(targetFromFhir);
  if (targets?.every((t): t is GoalTarget => t !== undefined)) {
    goal.targets = targets;
    delete rest.target;
  }
  const agreements = takeExtensions(rest, EXTENSION.goalAcceptance, agreementFromExtension);
  if (agreements.length) goal.agreements = agreements;
  takeGoalContributions(goal, rest);
  takeSubject(rest, 'subject', patient);
  const unmapped = finish(rest, ['resourceType', 'id', 'lifecycleStatus']);
  if (unmapped) goal.unmappedFhir = unmapped;
  return goal;
}

/** Notes (Goal.note) and the contribution extensions (who recorded the goal and its agreements). */
function takeGoalContributions(goal: Goal, rest: Obj): void {
  const notes = notesFromAnnotations(rest.note);
  if (notes) {
    goal.notes = notes;
    delete rest.note;
  }
  if (!Array.isArray(rest.extension)) return;
  const all = rest.extension as Extension[];
  const left = takeContributions(
    goal,
    all.filter((e) => e.url === EXTENSION.contribution),
  );
  const kept = all.filter((e) => e.url !== EXTENSION.contribution || left.includes(e));
  if (kept.length) rest.extension = kept as unknown as Json;
  else delete rest.extension;
}

function targetFromFhir(target: NonNullable<FhirGoal['target']>[number]): GoalTarget | undefined {
  const model: GoalTarget = {};
  for (const [key, value] of Object.entries(target)) {
    if (key === 'measure') {
      const measure = wholeCodeableConcept(value);
      if (!measure) return undefined;
      model.measure = measure;
    } else if (key === 'detailQuantity') {
      const quantity = wholeQuantity(value);
      if (!quantity) return undefined;
      model.quantity = quantity;
    } else if (key === 'detailRange') {
      if (!isPlainObject(value) || !Object.keys(value).every((k) => k === 'low' || k === 'high'))
        return undefined;
      const low = value.low === undefined ? undefined : wholeQuantity(value.low);
      const high = value.high === undefined ? undefined : wholeQuantity(value.high);
      if ((value.low !== undefined && !low) || (value.high !== undefined && !high)) return undefined;
      model.range = compact({ low, high });
    } else if (key === 'detailString' && text(value)) model.text = value as string;
    else if (key === 'dueDate' && typeof value === 'string') model.dueDate = value;
    else return undefined;
  }
  return Object.keys(model).length ? model : undefined;
}

function careTeamFromFhir(
  resource: FhirCareTeam,
  id: string | undefined,
  patient: Reference,
  profiles: UsCoreProfiles,
): CareTeam {
  const rest: Obj = cloneJson(resource) as unknown as Obj;
  takeMeta(rest, profiles.careTeam);
  takeIdentifiers(rest);
  const members: CareTeamMember[] = [];
  const carriedParticipants: Json[] = [];
  for (const participant of resource.participant ?? []) {
    const memberSplit = splitReference(participant.member);
    if (!memberSplit.model) {
      carriedParticipants.push(participant as unknown as Json);
      continue;
    }
    const participantRest: Obj = cloneJson(participant) as unknown as Obj;
    const member: CareTeamMember = { member: memberSplit.model };
    if (memberSplit.rest) participantRest.member = memberSplit.rest;
    else delete participantRest.member;
    const role = roleFromFhir(participant.role);
    if (role) {
      Object.assign(member, role);
      delete participantRest.role;
    }
    if (Object.keys(participantRest).length) member.unmappedFhir = participantRest as JsonObject;
    members.push(member);
  }
  if (carriedParticipants.length) rest.participant = carriedParticipants;
  else delete rest.participant;
  const careTeam: CareTeam = { members };
  if (id) careTeam.id = id;
  if (text(resource.name)) {
    careTeam.name = resource.name;
    delete rest.name;
  }
  if (resource.status) {
    careTeam.status = resource.status;
    delete rest.status;
  }
  takeSubject(rest, 'subject', patient);
  const unmapped = finish(rest, ['resourceType', 'id']);
  if (unmapped) careTeam.unmappedFhir = unmapped;
  return careTeam;
}

function activityFromFhir(
  activity: CarePlanActivity,
  goalLinks: (refs: unknown) => string[] | undefined,
): Activity {
  const rest: Obj = cloneJson(activity) as unknown as Obj;
  const model: Activity = {};
  if (typeof activity.id === 'string' && /^[A-Za-z0-9\-.]{1,64}$/.test(activity.id)) {
    model.id = activity.id;
    delete rest.id;
  }
  if (activity.reference) {
    const split = splitReference(activity.reference);
    if (split.model) {
      model.reference = split.model;
      if (split.rest) rest.reference = split.rest;
      else delete rest.reference;
    }
  }
  const detail = activity.detail;
  if (detail && !model.reference) {
    const detailRest: Obj = cloneJson(detail) as unknown as Obj;
    model.status = detail.status;
    delete detailRest.status;
    const take = <T>(key: string, value: T | undefined, assign: (value: T) => void) => {
      if (value === undefined) return;
      assign(value);
      delete detailRest[key];
    };
    take('code', wholeCodeableConcept(detail.code), (v) => (model.code = v));
    take('scheduledPeriod', wholePeriod(detail.scheduledPeriod), (v) => (model.scheduled = v));
    take('scheduledString', text(detail.scheduledString), (v) => (model.scheduledText = v));
    take('performer', wholeReferences(detail.performer), (v) => (model.performers = v));
    take('description', text(detail.description), (v) => (model.description = v));
    take('goal', goalLinks(detail.goal), (v) => (model.goals = v));
    if (Object.keys(detailRest).length) rest.detail = detailRest as JsonObject;
    else delete rest.detail;
  }
  if (Object.keys(rest).length) model.unmappedFhir = rest as JsonObject;
  return model;
}
