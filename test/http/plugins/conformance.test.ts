// HTTP and OpenAPI conformance, and the privacy edges of issue 12 (items 8-10): tokens without `kid` during a
// key rotation; 405 with Allow, 406 and q=0, 431, `security: []` on the public operations; Unicode spaces in
// text; X-Request-Id values that could be PHI; the standalone embedded FHIR server's logs.

import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { connect } from 'node:net';
import type { Bundle, CarePlan } from 'fhir/r4.js';
import { exportJWK, generateKeyPair, type JWK, SignJWT } from 'jose';
import t from 'tap';
import { fhirRoute } from '../../../src/embedded-fhir/logging.js';
import { startEmbeddedFhirServer } from '../../../src/embedded-fhir/server.js';
import { negotiate } from '../../../src/http/plugins/conformance.js';
import { MAX_KEYS_WITHOUT_KID } from '../../../src/http/tokens.js';
import { requestIdFrom, standaloneFhirLogger } from '../../../src/logging.js';
import type { SharedCarePlan } from '../../../src/model/care-plan.js';
import { fromRoot } from '../../../src/paths.js';
import {
  AUDIENCE,
  ISSUER,
  type Issuer,
  LogCapture,
  loopback,
  type SecureService,
  startSecureService,
} from '../../helpers/auth.js';
import { examplePlan, startTestService, type TestService } from '../../helpers/service.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const PROBLEM = /^application\/problem\+json/;

let service: TestService;
t.before(async () => {
  service = await startTestService();
});
t.teardown(() => service.close());

const json = { 'content-type': 'application/json' };
const create = async (plan: unknown = examplePlan()) => {
  const response = await service.app.inject({
    method: 'POST',
    url: '/care-plans',
    headers: json,
    payload: JSON.stringify(plan),
  });
  if (response.statusCode !== 201) throw new Error(`create: ${response.statusCode} ${response.body}`);
  return response.json() as SharedCarePlan;
};

// ---------------------------------------------------------------------------------------------------------------
// Item 8: a token without kid, and a JWKS with several keys of its type
// ---------------------------------------------------------------------------------------------------------------

type KeyPair = Awaited<ReturnType<typeof generateKeyPair>>;

async function jwksService(keys: { pair: KeyPair; kid: string; alg: string }[]) {
  const jwks = {
    keys: await Promise.all(
      keys.map(async ({ pair, kid, alg }) => ({
        ...(await exportJWK(pair.publicKey)),
        kid,
        alg,
        use: 'sig',
      })),
    ),
  } as { keys: JWK[] };
  const server = await loopback((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(jwks));
  });
  const secure = await startSecureService({ jwksUrl: `${server.url}/jwks.json` } as Issuer);
  return {
    secure,
    close: async () => {
      await secure.close();
      await server.close();
    },
  };
}

function sign(pair: KeyPair, alg: string, options: { kid?: string; expiresIn?: number } = {}) {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ scope: 'system/CarePlan.cruds', client_id: 'rotating-client' })
    .setProtectedHeader({ alg, typ: 'at+jwt', ...(options.kid ? { kid: options.kid } : {}) })
    .setIssuer(ISSUER)
    .setAudience(AUDIENCE)
    .setIssuedAt(now - 10)
    .setExpirationTime(now + (options.expiresIn ?? 300))
    .sign(pair.privateKey);
}

const changes = (secure: SecureService, token?: string, method: 'GET' | 'PATCH' = 'GET') =>
  secure.app.inject({
    method,
    url: '/care-plans/changes',
    headers: token ? { authorization: `Bearer ${token}` } : {},
  });

