// Sync-grade writes: versions and conflicts, small edits, ending a plan, search with cursors, history, the change
// feed, and idempotent creates, all through the real app against a real FHIR server.
import type { Bundle, CarePlan, Goal } from 'fhir/r4.js';
import t from 'tap';
import {
  countOnServer,
  examplePlan,
  injectJson,
  type Json,
  startTestService,
  type TestService,
} from '../../../helpers/service.js';

let service: TestService;
const SETTLE_MS = process.env.TEST_FHIR_BASE_URL ? 2000 : 1000;
t.before(async () => {
  // A short settle window: on servers that commit concurrent transactions out of time order (HAPI), changes
  // younger than this are held back so none is skipped. HAPI on a loaded 2-core machine has committed a
  // transaction more than 1 s after its timestamp (README, "Change feed"): it gets the window such a server needs.
  service = await startTestService({ CHANGE_FEED_SETTLE_MS: String(SETTLE_MS) });
});
t.teardown(() => service.close());

const call = (method: string, url: string, body?: unknown, headers?: Record<string, string>) =>
  injectJson(service.app, method, url, body, headers);

function planFor(patient: string): Json {
  const plan = examplePlan();
  (plan.patient as Json).reference = patient;
  return plan;
}

async function create(patient: string, headers: Record<string, string> = {}) {
  const created = await call('POST', '/care-plans', planFor(patient), headers);
  if (created.status !== 201)
    throw new Error(`create failed: ${created.status} ${JSON.stringify(created.body)}`);
  return created;
}

t.test('PUT replaces a plan in one version-checked transaction', async (t) => {
  const patient = await service.newPatient('put');
  const created = await create(patient);
  const plan = created.body as Json;
  const etag = created.headers.etag as string;
  const [walk, sugar] = plan.goals;

  const edited = structuredClone(plan);
  edited.title = 'Walking to the market, together';
  edited.goals = [
    { ...walk, achievementStatus: 'improving' },
    { key: 'cook', description: { text: 'Cook Sunday lunch for the family' }, lifecycleStatus: 'proposed' },
  ];
  // The sugar goal is gone: so must be the links to it.
  edited.activities = edited.activities.filter((a: Json) => !a.goals?.includes('blood-sugar'));
  edited.barriers = edited.barriers.filter((b: Json) => !b.goals?.includes('blood-sugar'));
  edited.strengths = edited.strengths.filter((s: Json) => !s.goals?.includes('blood-sugar'));

  t.equal((await call('PUT', `/care-plans/${plan.id}`, edited)).status, 428, 'If-Match is required');
  const stale = await call('PUT', `/care-plans/${plan.id}`, edited, { 'if-match': 'W/"not-the-version"' });
  t.equal(stale.status, 412);
  t.equal(stale.headers.etag, etag, 'a 412 carries the current ETag');
  const wrongBodyVersion = await call(
    'PUT',
    `/care-plans/${plan.id}`,
    { ...edited, version: 'other' },
    { 'if-match': etag },
  );
  t.equal(wrongBodyVersion.status, 412, 'read-only fields are checked: the version in the body');
  const wrongId = await call(
    'PUT',
    `/care-plans/${plan.id}`,
    { ...edited, id: 'someone-else' },
    { 'if-match': etag },
  );
  t.equal(wrongId.status, 422, 'read-only fields are checked: the id in the body');
  const foreign = structuredClone(edited);
  foreign.goals[1].id = 'goal-of-another-plan';
  t.equal(
    (await call('PUT', `/care-plans/${plan.id}`, foreign, { 'if-match': etag })).status,
    422,
    'parts of other plans',
  );
  t.equal((await call('GET', `/care-plans/${plan.id}`)).headers.etag, etag, 'refused writes changed nothing');

  const replaced = await call('PUT', `/care-plans/${plan.id}`, edited, { 'if-match': etag });
  t.equal(replaced.status, 200, JSON.stringify(replaced.body));
  t.not(replaced.headers.etag, etag, 'a new version');
  const after = replaced.body as Json;
  t.equal(after.title, 'Walking to the market, together');
  t.equal(after.goals.length, 2);
  t.equal(after.goals[0].id, walk.id, 'a kept goal keeps its id');
  t.ok(after.goals[1].id, 'a new goal gets an id');

  const removed = await service.fhir(`Goal/${sugar.id}`);
  t.ok(removed.status === 404 || removed.status === 410, 'the removed goal is gone from the FHIR server');
  const stored = await service.fhir<CarePlan>(`CarePlan/${plan.id}`);
  t.equal(stored.body.goal?.length, 2);
  t.equal(stored.body.title, 'Walking to the market, together');

  const read = await call('GET', `/care-plans/${plan.id}`);
  t.strictSame(read.body, after, 'GET returns what PUT answered');
  const notModified = await call('GET', `/care-plans/${plan.id}`, undefined, {
    'if-none-match': replaced.headers.etag as string,
  });
  t.equal(notModified.status, 304);
});

