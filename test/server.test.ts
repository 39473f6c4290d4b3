// The process as a new user runs it: `npm start` builds and starts the service on the embedded FHIR server.
// Here the build runs once, then the compiled server is started as a child process on a free port.
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import fc from 'fast-check';
import { pino } from 'pino';
import t from 'tap';
import { fromRoot } from '../src/paths.js';
import { arbitraryPlan } from './helpers/plans.js';

const root = fromRoot();

/**
 * `env` arguments that run node without tap's coverage hooks (which tap adds to every child process): the built
 * code run in a child is covered by the in-process tests, so it must not count as code of its own.
 */
const nodeWithoutCoverage = (...args: string[]) => [
  '-u',
  'NODE_V8_COVERAGE',
  '-u',
  'NODE_OPTIONS',
  process.execPath,
  ...args,
];

function startServer(env: Record<string, string>) {
  const child = spawn('env', nodeWithoutCoverage('dist/src/server.js'), {
    cwd: root,
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk) => {
    output += chunk;
  });
  child.stderr.on('data', (chunk) => {
    output += chunk;
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, exited, output: () => output };
}

async function waitFor(condition: () => boolean, ms: number) {
  const until = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > until) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 50));
  }
}

t.before(() => {
  execFileSync('npm', ['run', 'build', '--silent'], { cwd: root, stdio: 'inherit' });
});

