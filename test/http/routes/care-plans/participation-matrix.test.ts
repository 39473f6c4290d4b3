// Who may do what (README "Who may do what", src/care-plans/access.ts WHO_MAY): every role × every write, through
// the real app (AUTH_MODE=jwt, tokens from a loopback issuer) on the embedded FHIR server. Allowed writes succeed and
// are attributed to the right person in the plan, in its FHIR (goal-acceptance individual, Goal.note.authorReference,
// Observation performer, Condition asserter) and in the Provenance and history; forbidden ones answer 403 or 404 and
// change nothing (the plan's ETag and version stay).
import type { LightMyRequestResponse } from 'fastify';
import type { Bundle, CarePlan, Condition, Goal as FhirGoal, Observation, Provenance } from 'fhir/r4.js';
import t, { type Test } from 'tap';
import { WHO_MAY } from '../../../../src/care-plans/access.js';
import type { SharedCarePlan } from '../../../../src/model/care-plan.js';
import { type Issuer, type SecureService, startIssuer, startSecureService } from '../../../helpers/auth.js';
import { examplePlan, type Json } from '../../../helpers/service.js';

type Role = 'patient' | 'family' | 'stranger' | 'professional' | 'system' | 'noFhirUser';
const ROLES: Role[] = ['patient', 'family', 'stranger', 'professional', 'system', 'noFhirUser'];
/** Who each role is (the example plan: Maria, her daughter Ana on the team, Dr. Okafor on the team). */
const PERSON: Partial<Record<Role, { reference: string; name: string }>> = {
  patient: { reference: 'Patient/maria-lopez', name: 'Maria Lopez' },
  family: { reference: 'RelatedPerson/ana-lopez', name: 'Ana Lopez' },
  professional: { reference: 'Practitioner/dr-okafor', name: 'Dr. Chidi Okafor' },
};
const CLIENT: Record<Role, string> = {
  patient: 'patient-app',
  family: 'family-app',
  stranger: 'family-app',
  professional: 'ward-app',
  system: 'sync-engine',
  noFhirUser: 'ward-app',
};

let issuer: Issuer;
let service: SecureService;
const tokens: Partial<Record<Role, string>> = {};

async function tokenFor(role: Role): Promise<string> {
  const patient = { patient: 'maria-lopez', scope: 'patient/CarePlan.cruds' };
  const claims: Record<Role, Record<string, unknown>> = {
    patient: { ...patient, fhirUser: 'Patient/maria-lopez' },
    family: { ...patient, fhirUser: 'RelatedPerson/ana-lopez' },
    stranger: { ...patient, fhirUser: 'RelatedPerson/cousin-luis' },
    professional: { scope: 'user/CarePlan.cruds', fhirUser: 'Practitioner/dr-okafor' },
    system: { scope: 'system/CarePlan.cruds' },
    noFhirUser: { scope: 'user/CarePlan.cruds', sub: 'user-17' },
  };
  return issuer.token({ sub: CLIENT[role], client_id: CLIENT[role], ...claims[role] });
}

interface Call {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  url: string;
  body?: unknown;
  headers?: Record<string, string>;
}

function send(call: Call, role: Role): Promise<LightMyRequestResponse> {
  return service.app.inject({
    method: call.method,
    url: call.url,
    headers: {
      ...(call.body !== undefined ? { 'content-type': 'application/json' } : {}),
      authorization: `Bearer ${tokens[role]}`,
      ...call.headers,
    },
    ...(call.body !== undefined ? { payload: JSON.stringify(call.body) } : {}),
  });
}

async function putFhir(resource: Json) {
  const response = await fetch(`${service.fhirBaseUrl}/${resource.resourceType}/${resource.id}`, {
    method: 'PUT',
    headers: { 'content-type': 'application/fhir+json' },
    body: JSON.stringify(resource),
  });
  if (!response.ok) throw new Error(`PUT ${resource.resourceType}: ${response.status}`);
}

