// Regression tests for the conformance defects of issue 13 (found by the HL7 reference validator): what the FHIR
// the service emits must hold. Expected values come from the IG packages and sources, cited at each test, never
// from the mapping's own tables.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { validateResource } from '@medplum/core';
import type { Bundle, CarePlan, Condition, Observation, Resource, StructureDefinition } from 'fhir/r4.js';
import t, { type Test } from 'tap';
import { PlanFhir } from '../../../src/care-plans/plan-fhir.js';
import { loadFhirDefinitions } from '../../../src/embedded-fhir/definitions.js';
import { withProvenance } from '../../../src/fhir/mapping/provenance.js';
import type { SharedCarePlan } from '../../../src/model/care-plan.js';
import { startTestService } from '../../helpers/service.js';

loadFhirDefinitions();
let counter = 0;
const service = new PlanFhir(
  undefined,
  () => `00000000-0000-4000-8000-${String(++counter).padStart(12, '0')}`,
);

const plan: SharedCarePlan = {
  patient: { reference: 'Patient/maria' },
  status: 'active',
  intent: 'plan',
  title: 'Staying at home',
  whatMatters: { statement: 'Living at home with my garden', values: ['independence'] },
  goals: [{ key: 'g1', description: { text: 'Walk to the garden every day' }, lifecycleStatus: 'active' }],
  preferences: [
    { kind: 'care-experience', statement: 'Please speak Spanish with me' },
    { kind: 'treatment-intervention', statement: 'No feeding tube' },
  ],
  barriers: [
    { statement: 'No bus to the clinic', category: 'transportation', goals: ['g1'] },
    { statement: 'Too tired in the afternoon' },
  ],
  strengths: [{ statement: 'Ana visits every day', goals: ['g1'] }],
};

const resources = (bundle: Bundle): Resource[] => (bundle.entry ?? []).map((e) => e.resource as Resource);
const observations = (bundle: Bundle) =>
  resources(bundle).filter((r): r is Observation => r.resourceType === 'Observation');
const byLoinc = (bundle: Bundle, code: string) =>
  observations(bundle).find((o) =>
    o.code.coding?.some((c) => c.system === 'http://loinc.org' && c.code === code),
  );

t.test(
  'defect 1: preference Observations claim no US Core profile (the preference profiles are 7.0.0 only)',
  async (t) => {
    // hl7.fhir.us.core-6.1.0.tgz holds no StructureDefinition-us-core-care-experience-preference.json nor
    // ...-treatment-intervention-preference.json; hl7.fhir.us.core-7.0.0.tgz holds both (/work/shared/fhir-packages).
    const bundle = service.toFhir(plan);
    for (const loinc of ['95541-9', '75773-2']) {
      const observation = byLoinc(bundle, loinc);
      t.ok(observation, `the preference Observation with LOINC ${loinc} is emitted`);
      const profiles = observation?.meta?.profile ?? [];
      t.same(
        profiles.filter((p) => /us-core-(care-experience|treatment-intervention)-preference/.test(p)),
        [],
        `LOINC ${loinc}: no US Core preference profile claimed`,
      );
    }
    t.same(service.fromFhir(bundle).preferences, plan.preferences, 'read back unchanged');
  },
);

