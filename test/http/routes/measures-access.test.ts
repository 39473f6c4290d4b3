// Who may see which figures (issue 17): user/ and system/ tokens that allow search of CarePlan see every plan's
// figures; a patient/ token only its own patient's, whatever it asks; another patient's filter is a 404 (never a
// 403, which would say something about that patient); no token is a 401, a token without search a 403.
import t from 'tap';
import { type SecureService, startIssuer, startSecureService } from '../../helpers/auth.js';
import { day, expected, MEASUREMENT_PERIOD, planOf, specs } from '../../helpers/measure-population.js';

const PATIENTS = ['Patient/measure-a', 'Patient/measure-b'];
const PERIOD = `periodStart=${day(MEASUREMENT_PERIOD.startOffset)}&periodEnd=${day(MEASUREMENT_PERIOD.endOffset)}`;
const population = specs(14, PATIENTS);

const issuer = await startIssuer();
let service: SecureService;
t.before(async () => {
  service = await startSecureService(issuer, { LOG_LEVEL: 'silent' });
  const writer = await issuer.token({ scope: 'system/CarePlan.cruds', client_id: 'loader' });
  for (const spec of population) {
    const created = await service.app.inject({
      method: 'POST',
      url: '/care-plans',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${writer}` },
      payload: planOf(spec),
    });
    if (created.statusCode !== 201) throw new Error(created.body);
  }
});
t.teardown(async () => {
  await service.close();
  await issuer.close();
});

const report = (token: string | undefined, query = PERIOD, id = 'goals-agreed-by-patient') =>
  service.app.inject({
    url: `/measures/${id}/report?${query}`,
    headers: token ? { authorization: `Bearer ${token}` } : {},
  });
const patientToken = (patient: string, scope = 'patient/CarePlan.rs') =>
  issuer.token({ scope, client_id: 'patient-app', patient: patient.split('/')[1], sub: 'someone' });
const ofPatient = (patient: string) =>
  expected('goals-agreed-by-patient', population, (s) => s.patient === patient);

t.test('user/ and system/ tokens that allow search see every plan', async (t) => {
  for (const scope of ['user/CarePlan.rs', 'system/CarePlan.s', 'user/CarePlan.read', 'system/*.cruds']) {
    const answer = await report(await issuer.token({ scope, client_id: 'quality-team' }));
    t.equal(answer.statusCode, 200, scope);
    t.same(answer.json().populations, expected('goals-agreed-by-patient', population).populations, scope);
  }
});

t.test('a patient token sees its own patient’s figures only', async (t) => {
  const [mine, theirs] = PATIENTS;
  const token = await patientToken(mine);
  const unfiltered = await report(token);
  t.equal(unfiltered.statusCode, 200);
  t.same(unfiltered.json().populations, ofPatient(mine).populations, 'the filter is forced to its patient');
  t.equal(unfiltered.json().patient, mine);
  t.not(
    ofPatient(mine).populations.initialPopulation,
    expected('goals-agreed-by-patient', population).populations.initialPopulation,
  );

  const own = await report(token, `${PERIOD}&patient=${mine}`);
  t.same(own.json().populations, ofPatient(mine).populations);

  for (const other of [theirs, 'Patient/no-such-patient']) {
    const answer = await report(token, `${PERIOD}&patient=${other}`);
    t.equal(answer.statusCode, 404, `${other}: 404 whether or not the patient exists`);
    t.match(answer.headers['content-type'], /^application\/problem\+json/);
    t.notMatch(answer.body, /measure-b|no-such-patient/, 'the answer names no other patient');
  }
  const subjects = await report(token, `${PERIOD}&reportType=subject-list`, 'what-matters-documented');
  t.equal(subjects.statusCode, 200);
  t.equal(
    subjects.json().subjects.initialPopulation.length,
    expected('what-matters-documented', population, (s) => s.patient === mine).populations.initialPopulation,
  );
});

t.test('no token is 401; a token that cannot search CarePlan is 403', async (t) => {
  const none = await report(undefined);
  t.equal(none.statusCode, 401);
  t.ok(none.headers['www-authenticate']);
  for (const scope of ['user/CarePlan.r', 'system/CarePlan.cud', 'user/Goal.rs']) {
    const answer = await report(await issuer.token({ scope, client_id: 'quality-team' }));
    t.equal(answer.statusCode, 403, scope);
  }
  t.equal((await report(await patientToken(PATIENTS[0], 'patient/CarePlan.r'))).statusCode, 403);
});

t.test('the measure definitions are public', async (t) => {
  t.equal((await service.app.inject({ url: '/measures' })).statusCode, 200);
  t.equal((await service.app.inject({ url: '/fhir/Measure/goal-follow-up' })).statusCode, 200);
});

t.test('an asynchronous report is its caller’s only', async (t) => {
  const token = await patientToken(PATIENTS[0]);
  const started = await report(token, PERIOD);
  t.equal(started.statusCode, 200, 'without Prefer: synchronous');
  const job = await service.app.inject({
    url: `/measures/goals-agreed-by-patient/report?${PERIOD}`,
    headers: { authorization: `Bearer ${token}`, prefer: 'respond-async' },
  });
  t.equal(job.statusCode, 202);
  const location = job.headers['content-location'] as string;
  const other = await patientToken(PATIENTS[1]);
  t.equal(
    (await service.app.inject({ url: location, headers: { authorization: `Bearer ${other}` } })).statusCode,
    404,
  );
  const quality = await issuer.token({ scope: 'user/CarePlan.rs', client_id: 'quality-team' });
  t.equal(
    (await service.app.inject({ url: location, headers: { authorization: `Bearer ${quality}` } })).statusCode,
    404,
  );
  t.equal(
    (
      await service.app.inject({
        method: 'DELETE',
        url: location,
        headers: { authorization: `Bearer ${other}` },
      })
    ).statusCode,
    404,
  );
  let status = await service.app.inject({ url: location, headers: { authorization: `Bearer ${token}` } });
  for (let polls = 0; status.statusCode === 202 && polls < 600; polls++) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    status = await service.app.inject({ url: location, headers: { authorization: `Bearer ${token}` } });
  }
  t.equal(status.statusCode, 200);
  t.same(status.json().populations, ofPatient(PATIENTS[0]).populations);
  const foreign = await service.app.inject({
    url: `/measures/goals-agreed-by-patient/report?${PERIOD}&patient=${PATIENTS[1]}`,
    headers: { authorization: `Bearer ${token}`, prefer: 'respond-async' },
  });
  t.equal(foreign.statusCode, 404, 'another patient’s filter is refused at once, also asynchronously');
});

t.test('the person a token names bounds it too: a patient user, a family member', async (t) => {
  const [mine, theirs] = PATIENTS;
  // A user/ token whose user is a patient: that patient's figures only, whatever its scopes.
  const patientUser = await issuer.token({
    scope: 'user/CarePlan.rs',
    client_id: 'patient-app',
    fhirUser: mine,
  });
  const unfiltered = await report(patientUser);
  t.equal(unfiltered.statusCode, 200);
  t.same(unfiltered.json().populations, ofPatient(mine).populations, "forced to the user's own patient");
  t.equal(
    (await report(patientUser, `${PERIOD}&patient=${theirs}`)).statusCode,
    404,
    "another patient's: 404",
  );
  // A family member sees the patient's plans whose care team they are on, one by one; a report covers them all.
  const family = await issuer.token({
    scope: 'patient/CarePlan.rs',
    client_id: 'family-app',
    patient: mine.split('/')[1],
    fhirUser: 'RelatedPerson/a-daughter',
  });
  for (const prefer of [undefined, 'respond-async']) {
    const answer = await service.app.inject({
      url: `/measures/goals-agreed-by-patient/report?${PERIOD}`,
      headers: { authorization: `Bearer ${family}`, ...(prefer ? { prefer } : {}) },
    });
    t.equal(answer.statusCode, 403, `a family member's token gets no report (${prefer ?? 'waiting'})`);
    t.match(answer.json(), { detail: /care team they are on; a report covers all of a patient's plans$/ });
    t.notMatch(answer.body, /initialPopulation/, 'and no figures');
  }
});