t.test(
  'a token without kid: accepted when exactly one of the JWKS keys of its type verifies it',
  async (t) => {
    const [old, current, forger] = await Promise.all(
      [1, 2, 3].map(() => generateKeyPair('RS256', { extractable: true })),
    );
    const ec = await generateKeyPair('ES256', { extractable: true });
    // During a rotation: the old and the new RSA key; and one EC key published twice (two kids, same key).
    const rotation = await jwksService([
      { pair: old, kid: 'old', alg: 'RS256' },
      { pair: current, kid: 'new', alg: 'RS256' },
      { pair: ec, kid: 'ec-1', alg: 'ES256' },
      { pair: ec, kid: 'ec-2', alg: 'ES256' },
    ]);
    t.teardown(rotation.close);
    const secure = rotation.secure;

    t.equal((await changes(secure, await sign(current, 'RS256'))).statusCode, 200, 'signed by the new key');
    t.equal((await changes(secure, await sign(old, 'RS256'))).statusCode, 200, 'signed by the old key');
    t.equal(
      (await changes(secure, await sign(current, 'RS256', { kid: 'new' }))).statusCode,
      200,
      'with kid',
    );

    const forged = await changes(secure, await sign(forger, 'RS256'));
    t.equal(forged.statusCode, 401, 'a key the issuer does not publish');
    t.match(forged.headers['www-authenticate'], /invalid_token/);
    const expired = await changes(secure, await sign(current, 'RS256', { expiresIn: -120 }));
    t.equal(expired.statusCode, 401);
    t.match(
      expired.headers['www-authenticate'],
      /expired/,
      'the verifying key found, then its expiry refused',
    );
    const ambiguous = await changes(secure, await sign(ec, 'ES256'));
    t.equal(ambiguous.statusCode, 401, 'two published keys verify it: ambiguous, refused');
    t.match(ambiguous.headers['www-authenticate'], /not signed with a key the issuer publishes/);
    t.equal(
      (await changes(secure, await sign(current, 'RS256', { kid: 'old' }))).statusCode,
      401,
      'a kid names the one key tried',
    );

    // A JWKS with more keys of the type than are tried: refused outright, not MAX_KEYS_WITHOUT_KID + 1 checks.
    const many = await Promise.all(
      Array.from({ length: MAX_KEYS_WITHOUT_KID + 1 }, () => generateKeyPair('RS256', { extractable: true })),
    );
    const crowded = await jwksService(many.map((pair, i) => ({ pair, kid: `k${i}`, alg: 'RS256' })));
    t.teardown(crowded.close);
    const refused = await changes(crowded.secure, await sign(many[0], 'RS256'));
    t.equal(refused.statusCode, 401);
    t.match(
      refused.headers['www-authenticate'],
      new RegExp(`no kid.*more than ${MAX_KEYS_WITHOUT_KID} keys`),
    );
    t.equal(
      (await changes(crowded.secure, await sign(many[5], 'RS256', { kid: 'k5' }))).statusCode,
      200,
      'with a kid, any size of JWKS',
    );

    // 405 needs no token on a public path, and a token elsewhere (as any other request does).
    const health = await secure.app.inject({ method: 'POST', url: '/health/live' });
    t.equal(health.statusCode, 405, 'POST /health/live without a token: 405');
    t.equal(
      (await changes(secure, undefined, 'PATCH')).statusCode,
      401,
      'PATCH /care-plans/changes: 401 first',
    );
    const patch = await changes(secure, await sign(current, 'RS256'), 'PATCH');
    t.equal(patch.statusCode, 405, 'with a token: 405');
    t.equal(patch.headers.allow, 'GET, HEAD');
  },
);

// ---------------------------------------------------------------------------------------------------------------
// Item 9: HTTP and OpenAPI conformance
// ---------------------------------------------------------------------------------------------------------------

