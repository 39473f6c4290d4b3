// The API contract: the committed openapi/openapi.json is the document the app serves, every operation is
// described with named schemas and its error answers, the examples work through the app against a real FHIR
// server, and a standard OpenAPI linter (Redocly CLI) finds no errors.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Ajv } from 'ajv';
import t from 'tap';
import { FHIR_FORMATS } from '../../../src/model/formats.js';
import { fromRoot } from '../../../src/paths.js';
import { examplePlan, startTestService, type TestService } from '../../helpers/service.js';

type Json = Record<string, unknown>;
interface MediaType {
  schema?: Json;
  examples?: Record<string, { summary?: string; value: unknown }>;
  example?: unknown;
}
interface Response {
  description?: string;
  headers?: Record<string, Json>;
  content?: Record<string, MediaType>;
}
interface Operation {
  summary?: string;
  description?: string;
  operationId?: string;
  tags?: string[];
  parameters?: { in: string; name: string; required?: boolean }[];
  requestBody?: { content: Record<string, MediaType> };
  responses: Record<string, Response>;
}
interface OpenApi {
  openapi: string;
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, Json> };
}

const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options'];
const COMMITTED = fromRoot('openapi', 'openapi.json');
const RUN = 'run `npm run openapi` and commit openapi/openapi.json';

let service: TestService;
let served: OpenApi;
t.before(async () => {
  service = await startTestService();
  // The committed document is the one of AUTH_MODE=jwt (as scripts/write-openapi.mjs writes it).
  const secured = await startTestService({
    AUTH_MODE: 'jwt',
    AUTH_JWKS_URL: 'https://issuer.example/.well-known/jwks.json',
    AUTH_ISSUER: 'https://issuer.example',
    AUTH_AUDIENCE: 'https://care-plans.example',
  });
  const response = await secured.app.inject({ method: 'GET', url: '/openapi.json' });
  served = response.json();
  await secured.close();
});
t.teardown(() => service.close());

function operations(doc: OpenApi): { path: string; method: string; operation: Operation; name: string }[] {
  return Object.entries(doc.paths).flatMap(([path, item]) =>
    Object.entries(item)
      .filter(([method]) => METHODS.includes(method))
      .map(([method, operation]) => ({ path, method, operation, name: `${method.toUpperCase()} ${path}` })),
  );
}

/** Every value under a key named `key`, anywhere in the document. */
function collect(value: unknown, key: string, found: unknown[] = []): unknown[] {
  if (Array.isArray(value)) for (const item of value) collect(item, key, found);
  else if (value && typeof value === 'object') {
    for (const [name, item] of Object.entries(value)) {
      if (name === key) found.push(item);
      collect(item, key, found);
    }
  }
  return found;
}

t.test('the committed openapi/openapi.json is the served document', async (t) => {
  const text = readFileSync(COMMITTED, 'utf8');
  const expected = `${JSON.stringify(served, null, 2)}\n`;
  t.same(JSON.parse(text), served, `openapi/openapi.json differs from GET /openapi.json: ${RUN}`);
  t.ok(
    text === expected,
    `openapi/openapi.json is not written as served (2 spaces, served key order): ${RUN}`,
  );
  const ui = await service.app.inject({ method: 'GET', url: '/docs/json' });
  t.equal(ui.statusCode, 200);
  const own = await service.app.inject({ method: 'GET', url: '/openapi.json' });
  t.same(ui.json(), own.json(), 'Swagger UI shows the same document as /openapi.json');
  const docs = await service.app.inject({ method: 'GET', url: '/docs/' });
  t.equal(docs.statusCode, 200, 'Swagger UI is served at /docs');
});