t.test(
  'defect 1 and 7: on reading, a preference claiming any preference profile version is recognised by its code; no claim goes out again as a claim',
  async (t) => {
    const bundle = service.toFhir(plan);
    const claimed = [
      'http://hl7.org/fhir/us/core/StructureDefinition/us-core-care-experience-preference|7.0.0',
      'http://hl7.org/fhir/us/core/StructureDefinition/us-core-care-experience-preference|6.1.0',
      'http://hl7.org/fhir/us/core/StructureDefinition/us-core-care-experience-preference',
      'http://hl7.org/fhir/us/core/StructureDefinition/us-core-treatment-intervention-preference|8.0.0',
    ];
    const other = 'http://example.org/StructureDefinition/other';
    const care = byLoinc(bundle, '95541-9') as Observation;
    care.meta = { profile: [...claimed.slice(0, 3), other] };
    const treatment = byLoinc(bundle, '75773-2') as Observation;
    treatment.meta = { profile: [claimed[3]] };
    const read = service.fromFhir(bundle);
    t.equal(read.preferences?.length, 2, 'both preferences recognised by code');
    // The claims are kept, unchanged and in order, but no longer as claims (README, Lossless round trips).
    const kept = (claims: string[]) => ({
      meta: {
        extension: claims.map((claim) => ({
          url: 'https://shared-care-plans.org/fhir/StructureDefinition/source-profile-claim',
          valueCanonical: claim,
        })),
      },
    });
    t.same(read.preferences?.[0].unmappedFhir, kept([...claimed.slice(0, 3), other]));
    t.same(read.preferences?.[1].unmappedFhir, kept([claimed[3]]));
    const again = service.toFhir(read);
    const out = [byLoinc(again, '95541-9'), byLoinc(again, '75773-2')];
    t.equal(out[0]?.meta?.profile, undefined, 'no claim goes out (at 6.1.0 a preference claims nothing)');
    t.equal(out[1]?.meta?.profile, undefined);
    t.same(
      out[0]?.meta,
      kept([...claimed.slice(0, 3), other]).meta,
      'the source claims go out as they were kept',
    );
    t.same(service.fromFhir(again).preferences, read.preferences, 'and read back the same');
  },
);

t.test(
  'defect 3: the plan-revision extension is defined for every resource type that carries it',
  async (t) => {
    const definition = JSON.parse(
      readFileSync(
        join(
          import.meta.dirname,
          '..',
          '..',
          '..',
          'schemas',
          'fhir',
          'StructureDefinition-plan-revision.json',
        ),
        'utf8',
      ),
    ) as StructureDefinition;
    // R4 StructureDefinition.context (https://hl7.org/fhir/R4/structuredefinition-definitions.html#StructureDefinition.context):
    // an extension may appear only where one of its contexts allows; type "element", expression = the element path.
    const allowed = (type: string) =>
      (definition.context ?? []).some((c) => c.type === 'element' && c.expression === type);
    const bundle = withProvenance(service.toFhir(plan, { revision: 'r-1' }), {
      activity: 'CREATE',
      agent: { display: 'test' },
      recorded: '2026-12-01T10:00:00Z',
    });
    const carriers = resources(bundle).filter((r) =>
      ((r as CarePlan).extension ?? []).some((e) => e.url === definition.url),
    );
    t.same(
      carriers.map((r) => r.resourceType).sort(),
      ['CarePlan', 'Provenance'],
      'CarePlan and Provenance carry it',
    );
    for (const r of carriers) t.ok(allowed(r.resourceType), `its context allows ${r.resourceType}`);
    t.doesNotThrow(
      () => validateResource(definition as never),
      'the StructureDefinition is a valid R4 resource',
    );
  },
);

t.test(
  'defect 4: the what-matters category is PCO 1.0.0 pco-concepts-temporary#what-matters "What Matters"',
  async (t) => {
    // PCO 1.0.0 IG source input/fsh/PCOTerminology.fsh: CodeSystem PCOConcepts, Id pco-concepts-temporary,
    // `* #what-matters "What Matters"`; sushi-config.yaml canonical http://hl7.org/fhir/us/pco. The code is not in
    // personal-health-inventory-temporary (WhatMattersTerminology.fsh).
    const expected = {
      system: 'http://hl7.org/fhir/us/pco/CodeSystem/pco-concepts-temporary',
      code: 'what-matters',
      display: 'What Matters',
    };
    const bundle = service.toFhir(plan);
    const whatMatters = observations(bundle).find((o) =>
      o.category?.some((c) => c.coding?.some((coding) => coding.code === 'what-matters')),
    ) as Observation;
    t.ok(whatMatters, 'the what-matters Observation is emitted');
    t.same(whatMatters.category, [{ coding: [expected] }]);
    t.same(service.fromFhir(bundle).whatMatters, plan.whatMatters, 'read back');
    // As earlier versions of this service wrote it: still read, written back corrected.
    whatMatters.category = [
      {
        coding: [
          {
            system: 'http://hl7.org/fhir/us/pco/CodeSystem/personal-health-inventory-temporary',
            code: 'what-matters',
            display: 'What Matters Most',
          },
        ],
      },
    ];
    const old = service.fromFhir(bundle);
    t.same(old.whatMatters, plan.whatMatters, 'the old category is read as what matters, nothing carried');
    const rewritten = observations(service.toFhir(old)).find(
      (o) => o.valueString === plan.whatMatters?.statement,
    );
    t.same(rewritten?.category, [{ coding: [expected] }], 'and written back in the right code system');
  },
);

