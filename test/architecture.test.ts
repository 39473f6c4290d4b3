// The house's rules (README, "Architecture"): the import rules of .dependency-cruiser.cjs hold for src/ and fail on
// every kind of violation planted in a copy of it; no source file is over 450 lines but generated ones.
import { execFile } from 'node:child_process';
import {
  cpSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { fromRoot } from '../src/paths.js';

const run = promisify(execFile);
const CRUISER = fromRoot('node_modules', 'dependency-cruiser', 'bin', 'dependency-cruise.mjs');

interface Violation {
  rule: string;
  from: string;
}

/**
 * Runs the project's import rules over `root`/src as `npm run lint:imports` does: the exit code (the number of
 * errors) and the violations it lists (rule, from).
 */
async function cruise(root: string): Promise<{ code: number; violations: Violation[] }> {
  const args = [CRUISER, '--config', '.dependency-cruiser.cjs', '--output-type', 'err', 'src'];
  let code = 0;
  let stdout: string;
  try {
    ({ stdout } = await run(process.execPath, args, { cwd: root, maxBuffer: 64 * 1024 * 1024 }));
  } catch (error) {
    ({ code, stdout } = error as { code: number; stdout: string });
  }
  const violations = [...stdout.matchAll(/^\s*error (\S+): (\S+) →/gm)].map(([, rule, from]) => ({
    rule,
    from,
  }));
  return { code, violations };
}

/** A copy of the project's src/ and its rules, where violations can be planted. */
function copyOfTheHouse(): string {
  const root = mkdtempSync(join(tmpdir(), 'house-'));
  cpSync(fromRoot('src'), join(root, 'src'), { recursive: true });
  for (const file of ['.dependency-cruiser.cjs', 'tsconfig.json', 'package.json']) {
    cpSync(fromRoot(file), join(root, file));
  }
  symlinkSync(fromRoot('node_modules'), join(root, 'node_modules'), 'dir');
  return root;
}

/** Each planted file (path in src/, its imports) and the rules that must refuse it. */
const PLANTS: { file: string; text: string; rules: string[] }[] = [
  {
    // Two files that import each other (the cycle is reported once, from the first of them).
    file: 'src/care-plans/plant-a.ts',
    text: "import { b } from './plant-b.js';\nexport const a = () => b;\n",
    rules: ['no-cycles'],
  },
  {
    file: 'src/care-plans/plant-b.ts',
    text: "import { a } from './plant-a.js';\nexport const b = () => a;\n",
    rules: [],
  },
  {
    file: 'src/model/plant-http.ts',
    text: "import { ApiProblem } from '../http/problems.js';\nexport const p = ApiProblem;\n",
    rules: ['model-imports-only-model', 'lower-floors-never-import-http'],
  },
  {
    file: 'src/model/plant-io.ts',
    text: "import { readFileSync } from 'node:fs';\nexport const r = readFileSync;\n",
    rules: ['model-imports-only-model', 'model-does-no-io'],
  },
  {
    file: 'src/fhir/mapping/plant-client.ts',
    text: "import { FhirGateway } from '../client/gateway.js';\nexport const g = FhirGateway;\n",
    rules: ['mapping-imports-only-model'],
  },
  {
    file: 'src/fhir/mapping/plant-io.ts',
    text: "import { createServer } from 'node:http';\nimport Fastify from 'fastify';\nexport const s = [createServer, Fastify];\n",
    rules: ['mapping-does-no-io'],
  },
  {
    file: 'src/fhir/validation/plant-io.ts',
    text: "import { connect } from 'node:net';\nexport const c = connect;\n",
    rules: ['mapping-does-no-io'],
  },
  {
    file: 'src/fhir/client/plant-model.ts',
    text: "import type { SharedCarePlan } from '../../model/care-plan.js';\nexport type P = SharedCarePlan;\n",
    rules: ['client-knows-no-model'],
  },
  {
    // A use-case folder that does not exist yet: the rules cover every such floor.
    file: 'src/subscriptions/plant-http.ts',
    text: "import { formatEtag } from '../http/etag.js';\nexport const e = formatEtag;\n",
    rules: ['use-cases-know-no-http', 'lower-floors-never-import-http'],
  },
  {
    // A type-only import counts too.
    file: 'src/care-plans/plant-fastify.ts',
    text: "import type { FastifyInstance } from 'fastify';\nexport type F = FastifyInstance;\n",
    rules: ['use-cases-know-no-http'],
  },
  {
    file: 'src/embedded-fhir/plant-service.ts',
    text: "import { checkPlanRules } from '../model/care-plan.js';\nexport const c = checkPlanRules;\n",
    rules: ['embedded-server-imports-no-service'],
  },
  {
    file: 'src/http/plant-embedded.ts',
    text: "import { startEmbeddedFhirServer } from '../embedded-fhir/server.js';\nexport const s = startEmbeddedFhirServer;\n",
    rules: ['only-the-entry-starts-the-embedded-server'],
  },
  {
    file: 'src/auth/plant-use-case.ts',
    text: "import { maySee } from '../care-plans/access.js';\nexport const m = maySee;\n",
    rules: ['auth-imports-only-fhir-id'],
  },
];

t.test('the import rules hold for src/', async (t) => {
  const { code, violations } = await cruise(fromRoot());
  t.same(
    violations.map((v) => `${v.rule}: ${v.from}`),
    [],
    'no violations',
  );
  t.equal(code, 0, 'the check passes');
});

t.test('the import rules fail on every kind of planted violation', async (t) => {
  const root = copyOfTheHouse();
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const clean = await cruise(root);
  t.equal(clean.code, 0, 'the copy passes as it is');
  for (const plant of PLANTS) {
    mkdirSync(dirname(join(root, plant.file)), { recursive: true });
    writeFileSync(join(root, plant.file), plant.text);
  }
  // An arrow from the process's ground floor up into the model, added to an existing file.
  const paths = join(root, 'src', 'paths.ts');
  writeFileSync(
    paths,
    `${readFileSync(paths, 'utf8')}\nexport type { SharedCarePlan } from './model/care-plan.js';\n`,
  );
  const planted = await cruise(root);
  t.not(planted.code, 0, 'the check fails');
  for (const plant of PLANTS) {
    const found = new Set(planted.violations.filter((v) => v.from === plant.file).map((v) => v.rule));
    for (const rule of plant.rules) t.ok(found.has(rule), `${plant.file}: ${rule}`);
  }
  t.ok(
    planted.violations.some((v) => v.from === 'src/paths.ts' && v.rule === 'process-ground-stays-ground'),
    'src/paths.ts -> src/model: process-ground-stays-ground',
  );
  const plantedFiles = new Set([...PLANTS.map((p) => p.file), 'src/paths.ts']);
  t.same(
    planted.violations.filter((v) => !plantedFiles.has(v.from)).map((v) => `${v.rule}: ${v.from}`),
    [],
    'nothing else is reported',
  );
});

/** Line limit of every source file (the project's brief), generated files excepted. */
const MAX_LINES = 450;
const GENERATED = [/^src\/model\/care-plan\.generated\.ts$/, /^src\/fhir\/validation\/generated\//];
function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return /\.(ts|mts|js|mjs)$/.test(entry.name) ? [path] : [];
  });
}

t.test(`no source file over ${MAX_LINES} lines, generated ones excepted`, async (t) => {
  const root = dirname(fromRoot('src'));
  const over: string[] = [];
  for (const path of sourceFiles(fromRoot('src'))) {
    const file = relative(root, path).split('\\').join('/');
    if (GENERATED.some((pattern) => pattern.test(file))) continue;
    const lines = readFileSync(path, 'utf8').split('\n').length - 1;
    if (lines > MAX_LINES) over.push(`${file}: ${lines}`);
  }
  t.same(over, [], `every other file has at most ${MAX_LINES} lines`);
});
