// The measures' criteria (definitions.ts says them in words) on one plan at a time. Pure: no I/O. A plan is read
// with the existing FHIR -> plan mapping (planFromFhir over its own parts, plan-parts.ts), so every field means
// here what it means everywhere else in the service.
import type { Bundle, CarePlan, Goal as FhirGoal } from 'fhir/r4.js';
import { subjectPatient } from '../auth/caller.js';
import { planKeyOf } from '../fhir/mapping/plan-parts.js';
import type { Goal, SharedCarePlan } from '../model/care-plan.js';
import type { MeasureId } from './definitions.js';

/** A measurement period: calendar dates, both days included. */
export interface MeasurementPeriod {
  start: string;
  end: string;
}

/** One plan as the measures see it: the mapped plan and the stored Goals (for their history and notes). */
export interface PlanCase {
  carePlan: CarePlan;
  plan: SharedCarePlan;
  /** The plan's own Goal resources, by id. */
  goals: ReadonlyMap<string, FhirGoal>;
  /** Instance histories of Goals (by id), where goal-follow-up needed one. */
  goalHistories?: ReadonlyMap<string, Bundle>;
}

/** One counted case: which resource it is about, whether it is excluded, whether it meets the numerator. */
export interface MeasureCase {
  subject: string;
  excluded: boolean;
  numerator: boolean;
}

const DAY_MS = 86_400_000;
/** PCO GoalFollowUpMeasure.cql, "Follow-Up Interval": Interval[2 weeks, 26 weeks]. */
export const FOLLOW_UP_FROM_DAYS = 14;
export const FOLLOW_UP_TO_DAYS = 182;

/** The first calendar day a FHIR date or dateTime can mean (2026 -> 2026-01-01). */
export function firstDay(value: string): string {
  const date = value.slice(0, 10);
  return date.length === 4 ? `${date}-01-01` : date.length === 7 ? `${date}-01` : date;
}

/** The last calendar day a FHIR date or dateTime can mean (2026-02 -> 2026-02-31, fine for comparing). */
export function lastDay(value: string): string {
  const date = value.slice(0, 10);
  return date.length === 4 ? `${date}-12-31` : date.length === 7 ? `${date}-31` : date;
}

export function addDays(date: string, days: number): string {
  const [year, month, day] = date.split('-').map(Number);
  return new Date(Date.UTC(year, month - 1, day) + days * DAY_MS).toISOString().slice(0, 10);
}

const ENDED = new Set(['completed', 'revoked']);
const NEVER_ACTIVE = new Set(['draft', 'entered-in-error']);

/** The initial population of plans (definitions.ts PLANS_IN_PERIOD), decided on the CarePlan alone. */
export function planInPeriod(carePlan: CarePlan, period: MeasurementPeriod): boolean {
  if (!planKeyOf(carePlan) || NEVER_ACTIVE.has(carePlan.status)) return false;
  const start = carePlan.period?.start ?? carePlan.created;
  if (start && firstDay(start) > period.end) return false;
  const end = carePlan.period?.end ?? (ENDED.has(carePlan.status) ? carePlan.meta?.lastUpdated : undefined);
  return !(end && lastDay(end) < period.start);
}

const isPatient = (plan: SharedCarePlan, reference: string | undefined) =>
  !!reference &&
  subjectPatient(reference) !== undefined &&
  subjectPatient(reference) === subjectPatient(plan.patient.reference);

const familyOnTeam = (plan: SharedCarePlan): Set<string> =>
  new Set(
    (plan.careTeam?.members ?? [])
      .map((m) => m.member.reference)
      .filter((r): r is string => !!r?.startsWith('RelatedPerson/')),
  );

const excludedGoal = (goal: Goal) =>
  goal.lifecycleStatus === 'cancelled' || goal.lifecycleStatus === 'entered-in-error';
const planSubject = (c: PlanCase) => `CarePlan/${c.carePlan.id}`;
const goalSubject = (c: PlanCase, goal: Goal) => (goal.id ? `Goal/${goal.id}` : planSubject(c));

/** Goals of goal-follow-up's initial population: with a start date at least 14 days before the period end. */
function followUpGoals(c: PlanCase, period: MeasurementPeriod): Goal[] {
  const latestStart = addDays(period.end, -FOLLOW_UP_FROM_DAYS);
  return (c.plan.goals ?? []).filter((g) => !!g.startDate && firstDay(g.startDate) <= latestStart);
}

/** The calendar days on which goal-follow-up counts a progress record for a goal (both ends included). */
function followUpWindow(goal: Goal, period: MeasurementPeriod): MeasurementPeriod {
  const start = firstDay(goal.startDate as string);
  const from = addDays(start, FOLLOW_UP_FROM_DAYS);
  const to = addDays(start, FOLLOW_UP_TO_DAYS);
  // Calendar dates (YYYY-MM-DD) compare as strings: the later start and the earlier end.
  return { start: [from, period.start].sort()[1], end: [to, period.end].sort()[0] };
}

const within = (instant: string | undefined, window: MeasurementPeriod) =>
  !!instant && instant.slice(0, 10) >= window.start && instant.slice(0, 10) <= window.end;

