// Signed webhooks through the real app on a real FHIR server (the embedded one; HAPI in test:hapi), with receivers
// on loopback that verify every signature with the `standardwebhooks` package.
import type { Bundle, Subscription } from 'fhir/r4.js';
import t from 'tap';
import {
  examplePlan,
  injectJson,
  type Json,
  startTestService,
  type TestService,
} from '../../../helpers/service.js';
import {
  type Delivery,
  deliveryFigures,
  type Receiver,
  startReceiver,
} from '../../../helpers/webhook-receiver.js';

// Short settings, so that retries and the settle window take milliseconds, not seconds.
const FAST = {
  CHANGE_FEED_SETTLE_MS: '200',
  WEBHOOK_POLL_MS: '100',
  WEBHOOK_RETRY_MIN_MS: '50',
  WEBHOOK_RETRY_MAX_MS: '200',
  WEBHOOK_TIMEOUT_MS: '700',
  WEBHOOK_LEASE_MS: '3000',
};

let service: TestService;
const receivers: Receiver[] = [];
t.before(async () => {
  service = await startTestService(FAST);
});
t.teardown(async () => {
  await service.close();
  for (const receiver of receivers) await receiver.close();
});

const call = (method: string, url: string, body?: unknown, headers?: Record<string, string>) =>
  injectJson(service.app, method, url, body, headers);

async function receiver(behaviour?: Parameters<typeof startReceiver>[0]) {
  const started = await startReceiver(behaviour);
  receivers.push(started);
  return started;
}

async function subscribe(to: Receiver, patient: string, extra: Json = {}) {
  const created = await call('POST', '/subscriptions', { endpoint: to.url, patient, ...extra });
  if (created.status !== 201) throw new Error(`subscribe: ${created.status} ${JSON.stringify(created.body)}`);
  to.secret = created.body?.secret;
  return created.body as Json;
}

/** A plan and `edits` goal changes, then its end: 1 + edits + 1 versions; returns the plan id. */
async function planWithChanges(patient: string, edits: number): Promise<string> {
  const plan = examplePlan() as Json;
  plan.patient.reference = patient;
  const created = await call('POST', '/care-plans', plan);
  let etag = created.headers.etag as string;
  const id = created.body?.id as string;
  for (let i = 0; i < edits; i++) {
    const changed = await call(
      'PATCH',
      `/care-plans/${id}/goals/walk-to-market`,
      { achievementStatus: i % 2 ? 'improving' : 'worsening' },
      { 'if-match': etag },
    );
    etag = changed.headers.etag as string;
  }
  const ended = await call('DELETE', `/care-plans/${id}`, undefined, { 'if-match': etag });
  if (ended.status !== 200 && ended.status !== 204) throw new Error(`end: ${ended.status}`);
  return id;
}

/** Every repeat of a webhook-id follows a failed (unacknowledged) attempt of the same event. */
function repeatsOnlyAfterFailures(deliveries: Delivery[]): boolean {
  const failedBefore = new Set<string>();
  const acknowledged = new Set<string>();
  for (const d of deliveries) {
    if (acknowledged.has(d.webhookId)) return false;
    if (d.answered >= 200 && d.answered < 300) acknowledged.add(d.webhookId);
    else failedBefore.add(d.webhookId);
  }
  return true;
}

