/**
 * The embedded FHIR server, exercised over real HTTP with the global fetch.
 */
import type {
  Bundle,
  BundleEntry,
  CapabilityStatement,
  CarePlan,
  FhirResource,
  Goal,
  OperationOutcome,
  Patient,
  Resource,
} from 'fhir/r4.js';
import { pino } from 'pino';
import t from 'tap';
import type { EmbeddedFhirServer } from '../../src/embedded-fhir/server.js';
import { startEmbeddedFhirServer } from '../../src/embedded-fhir/server.js';

const logLines: { level: number; msg: string }[] = [];
const logger = pino({ level: 'info' }, { write: (line: string) => logLines.push(JSON.parse(line)) });

let server: EmbeddedFhirServer;
let base = '';

t.before(async () => {
  server = await startEmbeddedFhirServer({ logger });
  base = server.baseUrl;
});
t.teardown(() => server.close());

interface Reply<T> {
  status: number;
  headers: Headers;
  body: T;
}

async function call<T = Resource>(
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<Reply<T>> {
  const res = await fetch(path.startsWith('http') ? path : base + path, {
    method,
    headers: { accept: 'application/fhir+json', 'content-type': 'application/fhir+json', ...headers },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: (text ? JSON.parse(text) : undefined) as T };
}

let uuidCounter = 0;
const urn = (): string => `urn:uuid:00000000-0000-4000-8000-${String(++uuidCounter).padStart(12, '0')}`;
const transaction = (entry: BundleEntry<FhirResource>[]): Bundle<FhirResource> => ({
  resourceType: 'Bundle',
  type: 'transaction',
  entry,
});
const patientResource = (extra: Partial<Patient> = {}): Patient => ({ resourceType: 'Patient', ...extra });
const carePlan = (subject: string, extra: Partial<CarePlan> = {}): CarePlan => ({
  resourceType: 'CarePlan',
  status: 'active',
  intent: 'plan',
  subject: { reference: subject },
  ...extra,
});
const count = async (query: string): Promise<number> =>
  (await call<Bundle>('GET', `${query}${query.includes('?') ? '&' : '?'}_count=0`)).body.total ?? -1;

t.test('startup: one in-memory warning, base URL on loopback', async (t) => {
  t.match(base, /^http:\/\/127\.0\.0\.1:\d+\/fhir$/);
  const warnings = logLines.filter((l) => l.level === 40);
  t.equal(warnings.length, 1, 'exactly one warning');
  t.match(warnings[0].msg, /memory/i);
  t.match(warnings[0].msg, /lost/i);
});

t.test('metadata returns a CapabilityStatement', async (t) => {
  const { status, headers, body } = await call<CapabilityStatement>('GET', '/metadata');
  t.equal(status, 200);
  t.match(headers.get('content-type'), /^application\/fhir\+json/);
  t.equal(body.resourceType, 'CapabilityStatement');
  t.equal(body.fhirVersion, '4.0.1');
  t.equal(body.software?.name, 'shared-care-plans embedded FHIR server (Medplum fhir-router 4.5.2)');
  const resources = body.rest?.[0].resource ?? [];
  const cp = resources.find((r) => r.type === 'CarePlan');
  t.ok(cp, 'CarePlan listed');
  t.ok(resources.length > 100, 'all R4 resource types listed');
  t.ok(cp?.searchParam?.some((p) => p.name === 'subject'));
});

t.test('create, read, vread, ETag, Location, Last-Modified, If-None-Match', async (t) => {
  const created = await call<CarePlan>(
    'POST',
    '/CarePlan',
    carePlan('Patient/not-held', { id: 'client-id' }),
  );
  t.equal(created.status, 201);
  const { id, meta } = created.body;
  t.ok(id && id !== 'client-id', 'server assigns the id on create');
  t.ok(meta?.versionId);
  t.equal(created.headers.get('etag'), `W/"${meta?.versionId}"`);
  t.equal(created.headers.get('location'), `${base}/CarePlan/${id}/_history/${meta?.versionId}`);
  t.ok(created.headers.get('last-modified'));
  t.equal(created.body.subject.reference, 'Patient/not-held', 'no referential integrity check');

  const read = await call<CarePlan>('GET', `/CarePlan/${id}`);
  t.equal(read.status, 200);
  t.equal(read.headers.get('etag'), `W/"${meta?.versionId}"`);
  t.same(read.body, created.body);

  const vread = await call<CarePlan>('GET', created.headers.get('location') as string);
  t.equal(vread.status, 200);
  t.equal(vread.body.meta?.versionId, meta?.versionId);

  const notModified = await fetch(`${base}/CarePlan/${id}`, {
    headers: { 'if-none-match': `W/"${meta?.versionId}"` },
  });
  t.equal(notModified.status, 304);

  t.equal((await call('GET', '/CarePlan/does-not-exist')).status, 404);
  const viaJson = await call('POST', '/CarePlan', carePlan('Patient/1'), {
    'content-type': 'application/json',
  });
  t.equal(viaJson.status, 201, 'application/json body accepted');
});

t.test('invalid resources are rejected with an OperationOutcome and nothing is stored', async (t) => {
  const subject = 'Patient/invalid-cases';
  const cases: [string, unknown, string][] = [
    ['status bogus', carePlan(subject, { status: 'bogus' as CarePlan['status'] }), 'CarePlan.status'],
    ['missing subject', { resourceType: 'CarePlan', status: 'active', intent: 'plan' }, 'CarePlan.subject'],
    ['unknown element', { ...carePlan(subject), colour: 'red' }, 'CarePlan.colour'],
    ['impossible date', carePlan(subject, { created: '2026-02-30' }), 'CarePlan.created'],
    [
      'activity status',
      carePlan(subject, { activity: [{ detail: { status: 'nope' as 'scheduled' } }] }),
      'CarePlan.activity[0].detail.status',
    ],
  ];
  for (const [name, resource, expression] of cases) {
    const res = await call<OperationOutcome>('POST', '/CarePlan', resource);
    t.equal(res.status, 400, name);
    t.equal(res.body.resourceType, 'OperationOutcome', name);
    const issue = res.body.issue.find((i) => i.severity === 'error');
    t.ok(issue?.diagnostics, `${name}: diagnostics`);
    t.ok(
      issue?.expression?.some((e) => e.startsWith(expression)),
      `${name}: expression ${issue?.expression}`,
    );
  }
  t.equal(await count(`/CarePlan?subject=${subject}`), 0, 'nothing stored');

  const good = await call<CarePlan>('POST', '/CarePlan', carePlan(subject));
  const badUpdate = await call('PUT', `/CarePlan/${good.body.id}`, { ...good.body, intent: 'wish' });
  t.equal(badUpdate.status, 400, 'invalid update rejected');
  t.equal(
    (await call<CarePlan>('GET', `/CarePlan/${good.body.id}`)).body.meta?.versionId,
    good.body.meta?.versionId,
  );
});

t.test('HTTP errors never crash the server', async (t) => {
  const badJson = await call<OperationOutcome>('POST', '/CarePlan', '{"resourceType": ');
  t.equal(badJson.status, 400);
  t.equal(badJson.body.resourceType, 'OperationOutcome');
  const unknownRoute = await call<OperationOutcome>('GET', `${base.replace(/\/fhir$/, '')}/nope`);
  t.equal(unknownRoute.status, 404);
  t.equal(unknownRoute.body.resourceType, 'OperationOutcome');
  t.equal((await call('GET', '/NoSuchType/1')).status, 404);
  t.equal((await call('GET', '/CarePlan/1/2/3/4/5')).status, 404);
  t.equal((await call('POST', '/CarePlan', 'x', { 'content-type': 'text/plain' })).status, 415);
  t.equal((await call('POST', '/CarePlan', '[1,2]')).status, 400);
  t.equal((await call('POST', '/CarePlan', 'null')).status, 400);
  t.equal((await call('POST', '/CarePlan', { resourceType: 'Patient' })).status, 400, 'type mismatch');
  t.equal((await call('POST', '', { resourceType: 'Bundle', type: 'transaction', entry: 'x' })).status, 400);
  t.equal((await call('GET', '/CarePlan?unknown-param=1')).status, 400, 'unknown search parameter');
  t.equal((await call('GET', '/CarePlan?_count=abc')).status, 400);
  const tooBig = await call('POST', '/Basic', {
    resourceType: 'Basic',
    text: 'x'.repeat(11 * 1024 * 1024),
  }).catch(() => ({ status: 413 }));
  t.equal(tooBig.status, 413, 'body limit');
  t.equal((await call('GET', '/metadata')).status, 200, 'still serving');
});

t.test('transaction with urn:uuid references resolves them', async (t) => {
  const [patient, goal, plan] = [urn(), urn(), urn()];
  const res = await call<Bundle>(
    'POST',
    '',
    transaction([
      {
        fullUrl: patient,
        resource: patientResource({ active: true }),
        request: { method: 'POST', url: 'Patient' },
      },
      {
        fullUrl: goal,
        resource: {
          resourceType: 'Goal',
          lifecycleStatus: 'active',
          description: { text: 'walk' },
          subject: { reference: patient },
        } as Goal,
        request: { method: 'POST', url: 'Goal' },
      },
      {
        fullUrl: plan,
        resource: carePlan(patient, { goal: [{ reference: goal }] }),
        request: { method: 'POST', url: 'CarePlan' },
      },
    ]),
  );
  t.equal(res.status, 200);
  t.equal(res.body.type, 'transaction-response');
  const [p, g, c] = (res.body.entry ?? []).map((e) => e.resource as Resource);
  t.same(
    (res.body.entry ?? []).map((e) => e.response?.status),
    ['201', '201', '201'],
  );
  const storedPlan = (await call<CarePlan>('GET', `/CarePlan/${c.id}`)).body;
  t.equal(storedPlan.subject.reference, `Patient/${p.id}`);
  t.equal(storedPlan.goal?.[0].reference, `Goal/${g.id}`);
  t.match(res.body.entry?.[2].response?.location, new RegExp(`^CarePlan/${c.id}/_history/`));
  t.equal(res.body.entry?.[2].response?.etag, `W/"${c.meta?.versionId}"`);
  const included = await call<Bundle>(
    'GET',
    `/CarePlan?_id=${c.id}&_include=CarePlan:goal&_revinclude=Goal:subject`,
  );
  t.same(
    included.body.entry?.map((e) => [e.resource?.resourceType, e.search?.mode]),
    [
      ['CarePlan', 'match'],
      ['Goal', 'include'],
    ],
    '_include',
  );

  const unresolved = await call(
    'POST',
    '',
    transaction([{ resource: carePlan(urn()), request: { method: 'POST', url: 'CarePlan' } }]),
  );
  t.equal(unresolved.status, 400, 'urn:uuid reference to no entry is rejected');
});

t.test('a transaction with Prefer: return=minimal answers each entry without its resource', async (t) => {
  const [patient, plan] = [urn(), urn()];
  const res = await call<Bundle>(
    'POST',
    '',
    transaction([
      { fullUrl: patient, resource: patientResource(), request: { method: 'POST', url: 'Patient' } },
      { fullUrl: plan, resource: carePlan(patient), request: { method: 'POST', url: 'CarePlan' } },
    ]),
    { prefer: 'return=minimal' },
  );
  t.equal(res.status, 200);
  t.equal(
    res.body.type,
    'transaction-response',
    'the response Bundle is still there (FHIR R4 http.html#ops)',
  );
  const entries = res.body.entry ?? [];
  t.equal(entries.length, 2);
  t.ok(
    entries.every((e) => e.resource === undefined),
    'no entry carries its resource',
  );
  const [, location, id, version] =
    /^(CarePlan)\/([^/]+)\/_history\/([^/]+)$/.exec(entries[1].response?.location ?? '') ?? [];
  t.equal(location, 'CarePlan', 'each entry says where its resource is stored');
  const stored = await call<CarePlan>('GET', `/CarePlan/${id}`);
  t.equal(stored.body.meta?.versionId, version);
  t.equal(entries[1].response?.etag, `W/"${version}"`);
  t.equal(entries[1].response?.lastModified, stored.body.meta?.lastUpdated, 'and when it was stored');
});

t.test('a transaction whose 3rd entry fails leaves nothing behind', async (t) => {
  const subject = 'Patient/rollback';
  const newSubject = 'Patient/rollback-new';
  const existing = (await call<CarePlan>('POST', '/CarePlan', carePlan(subject, { title: 'before' }))).body;
  const historyBefore = (await call<Bundle>('GET', `/CarePlan/${existing.id}/_history`)).body;
  const res = await call<OperationOutcome>(
    'POST',
    '',
    transaction([
      {
        resource: { ...existing, title: 'after' },
        request: { method: 'PUT', url: `CarePlan/${existing.id}` },
      },
      { fullUrl: urn(), resource: carePlan(newSubject), request: { method: 'POST', url: 'CarePlan' } },
      {
        fullUrl: urn(),
        resource: carePlan(subject, { status: 'bogus' as CarePlan['status'] }),
        request: { method: 'POST', url: 'CarePlan' },
      },
    ]),
  );
  t.equal(res.status, 400, 'status of the failing entry');
  t.equal(res.body.resourceType, 'OperationOutcome');
  t.ok(res.body.issue.some((i) => i.expression?.includes('CarePlan.status')));
  t.ok(
    res.body.issue.some(
      (i) => /rolled back/.test(i.diagnostics ?? '') && i.expression?.[0] === 'Bundle.entry[2]',
    ),
  );
  t.equal(await count(`/CarePlan?subject=${newSubject}`), 0, 'created entry gone');
  t.equal(await count(`/CarePlan?subject=${subject}`), 1, 'only the original remains');
  const after = await call<CarePlan>('GET', `/CarePlan/${existing.id}`);
  t.equal(after.body.title, 'before');
  t.equal(after.body.meta?.versionId, existing.meta?.versionId, 'old version kept');
  t.same(
    (await call<Bundle>('GET', `/CarePlan/${existing.id}/_history`)).body,
    historyBefore,
    'history untouched',
  );

  const missing = await call(
    'POST',
    '',
    transaction([
      { fullUrl: urn(), resource: carePlan(newSubject), request: { method: 'POST', url: 'CarePlan' } },
      { request: { method: 'DELETE', url: 'CarePlan/never-existed' } },
    ]),
  );
  t.equal(missing.status, 404, 'failing entry status is used');
  const stale = await call(
    'POST',
    '',
    transaction([
      { fullUrl: urn(), resource: carePlan(newSubject), request: { method: 'POST', url: 'CarePlan' } },
      {
        resource: { ...existing, title: 'x' },
        request: { method: 'PUT', url: `CarePlan/${existing.id}`, ifMatch: 'W/"stale"' },
      },
    ]),
  );
  t.equal(stale.status, 412);
  t.equal(await count(`/CarePlan?subject=${subject}`), 1, 'still only the original');
  t.equal(await count(`/CarePlan?subject=${newSubject}`), 0);
});

t.test('If-Match: stale -> 412, W/"v" and bare v accepted; PATCH and DELETE', async (t) => {
  const v1 = (await call<CarePlan>('POST', '/CarePlan', carePlan('Patient/if-match'))).body;
  const stale = await call('PUT', `/CarePlan/${v1.id}`, { ...v1, title: 'x' }, { 'if-match': 'W/"stale"' });
  t.equal(stale.status, 412);
  const v2 = await call<CarePlan>(
    'PUT',
    `/CarePlan/${v1.id}`,
    { ...v1, title: 'two' },
    { 'if-match': `W/"${v1.meta?.versionId}"` },
  );
  t.equal(v2.status, 200);
  t.not(v2.body.meta?.versionId, v1.meta?.versionId);
  t.equal(v2.headers.get('etag'), `W/"${v2.body.meta?.versionId}"`);
  const again = await call(
    'PUT',
    `/CarePlan/${v1.id}`,
    { ...v1, title: 'x' },
    { 'if-match': `W/"${v1.meta?.versionId}"` },
  );
  t.equal(again.status, 412, 'old version is stale now');
  const v3 = await call<CarePlan>(
    'PUT',
    `/CarePlan/${v1.id}`,
    { ...v1, title: 'three' },
    { 'if-match': v2.body.meta?.versionId as string },
  );
  t.equal(v3.status, 200, 'bare version accepted');

  const patchHeaders = { 'content-type': 'application/json-patch+json' };
  const patchOp = [{ op: 'replace', path: '/status', value: 'completed' }];
  t.equal(
    (await call('PATCH', `/CarePlan/${v1.id}`, patchOp, { ...patchHeaders, 'if-match': 'W/"stale"' })).status,
    412,
  );
  const patched = await call<CarePlan>('PATCH', `/CarePlan/${v1.id}`, patchOp, patchHeaders);
  t.equal(patched.status, 200);
  t.equal(patched.body.status, 'completed');
  const badPatch = await call(
    'PATCH',
    `/CarePlan/${v1.id}`,
    [{ op: 'replace', path: '/status', value: 'bogus' }],
    patchHeaders,
  );
  t.equal(badPatch.status, 400, 'patched result is validated');

  const upsert = await call('PUT', '/CarePlan/client-chosen-id', {
    ...carePlan('Patient/if-match'),
    id: 'client-chosen-id',
  });
  t.equal(upsert.status, 201, 'update as create');

  t.equal((await call('DELETE', `/CarePlan/${v1.id}`, undefined, { 'if-match': 'W/"stale"' })).status, 412);
  t.equal((await call('DELETE', `/CarePlan/${v1.id}`)).status, 200);
  t.equal((await call('GET', `/CarePlan/${v1.id}`)).status, 410, 'deleted -> 410 Gone');
});

t.test(
  'If-None-Exist: 0 -> 201, 1 -> 200, 2+ -> 412; concurrent conditional creates create one',
  async (t) => {
    const patient = { resourceType: 'Patient', identifier: [{ system: 'urn:test', value: 'cond-1' }] };
    const first = await call('POST', '/Patient', patient, { 'if-none-exist': 'identifier=urn:test|cond-1' });
    t.equal(first.status, 201);
    const second = await call('POST', '/Patient', patient, { 'if-none-exist': 'identifier=urn:test|cond-1' });
    t.equal(second.status, 200);
    t.equal(second.body.id, first.body.id);
    await call('POST', '/Patient', patient); // a duplicate without condition
    const multiple = await call('POST', '/Patient', patient, {
      'if-none-exist': 'identifier=urn:test|cond-1',
    });
    t.equal(multiple.status, 412);
    const unknownCriteria = await call('POST', '/Patient', patient, { 'if-none-exist': 'no-such-param=1' });
    t.equal(unknownCriteria.status, 400, 'criteria the server cannot evaluate are rejected, not ignored');

    // Conditional update: 0 matches -> 201, 1 -> 200 (same id), unknown criteria -> 400
    const plan = carePlan('Patient/cond-update', { identifier: [{ system: 'urn:cu', value: '1' }] });
    const cu1 = await call('PUT', '/CarePlan?identifier=urn:cu|1', plan);
    t.equal(cu1.status, 201);
    const cu2 = await call('PUT', '/CarePlan?identifier=urn:cu|1', { ...plan, description: 'second' });
    t.equal(cu2.status, 200);
    t.equal(cu2.body.id, cu1.body.id);
    t.equal((await call('PUT', '/CarePlan?nonsense=1', plan)).status, 400);
    // ... and inside a transaction (resolved by the embedded layer)
    const txUpdate = await call<Bundle>(
      'POST',
      '',
      transaction([
        {
          resource: { ...plan, description: 'third' },
          request: { method: 'PUT', url: 'CarePlan?identifier=urn:cu|1' },
        },
        {
          resource: carePlan('Patient/cond-update'),
          request: { method: 'PUT', url: 'CarePlan?identifier=urn:cu|2' },
        },
      ]),
    );
    t.same(
      txUpdate.body.entry?.map((e) => e.response?.status),
      ['200', '201'],
    );
    t.equal(txUpdate.body.entry?.[0].resource?.id, cu1.body.id);

    const concurrent = await Promise.all(
      Array.from({ length: 20 }, () =>
        call(
          'POST',
          '/CarePlan',
          carePlan('Patient/c', { identifier: [{ system: 'urn:cp', value: 'same' }] }),
          {
            'if-none-exist': 'identifier=urn:cp|same',
          },
        ),
      ),
    );
    t.same(concurrent.map((r) => r.status).sort(), ['201', ...Array(19).fill('200')].map(Number).sort());
    t.equal(new Set(concurrent.map((r) => r.body.id)).size, 1);
    t.equal(await count('/CarePlan?identifier=urn:cp|same'), 1, 'exactly one resource');

    // The same inside transactions, 20 at once, each with more than 8 entries
    const bundles = Array.from({ length: 20 }, () => {
      const p = urn();
      return transaction([
        {
          fullUrl: p,
          resource: patientResource({ identifier: [{ system: 'urn:test', value: 'tx-cond' }] }),
          request: { method: 'POST', url: 'Patient', ifNoneExist: 'identifier=urn:test|tx-cond' },
        },
        ...Array.from({ length: 9 }, () => ({
          fullUrl: urn(),
          resource: carePlan(p, { title: 'tx-cond' }),
          request: { method: 'POST' as const, url: 'CarePlan' },
        })),
      ]);
    });
    const results = await Promise.all(bundles.map((b) => call<Bundle>('POST', '', b)));
    t.same([...new Set(results.map((r) => r.status))], [200]);
    t.equal(await count('/Patient?identifier=urn:test|tx-cond'), 1, 'one patient');
    const patientIds = new Set(results.map((r) => r.body.entry?.[0].resource?.id));
    t.equal(patientIds.size, 1);
    t.equal(
      await count(`/CarePlan?subject=Patient/${[...patientIds][0]}`),
      180,
      'all plans point at that patient',
    );
  },
);

t.test('history is newest first and stays so', async (t) => {
  const v1 = (await call<CarePlan>('POST', '/CarePlan', carePlan('Patient/history', { title: '1' }))).body;
  const v2 = (await call<CarePlan>('PUT', `/CarePlan/${v1.id}`, { ...v1, title: '2' })).body;
  const v3 = (await call<CarePlan>('PUT', `/CarePlan/${v1.id}`, { ...v2, title: '3' })).body;
  const expected = [v3, v2, v1].map((v) => v.meta?.versionId);
  for (const attempt of [1, 2, 3]) {
    const history = await call<Bundle>('GET', `/CarePlan/${v1.id}/_history`);
    t.equal(history.status, 200);
    t.equal(history.body.type, 'history');
    t.same(
      history.body.entry?.map((e) => e.resource?.meta?.versionId),
      expected,
      `call ${attempt}`,
    );
  }
  const page = await call<Bundle>('GET', `/CarePlan/${v1.id}/_history?_count=1&_offset=1`);
  t.same(
    page.body.entry?.map((e) => e.resource?.meta?.versionId),
    [v2.meta?.versionId],
  );
  // Paged by `next` links: two versions a page, the walk ends after three versions.
  const walked: (string | undefined)[] = [];
  let link: string | undefined = `${base}/CarePlan/${v1.id}/_history?_count=2`;
  for (let pages = 0; link && pages < 5; pages++) {
    const pageBody = (await (await fetch(link)).json()) as Bundle;
    walked.push(...(pageBody.entry ?? []).map((e) => e.resource?.meta?.versionId));
    link = pageBody.link?.find((l) => l.relation === 'next')?.url;
  }
  t.same(walked, expected, 'the next links walk the whole history once, newest first');
  t.equal((await call<CarePlan>('GET', `/CarePlan/${v1.id}/_history/${v1.meta?.versionId}`)).body.title, '1');
});

t.test('search: subject, status, identifier, _id, _lastUpdated, _sort, _count, _offset, links', async (t) => {
  const subject = 'Patient/search';
  const ids: string[] = [];
  for (let i = 0; i < 5; i++) {
    const res = await call<CarePlan>(
      'POST',
      '/CarePlan',
      carePlan(subject, {
        status: i < 3 ? 'active' : 'completed',
        title: `plan-${i}`,
        identifier: [{ system: 'urn:search', value: String(i) }],
      }),
    );
    ids.push(res.body.id as string);
  }
  t.equal(await count(`/CarePlan?subject=${subject}`), 5);
  t.equal(await count(`/CarePlan?patient=${subject}`), 5);
  t.equal(await count(`/CarePlan?subject=${subject}&status=active`), 3);
  t.equal(await count('/CarePlan?identifier=urn:search|4'), 1);
  t.equal(await count(`/CarePlan?_id=${ids[0]},${ids[1]}`), 2);
  t.equal(await count(`/CarePlan?subject=${subject}&_lastUpdated=gt2000-01-01`), 5);
  t.equal(await count(`/CarePlan?subject=${subject}&_lastUpdated=lt2000-01-01`), 0);

  const page1 = await call<Bundle>('GET', `/CarePlan?subject=${subject}&_sort=-_lastUpdated&_count=2`);
  t.equal(page1.body.total, 5);
  t.same(
    page1.body.entry?.map((e) => e.resource?.id),
    [ids[4], ids[3]],
  );
  const next = page1.body.link?.find((l) => l.relation === 'next')?.url;
  t.ok(next?.startsWith(`${base}/CarePlan?`), 'next link');
  const page2 = await call<Bundle>('GET', next as string);
  t.same(
    page2.body.entry?.map((e) => e.resource?.id),
    [ids[2], ids[1]],
  );
  const offset = await call<Bundle>(
    'GET',
    `/CarePlan?subject=${subject}&_sort=_lastUpdated&_count=2&_offset=4`,
  );
  t.same(
    offset.body.entry?.map((e) => e.resource?.id),
    [ids[4]],
  );
  t.notOk(
    offset.body.link?.some((l) => l.relation === 'next'),
    'no next on the last page',
  );
  t.equal(page1.body.entry?.[0].fullUrl, `${base}/CarePlan/${ids[4]}`);
  const byPost = await call<Bundle>('POST', '/CarePlan/_search', `subject=${subject}&status=completed`, {
    'content-type': 'application/x-www-form-urlencoded',
  });
  t.equal(byPost.body.total, 2, 'search by POST');
});

t.test('close() finishes in-flight requests and stops listening', async (t) => {
  const other = await startEmbeddedFhirServer({ logger: pino({ level: 'silent' }) });
  t.not(other.baseUrl, base);
  // A transaction big enough to still be running when close() is called
  const big = transaction(
    Array.from({ length: 400 }, () => ({
      fullUrl: urn(),
      resource: carePlan('Patient/close'),
      request: { method: 'POST' as const, url: 'CarePlan' },
    })),
  );
  let answeredAt = 0;
  const inFlight = call<Bundle>('POST', other.baseUrl, big).then((reply) => {
    answeredAt = performance.now();
    return reply;
  });
  await new Promise((resolve) => setTimeout(resolve, 30));
  const closeCalledAt = performance.now();
  await other.close();
  const result = await inFlight;
  t.equal(result.status, 200, 'in-flight transaction completed');
  t.equal(result.body.entry?.length, 400);
  t.ok(answeredAt > closeCalledAt, 'it was still running when close() was called');
  await t.rejects(fetch(`${other.baseUrl}/metadata`), 'no longer listening');
  t.equal(await count('/CarePlan?subject=Patient/close'), 0, 'servers do not share data');
});
