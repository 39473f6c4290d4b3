// Fault injection: a loopback proxy in front of the real FHIR server drops connections (before and after
// forwarding), delays, and answers 429/503 at random. Many clients create plans through two service instances
// with retries and Idempotency-Keys. Afterwards every acknowledged plan exists exactly once, with exactly its
// own parts, and nothing exists that was not asked for.
import {
  createServer,
  request as httpRequest,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import type { Bundle } from 'fhir/r4.js';
import t from 'tap';
import { loadConfig } from '../../../../src/config.js';
import { buildApp } from '../../../../src/http/app.js';
import { examplePlan, quietLogger, startTestService, type TestService } from '../../../helpers/service.js';

/** A small seeded random generator, so a failing run can be replayed. */
function seeded(seed: number) {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let x = state;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Sends a request on to the FHIR server and its answer back, unless `loseAnswer()` says the answer is lost on the
 * way back (the server did the work; the client's connection is cut).
 */
function forward(
  target: URL,
  req: IncomingMessage,
  res: ServerResponse,
  body: Buffer,
  loseAnswer: () => boolean,
): void {
  const upstream = httpRequest(
    {
      host: target.hostname,
      port: target.port,
      method: req.method,
      path: req.url,
      headers: { ...req.headers, host: target.host },
    },
    (answer) => {
      const chunks: Buffer[] = [];
      answer.on('data', (chunk) => chunks.push(chunk));
      answer.on('end', () => {
        if (loseAnswer()) {
          req.socket.destroy();
          return;
        }
        res.writeHead(answer.statusCode ?? 502, answer.headers).end(Buffer.concat(chunks));
      });
    },
  );
  upstream.on('error', () => req.socket.destroy());
  upstream.end(body);
}

interface FaultCounts {
  forwarded: number;
  droppedBefore: number;
  droppedAfter: number;
  delayed: number;
  throttled: number;
  unavailable: number;
}

function startFaultyProxy(
  target: URL,
  random: () => number,
): Promise<{ server: Server; baseUrl: string; counts: FaultCounts }> {
  const counts: FaultCounts = {
    forwarded: 0,
    droppedBefore: 0,
    droppedAfter: 0,
    delayed: 0,
    throttled: 0,
    unavailable: 0,
  };
  const server = createServer((req, res) => {
    const roll = random();
    if (roll < 0.06) {
      counts.droppedBefore++;
      req.socket.destroy();
      return;
    }
    if (roll < 0.12) {
      counts.throttled++;
      res.writeHead(429, { 'retry-after': '0', 'content-type': 'application/fhir+json' }).end('{}');
      return;
    }
    if (roll < 0.18) {
      counts.unavailable++;
      res.writeHead(503, { 'content-type': 'text/plain' }).end('busy');
      return;
    }
    const dropAfter = roll < 0.24;
    const delay = roll > 0.85 ? Math.floor(random() * 150) : 0;
    if (delay) counts.delayed++;
    const chunks: Buffer[] = [];
    req.on('data', (chunk) => chunks.push(chunk));
    req.on('end', () => {
      setTimeout(() => {
        counts.forwarded++;
        forward(target, req, res, Buffer.concat(chunks), () => {
          // The FHIR server did the work, but the answer is lost on the way back.
          if (dropAfter) counts.droppedAfter++;
          return dropAfter;
        });
      }, delay);
    });
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      resolve({ server, baseUrl: `http://127.0.0.1:${port}${target.pathname}`, counts });
    }),
  );
}

t.test('nothing acknowledged is lost or duplicated when the network misbehaves', async (t) => {
  const fhir: TestService = await startTestService();
  t.teardown(() => fhir.close());
  const proxy = await startFaultyProxy(
    new URL(fhir.fhirBaseUrl),
    seeded(Number(process.env.FAULT_SEED ?? 42)),
  );
  t.teardown(() => new Promise<void>((resolve) => proxy.server.close(() => resolve())));
  const instances: FastifyInstance[] = [];
  // One instance retries a lot, the other hardly: its clients see the failures and retry themselves.
  for (const retries of ['6', '1']) {
    const app = await buildApp(
      { ...loadConfig({ FHIR_TIMEOUT_MS: '3000', FHIR_MAX_RETRIES: retries }), fhirBaseUrl: proxy.baseUrl },
      { logger: quietLogger },
    );
    instances.push(app);
    t.teardown(() => app.close());
  }

  const plans: { key: string; plan: { patient: { reference: string } } }[] = [];
  for (let i = 0; i < 60; i++) {
    const plan = examplePlan() as { patient: { reference: string } };
    plan.patient = { reference: await fhir.newPatient(`fault-${i}`) };
    plans.push({ key: `fault-key-${i}-${Math.random()}`, plan });
  }
  const acknowledged = new Map<string, string>(); // patient -> plan id
  let attempts = 0;
  let clientFailures = 0;
  const queue = [...plans];
  const client = async (worker: number) => {
    for (let job = queue.shift(); job; job = queue.shift()) {
      for (let attempt = 0; attempt < 12; attempt++) {
        attempts++;
        // Retries may land on the other instance, as behind a load balancer.
        const app = instances[(worker + attempt) % instances.length];
        const reply = await app.inject({
          method: 'POST',
          url: '/care-plans',
          headers: { 'content-type': 'application/json', 'idempotency-key': job.key },
          payload: JSON.stringify(job.plan),
        });
        if (reply.statusCode === 201) {
          const id = reply.json().id as string;
          const before = acknowledged.get(job.plan.patient.reference);
          if (before && before !== id)
            t.fail(`two different plans acknowledged for one key: ${before}, ${id}`);
          acknowledged.set(job.plan.patient.reference, id);
          break;
        }
        if (reply.statusCode < 500 && reply.statusCode !== 409 && reply.statusCode !== 429) {
          t.fail(`unexpected ${reply.statusCode}: ${reply.body}`);
          break;
        }
        clientFailures++;
        // As a well-behaved client does: wait as Retry-After says (an open circuit breaker answers fast 503s for
        // seconds; twelve immediate retries would all land in it), else back off a little more each time.
        const retryAfterS = Number(reply.headers['retry-after']);
        const waitMs =
          Number.isFinite(retryAfterS) && retryAfterS > 0 ? retryAfterS * 1000 : 50 * 2 ** attempt;
        await new Promise((resolve) => setTimeout(resolve, Math.min(waitMs, 5000)));
      }
    }
  };
  await Promise.all(Array.from({ length: 8 }, (_, worker) => client(worker)));

  // Check on the FHIR server itself, not through the proxy.
  const count = async (type: string, patient?: string) => {
    const { body } = await fhir.fhir<Bundle>(`${type}?_count=1000${patient ? `&subject=${patient}` : ''}`);
    return body.total ?? body.entry?.length ?? 0;
  };
  let exact = 0;
  let carePlansOnServer = 0;
  let goalsOnServer = 0;
  // Every plan of the test's patients (on a shared server, other tests' data is not ours to count).
  for (const { plan } of plans) carePlansOnServer += await count('CarePlan', plan.patient.reference);
  for (const { plan } of plans) goalsOnServer += await count('Goal', plan.patient.reference);
  for (const { plan } of plans) {
    const patient = plan.patient.reference;
    if (!acknowledged.has(patient)) continue;
    const counts = [
      await count('CarePlan', patient),
      await count('Goal', patient),
      await count('CareTeam', patient),
      await count('Observation', patient),
      await count('Condition', patient),
    ];
    if (counts.join() === '1,2,1,5,2') exact++;
    else t.fail(`${patient}: CarePlan, Goal, CareTeam, Observation, Condition = ${counts.join()}`);
  }
  t.equal(acknowledged.size, plans.length, 'every plan was eventually acknowledged');
  t.equal(exact, acknowledged.size, 'every acknowledged plan exists exactly once with exactly its own parts');
  t.equal(carePlansOnServer, acknowledged.size, 'nothing exists that was not asked for');
  t.equal(goalsOnServer, 2 * acknowledged.size, 'no orphan goals');
  t.ok(
    proxy.counts.droppedAfter +
      proxy.counts.droppedBefore +
      proxy.counts.throttled +
      proxy.counts.unavailable >
      20,
    'faults were injected',
  );
  t.comment(
    `fault injection: ${plans.length} plans, ${attempts} client attempts (${clientFailures} answered 5xx/409/429 and retried), ` +
      `acknowledged ${acknowledged.size}, CarePlans on server ${carePlansOnServer}; proxy: ${JSON.stringify(proxy.counts)}`,
  );
});

/** A proxy that forwards everything, but loses the answer of every transaction after the FHIR server did it. */
function startAnswerLosingProxy(
  target: URL,
): Promise<{ server: Server; baseUrl: string; lost: () => number }> {
  let lost = 0;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      forward(target, req, res, body, () => {
        // A transaction, not a batch (the service reads parts with a batch).
        const isTransaction = req.method === 'POST' && /"type":\s*"transaction"/.test(body.toString());
        if (isTransaction) lost++;
        return isTransaction;
      });
    });
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      resolve({ server, baseUrl: `http://127.0.0.1:${port}${target.pathname}`, lost: () => lost });
    }),
  );
}

