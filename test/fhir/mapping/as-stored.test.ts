// planAsStored (src/fhir/mapping/as-stored.ts): a create's stored plan, from what was sent and the ids the server
// gave. Every create here goes to the real embedded FHIR server over HTTP; the answer built from what was sent must
// equal the answer mapped back from the server's response (the path it replaces), for generated plans, the
// documented example and plans a patient creates; any change the server made, and any plan outside the mapping's
// identity, must give undefined (the caller then maps the answer back).
import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import type { Bundle, Resource } from 'fhir/r4.js';
import t, { type Test } from 'tap';
import { PlanFhir } from '../../../src/care-plans/plan-fhir.js';
import { withActivityIds, withoutStoredIds } from '../../../src/care-plans/plan-ids.js';
import { PlanRepository } from '../../../src/care-plans/repository.js';
import { type EmbeddedFhirServer, startEmbeddedFhirServer } from '../../../src/embedded-fhir/server.js';
import type { FhirGateway } from '../../../src/fhir/client/gateway.js';
import { planAsStored } from '../../../src/fhir/mapping/as-stored.js';
import type { SharedCarePlan } from '../../../src/model/care-plan.js';
import { arbitraryPlan } from '../../helpers/plans.js';
import { examplePlan, quietLogger } from '../../helpers/service.js';

let server: EmbeddedFhirServer;
t.before(async () => {
  server = await startEmbeddedFhirServer({ host: '127.0.0.1', port: 0, logger: quietLogger });
});
t.teardown(() => server.close());

const context = { caller: { kind: 'token' as const, clientId: 'as-stored-test', subject: 'x', grants: [] } };
// The repository's only use here is mapping an answer back; it sends nothing.
const repository = new PlanRepository(undefined as unknown as FhirGateway);
const asJson = <T>(value: T): T => JSON.parse(JSON.stringify(value));

interface Created {
  fresh: SharedCarePlan;
  transaction: Bundle;
  response: Bundle;
}

async function create(plan: SharedCarePlan): Promise<Created> {
  const mapping = new PlanFhir(server.baseUrl, randomUUID);
  const fresh = withActivityIds(withoutStoredIds(plan), randomUUID);
  const bundle = mapping.toFhir(fresh, { revision: randomUUID(), planKey: randomUUID() });
  const transaction = mapping.withProvenance(bundle, context, 'CREATE');
  const answer = await fetch(server.baseUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/fhir+json', prefer: 'return=representation' },
    body: JSON.stringify(transaction),
  });
  if (answer.status !== 200) throw new Error(`transaction: ${answer.status} ${await answer.text()}`);
  return { fresh, transaction, response: (await answer.json()) as Bundle };
}

function assertSameAsMappedBack(t: Test, created: Created, name: string) {
  const mappedBack = repository.planFromTransaction(created.transaction, created.response);
  const built = planAsStored(created.fresh, created.transaction, created.response);
  t.ok(built, `${name}: the server stored what was sent, so the plan is built from it`);
  if (!built) return;
  t.strictSame(asJson(built.plan), asJson(mappedBack.plan), `${name}: the plan equals the mapped-back one`);
  t.equal(built.version, mappedBack.version, `${name}: the version`);
  t.strictSame(built.resources, mappedBack.resources, `${name}: the stored resources`);
  t.ok(built.plan.id && built.version, `${name}: it has the server's id and version`);
}

t.test('generated plans: the plan built from what was sent equals the mapped-back answer', async (t) => {
  const plans = fc.sample(arbitraryPlan(), { numRuns: 60, seed: 20261202 });
  for (const [index, plan] of plans.entries()) {
    assertSameAsMappedBack(t, await create(asJson(plan)), `generated plan ${index}`);
  }
});

