// Summarises a V8 .cpuprofile (node --cpu-prof): the functions with the most self time, inclusive time, and self
// time per file, as shares of the busy (non-idle) time sampled.
// Usage: node bench/profile-summary.mjs <file.cpuprofile> [top=25] [--skip-s=N]
//   --skip-s=N  leave out the first N seconds of the profile (start-up and warm-up: e.g. AJV compiling schemas)
import { readFileSync } from 'node:fs';
import { profileArgs, shortUrl } from './lib/profile-files.mjs';

const { file, top, flags } = profileArgs(
  'node bench/profile-summary.mjs <file.cpuprofile> [top] [--skip-s=N]',
);
const skipUs = Number(flags['skip-s'] ?? 0) * 1e6;
const profile = JSON.parse(readFileSync(file, 'utf8'));
const byId = new Map(profile.nodes.map((node) => [node.id, node]));
const selfUs = new Map();
const deltas = profile.timeDeltas;
const kept = [];
let at = 0;
for (let i = 0; i < profile.samples.length; i++) {
  at += deltas[i] ?? 0;
  if (at < skipUs) continue;
  kept.push(i);
  const id = profile.samples[i];
  selfUs.set(id, (selfUs.get(id) ?? 0) + (deltas[i] ?? 0));
}
const idleUs = [...selfUs]
  .filter(([id]) => byId.get(id).callFrame.functionName === '(idle)')
  .reduce((a, [, us]) => a + us, 0);
const sampled = [...selfUs.values()].reduce((a, b) => a + b, 0);
const total = sampled - idleUs;
const byFunction = new Map();
const byFile = new Map();
for (const [id, us] of selfUs) {
  const { callFrame } = byId.get(id);
  if (callFrame.functionName === '(idle)') continue;
  const where = callFrame.url ? `${shortUrl(callFrame.url)}:${callFrame.lineNumber + 1}` : '(native)';
  const key = `${callFrame.functionName || '(anonymous)'}  ${where}`;
  byFunction.set(key, (byFunction.get(key) ?? 0) + us);
  const fileKey = callFrame.url ? shortUrl(callFrame.url) : `(${callFrame.functionName || 'native'})`;
  byFile.set(fileKey, (byFile.get(fileKey) ?? 0) + us);
}
// Inclusive time: every sample counts once for each distinct function on its stack.
const parent = new Map();
for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
const inclusive = new Map();
for (const i of kept) {
  const seen = new Set();
  for (let id = profile.samples[i]; id !== undefined; id = parent.get(id)) {
    const { callFrame } = byId.get(id);
    if (
      !callFrame.url ||
      !/\/(dist|bench)\/|node_modules\/(fastify|pino|ajv|fhir-kit-client|undici|secure-json-parse|cockatiel)/.test(
        callFrame.url,
      )
    )
      continue;
    const key = `${callFrame.functionName || '(anonymous)'}  ${shortUrl(callFrame.url)}:${callFrame.lineNumber + 1}`;
    if (seen.has(key)) continue;
    seen.add(key);
    inclusive.set(key, (inclusive.get(key) ?? 0) + (deltas[i] ?? 0));
  }
}
const pct = (us) => `${((us / total) * 100).toFixed(1).padStart(5)}%`;
console.log(
  `${file}: ${(sampled / 1e6).toFixed(2)} s sampled${skipUs ? ` after the first ${skipUs / 1e6} s` : ''}, ${(total / 1e6).toFixed(2)} s busy (the shares below are of busy time)`,
);
console.log('\nself time by function:');
for (const [key, us] of [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, top))
  console.log(`  ${pct(us)}  ${key}`);
console.log('\ninclusive time (project code and the main libraries):');
for (const [key, us] of [...inclusive].sort((a, b) => b[1] - a[1]).slice(0, top))
  console.log(`  ${pct(us)}  ${key}`);
console.log('\nself time by file:');
for (const [key, us] of [...byFile].sort((a, b) => b[1] - a[1]).slice(0, Math.min(top, 15)))
  console.log(`  ${pct(us)}  ${key}`);
