// Phase 5: micro-benchmark of map + validate, no HTTP, one thread (run.mjs pins it to one core with taskset
// when available). Prints one JSON object on stdout.
// For each plan size, over a pool of different plans:
//   toFhir            PlanFhir.toFhir: plan rules + planToTransaction + validateFhirBundle (the headline)
//   map               planToTransaction alone
//   validate          validateFhirBundle(bundle, 'outbound') alone, on premapped bundles
//   walk              a visit of every value of the bundle once (Object.values, recursively), nothing checked:
//                     the floor under any validation, which must at least look at each value (map + walk bounds
//                     mapAndValidatePlansPerSecond from above)
//   stringify         JSON.stringify(bundle) alone (what the $to-fhir reply costs to serialise)
//   toFhirAndStringify  toFhir + JSON.stringify: the CPU work of POST /care-plans/$to-fhir minus HTTP
// Env: BENCH_DIST (the build to measure, default ./dist), MICRO_MS (measuring time per case, default 1000,
//      split into MICRO_ROUNDS rounds, default 5: the best round by CPU time is reported), MICRO_WARMUP_MS (default 300), POOL_SIZE (128),
//      MICRO_DETAILED (sizes with the full breakdown; default medium,mediumLean; the others: toFhir only).
import { randomUUID } from 'node:crypto';
import { resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { generatePool, SIZES } from './plans.mjs';

// BENCH_DIST: another build to measure (e.g. a copy with a candidate fix), default ./dist
const dist = pathToFileURL(
  resolve(process.env.BENCH_DIST || new URL('../dist', import.meta.url).pathname),
).href;
const { PlanFhir } = await import(`${dist}/src/care-plans/plan-fhir.js`);
const { planToTransaction } = await import(`${dist}/src/fhir/mapping/to-fhir.js`);
const { validateFhirBundle, warmUpValidators } = await import(`${dist}/src/fhir/validation/index.js`);

const MEASURE_MS = Number(process.env.MICRO_MS || 1000);
const WARMUP_MS = Number(process.env.MICRO_WARMUP_MS || 300);
/** Sizes whose cost is broken down (map, validate, stringify); the others get the headline case only. */
const DETAILED = new Set((process.env.MICRO_DETAILED || 'medium,mediumLean').split(','));
const POOL = Number(process.env.POOL_SIZE || 128);
const ROUNDS = Number(process.env.MICRO_ROUNDS || 5);

warmUpValidators();
const service = new PlanFhir(undefined, randomUUID);
let sink = 0;

/** Visits every value once; returns how many leaves it saw (so that the visit cannot be optimised away). */
function walk(value) {
  if (typeof value !== 'object' || value === null) return 1;
  const children = Array.isArray(value) ? value : Object.values(value);
  let leaves = 0;
  for (let i = 0; i < children.length; i++) leaves += walk(children[i]);
  return leaves;
}

/**
 * Runs fn over items until `ms` of wall time passed. Measures both wall time and the CPU time of this process
 * (process.cpuUsage, all threads: GC and compiler threads included): on a machine shared with other work the
 * wall clock also counts time this thread was not running, the CPU clock does not.
 */
function timed(items, fn, ms) {
  const cpu0 = process.cpuUsage();
  const start = performance.now();
  let n = 0;
  let now = start;
  do {
    for (let i = 0; i < items.length; i++) fn(items[i]);
    n += items.length;
    now = performance.now();
  } while (now - start < ms);
  const cpu = process.cpuUsage(cpu0);
  return { ops: n, ms: now - start, cpuMs: (cpu.user + cpu.system) / 1000 };
}

/**
 * Warm-up, then ROUNDS rounds of MEASURE_MS / ROUNDS each. The figure reported is the best round by CPU time:
 * interference from other processes (a shared core, cache thrash) only ever makes a round slower.
 */
function bench(items, fn) {
  timed(items, fn, WARMUP_MS);
  const rounds = [];
  for (let r = 0; r < ROUNDS; r++) rounds.push(timed(items, fn, MEASURE_MS / ROUNDS));
  const rates = rounds.map(({ ops, cpuMs }) => (ops * 1000) / cpuMs).sort((a, b) => a - b);
  const best = rates[rates.length - 1];
  const ops = rounds.reduce((s, r) => s + r.ops, 0);
  const ms = rounds.reduce((s, r) => s + r.ms, 0);
  const cpuMs = rounds.reduce((s, r) => s + r.cpuMs, 0);
  return {
    /** ops per CPU-second, best round: the figure reported */
    perSecond: Math.round(best),
    perSecondMedian: Math.round(rates[Math.floor(rates.length / 2)]),
    perWallSecond: Math.round((ops * 1000) / ms),
    usPerOp: Number((1e6 / best).toFixed(2)),
    /** CPU time / wall time: well below 1 means other processes took the core, and the figures are noisy */
    cpuShare: Number((cpuMs / ms).toFixed(2)),
    ops,
  };
}

// Global warm-up over every size first: the generated validators are large functions that V8 optimises
// late; without this the first size measured pays for it.
const pools = Object.fromEntries(Object.keys(SIZES).map((size) => [size, generatePool(size, POOL)]));
const everyPlan = Object.values(pools).flat();
timed(
  everyPlan,
  (plan) => {
    sink += JSON.stringify(service.toFhir(plan)).length;
  },
  Number(process.env.MICRO_GLOBAL_WARMUP_MS || 1500),
);

const results = {};
for (const size of Object.keys(SIZES)) {
  const plans = pools[size];
  const bundles = plans.map((plan) => service.toFhir(plan));
  for (const bundle of bundles) {
    const issues = validateFhirBundle(bundle, 'outbound');
    if (issues.length)
      throw new Error(`${size}: a generated plan maps to invalid FHIR: ${JSON.stringify(issues[0])}`);
  }
  const bytes = bundles.map((b) => JSON.stringify(b).length);
  results[size] = {
    shape: SIZES[size],
    planBytesAvg: Math.round(plans.reduce((s, p) => s + JSON.stringify(p).length, 0) / plans.length),
    bundleBytesAvg: Math.round(bytes.reduce((s, b) => s + b, 0) / bytes.length),
    bundleEntries: bundles[0].entry.length,
    toFhir: bench(plans, (plan) => {
      sink += service.toFhir(plan).entry.length;
    }),
  };
  if (!DETAILED.has(size)) continue;
  Object.assign(results[size], {
    map: bench(plans, (plan) => {
      sink += planToTransaction(plan, { newUuid: randomUUID }).entry.length;
    }),
    validate: bench(bundles, (bundle) => {
      sink += validateFhirBundle(bundle, 'outbound').length;
    }),
    walk: bench(bundles, (bundle) => {
      sink += walk(bundle);
    }),
    stringify: bench(bundles, (bundle) => {
      sink += JSON.stringify(bundle).length;
    }),
    toFhirAndStringify: bench(plans, (plan) => {
      sink += JSON.stringify(service.toFhir(plan)).length;
    }),
  });
}
process.stdout.write(`${JSON.stringify({ results, sink: sink > 0 })}\n`);