t.test(
  'unsupported methods on an existing path: 405 problem with Allow; unknown paths stay 404',
  async (t) => {
    const plan = await create();
    const cases: [string, string, string][] = [
      ['POST', '/health/live', 'GET, HEAD'],
      ['PATCH', '/care-plans', 'GET, HEAD, POST'],
      ['POST', `/care-plans/${plan.id}`, 'GET, HEAD, PUT, DELETE'],
      ['DELETE', `/care-plans/${plan.id}/history?x=1`, 'GET, HEAD'],
      ['PUT', `/care-plans/${plan.id}/goals/${plan.goals?.[0]?.id}`, 'PATCH, DELETE'],
      ['DELETE', '/openapi.json', 'GET, HEAD'],
      ['POST', '/fhir/StructureDefinition/shared-decision', 'GET, HEAD'],
      ['OPTIONS', '/health/ready', 'GET, HEAD'],
      // Fixed paths have their own methods, also where a parameter route (/care-plans/:id) matches them too.
      ['PATCH', '/care-plans/changes', 'GET, HEAD'],
      ['PUT', '/care-plans/changes', 'GET, HEAD'],
      ['GET', '/care-plans/$to-fhir', 'POST'],
      ['DELETE', '/care-plans/%24from-fhir', 'POST'],
    ];
    for (const [method, url, allow] of cases) {
      const response = await service.app.inject({ method: method as 'GET', url });
      t.equal(response.statusCode, 405, `${method} ${url}: 405`);
      t.equal(response.headers.allow, allow, `${method} ${url}: Allow: ${allow}`);
      t.match(response.headers['content-type'], PROBLEM);
      t.match(response.json(), {
        type: 'https://shared-care-plans.org/problems/method-not-allowed',
        status: 405,
        detail: new RegExp(`^${method} is not allowed`),
      });
    }
    // QUERY (RFC 10008) without Content-Type is refused by Fastify before routing: still a 405 (or 404).
    const query = await service.app.inject({ method: 'QUERY' as 'GET', url: '/health/live' });
    t.equal(query.statusCode, 405, 'QUERY /health/live: 405');
    t.equal(query.headers.allow, 'GET, HEAD');
    const queryUnknown = await service.app.inject({ method: 'QUERY' as 'GET', url: '/no-such-path' });
    t.equal(queryUnknown.statusCode, 404, 'QUERY on an unknown path: 404');
    const unknown = await service.app.inject({ method: 'POST', url: '/no-such-path' });
    t.equal(unknown.statusCode, 404);
    t.notOk(unknown.headers.allow);
  },
);

t.test('content negotiation: 406 when nothing the route produces is acceptable; q=0 refuses', async (t) => {
  const plan = await create();
  const read = (accept: string) =>
    service.app.inject({ method: 'GET', url: `/care-plans/${plan.id}`, headers: { accept } });

  const xml = await read('application/xml');
  t.equal(xml.statusCode, 406, 'Accept: application/xml');
  t.match(xml.headers['content-type'], PROBLEM);
  t.match(xml.json(), { type: 'https://shared-care-plans.org/problems/not-acceptable', status: 406 });
  t.equal((await read('application/json;q=0')).statusCode, 406, 'JSON refused, and nothing else named');
  t.equal((await read('application/json;q=0, text/html;q=0')).statusCode, 406);
  const fhir = await read('application/json;q=0, application/fhir+json');
  t.equal(fhir.statusCode, 200);
  t.match(fhir.headers['content-type'], /^application\/fhir\+json/, 'JSON refused: FHIR');
  t.equal((fhir.json() as Bundle).resourceType, 'Bundle');
  for (const accept of ['application/json', '*/*', 'application/*', 'text/html;q=0, */*', '', 'nonsense']) {
    const response = await read(accept);
    t.equal(response.statusCode, 200, `Accept: ${accept}`);
    t.match(response.headers['content-type'], /^application\/json/, `Accept: ${accept} gives JSON`);
  }
  t.match((await read('text/html, */*;q=0.8')).headers['content-type'], /^text\/html/, 'a browser');

  // Routes with one media type, and the JSON-based types that application/json covers.
  const toFhir = (accept: string) =>
    service.app.inject({
      method: 'POST',
      url: '/care-plans/$to-fhir',
      headers: { ...json, accept },
      payload: JSON.stringify(examplePlan()),
    });
  t.equal((await toFhir('application/json')).statusCode, 200, '$to-fhir with Accept: application/json');
  t.equal((await toFhir('application/fhir+json')).statusCode, 200);
  t.equal((await toFhir('application/xml')).statusCode, 406, '$to-fhir with Accept: application/xml');
  t.equal(
    (await toFhir('application/fhir+json;q=0, application/json')).statusCode,
    406,
    'FHIR named and refused',
  );
  const definition = await service.app.inject({
    method: 'GET',
    url: '/fhir/StructureDefinition/shared-decision',
    headers: { accept: 'application/fhir+xml' },
  });
  t.equal(definition.statusCode, 406);

  // Refused before any work: nothing is created.
  const before = (await service.fhir<Bundle>('CarePlan?_summary=count')).body.total;
  const refused = await service.app.inject({
    method: 'POST',
    url: '/care-plans',
    headers: { ...json, accept: 'application/xml' },
    payload: JSON.stringify(examplePlan()),
  });
  t.equal(refused.statusCode, 406);
  t.equal((await service.fhir<Bundle>('CarePlan?_summary=count')).body.total, before, 'no plan created');
});