t.test(
  'defect 5: a strength is a Condition with category SDOHCC protective-factor and the words as code.text',
  async (t) => {
    // SDOHCC 3.0.0 IG source input/fsh/codesystems/SDOHCCCodeSystemTemporaryCodes.fsh:36:
    // `* #protective-factor "Protective Factor" "Category for Social Determinant of Health artifacts that pertain to
    // Protective Factors."`; SDOHCCCondition.fsh:142 binds it on Condition.category. US Core condition-category
    // health-concern "Health Concern".
    const sdohcc = 'http://hl7.org/fhir/us/sdoh-clinicalcare/CodeSystem/SDOHCC-CodeSystemTemporaryCodes';
    const bundle = service.toFhir(plan);
    const strength = resources(bundle).find(
      (r): r is Condition => r.resourceType === 'Condition',
    ) as Condition;
    t.same(strength.category, [
      {
        coding: [
          {
            system: 'http://hl7.org/fhir/us/core/CodeSystem/condition-category',
            code: 'health-concern',
            display: 'Health Concern',
          },
        ],
      },
      { coding: [{ system: sdohcc, code: 'protective-factor', display: 'Protective Factor' }] },
    ]);
    t.same(strength.code, { text: 'Ana visits every day' }, 'code: the words, no protective-factor coding');
    t.same(service.fromFhir(bundle).strengths, plan.strengths, 'read back');
    // As earlier versions of this service wrote it.
    strength.category = [strength.category?.[0] as NonNullable<Condition['category']>[number]];
    strength.code = {
      coding: [{ system: sdohcc, code: 'protective-factor', display: 'Protective factor' }],
      text: 'Ana visits every day',
    };
    const old = service.fromFhir(bundle);
    t.same(old.strengths, plan.strengths, 'the old form is read as the same strength, nothing carried');
  },
);

t.test(
  "defect 6: the barrier Observation has PCO's display for SNOMED 811791000000103 and claims no PCO profile",
  async (t) => {
    // PCO 1.0.0 IG source input/fsh/PCOGoalBarrier.fsh (ValueSet GoalBarrierCodes) and GASExamples.fsh:
    // `$SCT#811791000000103 "Identifying barriers to goal achievement"`.
    const bundle = service.toFhir(plan);
    const barriers = observations(bundle).filter((o) =>
      o.code.coding?.some((c) => c.code === '811791000000103'),
    );
    t.equal(barriers.length, 2);
    for (const barrier of barriers) {
      t.same(barrier.code, {
        coding: [
          {
            system: 'http://snomed.info/sct',
            code: '811791000000103',
            display: 'Identifying barriers to goal achievement',
          },
        ],
      });
      t.notOk(
        barrier.meta?.profile?.some((p) => p.startsWith('http://hl7.org/fhir/us/pco/')),
        'no PCO profile claimed',
      );
    }
    t.same(service.fromFhir(bundle).barriers, plan.barriers, 'read back');
    for (const barrier of barriers) {
      barrier.code = {
        coding: [{ system: 'http://snomed.info/sct', code: '811791000000103', display: 'Barrier to goal' }],
      };
    }
    t.same(service.fromFhir(bundle).barriers, plan.barriers, 'the display of earlier versions is read too');
  },
);

/**
 * FHIR R4 Bundle.entry.fullUrl (https://hl7.org/fhir/R4/bundle-definitions.html#Bundle.entry.fullUrl): "The
 * Absolute URL for the resource ... The fullUrl SHALL NOT disagree with the id in the resource"; for an update
 * (https://hl7.org/fhir/R4/http.html#trules) the resource's fullUrl is its URL on the server, <base>/<Type>/<id>.
 */
function checkPutFullUrls(t: Test, bundle: Bundle, base: string, label: string) {
  const puts = (bundle.entry ?? []).filter((e) => e.request?.method === 'PUT');
  t.ok(puts.length > 0, `${label}: there are PUT entries`);
  for (const entry of puts) {
    const resource = entry.resource as Resource;
    t.equal(
      entry.fullUrl,
      `${base}/${resource.resourceType}/${resource.id}`,
      `${label}: ${entry.request?.url}`,
    );
  }
}

