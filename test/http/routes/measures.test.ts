// The quality measures (issue 17) on a generated population created through the API on the embedded FHIR server:
// every measure's counts, score and strata against what the test computes from the generator's own parameters.
import type { List, Measure, MeasureReport } from 'fhir/r4.js';
import t from 'tap';
import { validateFhirResource } from '../../../src/fhir/validation/index.js';
import {
  AUTHORS,
  day,
  expected,
  MEASURE_IDS,
  MEASUREMENT_PERIOD,
  type PlanSpec,
  planOf,
  specs,
} from '../../helpers/measure-population.js';
import { startTestService, type TestService } from '../../helpers/service.js';

let service: TestService;
let population: PlanSpec[];
const planIds = new Map<number, string>();
const PERIOD = `periodStart=${day(MEASUREMENT_PERIOD.startOffset)}&periodEnd=${day(MEASUREMENT_PERIOD.endOffset)}`;

t.before(async () => {
  // A small page size, so that the report pages through the FHIR server many times.
  service = await startTestService();
  service.app.measures.pageSize = 7;
  service.app.measures.partsChunk = 3;
  service.app.measures.historyBatch = 3;
  const patients = [
    await service.newPatient('m1'),
    await service.newPatient('m2'),
    await service.newPatient('m3'),
  ];
  population = specs(40, patients);
  // A plan another system wrote (no identifier of this service), active in the period: it is not counted, so
  // every expectation below (computed from the specs alone) also shows that.
  const foreign = planOf(population[0]);
  const stored = await service.fhir('CarePlan', {
    method: 'POST',
    body: JSON.stringify({
      resourceType: 'CarePlan',
      status: 'active',
      intent: 'plan',
      subject: { reference: patients[0] },
      period: foreign.period,
      author: foreign.author,
      extension: [
        {
          url: 'https://shared-care-plans.org/fhir/StructureDefinition/shared-decision',
          extension: [
            { url: 'question', valueString: 'Which way?' },
            { url: 'option', extension: [{ url: 'title', valueString: 'A' }] },
            { url: 'option', extension: [{ url: 'title', valueString: 'B' }] },
            { url: 'chosenOption', valueString: 'A' },
            { url: 'rationale', valueString: 'because' },
            { url: 'participant', valueReference: { reference: patients[0] } },
          ],
        },
      ],
    }),
  });
  if (stored.status !== 201) throw new Error(`foreign plan: ${JSON.stringify(stored.body)}`);
  for (const spec of population) {
    const created = await service.app.inject({
      method: 'POST',
      url: '/care-plans',
      headers: { 'content-type': 'application/json' },
      payload: planOf(spec),
    });
    if (created.statusCode !== 201) throw new Error(`plan ${spec.index}: ${created.body}`);
    let etag = created.headers.etag as string;
    planIds.set(spec.index, created.json().id);
    for (const [j, goal] of spec.goals.entries()) {
      if (!goal.patched) continue;
      const patched = await service.app.inject({
        method: 'PATCH',
        url: `/care-plans/${created.json().id}/goals/g${j}`,
        headers: { 'content-type': 'application/json', 'if-match': etag },
        payload: { achievementStatus: 'improving' },
      });
      if (patched.statusCode !== 200) throw new Error(`goal ${j} of plan ${spec.index}: ${patched.body}`);
      etag = patched.headers.etag as string;
    }
  }
});
t.teardown(() => service.close());

const report = (id: string, query = PERIOD, accept = 'application/json') =>
  service.app.inject({ method: 'GET', url: `/measures/${id}/report?${query}`, headers: { accept } });

