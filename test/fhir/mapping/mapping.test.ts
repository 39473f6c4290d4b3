// The mapping both ways: FHIR written by others survives FHIR -> plan -> FHIR, plan -> FHIR -> plan is the
// identity (for the example and for generated plans), edits to an imported plan change the FHIR that comes
// out, and every emitted resource passes two validators nobody in this project wrote.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { validateResource } from '@medplum/core';
import fc from 'fast-check';
import type { Bundle, CarePlan, Resource } from 'fhir/r4.js';
import t, { type Test } from 'tap';
import { PlanFhir } from '../../../src/care-plans/plan-fhir.js';
import { loadFhirDefinitions } from '../../../src/embedded-fhir/definitions.js';
import { cloneJson } from '../../../src/fhir/mapping/carry.js';
import { planSourceFromFhir, resolveBundleReferences } from '../../../src/fhir/mapping/from-fhir.js';
import { validateFhirBundle } from '../../../src/fhir/validation/index.js';
import type { SharedCarePlan } from '../../../src/model/care-plan.js';
import { EXTERNAL_FIXTURES, readExternalFixtures, wrapStandalone } from '../../helpers/fixtures.js';
import { arbitraryPlan } from '../../helpers/plans.js';
import { examplePlan } from '../../helpers/service.js';

loadFhirDefinitions();

let counter = 0;
// The mapping as the use cases run it (validated both ways); pure.
const service = new PlanFhir(
  undefined,
  () => `00000000-0000-4000-8000-${String(++counter).padStart(12, '0')}`,
);

/** Paths of `expected` that are missing from `actual`. Arrays match as multisets (order is not significant). */
function missing(expected: unknown, actual: unknown, path = ''): string[] {
  if (Array.isArray(expected)) {
    if (!Array.isArray(actual)) return [path];
    const pool = [...actual];
    const lost: string[] = [];
    expected.forEach((item, index) => {
      const match = pool.findIndex((candidate) => missing(item, candidate).length === 0);
      if (match >= 0) pool.splice(match, 1);
      else lost.push(`${path}/${index}`);
    });
    return lost;
  }
  if (expected && typeof expected === 'object') {
    if (!actual || typeof actual !== 'object' || Array.isArray(actual)) return [path];
    return Object.entries(expected).flatMap(([key, value]) =>
      missing(value, (actual as Record<string, unknown>)[key], `${path}/${key}`),
    );
  }
  return expected === actual ? [] : [path];
}

/** The US Core 6.1.0 profiles the service claims itself (hl7.fhir.us.core-6.1.0: StructureDefinition-us-core-*.json). */
const OWN_CLAIM: Record<string, string> = {
  CarePlan: 'http://hl7.org/fhir/us/core/StructureDefinition/us-core-careplan|6.1.0',
  Goal: 'http://hl7.org/fhir/us/core/StructureDefinition/us-core-goal|6.1.0',
  CareTeam: 'http://hl7.org/fhir/us/core/StructureDefinition/us-core-careteam|6.1.0',
};

/**
 * The input as it must come out: every profile claim other than the service's own is kept, no longer as a claim,
 * in a source-profile-claim extension on meta (README, Lossless round trips).
 */
function withClaimsKept<T extends Resource>(resource: T): T {
  const copy = structuredClone(resource);
  const others = (copy.meta?.profile ?? []).filter((p) => p !== OWN_CLAIM[copy.resourceType]);
  if (copy.meta?.profile) {
    delete copy.meta.profile;
    if (others.length) {
      copy.meta.extension = [
        ...(copy.meta.extension ?? []),
        ...others.map((claim) => ({
          url: 'https://shared-care-plans.org/fhir/StructureDefinition/source-profile-claim',
          valueCanonical: claim,
        })),
      ];
    }
  }
  return copy;
}

