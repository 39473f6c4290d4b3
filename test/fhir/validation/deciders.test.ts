// The generated first-error validators (scripts/fhir-deciders.mjs) decide every resource as AJV does with the
// official R4 schema, and as the rules' element walk does (real dates, Extension.url and ext-1, nesting depth): AJV's
// allErrors validators (generated from the same prepared schema) and the walk are the oracle, over the external
// fixtures, the FHIR of generated plans, and many mutations of both.
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import fc from 'fast-check';
import t, { type Test } from 'tap';
import { planToTransaction } from '../../../src/fhir/mapping/to-fhir.js';
import {
  hasImpossibleDate,
  isBrokenExtension,
  isDateKey,
  MAX_DEPTH,
  walk,
} from '../../../src/fhir/validation/element-walk.js';
import { aotResourceTypes, decidedDateKeys } from '../../../src/fhir/validation/generated/fhir-r4-meta.js';
import { createDeciders } from '../../../src/fhir/validation/generated/fhir-r4-validators.js';
import { validateFhirResource } from '../../../src/fhir/validation/index.js';
import { isObject, type Json } from '../../../src/fhir/validation/rule-kit.js';
import { readExternalFixtures } from '../../helpers/fixtures.js';
import { arbitraryPlan } from '../../helpers/plans.js';

type Decide = (data: unknown) => boolean;

const ajvAllErrors = createRequire(import.meta.url)(
  '../../../src/fhir/validation/generated/fhir-r4-validators-all-errors.cjs',
) as Record<string, Decide>;
const decider = createDeciders({ hasImpossibleDate, isBrokenExtension, MAX_DEPTH }) as unknown as Record<
  string,
  Decide
>;
const AOT = new Set<string>(aotResourceTypes);

/** What the walk reports on a resource (its own elements, not the resources nested in it). */
function walkIssues(resource: Json): string[] {
  const issues: string[] = [];
  walk(resource, [], (path, _message, rule) => issues.push(`${rule} at ${path}`), 0, {
    full: false,
    omitted: 0,
  });
  return issues;
}
const SEED = Number(process.env.DECIDERS_SEED ?? 20261203);

/** Every resource of an ahead-of-time type in a value: itself, Bundle entries, contained resources. */
function resourcesIn(value: unknown, out: Json[] = []): Json[] {
  if (Array.isArray(value)) for (const v of value) resourcesIn(v, out);
  else if (isObject(value)) {
    if (typeof value.resourceType === 'string' && AOT.has(value.resourceType)) out.push(value);
    for (const v of Object.values(value)) resourcesIn(v, out);
  }
  return out;
}

function fixtureResources(): Json[] {
  const out: Json[] = [];
  for (const { json } of readExternalFixtures()) resourcesIn(json, out);
  return out;
}

/** mulberry32: a small deterministic generator, so that a failure can be replayed with DECIDERS_SEED */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = Math.imul(a ^ (a >>> 15), 1 | a);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

// Values that hit the schema's edges: JSON types, empty and blank strings (FHIR string is ^[\s\S]+$ as XSD reads
// it: any non-empty text, a lone surrogate and a no-break space included), codes with inner or outer spaces, dates.
const VALUES: unknown[] = [
  null,
  0,
  -1,
  1.5,
  true,
  false,
  '',
  ' ',
  '\n',
  '\u00a0',
  '\ud800',
  'x\udc00',
  'a b',
  ' a',
  'a ',
  'a  b',
  'active',
  'final',
  'transaction',
  'POST',
  'http://example.org/x',
  'Patient/p1',
  '2020-01-01',
  '2020-13-01',
  '2020-01-01T10:00:00Z',
  '2020-01-01T10:00',
  '2021-02-29',
  '2024-02-29',
  '2020-04-31T10:00:00Z',
  '2026-02-30T10:00',
  'AAAA',
  'true',
  '12',
  [],
  [{}],
  ['a'],
  {},
  { text: 'x' },
  { reference: 'Patient/p1' },
  { url: 'http://example.org/e', valueString: 'v' },
  { url: 'http://example.org/e', valueBoolean: 'yes' },
  { valueString: 'v' },
  { url: 'http://example.org/e' },
  { url: 'http://example.org/e', valueString: 'v', extension: [{ url: 'a', valueString: 'b' }] },
  { url: 'http://example.org/e', extension: [{ url: 'a', valueDate: '2021-02-29' }] },
  { url: 'http://example.org/e', _valueString: { id: 'x' } },
  ['2021-02-29'],
  { system: 'http://loinc.org', code: '8302-2' },
  { value: 1, unit: 'kg' },
  { start: '2020-01-01' },
];
// Keys to add: declared somewhere in R4 (often valid where they land), their `_` siblings, and unknown ones.
const KEYS = [
  'id',
  'extension',
  'modifierExtension',
  'text',
  'status',
  '_status',
  'display',
  'system',
  'code',
  'value',
  'valueString',
  'valueInteger',
  'valueBoolean',
  'url',
  'reference',
  'period',
  'start',
  'end',
  'created',
  'valueDate',
  'valueDateTime',
  'authoredOn',
  'note',
  'resourceType',
  'foo',
  '_foo',
  'contained',
];

