// The measures benchmark (issue 17): `npm run bench:measures` (= npm run build && node bench/measures.mjs), or
// BENCH_PHASES=measures npm run bench. Starts an embedded FHIR server process and the service (node
// dist/src/server.js, AUTH_MODE=none, LOG_LEVEL=warn) on loopback, creates plans through POST /care-plans (and a
// PATCH of a goal's achievementStatus on every fourth plan, for goal-follow-up), then runs every measure's report at
// each population size, timing it and sampling the service's RSS every 50 ms while it runs.
// Knobs: BENCH_MEASURES_PLANS (sizes, default "2500,10000"), BENCH_MEASURES_CONNECTIONS (16).
// Prints a table and writes bench/results/measures.json; any non-2xx answer fails the run (exit 1).
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const DIST = resolve(ROOT, process.env.BENCH_DIST ?? 'dist');
const RESULTS = join(ROOT, 'bench', 'results');
const HOST = '127.0.0.1';
const SIZES = (process.env.BENCH_MEASURES_PLANS ?? '2500,10000').split(',').map(Number);
const CONNECTIONS = Number(process.env.BENCH_MEASURES_CONNECTIONS ?? 16);
const MEASURES = [
  'what-matters-documented',
  'patient-expressed-goals',
  'goals-agreed-by-patient',
  'barriers-addressed',
  'decisions-shared',
  'goal-follow-up',
];
const children = [];
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, HOST, () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