/** What a FHIR server manages itself and therefore never travels with a plan. */
function withoutServerMeta<T extends Resource>(resource: T): T {
  const copy = structuredClone(resource);
  if (copy.meta) {
    delete copy.meta.versionId;
    delete copy.meta.lastUpdated;
    if (!Object.keys(copy.meta).length) delete copy.meta;
  }
  return copy;
}

function emitted(bundle: Bundle): Resource[] {
  const top = (bundle.entry ?? []).map((e) => e.resource as Resource);
  const contained = top.flatMap((r) => ((r as CarePlan).contained ?? []) as Resource[]);
  return [...top, ...contained];
}

/** Every emitted resource passes AJV with the official R4 schema (+ rules) and Medplum's validator. */
function assertValid(t: Test, bundle: Bundle, label: string) {
  const issues = validateFhirBundle(bundle, 'outbound');
  t.strictSame(issues, [], `${label}: AJV (official FHIR R4 schema) finds no issue`);
  for (const resource of emitted(bundle)) {
    const { contained: _c, ...withoutContained } = resource as CarePlan;
    t.doesNotThrow(
      () => validateResource(withoutContained as never),
      `${label}: Medplum validates ${resource.resourceType}`,
    );
  }
}

/** The resources a plan's input holds, keyed by type/id (contained ones too). */
function inputResources(input: Resource): Resource[] {
  if (input.resourceType === 'Bundle') {
    const bundle = resolveBundleReferences(input as Bundle);
    return (bundle.entry ?? []).map((e) => e.resource as Resource).filter(Boolean);
  }
  return [input];
}

interface Fixture {
  name: string;
  input: Resource;
}

function fixtures(): Fixture[] {
  return readExternalFixtures().map(({ name, json }) => ({
    name,
    input: wrapStandalone(json as unknown as Resource),
  }));
}

t.test('every external fixture survives FHIR -> plan -> FHIR with every element', async (t) => {
  const all = fixtures();
  t.ok(all.length >= 25, `${all.length} fixtures`);
  let checkedResources = 0;
  for (const { name, input } of all) {
    const plan = service.fromFhir(input);
    const bundle = service.toFhir(plan);
    assertValid(t, bundle, name);
    const out = emitted(bundle);
    const source = planSourceFromFhir(input);
    const carePlan = source.carePlan;
    // The CarePlan, and every Goal and CareTeam it references, must come out with all their elements.
    const expected: Resource[] = [carePlan];
    for (const ref of [...(carePlan.goal ?? []), ...(carePlan.careTeam ?? [])]) {
      const resource = ref.reference ? source.resolve(ref.reference) : undefined;
      if (resource) expected.push(resource);
    }
    for (const resource of expected) {
      const match = out.find((r) => r.resourceType === resource.resourceType && r.id === resource.id);
      if (!match) {
        t.fail(`${name}: ${resource.resourceType}/${resource.id} is missing from the output`);
        continue;
      }
      const lost = missing(withClaimsKept(withoutServerMeta(resource)), match);
      const claims = match.meta?.profile ?? [];
      t.ok(
        claims.every((p) => p === OWN_CLAIM[match.resourceType]),
        `${name}: ${resource.resourceType}/${resource.id} claims only the service's own profile`,
      );
      t.strictSame(lost, [], `${name}: ${resource.resourceType}/${resource.id} keeps every element`);
      checkedResources++;
    }
    // And the plan that came out is accepted as it is by the mapping again: FHIR -> plan -> FHIR -> plan.
    const again = service.fromFhir({
      resourceType: 'Bundle',
      type: 'collection',
      entry: emitted(bundle)
        .filter(
          (r) =>
            !(carePlan.contained ?? []).some((c) => c.id === r.id && r.resourceType === c.resourceType) ||
            r === bundle.entry?.[0].resource,
        )
        .map((r) => ({ fullUrl: `urn:test:${r.resourceType}/${r.id}`, resource: r })),
    } as Bundle);
    t.equal(again.goals?.length ?? 0, plan.goals?.length ?? 0, `${name}: goals survive a second pass`);
  }
  t.ok(
    checkedResources >= 40,
    `${checkedResources} CarePlans, Goals and CareTeams checked element by element`,
  );
  // The inputs themselves must be the untouched fixtures (resolution works on a copy).
  t.equal(inputResources(all[0].input).length > 0, true);
});

