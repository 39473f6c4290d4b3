// Webhooks beyond one page of the FHIR server (the embedded one; HAPI in test:hapi, which caps a page at 50): with
// WEBHOOK_PAGE_SIZE=3, a plan with more versions than a history page gets every version delivered, in order, and
// the worker delivers subscriptions beyond the first page of the Subscriptions search. WEBHOOK_MAX_SUBSCRIPTIONS
// caps the subscriptions kept. Receivers on loopback verify every signature with `standardwebhooks`.
import { randomBytes } from 'node:crypto';
import type { Bundle } from 'fhir/r4.js';
import t from 'tap';
import { examplePlan, injectJson, type Json, startTestService } from '../../../helpers/service.js';
import { deliveryFigures, type Receiver, startReceiver } from '../../../helpers/webhook-receiver.js';

const PAGE = 3;
const FAST = {
  CHANGE_FEED_SETTLE_MS: '200',
  WEBHOOK_POLL_MS: '100',
  WEBHOOK_RETRY_MIN_MS: '50',
  WEBHOOK_RETRY_MAX_MS: '200',
  WEBHOOK_TIMEOUT_MS: '2000',
  WEBHOOK_LEASE_MS: '6000',
  WEBHOOK_PAGE_SIZE: String(PAGE),
  // One key for both services of this file, so that each can read the other's subscriptions on a shared server.
  WEBHOOK_SECRET_KEY: randomBytes(32).toString('hex'),
};
// Generous but bounded: HAPI under a shared machine's load writes a plan version in a second or more.
const WAIT_MS = 90_000;
t.setTimeout(300_000);

const service = await startTestService(FAST);
const receivers: Receiver[] = [];
t.teardown(async () => {
  await service.close();
  for (const receiver of receivers) await receiver.close();
});
const call = (method: string, url: string, body?: unknown, headers?: Record<string, string>) =>
  injectJson(service.app, method, url, body, headers);

async function subscribe(patient: string, behaviour?: Parameters<typeof startReceiver>[0]) {
  const receiver = await startReceiver(behaviour);
  receivers.push(receiver);
  const created = await call('POST', '/subscriptions', { endpoint: receiver.url, patient });
  if (created.status !== 201) throw new Error(`subscribe: ${created.status} ${JSON.stringify(created.body)}`);
  receiver.secret = created.body?.secret;
  return { receiver, id: created.body?.id as string };
}

