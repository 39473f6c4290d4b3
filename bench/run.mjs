// npm run bench: the service measured against its limits, side by side, in one run (issue 6).
//
// Phases (HTTP phases: autocannon in this process, 16 connections, loopback; every HTTP phase gets a FRESH
// embedded FHIR server process and a fresh server process under test):
//   1 floor    bare Fastify route, no validation: parse the JSON body, answer 201 with it
//   2 direct   tiny server pushing the precomputed transaction Bundle of the plan with fhir-kit-client
//   3 service  POST /care-plans, `node dist/src/server.js` with FHIR_BASE_URL = the FHIR server process
//   4 toFhir   POST /care-plans/$to-fhir on the service (compared with phase 1)
//   5 micro    map + validate without HTTP (bench/micro.mjs, one thread pinned to one core)
// plus readyMs (spawn -> GET /health/ready 200, external FHIR server already up; median of READY_SAMPLES)
// and peakRssMb (VmHWM of the service process at the end of phase 3; VmRSS is also sampled under load).
//
// Every HTTP phase: warm-up (WARMUP_S seconds, fixed duration), then the measured run of a fixed number of
// requests, calibrated from the warm-up throughput to last about DURATION_S seconds. A fixed number (not a
// fixed duration) means autocannon never aborts a request in flight when it stops, so that every request the
// service answered is counted and the CarePlan count on the FHIR server can be checked for equality.
// Requests rotate through a pool of POOL_SIZE different generated plans (bench/plans.mjs).
//
// Any non-2xx answer, socket error or timeout, in the warm-up or the measured run, or a CarePlan count that
// differs from the 201s answered, fails the run (exit 1) after the table is printed.
//
// Env: BENCH_DURATION_S (10), BENCH_WARMUP_S (3), BENCH_CONNECTIONS (16), BENCH_POOL_SIZE (128),
//      BENCH_PLAN_SIZE (medium), BENCH_LOG_LEVEL (info: the service's default, i.e. production),
//      BENCH_READY_SAMPLES (3), BENCH_PHASES (e.g. "floor,toFhir,micro"; default all but measures),
//      BENCH_CPU_PROF=1 (write .cpuprofile files of the servers under test and of the micro-benchmark to
//      bench/results/profiles/; summarise them with `node bench/profile-summary.mjs <file>`),
//      BENCH_ENFORCE_TARGETS=1 (also exit 1 when a target is missed),
//      BENCH_SERVICE_NODE_ARGS (node flags for the service process only, e.g. --max-semi-space-size=4),
//      BENCH_DIST (the build to run, default dist/),
//      BENCH_AUTH (jwt: production auth, AUTH_MODE=jwt against a JWKS this process serves, every request with a
//      Bearer token; none: AUTH_MODE=none), BENCH_JWT_ALG (RS256; any asymmetric alg jose signs, e.g. ES256),
//      BENCH_INJECT_INVALID=1 (self-test of the failure path: one invalid plan in the pool, the run must exit 1).
import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createServer } from 'node:net';
import os from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { generatePool, SIZES } from './plans.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = join(HERE, '..');
const RESULTS = join(HERE, 'results');
const LOGS = join(RESULTS, 'logs');
const PROFILES = join(RESULTS, 'profiles');

const env = process.env;
const DURATION_S = Number(env.BENCH_DURATION_S || 10);
const WARMUP_S = Number(env.BENCH_WARMUP_S || 3);
const CONNECTIONS = Number(env.BENCH_CONNECTIONS || 16);
const POOL_SIZE = Number(env.BENCH_POOL_SIZE || 128);
const PLAN_SIZE = env.BENCH_PLAN_SIZE || 'medium';
const LOG_LEVEL = env.BENCH_LOG_LEVEL || 'info';
const READY_SAMPLES = Math.max(1, Number(env.BENCH_READY_SAMPLES || 3));
const CPU_PROF = env.BENCH_CPU_PROF === '1';
const AUTH = env.BENCH_AUTH || 'jwt';
const JWT_ALG = env.BENCH_JWT_ALG || 'RS256';
const SERVICE_NODE_ARGS = (env.BENCH_SERVICE_NODE_ARGS || '').split(/\s+/).filter(Boolean);
const ENFORCE_TARGETS = env.BENCH_ENFORCE_TARGETS === '1';
const PHASES = (env.BENCH_PHASES || 'floor,direct,service,toFhir,micro').split(',').map((s) => s.trim());
const HOST = '127.0.0.1';
// BENCH_DIST: the build to run (default dist/). A copy keeps a run consistent while others rebuild dist/;
// it must live inside the repository so that node_modules resolves.
const DIST = resolve(ROOT, env.BENCH_DIST || 'dist');
const RUN_TIMEOUT_MS = 6 * 60_000;

