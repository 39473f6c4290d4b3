// Who wrote what, through the mapping both ways: goal notes (Goal.note with authorReference and time), agreements
// with a note, who recorded them and when (goal-acceptance + this project's contribution extension), who recorded
// a goal, who said a barrier or strength (Observation.performer, Condition.asserter). plan -> FHIR -> plan keeps all
// of it; others' notes (no time) and contribution extensions the service cannot place stay carried.
import type { Bundle, Condition, Goal as FhirGoal, Observation } from 'fhir/r4.js';
import t from 'tap';
import { PlanFhir } from '../../../src/care-plans/plan-fhir.js';
import type { SharedCarePlan } from '../../../src/model/care-plan.js';
import { examplePlan } from '../../helpers/service.js';

const mapping = new PlanFhir(undefined);
const ana = { reference: 'RelatedPerson/ana-lopez', display: 'Ana Lopez' };
const doctor = { reference: 'Practitioner/dr-okafor', display: 'Dr. Chidi Okafor' };
const maria = { reference: 'Patient/maria-lopez', display: 'Maria Lopez' };

function participationPlan(): SharedCarePlan {
  const plan = examplePlan() as unknown as SharedCarePlan;
  const [walk, sugar] = plan.goals ?? [];
  walk.recordedOn = '2026-12-03T09:00:00Z';
  walk.recordedBy = doctor;
  walk.agreements = [
    { who: maria, status: 'agree', note: 'This is what I want', recordedOn: '2026-12-03T09:01:00Z' },
    { who: ana, status: 'disagree', recordedBy: doctor, recordedOn: '2026-12-03T09:02:00+01:00' },
    { who: doctor, status: 'agree' },
  ];
  walk.notes = [
    { text: 'Walked to the corner', author: ana, time: '2026-12-03T10:00:00Z' },
    { text: 'Knee hurts less', author: maria, time: '2026-12-04T10:00:00Z' },
    { text: 'From the EHR, no author', time: '2026-12-05' },
  ];
  sugar.notes = [{ text: 'Sugar fine', author: doctor, time: '2026-12-05T08:00:00Z' }];
  plan.barriers = [
    ...(plan.barriers ?? []),
    {
      statement: 'Ice on the pavement',
      expressedBy: ana,
      recordedOn: '2026-12-03T11:00:00Z',
      category: 'other',
    },
  ];
  plan.strengths = [
    ...(plan.strengths ?? []),
    { statement: 'My neighbour walks with me', expressedBy: maria, recordedOn: '2026-12-03' },
  ];
  return plan;
}

const asCollection = (bundle: Bundle): Bundle => ({
  ...bundle,
  type: 'collection',
  entry: bundle.entry?.map(({ fullUrl, resource }) => ({ fullUrl, resource })),
});

t.test('plan -> FHIR: notes, agreements and who said what land where FHIR puts them', async (t) => {
  const bundle = mapping.toFhir(participationPlan());
  const resources = (bundle.entry ?? []).map((e) => e.resource);
  const goal = resources.find(
    (r) => r?.resourceType === 'Goal' && (r as FhirGoal).identifier?.[0]?.value === 'walk-to-market',
  ) as FhirGoal;
  t.same(goal.note?.[0], {
    authorReference: ana,
    time: '2026-12-03T10:00:00Z',
    text: 'Walked to the corner',
  });
  t.same(goal.note?.[2], { time: '2026-12-05', text: 'From the EHR, no author' });
  const individuals = goal.extension
    ?.filter((e) => e.url === 'http://hl7.org/fhir/StructureDefinition/goal-acceptance')
    .map((e) => e.extension?.find((x) => x.url === 'individual')?.valueReference?.reference);
  t.same(individuals, ['Patient/maria-lopez', 'RelatedPerson/ana-lopez', 'Practitioner/dr-okafor']);
  const contributions = goal.extension?.filter(
    (e) => e.url === 'https://shared-care-plans.org/fhir/StructureDefinition/contribution',
  );
  t.same(
    contributions,
    [
      {
        url: 'https://shared-care-plans.org/fhir/StructureDefinition/contribution',
        extension: [
          { url: 'recorder', valueReference: doctor },
          { url: 'recorded', valueDateTime: '2026-12-03T09:00:00Z' },
        ],
      },
      {
        url: 'https://shared-care-plans.org/fhir/StructureDefinition/contribution',
        extension: [
          { url: 'individual', valueReference: maria },
          { url: 'recorded', valueDateTime: '2026-12-03T09:01:00Z' },
          { url: 'note', valueString: 'This is what I want' },
        ],
      },
      {
        url: 'https://shared-care-plans.org/fhir/StructureDefinition/contribution',
        extension: [
          { url: 'individual', valueReference: ana },
          { url: 'recorder', valueReference: doctor },
          { url: 'recorded', valueDateTime: '2026-12-03T09:02:00+01:00' },
        ],
      },
    ],
    "the goal's record, then one per agreement with more to say than goal-acceptance holds",
  );
  const barrier = resources.find(
    (r) =>
      r?.resourceType === 'Observation' &&
      (r as Observation).valueCodeableConcept?.text === 'Ice on the pavement',
  ) as Observation;
  t.same(barrier.performer, [ana], 'a barrier: who said it is the performer');
  t.equal(barrier.effectiveDateTime, '2026-12-03T11:00:00Z');
  const strength = resources.find(
    (r) => r?.resourceType === 'Condition' && (r as Condition).code?.text === 'My neighbour walks with me',
  ) as Condition;
  t.same(strength.asserter, maria, 'a strength: who said it is the asserter');
  t.equal(strength.recordedDate, '2026-12-03');
});

t.test('plan -> FHIR -> plan keeps notes, agreements and who said what', async (t) => {
  const plan = participationPlan();
  const back = mapping.fromFhir(asCollection(mapping.toFhir(plan)));
  t.strictSame(back, plan);
});

t.test(
  'FHIR -> plan -> FHIR: notes and contributions the service cannot take stay as they were',
  async (t) => {
    const bundle = asCollection(mapping.toFhir(participationPlan()));
    const goal = bundle.entry?.find((e) => e.resource?.resourceType === 'Goal')?.resource as FhirGoal;
    // Someone else's note (no time, an authorString) and a contribution for someone who has no agreement.
    goal.note = [...(goal.note ?? []), { authorString: 'Front desk', text: 'Called to reschedule' }];
    const stray = {
      url: 'https://shared-care-plans.org/fhir/StructureDefinition/contribution',
      extension: [
        { url: 'individual', valueReference: { reference: 'RelatedPerson/luis-lopez' } },
        { url: 'note', valueString: 'No agreement of his' },
      ],
    };
    goal.extension = [...(goal.extension ?? []), stray];
    const plan = mapping.fromFhir(bundle);
    const walk = plan.goals?.[0];
    t.notOk(walk?.notes, 'one note the service did not write: all of them stay carried, in order');
    t.equal((walk?.unmappedFhir?.note as unknown[] | undefined)?.length, 4);
    t.same(walk?.unmappedFhir?.extension, [stray], 'the stray contribution is carried');
    t.equal(walk?.agreements?.[0].note, 'This is what I want', 'the placed ones are taken');
    const again = mapping.toFhir(plan);
    const goalAgain = again.entry?.find((e) => e.resource?.resourceType === 'Goal')?.resource as FhirGoal;
    t.same(goalAgain.note, goal.note, 'the notes come out as they came in');
    t.same(
      goalAgain.extension?.filter((e) => e.url.endsWith('/contribution')),
      goal.extension?.filter((e) => e.url.endsWith('/contribution')),
      'and the contributions',
    );
  },
);
