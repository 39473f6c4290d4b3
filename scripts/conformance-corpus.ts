// The corpus of `npm run test:conformance` (test/conformance/README.md): everything the service writes as FHIR,
// produced by the real app (buildApp) over app.inject against the real embedded FHIR server, written to
// test-output/conformance/ for the HL7 reference validator (test/conformance/, Java). Nothing here checks FHIR:
// it only collects it.
//
//   node --import @isaacs/ts-node-temp-fork-for-pr-2009/import scripts/conformance-corpus.ts [outDir] [plans]
//
// Writes:
//   corpus.ndjson      one line per item: { source, label, resource }; a resource that is a transaction Bundle
//                      is validated whole and each of its entries alone (by the validator)
//   definitions/*.json the project's own StructureDefinitions and CodeSystems as the app serves them
//                      (GET /fhir/{type}/{id}); the validator loads them and validates them
//   corpus-summary.json what was produced, per source
// Sources:
//   openapi-example     each request example of the OpenAPI document: plans through $to-fhir; the FHIR examples
//                       of $from-fhir through $from-fhir then $to-fhir
//   generated           generated plans (test/helpers/plans.ts, fixed seed) through $to-fhir, some with ids on
//                       every part (PUT entries), long and unicode texts and carried unmappedFhir, plus coverage
//                       plans that between them hold every role, barrier category, preference kind and activity form
//   fixture-round-trip  every file of test/fixtures/fhir-r4-external through $from-fhir then $to-fhir
//   write-transaction   the transaction Bundles the service sent to the FHIR server for POST, PUT, PATCH of a goal,
//                       PATCH of an activity, DELETE (recorded by a loopback proxy between the app and the server)
//   stored              after each of those writes, the CarePlan, every resource it references and its Provenance,
//                       read from the embedded FHIR server directly
//   api-fhir-view       GET /care-plans/{id} with Accept: application/fhir+json after each write
//   definition          the project's own definitions (above)
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import fc from 'fast-check';
import type { Bundle, CarePlan, Resource } from 'fhir/r4.js';
import { pino } from 'pino';
import { projectDefinitions } from '../src/care-plans/definitions.js';
import { loadConfig } from '../src/config.js';
import { startEmbeddedFhirServer } from '../src/embedded-fhir/server.js';
import { buildApp } from '../src/http/app.js';
import type { SharedCarePlan } from '../src/model/care-plan.js';
import { fromRoot } from '../src/paths.js';
import { wrapStandalone } from '../test/helpers/fixtures.js';
import { arbitraryPlan } from '../test/helpers/plans.js';
import { participationFlow } from './conformance-participation.js';
import { coveragePlans, examples, LONG, withCarried, withIds } from './conformance-plans.js';

const outDir = process.argv[2] ?? fromRoot('test-output', 'conformance');
const planCount = Number(process.argv[3] ?? 200);
// The same corpus with US_CORE_VERSION=7.0.0 (its sources tagged "@7.0.0"), with fewer generated plans: the
// mapping differs between the versions only in the claims, which every plan of either run makes.
const planCount7 = Number(process.argv[4] ?? Math.min(planCount, 60));
const SEED = 20260413;
const logger = pino({ level: 'silent' });

interface Item {
  source: string;
  label: string;
  resource: Resource;
}
const items: Item[] = [];
const problems: string[] = [];
let versionTag = '';
const add = (source: string, label: string, resource: Resource) =>
  items.push({ source: `${source}${versionTag}`, label, resource });

/** A loopback proxy between the app and the embedded FHIR server that records every transaction Bundle sent. */
async function recordingProxy(target: string, record: (bundle: Bundle) => void) {
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      const body = Buffer.concat(chunks);
      try {
        if (req.method === 'POST' && body.length) {
          const parsed = JSON.parse(body.toString('utf8')) as Bundle;
          if (parsed.resourceType === 'Bundle' && parsed.type === 'transaction') record(parsed);
        }
      } catch {
        // not JSON: not ours to record
      }
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(req.headers)) {
        if (typeof v === 'string' && !['host', 'content-length', 'connection'].includes(k)) headers[k] = v;
      }
      const upstream = await fetch(`${target}${(req.url ?? '/').replace(/^\/fhir/, '')}`, {
        method: req.method,
        headers,
        body: ['GET', 'HEAD'].includes(req.method ?? 'GET') ? undefined : body,
      });
      const answer = Buffer.from(await upstream.arrayBuffer());
      const out: Record<string, string> = {};
      upstream.headers.forEach((v, k) => {
        if (!['content-length', 'transfer-encoding', 'connection', 'content-encoding'].includes(k))
          out[k] = v;
      });
      res.writeHead(upstream.status, out).end(answer);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    baseUrl: `http://127.0.0.1:${port}/fhir`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

