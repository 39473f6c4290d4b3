// Defect 8 of issue 13: $from-fhir drops nothing silently. Its answer lists (notTaken) every input resource besides
// the CarePlan that the plan does not hold, with why; Goals, Observations and Conditions of the same patient that the
// CarePlan does not reference are not taken (a plan holds only the parts its CarePlan references) and are listed.
import type { Bundle, BundleEntry, Resource } from 'fhir/r4.js';
import t from 'tap';
import { startTestService } from '../../helpers/service.js';

const patient = { reference: 'Patient/maria' };
const goal = (id: string): Resource =>
  ({
    resourceType: 'Goal',
    id,
    lifecycleStatus: 'active',
    description: { text: `Goal ${id}` },
    subject: patient,
  }) as Resource;
const entry = (resource: Resource): BundleEntry => ({
  fullUrl: `http://example.org/fhir/${resource.resourceType}/${resource.id}`,
  resource,
});
const carePlan = (id: string, extra: Record<string, unknown> = {}): Resource =>
  ({
    resourceType: 'CarePlan',
    id,
    status: 'active',
    intent: 'plan',
    subject: patient,
    ...extra,
  }) as Resource;

t.test('$from-fhir lists the resources it did not take, and why', async (t) => {
  const app = await startTestService();
  t.teardown(() => app.close());
  const fromFhir = (body: Bundle, query = '') =>
    app.app.inject({
      method: 'POST',
      url: `/care-plans/$from-fhir${query}`,
      headers: { 'content-type': 'application/fhir+json' },
      payload: JSON.stringify(body),
    });

  // The case: one CarePlan and four Goals, of which the CarePlan references one.
  const fourGoals: Bundle = {
    resourceType: 'Bundle',
    type: 'collection',
    entry: [
      entry(carePlan('cp', { goal: [{ reference: 'Goal/g1' }] })),
      ...['g1', 'g2', 'g3', 'g4'].map((id) => entry(goal(id))),
    ],
  };
  const answer = await fromFhir(fourGoals);
  t.equal(answer.statusCode, 200);
  const plan = answer.json();
  t.same(
    plan.goals.map((g: { id: string }) => g.id),
    ['g1'],
    'the referenced goal is taken',
  );
  t.same(
    plan.notTaken.map((n: { pointer: string; resource: string; reason: string }) => [
      n.pointer,
      n.resource,
      n.reason,
    ]),
    [
      ['/entry/2/resource', 'Goal/g2', 'not-referenced'],
      ['/entry/3/resource', 'Goal/g3', 'not-referenced'],
      ['/entry/4/resource', 'Goal/g4', 'not-referenced'],
    ],
    'the three others are listed as not referenced',
  );
  t.ok(
    plan.notTaken.every((n: { detail: string }) => /does not reference this Goal/.test(n.detail)),
    'each says why',
  );

  // A referenced Observation the plan cannot hold (no what-matters, preference or barrier code) stays a reference;
  // an unreferenced Condition of the same patient and a Patient are listed too; another CarePlan is named.
  const vitals = {
    resourceType: 'Observation',
    id: 'bp',
    status: 'final',
    code: { coding: [{ system: 'http://loinc.org', code: '85354-9' }] },
    subject: patient,
  } as Resource;
  const condition = {
    resourceType: 'Condition',
    id: 'c1',
    code: { text: 'Diabetes' },
    subject: patient,
  } as Resource;
  const mixed: Bundle = {
    resourceType: 'Bundle',
    type: 'collection',
    entry: [
      entry(carePlan('cp', { supportingInfo: [{ reference: 'Observation/bp' }] })),
      entry(vitals),
      entry(condition),
      entry({ resourceType: 'Patient', id: 'maria' } as Resource),
      entry(carePlan('other')),
    ],
  };
  const second = await fromFhir(mixed, '?carePlan=cp');
  t.equal(second.statusCode, 200);
  const read = second.json();
  t.same(read.unmappedFhir?.supportingInfo, [{ reference: 'Observation/bp' }], 'the reference is kept');
  t.same(
    read.notTaken.map((n: { resource: string; reason: string }) => [n.resource, n.reason]),
    [
      ['Observation/bp', 'kept-as-reference'],
      ['Condition/c1', 'not-referenced'],
      // The CarePlan's subject: the plan keeps the reference (patient), never the Patient.
      ['Patient/maria', 'kept-as-reference'],
      ['CarePlan/other', 'other-care-plan'],
    ],
  );

  // Everything taken: no notTaken member. The answer goes back through $to-fhir as it is (notTaken is read-only).
  const whole = await fromFhir({ ...fourGoals, entry: fourGoals.entry?.slice(0, 2) });
  t.equal(whole.statusCode, 200);
  t.notOk('notTaken' in whole.json(), 'nothing to report, no member');
  const back = await app.app.inject({ method: 'POST', url: '/care-plans/$to-fhir', payload: plan });
  t.equal(back.statusCode, 200, 'an answer with notTaken maps back to FHIR');
  t.notOk(back.body.includes('notTaken'), 'notTaken is not FHIR of the plan');
});