t.test('every measure: populations and score as the generator says', async (t) => {
  for (const id of MEASURE_IDS) {
    const answer = await report(id);
    t.equal(answer.statusCode, 200, answer.body);
    const body = answer.json();
    const want = expected(id, population);
    t.same(body.populations, want.populations, `${id}: populations`);
    t.equal(body.score, want.score, `${id}: score`);
    t.ok(
      want.populations.numerator > 0 && want.populations.numerator < want.populations.denominator,
      `${id}: a real proportion`,
    );
    t.equal(body.measure, id);
    t.same(body.period, {
      start: day(MEASUREMENT_PERIOD.startOffset),
      end: day(MEASUREMENT_PERIOD.endOffset),
    });
  }
});

t.test('strata by author hold the same figures per author', async (t) => {
  for (const id of MEASURE_IDS) {
    const body = (await report(id)).json();
    for (const author of AUTHORS) {
      const want = expected(id, population, (s) => s.author === author);
      const stratum = body.strata.find((s: { value: string }) => s.value === (author ?? 'none'));
      if (want.populations.initialPopulation === 0) {
        t.notOk(stratum, `${id}: no stratum for ${author}`);
        continue;
      }
      t.same(stratum?.populations, want.populations, `${id}: stratum ${author ?? 'none'}`);
      t.equal(stratum?.score, want.score);
    }
  }
});

t.test('the patient filter gives one patient’s own figures', async (t) => {
  const patient = population[1].patient;
  for (const id of MEASURE_IDS) {
    const body = (await report(id, `${PERIOD}&patient=${patient}`)).json();
    t.same(body.populations, expected(id, population, (s) => s.patient === patient).populations, id);
    t.equal(body.patient, patient);
  }
});

t.test('plans outside the period are not counted; an empty population has no score', async (t) => {
  // Only the plans that lie before the measurement period: a period that covers them and nothing else.
  const before = `periodStart=${day(-380)}&periodEnd=${day(-120)}`;
  const body = (await report('what-matters-documented', before)).json();
  // the plans before the period, and those that ended before it (-200..-70 days)
  const old = population.filter((s) => s.timing === 'before' || s.timing === 'ended');
  t.equal(body.populations.initialPopulation, old.length, 'the plans of that earlier period');
  t.equal(body.populations.numerator, old.filter((s) => s.whatMatters === 'patient').length);

  const empty = (
    await report('goals-agreed-by-patient', 'periodStart=1990-01-01&periodEnd=1990-12-31')
  ).json();
  t.same(empty.populations, { initialPopulation: 0, denominator: 0, denominatorExclusion: 0, numerator: 0 });
  t.equal(empty.score, null, 'no score, not a division by zero');
  t.same(empty.strata, []);
  const fhir = (
    await report(
      'goals-agreed-by-patient',
      'periodStart=1990-01-01&periodEnd=1990-12-31',
      'application/fhir+json',
    )
  ).json();
  t.notOk(fhir.group[0].measureScore, 'the MeasureReport has no score either');
  t.same(validateFhirResource(fhir, 'outbound'), []);
});

t.test('a FHIR MeasureReport: summary, and subject-list naming the plans in each population', async (t) => {
  const summary = await report('what-matters-documented', PERIOD, 'application/fhir+json');
  t.equal(summary.statusCode, 200);
  t.match(summary.headers['content-type'], /^application\/fhir\+json/);
  const measureReport = summary.json() as MeasureReport;
  t.same(validateFhirResource(measureReport, 'outbound'), [], 'valid FHIR R4');
  t.equal(measureReport.type, 'summary');
  t.equal(measureReport.measure, 'https://shared-care-plans.org/fhir/Measure/what-matters-documented|0.1.0');
  const want = expected('what-matters-documented', population);
  const count = (code: string) =>
    measureReport.group?.[0].population?.find((p) => p.code?.coding?.[0].code === code)?.count;
  t.equal(count('initial-population'), want.populations.initialPopulation);
  t.equal(count('numerator'), want.populations.numerator);
  t.equal(measureReport.group?.[0].measureScore?.value, want.score);
  t.equal(measureReport.group?.[0].stratifier?.[0].stratum?.length, AUTHORS.length);

  const listed = (
    await report('what-matters-documented', `${PERIOD}&reportType=subject-list`, 'application/fhir+json')
  ).json() as MeasureReport;
  t.same(validateFhirResource(listed, 'outbound'), [], 'valid FHIR R4');
  t.equal(listed.type, 'subject-list');
  const numerator = listed.group?.[0].population?.find((p) => p.code?.coding?.[0].code === 'numerator');
  const list = listed.contained?.find((r) => `#${r.id}` === numerator?.subjectResults?.reference) as List;
  const inPeriod = (s: PlanSpec) => s.timing === 'in' || s.timing === 'no-period';
  const wanted = population
    .filter((s) => inPeriod(s) && s.whatMatters === 'patient')
    .map((s) => `CarePlan/${planIds.get(s.index)}`);
  t.same((list.entry ?? []).map((e) => e.item.reference).sort(), wanted.sort(), 'the plans in the numerator');

  const json = (await report('goals-agreed-by-patient', `${PERIOD}&reportType=subject-list`)).json();
  t.equal(json.subjects.denominator.length, json.populations.denominator);
  t.ok(
    json.subjects.numerator.every((s: string) => s.startsWith('Goal/')),
    'goal measures list Goals',
  );
});

