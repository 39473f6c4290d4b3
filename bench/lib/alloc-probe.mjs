// Preloaded (node --import) into a server under test: counts the bytes its JavaScript allocates on the V8 heap
// between two SIGWINCH signals (ignored by default, and not one close-with-grace shuts down on), without --trace-gc. Allocated = heap used at the end - heap used at the start
// + what every garbage collection in between freed (v8.GCProfiler: the heap before and after each one).
// The second signal writes { allocatedBytes, gcCount, gcPauseMs } as JSON to BENCH_ALLOC_FILE.
import { writeFileSync } from 'node:fs';
import v8 from 'node:v8';

const file = process.env.BENCH_ALLOC_FILE;
let profiler;
let usedAtStart = 0;

if (file) {
  process.on('SIGWINCH', () => {
    if (!profiler) {
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