type Slot = { holder: Json | unknown[]; key: string | number };

function slots(value: unknown, out: Slot[] = []): Slot[] {
  if (Array.isArray(value))
    value.forEach((v, i) => {
      out.push({ holder: value, key: i });
      slots(v, out);
    });
  else if (isObject(value))
    for (const [k, v] of Object.entries(value)) {
      out.push({ holder: value, key: k });
      slots(v, out);
    }
  return out;
}

/** A copy of resource with one random change at a random place. */
function mutate(resource: Json, next: () => number): Json {
  const copy = structuredClone(resource);
  const pick = <T>(list: readonly T[]): T => list[Math.floor(next() * list.length)] as T;
  const all = slots(copy);
  const slot = pick(all);
  const holder = slot.holder as Record<string | number, unknown>;
  const current = holder[slot.key];
  switch (Math.floor(next() * 7)) {
    case 6: {
      // what only the element rules refuse: a date made impossible, an extension without url or with both
      const dates = all.filter((s) => /^\d{4}-\d{2}-\d{2}/.test(String((s.holder as Json)[s.key as string])));
      const extensions = all
        .map((s) => (s.holder as Record<string | number, unknown>)[s.key])
        .filter((v): v is Json => isObject(v) && typeof v.url === 'string');
      if (dates.length > 0 && (extensions.length === 0 || next() < 0.5)) {
        const date = pick(dates);
        const text = String((date.holder as Record<string | number, unknown>)[date.key]);
        (date.holder as Record<string | number, unknown>)[date.key] =
          `${text.slice(0, 4)}-02-30${text.slice(10)}`;
      } else if (extensions.length > 0) {
        const extension = pick(extensions);
        if (next() < 0.5) delete extension.url;
        else extension.extension = [{ url: 'https://example.org/x', valueString: 'x' }];
      }
      break;
    }
    case 0:
      holder[slot.key] = structuredClone(pick(VALUES));
      break;
    case 1:
      if (Array.isArray(slot.holder)) slot.holder.splice(slot.key as number, 1);
      else delete holder[slot.key];
      break;
    case 2: {
      const objects = all.map((s) => (s.holder as Record<string | number, unknown>)[s.key]).filter(isObject);
      const target = objects.length > 0 && next() < 0.8 ? pick(objects) : copy;
      target[pick(KEYS)] = structuredClone(pick(VALUES));
      break;
    }
    case 3:
      holder[slot.key] = Array.isArray(current) ? current[0] : [current];
      break;
    case 4:
      if (Array.isArray(current)) current.push(structuredClone(current[0] ?? pick(VALUES)));
      else holder[slot.key] = structuredClone(pick(VALUES));
      break;
    default:
      if (isObject(current)) current[pick(KEYS)] = structuredClone(pick(VALUES));
      else holder[slot.key] = typeof current === 'string' ? `${current} ` : String(current);
  }
  return copy;
}

