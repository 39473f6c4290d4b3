// Bounded work per request (issue 12, items 2, 5 and the body decoding of 9): the worst bodies we could construct
// within the limits are answered quickly and in small answers, and /health/live keeps answering while they are
// processed; non-finite numbers, other charsets and compressed bodies are refused. Real app, real HTTP, embedded
// FHIR server. BOUNDED_WORK_FIGURES=1 prints the measured figures (README, Security, "Limits").
import { monitorEventLoopDelay } from 'node:perf_hooks';
import t from 'tap';
import { loadConfig } from '../../../src/config.js';
import { scanJson } from '../../../src/http/plugins/json-body.js';
import { examplePlan, startTestService, type TestService } from '../../helpers/service.js';
import { type WorstCase, worstCases } from '../../helpers/worst-bodies.js';

/** The bounds, with the margins of a shared machine already in them. */
const MAX_ANSWER_MS = 1000;
const MAX_HEALTH_MS = 100;
const MAX_ANSWER_BYTES = 64 * 1024;

const figures = process.env.BOUNDED_WORK_FIGURES === '1';
let service: TestService;
let base: string;

t.before(async () => {
  service = await startTestService();
  base = await service.app.listen({ port: 0, host: '127.0.0.1' });
});
t.teardown(() => service.close());

async function send(c: WorstCase) {
  const started = performance.now();
  const response = await fetch(`${base}${c.path.replace('{id}', 'bounded-work')}`, {
    method: c.method,
    headers: { 'content-type': c.contentType, 'if-match': 'W/"1"' },
    body: c.body,
  });
  const text = await response.text();
  return { status: response.status, text, ms: performance.now() - started };
}

/**
 * Probes /health/live every 10 ms until `work` settles. A probe's latency counts from when it was due, so time the
 * event loop spent blocked before sending it counts too.
 */
async function healthWhile<T>(
  work: Promise<T>,
): Promise<{ result: T; healthMaxMs: number; loopMaxMs: number }> {
  const loop = monitorEventLoopDelay({ resolution: 5 });
  loop.enable();
  let done = false;
  let healthMaxMs = 0;
  const probes = (async () => {
    let due = performance.now();
    while (!done) {
      const response = await fetch(`${base}/health/live`);
      await response.arrayBuffer();
      if (response.status !== 200) throw new Error(`health answered ${response.status}`);
      healthMaxMs = Math.max(healthMaxMs, performance.now() - due);
      due += 10;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      else due = performance.now();
    }
  })();
  try {
    const result = await work;
    return { result, healthMaxMs, loopMaxMs: loop.max / 1e6 };
  } finally {
    done = true;
    await probes;
    loop.disable();
  }
}

/**
 * Up to three runs of `work`, until one keeps to the bounds. The machines are shared: another process can take the
 * CPU for 100 ms at any time, but a step of our own that blocks that long does so in every run.
 */
async function bestOfThree<T extends { ms: number }>(work: () => Promise<T>, answerMs: number) {
  let best: Awaited<ReturnType<typeof healthWhile<T>>> & { runs: number } = {
    ...(await healthWhile(work())),
    runs: 1,
  };
  while (best.runs < 3 && (best.healthMaxMs >= MAX_HEALTH_MS || best.result.ms >= answerMs)) {
    const again = await healthWhile(work());
    best =
      again.healthMaxMs < best.healthMaxMs
        ? { ...again, runs: best.runs + 1 }
        : { ...best, runs: best.runs + 1 };
  }
  return best;
}