t.before(async () => {
  issuer = await startIssuer();
  service = await startSecureService(issuer);
  // Ana is held by the FHIR server as Maria's; cousin Luis is too, but is not on the plan's team.
  await putFhir({
    resourceType: 'Patient',
    id: 'maria-lopez',
    name: [{ family: 'Lopez', given: ['Maria'] }],
  });
  for (const id of ['ana-lopez', 'cousin-luis'])
    await putFhir({ resourceType: 'RelatedPerson', id, patient: { reference: 'Patient/maria-lopez' } });
  for (const role of ROLES) tokens[role] = await tokenFor(role);
});
t.teardown(async () => {
  await service.close();
  await issuer.close();
});

interface Fresh {
  id: string;
  etag: string;
  plan: Json;
}

async function freshPlan(author?: Json): Promise<Fresh> {
  const body = { ...examplePlan(), ...(author ? { author } : {}) };
  const response = await send({ method: 'POST', url: '/care-plans', body }, 'system');
  if (response.statusCode !== 201) throw new Error(`create: ${response.statusCode} ${response.body}`);
  return { id: response.json().id, etag: response.headers.etag as string, plan: response.json() };
}

const goal = (plan: Json, key: string) => plan.goals.find((g: Json) => g.key === key);
/** The example: walk-to-market is Maria's goal, blood-sugar Dr. Okafor's; preferences, what matters: Maria's. */
const MARIAS_GOAL = 'walk-to-market';
const DOCTORS_GOAL = 'blood-sugar';

type Outcome = 200 | 201 | 403 | 404;
interface Write {
  name: string;
  /** The request, on a fresh plan. */
  call(plan: Fresh, role: Role): Call;
  /** What each role gets, from the table in the README (the test's own copy, not the code's). */
  expect: Record<Role, Outcome>;
  /** After an allowed write by `role`: what the plan, its FHIR and its history must say. */
  check?(t: Test, after: Json, role: Role, fhir: FhirView): Promise<void> | void;
  /** The cell of WHO_MAY this write exercises. */
  table: keyof typeof WHO_MAY;
  /** The plan's author, when not Maria (the example's). */
  author?: { reference: string; display: string };
}

const ALL_BUT_STRANGER = (
  ok: Outcome,
  overrides: Partial<Record<Role, Outcome>> = {},
): Record<Role, Outcome> => ({
  patient: ok,
  family: ok,
  stranger: 404,
  professional: ok,
  system: ok,
  noFhirUser: ok,
  ...overrides,
});

/** Someone whose agreement is not the role's own: Ana for Maria, Maria for everyone else. */
const otherThan = (role: Role) => (role === 'patient' ? 'RelatedPerson/ana-lopez' : 'Patient/maria-lopez');

/** The reference a write by `role` is attributed to in the plan (undefined: a client, no person). */
const personOf = (role: Role) => PERSON[role]?.reference;

interface FhirView {
  goals: FhirGoal[];
  observations: Observation[];
  conditions: Condition[];
}