t.test('small edits: goal progress, add/remove goals and activities, each a new plan version', async (t) => {
  const patient = await service.newPatient('edits');
  const created = await create(patient);
  const plan = created.body as Json;
  let etag = created.headers.etag as string;
  const [walk, sugar] = plan.goals;
  const sugarVersion = (await service.fhir<Goal>(`Goal/${sugar.id}`)).body.meta?.versionId;

  const progress = await call(
    'PATCH',
    `/care-plans/${plan.id}/goals/${walk.id}`,
    { achievementStatus: 'achieved', lifecycleStatus: 'completed' },
    { 'if-match': etag },
  );
  t.equal(progress.status, 200, JSON.stringify(progress.body));
  t.not(progress.headers.etag, etag, 'a change to a goal is a new version of the plan');
  etag = progress.headers.etag as string;
  t.equal(progress.body?.goals[0].achievementStatus, 'achieved');
  const goalOnServer = await service.fhir<Goal>(`Goal/${walk.id}`);
  t.equal(goalOnServer.body.lifecycleStatus, 'completed');
  t.equal(
    (await service.fhir<Goal>(`Goal/${sugar.id}`)).body.meta?.versionId,
    sugarVersion,
    'untouched goals are not rewritten',
  );

  t.equal(
    (await call('PATCH', `/care-plans/${plan.id}/goals/${walk.id}`, { achievementStatus: 'improving' }))
      .status,
    428,
  );
  t.equal(
    (
      await call(
        'PATCH',
        `/care-plans/${plan.id}/goals/${walk.id}`,
        { achievementStatus: 'improving' },
        { 'if-match': created.headers.etag as string },
      )
    ).status,
    412,
  );
  t.equal(
    (
      await call(
        'PATCH',
        `/care-plans/${plan.id}/goals/nope`,
        { achievementStatus: 'improving' },
        { 'if-match': etag },
      )
    ).status,
    404,
  );
  t.equal(
    (
      await call(
        'PATCH',
        `/care-plans/${plan.id}/goals/${walk.id}`,
        { achievementStatus: 'great' },
        { 'if-match': etag },
      )
    ).status,
    400,
  );
  const gol1 = await call(
    'PATCH',
    `/care-plans/${plan.id}/goals/${walk.id}`,
    { targets: [{ text: 'far' }] },
    { 'if-match': etag },
  );
  t.equal(gol1.status, 400, 'a target value without a measure is refused');

  const added = await call(
    'POST',
    `/care-plans/${plan.id}/goals`,
    { key: 'garden', description: { text: 'Plant tomatoes in spring' }, lifecycleStatus: 'proposed' },
    { 'if-match': etag },
  );
  t.equal(added.status, 201);
  etag = added.headers.etag as string;
  const garden = (added.body as Json).goals.find((g: Json) => g.key === 'garden');
  t.equal(added.headers.location, `/care-plans/${plan.id}/goals/${garden.id}`);

  const withoutSugar = await call('DELETE', `/care-plans/${plan.id}/goals/blood-sugar`, undefined, {
    'if-match': etag,
  });
  t.equal(withoutSugar.status, 200);
  etag = withoutSugar.headers.etag as string;
  const body = withoutSugar.body as Json;
  t.notOk(body.goals.some((g: Json) => g.key === 'blood-sugar'));
  t.notOk(JSON.stringify(body).includes('"blood-sugar"'), 'links to a removed goal are removed with it');
  const gone = await service.fhir(`Goal/${sugar.id}`);
  t.ok(gone.status === 404 || gone.status === 410);

  const activity = await call(
    'POST',
    `/care-plans/${plan.id}/activities`,
    { description: 'Buy seeds with Ana', status: 'not-started', goals: ['garden'] },
    { 'if-match': etag },
  );
  t.equal(activity.status, 201);
  etag = activity.headers.etag as string;
  const activityId = (activity.headers.location as string).split('/').pop() as string;
  const done = await call(
    'PATCH',
    `/care-plans/${plan.id}/activities/${activityId}`,
    { status: 'completed' },
    { 'if-match': etag },
  );
  t.equal(done.status, 200);
  etag = done.headers.etag as string;
  t.equal((done.body as Json).activities.find((a: Json) => a.id === activityId).status, 'completed');
  const dropped = await call('DELETE', `/care-plans/${plan.id}/activities/${activityId}`, undefined, {
    'if-match': etag,
  });
  t.equal(dropped.status, 200);
  t.notOk((dropped.body as Json).activities.some((a: Json) => a.id === activityId));
});