t.test(
  'POST /subscriptions: the secret once, a Subscription on the FHIR server, never the secret in clear',
  async (t) => {
    const patient = await service.newPatient('sub-create');
    const to = await receiver();
    const created = await subscribe(to, patient, { description: 'community app sync' });
    t.match(created.secret, /^whsec_[A-Za-z0-9+/]{43}=$/, 'a Standard Webhooks secret, 32 bytes');
    t.same(
      created.events,
      ['care-plan.created', 'care-plan.updated', 'care-plan.ended'],
      'default: all events',
    );
    t.equal(created.status, 'active');
    t.equal(created.patient, patient);
    const read = await call('GET', `/subscriptions/${created.id}`);
    t.equal(read.status, 200);
    t.notOk('secret' in (read.body as Json), 'GET never shows the secret');
    t.equal(read.body?.description, 'community app sync');
    const listed = await call('GET', '/subscriptions');
    t.ok(
      listed.body?.items.some((s: Json) => s.id === created.id && !('secret' in s)),
      'listed without secret',
    );
    const stored = await service.fhir<Subscription>(`Subscription/${created.id}`);
    t.equal(stored.status, 200);
    t.equal(stored.body.channel.type, 'rest-hook');
    t.equal(stored.body.channel.endpoint, to.url);
    t.equal(stored.body.criteria, 'https://shared-care-plans.org/fhir/SubscriptionTopic/care-plan-changes');
    const raw = JSON.stringify(stored.body);
    t.notOk(raw.includes(created.secret.slice(6)), 'the FHIR server holds the secret only encrypted');
    t.ok(
      stored.body.meta?.profile?.some((p) => p.endsWith('/backport-subscription')),
      'backport profile claimed',
    );
    const gone = await call('DELETE', `/subscriptions/${created.id}`);
    t.equal(gone.status, 204);
    t.equal((await call('GET', `/subscriptions/${created.id}`)).status, 404);
  },
);

t.test('bad subscriptions are 400/422 problems and store nothing', async (t) => {
  // Counted, not listed: HAPI's pages hold at most 50.
  const stored = async () => (await service.fhir<Bundle>('Subscription?_summary=count')).body.total;
  const before = await stored();
  const cases: [Json, number, string][] = [
    [{}, 400, '/endpoint'],
    [{ endpoint: 'http://127.0.0.1:1/x', extra: 1 }, 400, '/extra'],
    [{ endpoint: 'http://127.0.0.1:1/x', events: ['care-plan.deleted'] }, 400, '/events/0'],
    [{ endpoint: 'not a url' }, 422, '/endpoint'],
    [{ endpoint: 'http://example.org/hook' }, 422, '/endpoint'],
    [{ endpoint: 'https://10.1.2.3/hook' }, 422, '/endpoint'],
    [{ endpoint: 'https://169.254.169.254/latest' }, 422, '/endpoint'],
    [{ endpoint: 'https://[fd00::1]/hook' }, 422, '/endpoint'],
    [{ endpoint: 'https://user:pw@example.org/hook' }, 422, '/endpoint'],
    [{ endpoint: 'ftp://example.org/hook' }, 422, '/endpoint'],
    [{ endpoint: 'https://example.org/hook', patient: 'Group/1' }, 400, '/patient'],
  ];
  for (const [body, status, pointer] of cases) {
    const answer = await call('POST', '/subscriptions', body);
    t.equal(answer.status, status, `${JSON.stringify(body)}: ${status}`);
    t.match(answer.headers['content-type'], /application\/problem\+json/);
    t.ok(
      answer.body?.errors?.some((e: Json) => e.pointer === pointer),
      `names ${pointer}: ${JSON.stringify(answer.body?.errors)}`,
    );
  }
  t.equal(await stored(), before, 'nothing stored');
});