const achievement = (goal: FhirGoal) =>
  goal.achievementStatus?.coding?.[0]?.code ?? goal.achievementStatus?.text ?? '';

/** A note on the Goal with a time in the window. */
function notedWithin(goal: FhirGoal | undefined, window: MeasurementPeriod): boolean {
  return !!goal?.note?.some((note) => within(note.time, window));
}

/** A version of the Goal, recorded in the window, whose achievementStatus differs from the version before it. */
function statusChangedWithin(history: Bundle | undefined, window: MeasurementPeriod): boolean {
  const versions = (history?.entry ?? [])
    .map((e) => e.resource as FhirGoal | undefined)
    .filter((r): r is FhirGoal => r?.resourceType === 'Goal' && !!r.meta?.lastUpdated)
    .sort((a, b) => Date.parse(a.meta?.lastUpdated ?? '') - Date.parse(b.meta?.lastUpdated ?? ''));
  return versions.some(
    (version, i) =>
      i > 0 &&
      within(version.meta?.lastUpdated, window) &&
      achievement(version) !== achievement(versions[i - 1]),
  );
}

/**
 * The Goals of goal-follow-up whose history must be read: in the population, not excluded, no note already counts,
 * and changed since the window opened (a Goal last changed before that has no version in it).
 */
export function goalsNeedingHistory(c: PlanCase, period: MeasurementPeriod): string[] {
  const ids: string[] = [];
  for (const goal of followUpGoals(c, period)) {
    if (excludedGoal(goal) || !goal.id) continue;
    const window = followUpWindow(goal, period);
    const stored = c.goals.get(goal.id);
    if (window.start > window.end || notedWithin(stored, window)) continue;
    const changed = stored?.meta?.lastUpdated;
    if (changed && changed.slice(0, 10) >= window.start) ids.push(goal.id);
  }
  return ids;
}

/** The cases one plan contributes to a measure. */
export function casesOf(measure: MeasureId, c: PlanCase, period: MeasurementPeriod): MeasureCase[] {
  const { plan } = c;
  switch (measure) {
    case 'what-matters-documented':
      return [
        {
          subject: planSubject(c),
          excluded: false,
          numerator:
            !!plan.whatMatters?.statement && isPatient(plan, plan.whatMatters.expressedBy?.reference),
        },
      ];
    case 'patient-expressed-goals': {
      const family = familyOnTeam(plan);
      return (plan.goals ?? []).map((goal) => {
        const by = goal.expressedBy?.reference;
        return {
          subject: goalSubject(c, goal),
          excluded: excludedGoal(goal),
          numerator: !excludedGoal(goal) && (isPatient(plan, by) || (!!by && family.has(by))),
        };
      });
    }
    case 'goals-agreed-by-patient':
      return (plan.goals ?? []).map((goal) => ({
        subject: goalSubject(c, goal),
        excluded: excludedGoal(goal),
        numerator:
          !excludedGoal(goal) &&
          !!goal.agreements?.some((a) => a.status === 'agree' && isPatient(plan, a.who.reference)),
      }));
    case 'barriers-addressed':
      return barrierCases(c);
    case 'decisions-shared':
      return (plan.decisions ?? []).map((decision) => ({
        subject: planSubject(c),
        excluded: false,
        numerator:
          decision.options.length >= 2 &&
          !!decision.chosenOption &&
          decision.options.some((o) => o.title === decision.chosenOption) &&
          !!decision.rationale?.trim() &&
          !!decision.participants?.some((p) => isPatient(plan, p.reference)),
      }));
    case 'goal-follow-up':
      return followUpGoals(c, period).map((goal) => {
        const window = followUpWindow(goal, period);
        const followedUp =
          window.start <= window.end &&
          (notedWithin(goal.id ? c.goals.get(goal.id) : undefined, window) ||
            statusChangedWithin(goal.id ? c.goalHistories?.get(goal.id) : undefined, window));
        return {
          subject: goalSubject(c, goal),
          excluded: excludedGoal(goal),
          numerator: !excludedGoal(goal) && followedUp,
        };
      });
  }
}

const NOT_WORKING = new Set(['cancelled', 'stopped', 'entered-in-error']);

/** barriers-addressed: a barrier is worked on by an activity that links to a goal the barrier affects. */
function barrierCases(c: PlanCase): MeasureCase[] {
  const { plan } = c;
  // Links name a goal by key or id (goalLinkName): both lead to the same goal.
  const goalOf = new Map<string, Goal>();
  for (const goal of plan.goals ?? []) {
    if (goal.id) goalOf.set(goal.id, goal);
    if (goal.key) goalOf.set(goal.key, goal);
  }
  const worked = new Set<Goal>();
  for (const activity of plan.activities ?? []) {
    if (activity.status && NOT_WORKING.has(activity.status)) continue;
    for (const link of activity.goals ?? []) {
      const goal = goalOf.get(link);
      if (goal) worked.add(goal);
    }
  }
  return (plan.barriers ?? []).map((barrier) => ({
    subject: barrier.id ? `Observation/${barrier.id}` : planSubject(c),
    excluded: false,
    numerator: (barrier.goals ?? []).some((link) => {
      const goal = goalOf.get(link);
      return !!goal && worked.has(goal);
    }),
  }));
}