const WRITES: Write[] = [
  {
    name: 'own agreement with a goal',
    table: 'agreement',
    call: (p) => ({
      method: 'POST',
      url: `/care-plans/${p.id}/goals/${goal(p.plan, DOCTORS_GOAL).id}/agreements`,
      body: { status: 'disagree', note: 'Not before my holiday' },
    }),
    expect: ALL_BUT_STRANGER(200, { system: 403, noFhirUser: 403 }),
    check(t, after, role, fhir) {
      const me = personOf(role) as string;
      const mine = goal(after, DOCTORS_GOAL).agreements.filter((a: Json) => a.who.reference === me);
      t.equal(mine.length, 1, `${role}: one agreement of theirs (the earlier one replaced)`);
      t.match(mine[0], { status: 'disagree', note: 'Not before my holiday', recordedOn: /^20/ });
      t.notOk(mine[0].recordedBy, 'recorded by themselves');
      const acceptance = fhir.goals
        .find((g) => g.identifier?.some((i) => i.value === DOCTORS_GOAL))
        ?.extension?.filter((e) => e.url === 'http://hl7.org/fhir/StructureDefinition/goal-acceptance')
        .map((e) => e.extension?.find((x) => x.url === 'individual')?.valueReference?.reference);
      t.ok(acceptance?.includes(me), `${role}: goal-acceptance individual is ${me}`);
    },
  },
  {
    name: 'agreement recorded for another person (who said it in person)',
    table: 'agreement-for-another',
    call: (p, role) => ({
      method: 'POST',
      url: `/care-plans/${p.id}/goals/${goal(p.plan, DOCTORS_GOAL).id}/agreements`,
      body: { status: 'agree', who: { reference: otherThan(role) } },
    }),
    expect: ALL_BUT_STRANGER(200, { patient: 403, family: 403 }),
    check(t, after, role) {
      const said = goal(after, DOCTORS_GOAL).agreements.find(
        (a: Json) => a.who.reference === otherThan(role),
      );
      t.equal(said.status, 'agree', `${role}: the agreement of ${otherThan(role)} recorded`);
      if (role === 'professional')
        t.equal(said.recordedBy.reference, 'Practitioner/dr-okafor', 'as recorded by the doctor');
      else t.notOk(said.recordedBy, `${role}: a client records no recorder`);
    },
  },
  {
    name: 'note on the progress of a goal someone else wrote',
    table: 'note-add',
    call: (p) => ({
      method: 'POST',
      url: `/care-plans/${p.id}/goals/${goal(p.plan, DOCTORS_GOAL).id}/notes`,
      body: { text: 'Sugar was fine all week', achievementStatus: 'improving' },
    }),
    expect: ALL_BUT_STRANGER(201),
    check(t, after, role, fhir) {
      const g = goal(after, DOCTORS_GOAL);
      t.equal(g.achievementStatus, 'improving', `${role}: the goal's achievement status`);
      const note = g.notes.at(-1);
      t.match(note, { text: 'Sugar was fine all week', time: /^20/ });
      t.equal(note.author?.reference, personOf(role), `${role}: the note's author`);
      const annotation = fhir.goals
        .find((x) => x.identifier?.some((i) => i.value === DOCTORS_GOAL))
        ?.note?.at(-1);
      t.equal(annotation?.authorReference?.reference, personOf(role), `${role}: Goal.note.authorReference`);
    },
  },
  ...(['preferences', 'strengths', 'barriers'] as const).flatMap((list): Write[] => [
    {
      name: `add one of ${list}`,
      table: 'item-add',
      call: (p) => ({
        method: 'POST',
        url: `/care-plans/${p.id}/${list}`,
        body:
          list === 'preferences'
            ? { kind: 'care-experience', statement: 'Call in the morning' }
            : { statement: 'The stairs at the clinic' },
      }),
      expect: ALL_BUT_STRANGER(201),
      check(t, after, role, fhir) {
        const added = after[list].at(-1);
        t.equal(added.expressedBy?.reference, personOf(role), `${role}: ${list} expressedBy`);
        const words = list === 'preferences' ? 'Call in the morning' : 'The stairs at the clinic';
        if (list === 'strengths') {
          const condition = fhir.conditions.find((c) => c.code?.text === words);
          t.equal(condition?.asserter?.reference, personOf(role), `${role}: Condition.asserter`);
        } else {
          const observation = fhir.observations.find(
            (o) => o.valueString === words || o.valueCodeableConcept?.text === words,
          );
          t.equal(observation?.performer?.[0]?.reference, personOf(role), `${role}: Observation.performer`);
        }
      },
    },
  ]),
  {
    name: "change Maria's preference",
    table: 'item-change',
    call: (p) => ({
      method: 'PATCH',
      url: `/care-plans/${p.id}/preferences/${p.plan.preferences[0].id}`,
      body: { statement: 'Spanish, and text me first' },
      headers: { 'if-match': p.etag },
    }),
    expect: ALL_BUT_STRANGER(200, { family: 403, professional: 403 }),
    check: (t, after, role) => {
      t.equal(after.preferences[0].statement, 'Spanish, and text me first', role);
    },
  },
  {
    name: "remove Maria's preference",
    table: 'item-remove',
    call: (p) => ({
      method: 'DELETE',
      url: `/care-plans/${p.id}/preferences/${p.plan.preferences[1].id}`,
      headers: { 'if-match': p.etag },
    }),
    expect: ALL_BUT_STRANGER(200, { family: 403, professional: 403 }),
  },
  {
    name: "set what matters (Maria's until now)",
    table: 'what-matters-set',
    call: (p) => ({
      method: 'PUT',
      url: `/care-plans/${p.id}/what-matters`,
      body: { statement: 'My garden' },
    }),
    expect: ALL_BUT_STRANGER(200, { family: 403, professional: 403 }),
    check: (t, after, role) => {
      t.equal(after.whatMatters.statement, 'My garden', role);
    },
  },
  {
    name: 'add a goal',
    table: 'goal-add',
    call: (p) => ({
      method: 'POST',
      url: `/care-plans/${p.id}/goals`,
      body: { description: { text: 'Dance at the wedding' }, lifecycleStatus: 'proposed' },
      headers: { 'if-match': p.etag },
    }),
    expect: ALL_BUT_STRANGER(201),
    check(t, after, role) {
      const added = after.goals.at(-1);
      t.equal(added.expressedBy?.reference, personOf(role), `${role}: the goal is in their name`);
    },
  },
  {
    name: "rewrite Dr. Okafor's goal",
    table: 'goal-change',
    call: (p) => ({
      method: 'PATCH',
      url: `/care-plans/${p.id}/goals/${goal(p.plan, DOCTORS_GOAL).id}`,
      body: { description: { text: 'Forget the sugar' } },
      headers: { 'if-match': p.etag },
    }),
    expect: ALL_BUT_STRANGER(200, { patient: 403, family: 403 }),
  },
  {
    name: "rewrite Maria's goal",
    table: 'goal-change',
    call: (p) => ({
      method: 'PATCH',
      url: `/care-plans/${p.id}/goals/${goal(p.plan, MARIAS_GOAL).id}`,
      body: { description: { text: 'Walk to the market twice a week' } },
      headers: { 'if-match': p.etag },
    }),
    expect: ALL_BUT_STRANGER(200, { family: 403, professional: 403 }),
  },
  {
    name: "remove Maria's goal",
    table: 'goal-remove',
    call: (p) => ({
      method: 'DELETE',
      url: `/care-plans/${p.id}/goals/${goal(p.plan, MARIAS_GOAL).id}`,
      headers: { 'if-match': p.etag },
    }),
    expect: ALL_BUT_STRANGER(200, { family: 403, professional: 403 }),
  },
  {
    name: 'mark done the activity Maria performs',
    table: 'activity-change',
    call: (p) => ({
      method: 'PATCH',
      url: `/care-plans/${p.id}/activities/${p.plan.activities[0].id}`,
      body: { status: 'completed' },
      headers: { 'if-match': p.etag },
    }),
    // Ana does not perform it.
    expect: ALL_BUT_STRANGER(200, { family: 403 }),
  },
  {
    name: 'add an activity',
    table: 'activity-add',
    call: (p) => ({
      method: 'POST',
      url: `/care-plans/${p.id}/activities`,
      body: { description: 'Swim on Tuesdays', status: 'not-started' },
      headers: { 'if-match': p.etag },
    }),
    expect: ALL_BUT_STRANGER(201, { patient: 403, family: 403 }),
  },
  {
    name: 'remove an activity',
    table: 'activity-remove',
    call: (p) => ({
      method: 'DELETE',
      url: `/care-plans/${p.id}/activities/${p.plan.activities[1].id}`,
      headers: { 'if-match': p.etag },
    }),
    expect: ALL_BUT_STRANGER(200, { patient: 403, family: 403 }),
  },
  {
    name: 'end the plan Maria wrote (its author)',
    table: 'end',
    call: (p) => ({ method: 'DELETE', url: `/care-plans/${p.id}`, headers: { 'if-match': p.etag } }),
    expect: ALL_BUT_STRANGER(200, { family: 403 }),
  },
  {
    name: 'end a plan Dr. Okafor wrote',
    table: 'end',
    author: { reference: 'Practitioner/dr-okafor', display: 'Dr. Chidi Okafor' },
    call: (p) => ({ method: 'DELETE', url: `/care-plans/${p.id}`, headers: { 'if-match': p.etag } }),
    expect: ALL_BUT_STRANGER(200, { patient: 403, family: 403 }),
  },
  {
    name: 'retitle a plan Dr. Okafor wrote (PUT)',
    table: 'replace',
    author: { reference: 'Practitioner/dr-okafor', display: 'Dr. Chidi Okafor' },
    call: (p) => ({
      method: 'PUT',
      url: `/care-plans/${p.id}`,
      body: { ...p.plan, title: 'My plan now' },
      headers: { 'if-match': p.etag },
    }),
    expect: ALL_BUT_STRANGER(200, { patient: 403, family: 403 }),
  },
  {
    name: "PUT the whole plan, rewriting Dr. Okafor's goal",
    table: 'replace',
    call: (p) => ({
      method: 'PUT',
      url: `/care-plans/${p.id}`,
      body: {
        ...p.plan,
        goals: p.plan.goals.map((g: Json) =>
          g.key === DOCTORS_GOAL ? { ...g, description: { text: 'No more finger pricks' } } : g,
        ),
      },
      headers: { 'if-match': p.etag },
    }),
    expect: ALL_BUT_STRANGER(200, { patient: 403, family: 403 }),
  },
  {
    name: "PUT the whole plan, rewriting Maria's words (what matters)",
    table: 'replace',
    call: (p) => ({
      method: 'PUT',
      url: `/care-plans/${p.id}`,
      body: { ...p.plan, whatMatters: { ...p.plan.whatMatters, statement: 'Safety above all' } },
      headers: { 'if-match': p.etag },
    }),
    expect: ALL_BUT_STRANGER(200, { family: 403, professional: 403 }),
  },
  {
    name: 'PUT the whole plan, adding a barrier',
    table: 'replace',
    call: (p) => ({
      method: 'PUT',
      url: `/care-plans/${p.id}`,
      body: { ...p.plan, barriers: [...p.plan.barriers, { statement: 'Ice on the pavement' }] },
      headers: { 'if-match': p.etag },
    }),
    expect: ALL_BUT_STRANGER(200),
    check(t, after, role) {
      const added = after.barriers.find((b: Json) => b.statement === 'Ice on the pavement');
      t.equal(added.expressedBy?.reference, personOf(role), `${role}: what they add through PUT is theirs`);
    },
  },
];

