// What the service fills in on a write by a person: what they add is in their name (expressedBy) and dated
// (recordedOn); a goal a professional records for someone else says who recorded it. Then ownership.ts checks.

import { personType, subjectPatient } from '../auth/caller.js';
import type { Goal, Reference, SharedCarePlan } from '../model/care-plan.js';
import { hiddenPlan, type Participant, requireAllowed } from './access.js';
import { checkOwnership } from './ownership.js';
import { knownName } from './participants.js';
import type { PlanContext } from './types.js';

type Said = { id?: string; expressedBy?: Reference; recordedOn?: string };

function fill<T extends Said>(item: T, person: Reference, now: string): T {
  return { ...item, expressedBy: item.expressedBy ?? { ...person }, recordedOn: item.recordedOn ?? now };
}

/** `after` with what the participant added attributed to them; what was there before is left as it was. */
export function attributed(
  participant: Participant,
  before: SharedCarePlan,
  after: SharedCarePlan,
  now: string,
): SharedCarePlan {
  const person = participant.person;
  if (!person) return after;
  const isNew = (list: Said[] | undefined, item: Said) =>
    !item.id || !(list ?? []).some((i) => i.id === item.id);
  const each = <T extends Said>(list: T[] | undefined, old: Said[] | undefined, extra = (x: T) => x) =>
    list?.map((item) => (isNew(old, item) ? extra(fill(item, person, now)) : item));
  const recorder = (goal: Goal): Goal =>
    goal.expressedBy?.reference !== person.reference && !goal.recordedBy
      ? { ...goal, recordedBy: { ...person } }
      : goal;
  const next: SharedCarePlan = { ...after };
  if (after.goals) next.goals = each(after.goals, before.goals, recorder);
  if (after.preferences) next.preferences = each(after.preferences, before.preferences);
  if (after.strengths) next.strengths = each(after.strengths, before.strengths);
  if (after.barriers) next.barriers = each(after.barriers, before.barriers);
  if (after.whatMatters && !before.whatMatters) next.whatMatters = fill(after.whatMatters, person, now);
  return next;
}

/** The participant creating a plan: a patient for themselves (the plan's author), a professional or a client. */
export function creator(plan: SharedCarePlan, context: PlanContext): Participant {
  const person = context.caller?.person;
  const type = personType(person);
  if (!person || !type) return { role: 'client' };
  const named = {
    reference: person,
    ...(knownName(plan, person) ? { display: knownName(plan, person) } : {}),
  };
  if (type === 'Practitioner' || type === 'PractitionerRole') return { role: 'professional', person: named };
  if (type === 'Patient' && subjectPatient(plan.patient?.reference) !== person) throw hiddenPlan();
  return { role: type === 'Patient' ? 'patient' : 'family', person: named };
}

/** A new plan as its creator may write it: a patient's own plan is authored by them, and what is in it is theirs. */
export function ownNewPlan(participant: Participant, plan: SharedCarePlan, now: string): SharedCarePlan {
  requireAllowed(participant, 'create');
  if (participant.role !== 'patient' || !participant.person)
    return attributed(participant, {} as SharedCarePlan, plan, now);
  const me = participant.person.reference;
  const start: SharedCarePlan = {
    patient: plan.patient,
    status: plan.status,
    intent: plan.intent,
    author: { reference: me },
  };
  const next = attributed(
    participant,
    start,
    { ...plan, author: plan.author ?? { ...participant.person } },
    now,
  );
  checkOwnership(participant, { ...start, author: next.author }, next);
  if (next.author?.reference !== me) checkOwnership(participant, start, next);
  return next;
}