t.test('every route is documented with a summary, tags and named schemas', async (t) => {
  t.match(served.openapi, /^3\.[01]\.\d+$/);
  const documented = new Set(operations(served).map(({ name }) => name));
  for (const name of [
    'POST /care-plans',
    'GET /care-plans/{id}',
    'POST /care-plans/$to-fhir',
    'POST /care-plans/$from-fhir',
    'GET /health/live',
    'GET /health/ready',
  ]) {
    t.ok(documented.has(name), `${name} is in the document`);
  }
  const operationIds = new Set<string>();
  for (const { name, operation } of operations(served)) {
    t.ok(operation.summary?.trim(), `${name} has a summary`);
    t.ok(operation.tags?.length, `${name} has a tag`);
    // Client generators name their methods after operationId: present, a JS identifier, and unique.
    t.match(operation.operationId ?? '', /^[a-z][A-Za-z]+$/, `${name} has an operationId`);
    t.notOk(operationIds.has(operation.operationId ?? ''), `${name}: operationId is unique`);
    operationIds.add(operation.operationId ?? '');
  }
  const names = Object.keys(served.components.schemas);
  t.ok(
    names.includes('SharedCarePlan') && names.includes('Problem'),
    'the plan and the problem are components',
  );
  for (const name of names) {
    t.match(name, /^[A-Z][A-Za-z0-9]*$/, `component schema "${name}" has a proper name`);
    t.notMatch(name, /^(def|schema)-\d+$/, `component schema "${name}" is not a generated name`);
  }
  const refs = collect(served, '$ref') as string[];
  t.ok(refs.length > 0);
  for (const ref of new Set(refs)) {
    const name = /^#\/components\/schemas\/(.+)$/.exec(ref)?.[1];
    t.ok(name && names.includes(name), `${ref} points at a component schema`);
  }
  t.same(collect(served, '$id'), [], 'no $id left in the document (every schema is a named component)');
  for (const { name, operation } of operations(served)) {
    const bodySchemas = Object.values(operation.requestBody?.content ?? {}).map((media) => media.schema);
    const responseSchemas = Object.values(operation.responses).flatMap((response) =>
      Object.values(response.content ?? {}).map((media) => media.schema),
    );
    for (const schema of [...bodySchemas, ...responseSchemas]) {
      if (schema && '$ref' in schema) continue;
      t.ok(
        schema && (schema.type === 'object' || schema.type === 'string') && !('$id' in schema),
        `${name}: every inline schema has a type (a response without a body, like 304, needs type 'null')`,
      );
    }
  }
});

t.test('every operation documents its error answers as problems', async (t) => {
  for (const { name, operation } of operations(served)) {
    const codes = Object.keys(operation.responses);
    const errors = codes.filter((code) => /^[45]/.test(code));
    t.ok(errors.length > 0, `${name} documents at least one error answer`);
    if (operation.requestBody || operation.parameters?.length) {
      t.ok(codes.includes('400'), `${name} takes input, so documents 400`);
    }
    if (operation.requestBody) {
      t.ok(codes.includes('413'), `${name} takes a body, so documents 413`);
      t.ok(codes.includes('415'), `${name} takes a body, so documents 415`);
    }
    if (name.includes('/care-plans')) {
      for (const code of errors) {
        const response = operation.responses[code];
        t.ok(response.description?.trim(), `${name} ${code} is described`);
        t.same(
          response.content?.['application/problem+json']?.schema,
          { $ref: '#/components/schemas/Problem' },
          `${name} ${code} is an application/problem+json Problem`,
        );
      }
    }
  }
  const create = served.paths['/care-plans'].post;
  for (const header of ['ETag', 'Location']) {
    const declared = create.responses['201'].headers?.[header] as { schema?: Json } | undefined;
    t.ok(declared, `POST /care-plans 201 declares ${header}`);
    t.equal(declared?.schema?.type, 'string', `${header} has a string schema`);
  }
  const read = served.paths['/care-plans/{id}'].get;
  t.ok(read.responses['200'].headers?.ETag, 'GET /care-plans/{id} 200 declares ETag');
  t.ok(
    create.parameters?.some(
      (parameter) => parameter.in === 'header' && /^idempotency-key$/i.test(parameter.name),
    ),
    'POST /care-plans documents Idempotency-Key',
  );
});

const fill = (path: string, value: string) => path.replace(/\{[^}]+\}/g, value);

interface Probe {
  name: string;
  why: string;
  method: string;
  url: string;
  headers?: Record<string, string>;
  body?: string;
  /** The answer this probe must get, when it is certain. */
  expect?: number;
}

