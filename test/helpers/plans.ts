// Generated shared-decision care plans (fast-check): valid by the API schema, with links that resolve.
// Optional arrays are generated non-empty: an empty array and an absent one map to the same FHIR.
import fc from 'fast-check';
import type { SharedCarePlan } from '../../src/model/care-plan.js';

const nonBlank = fc
  .string({
    minLength: 1,
    maxLength: 40,
    unit: fc.constantFrom('a', 'b', 'ü', ' ', '<', '>', '&', '"', "'", 'é', '🙂', 'x', '1'),
  })
  .filter((s) => /\S/.test(s));
const id = fc.stringMatching(/^[a-z0-9][a-z0-9-]{0,12}$/);
const pad = (n: number) => String(n).padStart(2, '0');
const date = fc
  .record({
    year: fc.integer({ min: 1950, max: 2060 }),
    month: fc.integer({ min: 1, max: 12 }),
    day: fc.integer({ min: 1, max: 28 }),
  })
  .map(({ year, month, day }) => `${year}-${pad(month)}-${pad(day)}`);
const dateTime = fc.oneof(
  date,
  fc
    .record({
      d: date,
      h: fc.integer({ min: 0, max: 23 }),
      m: fc.integer({ min: 0, max: 59 }),
      z: fc.constantFrom('Z', '+01:00', '-05:00'),
    })
    .map(({ d, h, m, z }) => `${d}T${pad(h)}:${pad(m)}:00${z}`),
);
const reference = (type: string) =>
  fc.record({ reference: id.map((i) => `${type}/${i}`), display: nonBlank }, { requiredKeys: ['reference'] });
const person = fc.oneof(reference('Patient'), reference('Practitioner'), reference('RelatedPerson'));
const amount = fc.integer({ min: 0, max: 10_000 }).map((n) => n / 10);
// A unit code comes with its system (FHIR R4 qty-3); the system may also come alone.
const unitCode = fc.oneof(
  fc.record({ system: fc.constant('http://unitsofmeasure.org'), code: fc.constantFrom('kg', 'm', '%') }),
  fc.record({ system: fc.constant('http://unitsofmeasure.org') }),
  fc.constant({}),
);
const quantity = fc
  .tuple(fc.record({ value: amount, unit: nonBlank }, { requiredKeys: ['value'] }), unitCode)
  .map(([q, coded]) => ({ ...q, ...coded }));
// A range: one end, or both in the same unit with low <= high (FHIR R4 rng-2).
const range = fc.oneof(
  fc.record({ high: quantity }),
  fc.tuple(amount, amount, fc.option(nonBlank, { nil: undefined }), unitCode).map(([a, b, unit, coded]) => {
    const end = (value: number) => ({ value, ...(unit === undefined ? {} : { unit }), ...coded });
    return { low: end(Math.min(a, b)), high: end(Math.max(a, b)) };
  }),
);
const concept = fc.oneof(
  fc.record({ text: nonBlank }),
  fc.record(
    {
      coding: fc.array(
        fc.record({
          system: fc.constant('http://loinc.org'),
          code: fc.constantFrom('8302-2', '4548-4'),
          display: nonBlank,
        }),
        { minLength: 1, maxLength: 2 },
      ),
      text: nonBlank,
    },
    { requiredKeys: ['coding'] },
  ),
);
const some = <T>(arb: fc.Arbitrary<T>, max = 3) => fc.array(arb, { minLength: 1, maxLength: max });