t.test('DELETE ends a plan without destroying its history', async (t) => {
  const patient = await service.newPatient('end');
  const created = await create(patient);
  const id = (created.body as Json).id;
  t.equal((await call('DELETE', `/care-plans/${id}`)).status, 428);
  const revoked = await call('DELETE', `/care-plans/${id}`, undefined, {
    'if-match': created.headers.etag as string,
  });
  t.equal(revoked.status, 200);
  t.equal((revoked.body as Json).status, 'revoked');
  const read = await call('GET', `/care-plans/${id}`);
  t.equal(read.status, 200, 'still readable');
  t.equal((read.body as Json).status, 'revoked');
  const wrong = await call('DELETE', `/care-plans/${id}?status=entered-in-error`, undefined, {
    'if-match': revoked.headers.etag as string,
  });
  t.equal((wrong.body as Json).status, 'entered-in-error');
  const history = await call('GET', `/care-plans/${id}/history`);
  t.equal(history.status, 200);
  const items = (history.body as Json).items;
  t.equal(items.length, 3, 'created, revoked, entered-in-error');
  t.strictSame(
    items.map((i: Json) => i.status),
    ['entered-in-error', 'revoked', 'active'],
    'newest first',
  );
  t.equal(items[0].version, (wrong.headers.etag as string).slice(3, -1));
  t.equal((await call('GET', '/care-plans/nope/history')).status, 404);
});

