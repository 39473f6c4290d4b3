// Taking part, beyond the matrix (participation-matrix.test.ts): the fhirUser claim is checked, a family member's
// token reaches only the plans of its patient whose team they are on, and people writing at the same moment all
// win (no If-Match, the service retries). Real app, real tokens (loopback issuer), the embedded FHIR server.
import type { LightMyRequestResponse } from 'fastify';
import t from 'tap';
import { type Issuer, type SecureService, startIssuer, startSecureService } from '../../../helpers/auth.js';
import { examplePlan, type Json } from '../../../helpers/service.js';

let issuer: Issuer;
let service: SecureService;

t.before(async () => {
  issuer = await startIssuer();
  service = await startSecureService(issuer);
  const put = (resource: Json) =>
    fetch(`${service.fhirBaseUrl}/${resource.resourceType}/${resource.id}`, {
      method: 'PUT',
      headers: { 'content-type': 'application/fhir+json' },
      body: JSON.stringify(resource),
    });
  // The FHIR server holds Ana as Maria's daughter.
  await put({
    resourceType: 'RelatedPerson',
    id: 'ana-lopez',
    patient: { reference: 'Patient/maria-lopez' },
  });
});
t.teardown(async () => {
  await service.close();
  await issuer.close();
});

const token = (claims: Record<string, unknown>) =>
  issuer.token({ sub: 'someone', client_id: 'an-app', ...claims });
const system = () => token({ scope: 'system/CarePlan.cruds', client_id: 'sync-engine' });
const familyOf = (patient: string, relatedPerson = 'RelatedPerson/ana-lopez') =>
  token({ scope: 'patient/CarePlan.cruds', patient, fhirUser: relatedPerson });