export function arbitraryPlan(): fc.Arbitrary<SharedCarePlan> {
  return fc
    .record({
      patient: reference('Patient'),
      goalCount: fc.integer({ min: 0, max: 4 }),
      base: fc.record(
        {
          title: nonBlank,
          description: nonBlank,
          status: fc.constantFrom(
            'draft',
            'active',
            'on-hold',
            'revoked',
            'completed',
            'entered-in-error',
            'unknown',
          ),
          intent: fc.constantFrom('proposal', 'plan', 'order', 'option'),
          period: fc.record({ start: date }),
          created: dateTime,
          author: person,
          contributors: some(person),
          whatMatters: fc.record(
            { statement: nonBlank, values: some(nonBlank), recordedOn: dateTime, expressedBy: person },
            { requiredKeys: ['statement'] },
          ),
          preferences: some(
            fc.record(
              {
                kind: fc.constantFrom('care-experience', 'treatment-intervention'),
                statement: nonBlank,
                expressedBy: person,
                recordedOn: dateTime,
              },
              { requiredKeys: ['kind', 'statement'] },
            ),
          ),
          careTeam: fc.record(
            {
              name: nonBlank,
              status: fc.constantFrom('proposed', 'active', 'suspended', 'inactive'),
              members: some(
                fc.record(
                  {
                    member: person,
                    role: fc.constantFrom(
                      'patient',
                      'caregiver',
                      'family-member',
                      'friend',
                      'physician',
                      'nurse',
                      'therapist',
                      'administrative',
                      'other',
                    ),
                    roleText: nonBlank,
                  },
                  { requiredKeys: ['member', 'role'] },
                ),
                5,
              ),
            },
            { requiredKeys: ['members'] },
          ),
          decisions: some(
            fc
              .record(
                {
                  question: nonBlank,
                  options: some(
                    fc.record(
                      { title: nonBlank, pros: some(nonBlank), cons: some(nonBlank) },
                      { requiredKeys: ['title'] },
                    ),
                  ),
                  rationale: nonBlank,
                  participants: some(person),
                  decidedOn: dateTime,
                  choose: fc.boolean(),
                },
                { requiredKeys: ['question', 'options', 'choose'] },
              )
              .map(({ choose, ...decision }) =>
                choose ? { ...decision, chosenOption: decision.options[0].title } : decision,
              ),
            2,
          ),
        },
        { requiredKeys: ['status', 'intent'] },
      ),
      goals: fc.array(
        fc.record(
          {
            description: concept,
            expressedBy: person,
            priority: fc.constantFrom('high-priority', 'medium-priority', 'low-priority'),
            lifecycleStatus: fc.constantFrom(
              'proposed',
              'planned',
              'accepted',
              'active',
              'on-hold',
              'completed',
              'cancelled',
              'rejected',
            ),
            achievementStatus: fc.constantFrom(
              'in-progress',
              'improving',
              'worsening',
              'no-change',
              'achieved',
              'sustaining',
              'not-achieved',
              'no-progress',
              'not-attainable',
            ),
            startDate: date,
            targets: some(
              fc.oneof(
                fc.record(
                  { measure: concept, quantity, dueDate: date },
                  { requiredKeys: ['measure', 'quantity'] },
                ),
                fc.record({
                  measure: concept,
                  range,
                }),
                fc.record({ measure: concept, text: nonBlank }),
                fc.record({ dueDate: date }),
              ),
              2,
            ),
            agreements: some(
              fc.record({ who: person, status: fc.constantFrom('agree', 'disagree', 'pending') }),
              3,
            ),
          },
          { requiredKeys: ['description', 'lifecycleStatus'] },
        ),
        { minLength: 4, maxLength: 4 },
      ),
      links: fc.array(fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 1, maxLength: 2 }), {
        minLength: 12,
        maxLength: 12,
      }),
      statements: fc.array(nonBlank, { minLength: 12, maxLength: 12 }),
      activities: fc.array(
        fc.oneof(
          fc.record(
            {
              description: nonBlank,
              status: fc.constantFrom(
                'not-started',
                'scheduled',
                'in-progress',
                'on-hold',
                'completed',
                'cancelled',
                'stopped',
                'unknown',
              ),
              performers: some(person),
              scheduled: fc.record({ start: date }),
              code: concept,
            },
            { requiredKeys: ['status'] },
          ),
          fc.record({ status: fc.constantFrom('scheduled', 'completed'), scheduledText: nonBlank }),
          fc.record({ reference: reference('ServiceRequest') }),
        ),
        { maxLength: 4 },
      ),
    })
    .map(({ patient, goalCount, base, goals, links, statements, activities }) => {
      const plan: SharedCarePlan = { patient, ...(base as Omit<SharedCarePlan, 'patient'>) };
      const kept = goals.slice(0, goalCount).map((goal, index) => ({ ...goal, key: `goal-${index}` }));
      const goalLinks = (index: number) => [
        ...new Set(links[index].filter((l) => l < kept.length).map((l) => `goal-${l}`)),
      ];
      if (kept.length) plan.goals = kept as SharedCarePlan['goals'];
      plan.barriers = [0, 1].map((i) => {
        const g = goalLinks(i);
        return {
          statement: statements[i],
          ...(i === 0 ? { category: 'transportation' as const } : {}),
          ...(g.length ? { goals: g } : {}),
        };
      });
      plan.strengths = [2, 3].map((i) => {
        const g = goalLinks(i);
        return { statement: statements[i], ...(g.length ? { goals: g } : {}) };
      });
      if (activities.length) {
        plan.activities = activities.map((activity, index) => {
          const g = goalLinks(4 + index);
          return 'status' in activity && g.length ? { ...activity, goals: g } : activity;
        }) as SharedCarePlan['activities'];
      }
      return plan;
    });
}