t.test('cloneJson copies JSON deeply, and a __proto__ member stays data', async (t) => {
  fc.assert(
    fc.property(fc.jsonValue(), (value) => {
      const copy = cloneJson(value);
      t.strictSame(copy, value);
      return JSON.stringify(copy) === JSON.stringify(value);
    }),
    { numRuns: 200 },
  );
  const original = JSON.parse('{"a":{"b":[1,{"c":"x"}]},"__proto__":{"polluted":true}}');
  const copy = cloneJson(original);
  t.not(copy.a, original.a, 'nested objects are new');
  copy.a.b[1].c = 'changed';
  t.equal(original.a.b[1].c, 'x', 'changing the copy leaves the original alone');
  t.equal(Object.getPrototypeOf(copy), Object.prototype, 'the prototype is untouched');
  t.same(Object.getOwnPropertyDescriptor(copy, '__proto__')?.value, { polluted: true });
  t.equal(({} as Record<string, unknown>).polluted, undefined, 'nothing reached Object.prototype');
});

t.test('plan -> FHIR -> plan is the identity for the rich example', async (t) => {
  const plan = examplePlan() as unknown as SharedCarePlan;
  const bundle = service.toFhir(plan);
  assertValid(t, bundle, 'example');
  t.equal(bundle.type, 'transaction');
  t.equal(bundle.entry?.[0].resource?.resourceType, 'CarePlan');
  const back = service.fromFhir({
    ...bundle,
    type: 'collection',
    entry: bundle.entry?.map(({ fullUrl, resource }) => ({ fullUrl, resource })),
  });
  t.strictSame(back, plan);
});

t.test('plan -> FHIR -> plan is the identity for generated plans, and their FHIR is valid', async (t) => {
  let runs = 0;
  fc.assert(
    fc.property(arbitraryPlan(), (plan) => {
      runs++;
      const bundle = service.toFhir(plan);
      const issues = validateFhirBundle(bundle, 'outbound');
      if (issues.length) throw new Error(`AJV: ${JSON.stringify(issues)}`);
      for (const resource of emitted(bundle)) {
        const { contained: _c, ...rest } = resource as CarePlan;
        validateResource(rest as never);
      }
      const back = service.fromFhir({
        ...bundle,
        type: 'collection',
        entry: bundle.entry?.map(({ fullUrl, resource }) => ({ fullUrl, resource })),
      });
      // fast-check builds null-prototype objects: compare as JSON.
      t.strictSame(JSON.parse(JSON.stringify(back)), JSON.parse(JSON.stringify(plan)));
      return true;
    }),
    { numRuns: 150, seed: 20261126 },
  );
  t.equal(runs, 150);
});

t.test('editing an imported plan changes the FHIR that comes out', async (t) => {
  const input = JSON.parse(
    readFileSync(join(EXTERNAL_FIXTURES, 'hl7-fhir-r4-core', 'careplan-example-f201-renal.json'), 'utf8'),
  );
  const plan = service.fromFhir(input);
  t.equal(plan.goals?.[0].id, '#goal', 'a contained goal keeps its local id');
  const edited: SharedCarePlan = structuredClone(plan);
  edited.status = 'active';
  const [firstGoal] = edited.goals ?? [];
  firstGoal.description = { text: "Kidneys working again, in Roel's words" };
  firstGoal.achievementStatus = 'improving';
  edited.title = 'Renal recovery';
  const bundle = service.toFhir(edited);
  const carePlan = bundle.entry?.[0].resource as CarePlan;
  t.equal(carePlan.status, 'active');
  t.equal(carePlan.title, 'Renal recovery');
  const goal = carePlan.contained?.find((r) => r.resourceType === 'Goal') as unknown as {
    description: { text: string };
    achievementStatus: { coding: { code: string }[] };
  };
  t.equal(goal.description.text, "Kidneys working again, in Roel's words");
  t.equal(goal.achievementStatus.coding[0].code, 'improving');
  // What the model does not cover is still there after the edit.
  t.strictSame(missing({ addresses: input.addresses }, carePlan), []);
  t.strictSame(missing(input.activity[0].detail.dailyAmount, carePlan.activity?.[0].detail?.dailyAmount), []);
});

