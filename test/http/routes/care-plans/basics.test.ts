// POST/GET /care-plans through the real app against a real FHIR server, checking what was really stored.
import type { Bundle, CarePlan, CareTeam, Condition, Goal, Observation } from 'fhir/r4.js';
import t from 'tap';
import { countOnServer, examplePlan, startTestService, type TestService } from '../../../helpers/service.js';

let service: TestService;
t.before(async () => {
  service = await startTestService();
});
t.teardown(() => service.close());

const post = (body: unknown, headers: Record<string, string> = {}) =>
  service.app.inject({
    method: 'POST',
    url: '/care-plans',
    headers: { 'content-type': 'application/json', ...headers },
    payload: typeof body === 'string' ? body : JSON.stringify(body),
  });

function planFor(patient: string) {
  const plan = examplePlan() as { patient: { reference: string } };
  plan.patient = { ...plan.patient, reference: patient };
  return plan;
}

t.test('POST /care-plans stores the plan as FHIR and GET reads it back', async (t) => {
  const patient = await service.newPatient('create');
  const plan = planFor(patient);
  const created = await post(plan);
  t.equal(created.statusCode, 201, created.body);
  const body = created.json();
  t.match(created.headers.location, /^\/care-plans\/[A-Za-z0-9\-.]+$/);
  t.equal(created.headers.location, `/care-plans/${body.id}`);
  t.equal(created.headers.etag, `W/"${body.version}"`);
  t.ok(created.headers['x-request-id'], 'every answer carries its request id');

  // What the FHIR server really holds.
  const stored = await service.fhir<CarePlan>(`CarePlan/${body.id}`);
  t.equal(stored.status, 200);
  const carePlan = stored.body;
  t.equal(carePlan.subject.reference, patient);
  t.equal(carePlan.status, 'active');
  t.equal(carePlan.intent, 'plan');
  t.ok(
    carePlan.meta?.profile?.some((p) =>
      p.startsWith('http://hl7.org/fhir/us/core/StructureDefinition/us-core-careplan'),
    ),
  );
  t.equal(carePlan.text?.status, 'generated');
  t.match(carePlan.text?.div, /Walk to the market/);
  t.equal(carePlan.goal?.length, 2);
  t.equal(carePlan.careTeam?.length, 1);
  t.equal(carePlan.supportingInfo?.length, 7, 'what matters, 2 preferences, 2 barriers, 2 strengths');
  t.equal(carePlan.activity?.length, 3);
  t.equal(
    carePlan.activity?.[0].detail?.goal?.[0].reference,
    carePlan.goal?.[0].reference,
    'activities link to goals',
  );
  t.ok(
    carePlan.extension?.some(
      (e) => e.url === 'https://shared-care-plans.org/fhir/StructureDefinition/shared-decision',
    ),
  );

  const goal = await service.fhir<Goal>(carePlan.goal?.[0].reference as string);
  t.equal(goal.status, 200);
  t.equal(goal.body.description.text, 'Walk to the market and back on Saturdays without stopping to rest');
  t.equal(goal.body.subject.reference, patient);
  t.equal(
    goal.body.extension?.filter((e) => e.url === 'http://hl7.org/fhir/StructureDefinition/goal-acceptance')
      .length,
    2,
  );
  t.equal(goal.body.target?.[0].dueDate, '2027-03-01', 'date-only values stay date-only');

  const careTeam = await service.fhir<CareTeam>(carePlan.careTeam?.[0].reference as string);
  t.equal(careTeam.body.participant?.length, 6);
  t.ok(
    careTeam.body.participant?.[1].role?.[0].coding?.some((c) => c.code === '133932002'),
    'caregiver SNOMED role',
  );

  const kinds = await Promise.all(
    (carePlan.supportingInfo ?? []).map(
      async (ref) => (await service.fhir<Observation | Condition>(ref.reference as string)).body,
    ),
  );
  t.equal(kinds.filter((r) => r.resourceType === 'Observation').length, 5);
  t.equal(kinds.filter((r) => r.resourceType === 'Condition').length, 2);
  const barrier = kinds.find(
    (r) => r.resourceType === 'Observation' && (r as Observation).focus,
  ) as Observation;
  t.equal(
    barrier.focus?.[0].reference,
    carePlan.goal?.[0].reference,
    'a barrier points at the goal it affects',
  );

  // Read back through the API: the same plan, the same version.
  const read = await service.app.inject({ method: 'GET', url: created.headers.location as string });
  t.equal(read.statusCode, 200);
  t.equal(read.headers.etag, created.headers.etag);
  t.strictSame(read.json(), body);
  const { id: _id, version: _v, lastUpdated: _l, ...withoutServerFields } = body;
  const stripIds = (value: unknown): unknown =>
    JSON.parse(JSON.stringify(value, (key, v) => (key === 'id' && typeof v === 'string' ? undefined : v)));
  t.strictSame(stripIds(withoutServerFields), stripIds(plan), 'the stored plan is the plan that was sent');

  // The plan's FHIR resources as a Bundle.
  const asFhir = await service.app.inject({
    method: 'GET',
    url: created.headers.location as string,
    headers: { accept: 'application/fhir+json' },
  });
  t.equal(asFhir.statusCode, 200);
  t.match(asFhir.headers['content-type'], /application\/fhir\+json/);
  const bundle = asFhir.json() as Bundle;
  t.equal(bundle.resourceType, 'Bundle');
  t.equal(bundle.entry?.length, 1 + 2 + 1 + 7);
});