t.test('the Measures: listed, served at their canonical URLs, valid FHIR R4', async (t) => {
  const list = (await service.app.inject({ url: '/measures' })).json();
  t.same(list.items.map((m: { id: string }) => m.id).sort(), [...MEASURE_IDS].sort());
  for (const item of list.items) {
    const answer = await service.app.inject({ url: item.fhir });
    t.equal(answer.statusCode, 200);
    const measure = answer.json() as Measure;
    t.equal(measure.url, item.url);
    t.equal(measure.url, `https://shared-care-plans.org/fhir/Measure/${item.id}`);
    t.same(validateFhirResource(measure, 'outbound'), [], `${item.id}: valid FHIR R4`);
    const numerator = measure.group?.[0].population?.find((p) => p.code?.coding?.[0].code === 'numerator');
    t.equal(
      numerator?.criteria.description,
      item.criteria.numerator,
      'the definition is the population criteria',
    );
    t.equal(numerator?.description, item.criteria.numerator);
  }
  const pco = list.items.find((m: { id: string }) => m.id === 'goal-follow-up');
  t.match(pco.basedOn, /GoalFollowUpMeasure\.cql/, 'goal-follow-up cites the PCO measure it follows');
  t.equal((await service.app.inject({ url: '/fhir/Measure/no-such-measure' })).statusCode, 404);
});

t.test('bad input is a clear 400 (or 422) naming where', async (t) => {
  const cases: [string, string, string][] = [
    ['what-matters-documented', 'periodStart=2026-02-30&periodEnd=2026-12-31', '/periodStart'],
    ['what-matters-documented', 'periodStart=2026-01&periodEnd=2026-12-31', '/periodStart'],
    ['what-matters-documented', 'periodEnd=2026-12-31', '/periodStart'],
    ['what-matters-documented', `${PERIOD}&patient=Practitioner/x`, '/patient'],
    ['what-matters-documented', `${PERIOD}&reportType=individual`, '/reportType'],
    ['what-matters-documented', `${PERIOD}&color=blue`, '/color'],
    ['no-such-measure', PERIOD, '/id'],
  ];
  const reversed = await report('what-matters-documented', `periodStart=${day(10)}&periodEnd=${day(0)}`);
  t.equal(reversed.statusCode, 422, 'each date valid, together no period');
  t.same(reversed.json().errors?.[0]?.pointer, '/periodEnd');
  for (const [id, query, pointer] of cases) {
    const answer = await report(id, query);
    t.equal(answer.statusCode, 400, `${id}?${query}`);
    t.match(answer.headers['content-type'], /^application\/problem\+json/);
    t.ok(
      answer.json().errors?.some((e: { pointer: string }) => e.pointer === pointer),
      `${query}: names ${pointer} (${answer.body})`,
    );
  }
});

