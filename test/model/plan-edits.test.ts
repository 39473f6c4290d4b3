// Plan edits as pure functions (src/model/plan-edits.ts): add, change and remove one goal or activity, named by id
// or (goals) key; removing a goal removes every link to it; an unknown part is a domain error, not an HTTP one.
import t from 'tap';
import type { SharedCarePlan } from '../../src/model/care-plan.js';
import { DomainError } from '../../src/model/errors.js';
import { addPart, changePart, findPart, removePart } from '../../src/model/plan-edits.js';

const plan: SharedCarePlan = {
  patient: { reference: 'Patient/p1' },
  status: 'active',
  intent: 'plan',
  goals: [
    { id: 'g-1', key: 'walk', description: { text: 'Walk' }, lifecycleStatus: 'active' },
    { id: 'g-2', description: { text: 'Sleep' }, lifecycleStatus: 'active' },
  ],
  activities: [
    { id: 'a-1', description: 'Walk with Ana', goals: ['walk', 'g-2'] },
    { id: 'a-2', description: 'Only walking', goals: ['walk'] },
  ],
  barriers: [{ statement: 'Cost', goals: ['g-1'] }],
  strengths: [{ statement: 'Family', goals: ['walk', 'g-2'] }],
};
const frozen = JSON.stringify(plan);

t.test('findPart: goals by id or key, activities by id', async (t) => {
  t.equal(findPart(plan, 'goals', 'walk'), 0);
  t.equal(findPart(plan, 'goals', 'g-2'), 1);
  t.equal(findPart(plan, 'activities', 'a-2'), 1);
  const error = t.throws(() => findPart(plan, 'activities', 'walk')) as DomainError;
  t.ok(error instanceof DomainError, 'a domain error');
  t.equal(error.kind, 'not-found');
  t.equal(error.message, 'the plan has no activity "walk"');
});

t.test('addPart appends a fresh part without the id the caller sent', async (t) => {
  const edited = addPart(plan, 'goals', {
    id: 'Goal/stolen',
    key: 'garden',
    description: { text: 'Plant tomatoes' },
    lifecycleStatus: 'proposed',
  });
  t.equal(edited.goals?.length, 3);
  t.same(edited.goals?.[2], {
    key: 'garden',
    description: { text: 'Plant tomatoes' },
    lifecycleStatus: 'proposed',
  });
  t.same(addPart({ ...plan, activities: undefined }, 'activities', { description: 'First' }).activities, [
    { description: 'First' },
  ]);
  t.equal(JSON.stringify(plan), frozen, 'the input is not changed');
});

t.test('changePart merges the changes into the named part only', async (t) => {
  const edited = changePart(plan, 'goals', 'walk', { achievementStatus: 'improving' });
  t.same(edited.goals?.[0], { ...plan.goals?.[0], achievementStatus: 'improving' });
  t.same(edited.goals?.[1], plan.goals?.[1]);
  t.throws(
    () => changePart(plan, 'goals', 'nope', {}),
    new DomainError('not-found', 'the plan has no goal "nope"'),
  );
  t.equal(JSON.stringify(plan), frozen, 'the input is not changed');
});

t.test('removePart removes a goal and every link to it, by key and by id', async (t) => {
  const edited = removePart(plan, 'goals', 'walk');
  t.same(
    edited.goals?.map((g) => g.id),
    ['g-2'],
  );
  t.same(edited.activities, [
    { id: 'a-1', description: 'Walk with Ana', goals: ['g-2'] },
    { id: 'a-2', description: 'Only walking' },
  ]);
  t.same(edited.barriers, [{ statement: 'Cost' }], 'the link by id is gone too');
  t.same(edited.strengths, [{ statement: 'Family', goals: ['g-2'] }]);
  t.equal(JSON.stringify(plan), frozen, 'the input is not changed');
});

t.test('removePart of the last part leaves no empty list; activities leave links alone', async (t) => {
  const one: SharedCarePlan = { ...plan, activities: [{ id: 'a-1', goals: ['walk'] }] };
  const edited = removePart(one, 'activities', 'a-1');
  t.notOk('activities' in edited, 'no activities property');
  t.same(edited.goals, plan.goals, 'goals untouched');
  t.throws(
    () => removePart(plan, 'activities', 'a-9'),
    new DomainError('not-found', 'the plan has no activity "a-9"'),
  );
});
