// Dockerfile, docker-compose.yml and .ci/run cannot be run here (no Docker engine): they are checked by
// parsing, so that they stay correct by construction.
import { readFileSync } from 'node:fs';
import t from 'tap';
import { parse } from 'yaml';
import { fromRoot } from '../src/paths.js';

const read = (...parts: string[]) => readFileSync(fromRoot(...parts), 'utf8');

t.test('docker-compose runs the service against HAPI FHIR', async (t) => {
  const compose = parse(read('docker-compose.yml')) as {
    services: Record<
      string,
      {
        image?: string;
        build?: unknown;
        environment?: Record<string, string>;
        depends_on?: string[];
        ports?: string[];
      }
    >;
  };
  const [hapiName, hapi] =
    Object.entries(compose.services).find(([, s]) => s.image?.startsWith('hapiproject/hapi:')) ?? [];
  t.ok(hapi, 'a hapiproject/hapi service');
  t.notMatch(hapi?.image, /:latest$/, 'the HAPI image is pinned');
  const [, app] = Object.entries(compose.services).find(([, s]) => s.build !== undefined) ?? [];
  t.ok(app, 'the service is built from this repository');
  const fhirBaseUrl = new URL(app?.environment?.FHIR_BASE_URL ?? '');
  t.equal(fhirBaseUrl.hostname, hapiName, 'FHIR_BASE_URL points at the HAPI service');
  const hapiPort = (hapi?.ports ?? []).map((p) => p.split(':').pop());
  t.ok(hapiPort.includes(fhirBaseUrl.port || '80'), 'on the port HAPI listens on');
  t.equal(fhirBaseUrl.pathname, '/fhir');
  t.ok(app?.depends_on?.includes(hapiName as string));
  t.equal(app?.environment?.HOST, '0.0.0.0', 'reachable from outside its container');
  t.ok(app?.environment?.AUTH_MODE, 'says which authentication mode it runs with');
});

t.test('Dockerfile: multi-stage, production dependencies only, non-root', async (t) => {
  const dockerfile = read('Dockerfile');
  const stages = dockerfile.match(/^FROM\s+\S+/gm) ?? [];
  t.ok(stages.length >= 2, 'multi-stage');
  t.ok(
    stages.every((s) => /node:20/.test(s)),
    'Node 20 in every stage',
  );
  const runtime = dockerfile.slice(dockerfile.lastIndexOf('\nFROM'));
  t.match(runtime, /npm ci --omit=dev/, 'the runtime stage installs production dependencies only');
  t.match(runtime, /^USER node$/m, 'runs as a non-root user');
  t.match(runtime, /COPY --from=build \/app\/dist/, 'takes the compiled code from the build stage');
  const cmd = /^CMD \["node", "([^"]+)"\]/m.exec(runtime)?.[1];
  t.equal(cmd, 'dist/src/server.js');
  t.ok(read('src', 'server.ts').length > 0, 'the entry point exists');
  const build = JSON.parse(read('tsconfig.build.json'));
  t.strictSame(build.include, ['src'], 'the build compiles src/ to dist/src/');
  t.match(dockerfile, /EXPOSE 3000/);
});

t.test('CI runs the README test command and every extra suite the README lists', async (t) => {
  const ci = read('.ci', 'run');
  const readme = read('README.md');
  const pkg = JSON.parse(read('package.json'));
  for (const script of ['test', 'test:browser', 'test:hapi']) {
    t.ok(pkg.scripts[script], `npm script ${script}`);
    t.ok(ci.includes(script === 'test' ? 'npm test' : `npm run ${script}`), `.ci/run runs ${script}`);
    t.ok(readme.includes(script === 'test' ? 'npm test' : `npm run ${script}`), `the README lists ${script}`);
  }
  t.match(ci, /npm ci/, 'installs from the lock file');
  t.match(ci, /apt-get install/, 'installs system packages as on a new machine');
});
