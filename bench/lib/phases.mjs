// The phases of npm run bench. Each HTTP phase gets a fresh process for the server under test; the FHIR
// server is a fresh embedded one per phase, or (BENCH_FHIR=hapi, direct and service phases) a fresh HAPI server
// for each. The direct and service phases also run at one connection (createLatencyOverheadMs) and count the
// bytes their server allocates (bench/lib/alloc-probe.mjs).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { countOnServer, settledCount, startEmbedded } from './fhir-server.mjs';
import { failuresOf, measure, memoryKb } from './load.mjs';
import { freePort, HOST, hasTaskset, spawnNode, stop, waitFor200 } from './processes.mjs';

/** Requests of the one-connection run that gives the p50 latency of one create. */
const LATENCY_REQUESTS = 200;

export function phaseRunner(ctx) {
  const { root, logs, dist, cpuProfiles, allocProfiles, profileDir, failures } = ctx;
  const probe = join(root, 'bench/lib/alloc-probe.mjs');
  const node = (name, args, env, { profile = false, alloc = false, nodeArgs = [], pin } = {}) => {
    const allocFile = alloc ? join(logs, `${name}.alloc.json`) : undefined;
    const child = spawnNode(
      root,
      logs,
      name,
      args,
      {
        ...env,
        ...(allocFile ? { BENCH_ALLOC_FILE: allocFile } : {}),
        ...(allocFile && allocProfiles
          ? { BENCH_ALLOC_PROFILE: join(profileDir, `${name}.heapprofile`) }
          : {}),
      },
      {
        profileDir: profile && cpuProfiles ? profileDir : undefined,
        nodeArgs: [...(alloc ? [`--import=${probe}`] : []), ...nodeArgs],
        pin,
      },
    );
    child.allocFile = allocFile;
    return child;
  };
  const stopChild = (child) => stop(child, cpuProfiles ? 8_000 : 2_000);
  const loadConfig = {
    bodies: ctx.bodies,
    headers: ctx.authHeader,
    connections: ctx.connections,
    warmUpS: ctx.warmUpS,
    warmUpRequests: ctx.warmUpRequests,
    durationS: ctx.durationS,
  };

  async function startService(name, fhirBaseUrl, { profile = false, alloc = false } = {}) {
    const port = await freePort();
    const t0 = performance.now();
    const child = node(
      name,
      [join(dist, 'src/server.js')],
      {
        PORT: String(port),
        HOST,
        FHIR_BASE_URL: fhirBaseUrl,
        LOG_LEVEL: ctx.logLevel,
        LOG_FORMAT: 'json',
        ...ctx.authEnv(),
      },
      { profile, alloc, nodeArgs: ctx.serviceNodeArgs, pin: ctx.pinServer },
    );
    await waitFor200(`http://${HOST}:${port}/health/ready`, child, 60_000, 5);
    return { child, url: `http://${HOST}:${port}`, readyMs: performance.now() - t0 };
  }

  async function startHelper(name, script, env, { alloc = false } = {}) {
    const port = await freePort();
    const child = node(
      name,
      [script],
      { PORT: String(port), HOST, ...env },
      { profile: true, alloc, pin: ctx.pinServer },
    );
    await waitFor200(`http://${HOST}:${port}/health/ready`, child, 30_000, 10);
    return { child, url: `http://${HOST}:${port}` };
  }

  /** On failure: send the pool's bodies once by hand and keep the first failed answers, for the report. */
  async function sampleFailures(url, path) {
    const samples = [];
    for (let i = 0; i < ctx.bodies.length && samples.length < 3; i++) {
      try {
        const response = await fetch(`${url}${path}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-bench-plan': String(i), ...ctx.authHeader() },
          body: ctx.bodies[i],
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

  /** The FHIR server of a pushing phase: a fresh HAPI (BENCH_FHIR=hapi) or a fresh embedded one. */
  const fhirFor = (name) => (ctx.startHapi ? ctx.startHapi(name) : startEmbedded(ctx, name));

  /**
   * Load on a server that creates plans, then the correctness check: the CarePlans created on the FHIR server
   * during the measured and one-connection runs equal the 201s answered.
   */
  async function pushPhase(name, target, fhir, extra = {}) {
    const phase = await measure(name, target.url, '/care-plans', loadConfig, {
      watch: { server: target.child.pid, fhir: fhir.pid },
      alloc: { server: { pid: target.child.pid, file: target.child.allocFile } },
      latencyRequests: LATENCY_REQUESTS,
      beforeMeasured: async () => ({ carePlansBefore: await settledCount(fhir.baseUrl, 'CarePlan') }),
      ...extra,
    });
    failures.push(...failuresOf(phase));
    phase.carePlansAfter = await settledCount(fhir.baseUrl, 'CarePlan');
    phase.carePlansCreated = phase.carePlansAfter - phase.carePlansBefore;
    const created = (phase.statusCodes['201'] ?? 0) + (phase.oneConnection?.statusCodes['201'] ?? 0);
    phase.created201s = created;
    phase.countMatches201s = phase.carePlansCreated === created;
    if (!phase.countMatches201s)
      failures.push(
        `${name}: ${phase.carePlansCreated} CarePlans created on the FHIR server, ${created} 201s answered`,
      );
    if (phase.non2xx + phase.errors + (phase.oneConnection?.non2xx ?? 0))
      phase.failureSamples = await sampleFailures(target.url, '/care-plans');
    return phase;
  }

  async function floor() {
    const target = await startHelper('1-floor', 'bench/servers/floor.mjs', {});
    try {
      const phase = await measure('floor', target.url, '/care-plans', loadConfig, {
        watch: { server: target.child.pid },
      });
      failures.push(...failuresOf(phase));
      return phase;
    } finally {
      await stopChild(target.child);
    }
  }

  async function direct() {
    const fhir = await fhirFor('2-direct');
    const target = await startHelper(
      '2-direct',
      'bench/servers/direct.mjs',
      {
        FHIR_BASE_URL: fhir.baseUrl,
        BENCH_DIST: dist,
        BENCH_CLIENT_ID: ctx.clientId,
        PLAN_SIZE: ctx.planSize,
        POOL_SIZE: String(ctx.poolSize),
      },
      { alloc: true },
    );
    try {
      return await pushPhase('direct', target, fhir);
    } finally {
      await stopChild(target.child);
      await fhir.stop();
    }
  }

  async function service() {
    const fhir = await fhirFor('3-service');
    // readyMs: spawn -> /health/ready 200, the FHIR server already up. The last sample stays up for the load.
    const readySamples = [];
    let started;
    for (let i = 0; i < ctx.readySamples; i++) {
      const last = i === ctx.readySamples - 1;
      started = await startService(last ? '3-service' : `3-service-ready-${i + 1}`, fhir.baseUrl, {
        profile: last,
        alloc: last,
      });
      readySamples.push(Math.round(started.readyMs));
      if (!last) await stopChild(started.child);
    }
    try {
      const phase = await pushPhase('service', started, fhir, { rssPid: started.child.pid });
      phase.readySamplesMs = readySamples;
      phase.vmHwmAfterLoadMb = Number((memoryKb(started.child.pid, 'VmHWM') / 1024).toFixed(1));
      return phase;
    } finally {
      await stopChild(started.child);
      await fhir.stop();
    }
  }

  async function toFhir() {
    const fhir = await startEmbedded(ctx, '4-tofhir');
    const started = await startService('4-tofhir-service', fhir.baseUrl, { profile: true, alloc: true });
    try {
      const phase = await measure('toFhir', started.url, '/care-plans/$to-fhir', loadConfig, {
        watch: { server: started.child.pid },
        alloc: { server: { pid: started.child.pid, file: started.child.allocFile } },
        rssPid: started.child.pid,
      });
      failures.push(...failuresOf(phase));
      if (phase.non2xx + phase.errors)
        phase.failureSamples = await sampleFailures(started.url, '/care-plans/$to-fhir');
      phase.readyMs = Math.round(started.readyMs);
      return phase;
    } finally {
      await stopChild(started.child);
      await fhir.stop();
    }
  }

  async function micro() {
    const child = node(
      '5-micro',
      ['bench/micro.mjs'],
      { POOL_SIZE: String(ctx.poolSize), BENCH_DIST: dist },
      { profile: true, pin: 1 % ctx.cores },
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

  return { floor, direct, service, toFhir, micro, countOnServer };
}