function send(
  method: 'GET' | 'POST' | 'PUT',
  url: string,
  bearer: string,
  body?: unknown,
): Promise<LightMyRequestResponse> {
  return service.app.inject({
    method,
    url,
    headers: {
      authorization: `Bearer ${bearer}`,
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    ...(body !== undefined ? { payload: JSON.stringify(body) } : {}),
  });
}

/** The example plan for `patient` (Ana on its team), created by the sync engine. */
async function planFor(patient: string, extraMembers: Json[] = []) {
  const plan = examplePlan() as Json;
  plan.patient = { reference: patient, display: 'Someone' };
  plan.careTeam.members.push(...extraMembers);
  const response = await send('POST', '/care-plans', await system(), plan);
  if (response.statusCode !== 201) throw new Error(`${response.statusCode} ${response.body}`);
  return { id: response.json().id as string, etag: response.headers.etag as string, plan: response.json() };
}

t.test(
  'the fhirUser claim is checked: a person by a FHIR id, a patient token for its own patient',
  async (t) => {
    const plan = await planFor('Patient/maria-lopez');
    const refused: [string, Record<string, unknown>][] = [
      ['not a person', { scope: 'user/CarePlan.cruds', fhirUser: 'Device/infusion-pump' }],
      [
        'an id against the FHIR id rule',
        { scope: 'user/CarePlan.cruds', fhirUser: 'Practitioner/dr okafor' },
      ],
      ['only dots', { scope: 'user/CarePlan.cruds', fhirUser: 'Practitioner/..' }],
      ['not a string', { scope: 'user/CarePlan.cruds', fhirUser: { reference: 'Practitioner/x' } }],
      [
        'a Patient other than the patient claim',
        { scope: 'patient/CarePlan.cruds', patient: 'maria-lopez', fhirUser: 'Patient/someone-else' },
      ],
    ];
    for (const [label, claims] of refused) {
      const response = await send('GET', `/care-plans/${plan.id}`, await token(claims));
      t.equal(response.statusCode, 401, `${label}: 401`);
      t.match(response.headers['www-authenticate'], /invalid_token.*fhirUser/, `${label}: says why`);
    }
    const absolute = await token({
      scope: 'user/CarePlan.cruds',
      fhirUser: 'https://ehr.example/fhir/Practitioner/dr-okafor',
    });
    const note = await send('POST', `/care-plans/${plan.id}/goals/${plan.plan.goals[1].id}/notes`, absolute, {
      text: 'Seen today',
    });
    t.equal(note.statusCode, 201, 'an absolute fhirUser URL names the person by its last two segments');
    t.equal(note.json().goals[1].notes.at(-1).author.reference, 'Practitioner/dr-okafor');
  },
);

t.test(
  'a family member proposes goals; a PractitionerRole writes notes but cannot agree in FHIR R4',
  async (t) => {
    const plan = await planFor('Patient/maria-lopez');
    const ana = await familyOf('maria-lopez');
    const active = await send('POST', `/care-plans/${plan.id}/goals`, ana, {
      description: { text: 'Dance at the wedding' },
      lifecycleStatus: 'active',
    });
    t.equal(active.statusCode, 428, 'adding a goal needs If-Match, as before');
    const withEtag = await service.app.inject({
      method: 'POST',
      url: `/care-plans/${plan.id}/goals`,
      headers: { authorization: `Bearer ${ana}`, 'content-type': 'application/json', 'if-match': plan.etag },
      payload: JSON.stringify({ description: { text: 'Dance at the wedding' }, lifecycleStatus: 'active' }),
    });
    t.equal(withEtag.statusCode, 403, 'a goal a family member adds is proposed, not active');
    t.match(withEtag.json().errors[0], { pointer: '/goals/2/lifecycleStatus' });
    const role = await token({ scope: 'user/CarePlan.cruds', fhirUser: 'PractitionerRole/ward-nurse' });
    const goal = `/care-plans/${plan.id}/goals/walk-to-market`;
    const agreement = await send('POST', `${goal}/agreements`, role, { status: 'agree' });
    t.equal(
      agreement.statusCode,
      422,
      'goal-acceptance.individual is a Patient, Practitioner or RelatedPerson',
    );
    const note = await send('POST', `${goal}/notes`, role, { text: 'Checked her knee' });
    t.equal(note.statusCode, 201, 'a PractitionerRole writes notes');
    t.equal(note.json().goals[0].notes.at(-1).author.reference, 'PractitionerRole/ward-nurse');
    const client = await system();
    const words = await send('PUT', `/care-plans/${plan.id}/what-matters`, client, {
      statement: 'Being safe',
    });
    t.equal(words.statusCode, 200);
    t.notOk(words.json().whatMatters.expressedBy, "a client's new words are not kept in Maria's name");
  },
);

t.test("a family member's token reaches only their patient's plans whose team they are on", async (t) => {
  const marias = await planFor('Patient/maria-lopez');
  // Ana on the team of another patient's plan: her token for Maria never reaches it, and a token for that patient
  // naming Ana is refused too, since the FHIR server holds Ana as Maria's.
  const others = await planFor('Patient/pedro-ruiz');
  const ana = await familyOf('maria-lopez');
  t.equal((await send('GET', `/care-plans/${marias.id}`, ana)).statusCode, 200, "Ana reads Maria's plan");
  const targets = [
    ['GET', `/care-plans/${others.id}`],
    ['GET', `/care-plans/${others.id}/history`],
    ['POST', `/care-plans/${others.id}/goals/${others.plan.goals[0].id}/notes`],
  ] as const;
  const anaForPedro = await familyOf('pedro-ruiz');
  for (const [method, url] of targets) {
    const body = method === 'POST' ? { text: 'hello' } : undefined;
    t.equal(
      (await send(method, url, ana, body)).statusCode,
      404,
      `${method} ${url} with Ana's token for Maria: 404`,
    );
    const asPedros = await send(method, url, anaForPedro, body);
    t.equal(asPedros.statusCode, 404, `${method} ${url}, a token for Pedro naming Maria's Ana: 404`);
    t.notMatch(asPedros.body, /pedro|ana-lopez/i, 'reveals nothing');
  }
  const unchanged = await send('GET', `/care-plans/${others.id}`, await system());
  t.equal(unchanged.headers.etag, others.etag, "Pedro's plan is unchanged");

  // A RelatedPerson the FHIR server does not hold is taken on the team's word.
  const luisPlan = await planFor('Patient/maria-lopez', [
    { member: { reference: 'RelatedPerson/luis-lopez', display: 'Luis Lopez' }, role: 'family-member' },
  ]);
  const luis = await familyOf('maria-lopez', 'RelatedPerson/luis-lopez');
  t.equal((await send('GET', `/care-plans/${luisPlan.id}`, luis)).statusCode, 200, 'Luis is on this team');
  t.equal((await send('GET', `/care-plans/${marias.id}`, luis)).statusCode, 404, 'but not on that one');
  const search = await send('GET', '/care-plans?patient=Patient/maria-lopez&limit=100', luis);
  t.equal(search.statusCode, 200);
  t.same(
    search.json().items.map((p: Json) => p.id),
    [luisPlan.id],
    'a search shows Luis only the plans he is on',
  );
  const feed = await send('GET', '/care-plans/changes', luis);
  t.equal(feed.statusCode, 403, 'the change feed would list the plans he is not on: refused');

  // A token whose user is a patient (user/ scope) reads only that patient's plans.
  const mariaUser = await token({ scope: 'user/CarePlan.cruds', fhirUser: 'Patient/maria-lopez' });
  t.equal((await send('GET', `/care-plans/${marias.id}`, mariaUser)).statusCode, 200);
  t.equal((await send('GET', `/care-plans/${others.id}`, mariaUser)).statusCode, 404, "not Pedro's");
});

t.test(
  'patient, two family members and a clinician at the same moment, 20 rounds: every one kept',
  async (t) => {
    const luisMember = {
      member: { reference: 'RelatedPerson/luis-lopez', display: 'Luis Lopez' },
      role: 'family-member',
    };
    const plan = await planFor('Patient/maria-lopez', [luisMember]);
    const goalId = plan.plan.goals[0].id;
    const people = {
      'Patient/maria-lopez': await token({
        scope: 'patient/CarePlan.cruds',
        patient: 'maria-lopez',
        fhirUser: 'Patient/maria-lopez',
      }),
      'RelatedPerson/ana-lopez': await familyOf('maria-lopez'),
      'RelatedPerson/luis-lopez': await familyOf('maria-lopez', 'RelatedPerson/luis-lopez'),
      'Practitioner/dr-okafor': await token({
        scope: 'user/CarePlan.cruds',
        fhirUser: 'Practitioner/dr-okafor',
      }),
    };
    const ROUNDS = 20;
    const etags = new Set<string>([plan.etag]);
    for (let round = 0; round < ROUNDS; round++) {
      // Each person at once: a note on the same goal, and on even rounds the family adds a barrier, the patient
      // changes her agreement and the clinician records a preference, all without If-Match.
      const writes = Object.entries(people).map(([person, bearer]) => {
        if (round % 2 === 1)
          return send('POST', `/care-plans/${plan.id}/goals/${goalId}/notes`, bearer, {
            text: `${person} round ${round}`,
          });
        if (person.startsWith('RelatedPerson/'))
          return send('POST', `/care-plans/${plan.id}/barriers`, bearer, {
            statement: `${person} round ${round}`,
          });
        if (person.startsWith('Patient/'))
          return send('POST', `/care-plans/${plan.id}/goals/${goalId}/agreements`, bearer, {
            status: round % 4 === 0 ? 'agree' : 'disagree',
            note: `round ${round}`,
          });
        return send('POST', `/care-plans/${plan.id}/preferences`, bearer, {
          kind: 'treatment-intervention',
          statement: `${person} round ${round}`,
        });
      });
      const answers = await Promise.all(writes);
      for (const answer of answers) {
        t.ok(answer.statusCode === 200 || answer.statusCode === 201, `round ${round}: ${answer.statusCode}`);
        const etag = answer.headers.etag as string;
        t.notOk(etags.has(etag), `round ${round}: a new ETag (${etag})`);
        etags.add(etag);
      }
    }
    const final = (await send('GET', `/care-plans/${plan.id}`, await system())).json();
    const goal = final.goals.find((g: Json) => g.id === goalId);
    const notes = goal.notes.map((n: Json) => `${n.author.reference}|${n.text}`);
    const barriers = final.barriers.map((b: Json) => `${b.expressedBy?.reference}|${b.statement}`);
    const preferences = final.preferences.map((p: Json) => `${p.expressedBy?.reference}|${p.statement}`);
    for (let round = 0; round < ROUNDS; round++) {
      for (const person of Object.keys(people)) {
        const text = `${person} round ${round}`;
        if (round % 2 === 1) t.ok(notes.includes(`${person}|${text}`), `note kept: ${text}`);
        else if (person.startsWith('RelatedPerson/'))
          t.ok(barriers.includes(`${person}|${text}`), `barrier kept: ${text}`);
        else if (person.startsWith('Practitioner/'))
          t.ok(preferences.includes(`${person}|${text}`), `preference kept: ${text}`);
      }
    }
    t.equal(goal.notes.length, (ROUNDS / 2) * 4, 'no note lost, none duplicated');
    t.same(
      goal.notes.map((n: Json) => n.time),
      [...goal.notes.map((n: Json) => n.time)].sort(),
      "a goal's notes are in order",
    );
    const maria = goal.agreements.filter((a: Json) => a.who.reference === 'Patient/maria-lopez');
    t.equal(maria.length, 1, "Maria's agreement replaced each time, never duplicated");
    t.equal(maria[0].note, `round ${ROUNDS - 2}`, 'the last one she sent');
    const history = (await send('GET', `/care-plans/${plan.id}/history`, await system())).json().items;
    t.equal(history.length, 1 + ROUNDS * 4, 'one version per contribution');
  },
);
