// The measures' pure parts where the API tests cannot easily reach: FHIR date precision in the period rules
// (http://hl7.org/fhir/R4/datatypes.html#date: a date may be a year or a year and month), ended plans without an
// end, and the bounds of the background report jobs.
import type { CarePlan } from 'fhir/r4.js';
import t from 'tap';
import { addDays, firstDay, lastDay, planInPeriod } from '../../src/measures/criteria.js';
import type { MeasureResult } from '../../src/measures/report.js';
import { jobOwner, ReportJobs, TooManyJobs } from '../../src/measures/report-jobs.js';

const OWN = [{ system: 'https://shared-care-plans.org/fhir/sid/care-plan', value: 'k' }];
const plan = (extra: Partial<CarePlan>): CarePlan => ({
  resourceType: 'CarePlan',
  status: 'active',
  intent: 'plan',
  subject: { reference: 'Patient/p' },
  identifier: OWN,
  ...extra,
});
const Y2026 = { start: '2026-01-01', end: '2026-12-31' };

t.test('partial dates cover every day they can mean', async (t) => {
  t.equal(firstDay('2026'), '2026-01-01');
  t.equal(lastDay('2026'), '2026-12-31');
  t.equal(firstDay('2026-05'), '2026-05-01');
  t.equal(lastDay('2026-05'), '2026-05-31');
  t.equal(firstDay('2026-05-17T23:30:00-05:00'), '2026-05-17', 'a dateTime counts by its calendar date');
  t.equal(addDays('2026-12-25', 14), '2027-01-08');
  t.equal(addDays('2024-03-01', -1), '2024-02-29', 'leap year');
  t.ok(planInPeriod(plan({ period: { start: '2025', end: '2026' } }), Y2026), 'ends "in 2026": in 2026');
  t.ok(planInPeriod(plan({ period: { start: '2026-12' } }), Y2026), 'starts in December 2026');
  t.notOk(planInPeriod(plan({ period: { start: '2027' } }), Y2026));
  t.notOk(planInPeriod(plan({ period: { end: '2025-12' } }), Y2026));
  t.ok(planInPeriod(plan({ created: '2026-03-04T10:00:00Z' }), Y2026), 'no period: from its creation');
  t.notOk(planInPeriod(plan({ created: '2027-01-01T10:00:00Z' }), Y2026));
  t.ok(planInPeriod(plan({}), Y2026), 'no start known: counted');
});

t.test(
  'an ended plan without an end ended at its last change; drafts and foreign plans never count',
  async (t) => {
    const revoked = (lastUpdated: string) =>
      plan({ status: 'revoked', period: { start: '2025-01-01' }, meta: { lastUpdated } });
    t.ok(planInPeriod(revoked('2026-02-01T00:00:00Z'), Y2026));
    t.notOk(planInPeriod(revoked('2025-11-01T00:00:00Z'), Y2026), 'revoked before the period');
    t.ok(
      planInPeriod(
        plan({
          status: 'active',
          period: { start: '2025-01-01' },
          meta: { lastUpdated: '2025-02-01T00:00:00Z' },
        }),
        Y2026,
      ),
      'an active plan is still active, whenever it last changed',
    );
    t.notOk(planInPeriod(plan({ status: 'draft' }), Y2026));
    t.notOk(planInPeriod(plan({ status: 'entered-in-error' }), Y2026));
    t.notOk(planInPeriod(plan({ identifier: undefined }), Y2026), 'not written by this service');
  },
);

const result = { measure: 'decisions-shared' } as MeasureResult;
const never = () => new Promise<MeasureResult>(() => {});
const settle = () => new Promise((resolve) => setImmediate(resolve));

t.test('report jobs are bounded, owned, and forgotten after a while', async (t) => {
  const jobs = new ReportJobs({ maxRunning: 1, maxKept: 2, keepMs: 60_000 });
  const done = jobs.start('a', async (_signal, progress) => {
    progress(7);
    return result;
  });
  await settle();
  t.same(jobs.get('a', done), { state: 'done', result });
  t.equal(jobs.get('b', done), undefined, 'another owner sees nothing');
  t.notOk(jobs.cancel('b', done), 'nor cancels it');
  const running = jobs.start('a', (_signal, progress) => {
    progress(3);
    return never();
  });
  t.same(jobs.get('a', running), { state: 'running', plansRead: 3 });
  t.throws(() => jobs.start('a', never), /1 reports are being computed/, 'one runs at a time');
  jobs.maxRunning = 2;
  const third = jobs.start('a', never);
  t.equal(jobs.get('a', done), undefined, 'past maxKept the oldest ended job is dropped');
  jobs.maxRunning = 3;
  t.throws(() => jobs.start('a', never), /too many reports are kept/, 'all kept jobs running: refused');
  try {
    jobs.start('a', never);
  } catch (error) {
    t.ok(error instanceof TooManyJobs);
  }
  t.ok(jobs.cancel('a', third));
  t.ok(jobs.cancel('a', running));

  const failing = jobs.start('a', async () => {
    throw new Error('the FHIR server failed');
  });
  await settle();
  t.match(jobs.get('a', failing), { state: 'failed', error: { message: 'the FHIR server failed' } });
  jobs.keepMs = 0;
  await new Promise((resolve) => setTimeout(resolve, 5));
  t.equal(jobs.get('a', failing), undefined, 'an ended job expires');
});

t.test('reports computed while their callers wait are bounded too', async (t) => {
  const jobs = new ReportJobs({ maxInline: 2 });
  let release = () => {};
  const held = new Promise<MeasureResult>((resolve) => {
    release = () => resolve(result);
  });
  const first = jobs.runInline(() => held);
  const second = jobs.runInline(() => held);
  const refused = await jobs.runInline(async () => result).catch((error: unknown) => error);
  t.ok(refused instanceof TooManyJobs, 'a third at once is refused');
  t.match(refused, { message: '2 reports are being computed' });
  release();
  t.same(await Promise.all([first, second]), [result, result]);
  t.same(await jobs.runInline(async () => result), result, 'once they end, another may run');
  await t.rejects(
    jobs.runInline(async () => {
      throw new Error('the FHIR server failed');
    }),
    /the FHIR server failed/,
  );
  const third = jobs.runInline(() => held);
  const fourth = jobs.runInline(() => held);
  t.same(await Promise.all([third, fourth]), [result, result], 'a failed report frees its place');
});

t.test('a job belongs to its client, user and patient', async (t) => {
  const caller = { kind: 'token' as const, clientId: 'app', subject: 'u1', grants: [] };
  t.equal(jobOwner(undefined), 'anonymous');
  t.not(jobOwner(caller), jobOwner({ ...caller, subject: 'u2' }));
  t.not(jobOwner({ ...caller, patient: 'Patient/a' }), jobOwner({ ...caller, patient: 'Patient/b' }));
});
