// A bounded soak: 1,000 plan changes, then all of them delivered to a receiver that fails one delivery in five;
// every event exactly in order, every signature verified (standardwebhooks), the counts printed. It also measures
// the delivery's CPU per event against a plan write's (the process holds the embedded FHIR server too, so both
// figures include the FHIR server's work for them). README, "Webhooks", quotes the figures.
import t from 'tap';
import { examplePlan, type Json, startTestService, type TestService } from '../../../helpers/service.js';
import { deliveryFigures, startReceiver } from '../../../helpers/webhook-receiver.js';

const PLANS = 50;
const CHANGES_PER_PLAN = 20; // a create, 18 goal changes, the end
const CHANGES = PLANS * CHANGES_PER_PLAN;

// The writes dominate (a thousand FHIR transactions on a shared 2-core machine): more than tap's default 180 s.
t.setTimeout(420_000);
let service: TestService;
t.before(async () => {
  service = await startTestService({
    CHANGE_FEED_SETTLE_MS: '100',
    WEBHOOK_POLL_MS: '100',
    WEBHOOK_RETRY_MIN_MS: '10',
    WEBHOOK_RETRY_MAX_MS: '50',
  });
});
t.teardown(() => service.close());

const call = async (method: string, url: string, body?: unknown, headers: Record<string, string> = {}) => {
  const reply = await service.app.inject({
    method: method as 'GET',
    url,
    headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
    ...(body === undefined ? {} : { payload: JSON.stringify(body) }),
  });
  if (reply.statusCode >= 300) throw new Error(`${method} ${url}: ${reply.statusCode} ${reply.body}`);
  return { headers: reply.headers, body: reply.json() as Json };
};

const cpuMs = (since: NodeJS.CpuUsage) => {
  const used = process.cpuUsage(since);
  return (used.user + used.system) / 1000;
};

t.test(`${CHANGES} plan changes, delivered to a receiver that fails one delivery in five`, async (t) => {
  const patient = await service.newPatient('soak');
  // First the subscription is off (the receiver answers 410 to event 1), so that the writes are measured alone.
  let failing = false;
  const receiver = await startReceiver((n) =>
    !failing ? { status: 410 } : n % 5 === 0 ? { status: 503 } : { status: 200 },
  );
  t.teardown(() => receiver.close());
  const sub = (await call('POST', '/subscriptions', { endpoint: receiver.url, patient })).body;
  receiver.secret = sub.secret;

  const writesStarted = process.cpuUsage();
  const writesWall = performance.now();
  const writer = async (first: number) => {
    for (let p = first; p < PLANS; p += 4) {
      const plan = examplePlan() as Json;
      plan.patient.reference = patient;
      const made = await call('POST', '/care-plans', plan);
      let etag = made.headers.etag as string;
      for (let i = 0; i < CHANGES_PER_PLAN - 2; i++) {
        const status = i % 2 ? 'improving' : 'worsening';
        const url = `/care-plans/${made.body.id}/goals/walk-to-market`;
        etag = (await call('PATCH', url, { achievementStatus: status }, { 'if-match': etag })).headers
          .etag as string;
      }
      await call('DELETE', `/care-plans/${made.body.id}`, undefined, { 'if-match': etag });
    }
  };
  await Promise.all([0, 1, 2, 3].map(writer));
  const writeCpu = cpuMs(writesStarted) / CHANGES;
  const writeWall = (performance.now() - writesWall) / CHANGES;
  await receiver.waitFor((d) => d.length >= 1);
  t.equal((await call('GET', `/subscriptions/${sub.id}`)).body.status, 'off', 'off after the 410');

  failing = true;
  receiver.deliveries.length = 0;
  const deliveryStarted = process.cpuUsage();
  const deliveryWall = performance.now();
  await call('POST', `/subscriptions/${sub.id}/$replay`, { fromEvent: 1 });
  await receiver.waitFor((d) => deliveryFigures(d).distinct >= CHANGES, 150_000);
  const eventCpu = cpuMs(deliveryStarted) / CHANGES;
  const eventWall = (performance.now() - deliveryWall) / CHANGES;
  await new Promise((resolve) => setTimeout(resolve, 300));

  const figures = deliveryFigures(receiver.deliveries);
  const failed = receiver.deliveries.filter((d) => d.answered !== 200).length;
  t.comment(
    `soak: changes made ${CHANGES}, events delivered ${figures.distinct}, attempts ${receiver.deliveries.length} ` +
      `(${failed} failed by the receiver), duplicates ${figures.duplicates}, gaps ${figures.gaps}, ` +
      `order violations ${figures.orderViolations}, lost ${CHANGES - figures.distinct}`,
  );
  t.comment(
    `cost: a plan write ${writeCpu.toFixed(2)} ms CPU (${writeWall.toFixed(1)} ms wall, 4 writers); ` +
      `a delivered event ${eventCpu.toFixed(2)} ms CPU (${eventWall.toFixed(1)} ms wall, retries and backoff included)`,
  );
  t.same(
    {
      distinct: figures.distinct,
      highest: figures.highest,
      duplicates: figures.duplicates,
      gaps: figures.gaps,
      orderViolations: figures.orderViolations,
    },
    { distinct: CHANGES, highest: CHANGES, duplicates: 0, gaps: 0, orderViolations: 0 },
    'every change delivered once acknowledged, in order, without gaps',
  );
  t.equal(failed, Math.floor(receiver.deliveries.length / 5), 'one attempt in five failed, and was retried');
  t.ok(
    receiver.deliveries.every((d) => d.verified),
    'every signature verifies (standardwebhooks)',
  );
  t.ok(eventCpu < writeCpu, 'a delivered event costs less CPU than a plan write');
  t.match((await call('GET', `/subscriptions/${sub.id}/status`)).body, {
    lastDelivered: CHANGES,
    backlog: 0,
  });
});
