// Ownership: what a patient, family member or professional may change in a plan, checked on the plan before and
// after any write (small edits, contributions, PUT of the whole plan, a patient's own new plan alike), so it cannot
// be bypassed by sending the whole plan. The coarse table is WHO_MAY (access.ts); this is what its `own` means.
// Clients (no fhirUser) are not checked: they do what they could do before people were told apart.
import { jsonEqual } from '../fhir/mapping/carry.js';
import type { Goal, GoalAgreement, GoalNote, Reference, SharedCarePlan } from '../model/care-plan.js';
import { DomainError } from '../model/errors.js';
import type { Participant } from './access.js';

type Item = { id?: string; expressedBy?: Reference; goals?: string[] };
const ITEM_LISTS = ['preferences', 'strengths', 'barriers'] as const;
/** What is not the plan's own fields: its parts, and what the service sets. */
const NOT_PLAN_FIELDS = new Set([
  'goals',
  'preferences',
  'strengths',
  'barriers',
  'whatMatters',
  'activities',
  'id',
  'version',
  'lastUpdated',
  'notTaken',
]);

function refused(pointer: string, detail: string): DomainError {
  return new DomainError('not-allowed', 'this change touches what someone else wrote', {
    errors: [{ pointer, detail }],
    denied: true,
  });
}

/** The words of the patient or family: an item they expressed. */
export function isPeoplesWords(item: { expressedBy?: Reference } | undefined): boolean {
  return /^(Patient|RelatedPerson)\//.test(item?.expressedBy?.reference ?? '');
}

const byId = <T extends { id?: string }>(items: T[] | undefined) =>
  new Map((items ?? []).filter((i) => i.id).map((i) => [i.id as string, i]));

/** An item without the links to goals that the change removed (removing a goal unlinks it everywhere). */
function withoutDroppedLinks<T extends Item>(before: T, after: T): [T, T] {
  const kept = after.goals ?? [];
  if (!kept.every((g) => (before.goals ?? []).includes(g))) return [before, after];
  const { goals: _b, ...b } = before;
  const { goals: _a, ...a } = after;
  return [b as T, a as T];
}

/** Throws not-allowed when `after` changes what the participant may not change in `before`. */
export function checkOwnership(
  participant: Participant,
  before: SharedCarePlan,
  after: SharedCarePlan,
): void {
  if (participant.role === 'client') return;
  const me = participant.person?.reference;
  const person = participant.role !== 'professional';
  const planAuthor = participant.role === 'patient' && before.author?.reference === me;
  const mine = (item: Item | undefined) => item?.expressedBy?.reference === me;
  /** May the participant change or remove this item (at `pointer`)? */
  const mayTouch = (item: Item, pointer: string, what: string) => {
    if (person && !mine(item)) throw refused(pointer, `${what} was written by someone else`);
    if (!person && isPeoplesWords(item))
      throw refused(pointer, `${what} is in the words of the patient or family; answer with a note instead`);
  };

  if (person && !planAuthor) {
    const keys = new Set([...Object.keys(before), ...Object.keys(after)]);
    for (const key of keys) {
      if (NOT_PLAN_FIELDS.has(key)) continue;
      const k = key as keyof SharedCarePlan;
      if (!jsonEqual(before[k], after[k])) throw refused(`/${key}`, 'only the care team changes this');
    }
  }
  for (const list of ITEM_LISTS) {
    const old = byId(before[list] as Item[] | undefined);
    const now = after[list] as Item[] | undefined;
    (now ?? []).forEach((item, index) => {
      const pointer = `/${list}/${index}`;
      const previous = item.id ? old.get(item.id) : undefined;
      if (!previous) {
        if (person && !mine(item)) throw refused(`${pointer}/expressedBy`, 'what you add is in your name');
        return;
      }
      const [b, a] = withoutDroppedLinks(previous, item);
      if (!jsonEqual(b, a)) mayTouch(previous, pointer, 'this item');
    });
    const kept = new Set((now ?? []).map((i) => i.id));
    for (const [id, item] of old) if (!kept.has(id)) mayTouch(item, `/${list}`, `item ${id}`);
  }
  if (!jsonEqual(before.whatMatters, after.whatMatters)) {
    if (before.whatMatters) mayTouch(before.whatMatters, '/whatMatters', 'what matters');
    else if (person && !mine(after.whatMatters))
      throw refused('/whatMatters/expressedBy', 'what you add is in your name');
  }
  checkGoals(participant, before, after, mayTouch, planAuthor);
  if (person && !planAuthor) checkActivities(me, before, after);
}

