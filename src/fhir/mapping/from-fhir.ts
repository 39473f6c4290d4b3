// FHIR R4 -> plan. Pure: no I/O. What the model has a field for goes into that field; everything else is
// carried in `unmappedFhir` so that FHIR -> plan -> FHIR keeps every element.
import type {
  Bundle,
  CarePlan,
  CarePlanActivity,
  Condition,
  Extension,
  CareTeam as FhirCareTeam,
  CodeableConcept as FhirCodeableConcept,
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
  CodeableConcept,
  Goal,
  GoalAgreement,
  GoalTarget,
  Preference,
  Reference,
  SharedCarePlan,
  SharedDecision,
  Strength,
  WhatMatters,
} from '../../model/care-plan.js';
import { cloneJson, compact, isPlainObject, type Json, type JsonObject, jsonEqual } from './carry.js';
import {
  ACHIEVEMENT_DISPLAY,
  BARRIER_CODE,
  BARRIER_LABEL,
  EXTENSION,
  GOAL_PRIORITY_DISPLAY,
  HEALTH_CONCERN_CATEGORY,
  LEGACY_BARRIER_CODE,
  LEGACY_STRENGTH_CODE,
  LEGACY_WHAT_MATTERS_CATEGORY,
  MANAGED_IDENTIFIER_SYSTEMS,
  PERSONAL_VALUE_CODE,
  PREFERENCE_CODE,
  PROFILE,
  ROLE_LABEL,
  SYSTEM,
  US_CORE_PREFERENCE_PROFILE,
  WHAT_MATTERS_CATEGORY,
  WHAT_MATTERS_CODE,
} from './codes.js';
import { carePlanNarrative } from './narrative.js';
import {
  ASSESS_PLAN_CATEGORY,
  careTeamRoleConcept,
  decisionExtension,
  GOAL_ACHIEVEMENT,
  GOAL_PRIORITY,
  strengthCategories,
} from './to-fhir.js';

/** A CarePlan and a way to find the resources it references. */
export interface FhirPlanSource {
  carePlan: CarePlan;
  /** Finds a referenced resource: contained (#id), in the same Bundle, or read from the server. */
  resolve(reference: string): Resource | undefined;
}

export class PlanSourceError extends Error {
  constructor(
    message: string,
    readonly carePlans: string[] = [],
  ) {
    super(message);
  }
}

/** The CarePlan to map from a CarePlan (with contained resources) or a Bundle holding one or more. */
export function planSourceFromFhir(input: Resource, carePlanId?: string): FhirPlanSource {
  if (input.resourceType === 'CarePlan') {
    const carePlan = input as CarePlan;
    if (carePlanId && carePlan.id !== carePlanId) {
      throw new PlanSourceError(`the CarePlan's id is not "${carePlanId}"`);
    }
    return { carePlan, resolve: resolverFor(carePlan, new Map()) };
  }
  if (input.resourceType !== 'Bundle') {
    throw new PlanSourceError(`expected a CarePlan or a Bundle, got ${input.resourceType}`);
  }
  const bundle = resolveBundleReferences(input as Bundle);
  const index = new Map<string, Resource>();
  const carePlans: { key: string; carePlan: CarePlan; fullUrl?: string }[] = [];
  for (const entry of bundle.entry ?? []) {
    const resource = entry.resource;
    if (!resource) continue;
    if (entry.fullUrl) index.set(entry.fullUrl, resource);
    if (resource.id) index.set(`${resource.resourceType}/${resource.id}`, resource);
    if (resource.resourceType === 'CarePlan') {
      carePlans.push({
        key: resource.id ?? entry.fullUrl ?? '',
        carePlan: resource as CarePlan,
        fullUrl: entry.fullUrl,
      });
    }
  }
  const names = carePlans.map((c) => c.key);
  const chosen = carePlanId
    ? carePlans.filter((c) => c.carePlan.id === carePlanId || c.fullUrl === carePlanId)
    : carePlans;
  if (chosen.length === 0) {
    throw new PlanSourceError(
      carePlanId ? `the Bundle holds no CarePlan "${carePlanId}"` : 'the Bundle holds no CarePlan',
      names,
    );
  }
  if (chosen.length > 1) {
    throw new PlanSourceError(
      'the Bundle holds several CarePlans: name the one wanted with ?carePlan=<id>',
      names,
    );
  }
  const carePlan = chosen[0].carePlan;
  return { carePlan, resolve: resolverFor(carePlan, index) };
}

/**
 * A copy of a Bundle in which references to entries by fullUrl (e.g. urn:uuid:...) whose resource has an id
 * become relative references (Type/id), as a server resolves them; other references stay as they are.
 */
