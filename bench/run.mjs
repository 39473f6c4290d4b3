// npm run bench: the service measured against its limits, side by side, in one run (issues 6 and 18).
//
// Phases (HTTP phases: autocannon in this process, 16 connections, loopback; a fresh process for the server
// under test in every phase, and a fresh embedded FHIR server process, or with BENCH_FHIR=hapi a fresh real HAPI
// FHIR JPA server for the direct and service phases):
//   1 floor    bare Fastify route, no validation: parse the JSON body, answer 201 with it
//   2 direct   tiny server pushing the precomputed transaction Bundle of the plan with fhir-kit-client
//   3 service  POST /care-plans, `node dist/src/server.js` with FHIR_BASE_URL = the FHIR server
//   4 toFhir   POST /care-plans/$to-fhir on the service (compared with phase 1)
//   5 micro    map + validate without HTTP (bench/micro.mjs, one thread pinned to one core)
// plus readyMs (spawn -> GET /health/ready 200, FHIR server already up; median of READY_SAMPLES), peakRssMb
// (VmHWM of the service process at the end of phase 3), the CPU time per create of the service and the direct
// push (createCpuVsDirect), the p50 latency of one create at one connection (createLatencyOverheadMs), and the
// bytes the servers allocate per request (bench/lib/alloc-probe.mjs).
//
// Modules: bench/lib/processes.mjs (children), fhir-server.mjs (embedded / HAPI, counts), load.mjs
// (autocannon, CPU, allocation), phases.mjs, report.mjs (tables, verdicts).
//
// Any non-2xx answer, socket error or timeout, in any run, or a CarePlan count that differs from the 201s
// answered, fails the run (exit 1) after the table is printed.
//
// Env: BENCH_DURATION_S (10), BENCH_WARMUP_S (3), BENCH_WARMUP_REQUESTS (2000), BENCH_CONNECTIONS (16), BENCH_POOL_SIZE (128),
//      BENCH_PLAN_SIZE (medium), BENCH_LOG_LEVEL (info), BENCH_READY_SAMPLES (3),
//      BENCH_PHASES (default floor,direct,service,toFhir,micro; also measures), BENCH_FHIR (embedded | hapi),
//      BENCH_CPU_PROF=1, BENCH_ENFORCE_TARGETS=1, BENCH_SERVICE_NODE_ARGS, BENCH_DIST, BENCH_AUTH (jwt | none),
//      BENCH_JWT_ALG (RS256), BENCH_INJECT_INVALID=1, BENCH_PIN=1. See bench/README.md.
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import os from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { seedReferences, startHapi } from './lib/fhir-server.mjs';
import { phaseRunner } from './lib/phases.mjs';
import { HOST, hasTaskset, installExitHandlers, stopAll } from './lib/processes.mjs';
import { fmt, microTable, phaseTable, ratio, summaryTable, verdict } from './lib/report.mjs';
import { generatePool, SIZES } from './plans.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = join(HERE, '..');
const RESULTS = join(HERE, 'results');
const env = process.env;
const FHIR = env.BENCH_FHIR || 'embedded';
const AUTH = env.BENCH_AUTH || 'jwt';
const JWT_ALG = env.BENCH_JWT_ALG || 'RS256';
const PLAN_SIZE = env.BENCH_PLAN_SIZE || 'medium';
const PHASES = (env.BENCH_PHASES || 'floor,direct,service,toFhir,micro').split(',').map((s) => s.trim());
const ENFORCE_TARGETS = env.BENCH_ENFORCE_TARGETS === '1';
const LOG_LEVEL = env.BENCH_LOG_LEVEL || 'info';

const TARGETS = {
  createCpuVsDirect: { max: 1.5, stretch: 1.2 },
  serviceVsDirectThroughput: FHIR === 'hapi' ? { min: 0.97, stretch: 0.99 } : { min: 0.9, stretch: 0.97 },
  createLatencyOverheadMs: { max: 3, stretch: 1.5 },
  toFhirVsBareThroughput: { min: 0.3, stretch: 0.45 },
  mapAndValidatePlansPerSecond: { min: 14_000, stretch: 20_000 },
  readyMs: { max: 500, stretch: 300 },
  peakRssMb: { max: 128, stretch: 100 },
};

