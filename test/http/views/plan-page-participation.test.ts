// The plan page says who wrote what and when, in plain words, and shows a goal's notes in the order written.
import t from 'tap';
import { renderPlanPage } from '../../../src/http/views/plan-page.js';
import type { SharedCarePlan } from '../../../src/model/care-plan.js';
import { examplePlan } from '../../helpers/service.js';

const ana = { reference: 'RelatedPerson/ana-lopez', display: 'Ana Lopez' };
const doctor = { reference: 'Practitioner/dr-okafor', display: 'Dr. Chidi Okafor' };

t.test('who said it, and when, for every kind of contribution; notes in order', async (t) => {
  const plan = examplePlan() as unknown as SharedCarePlan;
  const [walk] = plan.goals ?? [];
  walk.notes = [
    { text: 'Walked to the corner with Ana', author: ana, time: '2026-12-03T10:00:00+01:00' },
    { text: 'Halfway to the market', author: doctor, time: '2026-12-10T10:00:00+01:00' },
  ];
  walk.agreements = [
    { who: ana, status: 'disagree', note: 'Too far for now', recordedOn: '2026-12-03T09:00:00+01:00' },
    {
      who: { reference: 'Patient/maria-lopez', display: 'Maria Lopez' },
      status: 'agree',
      recordedBy: doctor,
      recordedOn: '2026-12-04',
    },
  ];
  plan.barriers = [{ statement: 'Ice on the pavement', expressedBy: ana, recordedOn: '2026-12-03' }];
  plan.strengths = [{ statement: 'My neighbour walks with me', expressedBy: ana, recordedOn: '2026-12-05' }];
  const page = renderPlanPage(plan);
  const text = page.replace(/<[^>]+>/g, '');
  // Ana is the team's "Daughter; drives Maria to appointments": her role in a word, after her name.
  t.match(text, 'Ana Lopez (daughter) does not agree: “Too far for now” (on 3 December 2026)');
  t.match(
    text,
    'Maria Lopez agrees (as told to and written down by Dr. Chidi Okafor (doctor) on 4 December 2026)',
  );
  t.match(text, 'Ice on the pavement');
  t.match(text, 'Said by Ana Lopez (daughter) on 3 December 2026', 'the barrier');
  t.match(text, 'Said by Ana Lopez (daughter) on 5 December 2026', 'the strength');
  t.match(text, 'Said by Maria Lopez on 20 November 2026', 'what matters (the example: Maria, 20 November)');
  const first = text.indexOf('Walked to the corner with Ana');
  const second = text.indexOf('Halfway to the market');
  t.ok(first > 0 && second > first, "the goal's notes in the order written");
  t.match(text, 'Written by Ana Lopez (daughter) on 3 December 2026');
  t.match(text, 'Written by Dr. Chidi Okafor (doctor) on 10 December 2026');
});