async function main() {
  const started = Date.now();
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(join(outDir, 'definitions'), { recursive: true });
  await corpusFor('6.1.0', planCount, true);
  versionTag = ' @7.0.0';
  await corpusFor('7.0.0', planCount7, false);
  versionTag = '';
  writeCorpus(started);
}

/**
 * Source `measure` (issue 17): the Measures (GET /fhir/Measure/{id}) and, over the plans written above, each
 * measure's MeasureReport as summary and as subject-list (GET /measures/{id}/report, Accept: application/fhir+json).
 */
async function addMeasureResources(app: Awaited<ReturnType<typeof buildApp>>): Promise<void> {
  const list = (await app.inject({ method: 'GET', url: '/measures' })).json() as { items: { id: string }[] };
  for (const { id } of list.items) {
    const measure = await app.inject({ method: 'GET', url: `/fhir/Measure/${id}` });
    if (measure.statusCode === 200) {
      add('measure', `GET /fhir/Measure/${id}`, measure.json());
      // Also among the definitions the validator loads, so that each MeasureReport's measure resolves.
      writeFileSync(join(outDir, 'definitions', `Measure-${id}.json`), measure.body);
    } else problems.push(`Measure/${id}: ${measure.statusCode}`);
    for (const reportType of ['summary', 'subject-list']) {
      const url = `/measures/${id}/report?periodStart=2000-01-01&periodEnd=2100-12-31&reportType=${reportType}`;
      const report = await app.inject({ method: 'GET', url, headers: { accept: 'application/fhir+json' } });
      if (report.statusCode === 200) add('measure', `GET ${url}`, report.json());
      else problems.push(`${url}: ${report.statusCode}`);
    }
  }
}

