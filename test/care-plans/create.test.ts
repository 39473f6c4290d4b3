// Creating a plan (src/care-plans/create.ts) against the real embedded FHIR server: the 201 answer is made from
// the plan that was sent plus the ids and versions of the transaction's answer (Prefer: return=minimal), not read
// back. So that this shortcut can never drift from the read path, for plans of several shapes (the documented
// example, plans taken from FHIR with carried elements in unmappedFhir and contained parts, generated plans) the
// 201 body and ETag must equal what a GET of the plan answers right after, and the repository must have made the
// plan from what it sent (no fallback to a read).
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import type { Bundle } from 'fhir/r4.js';
import t from 'tap';
import { PlanFhir } from '../../src/care-plans/plan-fhir.js';
import { withActivityIds, withoutStoredIds } from '../../src/care-plans/plan-ids.js';
import { PlanRepository } from '../../src/care-plans/repository.js';
import { FhirGateway } from '../../src/fhir/client/gateway.js';
import type { SharedCarePlan } from '../../src/model/care-plan.js';
import { fromRoot } from '../../src/paths.js';
import { arbitraryPlan } from '../helpers/plans.js';
import { examplePlan, startTestService, type TestService } from '../helpers/service.js';

let service: TestService;
t.before(async () => {
  service = await startTestService();
});
t.teardown(() => service.close());

const json = { 'content-type': 'application/json' };
const fhirJson = { 'content-type': 'application/fhir+json' };

/** Plans taken from FHIR resources by $from-fhir: they carry what the model has no field for. */
async function fromFhir(file: string): Promise<SharedCarePlan> {
  const response = await service.app.inject({
    method: 'POST',
    url: '/care-plans/$from-fhir',
    headers: fhirJson,
    payload: readFileSync(fromRoot('schemas', 'examples', file), 'utf8'),
  });
  if (response.statusCode !== 200)
    throw new Error(`$from-fhir ${file}: ${response.statusCode} ${response.body}`);
  const { notTaken: _notTaken, ...plan } = response.json();
  return plan as SharedCarePlan;
}

async function shapes(): Promise<{ name: string; plan: SharedCarePlan }[]> {
  const generated = fc.sample(arbitraryPlan(), { numRuns: 12, seed: 20261202 });
  return [
    { name: 'the documented example', plan: examplePlan() as unknown as SharedCarePlan },
    {
      name: 'a contained CarePlan taken from FHIR',
      plan: await fromFhir('from-fhir-contained-careplan.json'),
    },
    { name: 'a PCO Bundle taken from FHIR', plan: await fromFhir('from-fhir-pco-bundle.json') },
    // fast-check builds null-prototype objects: send them as JSON.
    ...generated.map((plan, i) => ({
      name: `generated plan ${i + 1}`,
      plan: JSON.parse(JSON.stringify(plan)),
    })),
  ];
}

t.test(
  'the 201 answer of a create equals what a GET of the plan answers, for plans of every shape',
  async (t) => {
    const all = await shapes();
    const carried = all.filter(({ plan }) => JSON.stringify(plan).includes('"unmappedFhir"'));
    t.ok(carried.length >= 2, 'some plans carry FHIR elements in unmappedFhir');
    t.ok(
      all.some(({ plan }) => plan.goals?.some((goal) => goal.id?.startsWith('#'))),
      'some plans have contained parts',
    );
    for (const { name, plan } of all) {
      const created = await service.app.inject({
        method: 'POST',
        url: '/care-plans',
        headers: json,
        payload: plan,
      });
      t.equal(created.statusCode, 201, `${name}: created (${created.body.slice(0, 300)})`);
      const body = created.json();
      t.equal(created.headers.location, `/care-plans/${body.id}`, `${name}: location`);
      const read = await service.app.inject({ method: 'GET', url: `/care-plans/${body.id}` });
      t.equal(read.statusCode, 200, `${name}: read`);
      t.strictSame(body, read.json(), `${name}: the 201 body is the plan as a GET gives it`);
      t.equal(created.headers.etag, read.headers.etag, `${name}: the same ETag`);
      t.match(body, { version: String, lastUpdated: String }, `${name}: with its version and time`);
    }
  },
);

t.test('the repository makes the stored plan from what it sent: a read gives the same plan', async (t) => {
  const gateway = new FhirGateway({ baseUrl: service.fhirBaseUrl, timeoutMs: 10_000, maxRetries: 1 });
  const repository = new PlanRepository(gateway);
  const mapping = new PlanFhir(service.fhirBaseUrl);
  const context = { requestId: randomUUID() };
  for (const { name, plan } of await shapes()) {
    // As a create does: stored ids dropped, so that every entry is a POST.
    const fresh = withActivityIds(withoutStoredIds(plan), randomUUID);
    const request: Bundle = mapping.withProvenance(
      mapping.toFhir(fresh, { revision: randomUUID(), planKey: randomUUID() }),
      context,
      'CREATE',
    );
    const response = await repository.transaction(request, context, false, true);
    t.ok(
      response.entry?.every((entry) => entry.resource === undefined && entry.response?.location),
      `${name}: the answer holds locations, no resources (return=minimal)`,
    );
    const stored = repository.planFromSent(request, response);
    if (!stored) {
      t.fail(`${name}: the stored plan could not be made from what was sent`);
      continue;
    }
    const read = await repository.read(stored.plan.id as string, context);
    t.strictSame(stored.plan, read.plan, `${name}: the plan made from what was sent is the plan read`);
    t.equal(stored.version, read.version, `${name}: the same version`);
  }
});