async function fhirView(id: string): Promise<FhirView> {
  const bundle = (
    await send(
      { method: 'GET', url: `/care-plans/${id}`, headers: { accept: 'application/fhir+json' } },
      'system',
    )
  ).json() as Bundle;
  const of = <T>(type: string) =>
    (bundle.entry ?? []).map((e) => e.resource).filter((r) => r?.resourceType === type) as T[];
  return { goals: of('Goal'), observations: of('Observation'), conditions: of('Condition') };
}

t.test('every role × every write: allowed ones attributed, forbidden ones change nothing', async (t) => {
  const exercised = new Set(WRITES.map((w) => w.table));
  exercised.add('create'); // the next test
  t.same([...exercised].sort(), Object.keys(WHO_MAY).sort(), 'every write of the access table is exercised');
  for (const write of WRITES) {
    for (const role of ROLES) {
      const plan = await freshPlan(write.author);
      const response = await send(write.call(plan, role), role);
      const expected = write.expect[role];
      const label = `${write.name}, as ${role}`;
      t.equal(response.statusCode, expected, `${label}: ${expected}`);
      const reread = await send({ method: 'GET', url: `/care-plans/${plan.id}` }, 'system');
      if (expected >= 400) {
        t.equal(reread.headers.etag, plan.etag, `${label}: the plan did not change (same ETag)`);
        t.equal(response.headers['content-type'], 'application/problem+json; charset=utf-8');
        continue;
      }
      t.equal(response.headers.etag, reread.headers.etag, `${label}: answers with the new ETag`);
      t.not(response.headers.etag, plan.etag, `${label}: the ETag moved`);
      await write.check?.(t, reread.json(), role, await fhirView(plan.id));
      await checkAttribution(t, plan.id, role, label);
    }
  }
});