t.test(
  'the worst bodies within the limits: each answered in under 1 s, small, health answering',
  async (t) => {
    const config = service.app.config;
    const cases = worstCases({
      maxValues: config.bodyMaxJsonValues,
      maxArrayItems: config.bodyMaxArrayItems,
      maxStringLength: config.bodyMaxStringLength,
      bodyLimitBytes: config.bodyLimitBytes,
    });
    // once each first, so that the figures are not V8's first compilation of the code paths
    for (const c of cases) await send(c);
    const rows: string[] = [];
    const slowness = new Map<WorstCase, number>();
    for (const c of cases) {
      const { result, healthMaxMs, loopMaxMs, runs } = await bestOfThree(() => send(c), MAX_ANSWER_MS);
      t.equal(result.status, c.status, `${c.name}: ${c.status}`);
      t.ok(result.ms < MAX_ANSWER_MS, `${c.name}: answered in ${result.ms.toFixed(0)} ms`);
      t.ok(
        healthMaxMs < MAX_HEALTH_MS,
        `${c.name}: /health/live answered within ${healthMaxMs.toFixed(0)} ms`,
      );
      t.ok(result.text.length < MAX_ANSWER_BYTES || result.status === 200, `${c.name}: a small answer`);
      if (result.status >= 400) {
        const problem = JSON.parse(result.text) as { errors?: unknown[] };
        t.ok(
          (problem.errors?.length ?? 0) <= 101,
          `${c.name}: at most 100 errors listed and one that counts the rest`,
        );
      }
      rows.push(
        `${c.name.padEnd(62)} ${(c.body.length / 1024).toFixed(0).padStart(5)} KiB -> ${result.status}` +
          ` ${result.ms.toFixed(0).padStart(4)} ms, loop blocked <= ${loopMaxMs.toFixed(0).padStart(3)} ms,` +
          ` health <= ${healthMaxMs.toFixed(0).padStart(3)} ms, answer ${(result.text.length / 1024).toFixed(1)} KiB` +
          (runs > 1 ? ` (best of ${runs} runs)` : ''),
      );
      slowness.set(c, result.ms);
    }
    // several at once: the three slowest together
    const slowest = [...slowness]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 5)
      .map(([c]) => c);
    const together = await bestOfThree(async () => {
      const answers = await Promise.all(slowest.map(send));
      return Object.assign(answers, { ms: Math.max(...answers.map((a) => a.ms)) });
    }, MAX_ANSWER_MS * 2);
    for (const [i, answer] of together.result.entries()) {
      t.equal(answer.status, slowest[i].status, `together: ${slowest[i].name}`);
      t.ok(
        answer.ms < MAX_ANSWER_MS * 2,
        `together: ${slowest[i].name} answered in ${answer.ms.toFixed(0)} ms`,
      );
    }
    t.ok(
      together.healthMaxMs < MAX_HEALTH_MS,
      `three at once: health within ${together.healthMaxMs.toFixed(0)} ms`,
    );
    rows.push(
      `three at once: slowest answer ${Math.max(...together.result.map((a) => a.ms)).toFixed(0)} ms, loop blocked <= ` +
        `${together.loopMaxMs.toFixed(0)} ms, health <= ${together.healthMaxMs.toFixed(0)} ms` +
        (together.runs > 1 ? ` (best of ${together.runs} runs)` : ''),
    );
    if (figures) console.error(rows.join('\n'));
  },
);

t.test('the audit body (100,000 numbers in unmappedFhir.note) is a quick 413 naming the limit', async (t) => {
  const body = `{"patient":{"reference":"Patient/x"},"status":"active","intent":"plan","unmappedFhir":{"note":[${new Array(100_000).fill('1').join(',')}]}}`;
  for (const path of ['/care-plans/$to-fhir', '/care-plans']) {
    const answer = await send({
      name: path,
      method: 'POST',
      path,
      contentType: 'application/json',
      body,
      status: 413,
    });
    t.equal(answer.status, 413, path);
    t.ok(answer.ms < MAX_ANSWER_MS, `${path} in ${answer.ms.toFixed(0)} ms`);
    t.match(JSON.parse(answer.text), {
      type: 'https://shared-care-plans.org/problems/body-too-complex',
      detail: /more than 1000 items or members \(the limit BODY_MAX_ARRAY_ITEMS\)/,
      errors: [{ pointer: '/unmappedFhir/note' }],
    });
  }
});