if (!SIZES[PLAN_SIZE]) throw new Error(`BENCH_PLAN_SIZE must be one of ${Object.keys(SIZES).join(', ')}`);
if (!['embedded', 'hapi'].includes(FHIR)) throw new Error('BENCH_FHIR must be embedded or hapi');
installExitHandlers((FHIR === 'hapi' ? 15 : 6) * 60_000);

// Auth (production configuration): the service verifies a JWT on every request against a JWKS served here.
const ISSUER = 'https://issuer.bench.invalid';
const AUDIENCE = 'https://shared-care-plans.bench.invalid';
const CLIENT_ID = 'bench-client';
let bearer;
let jwksUrl;
async function startJwks() {
  const { publicKey, privateKey } = await generateKeyPair(JWT_ALG, { extractable: true });
  const jwk = { ...(await exportJWK(publicKey)), kid: 'bench-key', alg: JWT_ALG, use: 'sig' };
  const body = JSON.stringify({ keys: [jwk] });
  const server = createHttpServer((_request, response) => {
    response.writeHead(200, { 'content-type': 'application/json' }).end(body);
  });
  await new Promise((done) => server.listen(0, HOST, done));
  server.unref();
  jwksUrl = `http://${HOST}:${server.address().port}/jwks.json`;
  // A system-level SMART v2 token of one backend client, valid for the whole run.
  bearer = await new SignJWT({ scope: 'system/CarePlan.cruds', client_id: CLIENT_ID })
    .setProtectedHeader({ alg: JWT_ALG, kid: 'bench-key', typ: 'JWT' })
    .setIssuer(ISSUER)
    .setAudience(AUDIENCE)
    .setSubject(CLIENT_ID)
    .setIssuedAt()
    .setExpirationTime('2h')
    .sign(privateKey);
}
const authSummary = () => (AUTH === 'jwt' ? `auth JWT (${JWT_ALG}, verified per request)` : 'auth none');

// Load: requests rotate through a pool of different generated plans.
const POOL_SIZE = Number(env.BENCH_POOL_SIZE || 128);
const pool = generatePool(PLAN_SIZE, POOL_SIZE);
const bodies = pool.map((plan) => JSON.stringify(plan));
// BENCH_INJECT_INVALID=1: one plan of the pool is invalid (a self-test: the run must then fail with exit 1).
if (env.BENCH_INJECT_INVALID === '1')
  bodies[bodies.length - 1] = JSON.stringify({ ...pool[pool.length - 1], status: 'bogus' });
if (new Set(bodies).size !== bodies.length) throw new Error('the plan pool holds duplicates');

const ctx = {
  root: ROOT,
  logs: join(RESULTS, 'logs'),
  profileDir: join(RESULTS, 'profiles'),
  cpuProfiles: env.BENCH_CPU_PROF === '1',
  allocProfiles: env.BENCH_ALLOC_PROF === '1',
  // BENCH_DIST: the build to run (default dist/); it must live inside the repository so that node_modules resolves.
  dist: resolve(ROOT, env.BENCH_DIST || 'dist'),
  failures: [],
  bodies,
  // Every phase sends the token (the floor and the direct push ignore it): the same bytes on the wire.
  authHeader: () => (AUTH === 'jwt' ? { authorization: `Bearer ${bearer}` } : {}),
  authEnv: () =>
    AUTH === 'jwt'
      ? { AUTH_MODE: 'jwt', AUTH_JWKS_URL: jwksUrl, AUTH_ISSUER: ISSUER, AUTH_AUDIENCE: AUDIENCE }
      : { AUTH_MODE: 'none' },
  clientId: CLIENT_ID,
  connections: Number(env.BENCH_CONNECTIONS || 16),
  warmUpS: Number(env.BENCH_WARMUP_S || 3),
  warmUpRequests: Number(env.BENCH_WARMUP_REQUESTS ?? 2000),
  durationS: Number(env.BENCH_DURATION_S || 10),
  poolSize: POOL_SIZE,
  planSize: PLAN_SIZE,
  logLevel: LOG_LEVEL,
  readySamples: Math.max(1, Number(env.BENCH_READY_SAMPLES || 3)),
  serviceNodeArgs: (env.BENCH_SERVICE_NODE_ARGS || '').split(/\s+/).filter(Boolean),
  cores: os.cpus().length,
  // BENCH_PIN=1: the server under test on core 0, everything else (this process, autocannon, the FHIR server) on
  // core 1, so that the FHIR server never deschedules the server under test and its profile shows CPU time only.
  pinServer: env.BENCH_PIN === '1' ? 0 : undefined,
  startHapi: undefined,
  hapiStarts: [],
};
mkdirSync(ctx.logs, { recursive: true });
if (ctx.pinServer !== undefined) {
  if (ctx.cores < 2 || !hasTaskset())
    throw new Error('BENCH_PIN=1 needs 2 cores and taskset (apt-get install util-linux)');
  // All of this process's threads, and so every child that is not pinned itself, to core 1.
  execFileSync('taskset', ['-a', '-p', '-c', '1', String(process.pid)], { stdio: 'ignore' });
}
if (ctx.cpuProfiles || ctx.allocProfiles) mkdirSync(ctx.profileDir, { recursive: true });
const { failures } = ctx;