t.test("search a patient's plans with cursor paging and filters", async (t) => {
  const patient = await service.newPatient('search');
  const ids: string[] = [];
  for (let i = 0; i < 5; i++) ids.push((await create(patient)).body?.id);
  const other = await service.newPatient('search-other');
  await create(other);
  const seen: string[] = [];
  let cursor: string | null = null;
  let pages = 0;
  do {
    const reply = await call(
      'GET',
      `/care-plans?patient=${patient}&limit=2${cursor ? `&cursor=${cursor}` : ''}`,
    );
    t.equal(reply.status, 200);
    const page = reply.body as Json;
    t.ok(page.items.length <= 2);
    for (const item of page.items) {
      t.equal(item.patient.reference, patient);
      seen.push(item.id);
    }
    cursor = page.next;
    if (cursor) t.notOk(cursor.includes('http'), 'the cursor is opaque, never a server URL');
    pages++;
  } while (cursor && pages < 10);
  t.equal(pages, 3);
  t.strictSame([...seen].sort(), [...ids].sort(), 'every plan exactly once');

  const revokedId = ids[0];
  const current = await call('GET', `/care-plans/${revokedId}`);
  await call('DELETE', `/care-plans/${revokedId}`, undefined, { 'if-match': current.headers.etag as string });
  const revoked = await call('GET', `/care-plans?patient=${patient}&status=revoked`);
  t.strictSame(
    revoked.body?.items.map((i: Json) => i.id),
    [revokedId],
  );
  const future = await call('GET', `/care-plans?patient=${patient}&updatedSince=2999-01-01T00:00:00Z`);
  t.strictSame(future.body?.items, []);
  t.equal(future.body?.next, null);
  t.equal((await call('GET', `/care-plans?patient=${patient}&cursor=not-a-cursor!`)).status, 400);
  t.equal(
    (
      await call(
        'GET',
        `/care-plans?patient=${patient}&cursor=${Buffer.from('{"t":1}').toString('base64url')}`,
      )
    ).status,
    400,
  );
  t.equal((await call('GET', '/care-plans')).status, 400, 'patient is required');
  t.equal((await call('GET', '/care-plans?patient=Robert%27);DROP%20TABLE')).status, 400);
});

t.test('concurrent updates with the same ETag: exactly one wins, the rest get 412', async (t) => {
  const patient = await service.newPatient('race');
  const created = await create(patient);
  const plan = created.body as Json;
  const attempts = Array.from({ length: 12 }, (_, i) => ({
    ...structuredClone(plan),
    title: `Version from writer ${i}`,
  }));
  const replies = await Promise.all(
    attempts.map((body) =>
      call('PUT', `/care-plans/${plan.id}`, body, { 'if-match': created.headers.etag as string }),
    ),
  );
  const winners = replies.filter((r) => r.status === 200);
  t.equal(winners.length, 1, 'exactly one succeeds');
  t.equal(replies.filter((r) => r.status === 412).length, attempts.length - 1, 'the others get 412');
  const final = await call('GET', `/care-plans/${plan.id}`);
  t.equal(final.body?.title, winners[0].body?.title, "the final state is the winner's");
  t.strictSame(final.body, winners[0].body);
});

t.test('Idempotency-Key: a retry returns the same plan and creates nothing', async (t) => {
  const patient = await service.newPatient('idem');
  const body = planFor(patient);
  const key = `key-${Math.random()}`;
  const first = await call('POST', '/care-plans', body, { 'idempotency-key': key });
  t.equal(first.status, 201);
  const again = await call('POST', '/care-plans', body, { 'idempotency-key': key });
  t.equal(again.status, 201);
  t.equal(again.headers['idempotent-replayed'], 'true');
  t.equal(again.body?.id, first.body?.id, 'the same plan');
  t.equal(again.headers.location, first.headers.location);
  const different = await call(
    'POST',
    '/care-plans',
    { ...body, title: 'Another plan' },
    { 'idempotency-key': key },
  );
  t.equal(different.status, 422);
  t.match(different.body, { type: 'https://shared-care-plans.org/problems/idempotency-key-reused' });

  // Concurrent requests with one key: one plan.
  const key2 = `key-${Math.random()}`;
  const concurrent = await Promise.all(
    Array.from({ length: 8 }, () => call('POST', '/care-plans', body, { 'idempotency-key': key2 })),
  );
  t.ok(
    concurrent.every((r) => r.status === 201 || r.status === 409),
    concurrent.map((r) => r.status).join(','),
  );
  const ids = new Set(concurrent.filter((r) => r.status === 201).map((r) => r.body?.id));
  t.equal(ids.size, 1, 'one plan for one key');
  t.equal(await countOnServer(service, 'CarePlan', `subject=${patient}`), 2, 'two keys, two plans');
  t.equal(await countOnServer(service, 'Goal', `subject=${patient}`), 4, 'and exactly their goals');
  t.equal(await countOnServer(service, 'CareTeam', `subject=${patient}`), 2);

  // A second instance of the service, sharing the FHIR server, honours the same keys.
  const second = await startTestService({}, {});
  t.teardown(() => second.close());
  const { buildApp } = await import('../../../../src/http/app.js');
  const { loadConfig } = await import('../../../../src/config.js');
  const { quietLogger } = await import('../../../helpers/service.js');
  const peer = await buildApp(
    { ...loadConfig({}), fhirBaseUrl: service.fhirBaseUrl },
    { logger: quietLogger },
  );
  t.teardown(() => peer.close());
  const viaPeer = await peer.inject({
    method: 'POST',
    url: '/care-plans',
    headers: { 'content-type': 'application/json', 'idempotency-key': key },
    payload: JSON.stringify(body),
  });
  t.equal(viaPeer.statusCode, 201);
  t.equal(viaPeer.json().id, first.body?.id, 'the other instance returns the same plan');
  t.equal(await countOnServer(service, 'CarePlan', `subject=${patient}`), 2);
});

