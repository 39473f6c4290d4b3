// Taking part: a person's own agreement with a goal, a note on its progress, one preference, strength or barrier,
// what matters. Each is a small change of the current plan, attributed to the caller and checked against the access
// table (access.ts) and ownership (ownership.ts) by applyEdit; the additive ones need no expected version.
import type { Goal, GoalAgreement, Reference, SharedCarePlan } from '../model/care-plan.js';
import { DomainError } from '../model/errors.js';
import { changePart, findPart, type PartOf, removePart } from '../model/plan-edits.js';
import type { Participant, Write } from './access.js';

export type ItemList = 'preferences' | 'strengths' | 'barriers';
export type ItemOf<L extends ItemList> = PartOf<L>;

export interface AgreementInput {
  status: GoalAgreement['status'];
  note?: string;
  /** Whose agreement: the caller's own when absent; a professional may name another person who said it in person. */
  who?: Reference;
}

export interface NoteInput {
  text: string;
  achievementStatus?: Goal['achievementStatus'];
  /** Only a client without a person names the author (as its source system recorded it). */
  author?: Reference;
}

export interface WhatMattersInput {
  statement: string;
  values?: string[];
  expressedBy?: Reference;
}

const now = () => new Date().toISOString();

/** The write of an agreement in the access table: the caller's own, or recorded for another person. */
export function agreementWrite(input: AgreementInput, person: string | undefined): Write {
  return input.who && input.who.reference !== person ? 'agreement-for-another' : 'agreement';
}

function onlyMe(
  participant: Participant,
  given: Reference | undefined,
  pointer: string,
): Reference | undefined {
  const me = participant.person;
  if (given && me && given.reference !== me.reference) {
    throw new DomainError('not-allowed', 'a person writes in their own name only', {
      errors: [{ pointer, detail: `must be ${me.reference} or absent` }],
      denied: true,
    });
  }
  return me ?? given;
}

/** The plan with the caller's agreement on one goal, replacing the earlier one of the same person. */
export function withAgreement(
  plan: SharedCarePlan,
  goalName: string,
  input: AgreementInput,
  participant: Participant,
): SharedCarePlan {
  const index = findPart(plan, 'goals', goalName);
  const me = participant.person;
  const who = input.who ?? me;
  if (!who?.reference) {
    throw new DomainError('unprocessable', 'name whose agreement this is', {
      errors: [{ pointer: '/who', detail: 'required for a client without a person (fhirUser)' }],
    });
  }
  // The core goal-acceptance extension names a Patient, Practitioner or RelatedPerson (R4 extension definition).
  if (!/^(Patient|Practitioner|RelatedPerson)\//.test(who.reference)) {
    throw new DomainError(
      'unprocessable',
      'an agreement is that of a Patient, Practitioner or RelatedPerson',
      {
        errors: [
          {
            pointer: input.who ? '/who/reference' : '',
            detail: `${who.reference} cannot agree to a goal in FHIR R4 (goal-acceptance.individual)`,
          },
        ],
      },
    );
  }
  const forAnother = me && who.reference !== me.reference;
  const agreement: GoalAgreement = {
    who: { ...who },
    status: input.status,
    ...(input.note ? { note: input.note } : {}),
    ...(forAnother ? { recordedBy: { ...me } } : {}),
    recordedOn: now(),
  };
  const goals = [...(plan.goals ?? [])];
  const goal = goals[index];
  const others = (goal.agreements ?? []).filter((a) => a.who.reference !== who.reference);
  goals[index] = { ...goal, agreements: [...others, agreement] };
  return { ...plan, goals };
}

/** The plan with a note on one goal's progress (and its achievement status, when given). */
export function withNote(
  plan: SharedCarePlan,
  goalName: string,
  input: NoteInput,
  participant: Participant,
): SharedCarePlan {
  const index = findPart(plan, 'goals', goalName);
  const author = onlyMe(participant, input.author, '/author');
  const goals = [...(plan.goals ?? [])];
  const goal = goals[index];
  goals[index] = {
    ...goal,
    ...(input.achievementStatus ? { achievementStatus: input.achievementStatus } : {}),
    notes: [
      ...(goal.notes ?? []),
      { text: input.text, ...(author ? { author: { ...author } } : {}), time: now() },
    ],
  };
  return { ...plan, goals };
}

export function withItem<L extends ItemList>(
  plan: SharedCarePlan,
  list: L,
  item: ItemOf<L>,
  participant: Participant,
): SharedCarePlan {
  const { id: _id, ...fresh } = item as ItemOf<L> & { expressedBy?: Reference };
  if (participant.role !== 'client' && participant.role !== 'professional')
    onlyMe(participant, fresh.expressedBy, '/expressedBy');
  return { ...plan, [list]: [...((plan[list] ?? []) as ItemOf<L>[]), fresh] };
}

export function withItemChanged<L extends ItemList>(
  plan: SharedCarePlan,
  list: L,
  itemId: string,
  changes: Partial<ItemOf<L>>,
): SharedCarePlan {
  return changePart(plan, list, itemId, { ...changes, id: itemId });
}

export function withoutItem(plan: SharedCarePlan, list: ItemList, itemId: string): SharedCarePlan {
  return removePart(plan, list, itemId);
}

/** What matters, in the caller's words: a new statement, or theirs changed (ownership.ts decides). */
export function withWhatMatters(
  plan: SharedCarePlan,
  input: WhatMattersInput,
  participant: Participant,
): SharedCarePlan {
  // New words are said by whoever sends them (a client names them, or nobody): never kept in someone else's name.
  const by = onlyMe(participant, input.expressedBy, '/expressedBy');
  const old = plan.whatMatters;
  return {
    ...plan,
    whatMatters: {
      ...(old?.id ? { id: old.id } : {}),
      statement: input.statement,
      ...(input.values?.length ? { values: input.values } : {}),
      ...(old?.expressedBy && old.expressedBy.reference === by?.reference
        ? { expressedBy: old.expressedBy }
        : by
          ? { expressedBy: { ...by } }
          : {}),
      recordedOn: now(),
      ...(old?.unmappedFhir ? { unmappedFhir: old.unmappedFhir } : {}),
    },
  };
}