/** The Provenance of the newest version and the history name the person (or the client). */
async function checkAttribution(t: Test, id: string, role: Role, label: string) {
  const history = (await send({ method: 'GET', url: `/care-plans/${id}/history` }, 'system')).json().items;
  const person = PERSON[role];
  if (person) {
    t.equal(history[0].changedBy, person.name, `${label}: the history shows ${person.name}`);
    t.equal(history[0].changedByReference, person.reference);
    t.equal(history[0].via, `client ${CLIENT[role]}`);
  } else {
    t.match(
      history[0].changedBy,
      new RegExp(`^client ${CLIENT[role]}`),
      `${label}: the history shows the client`,
    );
  }
  const provenance = await service.fhir<Bundle>(`Provenance?target=CarePlan/${id}&_count=100`);
  const records = (provenance.entry ?? []).map((e) => e.resource as Provenance);
  t.equal(records.length, 2, `${label}: one Provenance per write`);
  const carePlan = await service.fhir<CarePlan>(`CarePlan/${id}`);
  const revision = carePlan.extension?.find((e) => e.url.endsWith('/plan-revision'))?.valueString;
  const latest = records.find((p) => p.extension?.some((e) => e.valueString === revision)) as Provenance;
  if (person) {
    t.equal(latest.agent[0].who.reference, person.reference, `${label}: Provenance agent is the person`);
    t.equal(latest.agent[1].who.identifier?.value, CLIENT[role], `${label}: the client is the second agent`);
    if (role === 'professional')
      t.ok(latest.agent[0].onBehalfOf, 'a Practitioner acts on behalf of (US Core)');
  } else {
    t.equal(latest.agent.length, 1);
    t.equal(latest.agent[0].who.identifier?.value, CLIENT[role], `${label}: Provenance agent is the client`);
  }
}