t.test('an edit whose answer was lost after it committed answers success, once', async (t) => {
  const fhir: TestService = await startTestService();
  t.teardown(() => fhir.close());
  const proxy = await startAnswerLosingProxy(new URL(fhir.fhirBaseUrl));
  t.teardown(() => new Promise<void>((resolve) => proxy.server.close(() => resolve())));
  const app = await buildApp(
    { ...loadConfig({ FHIR_TIMEOUT_MS: '3000', FHIR_MAX_RETRIES: '0' }), fhirBaseUrl: proxy.baseUrl },
    { logger: quietLogger },
  );
  t.teardown(() => app.close());
  const plan = examplePlan() as { patient: { reference: string } };
  plan.patient = { reference: await fhir.newPatient('lost-answer') };
  const created = await fhir.app.inject({ method: 'POST', url: '/care-plans', payload: plan });
  const id = created.json().id as string;
  const edited = await app.inject({
    method: 'PATCH',
    url: `/care-plans/${id}/goals/walk-to-market`,
    headers: { 'if-match': created.headers.etag as string, 'content-type': 'application/json' },
    payload: { achievementStatus: 'achieved' },
  });
  t.equal(proxy.lost(), 1, 'the answer of the transaction was lost');
  t.equal(edited.statusCode, 200, 'the edit answers success: its write is there');
  t.equal(edited.json().goals[0].achievementStatus, 'achieved');
  const history = await fhir.app.inject({ method: 'GET', url: `/care-plans/${id}/history` });
  t.equal(history.json().items.length, 2, 'one version more, not two');
  t.equal(edited.headers.etag, `W/"${history.json().items[0].version}"`, 'the ETag of that version');
});