t.test('the answers the app really gives to bad requests are documented problems', async (t) => {
  const big = JSON.stringify({ padding: 'x'.repeat(service.app.config.bodyLimitBytes + 10) });
  const probes: Probe[] = [];
  for (const { name, path, method, operation } of operations(served)) {
    const verb = method.toUpperCase();
    const hasQuery = operation.parameters?.some((parameter) => parameter.in === 'query');
    if (path.includes('{')) {
      const body = operation.requestBody ? '{}' : undefined;
      probes.push({
        name,
        why: 'an id that cannot be one',
        method: verb,
        url: fill(path, 'not!an!id'),
        body,
        expect: 400,
      });
      if (!operation.requestBody)
        probes.push({ name, why: 'an unknown id', method: verb, url: fill(path, 'no-such-plan') });
    }
    if (hasQuery) {
      probes.push({
        name,
        why: 'an unknown query parameter',
        method: verb,
        url: `${fill(path, 'no-such-plan')}?not-a-parameter=1`,
      });
    }
    if (operation.requestBody) {
      const url = fill(path, 'no-such-plan');
      probes.push({
        name,
        why: 'text/plain',
        method: verb,
        url,
        headers: { 'content-type': 'text/plain' },
        body: 'x',
        expect: 415,
      });
      probes.push({ name, why: 'broken JSON', method: verb, url, body: '{"a":', expect: 400 });
      probes.push({ name, why: 'a body over the limit', method: verb, url, body: big, expect: 413 });
      probes.push({ name, why: 'an empty object', method: verb, url, body: '{}' });
    }
  }
  probes.push({
    name: 'POST /care-plans/$from-fhir',
    why: 'FHIR that holds no CarePlan',
    method: 'POST',
    url: '/care-plans/$from-fhir',
    body: '{"resourceType":"Patient"}',
  });
  probes.push({
    name: 'GET /care-plans/{id}',
    why: 'an unknown plan',
    method: 'GET',
    url: '/care-plans/no-such-plan',
    expect: 404,
  });

  for (const { name, why, method, url, headers, body, expect } of probes) {
    const response = await service.app.inject({
      method: method as 'GET',
      url,
      headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
      payload: body,
    });
    const [verb, path] = name.split(' ');
    const documented = Object.keys(served.paths[path][verb.toLowerCase()].responses);
    const status = response.statusCode;
    const title = status >= 400 ? ` "${response.json().title}"` : '';
    if (expect) t.equal(status, expect, `${name} with ${why} answers ${expect}`);
    t.ok(
      documented.includes(String(status)),
      `${name} with ${why} answers ${status}${title}: documented (documented: ${documented.join(', ')})`,
    );
    if (status >= 400) {
      t.match(
        response.headers['content-type'],
        /^application\/problem\+json/,
        `${name} ${status} is a problem`,
      );
    }
  }
});

function documentValidator(doc: OpenApi) {
  // The document's own schemas, as a client would use them: refs resolve inside the document.
  const ajv = new Ajv({ strict: false, allErrors: true });
  for (const [name, format] of Object.entries(FHIR_FORMATS)) ajv.addFormat(name, format);
  return (name: string) => ajv.compile({ $ref: `#/components/schemas/${name}`, components: doc.components });
}

t.test('the first POST /care-plans example is a valid plan and the app creates it (201)', async (t) => {
  const media = served.paths['/care-plans'].post.requestBody?.content['application/json'];
  const first = Object.values(media?.examples ?? {})[0];
  t.ok(first, 'POST /care-plans has a request example');
  const validate = documentValidator(served)('SharedCarePlan');
  t.ok(
    validate(first.value),
    `the example validates against SharedCarePlan: ${JSON.stringify(validate.errors)}`,
  );
  const response = await service.app.inject({
    method: 'POST',
    url: '/care-plans',
    headers: { 'content-type': 'application/json' },
    payload: JSON.stringify(first.value),
  });
  t.equal(response.statusCode, 201, response.body);
  for (const header of Object.keys(served.paths['/care-plans'].post.responses['201'].headers ?? {})) {
    t.ok(response.headers[header.toLowerCase()], `the documented ${header} header is sent`);
  }
  t.ok(
    validate(response.json()),
    `the answer validates against SharedCarePlan: ${JSON.stringify(validate.errors)}`,
  );
  const read = await service.app.inject({ method: 'GET', url: String(response.headers.location) });
  t.equal(read.statusCode, 200, 'the Location can be read');
  t.ok(validate(read.json()), 'the plan read back validates against SharedCarePlan');
});

t.test('every request example works as "Try it out" would send it', async (t) => {
  let count = 0;
  for (const { name, path, method, operation } of operations(served)) {
    if (path.includes('{')) continue;
    const success = Object.keys(operation.responses).find((code) => /^2/.test(code));
    for (const [mediaType, media] of Object.entries(operation.requestBody?.content ?? {})) {
      const examples = Object.entries(media.examples ?? {}).map(
        ([key, example]) => [key, example.value] as const,
      );
      if (media.example !== undefined) examples.push(['example', media.example]);
      for (const [key, value] of examples) {
        count++;
        const response = await service.app.inject({
          method: method.toUpperCase() as 'POST',
          url: path,
          headers: { 'content-type': mediaType },
          payload: JSON.stringify(value),
        });
        t.equal(
          String(response.statusCode),
          success,
          `${name} example "${key}" (${mediaType}): ${response.body.slice(0, 300)}`,
        );
      }
    }
  }
  t.ok(count >= 2, `${count} request examples tried`);
});