t.test('the documented example, a plan a patient created, and what participants add', async (t) => {
  const example = examplePlan() as unknown as SharedCarePlan;
  assertSameAsMappedBack(t, await create(example), 'example');
  const own: SharedCarePlan = {
    ...example,
    goals: example.goals?.map((goal) => ({
      ...goal,
      expressedBy: { reference: example.patient.reference, display: 'the patient' },
      recordedOn: '2026-12-02T08:00:00Z',
    })),
  };
  assertSameAsMappedBack(t, await create(own), 'patient-expressed goals');
  // What participation writes (issue 16): notes under their author's name, agreements with a note and who
  // recorded them, a goal recorded by a professional for the patient.
  const daughter = { reference: 'RelatedPerson/ana-lopez', display: 'Ana Lopez' };
  const doctor = { reference: 'Practitioner/dr-okafor', display: 'Dr. Chidi Okafor' };
  const [first, ...others] = example.goals ?? [];
  const contributed: SharedCarePlan = {
    ...example,
    goals: [
      {
        ...first,
        recordedBy: doctor,
        recordedOn: '2026-12-01T09:30:00Z',
        notes: [
          { text: 'She walked half the way on Saturday', author: daughter, time: '2026-12-02T10:00:00Z' },
          { text: 'Good progress; keep the pace', author: doctor, time: '2026-12-02T11:15:00Z' },
        ],
        agreements: [
          ...(first.agreements ?? []),
          {
            who: daughter,
            status: 'agree',
            note: 'I will walk with her',
            recordedBy: daughter,
            recordedOn: '2026-12-02T10:01:00Z',
          },
        ],
      },
      ...others,
    ],
  };
  assertSameAsMappedBack(t, await create(contributed), 'notes and agreements with their authors');
});

t.test('any change the server made, or a plan outside the identity, gives undefined', async (t) => {
  const example = examplePlan() as unknown as SharedCarePlan;
  const created = await create(example);
  const changed = (change: (response: Bundle) => void): Bundle => {
    const response = asJson(created.response);
    change(response);
    return response;
  };
  // biome-ignore lint/suspicious/noExplicitAny: the cases below reach into resources of several types
  type Loose = Record<string, any>;
  const resource = (response: Bundle, index: number) => response.entry?.[index].resource as Resource & Loose;
  const cases: Array<[string, Bundle]> = [
    [
      'a narrative re-encoded (as HAPI does)',
      changed((r) => {
        const carePlan = resource(r, 0);
        carePlan.text.div = carePlan.text.div.replace('<div ', '<div  ');
      }),
    ],
    [
      'a tag the server added',
      changed((r) => Object.assign(resource(r, 1).meta ?? {}, { tag: [{ code: 'x' }] })),
    ],
    [
      'a meta.source that is not a request id',
      changed((r) => Object.assign(resource(r, 1), { meta: { source: 'http://elsewhere' } })),
    ],
    ['an element the server dropped', changed((r) => delete resource(r, 1).subject)],
    [
      'a reference the server did not rewrite',
      changed((r) => {
        resource(r, 0).goal[0].reference = 'Goal/someone-elses';
      }),
    ],
    ['an entry missing', changed((r) => r.entry?.splice(1, 1))],
    [
      'an entry without its resource',
      changed((r) => {
        delete r.entry?.[1].resource;
      }),
    ],
    ['entries in another order', changed((r) => r.entry?.reverse())],
  ];
  for (const [name, response] of cases) {
    t.equal(planAsStored(created.fresh, created.transaction, response), undefined, name);
  }
  t.ok(
    planAsStored(created.fresh, created.transaction, asJson(created.response)),
    'the unchanged answer: built',
  );
  const carrying = { ...created.fresh, unmappedFhir: { language: 'en' } } as SharedCarePlan;
  t.equal(
    planAsStored(carrying, created.transaction, created.response),
    undefined,
    'a plan with unmappedFhir',
  );
  const stored = { ...created.fresh, id: 'plan-1' };
  t.equal(
    planAsStored(stored, created.transaction, created.response),
    undefined,
    'an update (the plan has an id)',
  );
});