t.test(
  'one signed event per plan version, in order, retried after failures with the same webhook-id',
  async (t) => {
    const patient = await service.newPatient('sub-order');
    // Fails its first two deliveries (a 503 with Retry-After, then a 500).
    const to = await receiver((n) =>
      n === 1
        ? { status: 503, headers: { 'retry-after': '0' } }
        : n === 2
          ? { status: 500 }
          : { status: 200 },
    );
    const sub = await subscribe(to, patient, {});
    const edits = 3;
    const planId = await planWithChanges(patient, edits);
    const expected = edits + 2;
    await to.waitFor((d) => deliveryFigures(d).distinct === expected);
    const figures = deliveryFigures(to.deliveries);
    t.same(
      { ...figures, acknowledged: figures.acknowledged },
      {
        acknowledged: expected,
        highest: expected,
        distinct: expected,
        duplicates: 0,
        gaps: 0,
        orderViolations: 0,
      },
    );
    t.equal(to.deliveries.length, expected + 2, 'two failed attempts, retried');
    t.ok(
      to.deliveries.every((d) => d.verified),
      'every signature verifies (standardwebhooks)',
    );
    t.equal(to.deliveries[0].webhookId, to.deliveries[2].webhookId, 'a retry carries the same webhook-id');
    t.ok(repeatsOnlyAfterFailures(to.deliveries), 'an event is seen again only after a failure');
    const acked = to.deliveries.filter((d) => d.answered === 200);
    t.same(
      acked.map((d) => d.body.type),
      ['care-plan.created', ...Array(edits).fill('care-plan.updated'), 'care-plan.ended'],
    );
    t.ok(acked.every((d) => d.body.data.plan.id === planId && d.body.data.plan.patient === patient));
    t.ok(acked.every((d) => d.body.data.subscription === sub.id));
    t.same(Object.keys(acked[0].body.data.plan).sort(), [
      'id',
      'lastUpdated',
      'patient',
      'status',
      'version',
    ]);
    t.equal(new Set(acked.map((d) => d.body.data.plan.version)).size, expected, 'every version, each once');
    // `_since` the epoch: every version (HAPI answers a plain history from a cached count; test/hapi/README.md).
    const history = await service.fhir<Bundle>(`CarePlan/${planId}/_history?_since=1970-01-01T00:00:00Z`);
    t.same(
      acked.map((d) => d.body.data.plan.version),
      (history.body.entry ?? []).map((e) => e.resource?.meta?.versionId).reverse(),
      "the versions of the CarePlan's history on the FHIR server, oldest first",
    );
    // Acknowledgements are recorded at least every WEBHOOK_POLL_MS: the status once the last one is (or after 10 s).
    let status = await call('GET', `/subscriptions/${sub.id}/status`);
    for (const until = Date.now() + 10_000; status.body?.lastDelivered !== expected && Date.now() < until; ) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      status = await call('GET', `/subscriptions/${sub.id}/status`);
    }
    t.match(status.body, {
      status: 'active',
      lastEventNumber: expected,
      lastDelivered: expected,
      backlog: 0,
    });
    t.match(status.body?.lastError?.message, /500/, 'the last error is kept with its time');

    // Replay from event 2: events 2.. again, the same ids, numbered as before.
    const replay = await call('POST', `/subscriptions/${sub.id}/$replay`, { fromEvent: 2 });
    t.equal(replay.status, 200);
    const before = to.deliveries.length;
    await to.waitFor((d) => d.length >= before + expected - 1);
    const again = to.deliveries.slice(before);
    t.same(
      again.map((d) => d.body.data.eventNumber),
      [2, 3, 4, 5],
    );
    t.same(
      again.map((d) => d.webhookId),
      acked.slice(1).map((d) => d.webhookId),
      'a replayed event keeps its webhook-id',
    );
    t.equal((await call('POST', `/subscriptions/${sub.id}/$replay`, { fromEvent: 99 })).status, 422);
    await call('DELETE', `/subscriptions/${sub.id}`);
  },
);

t.test('a receiver that hangs past the timeout gets the event again; filters by event type', async (t) => {
  const patient = await service.newPatient('sub-hang');
  const to = await receiver((n) => (n === 1 ? 'hang' : { status: 202 }));
  const sub = await subscribe(to, patient, { events: ['care-plan.ended'] });
  const started = Date.now();
  await planWithChanges(patient, 1);
  t.ok(Date.now() - started < 30_000, 'writes never wait for the receiver');
  await to.waitFor((d) => d.some((x) => x.answered === 202));
  t.equal(to.deliveries.length, 2);
  t.equal(to.deliveries[0].webhookId, to.deliveries[1].webhookId, 'the same event after the timeout');
  t.same(
    to.deliveries.map((d) => [d.body.type, d.body.data.eventNumber]),
    [
      ['care-plan.ended', 1],
      ['care-plan.ended', 1],
    ],
  );
  const status = await call('GET', `/subscriptions/${sub.id}/status`);
  t.match(status.body?.lastError?.message, /did not answer within 700 ms/);
  await call('DELETE', `/subscriptions/${sub.id}`);
});

