// The plan's own rules (src/model/care-plan.ts): what a JSON Schema cannot say about how the parts of one plan fit
// together. Each rule is met once and broken once; the pointers name the part that breaks it.
import t from 'tap';
import { checkPlanRules, type SharedCarePlan } from '../../src/model/care-plan.js';

const base: SharedCarePlan = {
  patient: { reference: 'Patient/p1' },
  status: 'active',
  intent: 'plan',
  goals: [
    { key: 'walk', description: { text: 'Walk to the market' }, lifecycleStatus: 'active' },
    { id: 'g-2', description: { text: 'Sleep through the night' }, lifecycleStatus: 'proposed' },
  ],
  activities: [{ id: 'a-1', description: 'Walk with Ana', goals: ['walk', 'g-2'] }],
  barriers: [{ statement: 'No bus on Sundays', goals: ['walk'] }],
  strengths: [{ statement: 'A dog that needs walks', goals: ['g-2'] }],
  decisions: [
    {
      question: 'Which time?',
      options: [{ title: 'Mornings' }, { title: 'Evenings' }],
      chosenOption: 'Mornings',
    },
  ],
  period: { start: '2026-01-01', end: '2026-12-31' },
};

const pointers = (plan: SharedCarePlan) => checkPlanRules(plan).map((v) => v.pointer);

t.test('a plan whose parts fit together has no violations', async (t) => {
  t.same(checkPlanRules(base), []);
  t.same(
    checkPlanRules({ patient: { reference: 'Patient/p1' }, status: 'draft', intent: 'proposal' }),
    [],
    'nor has an empty plan',
  );
});

t.test('goal names (keys and ids) are unique across goals', async (t) => {
  const goals = [
    ...(base.goals ?? []),
    { key: 'g-2', description: { text: 'Again' }, lifecycleStatus: 'active' as const },
  ];
  t.same(pointers({ ...base, goals }), ['/goals/2']);
  t.match(checkPlanRules({ ...base, goals })[0].message, /"g-2" is used by another goal/);
  const again = { key: 'g-2', id: 'g-2', description: { text: 'Again' }, lifecycleStatus: 'active' as const };
  t.same(
    pointers({ ...base, goals: [...(base.goals ?? []), again] }),
    ['/goals/2'],
    'a name another goal uses, carried as both key and id',
  );
  const sameKeyAndId = [
    { key: 'x', id: 'x', description: { text: 'One goal' }, lifecycleStatus: 'active' as const },
  ];
  t.same(
    checkPlanRules({ ...base, goals: sameKeyAndId, activities: [], barriers: [], strengths: [] }),
    [],
    'one goal may have the same key and id',
  );
});

t.test('links from activities, barriers and strengths name goals of the plan', async (t) => {
  const plan: SharedCarePlan = {
    ...base,
    activities: [{ id: 'a-1', goals: ['walk', 'nowhere'] }],
    barriers: [{ statement: 'Cost', goals: ['gone'] }],
    strengths: [{ statement: 'Family', goals: ['missing'] }],
  };
  t.same(pointers(plan), ['/activities/0/goals/1', '/barriers/0/goals/0', '/strengths/0/goals/0']);
  t.match(checkPlanRules(plan)[0].message, /"nowhere" is not the key or id of a goal/);
});

t.test('activity ids are unique', async (t) => {
  t.same(pointers({ ...base, activities: [{ id: 'a-1' }, { id: 'a-2' }, { id: 'a-1' }] }), [
    '/activities/2/id',
  ]);
  t.same(
    pointers({ ...base, activities: [{ description: 'x' }, { description: 'y' }] }),
    [],
    'activities without ids',
  );
});

t.test("a decision's chosen option is one of its options", async (t) => {
  const decisions: SharedCarePlan['decisions'] = [
    { question: 'Which time?', options: [{ title: 'Mornings' }], chosenOption: 'Noon' },
  ];
  t.same(pointers({ ...base, decisions }), ['/decisions/0/chosenOption']);
  t.same(
    pointers({ ...base, decisions: [{ question: 'Which?', options: [{ title: 'A' }] }] }),
    [],
    'not chosen yet',
  );
});

t.test('a period does not end before it starts (compared by calendar day)', async (t) => {
  t.same(pointers({ ...base, period: { start: '2026-05-02', end: '2026-05-01' } }), ['/period']);
  t.same(
    pointers({ ...base, period: { start: '2026-05-01T18:00:00Z', end: '2026-05-01' } }),
    [],
    'the same day',
  );
  t.same(pointers({ ...base, period: { start: '2026-05-01' } }), [], 'open-ended');
});