/** The status once the last acknowledgement is recorded (at least every WEBHOOK_POLL_MS), or after 10 s. */
async function settledStatus(id: string, delivered: number) {
  for (const until = Date.now() + 10_000; ; ) {
    const status = await call('GET', `/subscriptions/${id}/status`);
    if (status.body?.lastDelivered === delivered || Date.now() > until) return status;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** A plan, `edits` goal changes, then its end: 1 + edits + 1 versions; returns the plan id. */
async function planWithChanges(patient: string, edits: number): Promise<string> {
  const plan = examplePlan() as Json;
  plan.patient.reference = patient;
  const created = await call('POST', '/care-plans', plan);
  let etag = created.headers.etag as string;
  for (let i = 0; i < edits; i++) {
    const changed = await call(
      'PATCH',
      `/care-plans/${created.body?.id}/goals/walk-to-market`,
      { achievementStatus: i % 2 ? 'improving' : 'worsening' },
      { 'if-match': etag },
    );
    if (changed.status !== 200) throw new Error(`edit: ${changed.status}`);
    etag = changed.headers.etag as string;
  }
  const ended = await call('DELETE', `/care-plans/${created.body?.id}`, undefined, { 'if-match': etag });
  if (ended.status !== 200 && ended.status !== 204) throw new Error(`end: ${ended.status}`);
  return created.body?.id as string;
}

t.test(
  'a plan with more versions than a history page: every version delivered, in order, no gaps',
  async (t) => {
    const patient = await service.newPatient('paging-history');
    const { receiver, id: sub } = await subscribe(patient);
    const edits = 10;
    const versions = edits + 2; // four pages of three
    const planId = await planWithChanges(patient, edits);
    await receiver.waitFor((d) => deliveryFigures(d).distinct >= versions, WAIT_MS);
    await new Promise((resolve) => setTimeout(resolve, 500)); // anything more would land now
    const figures = deliveryFigures(receiver.deliveries);
    t.same(figures, {
      acknowledged: versions,
      highest: versions,
      distinct: versions,
      duplicates: 0,
      gaps: 0,
      orderViolations: 0,
    });
    t.ok(
      receiver.deliveries.every((d) => d.verified),
      'every signature verifies (standardwebhooks)',
    );
    t.same(
      receiver.deliveries.map((d) => d.body.type),
      ['care-plan.created', ...Array(edits).fill('care-plan.updated'), 'care-plan.ended'],
      'the oldest version (on the last page) is the creation',
    );
    // The history straight from the FHIR server, in one answer (12 versions fit HAPI's page of 50), oldest first;
    // `_since` the epoch, as HAPI answers a plain history from a cached count (test/hapi/README.md).
    const history = await service.fhir<Bundle>(
      `CarePlan/${planId}/_history?_count=50&_since=1970-01-01T00:00:00Z`,
    );
    t.same(
      receiver.deliveries.map((d) => d.body.data.plan.version),
      (history.body.entry ?? []).map((e) => e.resource?.meta?.versionId).reverse(),
      "every version of the CarePlan's history, oldest first",
    );
    const status = await settledStatus(sub, versions);
    t.match(status.body, { lastEventNumber: versions, lastDelivered: versions, backlog: 0 });
    // Replay from event 5: the events 5..12 again, across the pages, numbered as before.
    const before = receiver.deliveries.length;
    t.equal((await call('POST', `/subscriptions/${sub}/$replay`, { fromEvent: 5 })).status, 200);
    await receiver.waitFor((d) => d.length >= before + versions - 4, WAIT_MS);
    t.same(
      receiver.deliveries.slice(before).map((d) => d.body.data.eventNumber),
      [5, 6, 7, 8, 9, 10, 11, 12],
    );
    t.same(
      receiver.deliveries.slice(before).map((d) => d.webhookId),
      receiver.deliveries.slice(4, versions).map((d) => d.webhookId),
      'a replayed event keeps its webhook-id',
    );
    t.equal((await call('DELETE', `/subscriptions/${sub}`)).status, 204);
  },
);

t.test(
  'more subscriptions than a page of the Subscriptions search: every one listed and delivered',
  async (t) => {
    const patient = await service.newPatient('paging-subs');
    const count = 3 * PAGE + 1;
    const subs = [];
    for (let i = 0; i < count; i++) subs.push(await subscribe(patient));
    const listed = await call('GET', '/subscriptions');
    const ids = new Set((listed.body?.items ?? []).map((s: Json) => s.id));
    t.ok(
      subs.every((s) => ids.has(s.id)),
      `GET /subscriptions lists all ${count}`,
    );
    await planWithChanges(patient, 1); // three versions
    for (const { receiver } of subs) await receiver.waitFor((d) => deliveryFigures(d).distinct >= 3, WAIT_MS);
    t.same(
      subs.map(({ receiver }) => {
        const f = deliveryFigures(receiver.deliveries);
        return [f.distinct, f.gaps, f.orderViolations, receiver.deliveries.every((d) => d.verified)];
      }),
      subs.map(() => [3, 0, 0, true]),
      `each of the ${count} subscriptions got the plan's 3 events, in order, signed`,
    );
    for (const { id } of subs) t.equal((await call('DELETE', `/subscriptions/${id}`)).status, 204);
  },
);

t.test(
  'WEBHOOK_MAX_SUBSCRIPTIONS: the create beyond the cap is a clear problem and stores nothing',
  async (t) => {
    // A service with a fresh embedded server starts with none; HAPI (test:hapi) is one server for every test file,
    // so the subscriptions already there are counted first. The cap: 2 more.
    const countStored = async (on: typeof service) =>
      (await on.fhir<Bundle>('Subscription?_summary=count')).body.total ?? Number.NaN;
    const existing = process.env.TEST_FHIR_BASE_URL ? await countStored(service) : 0;
    const capped = await startTestService({ ...FAST, WEBHOOK_MAX_SUBSCRIPTIONS: String(existing + 2) });
    t.teardown(() => capped.close());
    t.equal(await countStored(capped), existing, 'the subscriptions there before');
    const receiver = await startReceiver();
    receivers.push(receiver);
    const create = () => injectJson(capped.app, 'POST', '/subscriptions', { endpoint: receiver.url });
    const made = [await create(), await create()];
    t.same(
      made.map((m) => m.status),
      [201, 201],
      'up to the cap',
    );
    const refused = await create();
    t.equal(refused.status, 422);
    t.match(refused.headers['content-type'], /application\/problem\+json/);
    t.match(refused.body?.detail, `at most ${existing + 2} subscriptions (WEBHOOK_MAX_SUBSCRIPTIONS)`);
    t.notOk(refused.body?.secret, 'no secret handed out');
    t.equal(await countStored(capped), existing + 2, 'nothing stored by the refused create');
    for (const m of made) await injectJson(capped.app, 'DELETE', `/subscriptions/${m.body?.id}`);
  },
);
