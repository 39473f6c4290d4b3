// Paging links: the gateway follows a Bundle's `next` link only within the configured FHIR base URL, so a link the
// FHIR server supplies can never send the service's credentials elsewhere (SSRF, credential leak). A proxy in front
// of the real embedded FHIR server rewrites the links (a fault injected, the server itself is real); a listener on
// another port plays the foreign host and records whatever reaches it.
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Bundle, CarePlan } from 'fhir/r4.js';
import t from 'tap';
import { type EmbeddedFhirServer, startEmbeddedFhirServer } from '../../../src/embedded-fhir/server.js';
import { FhirGateway, FhirServerError, linkWithinBase } from '../../../src/fhir/client/gateway.js';
import { eventsAfter } from '../../../src/subscriptions/events.js';
import { EVENT_TYPES } from '../../../src/subscriptions/subscription-resource.js';
import { SubscriptionStore } from '../../../src/subscriptions/subscription-store.js';
import { quietLogger } from '../../helpers/service.js';

const TOKEN = 'Bearer only-for-the-fhir-server';

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

let fhir: EmbeddedFhirServer;
let proxyBase = '';
let foreignBase = '';
const foreignRequests: IncomingHttpHeaders[] = [];
const proxiedPaths: string[] = [];
/** How the proxy rewrites each `next` link (undefined: passes it on). */
let rewrite: ((link: string) => string) | undefined;
const servers: Server[] = [];

t.before(async () => {
  fhir = await startEmbeddedFhirServer({ logger: quietLogger });
  const foreign = createServer((request, response) => {
    foreignRequests.push(request.headers);
    response.writeHead(200, { 'content-type': 'application/fhir+json' }).end('{"resourceType":"Bundle"}');
  });
  foreignBase = await listen(foreign);
  const proxy = createServer(async (request, response) => {
    proxiedPaths.push(request.url ?? '');
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    const upstream = await fetch(`${fhir.baseUrl}${(request.url ?? '').replace(/^\/fhir/, '')}`, {
      method: request.method,
      headers: { 'content-type': 'application/fhir+json' },
      ...(chunks.length ? { body: Buffer.concat(chunks) } : {}),
    });
    let text = await upstream.text();
    // The server's own links name its address; through the proxy they name the proxy's (as a gateway would).
    text = text.split(fhir.baseUrl).join(proxyBase);
    if (rewrite && text.startsWith('{')) {
      const body = JSON.parse(text) as Bundle;
      for (const link of body.link ?? []) if (link.relation === 'next') link.url = rewrite(link.url);
      text = JSON.stringify(body);
    }
    response.writeHead(upstream.status, { 'content-type': 'application/fhir+json' }).end(text);
  });
  proxyBase = `${await listen(proxy)}/fhir`;
  servers.push(foreign, proxy);
});
t.teardown(async () => {
  for (const server of servers) await new Promise((resolve) => server.close(resolve));
  await fhir.close();
});

const gateway = () =>
  new FhirGateway({ baseUrl: proxyBase, timeoutMs: 5_000, maxRetries: 1, authorization: async () => TOKEN });

t.test('linkWithinBase: the base URL, or a path below it, on the same origin; nothing else', async (t) => {
  const base = 'http://fhir.internal:8090/fhir';
  const inside = [
    ['http://fhir.internal:8090/fhir?_getpages=abc&_getpagesoffset=50', 'HAPI: the base with a query'],
    ['http://fhir.internal:8090/fhir/CarePlan/1/_history?_count=3&_offset=3', 'below the base'],
    ['CarePlan?_count=3&_offset=3', 'relative to the base'],
    ['HTTP://FHIR.INTERNAL:8090/fhir/Subscription', 'scheme and host are case-insensitive'],
  ];
  for (const [link, why] of inside) t.ok(linkWithinBase(link, base), why);
  t.equal(linkWithinBase('CarePlan', `${base}/`), `${base}/CarePlan`, 'a base with a trailing slash');
  const outside = [
    ['http://evil.example/fhir/CarePlan', 'another host'],
    ['http://fhir.internal:8091/fhir/CarePlan', 'another port'],
    ['https://fhir.internal:8090/fhir/CarePlan', 'another scheme'],
    ['http://fhir.internal:8090/fhirx/CarePlan', 'a path that only starts like the base'],
    ['http://fhir.internal:8090/admin', 'a path outside the base'],
    ['http://fhir.internal:8090/fhir/../admin', 'dot segments out of the base'],
    ['http://fhir.internal:8090/fhir/%2e%2e/admin', 'encoded dot segments out of the base'],
    ['http://user:pw@fhir.internal:8090/fhir/CarePlan', 'user info'],
    ['http://fhir.internal:8090@evil.example/fhir', 'the base as user info of another host'],
    ['//evil.example/fhir/CarePlan', 'a scheme-relative link to another host'],
    ['http://[::1', 'not a URL'],
  ];
  for (const [link, why] of outside) t.equal(linkWithinBase(link, base), undefined, why);
});