/** The whole corpus as the service writes it with one US_CORE_VERSION (and, once, the project's definitions). */
async function corpusFor(usCoreVersion: '6.1.0' | '7.0.0', plans: number, withDefinitions: boolean) {
  const embedded = await startEmbeddedFhirServer({ logger });
  let current = 'none';
  const proxy = await recordingProxy(embedded.baseUrl, (bundle) => {
    if (current !== 'none') add('write-transaction', current, bundle);
  });
  // As deployed against a FHIR server: its public base is known (FHIR_PUBLIC_BASE_URL, by default FHIR_BASE_URL), so
  // fullUrls are absolute URLs that resolve. With the embedded server and none, the service shows no fullUrl at all
  // (its loopback address is never shown to a caller): that default is not what this corpus validates.
  const config = {
    ...loadConfig({
      LOG_LEVEL: 'silent',
      AUTH_MODE: 'none',
      FHIR_PUBLIC_BASE_URL: proxy.baseUrl,
      US_CORE_VERSION: usCoreVersion,
    }),
    fhirBaseUrl: proxy.baseUrl,
  };
  const app = await buildApp(config, { logger });
  await app.ready();
  const json = { 'content-type': 'application/json' };

  const toFhir = async (source: string, label: string, plan: unknown) => {
    const reply = await app.inject({
      method: 'POST',
      url: '/care-plans/$to-fhir',
      headers: json,
      payload: plan as object,
    });
    if (reply.statusCode !== 200) {
      problems.push(`${source} ${label}: $to-fhir answered ${reply.statusCode}: ${reply.body.slice(0, 300)}`);
      return;
    }
    add(source, label, reply.json());
  };
  const fromFhir = async (body: unknown, query = '') =>
    app.inject({
      method: 'POST',
      url: `/care-plans/$from-fhir${query}`,
      headers: { 'content-type': 'application/fhir+json' },
      payload: JSON.stringify(body),
    });
  const roundTrip = async (source: string, label: string, input: unknown) => {
    const first = await fromFhir(input);
    const answers: { label: string; body: unknown }[] = [];
    if (first.statusCode === 200) answers.push({ label, body: first.json() });
    else if (first.statusCode === 422 && Array.isArray(first.json().choices)) {
      // A Bundle with several CarePlans: each one in turn.
      for (const choice of first.json().choices as { id?: string; fullUrl?: string }[]) {
        const key = choice.id ?? choice.fullUrl ?? '';
        const chosen = await fromFhir(input, `?carePlan=${encodeURIComponent(key)}`);
        if (chosen.statusCode === 200)
          answers.push({ label: `${label}?carePlan=${key}`, body: chosen.json() });
        else problems.push(`${source} ${label} ${key}: $from-fhir answered ${chosen.statusCode}`);
      }
    } else
      problems.push(
        `${source} ${label}: $from-fhir answered ${first.statusCode}: ${first.body.slice(0, 300)}`,
      );
    for (const answer of answers) await toFhir(source, answer.label, answer.body);
  };

  // 1. Every request example of the OpenAPI document.
  const openapi = (await app.inject({ method: 'GET', url: '/openapi.json' })).json() as {
    paths: Record<
      string,
      Record<
        string,
        { requestBody?: { content?: Record<string, { examples?: Record<string, { value: unknown }> }> } }
      >
    >;
  };
  let exampleCount = 0;
  for (const [path, operations] of Object.entries(openapi.paths)) {
    for (const [method, operation] of Object.entries(operations)) {
      // Edits of a stored plan (contributions, parts) are written in the stored flows below, not mapped alone.
      if (path.includes('{id}')) continue;
      for (const media of Object.values(operation.requestBody?.content ?? {})) {
        for (const [name, example] of Object.entries(media.examples ?? {})) {
          exampleCount++;
          const label = `${method.toUpperCase()} ${path} ${name}`;
          if (path === '/care-plans/$from-fhir') await roundTrip('openapi-example', label, example.value);
          else await toFhir('openapi-example', label, example.value);
        }
      }
    }
  }
  if (exampleCount === 0) problems.push('the OpenAPI document has no request examples');

  // 2. Generated plans (fixed seed), some with ids, long texts and carried FHIR; then the coverage plans.
  const generated = fc.sample(arbitraryPlan(), { numRuns: plans, seed: SEED });
  for (const [i, plan] of generated.entries()) {
    let p = plan;
    if (i % 3 === 1) p = withIds(p, i);
    if (i % 5 === 2) p = { ...p, description: LONG };
    if (i % 7 === 3) p = withCarried(p);
    await toFhir('generated', `plan ${i}${i % 3 === 1 ? ' (with ids)' : ''}`, p);
  }
  for (const [i, plan] of coveragePlans().entries()) await toFhir('generated', `coverage plan ${i}`, plan);

  // 3. Every external fixture, round-tripped.
  const fixtures = fromRoot('test', 'fixtures', 'fhir-r4-external');
  for (const folder of readdirSync(fixtures).sort()) {
    if (folder.endsWith('.md')) continue;
    for (const file of readdirSync(join(fixtures, folder)).sort()) {
      const resource = JSON.parse(readFileSync(join(fixtures, folder, file), 'utf8')) as Resource;
      await roundTrip('fixture-round-trip', `${folder}/${file}`, wrapStandalone(resource));
    }
  }

  // 4. Stored plans after each kind of write, read back from the FHIR server; and the write transactions.
  const readStored = async (id: string, step: string) => {
    const get = async (path: string) => {
      const response = await fetch(`${embedded.baseUrl}/${path}`, {
        headers: { accept: 'application/fhir+json' },
      });
      return { status: response.status, body: (await response.json()) as Resource };
    };
    const carePlan = await get(`CarePlan/${id}`);
    if (carePlan.status !== 200) {
      problems.push(`stored ${step}: CarePlan/${id} answered ${carePlan.status}`);
      return;
    }
    add('stored', `${step}: CarePlan/${id}`, carePlan.body);
    const cp = carePlan.body as CarePlan;
    const refs = [
      ...(cp.goal ?? []),
      ...(cp.careTeam ?? []),
      ...(cp.supportingInfo ?? []),
      ...(cp.addresses ?? []),
    ]
      .map((r) => r.reference)
      .filter((r): r is string => !!r && /^[A-Za-z]+\/[^/]+$/.test(r));
    for (const ref of refs) {
      const part = await get(ref);
      if (part.status === 200) add('stored', `${step}: ${ref}`, part.body);
      else problems.push(`stored ${step}: ${ref} answered ${part.status}`);
    }
    const provenance = (await get(`Provenance?target=CarePlan/${id}&_count=1000`)).body as Bundle;
    for (const entry of provenance.entry ?? []) {
      if (entry.resource) add('stored', `${step}: Provenance/${entry.resource.id}`, entry.resource);
    }
    if (!provenance.entry?.length) problems.push(`stored ${step}: no Provenance for CarePlan/${id}`);
    const view = await app.inject({
      method: 'GET',
      url: `/care-plans/${id}`,
      headers: { accept: 'application/fhir+json' },
    });
    if (view.statusCode === 200) add('api-fhir-view', `${step}: GET /care-plans/${id}`, view.json());
    else problems.push(`api-fhir-view ${step}: ${view.statusCode}`);
  };
  const write = async (
    step: string,
    method: 'POST' | 'PUT' | 'PATCH' | 'DELETE',
    url: string,
    etag?: string,
    payload?: unknown,
  ) => {
    current = step;
    const reply = await app.inject({
      method,
      url,
      headers: { ...(payload === undefined ? {} : json), ...(etag ? { 'if-match': etag } : {}) },
      ...(payload === undefined ? {} : { payload: payload as object }),
    });
    current = 'none';
    if (reply.statusCode >= 300) {
      problems.push(`${step}: ${method} ${url} answered ${reply.statusCode}: ${reply.body.slice(0, 300)}`);
      return undefined;
    }
    return { plan: reply.json() as SharedCarePlan & { id: string }, etag: reply.headers.etag as string };
  };
  const storedFlows: [string, SharedCarePlan][] = [
    ['example', examples('patient-led-plan.json') as unknown as SharedCarePlan],
    ['coverage', coveragePlans()[0]],
  ];
  for (const [name, plan] of storedFlows) {
    const created = await write(`${name} create`, 'POST', '/care-plans', undefined, plan);
    if (!created) continue;
    const id = created.plan.id;
    await readStored(id, `${name} create`);
    const replaced = await write(`${name} PUT`, 'PUT', `/care-plans/${id}`, created.etag, {
      ...created.plan,
      title: `${created.plan.title ?? 'Plan'} (revised)`,
      strengths: [...(created.plan.strengths ?? []), { statement: 'A new strength' }],
    });
    if (!replaced) continue;
    await readStored(id, `${name} PUT`);
    const goal = replaced.plan.goals?.[0];
    const goalPatched = goal
      ? await write(`${name} PATCH goal`, 'PATCH', `/care-plans/${id}/goals/${goal.id}`, replaced.etag, {
          achievementStatus: 'improving',
          lifecycleStatus: 'active',
        })
      : replaced;
    if (!goalPatched) continue;
    if (goal) await readStored(id, `${name} PATCH goal`);
    const activity = goalPatched.plan.activities?.find((a) => a.status);
    const activityPatched = activity
      ? await write(
          `${name} PATCH activity`,
          'PATCH',
          `/care-plans/${id}/activities/${activity.id}`,
          goalPatched.etag,
          {
            status: 'completed',
          },
        )
      : goalPatched;
    if (!activityPatched) continue;
    if (activity) await readStored(id, `${name} PATCH activity`);
    const ended = await write(
      `${name} DELETE`,
      'DELETE',
      `/care-plans/${id}?status=revoked`,
      activityPatched.etag,
    );
    if (ended) await readStored(id, `${name} DELETE`);
  }

  // 4b. People taking part in their own name (issue 16): patient, family, professionals, with tokens.
  await participationFlow({
    fhirBaseUrl: proxy.baseUrl,
    publicBaseUrl: proxy.baseUrl,
    usCoreVersion,
    plan: examples('patient-led-plan.json') as unknown as SharedCarePlan,
    logger,
    step: (name) => {
      current = name ?? 'none';
    },
    readStored,
    problem: (text) => problems.push(text),
  });

  // 5. The project's own definitions, as the app serves them.
  for (const key of withDefinitions ? projectDefinitions.keys() : []) {
    const reply = await app.inject({ method: 'GET', url: `/fhir/${key}` });
    if (reply.statusCode !== 200) {
      problems.push(`definition ${key}: ${reply.statusCode}`);
      continue;
    }
    writeFileSync(join(outDir, 'definitions', `${key.replace('/', '-')}.json`), reply.body);
    add('definition', `GET /fhir/${key}`, reply.json());
  }

  if (withDefinitions) await addMeasureResources(app);
  await app.close();
  await proxy.close();
  await embedded.close();
}

function writeCorpus(started: number) {
  writeFileSync(join(outDir, 'corpus.ndjson'), `${items.map((i) => JSON.stringify(i)).join('\n')}\n`);
  const perSource: Record<string, number> = {};
  for (const item of items) perSource[item.source] = (perSource[item.source] ?? 0) + 1;
  writeFileSync(
    join(outDir, 'corpus-summary.json'),
    `${JSON.stringify({ seed: SEED, generatedPlans: { '6.1.0': planCount, '7.0.0': planCount7 }, items: perSource, problems }, null, 2)}\n`,
  );
  console.log(
    `corpus: ${items.length} items in ${((Date.now() - started) / 1000).toFixed(1)} s -> ${outDir}/corpus.ndjson`,
  );
  for (const [source, n] of Object.entries(perSource)) console.log(`  ${source}: ${n}`);
  for (const problem of problems) console.log(`  PROBLEM ${problem}`);
  // A corpus the service could not produce in full is a failure of the run, not a smaller corpus.
  if (problems.length) process.exitCode = 1;
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