t.test(
  'defect 2: every PUT entry of a transaction has the absolute fullUrl of its resource on the server',
  async (t) => {
    const base = 'https://fhir.example.org/r4';
    const stored: SharedCarePlan = {
      ...plan,
      id: 'cp1',
      goals: [{ ...(plan.goals?.[0] as NonNullable<SharedCarePlan['goals']>[number]), id: 'g-1' }],
      preferences: plan.preferences?.map((p, i) => ({ ...p, id: `pref-${i}` })),
      strengths: plan.strengths?.map((s, i) => ({ ...s, id: `strength-${i}` })),
    };
    checkPutFullUrls(t, service.toFhir(stored, { serverBase: `${base}/` }), base, 'pure mapping');
    // The Provenance entry of a write (a POST) has its urn:uuid fullUrl too, so its target resolves.
    const written = service.withProvenance(
      service.toFhir(stored, { serverBase: base }),
      {} as never,
      'UPDATE',
    );
    const provenance = written.entry?.find((e) => e.resource?.resourceType === 'Provenance');
    t.match(provenance?.fullUrl, /^urn:uuid:[0-9a-f-]{36}$/, 'the Provenance entry has a urn:uuid fullUrl');
    t.ok(
      written.entry?.every((e) => e.fullUrl),
      'every entry of the write has a fullUrl',
    );
    const bundle = service.toFhir(stored, { serverBase: base });
    const posts = (bundle.entry ?? []).filter((e) => e.request?.method === 'POST');
    t.ok(
      posts.length > 0 && posts.every((e) => e.fullUrl?.startsWith('urn:uuid:')),
      'new resources keep urn:uuid',
    );
    // The references inside a PUT entry (CarePlan.goal = Goal/g-1) resolve within the Bundle, relative to its fullUrl.
    const carePlan = bundle.entry?.[0]?.resource as CarePlan | undefined;
    t.same(carePlan?.goal, [{ reference: 'Goal/g-1' }]);
    t.ok(
      bundle.entry?.some((e) => e.fullUrl === `${base}/Goal/g-1`),
      'Goal/g-1 resolves to an entry',
    );

    // Through the service: $to-fhir names the public base (FHIR_PUBLIC_BASE_URL, by default FHIR_BASE_URL); with the
    // embedded server and none, no fullUrl: its loopback address is never shown to a caller (issue 12).
    const running = await startTestService({ FHIR_PUBLIC_BASE_URL: base });
    t.teardown(() => running.close());
    const mapped = await running.app.inject({
      method: 'POST',
      url: '/care-plans/$to-fhir',
      headers: { 'content-type': 'application/json' },
      payload: JSON.stringify(stored),
    });
    t.equal(mapped.statusCode, 200);
    checkPutFullUrls(t, mapped.json(), base, '$to-fhir with FHIR_PUBLIC_BASE_URL');
    const plain = await startTestService();
    t.teardown(() => plain.close());
    const unconfigured = await plain.app.inject({
      method: 'POST',
      url: '/care-plans/$to-fhir',
      headers: { 'content-type': 'application/json' },
      payload: JSON.stringify(stored),
    });
    const putEntries =
      (unconfigured.json() as Bundle).entry?.filter((e) => e.request?.method === 'PUT') ?? [];
    t.ok(putEntries.length > 0, '$to-fhir without a public base: PUT entries');
    t.ok(
      putEntries.every((e) => e.fullUrl === undefined),
      '... without a fullUrl, never the FHIR server address',
    );
    t.notOk(unconfigured.body.includes(new URL(plain.fhirBaseUrl).host), 'the internal address is nowhere');
    // And writes with such entries are accepted by the FHIR server: create, then update (every part a PUT).
    const patient = await plain.newPatient('fullurl');
    const created = await plain.app.inject({
      method: 'POST',
      url: '/care-plans',
      headers: { 'content-type': 'application/json' },
      payload: JSON.stringify({ ...plan, patient: { reference: patient } }),
    });
    t.equal(created.statusCode, 201, created.body.slice(0, 300));
    const body = created.json();
    const updated = await plain.app.inject({
      method: 'PUT',
      url: `/care-plans/${body.id}`,
      headers: { 'content-type': 'application/json', 'if-match': created.headers.etag as string },
      payload: JSON.stringify({
        ...body,
        title: 'Staying at home, updated',
        version: undefined,
        lastUpdated: undefined,
      }),
    });
    t.equal(updated.statusCode, 200, updated.body.slice(0, 300));
    t.equal(updated.json().title, 'Staying at home, updated');
    t.equal(
      updated.json().goals?.[0].id,
      body.goals?.[0].id,
      'the goal is the same resource, updated in place',
    );
  },
);