function checkGoals(
  participant: Participant,
  before: SharedCarePlan,
  after: SharedCarePlan,
  mayTouch: (item: Item, pointer: string, what: string) => void,
  planAuthor: boolean,
): void {
  const me = participant.person?.reference;
  const person = participant.role !== 'professional';
  const old = byId(before.goals);
  (after.goals ?? []).forEach((goal, index) => {
    const pointer = `/goals/${index}`;
    const previous = goal.id ? old.get(goal.id) : undefined;
    checkAgreements(participant, previous?.agreements, goal.agreements, `${pointer}/agreements`);
    const noteAdded = checkNotes(me, previous?.notes, goal.notes, `${pointer}/notes`);
    if (!previous) {
      if (person && goal.expressedBy?.reference !== me)
        throw refused(`${pointer}/expressedBy`, 'what you add is in your name');
      // The patient and family propose goals; the patient sets them outright only in a plan of their own.
      if (person && !planAuthor && goal.lifecycleStatus !== 'proposed')
        throw refused(
          `${pointer}/lifecycleStatus`,
          'a goal you add is proposed (lifecycleStatus "proposed")',
        );
      return;
    }
    const { agreements: _a, notes: _n, ...was } = previous;
    const { agreements: _b, notes: _m, ...is } = goal;
    if (jsonEqual(was, is)) return;
    const words = (g: Partial<Goal>) => ({ d: g.description, e: g.expressedBy, k: g.key });
    if (!jsonEqual(words(was), words(is))) {
      if (!jsonEqual(was.expressedBy, is.expressedBy))
        throw refused(`${pointer}/expressedBy`, 'who expressed a goal does not change');
      mayTouch(previous, pointer, 'this goal');
    }
    // The patient and family change the rest of goals they expressed; on others, the achievement status only,
    // with a note of their own on the progress.
    if (person && previous.expressedBy?.reference !== me) {
      const { achievementStatus: _x, ...wasRest } = was;
      const { achievementStatus: _y, ...isRest } = is;
      if (!jsonEqual(wasRest, isRest) || (was.achievementStatus !== is.achievementStatus && !noteAdded))
        throw refused(pointer, 'this goal was written by someone else; add a note on its progress instead');
    }
  });
  const kept = new Set((after.goals ?? []).map((g) => g.id));
  for (const [id, goal] of old) if (!kept.has(id)) mayTouch(goal, '/goals', `goal ${id}`);
}

/**
 * Each person's agreement is their own: a caller adds, changes or removes only their own; a professional may also
 * record another person's (recordedBy: the professional) and change what they recorded.
 */
function checkAgreements(
  participant: Participant,
  before: GoalAgreement[] | undefined,
  after: GoalAgreement[] | undefined,
  pointer: string,
): void {
  const me = participant.person?.reference;
  const key = (a: GoalAgreement) => a.who.reference ?? a.who.display ?? '';
  const was = new Map((before ?? []).map((a) => [key(a), a]));
  const is = new Map((after ?? []).map((a) => [key(a), a]));
  for (const who of new Set([...was.keys(), ...is.keys()])) {
    const a = was.get(who);
    const b = is.get(who);
    if (jsonEqual(a, b) || who === me) continue;
    // A professional records what a person said in person, over nothing, over what they recorded before, or over
    // an agreement nobody recorded through this service (no time); never over what the person recorded themselves.
    const replaceable = !a || a.recordedBy?.reference === me || (!a.recordedBy && !a.recordedOn);
    if (participant.role === 'professional' && b?.recordedBy?.reference === me && replaceable) continue;
    throw refused(pointer, `the agreement of ${who} is theirs`);
  }
}

/** Notes are their authors': others' notes stay as they were; new ones are the caller's. True when one was added. */
function checkNotes(
  me: string | undefined,
  before: GoalNote[] | undefined,
  after: GoalNote[] | undefined,
  pointer: string,
): boolean {
  const others = (notes: GoalNote[] | undefined) => (notes ?? []).filter((n) => n.author?.reference !== me);
  if (!jsonEqual(others(before), others(after))) throw refused(pointer, 'notes are their authors’');
  const old = before ?? [];
  return (after ?? []).some((n) => !old.some((o) => jsonEqual(o, n)));
}

/** The patient and family may only mark the activities they perform (their status). */
function checkActivities(me: string | undefined, before: SharedCarePlan, after: SharedCarePlan): void {
  const old = byId(before.activities);
  (after.activities ?? []).forEach((activity, index) => {
    const previous = activity.id ? old.get(activity.id) : undefined;
    const pointer = `/activities/${index}`;
    if (!previous) throw refused(pointer, 'only the care team adds activities');
    const [unlinked, relinked] = withoutDroppedLinks(previous, activity);
    const { status: _s, ...was } = unlinked;
    const { status: _t, ...is } = relinked;
    if (jsonEqual(unlinked, relinked)) return;
    if (!jsonEqual(was, is)) throw refused(pointer, 'only the care team changes activities');
    if (!(previous.performers ?? []).some((p) => p.reference === me))
      throw refused(`${pointer}/status`, 'you may mark only the activities you perform');
  });
  const kept = new Set((after.activities ?? []).map((a) => a.id));
  for (const id of old.keys())
    if (!kept.has(id)) throw refused('/activities', 'only the care team removes activities');
}
