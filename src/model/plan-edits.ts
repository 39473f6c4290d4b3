// Small edits of a plan as pure functions: add, change or remove one goal, activity, preference, strength or
// barrier. Routes read the plan, apply one of these, and write it back version-checked (CarePlans.edit).
import type { Activity, Barrier, Goal, Preference, SharedCarePlan, Strength } from './care-plan.js';
import { DomainError } from './errors.js';

export type PlanPart = 'goals' | 'activities' | 'preferences' | 'strengths' | 'barriers';
export type PartOf<P extends PlanPart> = P extends 'goals'
  ? Goal
  : P extends 'activities'
    ? Activity
    : P extends 'preferences'
      ? Preference
      : P extends 'strengths'
        ? Strength
        : Barrier;
type AnyPart = Goal | Activity | Preference | Strength | Barrier;

/** What a 404 calls a missing part. */
function missing(part: PlanPart, name: string): string {
  if (part === 'goals') return `goal "${name}"`;
  if (part === 'activities') return `activity "${name}"`;
  return `item "${name}" in ${part}`;
}

/** Goals are named by id or key; every other part by id. */
function matches(part: PlanPart, item: AnyPart, name: string): boolean {
  return item.id === name || (part === 'goals' && (item as Goal).key === name);
}

export function findPart(plan: SharedCarePlan, part: PlanPart, name: string): number {
  const index = (plan[part] ?? []).findIndex((item: AnyPart) => matches(part, item, name));
  if (index < 0) throw new DomainError('not-found', `the plan has no ${missing(part, name)}`);
  return index;
}

export function addPart<P extends PlanPart>(plan: SharedCarePlan, part: P, item: PartOf<P>): SharedCarePlan {
  // A new part never names a stored resource: the FHIR server gives it an id.
  const { id: _id, ...fresh } = item;
  return { ...plan, [part]: [...(plan[part] ?? []), fresh] };
}

export function changePart<P extends PlanPart>(
  plan: SharedCarePlan,
  part: P,
  name: string,
  changes: Partial<PartOf<P>>,
): SharedCarePlan {
  const index = findPart(plan, part, name);
  const items = [...(plan[part] ?? [])] as unknown as PartOf<P>[];
  items[index] = { ...items[index], ...changes };
  return { ...plan, [part]: items };
}

/** Removes a part; removing a goal also removes every link to it. */
export function removePart(plan: SharedCarePlan, part: PlanPart, name: string): SharedCarePlan {
  const index = findPart(plan, part, name);
  const removed = (plan[part] ?? [])[index] as AnyPart;
  const remaining = (plan[part] ?? []).filter((_: unknown, i: number) => i !== index);
  const { [part]: _all, ...rest } = plan;
  const edited: SharedCarePlan = remaining.length ? { ...rest, [part]: remaining } : rest;
  if (part !== 'goals') return edited;
  const names = new Set([(removed as Goal).key, removed.id].filter((n): n is string => !!n));
  const unlink = <T extends { goals?: string[] }>(item: T): T => {
    if (!item.goals) return item;
    const { goals, ...others } = item;
    const kept = goals.filter((g) => !names.has(g));
    return (kept.length ? { ...others, goals: kept } : others) as T;
  };
  return {
    ...edited,
    ...(edited.activities ? { activities: edited.activities.map(unlink) } : {}),
    ...(edited.barriers ? { barriers: edited.barriers.map(unlink) } : {}),
    ...(edited.strengths ? { strengths: edited.strengths.map(unlink) } : {}),
  };
}