t.test('goal targets: qty-3 and sqty-1 are 400s, rng-2 a 422, each naming where', async (t) => {
  // FHIR R4 datatypes (https://hl7.org/fhir/R4/datatypes.html): qty-3 "If a code for the unit is present, the
  // system SHALL also be present"; sqty-1 "The comparator is not used on a SimpleQuantity" (the ends of a Range);
  // rng-2 "If present, low SHALL have a lower value than high" (the reference validator fails ends it cannot compare).
  const app = await startTestService();
  t.teardown(() => app.close());
  const withTarget = (target: Record<string, unknown>): SharedCarePlan => ({
    ...plan,
    goals: [
      { ...(plan.goals?.[0] as NonNullable<SharedCarePlan['goals']>[number]), targets: [target as never] },
    ],
  });
  const post = (body: SharedCarePlan) =>
    app.app.inject({ method: 'POST', url: '/care-plans/$to-fhir', payload: body });
  const measure = { text: 'Distance walked' };
  const pointers = (response: { json(): { errors?: { pointer: string }[] } }) =>
    (response.json().errors ?? []).map((e) => e.pointer);

  const codeWithoutSystem = await post(withTarget({ measure, quantity: { value: 800, code: 'm' } }));
  t.equal(codeWithoutSystem.statusCode, 400, 'a unit code without its system is a 400');
  t.ok(
    pointers(codeWithoutSystem).some((p) => p.startsWith('/goals/0/targets/0/quantity')),
    'naming the quantity',
  );
  const comparatorInRange = await post(
    withTarget({ measure, range: { low: { value: 1, comparator: '>' }, high: { value: 2 } } }),
  );
  t.equal(comparatorInRange.statusCode, 400, 'a comparator on an end of a range is a 400');
  t.ok(
    pointers(comparatorInRange).some((p) => p.startsWith('/goals/0/targets/0/range/low')),
    'naming the end',
  );

  const ucum = 'http://unitsofmeasure.org';
  const cases: [string, Record<string, unknown>][] = [
    [
      'ends in different units',
      { low: { value: 1, system: ucum, code: 'kg' }, high: { value: 2, system: ucum, code: 'm' } },
    ],
    [
      'one end coded, the other not',
      { low: { value: 1, system: ucum, code: 'kg' }, high: { value: 2, unit: 'kg' } },
    ],
    [
      'low above high',
      { low: { value: 5, system: ucum, code: 'kg' }, high: { value: 2, system: ucum, code: 'kg' } },
    ],
    ['an end without a value', { low: { unit: 'steps' }, high: { value: 2, unit: 'steps' } }],
  ];
  for (const [label, range] of cases) {
    const response = await post(withTarget({ measure, range }));
    t.equal(response.statusCode, 422, `${label}: 422`);
    t.same(pointers(response), ['/goals/0/targets/0/range'], `${label}: the range is named`);
  }
  const fine = await post(
    withTarget({
      measure,
      range: {
        low: { value: 2, unit: 'km', system: ucum, code: 'km' },
        high: { value: 2, system: ucum, code: 'km' },
      },
    }),
  );
  t.equal(fine.statusCode, 200, 'equal ends in one unit are a range');
  const goal = (fine.json() as Bundle).entry?.find((e) => e.resource?.resourceType === 'Goal')?.resource;
  t.same((goal as { target?: unknown[] } | undefined)?.target?.[0], {
    measure,
    detailRange: {
      low: { value: 2, unit: 'km', system: ucum, code: 'km' },
      high: { value: 2, system: ucum, code: 'km' },
    },
  });
});