t.test(
  'creating a plan: a patient their own (theirs), family members none, the rest as before',
  async (t) => {
    const expect: Record<Role, number> = {
      patient: 201,
      family: 403,
      stranger: 403,
      professional: 201,
      system: 201,
      noFhirUser: 201,
    };
    const example = examplePlan() as unknown as SharedCarePlan;
    for (const role of ROLES) {
      const body: SharedCarePlan = {
        patient: example.patient,
        status: 'active',
        intent: 'proposal',
        careTeam: example.careTeam,
        barriers: [{ statement: 'My knees in the cold' }],
      };
      const response = await send({ method: 'POST', url: '/care-plans', body }, role);
      t.equal(response.statusCode, expect[role], `create as ${role}: ${expect[role]}`);
      if (response.statusCode !== 201) continue;
      const plan = response.json();
      const added = plan.barriers[0];
      t.equal(added.expressedBy?.reference, personOf(role), `${role}: what they wrote is theirs`);
      if (role === 'patient') t.equal(plan.author.reference, 'Patient/maria-lopez', "the patient's own plan");
      await checkAttributionOfCreate(t, plan.id, role);
    }
    // A patient's plan may not carry someone else's agreement.
    const forged = examplePlan() as Json;
    delete forged.author;
    const refused = await send({ method: 'POST', url: '/care-plans', body: forged }, 'patient');
    t.equal(refused.statusCode, 403, "a patient cannot write Dr. Okafor's agreement into their plan");
  },
);

async function checkAttributionOfCreate(t: Test, id: string, role: Role) {
  const history = (await send({ method: 'GET', url: `/care-plans/${id}/history` }, 'system')).json().items;
  const person = PERSON[role];
  if (person) t.equal(history[0].changedBy, person.name, `create as ${role}: history names ${person.name}`);
  else t.match(history[0].changedBy, /^client /, `create as ${role}: history names the client`);
}