t.test('edits retried with an Idempotency-Key under faults: each applied exactly once', async (t) => {
  const fhir: TestService = await startTestService();
  t.teardown(() => fhir.close());
  const proxy = await startFaultyProxy(
    new URL(fhir.fhirBaseUrl),
    seeded(Number(process.env.FAULT_SEED ?? 7)),
  );
  t.teardown(() => new Promise<void>((resolve) => proxy.server.close(() => resolve())));
  const instances: FastifyInstance[] = [];
  for (const retries of ['6', '0']) {
    const app = await buildApp(
      { ...loadConfig({ FHIR_TIMEOUT_MS: '3000', FHIR_MAX_RETRIES: retries }), fhirBaseUrl: proxy.baseUrl },
      { logger: quietLogger },
    );
    instances.push(app);
    t.teardown(() => app.close());
  }
  const plans: { id: string; etag: string; patient: string }[] = [];
  for (let i = 0; i < 20; i++) {
    const plan = examplePlan() as { patient: { reference: string } };
    plan.patient = { reference: await fhir.newPatient(`edit-fault-${i}`) };
    const created = await fhir.app.inject({ method: 'POST', url: '/care-plans', payload: plan });
    plans.push({
      id: created.json().id,
      etag: created.headers.etag as string,
      patient: plan.patient.reference,
    });
  }
  let attempts = 0;
  let retried = 0;
  let replayed = 0;
  const queue = [...plans];
  const client = async (worker: number) => {
    for (let job = queue.shift(); job; job = queue.shift()) {
      const key = `add-goal-${job.id}`;
      for (let attempt = 0; attempt < 15; attempt++) {
        attempts++;
        // The same request every time (key, If-Match, body), on either instance.
        const reply = await instances[(worker + attempt) % instances.length].inject({
          method: 'POST',
          url: `/care-plans/${job.id}/goals`,
          headers: { 'if-match': job.etag, 'idempotency-key': key, 'content-type': 'application/json' },
          payload: {
            key: 'garden',
            description: { text: 'Plant tomatoes in spring' },
            lifecycleStatus: 'proposed',
          },
        });
        if (reply.statusCode === 201) {
          if (reply.headers['idempotent-replayed'] === 'true') replayed++;
          break;
        }
        if (reply.statusCode < 500 && reply.statusCode !== 409 && reply.statusCode !== 429) {
          t.fail(`unexpected ${reply.statusCode}: ${reply.body}`);
          break;
        }
        retried++;
      }
    }
  };
  await Promise.all(Array.from({ length: 5 }, (_, worker) => client(worker)));
  let exact = 0;
  for (const { id, patient } of plans) {
    const read = await fhir.app.inject({ method: 'GET', url: `/care-plans/${id}` });
    const keys = (read.json().goals as { key?: string }[]).map((g) => g.key);
    const { body } = await fhir.fhir<Bundle>(`Goal?subject=${patient}&_count=100`);
    const onServer = body.total ?? body.entry?.length ?? 0;
    if (keys.join() === 'walk-to-market,blood-sugar,garden' && onServer === 3) exact++;
    else t.fail(`${id}: goals ${keys.join()}, ${onServer} on the server`);
  }
  t.equal(exact, plans.length, 'every plan got the goal exactly once');
  t.ok(retried > 0, 'some edits failed and were retried');
  t.comment(
    `edit faults: ${plans.length} edits, ${attempts} attempts (${retried} answered 5xx/409/429 and retried, ${replayed} answered as replays); proxy: ${JSON.stringify(proxy.counts)}`,
  );
});