t.test('GET /care-plans/{id}: FHIR refused with q=0 while JSON is accepted gives JSON', async (t) => {
  const plan = await create();
  const response = await service.app.inject({
    method: 'GET',
    url: `/care-plans/${plan.id}`,
    headers: { accept: 'application/fhir+json;q=0, application/json' },
  });
  t.match(response.headers['content-type'], /^application\/json/);
});

t.test('negotiate: RFC 9110 ranking', async (t) => {
  const plan = ['application/json', 'application/fhir+json', 'text/html'];
  const cases: [string | undefined, string[], string | undefined][] = [
    [undefined, plan, 'application/json'],
    ['application/fhir+json', plan, 'application/fhir+json'],
    ['APPLICATION/FHIR+JSON; fhirVersion=4.0', plan, 'application/fhir+json'],
    ['text/html, application/json', plan, 'application/json'],
    ['text/html;level=1;q=0.9, application/json;q=0.8', plan, 'text/html'],
    ['application/json;q=0.5, application/fhir+json;q=0.6', plan, 'application/fhir+json'],
    ['application/fhir+json;q=0, application/json', plan, 'application/json'],
    ['application/json;q=abc', plan, undefined],
    ['application/json;q=1.5', plan, undefined],
    ['image/png, */*;q=0', plan, undefined],
    ['*/json', plan, 'application/json'],
    ['application/json', ['application/jwk-set+json'], 'application/jwk-set+json'],
    ['application/*;q=0.1, application/jwk-set+json;q=0', ['application/jwk-set+json'], undefined],
  ];
  for (const [accept, offered, expected] of cases)
    t.equal(negotiate(accept, offered), expected, `${accept} -> ${expected}`);
});

t.test('headers over 16 KiB: 431 problem over real HTTP, documented', async (t) => {
  const live = await startTestService();
  t.teardown(() => live.close());
  await live.app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = live.app.server.address() as AddressInfo;
  const raw = await new Promise<string>((resolve) => {
    const socket = connect(port, '127.0.0.1', () =>
      socket.write(`GET /care-plans/x HTTP/1.1\r\nHost: a\r\nX-Padding: ${'p'.repeat(20_000)}\r\n\r\n`),
    );
    let answer = '';
    socket.on('data', (chunk) => {
      answer += chunk;
    });
    socket.on('close', () => resolve(answer));
    socket.on('error', () => resolve(answer));
  });
  t.match(raw, /^HTTP\/1\.1 431 /);
  t.match(raw, /Content-Type: application\/problem\+json/);
  t.match(JSON.parse(raw.slice(raw.indexOf('\r\n\r\n') + 4)), { status: 431 });
});

