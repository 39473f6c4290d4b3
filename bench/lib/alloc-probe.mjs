// Preloaded (node --import) into a server under test: counts the bytes its JavaScript allocates on the V8 heap
// between two SIGWINCH signals (ignored by default, and not one close-with-grace shuts down on), without --trace-gc. Allocated = heap used at the end - heap used at the start
// + what every garbage collection in between freed (v8.GCProfiler: the heap before and after each one).
// The second signal writes { allocatedBytes, gcCount, gcPauseMs } as JSON to BENCH_ALLOC_FILE.
// With BENCH_ALLOC_PROFILE (a path; BENCH_ALLOC_PROF=1), V8's sampling heap profiler also runs over the same window,
// keeping the samples of objects already collected, so the profile shows where the window's allocations were made,
// not what survived them (node's --heap-prof keeps only the latter); summarise with bench/alloc-summary.mjs.
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import v8 from 'node:v8';

const file = process.env.BENCH_ALLOC_FILE;
const profileFile = process.env.BENCH_ALLOC_PROFILE;
let profiler;
let usedAtStart = 0;
let session;

// An in-process inspector session answers synchronously.
const inspect = (method, params) => {
  let answer;
  session.post(method, params, (error, result) => {
    if (error) throw error;
    answer = result;
  });
  return answer;
};

if (file) {
  process.on('SIGWINCH', () => {
    if (!profiler) {
      if (profileFile) {
        session = new Session();
        session.connect();
        inspect('HeapProfiler.enable');
        // One sample per 16 KiB allocated on average (V8's default is 32 KiB).
        inspect('HeapProfiler.startSampling', {
          samplingInterval: 16_384,
          includeObjectsCollectedByMajorGC: true,
          includeObjectsCollectedByMinorGC: true,
        });
      }
      profiler = new v8.GCProfiler();
      profiler.start();
      usedAtStart = v8.getHeapStatistics().used_heap_size;
      return;
    }
    if (session) {
      writeFileSync(profileFile, JSON.stringify(inspect('HeapProfiler.stopSampling').profile));
      session.disconnect();
      session = undefined;
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
    writeFileSync(
      file,
      JSON.stringify({
        allocatedBytes: usedAtEnd - usedAtStart + freed,
        gcCount: statistics.length,
        gcPauseMs: Math.round(pauseUs / 1000),
      }),
    );
  });
}