/** Each value is decided by the validators of `type` (a mutant's original type: its resourceType may be mutated). */
function compare(
  t: Test,
  label: string,
  resources: readonly Json[],
  typeOf: (resource: Json, index: number) => string = (r) => String(r.resourceType),
): { valid: number; invalid: number; walkOnly: number } {
  let valid = 0;
  let invalid = 0;
  let walkOnly = 0;
  const mismatches: string[] = [];
  for (const [index, resource] of resources.entries()) {
    const type = typeOf(resource, index);
    const [oracle, decide] = [ajvAllErrors[type], decider[type]];
    if (!oracle || !decide) {
      t.fail(`${label}: no validator for ${type}`);
      continue;
    }
    const schemaValid = oracle(resource);
    const expected = schemaValid && walkIssues(resource).length === 0;
    if (schemaValid && !expected) walkOnly++;
    const actual = decide(resource);
    if (expected) valid++;
    else invalid++;
    if (actual !== expected && mismatches.length < 5)
      mismatches.push(
        `${type}: AJV ${schemaValid}, walk ${walkIssues(resource).join(', ') || 'clean'}, decider ${actual}: ${JSON.stringify(resource).slice(0, 600)}`,
      );
  }
  t.same(
    mismatches,
    [],
    `${label}: ${resources.length} resources (${valid} valid), each decided as AJV and the walk decide`,
  );
  return { valid, invalid, walkOnly };
}

t.test('every ahead-of-time type has a decider, and AJV and it agree on a minimal resource', async (t) => {
  for (const type of aotResourceTypes) {
    t.type(decider[type], 'function', type);
    t.equal(decider[type]?.({ resourceType: type }), ajvAllErrors[type]?.({ resourceType: type }), type);
    t.equal(decider[type]?.({ resourceType: type, unknownElement: 1 }), false, `${type}: unknown element`);
    t.equal(decider[type]?.([]), false, `${type}: an array is not a resource`);
  }
});

t.test('FHIR string: any non-empty text (XSD reading), whatever its characters', async (t) => {
  const goal = (text: unknown) => ({
    resourceType: 'Goal',
    lifecycleStatus: 'active',
    subject: { reference: 'Patient/p1' },
    description: { text },
  });
  const cases: Array<[unknown, boolean]> = [
    ['', false],
    [' ', true],
    ['\n\t', true],
    ['\u00a0', true],
    ['\ud800', true],
    ['x\udc00y', true],
    ['walk', true],
    [1, false],
  ];
  for (const [text, valid] of cases) {
    t.equal(decider.Goal?.(goal(text)), valid, `${JSON.stringify(text)}: ${valid}`);
    t.equal(ajvAllErrors.Goal?.(goal(text)), valid, `${JSON.stringify(text)}: AJV agrees`);
  }
});

t.test('random id, uri and code strings: as AJV decides', async (t) => {
  // ASCII whitespace, Unicode whitespace (\s has more members past ASCII), other non-ASCII, the id characters
  const alphabet = [
    ' ',
    '\t',
    '\n',
    '\r',
    '\v',
    '\f',
    '\u00a0',
    '\u2028',
    '\u3000',
    '\ufeff',
    '\u00e9',
    '\ud83d',
    '\ude00',
    'a',
    'Z',
    '0',
    '9',
    '-',
    '.',
    '_',
    '/',
    ':',
    '\u0000',
    '\u001f',
    '~',
  ];
  const next = random(SEED + 2);
  const text = () => {
    const length = Math.floor(next() * 8) === 0 ? 60 + Math.floor(next() * 10) : Math.floor(next() * 6);
    let out = '';
    for (let i = 0; i < length; i++) out += alphabet[Math.floor(next() * alphabet.length)];
    return out;
  };
  const goals: Json[] = [];
  for (let i = 0; i < 3_000; i++) {
    const s = text();
    const goal: Json = {
      resourceType: 'Goal',
      lifecycleStatus: 'active',
      subject: { reference: 'Patient/p1' },
      description: { text: 'walk' },
    };
    goal[['id', 'implicitRules', 'language'][i % 3] as string] = s;
    goals.push(goal);
  }
  const { valid, invalid } = compare(t, `random strings (seed ${SEED + 2})`, goals);
  t.ok(valid > 300 && invalid > 300, `${valid} valid, ${invalid} invalid`);
});

