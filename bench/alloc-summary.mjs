// Summarises a V8 sampling heap profile (.heapprofile, from BENCH_ALLOC_PROF=1): where the sampled bytes were
// allocated, as shares of all of them: by function (self), inclusive for project code and the main libraries, and
// by file. A builtin's allocations (JSON.parse, JSON.stringify, string concatenation) count for the JavaScript
// function that called it.
// Usage: node bench/alloc-summary.mjs <file.heapprofile> [top=25] [--requests=N]
//   --requests=N  also print KB per request (N: the requests the measured window served, from the bench's output)
import { readFileSync } from 'node:fs';
import { profileArgs, shortUrl } from './lib/profile-files.mjs';

const { file, top, flags } = profileArgs(
  'node bench/alloc-summary.mjs <file.heapprofile> [top] [--requests=N]',
);
const requests = Number(flags.requests ?? 0);
const { head } = JSON.parse(readFileSync(file, 'utf8'));
const MAIN =
  /^(dist|bench)\/|^node_modules\/(fastify|pino|@pinojs|ajv|fhir-kit-client|undici|secure-json-parse)/;
const label = ({ functionName, url, lineNumber }) =>
  `${functionName || '(anonymous)'}  ${url ? `${shortUrl(url)}:${lineNumber + 1}` : '(native)'}`;

const self = new Map();
const inclusive = new Map();
const byFile = new Map();
const add = (map, key, bytes) => map.set(key, (map.get(key) ?? 0) + bytes);
let total = 0;
// Returns the bytes allocated in the node and below; inclusive counts each function once per stack.
function visit(node, onStack) {
  const key = label(node.callFrame);
  const url = node.callFrame.url ? shortUrl(node.callFrame.url) : '';
  total += node.selfSize;
  add(self, key, node.selfSize);
  add(byFile, url || `(${node.callFrame.functionName || 'native'})`, node.selfSize);
  const counted = MAIN.test(url) && !onStack.has(key);
  if (counted) onStack.add(key);
  let bytes = node.selfSize;
  for (const child of node.children ?? []) bytes += visit(child, onStack);
  if (counted) {
    onStack.delete(key);
    add(inclusive, key, bytes);
  }
  return bytes;
}
visit(head, new Set());

const share = (bytes) =>
  `${((bytes / total) * 100).toFixed(1).padStart(5)}%${requests ? ` ${(bytes / requests / 1024).toFixed(1).padStart(7)} KB/req` : ''}`;
const print = (title, map, n) => {
  console.log(`\n${title}:`);
  for (const [key, bytes] of [...map].sort((a, b) => b[1] - a[1]).slice(0, n))
    console.log(`  ${share(bytes)}  ${key}`);
};
console.log(
  `${file}: ${(total / 1e6).toFixed(1)} MB sampled${requests ? `, ${(total / requests / 1024).toFixed(1)} KB per request over ${requests}` : ''}`,
);
print('allocated in the function itself (builtins it called included)', self, top);
print('inclusive (project code and the main libraries)', inclusive, top);
print('by file', byFile, Math.min(top, 15));