t.test('Idempotency-Key on edits: a retry answers as the first time and writes nothing', async (t) => {
  const patient = await service.newPatient('idem-edit');
  const created = await create(patient);
  const id = created.body?.id as string;
  const goal = {
    key: 'garden',
    description: { text: 'Plant tomatoes in spring' },
    lifecycleStatus: 'proposed',
  };
  const headers = { 'if-match': created.headers.etag as string, 'idempotency-key': `edit-${Math.random()}` };
  const first = await call('POST', `/care-plans/${id}/goals`, goal, headers);
  t.equal(first.status, 201);
  // The client did not see the answer and sends the same request again, with the If-Match it had.
  const again = await call('POST', `/care-plans/${id}/goals`, goal, headers);
  t.equal(again.status, 201, 'the same answer, not a 412');
  t.equal(again.headers['idempotent-replayed'], 'true');
  t.equal(again.headers.etag, first.headers.etag, 'the same version');
  t.equal(again.body?.goals?.length, 3, 'one goal added, not two');
  const other = await call('POST', `/care-plans/${id}/goals`, { ...goal, key: 'other' }, headers);
  t.equal(other.status, 422, 'the same key with another body');
  t.match(other.body, { type: 'https://shared-care-plans.org/problems/idempotency-key-reused' });

  // Someone else edits after the lost answer: the retry still finds its own write (in the history), writes nothing.
  const progress = await call(
    'PATCH',
    `/care-plans/${id}/goals/garden`,
    { achievementStatus: 'in-progress' },
    {
      'if-match': first.headers.etag as string,
    },
  );
  t.equal(progress.status, 200);
  const late = await call('POST', `/care-plans/${id}/goals`, goal, headers);
  t.equal(late.status, 201, 'a late retry is still recognised');
  t.equal(late.headers['idempotent-replayed'], 'true');
  t.equal(late.headers.etag, progress.headers.etag, 'and answers the current plan');
  t.equal(await countOnServer(service, 'Goal', `subject=${patient}`), 3, 'three goals on the server');
  const fresh = await call('POST', `/care-plans/${id}/goals`, goal, {
    'if-match': created.headers.etag as string,
    'idempotency-key': `edit-${Math.random()}`,
  });
  t.equal(fresh.status, 412, 'a new key with a stale If-Match is an ordinary stale write');
});