t.test(
  'the OpenAPI document: 431 everywhere, 406 where negotiated, public operations need no token',
  async (t) => {
    // The document of AUTH_MODE=jwt (the committed one; with AUTH_MODE=none nothing declares security at all).
    const document = JSON.parse(readFileSync(fromRoot('openapi', 'openapi.json'), 'utf8')) as {
      paths: Record<string, Record<string, { security?: unknown[]; responses: Record<string, unknown> }>>;
    };
    const publicPaths = [
      '/.well-known/jwks.json',
      '/docs',
      '/openapi.json',
      '/health/live',
      '/health/ready',
      '/fhir/{type}/{id}',
      '/measures',
    ];
    for (const path of publicPaths) {
      const operation = document.paths[path]?.get;
      t.ok(operation, `${path} is in the document`);
      t.same(operation?.security, [], `${path} declares security: []`);
      t.notOk(operation?.responses['401'], `${path} documents no 401`);
    }
    for (const [path, item] of Object.entries(document.paths)) {
      for (const [method, operation] of Object.entries(item)) {
        t.ok(operation.responses['431'], `${method.toUpperCase()} ${path} documents 431`);
        if (!publicPaths.includes(path)) t.equal(operation.security, undefined, `${path}: the bearer token`);
      }
    }
    for (const path of [
      '/care-plans/{id}',
      '/care-plans/$to-fhir',
      '/.well-known/jwks.json',
      '/openapi.json',
    ])
      t.ok(
        document.paths[path].get?.responses['406'] ?? document.paths[path].post?.responses['406'],
        `${path} 406`,
      );
    t.notOk(document.paths['/health/live'].get.responses['406'], 'health probes do not negotiate');
    t.notOk(document.paths['/health/live'].get.responses['429'], 'nor are they rate limited');
    const docs = await service.app.inject({ method: 'GET', url: '/docs' });
    t.equal(docs.statusCode, 200, 'GET /docs answers as documented');
    t.match(docs.headers['content-type'], /^text\/html/);
  },
);

t.test(
  'text fields accept Unicode spaces (no-break space, thin space, ...) and refuse control characters',
  async (t) => {
    const plan = examplePlan() as unknown as SharedCarePlan & { goals: { description: { text: string } }[] };
    const title = 'Staying at home\u00a0and walking\u2009to the market \u3000again';
    plan.title = title;
    plan.goals[0].description.text = 'Walk\u00a0800\u202fm on Saturdays';
    const created = await create(plan);
    t.equal(created.title, title, 'POST /care-plans keeps the no-break space');
    const stored = await service.fhir<CarePlan>(`CarePlan/${created.id}`);
    t.equal(stored.body.title, title, 'the FHIR server holds it as sent');
    const read = await service.app.inject({ method: 'GET', url: `/care-plans/${created.id}` });
    t.equal(read.json().goals[0].description.text, 'Walk\u00a0800\u202fm on Saturdays');

    const refused = async (value: string, why: string) => {
      const response = await service.app.inject({
        method: 'POST',
        url: '/care-plans/$to-fhir',
        headers: json,
        payload: JSON.stringify({ ...examplePlan(), title: value }),
      });
      t.equal(response.statusCode, 400, `${why}: 400`);
      t.match(response.json(), { errors: [{ pointer: '/title' }] });
    };
    await refused('Walk\u0001home', 'a control character (FHIR strings refuse them)');
    await refused('Walk\u000bhome', 'a vertical tab');
    await refused('\u00a0\u00a0', 'spaces only');
    await refused(' \t\n', 'ASCII whitespace only');
    const tabs = await service.app.inject({
      method: 'POST',
      url: '/care-plans/$to-fhir',
      headers: json,
      payload: JSON.stringify({ ...examplePlan(), title: 'Walk\thome\r\nand back' }),
    });
    t.equal(tabs.statusCode, 200, 'tab, CR and LF stay allowed');

    // FHIR written by others with a no-break space is valid FHIR R4 (its string regex comes from XML Schema).
    const bundle = (
      await service.app.inject({
        method: 'POST',
        url: '/care-plans/$to-fhir',
        headers: json,
        payload: JSON.stringify(examplePlan()),
      })
    ).json() as Bundle;
    const carePlan = bundle.entry?.find((e) => e.resource?.resourceType === 'CarePlan')?.resource as CarePlan;
    carePlan.title = 'Plan\u00a0de cuidados';
    const fromFhir = await service.app.inject({
      method: 'POST',
      url: '/care-plans/$from-fhir',
      headers: { 'content-type': 'application/fhir+json' },
      payload: JSON.stringify(bundle),
    });
    t.equal(fromFhir.statusCode, 200, fromFhir.body.slice(0, 300));
    t.equal(fromFhir.json().title, 'Plan\u00a0de cuidados');
  },
);