t.test('a subject-list longer than the limit is a 422, not an unbounded answer', async (t) => {
  const measures = service.app.measures;
  measures.maxSubjects = 3;
  t.teardown(() => {
    measures.maxSubjects = 10_000;
  });
  const answer = await report('goals-agreed-by-patient', `${PERIOD}&reportType=subject-list`);
  t.equal(answer.statusCode, 422);
  t.match(answer.json().detail, /at most 3 subjects/);
  t.equal((await report('goals-agreed-by-patient')).statusCode, 200, 'a summary is not limited');
});

t.test('Prefer: respond-async answers 202 with a status URL, then the same report', async (t) => {
  const query = `${PERIOD}&reportType=subject-list`;
  const started = await service.app.inject({
    url: `/measures/barriers-addressed/report?${query}`,
    headers: { prefer: 'respond-async' },
  });
  t.equal(started.statusCode, 202, started.body);
  const location = started.headers['content-location'] as string;
  t.match(location, /^\/measures\/report-jobs\/[0-9a-f-]{36}$/);
  let status = await service.app.inject({ url: location });
  const progress = new Set<string>();
  for (let polls = 0; status.statusCode === 202 && polls < 600; polls++) {
    progress.add(String(status.headers['x-progress']));
    await new Promise((resolve) => setTimeout(resolve, 50));
    status = await service.app.inject({ url: location });
  }
  t.ok(
    [...progress].every((p) => /^\d+ plans read$/.test(p)),
    `progress while running: ${[...progress]}`,
  );
  t.equal(status.statusCode, 200, status.body);
  const want = expected('barriers-addressed', population);
  t.same(status.json().populations, want.populations, 'the report the synchronous request gives');
  t.equal(status.json().subjects.initialPopulation.length, want.populations.initialPopulation);
  const fhir = await service.app.inject({ url: location, headers: { accept: 'application/fhir+json' } });
  t.equal(fhir.json().resourceType, 'MeasureReport');
  t.equal(fhir.json().type, 'subject-list');

  const forgotten = await service.app.inject({ method: 'DELETE', url: location });
  t.equal(forgotten.statusCode, 202, `forgotten: ${forgotten.body}`);
  const gone = await service.app.inject({ url: location });
  t.equal(gone.statusCode, 404, gone.body);
  const again = await service.app.inject({ method: 'DELETE', url: location });
  t.equal(again.statusCode, 404, again.body);
  const bad = await service.app.inject({ url: '/measures/report-jobs/not-a-job' });
  t.equal(bad.statusCode, 400, bad.body);
});

t.test('a cancelled job stops; too many running jobs are a 429', async (t) => {
  const started = await service.app.inject({
    url: `/measures/goal-follow-up/report?${PERIOD}`,
    headers: { prefer: 'respond-wait=1, respond-async' },
  });
  t.equal(started.statusCode, 202);
  const location = started.headers['content-location'] as string;
  t.equal((await service.app.inject({ method: 'DELETE', url: location })).statusCode, 202);
  t.equal((await service.app.inject({ url: location })).statusCode, 404, 'gone once cancelled');

  const jobs = service.app.measureJobs;
  jobs.maxRunning = 0;
  t.teardown(() => {
    jobs.maxRunning = 2;
  });
  const refused = await service.app.inject({
    url: `/measures/goal-follow-up/report?${PERIOD}`,
    headers: { prefer: 'respond-async' },
  });
  t.equal(refused.statusCode, 429);
  t.ok(refused.headers['retry-after']);

  jobs.maxInline = 0;
  t.teardown(() => {
    jobs.maxInline = 4;
  });
  const waited = await service.app.inject({ url: `/measures/goal-follow-up/report?${PERIOD}` });
  t.equal(waited.statusCode, 429, 'too many reports computed while their callers wait: 429 as well');
  t.ok(waited.headers['retry-after']);
  t.equal(waited.json().type, 'https://shared-care-plans.org/problems/too-many-requests');
});