t.test(
  "the service's own identifiers stay its own: never in the plan, never multiplied by edits",
  async (t) => {
    const patient = await service.newPatient('own-ids');
    const created = await create(patient, { 'idempotency-key': `ids-${Math.random()}` });
    t.notOk(created.body?.unmappedFhir, 'no idempotency or plan identifier shows in the plan');
    const id = created.body?.id as string;
    const identifiers = async () =>
      ((await service.fhir<CarePlan>(`CarePlan/${id}`)).body.identifier ?? []).map((i) => i.system).sort();
    const before = await identifiers();
    t.equal(before.length, 3, 'the plan, its idempotency key and request');
    let etag = created.headers.etag as string;
    for (const status of ['in-progress', 'improving', 'achieved']) {
      const edited = await call(
        'PATCH',
        `/care-plans/${id}/goals/walk-to-market`,
        { achievementStatus: status },
        {
          'if-match': etag,
        },
      );
      t.equal(edited.status, 200);
      t.notOk(edited.body?.unmappedFhir, 'still none in the plan');
      etag = edited.headers.etag as string;
    }
    t.same(await identifiers(), before, 'the same identifiers after three edits');
  },
);

t.test('a consumer of the change feed ends with exactly the plans and versions on the server', async (t) => {
  // Start at the current end of the feed.
  // (Loops count their pages and check once, so the number of assertions does not depend on timing.)
  let cursor: string | undefined;
  let pagesRead = 0;
  for (;;) {
    const page = await call('GET', `/care-plans/changes?limit=500${cursor ? `&since=${cursor}` : ''}`);
    if (page.status !== 200) throw new Error(`feed answered ${page.status}`);
    pagesRead++;
    cursor = page.body?.next;
    if (!page.body?.items.length) break;
  }
  t.ok(pagesRead >= 1 && cursor, 'the end of the feed has a cursor');
  let pagesWithoutNext = 0;
  const replica = new Map<string, { version: string; status: string }>();
  let writing = true;
  let writersDoneAt = 0;
  const consumer = (async () => {
    for (;;) {
      const page = await call('GET', `/care-plans/changes?limit=7&since=${cursor}`);
      if (page.status !== 200) throw new Error(`feed answered ${page.status}`);
      for (const item of page.body?.items ?? [])
        replica.set(item.id, { version: item.version, status: item.status });
      if (!page.body?.next) pagesWithoutNext++;
      cursor = page.body?.next;
      if (!page.body?.items.length) {
        // Done once the last writes are past the settle window (the feed holds them back until then).
        if (!writing && Date.now() - writersDoneAt > SETTLE_MS + 500) return;
        await new Promise((r) => setTimeout(r, 5));
      }
    }
  })();
  const patient = await service.newPatient('feed');
  const writers = Array.from({ length: 4 }, async (_, w) => {
    for (let i = 0; i < 4; i++) {
      const created = await create(patient);
      const plan = created.body as Json;
      let etag = created.headers.etag as string;
      if (i % 2 === 0) {
        const updated = await call(
          'PUT',
          `/care-plans/${plan.id}`,
          { ...plan, title: `writer ${w} plan ${i}` },
          { 'if-match': etag },
        );
        etag = updated.headers.etag as string;
      }
      if (i === 3) await call('DELETE', `/care-plans/${plan.id}`, undefined, { 'if-match': etag });
    }
  });
  await Promise.all(writers);
  writersDoneAt = Date.now();
  writing = false;
  await consumer;
  t.equal(pagesWithoutNext, 0, 'next is always a cursor');
  const onServer = await service.fhir<Bundle>(`CarePlan?subject=${patient}&_count=1000`);
  const expected = new Map(
    (onServer.body.entry ?? []).map((e) => [(e.resource as CarePlan).id as string, e.resource as CarePlan]),
  );
  t.equal(expected.size, 16);
  for (const [id, carePlan] of expected) {
    t.strictSame(
      replica.get(id),
      { version: carePlan.meta?.versionId, status: carePlan.status },
      `plan ${id} in sync`,
    );
  }
  t.equal((await call('GET', '/care-plans/changes?since=garbage')).status, 400);
});