t.test('every request example of an endpoint on a stored plan works on the example plan', async (t) => {
  const created = await service.app.inject({
    method: 'POST',
    url: '/care-plans',
    headers: { 'content-type': 'application/json' },
    payload: JSON.stringify(examplePlan()),
  });
  const plan = created.json();
  // The ids Swagger UI asks for: the plan's, its first goal's (its key works too) and its items'.
  const ids: Record<string, string> = {
    id: plan.id,
    goalId: 'walk-to-market',
    itemId: plan.preferences[0].id,
  };
  let count = 0;
  for (const { name, path, method, operation } of operations(served)) {
    if (!path.startsWith('/care-plans/{id}')) continue;
    const success = Object.keys(operation.responses).find((code) => /^2/.test(code));
    for (const [mediaType, media] of Object.entries(operation.requestBody?.content ?? {})) {
      const examples = Object.entries(media.examples ?? {}).map(
        ([key, example]) => [key, example.value] as const,
      );
      if (media.example !== undefined) examples.push(['example', media.example]);
      for (const [key, value] of examples) {
        count++;
        const response = await service.app.inject({
          method: method.toUpperCase() as 'POST',
          url: path.replace(/\{(\w+)\}/g, (_, param: string) => ids[param]),
          headers: { 'content-type': mediaType },
          payload: JSON.stringify(value),
        });
        t.equal(
          String(response.statusCode),
          success,
          `${name} example "${key}": ${response.body.slice(0, 300)}`,
        );
        t.ok(response.headers.etag, `${name} example "${key}": answers with the new ETag`);
      }
    }
  }
  // Agreements (2), a note, what matters, a preference, a strength, a barrier.
  t.ok(count >= 7, `${count} request examples tried on a stored plan`);
});

t.test('Redocly CLI (recommended rules) lints the document without errors', async (t) => {
  const cli = fromRoot('node_modules', '@redocly', 'cli', 'bin', 'cli.js');
  const env = {
    ...process.env,
    REDOCLY_TELEMETRY: 'off',
    REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true',
    REDOCLY_SUPPRESS_NOTIFICATIONS: 'true',
  };
  // The served document (the committed file must be the same, see above), so that lint findings are current.
  const file = join(mkdtempSync(join(tmpdir(), 'openapi-')), 'openapi.json');
  writeFileSync(file, `${JSON.stringify(served, null, 2)}\n`);
  let stdout: string;
  try {
    ({ stdout } = await promisify(execFile)(process.execPath, [cli, 'lint', file, '--format=json'], {
      env,
      cwd: fromRoot(),
      maxBuffer: 20 * 1024 * 1024,
    }));
  } catch (error) {
    // Redocly exits 1 when it finds errors; its report is still on stdout.
    stdout = (error as { stdout?: string }).stdout ?? '';
  }
  const report = JSON.parse(stdout.slice(stdout.indexOf('{'))) as {
    problems: { ruleId: string; severity: string; message: string; location: { pointer: string }[] }[];
  };
  const describe = (problem: (typeof report.problems)[number]) =>
    `${problem.ruleId} at ${problem.location[0]?.pointer}: ${problem.message}`;
  const errors = report.problems.filter((problem) => problem.severity === 'error').map(describe);
  const warnings = report.problems.filter((problem) => problem.severity !== 'error').map(describe);
  if (warnings.length) t.comment(`redocly warnings (allowed):\n  ${[...new Set(warnings)].join('\n  ')}`);
  t.same(errors, [], 'no lint errors');
});

t.test('with AUTH_MODE=none the served document requires no token', async (t) => {
  const doc = (await service.app.inject({ method: 'GET', url: '/openapi.json' })).json();
  t.notOk(doc.security, 'no global security requirement');
  t.notOk(doc.components?.securitySchemes, 'no security scheme');
  const secured = operations(doc).filter(
    ({ operation }) => (operation as { security?: unknown }).security || operation.responses['401'],
  );
  t.same(
    secured.map((o) => o.name),
    [],
    'no operation declares a security requirement or a 401',
  );
  t.ok(
    operations(served).some(({ operation }) => operation.responses['401']),
    'while the jwt document does',
  );
});
