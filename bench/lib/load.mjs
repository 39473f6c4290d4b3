// Load and what it costs: autocannon with bodies rotating through the pool; CPU of the watched processes from
// /proc, the machine's CPU used by processes outside the benchmark (`foreign`), VmRSS sampling, and the bytes
// the servers allocate (bench/lib/alloc-probe.mjs, started and read with SIGWINCH).
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import autocannon from 'autocannon';
import { sleep } from './processes.mjs';

const CLOCK_TICKS = 100; // sysconf(_SC_CLK_TCK) on Linux

function statFields(path) {
  const text = readFileSync(path, 'utf8');
  return text.slice(text.lastIndexOf(') ') + 2).split(' ');
}

/** utime + stime of a /proc stat line's fields, in seconds. */
const cpuOf = (fields) => (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;

/** CPU seconds (user + system) a process has used so far, from /proc/<pid>/stat. */
export function cpuSeconds(pid) {
  try {
    return cpuOf(statFields(`/proc/${pid}/stat`));
  } catch {
    return Number.NaN;
  }
}

/**
 * CPU seconds (user + system) of a process's main thread (the one whose id is the pid) and of all its other
 * threads together (V8's GC and optimising compiler, libuv's pool), from /proc/<pid>/task/<tid>/stat.
 */
export function threadCpuSeconds(pid) {
  const seconds = { main: 0, helpers: 0 };
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      seconds[tid === String(pid) ? 'main' : 'helpers'] += cpuOf(statFields(`/proc/${pid}/task/${tid}/stat`));
    }
  } catch {
    // the process or a thread went away: what was read so far
  }
  return seconds;
}

