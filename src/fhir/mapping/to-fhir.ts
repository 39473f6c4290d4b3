// plan -> FHIR R4 transaction Bundle. Pure: no I/O; ids for new resources come from the injected generator.
import type {
  Bundle,
  BundleEntry,
  CarePlan,
  CarePlanActivity,
  CareTeam,
  CodeableConcept as FhirCodeableConcept,
  Goal as FhirGoal,
  GoalTarget as FhirGoalTarget,
  Reference as FhirReference,
  Identifier,
  Resource,
} from 'fhir/r4.js';
import type { Activity, Goal, GoalTarget, SharedCarePlan } from '../../model/care-plan.js';
import { compact, mergeCarried } from './carry.js';
import { EXTENSION, SYSTEM, type UsCoreProfiles, type UsCoreVersion, usCoreProfiles } from './codes.js';
import { contributionExtensions, noteAnnotation } from './contributions.js';
import { carePlanNarrative } from './narrative.js';
import { profiled } from './profiles.js';
import {
  ASSESS_PLAN_CATEGORY,
  acceptanceExtension,
  careTeamRoleConcept,
  decisionExtension,
  GOAL_ACHIEVEMENT,
  GOAL_PRIORITY,
} from './shapes.js';
import { buildBarrier, buildPreference, buildStrength, buildWhatMatters } from './supporting-to-fhir.js';

export {
  ASSESS_PLAN_CATEGORY,
  careTeamRoleConcept,
  decisionExtension,
  GOAL_ACHIEVEMENT,
  GOAL_PRIORITY,
  strengthCategories,
} from './shapes.js';

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
  /**
   * The plan's own identifier (SYSTEM.planPart), written on the CarePlan and on every part so that a read can tell
   * the plan's parts from resources it merely references.
   */
  planKey?: string;
  /** The managed identifiers (plan membership, idempotency) of stored resources, by Type/id, kept on update. */
  storedIdentifiers?: ReadonlyMap<string, Identifier[]>;
  /**
   * The FHIR server's base URL (e.g. https://fhir.example.org/fhir): the fullUrl of every PUT entry is
   * `<serverBase>/<Type>/<id>`. FHIR R4 (https://hl7.org/fhir/R4/bundle.html#bundle-unique, bdl-7 and "fullUrl":
   * "the absolute URL for the resource ... for a resource on a RESTful server, the fullUrl is the URL at which the
   * resource can be resolved") needs it, so that the relative references inside the entry (Goal/1) resolve within
   * the Bundle. Without it, PUT entries have no fullUrl.
   */
  serverBase?: string;
  /** The US Core version of every profile claimed (US_CORE_VERSION; default 6.1.0). */
  usCoreVersion?: UsCoreVersion;
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

/**
 * The identifiers only the service writes, first on every stored resource of the plan, in a fixed order (so that an
 * unchanged part compares equal to its stored version): the plan's identifier, then the idempotency identifier it
 * was created with.
 */
function managedIdentifiers(
  options: ToFhirOptions,
  stored: string | undefined,
  created: Identifier | undefined,
): Identifier[] {
  const kept = stored ? (options.storedIdentifiers?.get(stored) ?? []) : [];
  return [
    ...(options.planKey ? [{ system: SYSTEM.planPart, value: options.planKey }] : []),
    ...kept.filter((i) => i.system !== SYSTEM.planPart),
    ...(created ? [created] : []),
  ];
}

function withIdentifiersFirst<T extends Resource>(resource: T, first: Identifier[]): T {
  if (!first.length) return resource;
  const own = (resource as { identifier?: Identifier[] }).identifier ?? [];
  return { ...resource, identifier: [...first, ...own] };
}