/** A CarePlan on the FHIR server with `versions` versions; returns its id. */
async function planWithVersions(patient: string, versions: number): Promise<string> {
  const headers = { 'content-type': 'application/fhir+json' };
  let plan = (await (
    await fetch(`${fhir.baseUrl}/CarePlan`, {
      method: 'POST',
      headers,
      body: JSON.stringify({
        resourceType: 'CarePlan',
        status: 'active',
        intent: 'plan',
        subject: { reference: patient },
      }),
    })
  ).json()) as CarePlan;
  for (let v = 2; v <= versions; v++) {
    plan = (await (
      await fetch(`${fhir.baseUrl}/CarePlan/${plan.id}`, {
        method: 'PUT',
        headers,
        body: JSON.stringify({ ...plan, description: `version ${v}` }),
      })
    ).json()) as CarePlan;
  }
  return plan.id as string;
}

t.test('the pages of a long history are all read, through next links within the base', async (t) => {
  rewrite = undefined;
  const id = await planWithVersions('Patient/paging-ok', 7);
  const events = await eventsAfter(
    gateway(),
    { t: '', seen: [] },
    { events: EVENT_TYPES, patient: 'Patient/paging-ok' },
    { settledBefore: new Date(Date.now() + 60_000).toISOString(), limit: 100, pageSize: 2 },
  );
  // The whole history in one answer, straight from the server (no paging), oldest first.
  const whole = (await (await fetch(`${fhir.baseUrl}/CarePlan/${id}/_history`)).json()) as Bundle;
  const versions = (whole.entry ?? []).map((e) => e.resource?.meta?.versionId).reverse();
  t.equal(versions.length, 7);
  t.same(
    events.map((e) => [e.plan.id, e.plan.version, e.type]),
    versions.map((version, i) => [id, version, i === 0 ? 'care-plan.created' : 'care-plan.updated']),
    'all 7 versions, oldest first, the oldest the creation',
  );
  t.equal(
    proxiedPaths.filter((p) => p.includes(`/CarePlan/${id}/_history`)).length,
    4,
    '4 pages of at most 2 versions',
  );
});

t.test('a next link outside the base is refused with a clear error and never fetched', async (t) => {
  const id = await planWithVersions('Patient/paging-foreign', 3);
  const redirects: [string, (link: string) => string][] = [
    ['another port', (link) => link.replace(proxyBase, `${foreignBase}/fhir`)],
    ['user info naming the base before another host', (link) => link.replace('http://', 'http://x@')],
    ['a path outside the base on the same origin', (link) => link.replace('/fhir/', '/other/')],
  ];
  for (const [why, change] of redirects) {
    rewrite = change;
    foreignRequests.length = 0;
    proxiedPaths.length = 0;
    const error = await eventsAfter(
      gateway(),
      { t: '', seen: [] },
      { events: EVENT_TYPES, patient: 'Patient/paging-foreign' },
      { settledBefore: new Date(Date.now() + 60_000).toISOString(), limit: 100, pageSize: 2 },
    ).catch((e: unknown) => e);
    t.ok(error instanceof FhirServerError, `${why}: a FhirServerError`);
    t.equal((error as FhirServerError).kind, 'upstream', `${why}: upstream (the API answers 502)`);
    t.match(
      (error as Error).message,
      "the FHIR server's next-page link points outside FHIR_BASE_URL; it was not followed",
      why,
    );
    t.equal(foreignRequests.length, 0, `${why}: nothing reached the foreign host`);
    t.notOk(
      proxiedPaths.some((p) => p.startsWith('/other/')),
      `${why}: nothing was sent outside the base path`,
    );
    t.equal(
      proxiedPaths.filter((p) => p.includes(`/CarePlan/${id}/_history`)).length,
      1,
      `${why}: only the first page was read`,
    );
  }
  rewrite = undefined;
});

t.test('the Subscriptions listing follows the same rule', async (t) => {
  const store = new SubscriptionStore(gateway());
  rewrite = (link) => link.replace(proxyBase, `${foreignBase}/fhir`);
  foreignRequests.length = 0;
  for (let i = 0; i < 3; i++) {
    await fetch(`${fhir.baseUrl}/Subscription`, {
      method: 'POST',
      headers: { 'content-type': 'application/fhir+json' },
      body: JSON.stringify({
        resourceType: 'Subscription',
        status: 'off',
        reason: 'paging',
        criteria: 'CarePlan?subject=Patient/x',
        channel: { type: 'rest-hook', endpoint: 'https://example.org/hook' },
      }),
    });
  }
  const error = await store.list({}, 2).catch((e: unknown) => e);
  t.match((error as Error).message, /next-page link points outside FHIR_BASE_URL/);
  t.equal(foreignRequests.length, 0, 'nothing reached the foreign host');
  rewrite = undefined;
  const honest = await store.list({}, 2).then(
    () => 'listed',
    (e: unknown) => e,
  );
  t.equal(honest, 'listed', 'the same server without the rewrite: listed, page by page');
  // A server that sends one next link again and again (a loop) is refused, not followed forever.
  rewrite = () => `${proxyBase}/Subscription?_count=2&_offset=0`;
  const loop = await store.list({}, 2).catch((e: unknown) => e);
  t.match((loop as Error).message, /next-page link repeats an earlier page; it was not followed/);
  rewrite = undefined;
});