/** Kernel (system) CPU seconds of a process so far. */
function systemCpuSeconds(pid) {
  try {
    return Number(statFields(`/proc/${pid}/stat`)[12]) / CLOCK_TICKS;
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

export function memoryKb(pid, field) {
  try {
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(
      readFileSync(`/proc/${pid}/status`, 'utf8'),
    );
    return match ? Number(match[1]) : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

/** The load generator: POST `path` with the pool's bodies in turn, `connections` at a time. */
export function load(url, path, { bodies, headers, connections, amount, duration }) {
  let next = 0;
  return autocannon({
    url,
    connections,
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
            ...headers(),
          };
          request.body = bodies[index];
          return request;
        },
      },
    ],
  });
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

/** Starts (first call) or stops and reads (second call) the allocation count of a process with the probe. */
async function allocationSignal(pid, file) {
  process.kill(pid, 'SIGWINCH');
  if (!file) return undefined;
  const deadline = performance.now() + 5_000;
  while (!existsSync(file) && performance.now() < deadline) await sleep(10);
  if (!existsSync(file)) return undefined;
  const text = readFileSync(file, 'utf8');
  rmSync(file, { force: true });
  return JSON.parse(text);
}

/**
 * One measured run of `amount` requests (or `duration` seconds) at `connections`. Samples the CPU of the
 * `watch` processes ({ label: pid }), VmRSS of `rssPid`, and the allocation of `alloc` ({ label: { pid, file } },
 * processes started with the probe).
 */
export async function measuredRun(url, path, options, { watch = {}, rssPid, alloc = {} } = {}) {
  const cpuBefore = Object.fromEntries(Object.entries(watch).map(([k, pid]) => [k, cpuSeconds(pid)]));
  const systemBefore = Object.fromEntries(
    Object.entries(watch).map(([k, pid]) => [k, systemCpuSeconds(pid)]),
  );
  const threadsBefore = Object.fromEntries(
    Object.entries(watch).map(([k, pid]) => [k, threadCpuSeconds(pid)]),
  );
  for (const { pid, file } of Object.values(alloc)) {
    rmSync(file, { force: true });
    await allocationSignal(pid);
  }
  const selfBefore = process.cpuUsage();
  const machineBefore = machineBusySeconds();
  let rssMaxKb = 0;
  const sampler = rssPid
    ? setInterval(() => {
        rssMaxKb = Math.max(rssMaxKb, memoryKb(rssPid, 'VmRSS') || 0);
      }, 100)
    : undefined;
  const start = performance.now();
  const result = await load(url, path, options);
  const wallS = (performance.now() - start) / 1000;
  if (sampler) clearInterval(sampler);
  const measured = summarise(result, wallS);
  const self = process.cpuUsage(selfBefore);
  const machineAfter = machineBusySeconds();
  const cpuAfter = Object.fromEntries(Object.entries(watch).map(([k, pid]) => [k, cpuSeconds(pid)]));
  const allocation = {};
  for (const [k, { pid, file }] of Object.entries(alloc)) {
    const counted = await allocationSignal(pid, file);
    if (counted)
      allocation[k] = {
        ...counted,
        bytesPerRequest: Math.round(counted.allocatedBytes / Math.max(1, measured.requests)),
      };
  }
  const cpuPercent = Object.fromEntries(
    Object.entries(watch).map(([k]) => [k, Math.round(((cpuAfter[k] - cpuBefore[k]) / wallS) * 100)]),
  );
  cpuPercent.autocannon = Math.round(((self.user + self.system) / 1e6 / wallS) * 100);
  // CPU used by processes that are not part of this benchmark (others sharing the machine): noise.
  const machinePercent = ((machineAfter - machineBefore) / wallS) * 100;
  const ours = Object.values(cpuPercent).reduce((a, b) => a + b, 0);
  cpuPercent.machine = Math.round(machinePercent);
  cpuPercent.foreign = Math.max(0, Math.round(machinePercent - ours));
  // CPU time per request of each watched process: a figure other work on the machine barely moves.
  const cpuUsPerRequest = Object.fromEntries(
    Object.entries(watch).map(([k]) => [
      k,
      Math.round(((cpuAfter[k] - cpuBefore[k]) * 1e6) / measured.requests),
    ]),
  );
  // The part of it spent in the kernel (loopback TCP work is done in the sender's system time).
  const systemUsPerRequest = Object.fromEntries(
    Object.entries(watch).map(([k, pid]) => [
      k,
      Math.round(((systemCpuSeconds(pid) - systemBefore[k]) * 1e6) / measured.requests),
    ]),
  );
  // The same by thread: the main thread (JavaScript, and the GC work done on it) and the helper threads.
  const threadUsPerRequest = Object.fromEntries(
    Object.entries(watch).map(([k, pid]) => {
      const after = threadCpuSeconds(pid);
      const perRequest = (part) =>
        Math.round(((after[part] - threadsBefore[k][part]) * 1e6) / measured.requests);
      return [k, { main: perRequest('main'), helpers: perRequest('helpers') }];
    }),
  );
  const run = { ...measured, cpuPercent, cpuUsPerRequest, systemUsPerRequest, threadUsPerRequest };
  if (Object.keys(allocation).length) run.allocation = allocation;
  if (rssPid) {
    run.rssMaxSampledMb = Number((rssMaxKb / 1024).toFixed(1));
    run.vmHwmMb = Number((memoryKb(rssPid, 'VmHWM') / 1024).toFixed(1));
  }
  return run;
}

/**
 * Warm-up (fixed duration) then a measured run of a fixed number of requests, calibrated to last about
 * durationS. A fixed number (not a fixed duration) means autocannon never aborts a request in flight when it
 * stops, so that every request the service answered is counted. Then, with `latencyRequests`, a run at one
 * connection (the latency of one request with nothing queued: createLatencyOverheadMs).
 */
export async function measure(
  name,
  url,
  path,
  config,
  { beforeMeasured, latencyRequests, ...sampling } = {},
) {
  const { connections, warmUpS, warmUpRequests = 0, durationS } = config;
  const warmStart = performance.now();
  let warm = summarise(
    await load(url, path, { ...config, duration: warmUpS }),
    (performance.now() - warmStart) / 1000,
  );
  // At least warmUpRequests in the warm-up: V8 keeps optimising the service's code for the first ~2,000 creates
  // (bench/README.md, "Warm-up"), so a phase at 70 creates/s measures the JIT rather than the steady state.
  if (warm.requests < warmUpRequests) {
    const moreStart = performance.now();
    const more = summarise(
      await load(url, path, { ...config, amount: warmUpRequests - warm.requests }),
      (performance.now() - moreStart) / 1000,
    );
    const statusCodes = { ...warm.statusCodes };
    for (const [code, count] of Object.entries(more.statusCodes))
      statusCodes[code] = (statusCodes[code] ?? 0) + count;
    const sum = (key) => warm[key] + more[key];
    // Counts of both runs (any non-2xx in either fails the phase); rate and latency of the second, the later one.
    warm = {
      ...more,
      first: warm,
      statusCodes,
      ...Object.fromEntries(
        ['requests', 'sent', 'non2xx', 'errors', 'timeouts', 'resets'].map((k) => [k, sum(k)]),
      ),
    };
  }
  const context = (await beforeMeasured?.()) ?? {};
  const amount = Math.max(connections * 20, Math.round(warm.requestsPerSecond * durationS));
  const measured = await measuredRun(url, path, { ...config, amount }, sampling);
  if (measured.cpuPercent.foreign > 15) {
    console.log(
      `\nbench: WARNING: other processes used ~${measured.cpuPercent.foreign}% of a core during ${name}: its figures are noisy`,
    );
  }
  const phase = { name, path, amount, warmUp: warm, ...measured, ...context };
  if (latencyRequests) {
    const { watch } = sampling;
    phase.oneConnection = await measuredRun(
      url,
      path,
      { ...config, connections: 1, amount: latencyRequests },
      { watch },
    );
  }
  return phase;
}

/** Any non-2xx, error or timeout in a run of the phase: a failure. */
export function failuresOf(phase) {
  const failures = [];
  for (const [label, run] of [
    ['warm-up', phase.warmUp],
    ['measured run', phase],
    ['one-connection run', phase.oneConnection],
  ]) {
    if (!run) continue;
    const bad = run.non2xx + run.errors + run.timeouts;
    if (bad > 0)
      failures.push(
        `${phase.name} ${label}: ${run.non2xx} non-2xx, ${run.errors} errors, ${run.timeouts} timeouts (status codes ${JSON.stringify(run.statusCodes)})`,
      );
  }
  return failures;
}