t.test('410 Gone turns a subscription off; nothing more is delivered', async (t) => {
  const patient = await service.newPatient('sub-gone');
  const to = await receiver(() => ({ status: 410 }));
  const sub = await subscribe(to, patient);
  await planWithChanges(patient, 1);
  await to.waitFor((d) => d.length >= 1);
  const status = await service.app.inject({ method: 'GET', url: `/subscriptions/${sub.id}/status` });
  await new Promise((resolve) => setTimeout(resolve, 1000));
  t.equal(to.deliveries.length, 1, 'one attempt only');
  t.equal((await call('GET', `/subscriptions/${sub.id}`)).body?.status, 'off');
  t.equal(status.statusCode, 200);
  // $replay turns it back on: the receiver answers 410 again, so it is off again after one more attempt.
  await call('POST', `/subscriptions/${sub.id}/$replay`, { fromEvent: 1 });
  await to.waitFor((d) => d.length >= 2);
  t.equal(to.deliveries[1].body.data.eventNumber, 1);
  await call('DELETE', `/subscriptions/${sub.id}`);
});

t.test('a subscription deleted while events are pending gets no delivery after DELETE answers', async (t) => {
  const patient = await service.newPatient('sub-delete');
  const to = await receiver(() => ({ status: 500 }));
  const sub = await subscribe(to, patient);
  await planWithChanges(patient, 2);
  await to.waitFor((d) => d.length >= 2);
  const deleted = await call('DELETE', `/subscriptions/${sub.id}`);
  t.equal(deleted.status, 204);
  const count = to.deliveries.length;
  await new Promise((resolve) => setTimeout(resolve, 1500));
  t.equal(to.deliveries.length, count, 'no attempt after the DELETE answered');
  t.equal((await call('GET', `/subscriptions/${sub.id}/status`)).status, 404);
  t.equal((await call('DELETE', `/subscriptions/${sub.id}`)).status, 404);
});

t.test(
  'the FHIR server itself never delivers: every request a receiver got is signed by the service',
  async (t) => {
    // HAPI keeps Subscription resources without acting on them (test/hapi imports none of HAPI's subscription
    // matching or delivery configuration, and its SubscriptionSettings enable no channel type). Were it acting, it
    // would POST to an active rest-hook Subscription it can match: one stored straight on the FHIR server, for a
    // patient whose plan then changes, to a receiver that counts every request.
    const patient = await service.newPatient('sub-fhir-server');
    const watcher = await receiver(() => ({ status: 200 }));
    const own = await service.fhir<Subscription>('Subscription', {
      method: 'POST',
      body: JSON.stringify({
        resourceType: 'Subscription',
        status: 'active',
        reason: 'would the FHIR server deliver?',
        criteria: `CarePlan?subject=${patient}`,
        channel: { type: 'rest-hook', endpoint: watcher.url, payload: 'application/fhir+json' },
      }),
    });
    t.equal(own.status, 201, 'stored as active');
    t.teardown(() => service.fhir(`Subscription/${own.body.id}`, { method: 'DELETE' }));
    const ours = await receiver();
    await subscribe(ours, patient);
    await planWithChanges(patient, 1);
    await ours.waitFor((d) => d.length >= 3); // the service delivered the plan's three versions...
    await new Promise((resolve) => setTimeout(resolve, 3000)); // ...and the FHIR server had time to
    t.equal(watcher.deliveries.length, 0, 'the FHIR server sent nothing to its own rest-hook Subscription');
    const all = receivers.flatMap((r) => r.deliveries);
    t.ok(
      all.length > 0 && all.every((d) => d.verified),
      `${all.length} requests to the service's receivers, every one signed (standardwebhooks)`,
    );
  },
);