const TARGETS = {
  serviceVsDirectThroughput: { min: 0.9, stretch: 0.97 },
  toFhirVsBareThroughput: { min: 0.45, stretch: 0.6 },
  mapAndValidatePlansPerSecond: { min: 15_000, stretch: 20_000 },
  readyMs: { max: 1_000 },
  peakRssMb: { max: 150 },
};

if (!SIZES[PLAN_SIZE]) throw new Error(`BENCH_PLAN_SIZE must be one of ${Object.keys(SIZES).join(', ')}`);
mkdirSync(LOGS, { recursive: true });
if (CPU_PROF) mkdirSync(PROFILES, { recursive: true });

// ---------------------------------------------------------------------------------------------------------
// Child processes: every one is tracked and killed on any exit path.

const children = new Set();

function killAll(signal = 'SIGKILL') {
  for (const child of children) {
    try {
      child.kill(signal);
    } catch {}
  }
}
process.on('exit', () => killAll('SIGKILL'));
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(signal, () => {
    process.stderr.write(`\nbench: ${signal}: killing child processes\n`);
    killAll('SIGKILL');
    process.exit(130);
  });
}
process.on('uncaughtException', (error) => {
  process.stderr.write(`\nbench FAILED: ${error?.stack ?? error}\n`);
  killAll('SIGKILL');
  process.exit(1);
});
process.on('unhandledRejection', (error) => {
  process.stderr.write(`\nbench FAILED: ${error?.stack ?? error}\n`);
  killAll('SIGKILL');
  process.exit(1);
});
setTimeout(() => {
  process.stderr.write(`\nbench FAILED: the run took longer than ${RUN_TIMEOUT_MS / 1000} s\n`);
  killAll('SIGKILL');
  process.exit(1);
}, RUN_TIMEOUT_MS).unref();

/** Spawns `node <args>` with stdout/stderr going to a log file (never a pipe this process must drain). */
function spawnNode(name, args, extraEnv, { profile = false, pin, nodeArgs: extraNodeArgs = [] } = {}) {
  const logFile = join(LOGS, `${name}.log`);
  const fd = openSync(logFile, 'w');
  const nodeArgs = [
    ...extraNodeArgs,
    ...(profile && CPU_PROF
      ? ['--cpu-prof', `--cpu-prof-dir=${PROFILES}`, `--cpu-prof-name=${name}.cpuprofile`]
      : []),
  ];
  const command = pin !== undefined && hasTaskset() ? 'taskset' : process.execPath;
  const commandArgs =
    command === 'taskset'
      ? ['-c', String(pin), process.execPath, ...nodeArgs, ...args]
      : [...nodeArgs, ...args];
  const child = spawn(command, commandArgs, {
    cwd: ROOT,
    env: { ...process.env, NODE_ENV: 'production', ...extraEnv },
    stdio: ['ignore', fd, fd],
  });
  closeSync(fd);
  child.logFile = logFile;
  child.exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

let tasksetChecked;
function hasTaskset() {
  if (tasksetChecked === undefined) {
    try {
      tasksetChecked = readFileSync('/usr/bin/taskset').length > 0;
    } catch {
      tasksetChecked = false;
    }
  }
  return tasksetChecked;
}

/** Stops a child: SIGTERM (lets --cpu-prof write its profile), then SIGKILL after a grace period. */
async function stop(child, graceMs = CPU_PROF ? 8_000 : 2_000) {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await child.exited;
  clearTimeout(timer);
}

function logTail(child, lines = 15) {
  try {
    return readFileSync(child.logFile, 'utf8').trim().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, HOST, () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls url until it answers 200; fails when the child exits or the time is up. */
async function waitFor200(url, child, timeoutMs, intervalMs = 5) {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(
        `${child.spawnargs.join(' ')} exited (${child.exitCode ?? child.signalCode}) before ${url} answered:\n${logTail(child)}`,
      );
    }
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(2_000) });
      await response.arrayBuffer();
      if (response.status === 200) return;
    } catch {}
    await sleep(intervalMs);
  }
  throw new Error(`${url} did not answer 200 within ${timeoutMs} ms:\n${logTail(child)}`);
}