async function main() {
  const started = performance.now();
  const machine = {
    cpu: os.cpus()[0]?.model,
    cores: ctx.cores,
    memoryGb: Number((os.totalmem() / 2 ** 30).toFixed(1)),
    node: process.version,
    platform: `${os.platform()} ${os.release()}`,
    hostname: os.hostname(),
  };
  const planBytesAvg = Math.round(bodies.reduce((s, b) => s + b.length, 0) / bodies.length);
  await startJwks();
  console.log(
    `bench: ${machine.cores} x ${machine.cpu}, Node ${machine.node}; ${ctx.connections} connections, ${ctx.warmUpS} s warm-up (at least ${ctx.warmUpRequests} requests) + ~${ctx.durationS} s per phase; ` +
      `pool of ${POOL_SIZE} ${PLAN_SIZE} plans (~${planBytesAvg} B each); FHIR server ${FHIR}; service LOG_LEVEL=${LOG_LEVEL}, ${authSummary()}, rate limit default (60,000/min per client)`,
  );
  if (FHIR === 'hapi') {
    // A fresh HAPI for each push phase: HAPI slows down as its database fills, so a shared one would favour
    // whichever phase runs first (bench/README.md, "BENCH_FHIR=hapi").
    ctx.startHapi = async (name) => {
      const hapi = await startHapi(ctx);
      const seeded = await seedReferences(hapi.baseUrl, pool);
      ctx.hapiStarts.push({ phase: name, startMs: hapi.startMs, seeded });
      return hapi;
    };
  }
  const run = phaseRunner(ctx);
  const phases = {};
  for (const name of ['floor', 'direct', 'service', 'toFhir']) {
    if (!PHASES.includes(name)) continue;
    process.stdout.write(`bench: phase ${name} ... `);
    try {
      phases[name] = await run[name]();
    } catch (error) {
      // A phase that cannot run fails the benchmark, but the others still run and the table is printed.
      failures.push(`${name}: ${error?.stack ?? error}`);
      console.log('FAILED');
      continue;
    }
    const p = phases[name];
    console.log(
      `${fmt(p.requestsPerSecond)} req/s, p50 ${p.latencyMs.p50} ms, p99 ${p.latencyMs.p99} ms, non-2xx ${p.non2xx}, errors ${p.errors}` +
        (p.oneConnection ? `; 1 connection: p50 ${p.oneConnection.latencyMs.p50} ms` : ''),
    );
  }
  let micro;
  if (PHASES.includes('micro')) {
    process.stdout.write('bench: phase micro (map + validate, no HTTP) ... ');
    try {
      micro = await run.micro();
      console.log(
        `${fmt(micro[PLAN_SIZE]?.toFhir.perSecond ?? micro.medium.toFhir.perSecond)} ${PLAN_SIZE} plans/s`,
      );
    } catch (error) {
      failures.push(`micro: ${error?.stack ?? error}`);
    }
  }
  // The measures phase (issue 17; not in the default phases): bench/measures.mjs, which npm run bench:measures
  // also runs alone; its table goes to stdout, its figures to bench/results/measures.json.
  if (PHASES.includes('measures')) {
    console.log('bench: phase measures (bench/measures.mjs) ...');
    const child = spawn(process.execPath, [join(HERE, 'measures.mjs')], {
      stdio: 'inherit',
      env: { ...process.env, BENCH_DIST: ctx.dist },
    });
    const code = await new Promise((done) => child.on('exit', done));
    if (code !== 0) failures.push(`measures: bench/measures.mjs exited ${code}`);
    else phases.measures = JSON.parse(readFileSync(join(RESULTS, 'measures.json'), 'utf8'));
  }

  const rps = (name) => phases[name]?.requestsPerSecond;
  const cpuPer = (name, who = 'server') => phases[name]?.cpuUsPerRequest?.[who];
  const p50At1 = (name) => phases[name]?.oneConnection?.latencyMs.p50;
  const meanAt1 = (name) => phases[name]?.oneConnection?.latencyMs.mean;
  const readySamples = phases.service?.readySamplesMs;
  const summary = {
    createCpuVsDirect: ratio(cpuPer('service'), cpuPer('direct')),
    serviceVsDirectThroughput: ratio(rps('service'), rps('direct')),
    createLatencyOverheadMs:
      p50At1('service') !== undefined && p50At1('direct') !== undefined
        ? Number((p50At1('service') - p50At1('direct')).toFixed(2))
        : undefined,
    toFhirVsBareThroughput: ratio(rps('toFhir'), rps('floor')),
    mapAndValidatePlansPerSecond: micro?.[PLAN_SIZE]?.toFhir.perSecond,
    readyMs: readySamples
      ? [...readySamples].sort((a, b) => a - b)[Math.floor(readySamples.length / 2)]
      : phases.toFhir?.readyMs,
    peakRssMb: phases.service?.vmHwmAfterLoadMb,
  };
  // Supplementary, robust to other processes on the machine: CPU time and allocation per request.
  const supplementary = {
    // The FHIR server's CPU per create in the service phase / in the direct phase: the same work, so a gauge of
    // how far the machine's speed moved between the two phases (1 = not at all; bench/README.md, "Drift").
    fhirCpuServiceVsDirectPhase: ratio(cpuPer('service', 'fhir'), cpuPer('direct', 'fhir')),
    toFhirVsBareServerCpu: ratio(cpuPer('floor'), cpuPer('toFhir')),
    serverCpuUsPerRequest: Object.fromEntries(Object.keys(phases).map((n) => [n, cpuPer(n)])),
    fhirServerCpuUsPerRequest: Object.fromEntries(
      ['direct', 'service'].filter((n) => phases[n]).map((n) => [n, cpuPer(n, 'fhir')]),
    ),
    allocatedBytesPerRequest: Object.fromEntries(
      Object.keys(phases)
        .filter((n) => phases[n].allocation?.server)
        .map((n) => [n, phases[n].allocation.server.bytesPerRequest]),
    ),
    createLatencyOverheadMeanMs:
      meanAt1('service') !== undefined && meanAt1('direct') !== undefined
        ? Number((meanAt1('service') - meanAt1('direct')).toFixed(2))
        : undefined,
    // The server's CPU per request split into its main thread and the helper threads (V8's GC and optimising
    // compiler, libuv's pool).
    serverThreadCpuUsPerRequest: Object.fromEntries(
      Object.keys(phases)
        .filter((n) => phases[n].threadUsPerRequest?.server)
        .map((n) => [n, phases[n].threadUsPerRequest.server]),
    ),
    foreignCpuPercent: Object.fromEntries(Object.keys(phases).map((n) => [n, phases[n].cpuPercent?.foreign])),
  };

  console.log('');
  console.log(phaseTable(phases, ctx.connections));
  if (micro) {
    console.log('');
    console.log(microTable(micro, Object.keys(SIZES)));
  }
  console.log('');
  console.log(summaryTable(summary, TARGETS));
  const s = phases.service;
  if (s) {
    console.log('');
    console.log(
      `readyMs samples ${JSON.stringify(s.readySamplesMs)}; service RSS: VmHWM ${s.vmHwmAfterLoadMb} MB, max sampled VmRSS under load ${s.rssMaxSampledMb} MB; ` +
        `CarePlans created during the measured runs ${s.carePlansCreated} = 201s ${s.created201s}: ${s.countMatches201s ? 'OK' : 'MISMATCH'}`,
    );
  }
  const list = (o, digits = 0) =>
    Object.entries(o)
      .map(([n, v]) => `${n} ${fmt(v, digits)}`)
      .join(', ');
  console.log(
    `server CPU per request (us): ${list(supplementary.serverCpuUsPerRequest)}; FHIR server CPU per request (us): ${list(supplementary.fhirServerCpuUsPerRequest)}` +
      (supplementary.fhirCpuServiceVsDirectPhase
        ? ` (service phase / direct phase ${supplementary.fhirCpuServiceVsDirectPhase}: 1 when the FHIR server did the same work at the same speed in both)`
        : ''),
  );
  console.log(
    `server CPU per request, main thread + helper threads (us): ${Object.entries(
      supplementary.serverThreadCpuUsPerRequest,
    )
      .map(([n, t]) => `${n} ${fmt(t.main)} + ${fmt(t.helpers)}`)
      .join(', ')}`,
  );
  console.log(
    `allocated per request (KB): ${list(Object.fromEntries(Object.entries(supplementary.allocatedBytesPerRequest).map(([n, b]) => [n, b / 1024])), 1)}; ` +
      `1-connection mean latency overhead ${fmt(supplementary.createLatencyOverheadMeanMs, 2)} ms`,
  );
  console.log(
    `service: LOG_LEVEL=${LOG_LEVEL}, ${authSummary()}, FHIR server ${FHIR}; machine: ${machine.cores} x ${machine.cpu}, ${machine.memoryGb} GB, Node ${machine.node}`,
  );

  const misses = Object.entries(summary)
    .filter(([key, value]) => verdict(TARGETS, key, value) === 'MISS')
    .map(([key]) => key);
  const out = {
    ...summary,
    targets: TARGETS,
    verdicts: Object.fromEntries(Object.entries(summary).map(([k, v]) => [k, verdict(TARGETS, k, v)])),
    supplementary,
    ok: failures.length === 0,
    failures,
    finishedAt: new Date().toISOString(),
    runSeconds: Number(((performance.now() - started) / 1000).toFixed(1)),
    machine,
    config: {
      fhirServer:
        FHIR === 'hapi'
          ? 'HAPI FHIR JPA server (test/hapi, R4, H2 in memory), a fresh one for each of the direct and service phases; the other phases: the embedded FHIR server'
          : `embedded FHIR server (Medplum fhir-router, in-memory, validating, transactional) as its own process: node ${relative(ROOT, ctx.dist)}/src/embedded-fhir/main.js; a fresh one per phase`,
      connections: ctx.connections,
      warmUpS: ctx.warmUpS,
      warmUpRequests: ctx.warmUpRequests,
      targetDurationS: ctx.durationS,
      oneConnectionRequests: 200,
      poolSize: POOL_SIZE,
      planSize: PLAN_SIZE,
      planShape: SIZES[PLAN_SIZE],
      planBytesAvg,
      service: {
        command: `node ${relative(ROOT, ctx.dist)}/src/server.js`,
        NODE_ENV: 'production',
        LOG_LEVEL,
        auth: authSummary(),
        rateLimit: 'the default: RATE_LIMIT_MAX=60000 per RATE_LIMIT_WINDOW_MS=60000 per client',
        nodeArgs: ctx.serviceNodeArgs.join(' ') || '(none)',
      },
      cpuProfiles: ctx.cpuProfiles,
      hapiStarts: ctx.hapiStarts,
    },
    phases,
    micro,
  };
  mkdirSync(RESULTS, { recursive: true });
  // latest.json is the last run; latest-<embedded|hapi>.json the last run against each FHIR server.
  for (const file of ['latest.json', `latest-${FHIR}.json`])
    writeFileSync(join(RESULTS, file), `${JSON.stringify(out, null, 2)}\n`);
  console.log(`\nwrote bench/results/latest.json and latest-${FHIR}.json (${out.runSeconds} s)`);

  if (failures.length) {
    console.error(`\nbench FAILED:\n${failures.map((f) => `  - ${f}`).join('\n')}`);
    for (const p of Object.values(phases)) {
      if (p.failureSamples?.length)
        console.error(
          `  ${p.name}: sample answers: ${JSON.stringify(p.failureSamples, null, 1).slice(0, 2000)}`,
        );
    }
    process.exitCode = 1;
  } else if (misses.length && ENFORCE_TARGETS) {
    console.error(`\nbench: targets missed: ${misses.join(', ')}`);
    process.exitCode = 1;
  }
}

try {
  await main();
} finally {
  await stopAll(ctx.cpuProfiles ? 8_000 : 2_000);
}
