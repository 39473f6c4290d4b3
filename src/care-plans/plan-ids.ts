// The ids of a plan's parts as the use cases handle them: dropped on create, minted for new activities, and
// listed to tell a plan's own parts from another plan's.
import type { SharedCarePlan } from '../model/care-plan.js';

/** Ids of non-contained resources are dropped so that POST always creates, never overwrites. */
export function withoutStoredIds(plan: SharedCarePlan): SharedCarePlan {
  const strip = <T extends { id?: string }>(item: T): T => {
    if (item.id === undefined || item.id.startsWith('#')) return item;
    const { id: _id, ...rest } = item;
    return rest as T;
  };
  const { id: _id, version: _version, lastUpdated: _lastUpdated, ...rest } = plan;
  // Links by id must keep working once the id is gone: name such goals by their old id.
  const goals = plan.goals?.map((goal) =>
    goal.id && !goal.id.startsWith('#') && !goal.key ? { ...strip(goal), key: goal.id } : strip(goal),
  );
  return {
    ...rest,
    ...(goals ? { goals } : {}),
    ...(plan.whatMatters ? { whatMatters: strip(plan.whatMatters) } : {}),
    ...(plan.preferences ? { preferences: plan.preferences.map(strip) } : {}),
    ...(plan.barriers ? { barriers: plan.barriers.map(strip) } : {}),
    ...(plan.strengths ? { strengths: plan.strengths.map(strip) } : {}),
    ...(plan.careTeam ? { careTeam: strip(plan.careTeam) } : {}),
  };
}

/** Activities are addressed by id (PATCH /care-plans/{id}/activities/{activityId}): give new ones an id. */
export function withActivityIds(plan: SharedCarePlan, newUuid: () => string): SharedCarePlan {
  if (!plan.activities?.some((a) => a.id === undefined)) return plan;
  return {
    ...plan,
    activities: plan.activities.map((a) => (a.id ? a : { id: `activity-${newUuid().slice(0, 8)}`, ...a })),
  };
}

/** The references (Type/id) of the stored resources a plan is made of, besides its CarePlan. */
export function partReferences(plan: SharedCarePlan): Set<string> {
  const refs = new Set<string>();
  const add = (type: string, id: string | undefined) => {
    if (id && !id.startsWith('#')) refs.add(`${type}/${id}`);
  };
  for (const goal of plan.goals ?? []) add('Goal', goal.id);
  add('CareTeam', plan.careTeam?.id);
  add('Observation', plan.whatMatters?.id);
  for (const item of [...(plan.preferences ?? []), ...(plan.barriers ?? [])]) add('Observation', item.id);
  for (const item of plan.strengths ?? []) add('Condition', item.id);
  return refs;
}
