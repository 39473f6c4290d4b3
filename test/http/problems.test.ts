// The one place where errors of the lower floors become problems (src/http/problems.ts, problemOf): each domain
// error kind and each kind of FHIR server failure gets the status the README documents, its problem type, and
// the headers that go with it (the current ETag of a stale plan, Retry-After).
import t from 'tap';
import { FhirServerError } from '../../src/fhir/client/gateway.js';
import { PROBLEM_BASE, problemOf } from '../../src/http/problems.js';
import { DomainError, type DomainErrorKind } from '../../src/model/errors.js';

const answer = (error: unknown) => {
  const problem = problemOf(error);
  if (!problem) return undefined;
  const { type, status } = problem.toProblem();
  return { type: type.slice(PROBLEM_BASE.length + 1), status, headers: problem.extra.headers ?? {} };
};

t.test('domain errors', async (t) => {
  const cases: [DomainErrorKind, string, number][] = [
    ['not-found', 'not-found', 404],
    ['not-allowed', 'forbidden', 403],
    ['unprocessable', 'unprocessable', 422],
    ['invalid-request', 'bad-request', 400],
    ['invalid-fhir', 'invalid-fhir', 422],
    ['mapping-failed', 'mapping-failed', 500],
    ['idempotency-key-reused', 'idempotency-key-reused', 422],
    ['version-required', 'precondition-required', 428],
  ];
  for (const [kind, type, status] of cases) {
    t.same(answer(new DomainError(kind, 'what happened')), { type, status, headers: {} }, kind);
  }
  t.same(
    answer(new DomainError('stale', 'changed', { currentVersion: '7' })),
    { type: 'precondition-failed', status: 412, headers: { etag: 'W/"7"' } },
    'stale: 412 with the current ETag',
  );
  const refused = problemOf(
    new DomainError('not-allowed', 'not yours', {
      errors: [{ pointer: '/patient', detail: 'must be Patient/a', in: 'query' }],
      denied: true,
    }),
  );
  t.same(
    refused?.toProblem().errors,
    [{ pointer: '/patient', detail: 'must be Patient/a', in: 'query' }],
    'details kept',
  );
  t.equal(refused?.extra.denied, true, 'a refusal is marked for the audit');
  t.notOk('denied' in (refused?.toProblem() ?? {}), 'but not shown to the caller');
  t.same(
    problemOf(new DomainError('unprocessable', 'pick one', { choices: ['cp-1', 'cp-2'] }))?.toProblem()
      .choices,
    ['cp-1', 'cp-2'],
    'choices kept',
  );
});

t.test('FHIR server failures', async (t) => {
  const outcome = { resourceType: 'OperationOutcome' as const, issue: [] };
  const cases: [FhirServerError, string, number, Record<string, string>][] = [
    [new FhirServerError('not-found', 'x', 404), 'not-found', 404, {}],
    [new FhirServerError('gone', 'x', 410), 'not-found', 404, {}],
    [new FhirServerError('precondition-failed', 'x', 412), 'precondition-failed', 412, {}],
    [new FhirServerError('conflict', 'x', 409), 'conflict', 409, { 'retry-after': '1' }],
    [new FhirServerError('rejected', 'x', 422, outcome), 'fhir-rejected', 422, {}],
    [new FhirServerError('timeout', 'x'), 'fhir-server-timeout', 504, {}],
    [
      new FhirServerError('unavailable', 'x', 503, undefined, 30),
      'fhir-server-unavailable',
      503,
      { 'retry-after': '30' },
    ],
    [new FhirServerError('unavailable', 'x'), 'fhir-server-unavailable', 503, { 'retry-after': '5' }],
    [new FhirServerError('upstream', 'x', 500), 'fhir-server-error', 502, {}],
  ];
  for (const [error, type, status, headers] of cases) {
    t.same(answer(error), { type, status, headers }, `${error.kind} (${error.status ?? 'no status'})`);
  }
  t.same(
    problemOf(new FhirServerError('rejected', 'x', 422, outcome))?.toProblem().operationOutcome,
    outcome,
    "the FHIR server's OperationOutcome is in the problem",
  );
});

t.test('anything else is not a known error', async (t) => {
  t.equal(problemOf(new Error('boom')), undefined);
  t.equal(problemOf('text'), undefined);
});