async function startFhirServer(name) {
  const port = await freePort();
  const child = spawnNode(`${name}-fhir`, [join(DIST, 'src/embedded-fhir/main.js')], {
    EMBEDDED_FHIR_PORT: String(port),
    EMBEDDED_FHIR_HOST: HOST,
    LOG_LEVEL: 'warn',
  });
  const baseUrl = `http://${HOST}:${port}/fhir`;
  await waitFor200(`${baseUrl}/metadata`, child, 30_000, 20);
  return { child, baseUrl };
}

async function startService(name, fhirBaseUrl, { profile = false } = {}) {
  const port = await freePort();
  const t0 = performance.now();
  const child = spawnNode(
    name,
    [join(DIST, 'src/server.js')],
    {
      PORT: String(port),
      HOST,
      FHIR_BASE_URL: fhirBaseUrl,
      LOG_LEVEL,
      LOG_FORMAT: 'json',
      ...authEnv(),
    },
    { profile, nodeArgs: SERVICE_NODE_ARGS },
  );
  await waitFor200(`http://${HOST}:${port}/health/ready`, child, 30_000, 5);
  const readyMs = performance.now() - t0;
  return { child, url: `http://${HOST}:${port}`, readyMs };
}

async function startHelper(name, script, extraEnv) {
  const port = await freePort();
  const child = spawnNode(name, [script], { PORT: String(port), HOST, ...extraEnv }, { profile: true });
  await waitFor200(`http://${HOST}:${port}/health/ready`, child, 30_000, 10);
  return { child, url: `http://${HOST}:${port}` };
}

/** The number of resources of a type on the FHIR server. */
async function countOnServer(baseUrl, resourceType) {
  const response = await fetch(`${baseUrl}/${resourceType}?_summary=count`, {
    headers: { accept: 'application/fhir+json' },
  });
  const body = await response.json();
  if (response.status !== 200 || typeof body.total !== 'number') {
    throw new Error(
      `counting ${resourceType} on ${baseUrl} failed: ${response.status} ${JSON.stringify(body).slice(0, 300)}`,
    );
  }
  return body.total;
}

/** Waits until the count stops moving (requests aborted at the end of the warm-up may still land). */
async function settledCount(baseUrl, resourceType) {
  let last = await countOnServer(baseUrl, resourceType);
  for (let stable = 0; stable < 3; ) {
    await sleep(150);
    const now = await countOnServer(baseUrl, resourceType);
    stable = now === last ? stable + 1 : 0;
    last = now;
  }
  return last;
}

// ---------------------------------------------------------------------------------------------------------
// Auth (production configuration): the service verifies a JWT on every request against the JWKS served here.

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
  await new Promise((resolve) => server.listen(0, HOST, resolve));
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

function authEnv() {
  return AUTH === 'jwt'
    ? { AUTH_MODE: 'jwt', AUTH_JWKS_URL: jwksUrl, AUTH_ISSUER: ISSUER, AUTH_AUDIENCE: AUDIENCE }
    : { AUTH_MODE: 'none' };
}

// ---------------------------------------------------------------------------------------------------------
// Load: autocannon, bodies rotating through the pool.

const pool = generatePool(PLAN_SIZE, POOL_SIZE);
const bodies = pool.map((plan) => JSON.stringify(plan));
// BENCH_INJECT_INVALID=1: one plan of the pool is invalid (a self-test: the run must then fail with exit 1).
if (env.BENCH_INJECT_INVALID === '1')
  bodies[bodies.length - 1] = JSON.stringify({ ...pool[pool.length - 1], status: 'bogus' });
if (new Set(bodies).size !== bodies.length) throw new Error('the plan pool holds duplicates');

/** Every phase sends the token (the floor and the direct push ignore it): the same bytes on the wire. */
const authHeader = () => (AUTH === 'jwt' ? { authorization: `Bearer ${bearer}` } : {});

function load(url, path, { amount, duration }) {
  let next = 0;
  const options = {
    url,
    connections: CONNECTIONS,
    pipelining: 1,
    timeout: 30,
    ...(amount ? { amount } : { duration }),
    requests: [
      {
        method: 'POST',
        path,
        setupRequest: (request) => {
          const index = next++ % bodies.length;
          request.headers = {
            'content-type': 'application/json',
            'x-bench-plan': String(index),
            ...authHeader(),
          };
          request.body = bodies[index];
          return request;
        },
      },
    ],
  };
  return autocannon(options);
}

const CLOCK_TICKS = 100; // sysconf(_SC_CLK_TCK) on Linux

/** CPU seconds (user + system) a process has used so far, from /proc/<pid>/stat. */
function cpuSeconds(pid) {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS; // utime + stime
  } catch {
    return Number.NaN;
  }
}