t.test('keys and values JSON allows but schemas rarely meet', async (t) => {
  const goal = (extra: string) =>
    JSON.parse(
      `{"resourceType":"Goal","lifecycleStatus":"active","subject":{"reference":"Patient/p1"},"description":{"text":"walk"}${extra}}`,
    ) as Json;
  const extras = [
    '',
    ',"__proto__":{"id":"x"}',
    ',"constructor":"x"',
    ',"toString":1',
    ',"hasOwnProperty":true',
    ',"":1',
    ',"0":1',
    ',"subject":{"reference":"Patient/p1","__proto__":"x"}',
    ',"description":{"text":"walk","constructor":{}}',
    ',"note":[]',
    ',"note":[null]',
    ',"note":[{"text":"a"},{"text":""}]',
    ',"target":[{"detailQuantity":{"value":1e400}}]',
    ',"target":[{"detailQuantity":{"value":-0}}]',
    ',"target":[{"detailQuantity":{"value":"1"}}]',
    ',"id":"a\u2028b"',
    ',"language":"en  US"',
  ];
  const values: Json[] = extras.map(goal);
  // what no JSON text gives, but an object literal can: undefined values and holes
  values.push({ ...goal(''), note: undefined }, { ...goal(''), unknown: undefined });
  const holed: unknown[] = [];
  holed[1] = { text: 'a' }; // index 0 is a hole
  values.push({ ...goal(''), lifecycleStatus: undefined }, { ...goal(''), note: holed });
  const { valid, invalid } = compare(t, 'edge values', values);
  t.ok(valid >= 5 && invalid >= 10, `${valid} valid, ${invalid} invalid`);
});

t.test('the deciders date-check the keys the walk date-checks, every key the schema declares', async (t) => {
  const schema = JSON.parse(
    readFileSync(
      new URL('../../../src/fhir/validation/generated/fhir-r4.prepared.schema.json', import.meta.url),
      'utf8',
    ),
  ) as {
    definitions: Record<
      string,
      { properties?: Record<string, { $ref?: string; items?: { $ref?: string } }> }
    >;
  };
  // the property names of every definition the ahead-of-time types reach (through $ref, as the deciders do)
  const reached = new Set<string>();
  const seen = new Set<string>();
  const queue = [...aotResourceTypes];
  for (let name = queue.pop(); name !== undefined; name = queue.pop()) {
    if (seen.has(name)) continue;
    seen.add(name);
    for (const [key, property] of Object.entries(schema.definitions[name]?.properties ?? {})) {
      reached.add(key);
      const ref = property.$ref ?? property.items?.$ref;
      if (ref) queue.push(ref.replace('#/definitions/', ''));
    }
  }
  const decided = new Set(decidedDateKeys);
  const differ = [...reached].filter((name) => isDateKey(name) !== decided.has(name));
  t.same(
    differ,
    [],
    `${decided.size} date keys, as the walk's isDateKey over ${reached.size} reachable names`,
  );
  t.same(
    [...decided].filter((name) => !reached.has(name)),
    [],
    'and no other',
  );
  t.ok(decided.has('start') && decided.has('authoredOn') && decided.has('valueDateTime'), 'the usual ones');
  t.notOk(decided.has('value'), 'not a name that is free text elsewhere');
});

t.test(
  'element rules: real dates, Extension.url, ext-1, nesting depth, as the walk reports them',
  async (t) => {
    const goal = (extra: Json) => ({
      resourceType: 'Goal',
      lifecycleStatus: 'active',
      subject: { reference: 'Patient/p1' },
      description: { text: 'walk' },
      ...extra,
    });
    const ext = (e: Json) => goal({ extension: [e] });
    const cases: Array<[string, Json, boolean]> = [
      ['a real date', goal({ startDate: '2024-02-29' }), true],
      ['29 February of a common year', goal({ startDate: '2021-02-29' }), false],
      [
        '31 April in a dateTime',
        goal({ statusDate: '2020-04-30', target: [{ dueDate: '2020-04-31' }] }),
        false,
      ],
      [
        'in an extension value',
        ext({ url: 'https://example.org/e', valueDateTime: '2026-02-30T10:00:00Z' }),
        false,
      ],
      ['an extension with a value', ext({ url: 'https://example.org/e', valueString: 'x' }), true],
      ['no url', ext({ valueString: 'x' }), false],
      ['neither value nor extensions', ext({ url: 'https://example.org/e' }), false],
      [
        'both',
        ext({ url: 'https://e', valueString: 'x', extension: [{ url: 'a', valueString: 'b' }] }),
        false,
      ],
      ['a modifier extension without url', goal({ modifierExtension: [{ valueBoolean: true }] }), false],
      ['in a nested extension', ext({ url: 'https://e', extension: [{ url: 'a' }] }), false],
    ];
    for (const [label, resource, valid] of cases) {
      t.equal(decider.Goal?.(resource), valid, `${label}: ${valid}`);
      t.equal(
        ajvAllErrors.Goal?.(resource) && walkIssues(resource).length === 0,
        valid,
        `${label}: the oracle agrees`,
      );
    }
    // the walk refuses an object more than 128 levels below the resource: 127 nested extensions under the one at
    // level 1 reach level 128 (the leaf), one more is level 129
    const nested = (levels: number): Json => {
      let e: Json = { url: 'https://example.org/leaf', valueString: 'x' };
      for (let i = 0; i < levels; i++) e = { url: 'https://example.org/n', extension: [e] };
      return ext(e);
    };
    t.equal(decider.Goal?.(nested(127)), true, 'level 128: accepted');
    t.equal(decider.Goal?.(nested(128)), false, 'level 129: refused');
    t.same(walkIssues(nested(127)), [], 'the walk accepts level 128');
    t.equal(walkIssues(nested(128)).length, 1, 'and refuses level 129');
  },
);