function start(name, script, env) {
  mkdirSync(join(RESULTS, 'logs'), { recursive: true });
  const log = join(RESULTS, 'logs', `${name}.log`);
  const child = spawn(process.execPath, [script], {
    env: { ...process.env, NODE_ENV: 'production', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const chunks = [];
  child.stdout.on('data', (c) => chunks.push(c));
  child.stderr.on('data', (c) => chunks.push(c));
  child.on('exit', () => writeFileSync(log, Buffer.concat(chunks)));
  children.push(child);
  return child;
}

async function waitFor200(url, child) {
  const until = Date.now() + 30_000;
  while (Date.now() < until) {
    if (child.exitCode !== null) throw new Error(`${url}: the process exited (${child.exitCode})`);
    try {
      if ((await fetch(url)).status === 200) return;
    } catch {}
    await sleep(50);
  }
  throw new Error(`${url} did not answer 200 within 30 s`);
}

function rssKb(pid, field = 'VmRSS') {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match ? Number(match[1]) : Number.NaN;
}

const day = (offset) => new Date(Date.now() + offset * 86_400_000).toISOString().slice(0, 10);

/** A small plan (3 goals, a barrier, 2 activities, a decision): ~8 resources on the FHIR server. */
function plan(i) {
  const patient = `Patient/bench-${i % 1000}`;
  const family = `RelatedPerson/bench-family-${i % 1000}`;
  return {
    patient: { reference: patient },
    status: 'active',
    intent: 'plan',
    title: `Bench plan ${i}`,
    period: { start: day(-100 - (i % 50)), end: day(100) },
    author: { reference: `Organization/clinic-${i % 5}` },
    whatMatters: { statement: 'Staying at home', expressedBy: { reference: i % 3 ? patient : family } },
    careTeam: {
      members: [
        { member: { reference: patient }, role: 'patient' },
        { member: { reference: family }, role: 'family-member' },
        { member: { reference: 'Practitioner/bench-doctor' }, role: 'physician' },
      ],
    },
    goals: [0, 1, 2].map((j) => ({
      key: `g${j}`,
      description: { text: `Goal ${j}` },
      expressedBy: { reference: (i + j) % 3 === 0 ? 'Practitioner/bench-doctor' : patient },
      lifecycleStatus: (i + j) % 7 === 0 ? 'cancelled' : 'active',
      achievementStatus: 'in-progress',
      startDate: day(-20 - ((i + j) % 60)),
      agreements: [{ who: { reference: patient }, status: (i + j) % 2 ? 'agree' : 'pending' }],
    })),
    barriers: [{ statement: 'No bus on weekdays', category: 'transportation', goals: [`g${i % 3}`] }],
    activities: [
      { description: 'Walk with Ana', status: 'in-progress', goals: ['g0'] },
      { description: 'Call the clinic', status: i % 2 ? 'not-started' : 'cancelled', goals: ['g1'] },
    ],
    decisions: [
      {
        question: 'Clinic or home?',
        options: [{ title: 'Clinic' }, { title: 'Home' }],
        chosenOption: 'Home',
        ...(i % 4 ? { rationale: 'No bus' } : {}),
        participants: [{ reference: i % 5 ? patient : 'Practitioner/bench-doctor' }],
      },
    ],
  };
}

async function createPlans(service, from, to) {
  let next = from;
  const worker = async () => {
    while (next < to) {
      const i = next++;
      const created = await fetch(`${service}/care-plans`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(plan(i)),
      });
      const body = await created.json();
      if (created.status !== 201) throw new Error(`plan ${i}: ${created.status} ${JSON.stringify(body)}`);
      if (i % 4 !== 0) continue;
      const patched = await fetch(`${service}/care-plans/${body.id}/goals/g1`, {
        method: 'PATCH',
        headers: { 'content-type': 'application/json', 'if-match': created.headers.get('etag') },
        body: JSON.stringify({ achievementStatus: 'improving' }),
      });
      await patched.arrayBuffer();
      if (patched.status !== 200) throw new Error(`plan ${i}, PATCH: ${patched.status}`);
    }
  };
  await Promise.all(Array.from({ length: CONNECTIONS }, worker));
}

async function runReport(service, pid, measure) {
  let maxRssKb = rssKb(pid);
  const sampler = setInterval(() => {
    maxRssKb = Math.max(maxRssKb, rssKb(pid));
  }, 50);
  const t0 = performance.now();
  const answer = await fetch(
    `${service}/measures/${measure}/report?periodStart=${day(-365)}&periodEnd=${day(0)}`,
  );
  const body = await answer.json();
  const ms = performance.now() - t0;
  clearInterval(sampler);
  if (answer.status !== 200) throw new Error(`${measure}: ${answer.status} ${JSON.stringify(body)}`);
  return {
    measure,
    ms: Math.round(ms),
    maxRssMb: Math.round(maxRssKb / 1024),
    ...body.populations,
    score: body.score,
  };
}

async function main() {
  const fhirPort = await freePort();
  const fhir = start('measures-fhir', join(DIST, 'src/fhir/embedded/main.js'), {
    EMBEDDED_FHIR_PORT: String(fhirPort),
    EMBEDDED_FHIR_HOST: HOST,
    LOG_LEVEL: 'warn',
  });
  const fhirBase = `http://${HOST}:${fhirPort}/fhir`;
  await waitFor200(`${fhirBase}/metadata`, fhir);
  const port = await freePort();
  const serviceProcess = start('measures-service', join(DIST, 'src/server.js'), {
    PORT: String(port),
    HOST,
    FHIR_BASE_URL: fhirBase,
    AUTH_MODE: 'none',
    LOG_LEVEL: 'warn',
  });
  const service = `http://${HOST}:${port}`;
  await waitFor200(`${service}/health/ready`, serviceProcess);

  const rows = [];
  let created = 0;
  for (const size of SIZES) {
    const t0 = performance.now();
    await createPlans(service, created, size);
    const loadS = (performance.now() - t0) / 1000;
    console.log(
      `measures bench: ${size} plans on the FHIR server (${size - created} created in ${loadS.toFixed(0)} s)`,
    );
    created = size;
    for (const measure of MEASURES) {
      const row = { plans: size, ...(await runReport(service, serviceProcess.pid, measure)) };
      console.log(
        `  ${measure}: ${row.ms} ms, max RSS ${row.maxRssMb} MB, IP ${row.initialPopulation}, score ${row.score}`,
      );
      rows.push(row);
    }
  }
  const peakRssMb = Math.round(rssKb(serviceProcess.pid, 'VmHWM') / 1024);
  console.log('');
  console.log('| plans | measure | ms | max RSS MB | initial pop. | numerator | score |');
  console.log('| ---: | --- | ---: | ---: | ---: | ---: | ---: |');
  for (const r of rows)
    console.log(
      `| ${r.plans} | ${r.measure} | ${r.ms} | ${r.maxRssMb} | ${r.initialPopulation} | ${r.numerator} | ${r.score?.toFixed(3) ?? '-'} |`,
    );
  console.log(`service peak RSS (VmHWM, loading included): ${peakRssMb} MB`);
  mkdirSync(RESULTS, { recursive: true });
  writeFileSync(
    join(RESULTS, 'measures.json'),
    `${JSON.stringify({ finishedAt: new Date().toISOString(), node: process.version, rows, peakRssMb }, null, 2)}\n`,
  );
}

try {
  await main();
} catch (error) {
  console.error(`measures bench FAILED: ${error?.stack ?? error}`);
  process.exitCode = 1;
} finally {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
}