t.test('$from-fhir and $to-fhir over HTTP', async (t) => {
  const { startTestService } = await import('../../helpers/service.js');
  const app = await startTestService();
  t.teardown(() => app.close());
  const fromFhir = (body: unknown, query = '') =>
    app.app.inject({
      method: 'POST',
      url: `/care-plans/$from-fhir${query}`,
      headers: { 'content-type': 'application/fhir+json' },
      payload: JSON.stringify(body),
    });
  const synthea = JSON.parse(
    readFileSync(
      join(EXTERNAL_FIXTURES, 'synthea', 'Lupe_Little_f8a42e66-8c03-4ee6-85e3-3817c2942de1.json'),
      'utf8',
    ),
  );
  const several = await fromFhir(synthea);
  const carePlans = synthea.entry.filter(
    (e: { resource: Resource }) => e.resource.resourceType === 'CarePlan',
  );
  if (carePlans.length > 1) {
    t.equal(several.statusCode, 422, 'a Bundle with several CarePlans needs a choice');
    t.equal(several.json().choices.length, carePlans.length);
  }
  const chosen = await fromFhir(synthea, `?carePlan=${carePlans[0].resource.id}`);
  t.equal(chosen.statusCode, 200, chosen.body);
  const plan = chosen.json();
  t.equal(plan.id, carePlans[0].resource.id);
  t.match(plan.patient.reference, /^Patient\//, 'bundle-internal urn:uuid references resolve to Type/id');

  // The plan it returns is accepted by $to-fhir and POST /care-plans.
  const toFhir = await app.app.inject({ method: 'POST', url: '/care-plans/$to-fhir', payload: plan });
  t.equal(toFhir.statusCode, 200, toFhir.body);
  t.equal(toFhir.json().type, 'transaction');
  const created = await app.app.inject({ method: 'POST', url: '/care-plans', payload: plan });
  t.equal(created.statusCode, 201, created.body);
  t.not(created.json().id, plan.id, 'POST creates a new plan; it never overwrites the imported ids');

  // Broken FHIR: always a 4xx problem, never a 5xx.
  const carePlan = JSON.parse(
    readFileSync(join(EXTERNAL_FIXTURES, 'hl7-fhir-r4-core', 'careplan-example.json'), 'utf8'),
  );
  const broken: [string, unknown][] = [
    ['not a resource', { hello: 'world' }],
    ['unknown resourceType', { resourceType: 'CarePlant' }],
    ['a Patient', { resourceType: 'Patient', id: 'p' }],
    ['bad status', { ...carePlan, status: 'bogus' }],
    ['missing subject', { ...carePlan, subject: undefined }],
    ['subject as an array', { ...carePlan, subject: [carePlan.subject] }],
    ['unknown element', { ...carePlan, colour: 'blue' }],
    ['impossible date', { ...carePlan, created: '2026-02-30' }],
    ['time without zone', { ...carePlan, created: '2026-01-01T10:00:00' }],
    [
      'cpl-3',
      {
        ...carePlan,
        activity: [{ reference: { reference: 'ServiceRequest/x' }, detail: { status: 'scheduled' } }],
      },
    ],
    ['extension without url', { ...carePlan, extension: [{ valueString: 'x' }] }],
    [
      'bad contained goal',
      { ...carePlan, contained: [{ resourceType: 'Goal', id: 'g', lifecycleStatus: 'nope' }] },
    ],
    ['empty Bundle', { resourceType: 'Bundle', type: 'collection' }],
    [
      'Bundle without CarePlan',
      {
        resourceType: 'Bundle',
        type: 'collection',
        entry: [{ resource: { resourceType: 'Patient', id: 'p' } }],
      },
    ],
    ['array', [carePlan]],
    ['string', 'CarePlan'],
  ];
  for (const [name, body] of broken) {
    const reply = await fromFhir(body);
    t.ok(reply.statusCode >= 400 && reply.statusCode < 500, `${name}: ${reply.statusCode} is a 4xx`);
    t.match(reply.headers['content-type'], /problem\+json/, `${name}: a problem`);
  }
  const wrongChoice = await fromFhir(carePlan, '?carePlan=other');
  t.equal(wrongChoice.statusCode, 422);
});

t.test(
  "the project's own definitions are valid FHIR, served, and describe what the mapping emits",
  async (t) => {
    const { projectDefinitions } = await import('../../../src/care-plans/definitions.js');
    const { validateFhirResource } = await import('../../../src/fhir/validation/index.js');
    for (const [key, definition] of projectDefinitions) {
      // The official R4 JSON schema (4.0.1) lists FHIR versions only up to 4.0.0 in its enum: a known defect of the
      // published schema. 4.0.1 is the right value (HL7's own R4 4.0.1 definitions carry it).
      const issues = validateFhirResource(definition, 'inbound').filter(
        (i) =>
          !(i.path === '/fhirVersion' && (definition as { fhirVersion?: string }).fhirVersion === '4.0.1'),
      );
      t.strictSame(issues, [], `${key}: official R4 schema`);
      t.doesNotThrow(() => validateResource(definition as never), `${key}: Medplum`);
    }
    const decision = projectDefinitions.get('StructureDefinition/shared-decision') as {
      url: string;
      differential: { element: { id: string; sliceName?: string }[] };
    };
    const slices = new Set(decision.differential.element.filter((e) => e.sliceName).map((e) => e.sliceName));
    const bundle = service.toFhir(examplePlan() as unknown as SharedCarePlan);
    const carePlan = bundle.entry?.[0].resource as CarePlan;
    const emittedDecision = carePlan.extension?.find((e) => e.url === decision.url);
    t.ok(emittedDecision, 'the CarePlan carries the extension by its canonical URL');
    for (const part of emittedDecision?.extension ?? []) {
      t.ok(slices.has(part.url), `sub-extension ${part.url} is defined`);
      for (const sub of part.extension ?? [])
        t.ok(slices.has(sub.url), `sub-extension ${part.url}.${sub.url} is defined`);
    }
    const roles = projectDefinitions.get('CodeSystem/care-team-role') as { concept: { code: string }[] };
    const team = bundle.entry?.find((e) => e.resource?.resourceType === 'CareTeam')?.resource as unknown as {
      participant: { role: { coding: { system: string; code: string }[] }[] }[];
    };
    for (const participant of team.participant) {
      const own = participant.role[0].coding.find((c) => c.system.endsWith('/CodeSystem/care-team-role'));
      t.ok(
        roles.concept.some((c) => c.code === own?.code),
        `role ${own?.code} is in the CodeSystem`,
      );
    }

    const { startTestService } = await import('../../helpers/service.js');
    const app = await startTestService();
    t.teardown(() => app.close());
    const served = await app.app.inject({ method: 'GET', url: '/fhir/StructureDefinition/shared-decision' });
    t.equal(served.statusCode, 200);
    t.match(served.headers['content-type'], /application\/fhir\+json/);
    t.equal(served.json().url, 'https://shared-care-plans.org/fhir/StructureDefinition/shared-decision');
    t.equal(
      (await app.app.inject({ method: 'GET', url: '/fhir/CodeSystem/care-team-role' })).statusCode,
      200,
    );
    t.equal((await app.app.inject({ method: 'GET', url: '/fhir/StructureDefinition/nope' })).statusCode, 404);
  },
);