t.test('a FHIR JSON request body is accepted', async (t) => {
  const patient = await service.newPatient('fhirjson');
  const created = await post(planFor(patient), { 'content-type': 'application/fhir+json' });
  t.equal(created.statusCode, 201);
});

t.test('GET of a plan that does not exist is a 404 problem', async (t) => {
  const missing = await service.app.inject({ method: 'GET', url: '/care-plans/does-not-exist' });
  t.equal(missing.statusCode, 404);
  t.match(missing.headers['content-type'], /application\/problem\+json/);
  t.match(missing.json(), { type: 'https://shared-care-plans.org/problems/not-found', status: 404 });
  const badId = await service.app.inject({ method: 'GET', url: '/care-plans/bad%20id!' });
  t.equal(badId.statusCode, 400);
});

t.test('bad input gets a clear 4xx problem and changes nothing', async (t) => {
  const patient = await service.newPatient('bad');
  const cases: { name: string; body: unknown; status: number; pointer?: string; contentType?: string }[] = [
    { name: 'not JSON', body: '{"patient": ', status: 400 },
    { name: 'empty body', body: '', status: 400 },
    { name: 'not an object', body: '[1,2]', status: 400, pointer: '' },
    {
      name: 'unknown top-level property',
      body: { ...planFor(patient), colour: 'blue' },
      status: 400,
      pointer: '/colour',
    },
    {
      name: 'unknown nested property',
      body: (() => {
        const p = planFor(patient) as unknown as { goals: Record<string, unknown>[] };
        p.goals[1].mood = 'happy';
        return p;
      })(),
      status: 400,
      pointer: '/goals/1/mood',
    },
    {
      name: 'missing status',
      body: { patient: { reference: patient }, intent: 'plan' },
      status: 400,
      pointer: '/status',
    },
    {
      name: 'bad status',
      body: { patient: { reference: patient }, intent: 'plan', status: 'bogus' },
      status: 400,
      pointer: '/status',
    },
    {
      name: 'impossible date',
      body: {
        patient: { reference: patient },
        intent: 'plan',
        status: 'active',
        period: { start: '2026-02-30' },
      },
      status: 400,
      pointer: '/period/start',
    },
    {
      name: 'date-time without time zone',
      body: {
        patient: { reference: patient },
        intent: 'plan',
        status: 'active',
        created: '2021-05-14 00:00:00',
      },
      status: 400,
      pointer: '/created',
    },
    {
      name: 'empty string',
      body: { patient: { reference: patient }, intent: 'plan', status: 'active', title: '' },
      status: 400,
      pointer: '/title',
    },
    {
      name: 'reference not in FHIR form',
      body: { patient: { reference: 'patient 12' }, intent: 'plan', status: 'active' },
      status: 400,
      pointer: '/patient/reference',
    },
    {
      name: 'wrong type',
      body: { patient: { reference: patient }, intent: 'plan', status: 'active', goals: 'walk' },
      status: 400,
      pointer: '/goals',
    },
    {
      name: 'a target value without a measure (gol-1)',
      body: {
        patient: { reference: patient },
        intent: 'plan',
        status: 'active',
        goals: [
          { description: { text: 'x' }, lifecycleStatus: 'active', targets: [{ quantity: { value: 1 } }] },
        ],
      },
      status: 400,
      pointer: '/goals/0/targets/0',
    },
    {
      name: 'a link to a goal that is not in the plan',
      body: {
        patient: { reference: patient },
        intent: 'plan',
        status: 'active',
        barriers: [{ statement: 'No bus', goals: ['nope'] }],
      },
      status: 422,
      pointer: '/barriers/0/goals/0',
    },
    {
      name: 'a chosen option that is not an option',
      body: {
        patient: { reference: patient },
        intent: 'plan',
        status: 'active',
        decisions: [{ question: 'Which?', options: [{ title: 'A' }], chosenOption: 'B' }],
      },
      status: 422,
      pointer: '/decisions/0/chosenOption',
    },
    {
      name: 'prototype poisoning',
      body: `{"patient":{"reference":"${patient}"},"__proto__":{"x":1}}`,
      status: 400,
    },
    { name: 'unsupported media type', body: 'hello', status: 415, contentType: 'text/plain' },
  ];
  for (const c of cases) {
    const reply = await post(c.body, c.contentType ? { 'content-type': c.contentType } : {});
    t.equal(reply.statusCode, c.status, `${c.name}: status`);
    t.match(reply.headers['content-type'], /application\/problem\+json/, `${c.name}: problem+json`);
    const problem = reply.json();
    t.match(
      problem,
      { type: /^https:\/\/shared-care-plans\.org\/problems\//, status: c.status, detail: String },
      c.name,
    );
    if (c.pointer !== undefined) {
      t.ok(
        problem.errors?.some((e: { pointer: string }) => e.pointer === c.pointer),
        `${c.name}: names ${c.pointer} (got ${JSON.stringify(problem.errors)})`,
      );
    }
  }
  t.equal(await countOnServer(service, 'CarePlan', `subject=${patient}`), 0, 'nothing was stored');
});

t.test('the body limit answers 413', async (t) => {
  const small = await startTestService({ BODY_LIMIT_BYTES: '2048' });
  t.teardown(() => small.close());
  const reply = await small.app.inject({
    method: 'POST',
    url: '/care-plans',
    headers: { 'content-type': 'application/json' },
    payload: JSON.stringify(examplePlan()),
  });
  t.equal(reply.statusCode, 413);
  t.match(reply.json(), { type: 'https://shared-care-plans.org/problems/payload-too-large' });
});

t.test('a body nesting deeper than 100 levels is refused before anything walks it', async (t) => {
  const { MAX_JSON_DEPTH } = await import('../../../../src/http/plugins/json-body.js');
  const { scanJson } = await import('../../../../src/http/plugins/json-body.js');
  const nest = (levels: number): unknown => {
    let value: unknown = 'x';
    for (let i = 0; i < levels; i++) value = i % 2 ? [value] : { a: value };
    return value;
  };
  // The depth is checked on the text before parsing (src/http/plugins/json-body.ts).
  const loose = { maxValues: 1e6, maxArrayItems: 1e6, maxStringLength: 1e6 };
  const deeperThan = (value: unknown, maxDepth: number) =>
    scanJson(JSON.stringify(value), { ...loose, maxDepth }).violation?.kind === 'depth';
  t.equal(deeperThan(nest(MAX_JSON_DEPTH), MAX_JSON_DEPTH), false, 'exactly the limit passes');
  t.equal(deeperThan(nest(MAX_JSON_DEPTH + 1), MAX_JSON_DEPTH), true, 'one level more does not');
  t.equal(deeperThan({ a: [1, { b: null }], c: {} }, 3), false);
  const plan = examplePlan() as Record<string, unknown>;
  const deep = await service.app.inject({
    method: 'POST',
    url: '/care-plans/$to-fhir',
    headers: { 'content-type': 'application/json' },
    payload: JSON.stringify({ ...plan, unmappedFhir: { carePlan: { extension: [nest(150)] } } }),
  });
  t.equal(deep.statusCode, 400);
  t.match(deep.json(), { detail: /nests deeper than 100 levels/ });
});

t.test('health: live always, ready when the FHIR server answers', async (t) => {
  t.equal((await service.app.inject({ method: 'GET', url: '/health/live' })).statusCode, 200);
  t.equal((await service.app.inject({ method: 'GET', url: '/health/ready' })).statusCode, 200);
  const { buildApp } = await import('../../../../src/http/app.js');
  const { loadConfig } = await import('../../../../src/config.js');
  const { quietLogger } = await import('../../../helpers/service.js');
  const orphan = await buildApp(
    {
      ...loadConfig({ FHIR_TIMEOUT_MS: '500', FHIR_MAX_RETRIES: '0' }),
      fhirBaseUrl: 'http://127.0.0.1:9/fhir',
    },
    { logger: quietLogger },
  );
  t.teardown(() => orphan.close());
  t.equal((await orphan.inject({ method: 'GET', url: '/health/ready' })).statusCode, 503);
  const write = await orphan.inject({
    method: 'POST',
    url: '/care-plans',
    headers: { 'content-type': 'application/json' },
    payload: JSON.stringify(examplePlan()),
  });
  t.equal(write.statusCode, 503, 'an unreachable FHIR server is a 503, never a bare 500');
  t.ok(write.headers['retry-after']);
});
