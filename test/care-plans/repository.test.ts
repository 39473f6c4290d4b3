// The plan repository (src/care-plans/repository.ts) against a real FHIR server (the embedded one, or the server
// TEST_FHIR_BASE_URL names): a plan written as one transaction comes back from the answer, from a read by id and
// from a read of many, unchanged; versions show in the history; FHIR server errors pass as FhirServerError.
import { randomUUID } from 'node:crypto';
import type { Bundle, CarePlan } from 'fhir/r4.js';
import t from 'tap';
import { PlanFhir } from '../../src/care-plans/plan-fhir.js';
import { PlanRepository, planResourcesBundle } from '../../src/care-plans/repository.js';
import { type EmbeddedFhirServer, startEmbeddedFhirServer } from '../../src/embedded-fhir/server.js';
import { FhirGateway, FhirServerError } from '../../src/fhir/client/gateway.js';
import type { SharedCarePlan } from '../../src/model/care-plan.js';
import { examplePlan, quietLogger } from '../helpers/service.js';

let embedded: EmbeddedFhirServer | undefined;
let repository: PlanRepository;
let mapping: PlanFhir;
const context = { requestId: randomUUID() };

t.before(async () => {
  const external = process.env.TEST_FHIR_BASE_URL;
  if (!external) embedded = await startEmbeddedFhirServer({ logger: quietLogger });
  const baseUrl = external ?? (embedded as EmbeddedFhirServer).baseUrl;
  repository = new PlanRepository(new FhirGateway({ baseUrl, timeoutMs: 10_000, maxRetries: 1 }));
  mapping = new PlanFhir(baseUrl);
});
t.teardown(async () => embedded?.close());

/** The example plan for a patient of its own, written in one transaction: the request and the answer. */
async function writePlan(
  title: string,
): Promise<{ plan: SharedCarePlan; request: Bundle; response: Bundle }> {
  const patient = `Patient/repo-${randomUUID().slice(0, 8)}`;
  const plan = JSON.parse(
    JSON.stringify({ ...examplePlan(), title }).replaceAll('Patient/maria-lopez', patient),
  ) as SharedCarePlan;
  const request = mapping.toFhir(plan, { revision: randomUUID(), planKey: randomUUID() });
  const response = await repository.transaction(
    mapping.withProvenance(request, context, 'CREATE'),
    context,
    false,
  );
  return { plan, request, response };
}

t.test('a written plan comes back from the answer, from a read and from a read of many', async (t) => {
  const { plan, request, response } = await writePlan('Repository round trip');
  const stored = repository.planFromTransaction(request, response);
  const carePlan = stored.resources[0] as CarePlan;
  t.equal(carePlan.resourceType, 'CarePlan', 'the CarePlan first');
  t.ok(stored.plan.id, 'the plan has its id');
  t.ok(stored.version, 'and its version');
  t.equal(stored.plan.title, 'Repository round trip');
  t.same(
    stored.plan.goals?.map((g) => g.description.text),
    plan.goals?.map((g) => g.description.text),
    'the goals, in order',
  );
  t.equal(stored.plan.careTeam?.members?.length, plan.careTeam?.members?.length, 'the care team');
  t.notOk(
    stored.resources.some((r) => r.resourceType === 'Provenance'),
    'the Provenance is not a part of the plan',
  );

  const read = await repository.read(stored.plan.id as string, context);
  t.same(read.plan, stored.plan, 'a read gives the same plan');
  t.equal(read.version, stored.version, 'at the same version');
  t.same(
    read.resources.map((r) => `${r.resourceType}/${r.id}`).sort(),
    stored.resources.map((r) => `${r.resourceType}/${r.id}`).sort(),
    'from the same resources',
  );

  const other = repository.planFromTransaction(
    ...(Object.values(await writePlan('Another plan')).slice(1) as [Bundle, Bundle]),
  );
  const many = await repository.readMany([carePlan, other.resources[0] as CarePlan], context);
  t.same(
    many.map((s) => s.plan.title),
    ['Repository round trip', 'Another plan'],
    'a read of many keeps the order',
  );
  t.same(many[0].plan, stored.plan, 'and gives the same plan');

  const bundle = planResourcesBundle(stored, 'https://fhir.example.org/r4/');
  t.equal(bundle.type, 'collection');
  t.equal(
    bundle.entry?.[0]?.fullUrl,
    `https://fhir.example.org/r4/CarePlan/${carePlan.id}`,
    'fullUrls at the public base',
  );
  t.notOk(planResourcesBundle(stored, undefined).entry?.[0]?.fullUrl, 'no public base: no fullUrl');
});

t.test('admit sees the CarePlan first and may refuse it', async (t) => {
  const { request, response } = await writePlan('Refused');
  const stored = repository.planFromTransaction(request, response);
  const refusal = new Error('not for this caller');
  let seen: string | undefined;
  await t.rejects(
    repository.read(stored.plan.id as string, context, (carePlan) => {
      seen = carePlan.id;
      throw refusal;
    }),
    refusal,
  );
  t.equal(seen, stored.plan.id, 'admit was given the CarePlan');
});

t.test('a new version of the plan shows in the history; searches find the plan', async (t) => {
  const { request, response } = await writePlan('Versioned');
  const first = repository.planFromTransaction(request, response);
  const id = first.plan.id as string;
  const next = mapping.toFhir(
    { ...first.plan, title: 'Versioned, changed' },
    { revision: randomUUID(), ifMatchVersion: first.version, planKey: randomUUID() },
  );
  const answer = await repository.transaction(
    mapping.withProvenance(next, context, 'UPDATE'),
    context,
    false,
  );
  const second = repository.planFromTransaction(next, answer, first.resources);
  t.equal(second.plan.title, 'Versioned, changed');
  t.not(second.version, first.version, 'a new version');
  const history = await repository.history(id, context);
  t.same(
    (history.entry ?? []).map((e) => e.resource?.meta?.versionId).sort(),
    [first.version, second.version].sort(),
    'both versions in the history',
  );
  const found = await repository.search('CarePlan', { _id: id }, context);
  t.same(
    (found.entry ?? []).map((e) => e.resource?.id),
    [id],
    'a search by id finds it',
  );
});

t.test('FHIR server errors pass as FhirServerError', async (t) => {
  const missing = await repository.read(`missing-${randomUUID().slice(0, 8)}`, context).catch((e) => e);
  t.ok(missing instanceof FhirServerError, 'a read of an unknown plan: a FhirServerError');
  t.equal(missing.kind, 'not-found', 'not-found');
  let lost: unknown;
  try {
    repository.planFromTransaction(
      { resourceType: 'Bundle', type: 'transaction' },
      { resourceType: 'Bundle', type: 'transaction-response', entry: [] },
    );
  } catch (error) {
    lost = error;
  }
  t.ok(lost instanceof FhirServerError, 'an answer without the CarePlan: a FhirServerError');
  t.match(lost, { kind: 'upstream', message: 'the FHIR server did not return the stored CarePlan' });
});