/** Kernel (system) CPU seconds of a process so far. */
function systemCpuSeconds(pid) {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return Number(fields[12]) / CLOCK_TICKS;
  } catch {
    return Number.NaN;
  }
}

/** Busy CPU seconds of the whole machine (all cores), from /proc/stat. */
function machineBusySeconds() {
  try {
    const [, ...fields] = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).map(Number);
    const [user, nice, system, , , irq, softirq, steal] = fields; // idle and iowait are not busy
    return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS;
  } catch {
    return Number.NaN;
  }
}

function memoryKb(pid, field) {
  try {
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(
      readFileSync(`/proc/${pid}/status`, 'utf8'),
    );
    return match ? Number(match[1]) : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

function summarise(result, wallS) {
  const completed = result.requests.total;
  const codes = Object.fromEntries(
    Object.entries(result.statusCodeStats ?? {}).map(([code, { count }]) => [code, count]),
  );
  return {
    requests: completed,
    sent: result.requests.sent,
    durationS: result.duration,
    wallS: Number(wallS.toFixed(2)),
    requestsPerSecond: Number((completed / result.duration).toFixed(1)),
    latencyMs: {
      p50: result.latency.p50,
      p90: result.latency.p90,
      p99: result.latency.p99,
      max: result.latency.max,
      mean: result.latency.average,
    },
    statusCodes: codes,
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    resets: result.resets,
    mbPerSecond: Number((result.throughput.average / 1_048_576).toFixed(2)),
  };
}

/**
 * Warm-up (fixed duration) then a measured run of a fixed number of requests, calibrated to last about
 * DURATION_S. Samples CPU of the watched processes and VmRSS of `rssPid` while the measured run lasts.
 */
async function measure(name, url, path, { watch = {}, rssPid, beforeMeasured } = {}) {
  const warmStart = performance.now();
  const warm = summarise(
    await load(url, path, { duration: WARMUP_S }),
    (performance.now() - warmStart) / 1000,
  );
  const context = (await beforeMeasured?.()) ?? {};
  const amount = Math.max(CONNECTIONS * 20, Math.round(warm.requestsPerSecond * DURATION_S));

  const cpuBefore = Object.fromEntries(Object.entries(watch).map(([k, pid]) => [k, cpuSeconds(pid)]));
  const systemBefore = Object.fromEntries(
    Object.entries(watch).map(([k, pid]) => [k, systemCpuSeconds(pid)]),
  );
  const selfBefore = process.cpuUsage();
  const machineBefore = machineBusySeconds();
  let rssMaxKb = 0;
  const sampler = rssPid
    ? setInterval(() => {
        rssMaxKb = Math.max(rssMaxKb, memoryKb(rssPid, 'VmRSS') || 0);
      }, 100)
    : undefined;
  const start = performance.now();
  const result = await load(url, path, { amount });
  const wallS = (performance.now() - start) / 1000;
  if (sampler) clearInterval(sampler);
  const measured = summarise(result, wallS);
  const self = process.cpuUsage(selfBefore);
  const cpuPercent = Object.fromEntries(
    Object.entries(watch).map(([k, pid]) => [
      k,
      Math.round(((cpuSeconds(pid) - cpuBefore[k]) / wallS) * 100),
    ]),
  );
  cpuPercent.autocannon = Math.round(((self.user + self.system) / 1e6 / wallS) * 100);
  // CPU used by processes that are not part of this benchmark (others sharing the machine): noise.
  const machinePercent = ((machineBusySeconds() - machineBefore) / wallS) * 100;
  const ours = Object.values(cpuPercent).reduce((a, b) => a + b, 0);
  cpuPercent.machine = Math.round(machinePercent);
  cpuPercent.foreign = Math.max(0, Math.round(machinePercent - ours));
  if (cpuPercent.foreign > 15) {
    console.log(
      `\nbench: WARNING: other processes used ~${cpuPercent.foreign}% of a core during ${name}: its figures are noisy`,
    );
  }
  // CPU time per request of each watched process: a figure other work on the machine barely moves.
  const cpuUsPerRequest = Object.fromEntries(
    Object.entries(watch).map(([k, pid]) => [
      k,
      Math.round(((cpuSeconds(pid) - cpuBefore[k]) * 1e6) / measured.requests),
    ]),
  );
  // The part of it spent in the kernel (loopback TCP work is done in the sender's system time).
  const systemUsPerRequest = Object.fromEntries(
    Object.entries(watch).map(([k, pid]) => [
      k,
      Math.round(((systemCpuSeconds(pid) - systemBefore[k]) * 1e6) / measured.requests),
    ]),
  );
  const phase = {
    name,
    path,
    amount,
    warmUp: warm,
    ...measured,
    cpuPercent,
    cpuUsPerRequest,
    systemUsPerRequest,
    ...context,
  };
  if (rssPid) {
    phase.rssMaxSampledMb = Number((rssMaxKb / 1024).toFixed(1));
    phase.vmHwmMb = Number((memoryKb(rssPid, 'VmHWM') / 1024).toFixed(1));
  }
  return phase;
}

// ---------------------------------------------------------------------------------------------------------
// Phases

const failures = [];
const phases = {};

function checkClean(phase) {
  for (const [label, run] of [
    ['warm-up', phase.warmUp],
    ['measured run', phase],
  ]) {
    const bad = run.non2xx + run.errors + run.timeouts;
    if (bad > 0) {
      failures.push(
        `${phase.name} ${label}: ${run.non2xx} non-2xx, ${run.errors} errors, ${run.timeouts} timeouts (status codes ${JSON.stringify(run.statusCodes)})`,
      );
    }
  }
}

/** On failure: send the pool's bodies once by hand and keep the first failed answers, for the report. */
async function sampleFailures(url, path) {
  const samples = [];
  for (let i = 0; i < bodies.length && samples.length < 3; i++) {
    try {
      const response = await fetch(`${url}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-bench-plan': String(i), ...authHeader() },
        body: bodies[i],
      });
      const text = await response.text();
      if (response.status >= 300)
        samples.push({ plan: i, status: response.status, body: text.slice(0, 600) });
    } catch (error) {
      samples.push({ plan: i, error: String(error) });
    }
  }
  return samples;
}

async function phaseFloor() {
  const fhir = await startFhirServer('1-floor');
  const target = await startHelper('1-floor', 'bench/servers/floor.mjs', {});
  try {
    const phase = await measure('floor', target.url, '/care-plans', { watch: { server: target.child.pid } });
    checkClean(phase);
    return phase;
  } finally {
    await stop(target.child);
    await stop(fhir.child);
  }
}

async function phaseDirect() {
  const fhir = await startFhirServer('2-direct');
  const target = await startHelper('2-direct', 'bench/servers/direct.mjs', {
    FHIR_BASE_URL: fhir.baseUrl,
    BENCH_DIST: DIST,
    BENCH_CLIENT_ID: CLIENT_ID,
    PLAN_SIZE,
    POOL_SIZE: String(POOL_SIZE),
  });
  try {
    const phase = await measure('direct', target.url, '/care-plans', {
      watch: { server: target.child.pid, fhir: fhir.child.pid },
      beforeMeasured: async () => ({ carePlansBefore: await settledCount(fhir.baseUrl, 'CarePlan') }),
    });
    checkClean(phase);
    phase.carePlansAfter = await countOnServer(fhir.baseUrl, 'CarePlan');
    phase.carePlansCreated = phase.carePlansAfter - phase.carePlansBefore;
    const created = phase.statusCodes['201'] ?? 0;
    phase.countMatches201s = phase.carePlansCreated === created;
    if (!phase.countMatches201s)
      failures.push(
        `direct: ${phase.carePlansCreated} CarePlans created on the FHIR server, ${created} 201s answered`,
      );
    if (phase.non2xx + phase.errors) phase.failureSamples = await sampleFailures(target.url, '/care-plans');
    return phase;
  } finally {
    await stop(target.child);
    await stop(fhir.child);
  }
}

async function phaseService() {
  const fhir = await startFhirServer('3-service');
  // readyMs: spawn -> /health/ready 200, the FHIR server already up. The last sample stays up for the load.
  const readySamples = [];
  let service;
  for (let i = 0; i < READY_SAMPLES; i++) {
    const last = i === READY_SAMPLES - 1;
    service = await startService(last ? '3-service' : `3-service-ready-${i + 1}`, fhir.baseUrl, {
      profile: last,
    });
    readySamples.push(Math.round(service.readyMs));
    if (!last) await stop(service.child);
  }
  try {
    const phase = await measure('service', service.url, '/care-plans', {
      watch: { server: service.child.pid, fhir: fhir.child.pid },
      rssPid: service.child.pid,
      beforeMeasured: async () => ({ carePlansBefore: await settledCount(fhir.baseUrl, 'CarePlan') }),
    });
    checkClean(phase);
    // Correctness under load: every 201 is one CarePlan on the FHIR server, and nothing else was written.
    phase.carePlansAfter = await countOnServer(fhir.baseUrl, 'CarePlan');
    phase.carePlansCreated = phase.carePlansAfter - phase.carePlansBefore;
    const created = phase.statusCodes['201'] ?? 0;
    phase.countMatches201s = phase.carePlansCreated === created;
    if (!phase.countMatches201s) {
      failures.push(
        `service: ${phase.carePlansCreated} CarePlans created on the FHIR server during the measured run, but ${created} 201s answered`,
      );
    }
    if (phase.non2xx + phase.errors) phase.failureSamples = await sampleFailures(service.url, '/care-plans');
    phase.readySamplesMs = readySamples;
    phase.vmHwmAfterLoadMb = Number((memoryKb(service.child.pid, 'VmHWM') / 1024).toFixed(1));
    return phase;
  } finally {
    await stop(service.child);
    await stop(fhir.child);
  }
}

async function phaseToFhir() {
  const fhir = await startFhirServer('4-tofhir');
  const service = await startService('4-tofhir-service', fhir.baseUrl, { profile: true });
  try {
    const phase = await measure('toFhir', service.url, '/care-plans/$to-fhir', {
      watch: { server: service.child.pid },
      rssPid: service.child.pid,
    });
    checkClean(phase);
    if (phase.non2xx + phase.errors)
      phase.failureSamples = await sampleFailures(service.url, '/care-plans/$to-fhir');
    phase.readyMs = Math.round(service.readyMs);
    return phase;
  } finally {
    await stop(service.child);
    await stop(fhir.child);
  }
}

async function phaseMicro() {
  const child = spawnNode(
    '5-micro',
    ['bench/micro.mjs'],
    { POOL_SIZE: String(POOL_SIZE), BENCH_DIST: DIST },
    { profile: true, pin: 1 % os.cpus().length },
  );
  const { code } = await child.exited;
  const output = readFileSync(child.logFile, 'utf8');
  if (code !== 0) throw new Error(`bench/micro.mjs failed (${code}):\n${output.slice(-2000)}`);
  const line = output
    .trim()
    .split('\n')
    .findLast((l) => l.startsWith('{'));
  return { pinnedToOneCore: hasTaskset(), ...JSON.parse(line).results };
}

// ---------------------------------------------------------------------------------------------------------
// Report

const fmt = (n, digits = 0) =>
  Number.isFinite(n)
    ? n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits })
    : '-';
const ratio = (a, b) => (a && b ? Number((a / b).toFixed(3)) : undefined);

function table(headers, rows) {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const line = (cells) =>
    `| ${cells.map((c, i) => (i === 0 ? String(c).padEnd(widths[i]) : String(c).padStart(widths[i]))).join(' | ')} |`;
  return [
    line(headers),
    `|${widths.map((w, i) => (i === 0 ? `${'-'.repeat(w + 1)}-` : `${'-'.repeat(w + 1)}:`)).join('|')}|`,
    ...rows.map(line),
  ].join('\n');
}

const authSummary = () => (AUTH === 'jwt' ? `auth JWT (${JWT_ALG}, verified per request)` : 'auth none');

function verdict(key, value) {
  const target = TARGETS[key];
  if (value === undefined || !Number.isFinite(value)) return 'not measured';
  if (target.min !== undefined)
    return value >= target.stretch ? 'PASS (stretch)' : value >= target.min ? 'PASS' : 'MISS';
  return value <= target.max ? 'PASS' : 'MISS';
}

async function main() {
  const started = performance.now();
  const machine = {
    cpu: os.cpus()[0]?.model,
    cores: os.cpus().length,
    memoryGb: Number((os.totalmem() / 2 ** 30).toFixed(1)),
    node: process.version,
    platform: `${os.platform()} ${os.release()}`,
    hostname: os.hostname(),
  };
  const config = {
    connections: CONNECTIONS,
    warmUpS: WARMUP_S,
    targetDurationS: DURATION_S,
    measuredRun: `fixed request count calibrated from the warm-up to last ~${DURATION_S} s`,
    poolSize: POOL_SIZE,
    planSize: PLAN_SIZE,
    planShape: SIZES[PLAN_SIZE],
    planBytesAvg: Math.round(bodies.reduce((s, b) => s + b.length, 0) / bodies.length),
    service: {
      command: `node ${relative(ROOT, DIST)}/src/server.js`,
      NODE_ENV: 'production',
      LOG_LEVEL,
      LOG_FORMAT: 'json (to a file)',
      auth:
        AUTH === 'jwt'
          ? `AUTH_MODE=jwt: every request carries a Bearer ${JWT_ALG} JWT (scope system/CarePlan.cruds) verified against a JWKS on loopback; FHIR_AUTH=none towards the FHIR server`
          : 'AUTH_MODE=none (explicitly off); FHIR_AUTH=none towards the FHIR server',
      rateLimit:
        'the default: RATE_LIMIT_MAX=60000 per RATE_LIMIT_WINDOW_MS=60000 per client (not set by the bench)',
      idempotencyKey: 'not sent (plain creates)',
      nodeArgs: SERVICE_NODE_ARGS.join(' ') || '(none)',
    },
    fhirServer: `embedded FHIR server (Medplum fhir-router, in-memory, validating, transactional) as its own process: node ${relative(ROOT, DIST)}/src/embedded-fhir/main.js; a fresh one per phase`,
    cpuProfiles: CPU_PROF,
  };
  await startJwks();
  console.log(
    `bench: ${machine.cores} x ${machine.cpu}, Node ${machine.node}; ${CONNECTIONS} connections, ${WARMUP_S} s warm-up + ~${DURATION_S} s per phase; ` +
      `pool of ${POOL_SIZE} ${PLAN_SIZE} plans (~${config.planBytesAvg} B each); service LOG_LEVEL=${LOG_LEVEL}, ${authSummary()}, rate limit default (60,000/min per client)`,
  );

  const run = {
    floor: phaseFloor,
    direct: phaseDirect,
    service: phaseService,
    toFhir: phaseToFhir,
  };
  for (const name of Object.keys(run)) {
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
      `${fmt(p.requestsPerSecond)} req/s, p50 ${p.latencyMs.p50} ms, p99 ${p.latencyMs.p99} ms, non-2xx ${p.non2xx}, errors ${p.errors}`,
    );
  }
  let micro;
  if (PHASES.includes('micro')) {
    process.stdout.write('bench: phase micro (map + validate, no HTTP) ... ');
    try {
      micro = await phaseMicro();
    } catch (error) {
      failures.push(`micro: ${error?.stack ?? error}`);
    }
    if (micro)
      console.log(
        `${fmt(micro[PLAN_SIZE]?.toFhir.perSecond ?? micro.medium.toFhir.perSecond)} ${PLAN_SIZE} plans/s`,
      );
  }

  // The measures phase (issue 17; not in the default phases: it loads 10,000 plans): bench/measures.mjs, which
  // npm run bench:measures also runs alone; its table goes to stdout, its figures to bench/results/measures.json.
  if (PHASES.includes('measures')) {
    console.log('bench: phase measures (bench/measures.mjs) ...');
    const child = spawn(process.execPath, [join(HERE, 'measures.mjs')], {
      stdio: 'inherit',
      env: { ...process.env, BENCH_DIST: DIST },
    });
    const code = await new Promise((resolve) => child.on('exit', resolve));
    if (code !== 0) failures.push(`measures: bench/measures.mjs exited ${code}`);
    else phases.measures = JSON.parse(readFileSync(join(RESULTS, 'measures.json'), 'utf8'));
  }

  const rps = (name) => phases[name]?.requestsPerSecond;
  const summary = {
    serviceVsDirectThroughput: ratio(rps('service'), rps('direct')),
    toFhirVsBareThroughput: ratio(rps('toFhir'), rps('floor')),
    mapAndValidatePlansPerSecond: micro?.medium.toFhir.perSecond,
    readyMs: phases.service
      ? [...phases.service.readySamplesMs].sort((a, b) => a - b)[
          Math.floor(phases.service.readySamplesMs.length / 2)
        ]
      : phases.toFhir?.readyMs,
    peakRssMb: phases.service?.vmHwmAfterLoadMb,
  };
  // Supplementary, robust to other processes on the machine: the same ratios from server CPU time per request.
  const cpuPer = (name, who = 'server') => phases[name]?.cpuUsPerRequest?.[who];
  const supplementary = {
    toFhirVsBareServerCpu: ratio(cpuPer('floor'), cpuPer('toFhir')),
    serverCpuUsPerRequest: Object.fromEntries(Object.keys(phases).map((n) => [n, cpuPer(n)])),
    fhirServerCpuUsPerRequest: Object.fromEntries(
      ['direct', 'service'].filter((n) => phases[n]).map((n) => [n, cpuPer(n, 'fhir')]),
    ),
  };

  const rows = ['floor', 'direct', 'service', 'toFhir']
    .filter((n) => phases[n])
    .map((n) => {
      const p = phases[n];
      const vs =
        n === 'service'
          ? ratio(p.requestsPerSecond, rps('direct'))
          : n === 'toFhir'
            ? ratio(p.requestsPerSecond, rps('floor'))
            : undefined;
      const label = {
        floor: '1 floor: bare Fastify echo',
        direct: '2 direct push (fhir-kit-client)',
        service: '3 service POST /care-plans',
        toFhir: '4 service POST /care-plans/$to-fhir',
      }[n];
      return [
        label,
        fmt(p.requestsPerSecond),
        fmt(p.latencyMs.p50),
        fmt(p.latencyMs.p99),
        `${p.non2xx}/${p.errors + p.timeouts}`,
        fmt(p.requests),
        `${p.cpuPercent.server}% / ${p.cpuPercent.fhir ?? '-'}% / ${p.cpuPercent.autocannon}% / ${p.cpuPercent.foreign}%`,
        vs === undefined ? '' : `${vs.toFixed(2)} vs ${n === 'service' ? 'direct' : 'floor'}`,
      ];
    });
  console.log('');
  console.log(
    table(
      [
        'phase (16 conn.)',
        'req/s',
        'p50 ms',
        'p99 ms',
        'non-2xx/err',
        'requests',
        'CPU server/FHIR/load/other',
        'ratio',
      ],
      rows,
    ),
  );
  if (micro) {
    console.log('');
    console.log(
      table(
        [
          '5 micro (1 core)',
          'bundle B',
          'toFhir/s',
          'map/s',
          'validate/s',
          'stringify/s',
          'toFhir+stringify/s',
        ],
        Object.keys(SIZES).map((size) => {
          const m = micro[size];
          return [
            `${size} plan`,
            fmt(m.bundleBytesAvg),
            fmt(m.toFhir.perSecond),
            fmt(m.map?.perSecond),
            fmt(m.validate?.perSecond),
            fmt(m.stringify?.perSecond),
            fmt(m.toFhirAndStringify?.perSecond),
          ];
        }),
      ),
    );
  }
  console.log('');
  console.log(
    table(
      ['key', 'value', 'target (stretch)', 'verdict'],
      Object.entries(summary).map(([key, value]) => {
        const t = TARGETS[key];
        return [
          key,
          value === undefined ? '-' : fmt(value, Number.isInteger(value) ? 0 : 2),
          t.min !== undefined
            ? `>= ${fmt(t.min, t.min < 10 ? 2 : 0)} (${fmt(t.stretch, t.stretch < 10 ? 2 : 0)})`
            : `<= ${fmt(t.max)}`,
          verdict(key, value),
        ];
      }),
    ),
  );
  if (phases.service) {
    const s = phases.service;
    console.log('');
    console.log(
      `readyMs samples ${JSON.stringify(s.readySamplesMs)}; service RSS: VmHWM ${s.vmHwmAfterLoadMb} MB, max sampled VmRSS under load ${s.rssMaxSampledMb} MB; ` +
        `CarePlans created during the measured run ${s.carePlansCreated} = 201s ${s.statusCodes['201'] ?? 0}: ${s.countMatches201s ? 'OK' : 'MISMATCH'}`,
    );
  }
  console.log(
    `server CPU per request (us): ${Object.entries(supplementary.serverCpuUsPerRequest)
      .map(([n, us]) => `${n} ${fmt(us)}`)
      .join(', ')}` +
      `${supplementary.toFhirVsBareServerCpu ? `; floor/toFhir CPU ratio ${supplementary.toFhirVsBareServerCpu}` : ''}` +
      `; FHIR server CPU per request (us): ${Object.entries(supplementary.fhirServerCpuUsPerRequest)
        .map(([n, us]) => `${n} ${fmt(us)}`)
        .join(', ')}`,
  );
  console.log(
    `service: LOG_LEVEL=${LOG_LEVEL}, ${authSummary()}, rate limit default (60,000/min per client); machine: ${machine.cores} x ${machine.cpu}, ${machine.memoryGb} GB, Node ${machine.node}`,
  );

  const misses = Object.entries(summary)
    .filter(([key, value]) => verdict(key, value) === 'MISS')
    .map(([key]) => key);
  const out = {
    ...summary,
    targets: TARGETS,
    verdicts: Object.fromEntries(Object.entries(summary).map(([k, v]) => [k, verdict(k, v)])),
    supplementary,
    ok: failures.length === 0,
    failures,
    finishedAt: new Date().toISOString(),
    runSeconds: Number(((performance.now() - started) / 1000).toFixed(1)),
    machine,
    config,
    phases,
    micro,
  };
  mkdirSync(RESULTS, { recursive: true });
  writeFileSync(join(RESULTS, 'latest.json'), `${JSON.stringify(out, null, 2)}\n`);
  console.log(`\nwrote bench/results/latest.json (${out.runSeconds} s)`);

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
  for (const child of [...children]) await stop(child);
}