t.test('nesting past what a stack holds is refused, whichever validator overflows first', async (t) => {
  // AJV's code overflows the stack at about 1,000 nested extensions; the deciders refuse past 128 levels, as the rules'
  // walk does: at every depth here the resource is invalid all the same.
  for (const depth of [200, 2_000, 4_000, 20_000]) {
    let ext: Json = { url: 'https://example.org/leaf', valueString: 'x' };
    for (let i = 0; i < depth; i++) ext = { url: 'https://example.org/n', extension: [ext] };
    const goal = { resourceType: 'Goal', lifecycleStatus: 'active', subject: { reference: 'Patient/p1' } };
    const issues = validateFhirResource({ ...goal, description: { text: 'x' }, extension: [ext] }, 'inbound');
    t.ok(
      issues.length > 0 && issues.every((i) => i.rule === 'fhir-r4-schema'),
      `${depth} levels: ${issues[0]?.message}`,
    );
  }
});

t.test('fixtures and their mutations', async (t) => {
  const resources = fixtureResources();
  t.ok(resources.length >= 40, `${resources.length} resources of the ahead-of-time types in the fixtures`);
  const base = compare(t, 'fixtures', resources);
  t.equal(base.invalid, 0, 'the fixtures are valid R4');
  const next = random(SEED);
  const mutants: Json[] = [];
  for (let round = 0; round < 40; round++) for (const r of resources) mutants.push(mutate(r, next));
  const types = mutants.map((_, i) => String(resources[i % resources.length]?.resourceType));
  const { valid, invalid, walkOnly } = compare(
    t,
    `mutants (seed ${SEED})`,
    mutants,
    (_, i) => types[i] as string,
  );
  // both verdicts must be well represented, or the comparison would prove little
  t.ok(valid > mutants.length * 0.15 && invalid > mutants.length * 0.3, `${valid} valid, ${invalid} invalid`);
  t.ok(walkOnly >= 20, `${walkOnly} valid by the schema, refused by the walk's rules`);
});

t.test('the FHIR of generated plans and its mutations', async (t) => {
  const plans = fc.sample(arbitraryPlan(), { seed: SEED, numRuns: 60 });
  const resources = plans.flatMap((plan) => resourcesIn(planToTransaction(plan, { newUuid: randomUUID })));
  t.ok(resources.length >= 300, `${resources.length} resources from ${plans.length} plans`);
  const base = compare(t, 'generated', resources);
  t.equal(base.invalid, 0, 'what the mapping emits is valid R4');
  const next = random(SEED + 1);
  const mutants: Json[] = [];
  for (let round = 0; round < 8; round++) for (const r of resources) mutants.push(mutate(r, next));
  const types = mutants.map((_, i) => String(resources[i % resources.length]?.resourceType));
  const { valid, invalid, walkOnly } = compare(
    t,
    `mutants (seed ${SEED + 1})`,
    mutants,
    (_, i) => types[i] as string,
  );
  t.ok(valid > mutants.length * 0.15 && invalid > mutants.length * 0.3, `${valid} valid, ${invalid} invalid`);
  t.ok(walkOnly >= 20, `${walkOnly} valid by the schema, refused by the walk's rules`);
});