t.test('FHIR validation lists at most 100 issues and counts the rest', async (t) => {
  // within every limit: 950 notes that are numbers, each an issue of the official schema
  const plan = { ...examplePlan(), unmappedFhir: { note: new Array(950).fill(1) } };
  const answer = await service.app.inject({
    method: 'POST',
    url: '/care-plans/$to-fhir',
    headers: { 'content-type': 'application/json' },
    payload: JSON.stringify(plan),
  });
  t.equal(answer.statusCode, 422);
  const problem = answer.json() as { errors: { pointer: string; detail: string }[] };
  t.equal(problem.errors.length, 101);
  t.match(problem.errors[0], { pointer: '/entry/0/resource/note/0', detail: /must be of JSON type object/ });
  t.match(problem.errors[100], {
    pointer: '',
    detail: 'CarePlan: 850 more issues not listed (at most 100 are reported) (issue-limit)',
  });

  // past 1,000 schema errors validation stops: the rest is "at least"
  const many = await service.app.inject({
    method: 'POST',
    url: '/care-plans/$to-fhir',
    headers: { 'content-type': 'application/json' },
    payload: JSON.stringify({
      ...examplePlan(),
      unmappedFhir: { note: new Array(950).fill(1), goal: new Array(950).fill(1) },
    }),
  });
  t.match((many.json() as { errors: unknown[] }).errors[100], {
    detail: /at least 900 more issues not listed/,
  });

  // the API schema's errors the same way
  const goals = await service.app.inject({
    method: 'POST',
    url: '/care-plans/$to-fhir',
    headers: { 'content-type': 'application/json' },
    payload: JSON.stringify({ ...examplePlan(), goals: new Array(300).fill({}) }),
  });
  t.equal(goals.statusCode, 400);
  const errors = (goals.json() as { errors: { pointer: string; detail: string }[] }).errors;
  t.equal(errors.length, 101);
  t.match(errors[100], { pointer: '', detail: /more errors? not listed \(at most 100 are reported\)/ });
});

t.test('a base64Binary that would backtrack catastrophically is refused at once', async (t) => {
  // 20 groups took over 4 minutes with the official pattern
  const plan = {
    ...examplePlan(),
    unmappedFhir: {
      extension: [{ url: 'http://example.org/x', valueBase64Binary: `${'AAAA  '.repeat(40)}!` }],
    },
  };
  const started = performance.now();
  const answer = await service.app.inject({
    method: 'POST',
    url: '/care-plans/$to-fhir',
    headers: { 'content-type': 'application/json' },
    payload: JSON.stringify(plan),
  });
  t.equal(answer.statusCode, 422);
  t.ok(performance.now() - started < MAX_ANSWER_MS);
  t.match(answer.json(), {
    errors: [{ pointer: /^\/entry\/0\/resource\/extension\/\d+\/valueBase64Binary$/ }],
  });
  // and the safe pattern accepts what the official one accepts
  const valid = {
    ...examplePlan(),
    unmappedFhir: { extension: [{ url: 'http://example.org/x', valueBase64Binary: ' QUJD\nREVG ' }] },
  };
  const ok = await service.app.inject({
    method: 'POST',
    url: '/care-plans/$to-fhir',
    headers: { 'content-type': 'application/json' },
    payload: JSON.stringify(valid),
  });
  t.equal(ok.statusCode, 200);
});

