// Preloaded (node --import) into a server under test: counts the bytes its JavaScript allocates on the V8 heap
// between two SIGWINCH signals (ignored by default, and not one close-with-grace shuts down on), without --trace-gc. Allocated = heap used at the end - heap used at the start
// + what every garbage collection in between freed (v8.GCProfiler: the heap before and after each one).
// The second signal writes { allocatedBytes, gcCount, gcPauseMs } as JSON to BENCH_ALLOC_FILE.
// With BENCH_ALLOC_PROFILE (a path; BENCH_ALLOC_PROF=1), V8's sampling heap profiler also runs over the same window,
// keeping the samples of objects already collected, so the profile shows where the window's allocations were made,
// not what survived them (node's --heap-prof keeps only the latter); summarise with bench/alloc-summary.mjs.
import { renameSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import v8 from 'node:v8';

const file = process.env.BENCH_ALLOC_FILE;
const profileFile = process.env.BENCH_ALLOC_PROFILE;
let profiler;
let usedAtStart = 0;
let session;

// An in-process inspector session answers synchronously; an error thrown in its callback would not reach here.
const inspect = (method, params) => {
  let failure;
  let answer;
  session.post(method, params, (error, result) => {
    failure = error;
    answer = result;
  });
  if (failure) throw failure;
  return answer;
};

/** Starts the sampling heap profiler, or says why not: the allocation figure is measured either way. */
function startSampling() {
  try {
    session = new Session();
    session.connect();
    inspect('HeapProfiler.enable');
    // One sample per 16 KiB allocated on average (V8's default is 32 KiB).
    inspect('HeapProfiler.startSampling', {
      samplingInterval: 16_384,
      includeObjectsCollectedByMajorGC: true,
      includeObjectsCollectedByMinorGC: true,
    });
  } catch (error) {
    process.stderr.write(`alloc-probe: no allocation profile: ${error}\n`);
    session?.disconnect();
    session = undefined;
  }
}

function writeSamplingProfile() {
  try {
    writeFileSync(profileFile, JSON.stringify(inspect('HeapProfiler.stopSampling').profile));
  } catch (error) {
    process.stderr.write(`alloc-probe: no allocation profile: ${error}\n`);
  }
  session.disconnect();
  session = undefined;
}

if (file) {
  process.on('SIGWINCH', () => {
    if (!profiler) {
      if (profileFile) startSampling();
      profiler = new v8.GCProfiler();
      profiler.start();
      usedAtStart = v8.getHeapStatistics().used_heap_size;
      return;
    }
    const usedAtEnd = v8.getHeapStatistics().used_heap_size;
    const { statistics } = profiler.stop();
    profiler = undefined;
    let freed = 0;
    let pauseUs = 0;
    for (const gc of statistics) {
      freed += gc.beforeGC.heapStatistics.usedHeapSize - gc.afterGC.heapStatistics.usedHeapSize;
      pauseUs += gc.cost;
    }
    // written under another name and renamed: the bench reads the file as soon as it exists
    writeFileSync(
      `${file}.tmp`,
      JSON.stringify({
        allocatedBytes: usedAtEnd - usedAtStart + freed,
        gcCount: statistics.length,
        gcPauseMs: Math.round(pauseUs / 1000),
      }),
    );
    renameSync(`${file}.tmp`, file);
    // After the figure: writing the profile allocates megabytes of its own.
    if (session) writeSamplingProfile();
  });
}
