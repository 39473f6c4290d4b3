// The process as a new user runs it: `npm start` builds and starts the service on the embedded FHIR server.
// Here the build runs once, then the compiled server is started as a child process on a free port.
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import t from 'tap';
import { fromRoot } from '../src/paths.js';

const root = fromRoot();

function startServer(env: Record<string, string>) {
  // Through `env -u`: the server's own code is covered by the in-process tests; tap's coverage hooks, which tap
  // adds to every child process, are removed so that the built output does not count as code of its own.
  const child = spawn(
    'env',
    ['-u', 'NODE_V8_COVERAGE', '-u', 'NODE_OPTIONS', process.execPath, 'dist/src/server.js'],
    {
      cwd: root,
      env: { PATH: process.env.PATH ?? '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
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