export function resolveBundleReferences(bundle: Bundle): Bundle {
  const byFullUrl = new Map<string, string>();
  for (const entry of bundle.entry ?? []) {
    if (entry.fullUrl && entry.resource?.id) {
      byFullUrl.set(entry.fullUrl, `${entry.resource.resourceType}/${entry.resource.id}`);
    }
  }
  if (byFullUrl.size === 0) return bundle;
  const rewrite = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(rewrite);
    if (!isPlainObject(value)) return value;
    const result: Obj = {};
    for (const [key, item] of Object.entries(value)) {
      result[key] =
        key === 'reference' && typeof item === 'string' && byFullUrl.has(item)
          ? byFullUrl.get(item)
          : rewrite(item);
    }
    return result;
  };
  return {
    ...bundle,
    entry: bundle.entry?.map((entry) => ({ ...entry, resource: rewrite(entry.resource) as Resource })),
  };
}

const RELATIVE_REFERENCE = /([A-Z][A-Za-z]+\/[A-Za-z0-9\-.]{1,64})(\/_history\/.*)?$/;

/**
 * Resolves the references of a CarePlan: contained ones (#id) in the CarePlan, others in `index` (keyed by
 * fullUrl and by Type/id), also when written as an absolute or versioned URL.
 */
export function resolverFor(carePlan: CarePlan, index: ReadonlyMap<string, Resource>) {
  return (reference: string): Resource | undefined => {
    if (reference.startsWith('#')) return carePlan.contained?.find((r) => r.id === reference.slice(1));
    const direct = index.get(reference);
    if (direct) return direct;
    const relative = RELATIVE_REFERENCE.exec(reference);
    return relative ? index.get(relative[1]) : undefined;
  };
}

// ---------- small helpers over JSON ----------

type Obj = Record<string, unknown>;
const text = (value: unknown): string | undefined =>
  typeof value === 'string' && /\S/.test(value) ? value : undefined;

/**
 * A code of one of the mapping's own tables, taken from `rest[key]` only when that CodeableConcept is exactly
 * what the mapping builds for the code (otherwise it stays carried as it is).
 */
function takeOwnCode<C extends string>(
  rest: Obj,
  key: string,
  labels: Record<C, string>,
  build: (code: C) => FhirCodeableConcept,
): C | undefined {
  const code = (rest[key] as FhirCodeableConcept | undefined)?.coding?.[0]?.code;
  if (!code || !(code in labels)) return undefined;
  return takeIfEqual(rest, key, build(code as C)) ? (code as C) : undefined;
}

/** Removes `key` from `rest` when it equals `expected`; reports whether it did. */
function takeIfEqual(rest: Obj, key: string, expected: unknown): boolean {
  if (rest[key] !== undefined && jsonEqual(rest[key], expected)) {
    delete rest[key];
    return true;
  }
  return false;
}