t.test(
  'starts on the embedded FHIR server, serves a plan, and shuts down gracefully on SIGTERM',
  async (t) => {
    const server = startServer({ PORT: '0', LOG_LEVEL: 'info' });
    t.teardown(() => server.child.kill('SIGKILL'));
    await waitFor(() => /Server listening at (http:\/\/[^"\s]+)/.test(server.output()), 30_000);
    const base = /Server listening at (http:\/\/[^"\s]+)/.exec(server.output())?.[1] as string;
    const warnings = server.output().match(/data.{0,40}in memory/gi) ?? [];
    t.equal(warnings.length, 1, 'one clear warning that the embedded server keeps its data in memory');

    t.equal((await fetch(`${base}/health/ready`)).status, 200);
    const docs = await fetch(`${base}/docs/`);
    t.equal(docs.status, 200, 'Swagger UI');
    const document = await (await fetch(`${base}/openapi.json`)).json();
    const media = document.paths['/care-plans'].post.requestBody.content['application/json'];
    const example = Object.values(media.examples as Record<string, { value: unknown }>)[0].value;
    const created = await fetch(`${base}/care-plans`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(example),
    });
    t.equal(created.status, 201, 'the first example of the OpenAPI document creates a plan');
    const location = created.headers.get('location') as string;
    const read = await fetch(`${base}${location}`);
    t.equal(read.status, 200, 'GET on its Location returns it');
    t.equal((await read.json()).id, location.split('/').pop());

    // An in-flight request finishes during shutdown.
    const slow = fetch(`${base}/care-plans`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(example),
    });
    await new Promise((r) => setTimeout(r, 5));
    server.child.kill('SIGTERM');
    t.equal((await slow).status, 201, 'the request in flight at SIGTERM completes');
    t.equal(await server.exited, 0, 'exits cleanly');
    t.match(server.output(), /shutting down/);
    t.notMatch(server.output(), /Maria|maria-lopez/, 'no patient data in the logs');
  },
);

t.test('a bad configuration stops the process with a message naming the variable', async (t) => {
  for (const [name, value] of [
    ['PORT', 'eighty'],
    ['LOG_LEVEL', 'loud'],
    ['FHIR_BASE_URL', 'not a url'],
    ['HEAP_GROWTH_PERCENT', '-5'],
  ]) {
    const server = startServer({ [name]: value });
    const code = await server.exited;
    t.equal(code, 2, `${name}=${value}: exit code 2`);
    t.match(server.output(), new RegExp(`invalid configuration: ${name}`), `${name}: named in the message`);
  }
  t.ok(
    readFileSync(fromRoot('README.md'), 'utf8').includes('| `PORT`'),
    'the README documents the variables',
  );
});

// The built tree's route validators, compiled ahead of time (scripts/generate-route-validators.mjs): the built app
// compiles none at start-up, and each decides every body and parameter set below as AJV's run-time compilation of
// the same schema with the same options does (the first error included, and the parameters' coercions and defaults).
t.test('the built app uses a generated validator for every route schema, deciding as AJV does', async (t) => {
  const dist = (path: string) => pathToFileURL(fromRoot('dist', 'src', path)).href;
  const { buildApp } = await import(dist('http/app.js'));
  const { loadConfig } = await import(dist('config.js'));
  const validators = await import(dist('http/validators.js'));
  const precompiled = await validators.loadPrecompiledValidators();
  const seen: { kind: 'body' | 'parameter'; schema: object; precompiled: boolean }[] = [];
  for (const env of [
    { AUTH_MODE: 'none' },
    { AUTH_MODE: 'jwt', AUTH_JWKS_URL: 'https://i.invalid/j', AUTH_ISSUER: 'i', AUTH_AUDIENCE: 'a' },
  ]) {
    const config = { ...loadConfig({ LOG_LEVEL: 'silent', ...env }), fhirBaseUrl: 'http://127.0.0.1:9/fhir' };
    const app = await buildApp(config, {
      logger: pino({ level: 'silent' }),
      validators: {
        precompiled,
        onSchema: (kind: 'body' | 'parameter', schema: object, hit: boolean) =>
          seen.push({ kind, schema: structuredClone(schema), precompiled: hit }),
      },
    });
    await app.ready();
    await app.close();
  }
  t.same(
    await validators.loadPrecompiledValidators('validators-of-other-schemas'),
    {},
    'validators generated from other API schemas than those the service reads are not used',
  );
  t.ok(seen.filter((s) => s.kind === 'body').length >= 10, 'the routes have body schemas');
  t.ok(seen.filter((s) => s.kind === 'parameter').length >= 10, 'the routes have parameter schemas');
  t.strictSame(
    seen.filter((s) => !s.precompiled).map((s) => JSON.stringify(s.schema).slice(0, 80)),
    [],
    'no route schema is compiled at start-up',
  );

  // Bodies: generated plans, their parts (as the patch routes take them), and broken copies of both.
  const plans = fc.sample(arbitraryPlan(), { numRuns: 25, seed: 18 }) as unknown as Record<string, unknown>[];
  const parts = plans.flatMap((plan) =>
    Object.values(plan).flatMap((value) => (Array.isArray(value) ? value.slice(0, 2) : [])),
  ) as Record<string, unknown>[];
  const broken = (value: Record<string, unknown>) => {
    const [first] = Object.keys(value);
    return [
      { ...value, unexpected: true },
      { ...value, [first]: 42 },
      { ...value, [first]: '2026-02-30' },
      { ...value, [first]: '' },
      Object.fromEntries(Object.entries(value).slice(1)),
    ];
  };
  const bodies: unknown[] = [
    ...plans,
    ...parts,
    ...[...plans.slice(0, 8), ...parts.slice(0, 40)].flatMap(broken),
    {},
    [],
    null,
    'text',
    { statement: 'x', kind: 'care-experience' },
    { text: 'a note' },
    { status: 'revoked' },
    { endpoint: 'https://sync.example.org/hook', events: ['care-plan.created'] },
  ];
  const firstError = (errors: { instancePath: string; schemaPath: string; keyword: string }[] | null) =>
    errors?.[0] ? `${errors[0].instancePath} ${errors[0].schemaPath} ${errors[0].keyword}` : '';
  const runtimeBodies = validators.bodyAjv(false);
  const runtimeParameters = validators.parameterAjv();
  let valid = 0;
  let invalid = 0;
  let mismatches = 0;
  for (const { kind, schema } of seen) {
    const generated = precompiled[validators.precompiledName(kind, schema)];
    const compiled = (kind === 'body' ? runtimeBodies : runtimeParameters).compile(schema);
    const properties = Object.keys((schema as { properties?: object }).properties ?? {});
    const inputs =
      kind === 'body'
        ? bodies
        : [
            {},
            ...['abc', '1', '', 'x'.repeat(5000), ['a', 'b'], '2026-02-30', 'W/"1"'].map((value) =>
              Object.fromEntries(properties.map((name) => [name, value])),
            ),
          ];
    for (const input of inputs) {
      const [a, b] = [structuredClone(input), structuredClone(input)];
      const decided = generated(a);
      if (decided !== compiled(b) || firstError(generated.errors) !== firstError(compiled.errors))
        mismatches++;
      else if (kind === 'parameter' && JSON.stringify(a) !== JSON.stringify(b)) mismatches++;
      if (decided) valid++;
      else invalid++;
    }
  }
  t.equal(mismatches, 0, 'every generated validator decides as the run-time one');
  t.ok(valid > 100 && invalid > 500, `both outcomes tried (${valid} valid, ${invalid} invalid)`);
});

// With every route validator generated, the built app does not load AJV at start-up (importing it cost readiness
// 25-30 ms), nor for valid bodies or for the check of a valid edited plan: only the first invalid one does, to report
// every error; likewise AJV's allErrors FHIR validators, which only an invalid resource needs. Checked in a process
// of its own, since this one has AJV loaded already; `require.cache` lists the CommonJS modules a process has loaded.
t.test('the built app loads AJV only when the first invalid body needs every error reported', async (t) => {
  const dist = (path: string) => JSON.stringify(pathToFileURL(fromRoot('dist', 'src', path)).href);
  const script = `
    import { createRequire } from 'node:module';
    const require = createRequire(import.meta.url);
    const { buildApp } = await import(${dist('http/app.js')});
    const { loadConfig } = await import(${dist('config.js')});
    const { examplePlan } = await import(${dist('http/schemas.js')});
    const { routeValidators, loadPrecompiledValidators } = await import(${dist('http/validators.js')});
    const ajvLoaded = () => Object.keys(require.cache).some((f) => f.endsWith('/node_modules/ajv/dist/core.js'));
    const fhirAllErrorsLoaded = () => Object.keys(require.cache).some((f) => f.endsWith('/fhir-r4-validators-all-errors.cjs'));
    const { validateFhirResource } = await import(${dist('fhir/validation/index.js')});
    const config = { ...loadConfig({ LOG_LEVEL: 'silent', AUTH_MODE: 'none' }), fhirBaseUrl: 'http://127.0.0.1:9/fhir' };
    const app = await buildApp(config);
    await app.ready();
    const seen = { atReady: ajvLoaded(), fhirAllErrorsAtReady: fhirAllErrorsLoaded() };
    const valid = await app.inject({ method: 'POST', url: '/care-plans/$to-fhir', payload: examplePlan });
    Object.assign(seen, { valid: valid.statusCode, afterValid: ajvLoaded(), fhirAllErrorsAfterValid: fhirAllErrorsLoaded() });
    const { checkSchema } = routeValidators({ precompiled: await loadPrecompiledValidators() });
    Object.assign(seen, { validPlanErrors: checkSchema(examplePlan).length, afterValidPlan: ajvLoaded() });
    const invalid = await app.inject({ method: 'POST', url: '/care-plans/$to-fhir', payload: { status: 42 } });
    Object.assign(seen, { invalid: invalid.statusCode, afterInvalid: ajvLoaded() });
    Object.assign(seen, { invalidPlanReported: checkSchema({ ...examplePlan, status: 42 }).length > 0 });
    const badGoal = { resourceType: 'Goal', lifecycleStatus: 42, subject: { reference: 'Patient/p' }, description: { text: 'x' } };
    const fhirIssues = validateFhirResource(badGoal, 'outbound').map((i) => i.path);
    Object.assign(seen, { fhirIssues, fhirAllErrorsAfterInvalid: fhirAllErrorsLoaded() });
    console.log(JSON.stringify(seen));
    await app.close();`;
  const output = execFileSync('env', nodeWithoutCoverage('--input-type=module', '-e', script), {
    cwd: root,
    encoding: 'utf8',
  });
  t.strictSame(JSON.parse(output.trim().split('\n').at(-1) as string), {
    atReady: false,
    fhirAllErrorsAtReady: false,
    valid: 200,
    afterValid: false,
    fhirAllErrorsAfterValid: false,
    validPlanErrors: 0,
    afterValidPlan: false,
    invalid: 400,
    afterInvalid: true,
    invalidPlanReported: true,
    fhirIssues: ['/lifecycleStatus'],
    fhirAllErrorsAfterInvalid: true,
  });
});