t.test('non-finite numbers are a 400 naming where they are', async (t) => {
  const cases: Array<[string, string, string]> = [
    [
      '/care-plans/$to-fhir',
      '"unmappedFhir":{"extension":[{"url":"http://x","valueDecimal":1e309}]}',
      '/unmappedFhir/extension/0/valueDecimal',
    ],
    ['/care-plans', '"unmappedFhir":{"note":[{"text":"a"}],"x":[-1e400]}', '/unmappedFhir/x/0'],
  ];
  for (const [url, members, pointer] of cases) {
    const answer = await service.app.inject({
      method: 'POST',
      url,
      headers: { 'content-type': 'application/json' },
      payload: `{"patient":{"reference":"Patient/x"},"status":"active","intent":"plan",${members}}`,
    });
    t.equal(answer.statusCode, 400, url);
    t.match(answer.json(), {
      type: 'https://shared-care-plans.org/problems/bad-request',
      detail: /not finite/,
      errors: [{ pointer, detail: /beyond the range of a double/ }],
    });
  }
  const fromFhir = await service.app.inject({
    method: 'POST',
    url: '/care-plans/$from-fhir',
    headers: { 'content-type': 'application/fhir+json' },
    payload:
      '{"resourceType":"CarePlan","status":"active","intent":"plan","subject":{"reference":"Patient/x"},"extension":[{"url":"http://x","valueDecimal":2E+999}]}',
  });
  t.equal(fromFhir.statusCode, 400);
  t.match(fromFhir.json(), { errors: [{ pointer: '/extension/0/valueDecimal' }] });
  // large but finite numbers, and strings that look like numbers, are not this error
  const finite = await service.app.inject({
    method: 'POST',
    url: '/care-plans/$to-fhir',
    headers: { 'content-type': 'application/json' },
    payload: JSON.stringify({
      ...examplePlan(),
      unmappedFhir: {
        extension: [
          { url: 'http://x', valueString: '1e309' },
          { url: 'http://y', valueDecimal: 1e308 },
        ],
      },
    }),
  });
  t.equal(finite.statusCode, 200);
});

t.test('only UTF-8 bodies: another charset is a 415', async (t) => {
  const body = JSON.stringify(examplePlan());
  for (const charset of ['iso-8859-1', 'ISO-8859-1', '"windows-1252"', 'utf-16']) {
    const answer = await fetch(`${base}/care-plans/$to-fhir`, {
      method: 'POST',
      headers: { 'content-type': `application/json; charset=${charset}` },
      body,
    });
    t.equal(answer.status, 415, charset);
    t.match(await answer.json(), {
      type: 'https://shared-care-plans.org/problems/unsupported-media-type',
      detail: /JSON bodies must be UTF-8/,
    });
  }
  for (const type of [
    'application/json; charset=utf-8',
    'application/json;charset=UTF-8',
    'application/fhir+json; charset="utf-8"',
  ]) {
    const answer = await fetch(`${base}/care-plans/$to-fhir`, {
      method: 'POST',
      headers: { 'content-type': type },
      body,
    });
    t.equal(answer.status, 200, type);
    await answer.arrayBuffer();
  }
});

t.test('compressed bodies are a 415: no content coding is supported', async (t) => {
  const body = JSON.stringify(examplePlan());
  for (const encoding of ['br', 'gzip', 'deflate', 'identity, gzip', 'x-unknown']) {
    const answer = await fetch(`${base}/care-plans/$to-fhir`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'content-encoding': encoding },
      body,
    });
    t.equal(answer.status, 415, encoding);
    t.equal(answer.headers.get('accept-encoding'), 'identity');
    t.match(await answer.json(), {
      type: 'https://shared-care-plans.org/problems/unsupported-media-type',
      detail: /Content-Encoding .* is not supported: send the body uncompressed/,
    });
  }
  const identity = await fetch(`${base}/care-plans/$to-fhir`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'content-encoding': 'identity' },
    body,
  });
  t.equal(identity.status, 200, 'identity is no coding');
  await identity.arrayBuffer();
});