const REFERENCE_PATTERN =
  /^(#[A-Za-z0-9\-.]{1,64}|[A-Z][A-Za-z]+\/[A-Za-z0-9\-.]{1,64}(\/_history\/[A-Za-z0-9\-.]{1,64})?|https?:\/\/\S+|urn:(uuid|oid):\S+)$/;

/** Splits a FHIR Reference into what the model holds and the rest. */
function splitReference(value: unknown): { model?: Reference; rest?: JsonObject } {
  if (!isPlainObject(value)) return {};
  const rest: Obj = { ...value };
  const model: Reference = {};
  if (typeof rest.reference === 'string' && REFERENCE_PATTERN.test(rest.reference)) {
    model.reference = rest.reference;
    delete rest.reference;
  }
  if (text(rest.type) && /^\S+$/.test(rest.type as string)) {
    model.type = rest.type as string;
    delete rest.type;
  }
  if (text(rest.display)) {
    model.display = rest.display as string;
    delete rest.display;
  }
  return {
    model: Object.keys(model).length ? model : undefined,
    rest: Object.keys(rest).length ? (rest as JsonObject) : undefined,
  };
}

/** A reference the model can hold completely, or undefined. */
function wholeReference(value: unknown): Reference | undefined {
  const { model, rest } = splitReference(value);
  return model && !rest ? model : undefined;
}

/** An array of references the model can hold completely, or undefined. */
function wholeReferences(value: unknown): Reference[] | undefined {
  if (!Array.isArray(value)) return undefined;
  const refs = value.map(wholeReference);
  return refs.every((r): r is Reference => r !== undefined) ? refs : undefined;
}

const CODING_KEYS = new Set(['system', 'version', 'code', 'display', 'userSelected']);
function wholeCodeableConcept(value: unknown): CodeableConcept | undefined {
  if (!isPlainObject(value)) return undefined;
  if (!Object.keys(value).every((k) => k === 'coding' || k === 'text')) return undefined;
  if (value.text !== undefined && !text(value.text)) return undefined;
  if (value.coding !== undefined) {
    if (!Array.isArray(value.coding) || value.coding.length === 0) return undefined;
    const codingOk = value.coding.every(
      (c) =>
        isPlainObject(c) &&
        Object.keys(c).length > 0 &&
        Object.entries(c).every(([k, v]) => CODING_KEYS.has(k) && (typeof v === 'boolean' || text(v))),
    );
    if (!codingOk) return undefined;
  }
  return cloneJson(value) as CodeableConcept;
}

const PERIOD_KEYS = new Set(['start', 'end']);
function wholePeriod(value: unknown): { start?: string; end?: string } | undefined {
  if (!isPlainObject(value) || !Object.keys(value).length) return undefined;
  return Object.entries(value).every(([k, v]) => PERIOD_KEYS.has(k) && typeof v === 'string')
    ? (cloneJson(value) as { start?: string; end?: string })
    : undefined;
}

const QUANTITY_KEYS = new Set(['value', 'comparator', 'unit', 'system', 'code']);
function wholeQuantity(value: unknown): Obj | undefined {
  if (!isPlainObject(value) || !Object.keys(value).length) return undefined;
  return Object.keys(value).every((k) => QUANTITY_KEYS.has(k)) ? cloneJson(value) : undefined;
}

/** Moves the subject out of `rest` when it is the plan's patient; keeps any difference. */
function takeSubject(rest: Obj, key: string, patient: Reference) {
  const { model, rest: extra } = splitReference(rest[key]);
  if (model && jsonEqual(model, patient)) {
    if (extra) rest[key] = extra;
    else delete rest[key];
  }
}

/** Strips what the server manages and the claims the mapping adds back itself. */
function takeMeta(rest: Obj, ownProfile: string | RegExp | undefined) {
  if (!isPlainObject(rest.meta)) return;
  const meta: Obj = { ...rest.meta };
  delete meta.versionId;
  delete meta.lastUpdated;
  if (Array.isArray(meta.profile)) {
    const own = (p: unknown) =>
      ownProfile instanceof RegExp ? typeof p === 'string' && ownProfile.test(p) : p === ownProfile;
    const profiles = meta.profile.filter((p) => !own(p));
    if (profiles.length) meta.profile = profiles;
    else delete meta.profile;
  }
  if (Object.keys(meta).length) rest.meta = meta as JsonObject;
  else delete rest.meta;
}

/** Removes this project's own identifiers; returns the goal key if there is one. */
function takeIdentifiers(rest: Obj): string | undefined {
  if (!Array.isArray(rest.identifier)) return undefined;
  let key: string | undefined;
  const others = rest.identifier.filter((identifier: { system?: string; value?: string }) => {
    // Managed identifiers (plan membership, idempotency) are the service's, rewritten from what it stored.
    if (MANAGED_IDENTIFIER_SYSTEMS.includes(identifier.system ?? '')) return false;
    if (identifier.system !== SYSTEM.goalKey || Object.keys(identifier).length !== 2) return true;
    key = identifier.value;
    return false;
  });
  if (others.length) rest.identifier = others;
  else delete rest.identifier;
  return key;
}

/** Takes the extensions `parse` understands (exactly); leaves the others. */
function takeExtensions<T>(rest: Obj, url: string, parse: (extension: Extension) => T | undefined): T[] {
  if (!Array.isArray(rest.extension)) return [];
  const taken: T[] = [];
  const others = (rest.extension as Extension[]).filter((extension) => {
    if (extension.url !== url) return true;
    const parsed = parse(extension);
    if (parsed === undefined) return true;
    taken.push(parsed);
    return false;
  });
  if (others.length) rest.extension = others;
  else delete rest.extension;
  return taken;
}

function finish(rest: Obj, consumed: string[]): JsonObject | undefined {
  for (const key of consumed) delete rest[key];
  return Object.keys(rest).length ? (rest as JsonObject) : undefined;
}

// ---------- the mapping ----------

export function planFromFhir(source: FhirPlanSource): SharedCarePlan {
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
    const goal = goalFromFhir(resource as FhirGoal, idOf(ref.reference as string, resource), patient);
    goals.push(goal);
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
  takeMeta(rest, PROFILE.carePlan);
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
      plan.careTeam = careTeamFromFhir(
        resource as FhirCareTeam,
        idOf(ref.reference as string, resource),
        patient,
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
      const preference = whatMatters ? undefined : preferenceFromFhir(observation, id, patient);
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

function goalFromFhir(resource: FhirGoal, id: string | undefined, patient: Reference): Goal {
  const rest: Obj = cloneJson(resource) as unknown as Obj;
  takeMeta(rest, PROFILE.goal);
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
  takeSubject(rest, 'subject', patient);
  const unmapped = finish(rest, ['resourceType', 'id', 'lifecycleStatus']);
  if (unmapped) goal.unmappedFhir = unmapped;
  return goal;
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

function agreementFromExtension(extension: Extension): GoalAgreement | undefined {
  const parts = extension.extension ?? [];
  const who = wholeReference(parts.find((p) => p.url === 'individual')?.valueReference);
  const status = parts.find((p) => p.url === 'status')?.valueCode;
  const priority = wholeCodeableConcept(parts.find((p) => p.url === 'priority')?.valueCodeableConcept);
  if (!who || (status !== 'agree' && status !== 'disagree' && status !== 'pending')) return undefined;
  const agreement: GoalAgreement = priority ? { who, status, priority } : { who, status };
  const rebuilt = {
    url: EXTENSION.goalAcceptance,
    extension: [
      { url: 'individual', valueReference: who },
      { url: 'status', valueCode: status },
      ...(priority ? [{ url: 'priority', valueCodeableConcept: priority }] : []),
    ],
  };
  return jsonEqual(rebuilt, extension) ? agreement : undefined;
}

function decisionFromExtension(extension: Extension): SharedDecision | undefined {
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

function careTeamFromFhir(resource: FhirCareTeam, id: string | undefined, patient: Reference): CareTeam {
  const rest: Obj = cloneJson(resource) as unknown as Obj;
  takeMeta(rest, PROFILE.careTeam);
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

/** A role the model can hold exactly (one CodeableConcept as the mapping builds it), or undefined. */
function roleFromFhir(
  roles: FhirCodeableConcept[] | undefined,
): Pick<CareTeamMember, 'role' | 'roleText'> | undefined {
  if (roles?.length !== 1) return undefined;
  const code = roles[0].coding?.find((c) => c.system === SYSTEM.careTeamRole)?.code;
  if (!code || !(code in ROLE_LABEL)) return undefined;
  const candidate = compact({ role: code as CareTeamMember['role'], roleText: text(roles[0].text) });
  return jsonEqual(careTeamRoleConcept(candidate), roles[0]) ? candidate : undefined;
}

/** Common part of the Observations and Conditions the plan maps: status, subject, meta, identifiers. */
function supportingRest(resource: Resource, patient: Reference, profile?: string | RegExp): Obj {
  const rest: Obj = cloneJson(resource) as unknown as Obj;
  takeMeta(rest, profile);
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

function whatMattersFromFhir(
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

function preferenceFromFhir(
  observation: Observation,
  id: string | undefined,
  patient: Reference,
): Preference | undefined {
  const kind = (Object.keys(PREFERENCE_CODE) as Preference['kind'][]).find((k) =>
    jsonEqual(observation.code, { coding: [PREFERENCE_CODE[k]] }),
  );
  if (!kind || !text(observation.valueString) || observation.status !== 'final') return undefined;
  // Recognised by its code; a claim of a US Core preference profile (any version) is not carried: the service
  // claims none (the profiles exist only from US Core 7.0.0).
  const rest = supportingRest(observation, patient, US_CORE_PREFERENCE_PROFILE);
  return { kind, ...statementFromFhir(observation, id, rest) };
}

function barrierFromFhir(
  observation: Observation,
  id: string | undefined,
  patient: Reference,
  goalLinks: (refs: unknown) => string[] | undefined,
): Barrier | undefined {
  // The code as written now, or with the display earlier versions of this service wrote.
  const coded = [BARRIER_CODE, LEGACY_BARRIER_CODE].some((c) =>
    jsonEqual(observation.code, { coding: [{ ...c }] }),
  );
  if (!coded || observation.status !== 'final') return undefined;
  const rest = supportingRest(observation, patient);
  let barrier: Barrier | undefined;
  if (text(observation.valueString)) {
    barrier = { statement: observation.valueString as string };
    delete rest.valueString;
  } else if (observation.valueCodeableConcept) {
    const concept = observation.valueCodeableConcept;
    const category = concept.coding?.[0]?.code as Barrier['category'];
    const expected = category && {
      coding: [{ system: SYSTEM.barrierCategory, code: category, display: BARRIER_LABEL[category] }],
      text: concept.text,
    };
    if (!category || !text(concept.text) || !jsonEqual(expected, concept)) return undefined;
    barrier = { statement: concept.text as string, category };
    delete rest.valueCodeableConcept;
  } else return undefined;
  if (id) barrier.id = id;
  const goals = goalLinks(observation.focus);
  if (goals) {
    barrier.goals = goals;
    delete rest.focus;
  }
  const unmapped = finish(rest, ['resourceType', 'id', 'status', 'code']);
  if (unmapped) barrier.unmappedFhir = unmapped;
  return barrier;
}

function strengthFromFhir(
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
  const unmapped = finish(rest, ['resourceType', 'id', 'code']);
  if (unmapped) strength.unmappedFhir = unmapped;
  return strength;
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