export function planToTransaction(plan: SharedCarePlan, options: ToFhirOptions): Bundle {
  const profiles = usCoreProfiles(options.usCoreVersion);
  const patient: FhirReference = { ...plan.patient };
  const built: Built[] = [];
  const goalReference = new Map<string, string>();

  const add = (
    resourceType: string,
    id: string | undefined,
    suffix: string,
    make: (p: Placement) => Resource,
  ) => {
    const placement = place(resourceType, id, options.newUuid);
    const identifier = !id ? idempotencyIdentifier(options, suffix) : undefined;
    // Contained resources live inside the CarePlan: they need no identifier to prove where they belong.
    const managed = placement.contained
      ? []
      : managedIdentifiers(options, id && `${resourceType}/${id}`, identifier);
    built.push({ placement, resource: withIdentifiersFirst(make(placement), managed), identifier });
    return placement;
  };

  const goalPlacements = (plan.goals ?? []).map((goal, index) => {
    const placement = add('Goal', goal.id, `/goal/${index}`, (p) => buildGoal(goal, p, patient, profiles));
    if (goal.key) goalReference.set(goal.key, placement.reference);
    if (goal.id) goalReference.set(goal.id, placement.reference);
    return placement;
  });
  const linkGoals = (links: string[] | undefined): FhirReference[] =>
    (links ?? []).map((link) => reference(goalReference.get(link) ?? `Goal/${link}`));

  const careTeam = plan.careTeam;
  const careTeamPlacement = careTeam
    ? add('CareTeam', careTeam.id, '/care-team', (p) =>
        profiled<CareTeam>(
          compact({
            resourceType: 'CareTeam',
            id: p.id,
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
          careTeam.members.length > 0 && careTeam.members.every((m) => m.role)
            ? profiles.careTeam
            : undefined,
          careTeam.unmappedFhir,
        ),
      )
    : undefined;

  const supporting: Placement[] = [];
  if (plan.whatMatters) {
    const whatMatters = plan.whatMatters;
    supporting.push(
      add('Observation', whatMatters.id, '/what-matters', (p) =>
        buildWhatMatters(whatMatters, p.id, patient),
      ),
    );
  }
  (plan.preferences ?? []).forEach((preference, index) => {
    supporting.push(
      add('Observation', preference.id, `/preference/${index}`, (p) =>
        buildPreference(preference, p.id, patient, profiles),
      ),
    );
  });
  (plan.barriers ?? []).forEach((barrier, index) => {
    supporting.push(
      add('Observation', barrier.id, `/barrier/${index}`, (p) =>
        buildBarrier(barrier, p.id, patient, linkGoals(barrier.goals)),
      ),
    );
  });
  (plan.strengths ?? []).forEach((strength, index) => {
    supporting.push(
      add('Condition', strength.id, `/strength/${index}`, (p) =>
        buildStrength(strength, p.id, patient, linkGoals(strength.goals)),
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
  const carePlanIdentifiers = managedIdentifiers(options, plan.id && `CarePlan/${plan.id}`, undefined);
  const idempotent: Identifier | undefined =
    !plan.id && options.idempotency
      ? { system: SYSTEM.idempotencyKey, value: options.idempotency.keyHash }
      : undefined;
  if (idempotent && options.idempotency) {
    carePlanIdentifiers.push(idempotent, {
      system: SYSTEM.idempotencyRequest,
      value: options.idempotency.requestHash,
    });
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
    profiles.carePlan,
    carried,
  );

  const entries: BundleEntry[] = [];
  entries.push(entryFor(carePlanPlacement, carePlan, idempotent, options.ifMatchVersion));
  for (const b of built) {
    if (!b.placement.contained) entries.push(entryFor(b.placement, b.resource, b.identifier));
  }
  const base = options.serverBase?.replace(/\/+$/, '');
  if (base) {
    for (const entry of entries) {
      if (entry.request?.method === 'PUT') entry.fullUrl = `${base}/${entry.request.url}`;
    }
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

function buildGoal(goal: Goal, p: Placement, patient: FhirReference, profiles: UsCoreProfiles): FhirGoal {
  const identifiers: Identifier[] = goal.key ? [{ system: SYSTEM.goalKey, value: goal.key }] : [];
  const resource = compact({
    resourceType: 'Goal',
    id: p.id,
    extension: [...(goal.agreements ?? []).map(acceptanceExtension), ...contributionExtensions(goal)],
    identifier: identifiers,
    lifecycleStatus: goal.lifecycleStatus,
    achievementStatus: goal.achievementStatus ? GOAL_ACHIEVEMENT(goal.achievementStatus) : undefined,
    priority: goal.priority ? GOAL_PRIORITY(goal.priority) : undefined,
    description: compact({ coding: goal.description.coding, text: goal.description.text }),
    subject: patient,
    startDate: goal.startDate,
    target: (goal.targets ?? []).map(goalTarget),
    expressedBy: goal.expressedBy,
    note: (goal.notes ?? []).map(noteAnnotation),
  }) as FhirGoal;
  // US Core 6.1.0 Goal: lifecycleStatus, description and subject, all always present here.
  return profiled(resource, profiles.goal, goal.unmappedFhir);
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