t.test('the limits are settings, and the text scan counts what JSON.parse would see', async (t) => {
  t.equal(loadConfig({}).bodyMaxJsonValues, 10_000);
  t.equal(loadConfig({}).bodyMaxArrayItems, 1_000);
  t.equal(loadConfig({}).bodyMaxStringLength, 65_536);
  t.throws(() => loadConfig({ BODY_MAX_STRING_LENGTH: '99' }), /BODY_MAX_STRING_LENGTH must be an integer/);
  t.equal(loadConfig({ BODY_MAX_JSON_VALUES: '500', BODY_MAX_ARRAY_ITEMS: '50' }).bodyMaxArrayItems, 50);
  t.throws(() => loadConfig({ BODY_MAX_JSON_VALUES: '10' }), /BODY_MAX_JSON_VALUES must be an integer/);
  t.throws(() => loadConfig({ BODY_MAX_ARRAY_ITEMS: 'many' }), /BODY_MAX_ARRAY_ITEMS must be an integer/);

  const limits = { maxValues: 10, maxArrayItems: 3, maxDepth: 4, maxStringLength: 8 };
  // brackets, commas and escaped quotes inside strings are text, not structure
  t.same(scanJson('{"a":"[,,,,]","b\\"":"\\\\","c":[1,2,3]}', limits), { nonFinite: false });
  t.same(scanJson('[1,2,3,4]', limits).violation, { kind: 'items', pointer: '' });
  t.same(scanJson('{"x":{"a/b~":[[1],[1,2,3,4]]}}', limits).violation, {
    kind: 'items',
    pointer: '/x/a~1b~0/1',
  });
  t.same(scanJson('{"a":1,"b":2,"c":3,"d":4}', limits).violation, { kind: 'items', pointer: '' });
  t.same(scanJson('[[1,2],[1,2],[1,2]]', limits), { nonFinite: false }, 'exactly 10 values');
  t.same(scanJson('[[1,2],[1,2],[1,2,3]]', limits).violation, { kind: 'values' });
  t.same(scanJson('[[[[1]]]]', limits), { nonFinite: false });
  t.same(scanJson('[[[[[1]]]]]', limits).violation, { kind: 'depth' });
  t.same(scanJson('[1e308, -0.5e-400, 12345678901234567890]', limits), { nonFinite: false });
  t.same(scanJson('[1e309]', limits), { nonFinite: true });
  t.same(scanJson('{"a":"unterminated', limits), { nonFinite: false }, 'not JSON: left to JSON.parse');
  t.same(scanJson('{"a":["ok","123456789"]}', limits).violation, { kind: 'string', pointer: '/a/1' });
  t.same(
    scanJson('{"a":{"123456789":1}}', limits).violation,
    { kind: 'string', pointer: '/a' },
    'a long key',
  );
  t.same(scanJson('"123456789"', limits).violation, { kind: 'string', pointer: '' });
  t.same(scanJson('["a\\"bcdef"]', limits), { nonFinite: false }, 'escapes count as written: 8 characters');

  const small = await startTestService({ BODY_MAX_JSON_VALUES: '500', BODY_MAX_ARRAY_ITEMS: '50' });
  t.teardown(() => small.close());
  const plan = { ...examplePlan(), unmappedFhir: { note: new Array(200).fill({ text: 'a' }) } };
  const answer = await small.app.inject({
    method: 'POST',
    url: '/care-plans/$to-fhir',
    headers: { 'content-type': 'application/json' },
    payload: JSON.stringify(plan),
  });
  t.equal(answer.statusCode, 413);
  t.match(answer.json(), { detail: /more than 50 items or members \(the limit BODY_MAX_ARRAY_ITEMS\)/ });
  const notes = new Array(45).fill({ text: 'a', time: '2026' });
  const values = await small.app.inject({
    method: 'POST',
    url: '/care-plans/$to-fhir',
    headers: { 'content-type': 'application/json' },
    payload: JSON.stringify({
      ...examplePlan(),
      unmappedFhir: { note: notes, noteA: notes, noteB: notes },
    }),
  });
  t.equal(values.statusCode, 413);
  t.match(values.json(), { detail: /more than 500 JSON values \(the limit BODY_MAX_JSON_VALUES\)/ });
});