// ---------------------------------------------------------------------------------------------------------------
// Item 10: privacy edges
// ---------------------------------------------------------------------------------------------------------------

t.test('X-Request-Id: only a UUID or a long opaque token is echoed and logged', async (t) => {
  t.equal(requestIdFrom('f47ac10b-58cc-4372-a567-0e02b2c3d479'), 'f47ac10b-58cc-4372-a567-0e02b2c3d479');
  t.equal(requestIdFrom('F47AC10B-58CC-1372-A567-0E02B2C3D479'), 'F47AC10B-58CC-1372-A567-0E02B2C3D479');
  t.equal(
    requestIdFrom('4bf92f3577b34da6a3ce929d0e0e4736'),
    '4bf92f3577b34da6a3ce929d0e0e4736',
    'a trace id',
  );
  for (const value of [
    '078-05-1120',
    '078051120',
    '555-867-5309',
    '+1-555-867-5309',
    '4111111111111111',
    '4111-1111-1111-1111',
    '1234567890123456789012',
    '0a1b2c3d',
    'f47ac10b-58cc-4372-a567',
    'Maria-Lopez-1950-01-01',
    undefined,
  ])
    t.equal(requestIdFrom(value), undefined, `${value} is not kept`);
  t.equal(
    requestIdFrom(['f47ac10b-58cc-4372-a567-0e02b2c3d479']),
    undefined,
    'a repeated header is not kept',
  );

  const logged = await startSecureService(undefined, { LOG_LEVEL: 'debug' });
  t.teardown(() => logged.close());
  const personal = ['078-05-1120', '555-867-5309', '+1 (555) 867-5309', '4111111111111111'];
  for (const value of personal) {
    const response = await logged.app.inject({
      method: 'GET',
      url: '/care-plans/no-such-plan',
      headers: { 'x-request-id': value },
    });
    t.not(response.headers['x-request-id'], value, `${value} is not echoed`);
    t.match(response.headers['x-request-id'], UUID, 'a generated id instead');
  }
  const uuid = 'f47ac10b-58cc-4372-a567-0e02b2c3d479';
  const kept = await logged.app.inject({
    method: 'GET',
    url: '/care-plans/no-such-plan',
    headers: { 'x-request-id': uuid },
  });
  t.equal(kept.headers['x-request-id'], uuid, 'a UUID is kept');
  t.ok(logged.logs.text.includes(uuid), 'and logged');
  for (const value of personal) t.notOk(logged.logs.text.includes(value), `${value} is not logged`);
  t.notOk(logged.logs.text.includes('867-5309'), 'no part of the phone number is logged');
});

t.test('fhirRoute: the shape of a FHIR URL, without ids or query values', async (t) => {
  const cases: [string | undefined, string][] = [
    ['/fhir', '/fhir'],
    ['/fhir/CarePlan/abc-123', '/fhir/CarePlan/:id'],
    ['/fhir/Patient/Maria/_history/2', '/fhir/Patient/:id/_history/:vid'],
    ['/fhir/Patient?identifier=078-05-1120&name=Maria', '/fhir/Patient'],
    ['/fhir/CarePlan/_search', '/fhir/CarePlan/_search'],
    ['/fhir/Patient/x/$everything', '/fhir/Patient/:id/$everything'],
    ['/fhir/078-05-1120', '/fhir/:id'],
    ['/fhir/Patient/Maria/CarePlan', '/fhir/Patient/:id/:id'],
    ['/fhir/metadata', '/fhir/metadata'],
    ['/fhir//Patient', '/fhir/Patient'],
    ['/patients/078-05-1120', '[not FHIR]'],
    [undefined, '[not FHIR]'],
  ];
  for (const [url, expected] of cases) t.equal(fhirRoute(url), expected, `${url}`);
});

t.test('the standalone embedded FHIR server: LOG_LEVEL, route shapes, client aborts at debug', async (t) => {
  t.throws(
    () => standaloneFhirLogger({ LOG_LEVEL: 'loud' }),
    { message: /^LOG_LEVEL must be one of/ },
    'a bad LOG_LEVEL stops the start',
  );
  t.throws(() => standaloneFhirLogger({ LOG_FORMAT: 'xml' }), { message: /^LOG_FORMAT/ });

  const quiet = new LogCapture();
  const warnOnly = await startEmbeddedFhirServer({
    logger: standaloneFhirLogger({ LOG_LEVEL: 'warn' }, quiet.stream),
  });
  await fetch(`${warnOnly.baseUrl}/Patient/quiet-1`);
  await warnOnly.close();
  t.same(
    quiet.records().map((r) => r.level),
    [40],
    'LOG_LEVEL=warn: only the in-memory warning, no request lines',
  );

  const logs = new LogCapture();
  const fhir = await startEmbeddedFhirServer({
    logger: standaloneFhirLogger({ LOG_LEVEL: 'debug' }, logs.stream),
  });
  t.teardown(() => fhir.close());
  const id = 'ssn-078051120';
  const put = await fetch(`${fhir.baseUrl}/Patient/${id}`, {
    method: 'PUT',
    headers: { 'content-type': 'application/fhir+json' },
    body: JSON.stringify({ resourceType: 'Patient', id, name: [{ family: 'Zyskowski' }] }),
  });
  t.equal(put.status, 201);
  await fetch(`${fhir.baseUrl}/Patient/${id}`);
  await fetch(`${fhir.baseUrl}/Patient/${id}/_history/1`);
  await fetch(`${fhir.baseUrl}/Patient?identifier=078-05-1120&family=Zyskowski`);

  // A client that sends half a body and goes away.
  const { hostname, port } = new URL(fhir.baseUrl);
  await new Promise<void>((resolve) => {
    const socket = connect(Number(port), hostname, () => {
      socket.write(
        'POST /fhir/Patient HTTP/1.1\r\nHost: a\r\nContent-Type: application/fhir+json\r\n' +
          'Content-Length: 10000\r\n\r\n{"resourceType":"Pat',
      );
      setTimeout(() => {
        socket.destroy();
        resolve();
      }, 50);
    });
  });
  const until = Date.now() + 5000;
  while (!logs.text.includes('aborted') && Date.now() < until) await new Promise((r) => setTimeout(r, 20));

  const records = logs.records();
  const requests = records.filter((r) => r.msg === 'embedded FHIR request');
  t.same(
    requests.map((r) => `${r.method} ${r.route}`),
    [
      'PUT /fhir/Patient/:id',
      'GET /fhir/Patient/:id',
      'GET /fhir/Patient/:id/_history/:vid',
      'GET /fhir/Patient',
    ],
    'each request logged by its route shape',
  );
  t.ok(
    requests.every((r) => r.level === 20 && r.url === undefined),
    'at debug, without the raw URL',
  );
  const abort = records.find((r) => /aborted/.test(String(r.msg)));
  t.equal(abort?.level, 20, 'the aborted request is logged at debug');
  t.equal(abort?.route, '/fhir/Patient');
  t.same(
    records.filter((r) => (r.level as number) >= 50),
    [],
    'no error lines',
  );
  for (const needle of [id, '078-05-1120', 'Zyskowski', 'identifier='])
    t.notOk(logs.text.includes(needle), `"${needle}" is not logged`);
});
