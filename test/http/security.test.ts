// Security and privacy: who may call what (JWT + SMART scopes, patient tokens), the configuration rules, rate
// limits, security headers, hostile JSON, Provenance and the plan history's changedBy, the audit trail, SMART
// Backend Services towards the FHIR server, and, last, that no log line of the whole run (LOG_LEVEL=debug, the
// embedded FHIR server's included) holds a patient's name or id, a token, or a body.
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fastifyHelmet from '@fastify/helmet';
import Fastify, { type LightMyRequestResponse } from 'fastify';
import type { Bundle, Provenance } from 'fhir/r4.js';
import { createLocalJWKSet, generateKeyPair, jwtVerify, SignJWT, UnsecuredJWT } from 'jose';
import { pino } from 'pino';
import t from 'tap';
import { carePlanGrants, decide } from '../../src/auth/caller.js';
import { ConfigError, DEFAULT_SMART_SCOPE, loadConfig } from '../../src/config.js';
import { FhirGateway, FhirServerError } from '../../src/fhir/client/gateway.js';
import { SmartBackendAuth } from '../../src/fhir/client/smart-backend-auth.js';
import { US_CORE_PROVENANCE } from '../../src/fhir/mapping/provenance.js';
import { buildApp } from '../../src/http/app.js';
import { CONTENT_SECURITY_POLICY } from '../../src/http/plugins/security.js';
import { ROUTE_ACCESS } from '../../src/http/route-access.js';
import { loggerOptions } from '../../src/logging.js';
import type { SharedCarePlan } from '../../src/model/care-plan.js';
import {
  AUDIENCE,
  ISSUER,
  type Issuer,
  loopback,
  type SecureService,
  startIssuer,
  startSecureService,
} from '../helpers/auth.js';
import { examplePlan } from '../helpers/service.js';

/** The care plan routes (those on Subscription have their own matrix in test/webhooks-security.test.ts). */
const CARE_PLAN_ACCESS = Object.fromEntries(Object.entries(ROUTE_ACCESS).filter(([, a]) => !a.resource));
const rand = () => Math.random().toString(36).slice(2, 8);
// Test patients: ids and names that must never show up in a log line.
const PATIENT_A = `Patient/pa-${rand()}`;
const PATIENT_B = `Patient/pb-${rand()}`;
const NAME_A = `Quintessa Vandermolen${rand()}`;
const NAME_B = `Bartholomew Zyskowski${rand()}`;
const SECRET_TITLE = `Plan title that is PHI ${rand()}`;

function planFor(patient: string, name: string): SharedCarePlan {
  const text = JSON.stringify(examplePlan())
    .replaceAll('Patient/maria-lopez', patient)
    .replaceAll('Maria Lopez', name)
    .replaceAll('Maria', name.split(' ')[0]);
  return { ...JSON.parse(text), title: SECRET_TITLE };
}

let issuer: Issuer;
let service: SecureService;
/** Every token handed out in this file: none may ever be logged. */
const tokens: string[] = [];
/** Every service started here, so the log search covers all of them. */
const services: SecureService[] = [];

async function token(claims: Record<string, unknown>, options: Parameters<Issuer['token']>[1] = {}) {
  const value = await issuer.token({ sub: `user-${rand()}`, ...claims }, options);
  tokens.push(value);
  return value;
}
const system = (scope = 'system/CarePlan.cruds', client = 'sync-engine') =>
  token({ scope, client_id: client, sub: client });
const patientToken = (patient: string, scope = 'patient/CarePlan.cruds') =>
  token({ scope, client_id: 'patient-app', patient: patient.split('/')[1], sub: `user-${rand()}` });

interface Call {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  url: string;
  body?: unknown;
  headers?: Record<string, string>;
}

function send(target: SecureService, call: Call, bearer?: string): Promise<LightMyRequestResponse> {
  return target.app.inject({
    method: call.method,
    url: call.url,
    headers: {
      ...(call.body !== undefined ? { 'content-type': 'application/json' } : {}),
      ...(bearer ? { authorization: `Bearer ${bearer}` } : {}),
      ...call.headers,
    },
    ...(call.body !== undefined ? { payload: JSON.stringify(call.body) } : {}),
  });
}

async function create(target: SecureService, plan: SharedCarePlan, bearer?: string) {
  const response = await send(target, { method: 'POST', url: '/care-plans', body: plan }, bearer);
  if (response.statusCode !== 201) throw new Error(`create: ${response.statusCode} ${response.body}`);
  return { plan: response.json() as SharedCarePlan, etag: response.headers.etag as string };
}

/** What the FHIR server holds: every CarePlan with its version, and how many of each other resource. */
async function snapshot(target: SecureService) {
  const plans = await target.fhir<Bundle>('CarePlan?_count=1000');
  const counts: Record<string, number> = {};
  for (const type of ['Goal', 'CareTeam', 'Observation', 'Condition', 'Provenance']) {
    const bundle = await target.fhir<Bundle>(`${type}?_count=1000`);
    counts[type] = bundle.total ?? bundle.entry?.length ?? 0;
  }
  const versions = (plans.entry ?? []).map((e) => `${e.resource?.id}@${e.resource?.meta?.versionId}`).sort();
  return { versions, counts };
}

t.before(async () => {
  issuer = await startIssuer();
  service = await startSecureService(issuer);
  services.push(service);
});
t.teardown(async () => {
  for (const s of services) await s.close();
  await issuer.close();
});

t.test('configuration: who may run without authentication, and what SMART needs', async (t) => {
  const embeddedDefault = loadConfig({});
  t.equal(embeddedDefault.authMode, 'none', 'embedded FHIR server + nothing configured: none');
  t.equal(embeddedDefault.authModeDefaulted, true, '... by default (start-up warns)');
  const refusal = (() => {
    try {
      loadConfig({ FHIR_BASE_URL: 'https://fhir.example/r4' });
    } catch (error) {
      return error;
    }
  })();
  t.ok(refusal instanceof ConfigError, 'a real FHIR server and no authentication: refuses to start');
  t.match((refusal as Error).message, /AUTH_MODE=jwt .* or AUTH_MODE=none/, 'and says what to set');
  const explicit = loadConfig({ FHIR_BASE_URL: 'https://fhir.example/r4', AUTH_MODE: 'none' });
  t.same(
    [explicit.authMode, explicit.authModeDefaulted],
    ['none', false],
    'unless AUTH_MODE=none is explicit',
  );
  t.throws(() => loadConfig({ AUTH_MODE: 'jwt' }), /AUTH_JWKS_URL, AUTH_ISSUER, AUTH_AUDIENCE/);
  t.throws(() => loadConfig({ AUTH_JWKS_URL: 'https://idp.example/jwks' }), /AUTH_ISSUER, AUTH_AUDIENCE/);
  const jwt = loadConfig({
    FHIR_BASE_URL: 'https://fhir.example/r4',
    AUTH_JWKS_URL: 'https://idp.example/jwks',
    AUTH_ISSUER: 'https://idp.example',
    AUTH_AUDIENCE: 'care-plans, https://care.example',
  });
  t.equal(jwt.authMode, 'jwt', 'AUTH_* settings imply jwt');
  t.same(jwt.authAudience, ['care-plans', 'https://care.example'], 'audiences are a comma-separated list');
  t.throws(() => loadConfig({ AUTH_MODE: 'maybe' }), /AUTH_MODE must be one of jwt, none/);
  t.same(
    [embeddedDefault.rateLimitMax, embeddedDefault.rateLimitWindowMs],
    [60_000, 60_000],
    'rate limit default',
  );
  t.equal(loadConfig({ RATE_LIMIT_MAX: '0' }).rateLimitMax, 0, 'RATE_LIMIT_MAX=0 switches it off');
  t.equal(embeddedDefault.trustProxy, false, 'no proxy is trusted by default');
  t.equal(loadConfig({ TRUST_PROXY: '2' }).trustProxy, 2, 'a hop count');
  t.same(
    loadConfig({ TRUST_PROXY: '10.0.0.0/8, 127.0.0.1 ,::1, fd00::/8' }).trustProxy,
    ['10.0.0.0/8', '127.0.0.1', '::1', 'fd00::/8'],
    'proxy addresses and CIDRs',
  );
  for (const bad of ['true', 'proxy.example', '10.0.0.0/33', '10.0.0.1/8/1', '0', '11'])
    t.throws(() => loadConfig({ TRUST_PROXY: bad }), /TRUST_PROXY must be/, `TRUST_PROXY=${bad} is refused`);

  t.throws(() => loadConfig({ FHIR_AUTH: 'smart-backend' }), /FHIR_SMART_TOKEN_URL, FHIR_SMART_CLIENT_ID/);
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({
    type: 'pkcs8',
    format: 'pem',
  });
  const ec384 = generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey.export({
    type: 'pkcs8',
    format: 'pem',
  });
  const ec256 = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({
    type: 'pkcs8',
    format: 'pem',
  });
  const smartEnv = (key: string) => ({
    FHIR_AUTH: 'smart-backend',
    FHIR_SMART_TOKEN_URL: 'https://ehr.example/token',
    FHIR_SMART_CLIENT_ID: 'care-plans',
    FHIR_SMART_KEY_ID: 'key-1',
    FHIR_SMART_PRIVATE_KEY: key,
  });
  const fromPem = loadConfig(smartEnv(String(rsa)));
  t.equal(fromPem.fhirSmart?.algorithm, 'RS384', 'an RSA key signs RS384');
  t.equal(fromPem.fhirSmart?.scope, DEFAULT_SMART_SCOPE);
  t.equal(
    JSON.stringify(fromPem).includes('PRIVATE KEY'),
    false,
    'the key is a KeyObject: it never serialises',
  );
  t.equal(
    loadConfig(smartEnv(String(ec384).replaceAll('\n', '\\n'))).fhirSmart?.algorithm,
    'ES384',
    'P-384: ES384; \\n escapes',
  );
  const dir = mkdtempSync(join(tmpdir(), 'smart-key-'));
  writeFileSync(join(dir, 'key.pem'), String(rsa));
  t.equal(loadConfig(smartEnv(join(dir, 'key.pem'))).fhirSmart?.keyId, 'key-1', 'or a path to the key file');
  t.throws(
    () => loadConfig(smartEnv(String(ec256))),
    /RSA key \(RS384\) or an EC P-384 key/,
    'P-256 is not allowed',
  );
  t.throws(() => loadConfig(smartEnv('/nowhere/key.pem')), /neither a PEM key/);
  t.throws(() => loadConfig({ ...smartEnv(String(rsa)), FHIR_SMART_ALG: 'ES384' }), /does not fit the key/);
  t.notMatch(
    (() => {
      try {
        loadConfig(smartEnv('-----BEGIN PRIVATE KEY-----\nnot really a key\n-----END PRIVATE KEY-----'));
      } catch (error) {
        return (error as Error).message;
      }
    })() ?? '',
    /not really/,
    'a configuration error never echoes the key',
  );
});

t.test('SMART scopes: v2 and v1 forms, levels, patient claims', async (t) => {
  const caller = (scopes: string[], patientClaim?: string) => ({
    kind: 'token' as const,
    clientId: 'c',
    grants: carePlanGrants(scopes),
    ...(patientClaim ? { patientClaim } : {}),
  });
  const allowed = (scopes: string[], need: Parameters<typeof decide>[1], patient?: string) =>
    decide(caller(scopes, patient), need).allowed;
  t.ok(allowed(['system/CarePlan.cruds'], 'd'));
  t.ok(allowed(['user/CarePlan.rs'], 's'));
  t.notOk(allowed(['user/CarePlan.rs'], 'u'));
  t.notOk(allowed(['system/CarePlan.sr'], 'r'), 'v2 permissions must be in cruds order');
  t.ok(allowed(['system/CarePlan.read'], 's'), 'v1 read = rs');
  t.notOk(allowed(['system/CarePlan.read'], 'c'));
  t.ok(allowed(['system/CarePlan.write'], 'c'), 'v1 write = cud');
  t.notOk(allowed(['system/CarePlan.write'], 'r'));
  t.ok(allowed(['system/CarePlan.*'], 'd'), 'v1 * = cruds');
  t.ok(allowed(['system/*.rs'], 'r'), 'resource wildcard');
  t.notOk(allowed(['system/Observation.cruds'], 'r'), 'another resource type');
  t.notOk(allowed(['patient/CarePlan.rs?category=assess-plan'], 'r'), 'granular scopes grant nothing here');
  t.notOk(allowed(['launch/patient', 'openid', 'fhirUser'], 'any'));
  t.ok(allowed(['system/Observation.rs', 'patient/CarePlan.r'], 'any'), 'any CarePlan scope for the mapping');
  t.notOk(allowed(['patient/CarePlan.rs'], 'r'), 'patient/ without a patient claim');
  t.same(decide(caller(['patient/CarePlan.rs'], 'Patient/p1'), 'r'), {
    allowed: true,
    patient: 'Patient/p1',
  });
  t.same(
    decide(caller(['patient/CarePlan.cruds', 'user/CarePlan.rs'], 'Patient/p1'), 'r'),
    { allowed: true },
    'a user/ grant for the same operation lifts the patient restriction',
  );
  t.same(decide(caller(['patient/CarePlan.cruds', 'user/CarePlan.rs'], 'Patient/p1'), 'u'), {
    allowed: true,
    patient: 'Patient/p1',
  });
});

t.test(
  'every endpoint: 401 without a valid token, 403 without the scope, 404 for another patient, nothing changed',
  async (t) => {
    const admin = await system();
    const planA = await create(service, planFor(PATIENT_A, NAME_A), admin);
    const planB = await create(service, planFor(PATIENT_B, NAME_B), admin);
    const id = planA.plan.id as string;
    const goalId = planA.plan.goals?.[0]?.id as string;
    // The contributions run after the goal routes, which remove the first goal.
    const otherGoalId = planA.plan.goals?.[1]?.id as string;
    const activityId = planA.plan.activities?.[0]?.id as string;
    const ifMatch = { 'if-match': planA.etag };
    const toFhir = (
      await send(
        service,
        { method: 'POST', url: '/care-plans/$to-fhir', body: planFor(PATIENT_A, NAME_A) },
        admin,
      )
    ).json();

    // One real request per route, each of which would succeed with the right token.
    // The measures (issue 17): patient A's figures, and a report job of the admin's client.
    const measureReport = `/measures/goals-agreed-by-patient/report?periodStart=2026-01-01&periodEnd=2026-12-31&patient=${PATIENT_A}`;
    const job = await send(
      service,
      { method: 'GET', url: measureReport, headers: { prefer: 'respond-async' } },
      admin,
    );
    const jobUrl = job.headers['content-location'] as string;
    const calls: Record<string, Call> = {
      'POST /care-plans': { method: 'POST', url: '/care-plans', body: planFor(PATIENT_A, NAME_A) },
      'GET /care-plans': { method: 'GET', url: `/care-plans?patient=${PATIENT_A}` },
      'GET /care-plans/changes': { method: 'GET', url: '/care-plans/changes' },
      'GET /care-plans/:id': { method: 'GET', url: `/care-plans/${id}` },
      'PUT /care-plans/:id': {
        method: 'PUT',
        url: `/care-plans/${id}`,
        body: { ...planA.plan, title: 'changed' },
        headers: ifMatch,
      },
      'DELETE /care-plans/:id': { method: 'DELETE', url: `/care-plans/${id}`, headers: ifMatch },
      'GET /care-plans/:id/history': { method: 'GET', url: `/care-plans/${id}/history` },
      'POST /care-plans/:id/goals': {
        method: 'POST',
        url: `/care-plans/${id}/goals`,
        body: { description: { text: 'Sleep through the night' }, lifecycleStatus: 'proposed' },
        headers: ifMatch,
      },
      'PATCH /care-plans/:id/goals/:goalId': {
        method: 'PATCH',
        url: `/care-plans/${id}/goals/${goalId}`,
        body: { achievementStatus: 'achieved' },
        headers: ifMatch,
      },
      'DELETE /care-plans/:id/goals/:goalId': {
        method: 'DELETE',
        url: `/care-plans/${id}/goals/${goalId}`,
        headers: ifMatch,
      },
      'POST /care-plans/:id/activities': {
        method: 'POST',
        url: `/care-plans/${id}/activities`,
        body: { description: 'Swim on Tuesdays', status: 'not-started' },
        headers: ifMatch,
      },
      'PATCH /care-plans/:id/activities/:activityId': {
        method: 'PATCH',
        url: `/care-plans/${id}/activities/${activityId}`,
        body: { status: 'completed' },
        headers: ifMatch,
      },
      'DELETE /care-plans/:id/activities/:activityId': {
        method: 'DELETE',
        url: `/care-plans/${id}/activities/${activityId}`,
        headers: ifMatch,
      },
      'POST /care-plans/:id/goals/:goalId/agreements': {
        method: 'POST',
        url: `/care-plans/${id}/goals/${otherGoalId}/agreements`,
        body: { status: 'agree', who: { reference: PATIENT_A } },
      },
      'POST /care-plans/:id/goals/:goalId/notes': {
        method: 'POST',
        url: `/care-plans/${id}/goals/${otherGoalId}/notes`,
        body: { text: 'Walked further today' },
      },
      'PUT /care-plans/:id/what-matters': {
        method: 'PUT',
        url: `/care-plans/${id}/what-matters`,
        body: { statement: 'My garden' },
      },
      ...Object.fromEntries(
        (['preferences', 'strengths', 'barriers'] as const).flatMap((list) => {
          const itemId = (planA.plan[list]?.[0] as { id?: string } | undefined)?.id;
          const body =
            list === 'preferences'
              ? { kind: 'care-experience', statement: 'Mornings' }
              : { statement: 'Stairs' };
          return [
            [`POST /care-plans/:id/${list}`, { method: 'POST', url: `/care-plans/${id}/${list}`, body }],
            [
              `PATCH /care-plans/:id/${list}/:itemId`,
              {
                method: 'PATCH',
                url: `/care-plans/${id}/${list}/${itemId}`,
                body: { statement: 'Changed' },
                headers: ifMatch,
              },
            ],
            [
              `DELETE /care-plans/:id/${list}/:itemId`,
              { method: 'DELETE', url: `/care-plans/${id}/${list}/${itemId}`, headers: ifMatch },
            ],
          ];
        }),
      ),
      'POST /care-plans/$to-fhir': {
        method: 'POST',
        url: '/care-plans/$to-fhir',
        body: planFor(PATIENT_A, NAME_A),
      },
      'POST /care-plans/$from-fhir': { method: 'POST', url: '/care-plans/$from-fhir', body: toFhir },
      'GET /measures/:id/report': { method: 'GET', url: measureReport },
      'GET /measures/report-jobs/:jobId': { method: 'GET', url: jobUrl },
      'DELETE /measures/report-jobs/:jobId': { method: 'DELETE', url: jobUrl },
    };
    t.same(
      Object.keys(calls).sort(),
      Object.keys(CARE_PLAN_ACCESS).sort(),
      'the matrix covers every protected care plan route (subscriptions: test/webhooks-security.test.ts)',
    );

    const unsigned = new UnsecuredJWT({ scope: 'system/CarePlan.cruds' })
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setExpirationTime('5m')
      .encode();
    const hmac = await new SignJWT({ scope: 'system/CarePlan.cruds' })
      .setProtectedHeader({ alg: 'HS256', kid: 'k1' })
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setExpirationTime('5m')
      .sign(new TextEncoder().encode('a-shared-secret-an-attacker-could-guess'));
    tokens.push(unsigned, hmac);
    const full = 'system/CarePlan.cruds';
    const unauthenticated: [string, string | undefined, RegExp][] = [
      ['no token', undefined, /^Bearer realm="shared-care-plans"$/],
      ['expired', await token({ scope: full }, { expiresIn: -120 }), /invalid_token.*expired/],
      [
        'wrong issuer',
        await token({ scope: full }, { issuer: 'https://evil.example' }),
        /invalid_token.*issuer/,
      ],
      [
        'wrong audience',
        await token({ scope: full }, { audience: 'https://other-api.example' }),
        /invalid_token.*audience/,
      ],
      ['wrong signature', await token({ scope: full }, { forged: true }), /invalid_token.*signature/],
      ['alg none', unsigned, /invalid_token/],
      ['HS256 shared secret', hmac, /invalid_token/],
      ['not a JWT', 'not.a.jwt', /invalid_token/],
    ];
    const before = await snapshot(service);
    const patientB = await patientToken(PATIENT_B);
    for (const [route, access] of Object.entries(CARE_PLAN_ACCESS)) {
      const call = calls[route];
      for (const [label, bearer, challenge] of unauthenticated) {
        const response = await send(service, call, bearer);
        t.equal(response.statusCode, 401, `${route}, ${label}: 401`);
        t.match(response.headers['www-authenticate'], challenge, `${route}, ${label}: WWW-Authenticate`);
        t.equal(response.headers['content-type'], 'application/problem+json; charset=utf-8');
      }
      // A token with every CarePlan permission but the one this route needs (or, for the mapping, no CarePlan scope).
      const others =
        access.permission === 'any'
          ? 'system/Observation.cruds'
          : `system/CarePlan.${'cruds'.replace(access.permission, '')}`;
      const insufficient = await send(service, call, await system(others));
      t.equal(insufficient.statusCode, 403, `${route} with ${others}: 403`);
      t.match(insufficient.headers['www-authenticate'], /error="insufficient_scope"/);
      t.equal(insufficient.json().type, 'https://shared-care-plans.org/problems/forbidden');

      const other = await send(service, call, patientB);
      // Another patient's plan, figures (the patient filter) or report job: absent.
      const expected = /:id\b|:jobId/.test(route)
        ? 404
        : route === 'POST /care-plans' || route === 'GET /care-plans'
          ? 403
          : 200;
      t.equal(other.statusCode, expected, `${route} with patient B's token on patient A's plan: ${expected}`);
      if (route === 'GET /care-plans/changes') {
        const ids = (other.json().items as { id: string }[]).map((i) => i.id);
        t.notOk(ids.includes(id), "patient A's plan is not in patient B's change feed");
        t.ok(ids.includes(planB.plan.id as string), "patient B's own plan is");
      }
    }
    t.same(await snapshot(service), before, 'the FHIR server holds exactly what it held before');

    // The same requests with the right token do what they say (they change the plan, so each gets a fresh ETag).
    for (const [route, access] of Object.entries(CARE_PLAN_ACCESS)) {
      const current = await send(service, { method: 'GET', url: `/care-plans/${id}` }, admin);
      const call = calls[route];
      const headers = call.headers
        ? { ...call.headers, 'if-match': current.headers.etag as string }
        : undefined;
      const body = route === 'PUT /care-plans/:id' ? { ...current.json(), title: 'changed' } : call.body;
      const scope =
        access.permission === 'any' ? 'patient/CarePlan.r' : `system/CarePlan.${access.permission}`;
      const bearer = access.permission === 'any' ? await patientToken(PATIENT_B, scope) : await system(scope);
      const response = await send(service, { ...call, body, ...(headers ? { headers } : {}) }, bearer);
      t.ok(response.statusCode < 300, `${route} with ${scope}: ${response.statusCode}`);
    }
  },
);

t.test("a patient token sees and changes only its patient's plans", async (t) => {
  const admin = await system();
  const mine = await create(service, planFor(PATIENT_A, NAME_A), admin);
  const theirs = await create(service, planFor(PATIENT_B, NAME_B), admin);
  const a = await patientToken(PATIENT_A);

  const search = await send(service, { method: 'GET', url: `/care-plans?patient=${PATIENT_A}&limit=100` }, a);
  t.equal(search.statusCode, 200);
  const found = search.json().items as SharedCarePlan[];
  t.ok(found.length >= 1 && found.every((p) => p.patient.reference === PATIENT_A), 'search: only patient A');
  const forbiddenSearch = await send(service, { method: 'GET', url: `/care-plans?patient=${PATIENT_B}` }, a);
  t.equal(forbiddenSearch.statusCode, 403, "searching another patient's plans is refused");

  t.equal((await send(service, { method: 'GET', url: `/care-plans/${mine.plan.id}` }, a)).statusCode, 200);
  for (const path of ['', '/history']) {
    const response = await send(service, { method: 'GET', url: `/care-plans/${theirs.plan.id}${path}` }, a);
    t.equal(response.statusCode, 404, `GET /care-plans/{B's plan}${path}: 404`);
    t.equal(
      response.json().detail,
      'the care plan (or a part of it) does not exist on the FHIR server',
      'as if absent',
    );
  }
  const feed = await send(service, { method: 'GET', url: '/care-plans/changes?limit=500' }, a);
  const feedItems = feed.json().items as { id: string; patient?: string }[];
  t.ok(
    feedItems.length >= 1 && feedItems.every((i) => i.patient === PATIENT_A),
    'change feed: only patient A',
  );
  t.ok(
    (await send(service, { method: 'GET', url: '/care-plans/changes?limit=500' }, admin)).json().items
      .length > feedItems.length,
    'a system token sees more',
  );

  const moved = await send(
    service,
    {
      method: 'PUT',
      url: `/care-plans/${mine.plan.id}`,
      body: { ...mine.plan, patient: { reference: PATIENT_B } },
      headers: { 'if-match': mine.etag },
    },
    a,
  );
  t.equal(moved.statusCode, 403, 'a patient token cannot move its plan to another patient');
  const forOther = await send(
    service,
    { method: 'POST', url: '/care-plans', body: planFor(PATIENT_B, NAME_B) },
    a,
  );
  t.equal(forOther.statusCode, 403, 'nor create a plan for another patient');
  const own = await send(
    service,
    { method: 'POST', url: '/care-plans', body: planFor(PATIENT_A, NAME_A) },
    a,
  );
  t.equal(own.statusCode, 201, 'but for its own patient');

  // A patient token is restricted only for what no user/system scope of it allows.
  const mixed = await token({
    scope: 'patient/CarePlan.cruds user/CarePlan.rs',
    client_id: 'clinic-app',
    patient: PATIENT_A.split('/')[1],
  });
  t.equal(
    (await send(service, { method: 'GET', url: `/care-plans/${theirs.plan.id}` }, mixed)).statusCode,
    200,
    'user/CarePlan.rs reads any plan',
  );
  t.equal(
    (
      await send(
        service,
        { method: 'DELETE', url: `/care-plans/${theirs.plan.id}`, headers: { 'if-match': theirs.etag } },
        mixed,
      )
    ).statusCode,
    404,
    "but deleting B's plan is patient-restricted",
  );
  const noClaim = await token({ scope: 'patient/CarePlan.rs', client_id: 'patient-app' });
  t.equal(
    (await send(service, { method: 'GET', url: `/care-plans/${mine.plan.id}` }, noClaim)).statusCode,
    403,
    'patient/ scope without a patient claim',
  );

  // Idempotency keys are per client (and per patient): another client's key never replays someone else's plan.
  const key = { 'idempotency-key': `key-${rand()}` };
  const first = await send(
    service,
    { method: 'POST', url: '/care-plans', body: planFor(PATIENT_A, NAME_A), headers: key },
    a,
  );
  const again = await send(
    service,
    { method: 'POST', url: '/care-plans', body: planFor(PATIENT_A, NAME_A), headers: key },
    a,
  );
  t.equal(again.headers['idempotent-replayed'], 'true');
  t.equal(again.json().id, first.json().id, 'the same client replays its plan');
  const otherClient = await send(
    service,
    { method: 'POST', url: '/care-plans', body: planFor(PATIENT_A, NAME_A), headers: key },
    await system('system/CarePlan.cruds', 'other-client'),
  );
  t.equal(otherClient.statusCode, 201);
  t.not(otherClient.json().id, first.json().id, 'another client with the same key gets its own plan');
});

t.test(
  'every write records who made it: Provenance in the same transaction, and history says who',
  async (t) => {
    const engine = await system('system/CarePlan.cruds', 'sync-engine');
    const created = await create(service, planFor(PATIENT_A, NAME_A), engine);
    const id = created.plan.id as string;
    const nurse = await token({
      scope: 'user/CarePlan.cruds',
      client_id: 'ward-app',
      sub: 'nurse-17',
      fhirUser: 'Practitioner/nurse-kim',
    });
    const goal = await send(
      service,
      {
        method: 'POST',
        url: `/care-plans/${id}/goals`,
        body: { description: { text: 'Cook twice a week' }, lifecycleStatus: 'proposed' },
        headers: { 'if-match': created.etag },
      },
      nurse,
    );
    t.equal(goal.statusCode, 201);
    const patient = await patientToken(PATIENT_A);
    const ended = await send(
      service,
      { method: 'DELETE', url: `/care-plans/${id}`, headers: { 'if-match': goal.headers.etag as string } },
      patient,
    );
    t.equal(ended.statusCode, 200);

    const history = (await send(service, { method: 'GET', url: `/care-plans/${id}/history` }, engine)).json()
      .items;
    t.equal(history.length, 3);
    t.match(history[0].changedBy, /^client patient-app \(user user-/, 'newest first: the patient ended it');
    // The nurse's token names her (fhirUser): the history shows her name, as the plan's team gives it.
    t.equal(history[1].changedBy, 'Nurse Jiwoo Kim', 'the nurse added a goal');
    t.equal(history[1].changedByReference, 'Practitioner/nurse-kim');
    t.equal(history[1].via, 'client ward-app', 'through the ward app');
    t.equal(history[2].changedBy, 'client sync-engine', 'the sync engine created it');

    const provenance = await service.fhir<Bundle>(`Provenance?target=CarePlan/${id}&_count=100`);
    const records = (provenance.entry ?? []).map((e) => e.resource as Provenance);
    t.equal(records.length, 3, 'one Provenance per write');
    const first = records.find((p) => p.activity?.coding?.[0]?.code === 'CREATE') as Provenance;
    t.same(first.meta?.profile, [US_CORE_PROVENANCE]);
    t.same(first.agent[0].who, {
      identifier: { system: 'https://shared-care-plans.org/fhir/sid/oauth-client', value: 'sync-engine' },
      display: 'client sync-engine',
    });
    t.equal(first.agent[0].type?.coding?.[0]?.code, 'author');
    // The CarePlan only: its version covers every part, and references to parts would block deleting them on
    // servers with referential integrity.
    t.strictSame(
      first.target.map((r) => r.reference),
      [`CarePlan/${id}`],
      'target: the CarePlan',
    );
    const update = records.find((p) => p.agent[0].who.reference === 'Practitioner/nurse-kim') as Provenance;
    t.same(
      update.agent[1].who.identifier,
      { system: 'https://shared-care-plans.org/fhir/sid/oauth-client', value: 'ward-app' },
      'the client is the second agent',
    );
    t.strictSame(
      update.target.map((r) => r.reference),
      [`CarePlan/${id}`],
      'an edit names the CarePlan',
    );

    // Idempotent creates: a replay adds no second Provenance.
    const key = { 'idempotency-key': `prov-${rand()}` };
    const once = await send(
      service,
      { method: 'POST', url: '/care-plans', body: planFor(PATIENT_A, NAME_A), headers: key },
      engine,
    );
    await send(
      service,
      { method: 'POST', url: '/care-plans', body: planFor(PATIENT_A, NAME_A), headers: key },
      engine,
    );
    const replayed = await service.fhir<Bundle>(`Provenance?target=CarePlan/${once.json().id}`);
    t.equal(replayed.entry?.length, 1);

    // The FHIR Bundle of a plan and round trips never include or map Provenance.
    const asFhir = await send(
      service,
      { method: 'GET', url: `/care-plans/${id}`, headers: { accept: 'application/fhir+json' } },
      engine,
    );
    t.notOk(
      (asFhir.json().entry as { resource: { resourceType: string } }[]).some(
        (e) => e.resource.resourceType === 'Provenance',
      ),
    );
    const transaction = (
      await send(
        service,
        { method: 'POST', url: '/care-plans/$to-fhir', body: planFor(PATIENT_A, NAME_A) },
        engine,
      )
    ).json() as Bundle;
    t.notOk(
      transaction.entry?.some((e) => e.resource?.resourceType === 'Provenance'),
      '$to-fhir maps the plan only',
    );
    const withProvenance: Bundle = {
      ...transaction,
      entry: [
        ...(transaction.entry ?? []),
        { resource: records[0], request: { method: 'POST', url: 'Provenance' } },
      ],
    };
    const fromFhir = await send(
      service,
      { method: 'POST', url: '/care-plans/$from-fhir', body: withProvenance },
      engine,
    );
    t.equal(fromFhir.statusCode, 200);
    const plain = await send(
      service,
      { method: 'POST', url: '/care-plans/$from-fhir', body: transaction },
      engine,
    );
    const { notTaken, ...plan } = fromFhir.json();
    t.same(plan, plain.json(), '$from-fhir takes nothing of a Provenance in the Bundle into the plan');
    // ... and says so (issue 13: nothing is dropped silently).
    t.same(
      notTaken?.map((n: { resource: string; reason: string }) => [n.resource.split('/')[0], n.reason]),
      [['Provenance', 'not-referenced']],
      'notTaken names the Provenance',
    );
  },
);

t.test('audit: one structured line per care plan request, without PHI', async (t) => {
  const engine = await system('system/CarePlan.cruds', 'audit-client');
  const created = await create(service, planFor(PATIENT_A, NAME_A), engine);
  await send(service, { method: 'GET', url: `/care-plans/${created.plan.id}` }, engine);
  await send(service, { method: 'GET', url: `/care-plans/${created.plan.id}` });
  await send(
    service,
    { method: 'GET', url: `/care-plans/${created.plan.id}` },
    await patientToken(PATIENT_B),
  );
  await send(service, { method: 'GET', url: '/health/live' });
  const audit = service.logs.records().filter((r) => r.audit === true);
  const byRequest = (operation: string, who: string) =>
    audit.filter((r) => r.operation === operation && r.who === who && r.planId === created.plan.id);
  const [createLine] = byRequest('create', 'audit-client');
  t.match(createLine, {
    audit: true,
    who: 'audit-client',
    operation: 'create',
    outcome: 'success',
    status: 201,
    planId: created.plan.id,
  });
  t.match(createLine.time, /^\d{4}-\d\d-\d\dT/, 'an ISO time');
  t.equal(byRequest('read', 'audit-client').length, 1);
  const unauthenticated = audit.filter((r) => r.operation === 'read' && r.who === 'unauthenticated');
  t.match(
    unauthenticated.at(-1),
    { outcome: 'denied', status: 401, planId: undefined },
    'an unauthenticated id is not logged',
  );
  t.match(
    byRequest('read', 'patient-app')[0],
    { outcome: 'denied', status: 404, patientScoped: true },
    "another patient's plan: denied, answered 404",
  );
  t.notOk(
    audit.some((r) => r.operation === undefined),
    'health probes are not audited',
  );
  for (const line of audit) {
    t.same(
      Object.keys(line)
        .filter((k) => !['level', 'time', 'pid', 'hostname', 'reqId', 'msg'].includes(k))
        .sort(),
      [
        'audit',
        'operation',
        'outcome',
        'requestId',
        'status',
        'who',
        ...(line.planId ? ['planId'] : []),
        ...(line.user ? ['user'] : []),
        ...(line.patientScoped ? ['patientScoped'] : []),
      ].sort(),
    );
  }
});

t.test('rate limits per client, as problem+json with Retry-After; health is never limited', async (t) => {
  // The default lets one integrator sync hard: 1,000 requests at once from one client, none refused by the rate
  // limit. The requests are refused by the schema (limit=0) right after the rate limit counted them, so the burst
  // measures the limiter, not how fast a shared machine's FHIR server answers 1,000 searches.
  const burst = await system('system/CarePlan.rs', 'bulk-sync');
  const answers = await Promise.all(
    Array.from({ length: 1000 }, () =>
      send(service, { method: 'GET', url: '/care-plans/changes?limit=0' }, burst),
    ),
  );
  t.same(
    [...new Set(answers.map((a) => a.statusCode))],
    [400],
    'the default limit does not throttle a burst of 1,000 (each answered by the schema check, none 429)',
  );

  const limited = await startSecureService(issuer, { RATE_LIMIT_MAX: '3', RATE_LIMIT_WINDOW_MS: '60000' });
  services.push(limited);
  const one = await system('system/CarePlan.rs', 'busy-client');
  const two = await system('system/CarePlan.rs', 'calm-client');
  const search = { method: 'GET' as const, url: `/care-plans?patient=${PATIENT_A}` };
  const statuses = [];
  for (let i = 0; i < 4; i++) statuses.push((await send(limited, search, one)).statusCode);
  t.same(statuses, [200, 200, 200, 429]);
  const refused = await send(limited, search, one);
  t.equal(refused.headers['content-type'], 'application/problem+json; charset=utf-8');
  t.equal(refused.json().type, 'https://shared-care-plans.org/problems/too-many-requests');
  t.ok(Number(refused.headers['retry-after']) > 0, 'Retry-After');
  t.equal((await send(limited, search, two)).statusCode, 200, 'another client has its own budget');
  for (let i = 0; i < 5; i++)
    t.equal((await send(limited, { method: 'GET', url: '/health/live' })).statusCode, 200);
  const anonymous = [];
  for (let i = 0; i < 4; i++) anonymous.push((await send(limited, search)).statusCode);
  t.same(anonymous, [401, 401, 401, 429], 'requests without a valid token count against their IP address');
});

t.test('behind a trusted proxy, the rate limit counts the forwarded client address', async (t) => {
  const search = { method: 'GET' as const, url: `/care-plans?patient=${PATIENT_A}` };
  const from = (address: string) => ({ ...search, headers: { 'x-forwarded-for': address } });
  const statuses = async (target: SecureService, address: string, n: number) => {
    const out = [];
    for (let i = 0; i < n; i++) out.push((await send(target, from(address))).statusCode);
    return out;
  };
  // app.inject connects from 127.0.0.1: that is the proxy here.
  const proxied = await startSecureService(issuer, { RATE_LIMIT_MAX: '2', TRUST_PROXY: '127.0.0.1' });
  services.push(proxied);
  t.same(await statuses(proxied, '203.0.113.5', 3), [401, 401, 429], 'one client reaches its limit');
  t.same(await statuses(proxied, '203.0.113.6', 1), [401], 'another client behind the proxy has its own');

  const direct = await startSecureService(issuer, { RATE_LIMIT_MAX: '2' });
  services.push(direct);
  t.same(await statuses(direct, '203.0.113.5', 2), [401, 401]);
  t.same(
    await statuses(direct, '203.0.113.6', 1),
    [429],
    'without TRUST_PROXY a forwarded address is ignored: a caller cannot pick its own budget',
  );
});

t.test(
  "every response carries exactly the headers @fastify/helmet would set with the service's policy",
  async (t) => {
    // The oracle: the official plugin on a bare Fastify app, with the same options the service had when it used it.
    const oracle = Fastify();
    await oracle.register(fastifyHelmet, {
      global: true,
      contentSecurityPolicy: { useDefaults: false, directives: CONTENT_SECURITY_POLICY },
    });
    oracle.get('/x', async () => ({}));
    const reference = await oracle.inject({ method: 'GET', url: '/x' });
    await oracle.close();
    const fastifyOwn = new Set(['content-type', 'content-length', 'date', 'connection', 'keep-alive']);
    const expected = Object.fromEntries(
      Object.entries(reference.headers).filter(([name]) => !fastifyOwn.has(name)),
    );
    t.ok(Object.keys(expected).length >= 12, 'helmet sets a dozen headers');
    const answers = {
      'a public route (200)': await send(service, { method: 'GET', url: '/health/live' }),
      'no token (401)': await send(service, { method: 'GET', url: '/care-plans' }),
      'an unknown route (404)': await send(service, { method: 'GET', url: '/no-such-route' }),
      'a create (201)': await send(
        service,
        { method: 'POST', url: '/care-plans', body: planFor(PATIENT_A, NAME_A) },
        await system(),
      ),
      'a refused body (400)': await send(
        service,
        { method: 'POST', url: '/care-plans', body: { status: 'bogus' } },
        await system(),
      ),
    };
    for (const [what, answer] of Object.entries(answers)) {
      const got = Object.fromEntries(Object.keys(expected).map((name) => [name, answer.headers[name]]));
      t.same(got, expected, what);
      t.notOk(answer.headers['x-powered-by'], `${what}: no X-Powered-By`);
    }
    t.equal(answers['a create (201)'].statusCode, 201);
    t.equal(answers['a refused body (400)'].statusCode, 400);
  },
);

t.test('security headers; Swagger UI keeps working under the CSP', async (t) => {
  const api = await send(service, { method: 'GET', url: '/health/live' });
  t.match(api.headers['content-security-policy'], /default-src 'self'.*frame-ancestors 'none'/);
  t.equal(api.headers['x-content-type-options'], 'nosniff');
  t.ok(api.headers['strict-transport-security']);
  const docs = await send(service, { method: 'GET', url: '/docs/' });
  t.equal(docs.statusCode, 200);
  const scripts = [...docs.body.matchAll(/<script[^>]*>/g)].map((m) => m[0]);
  t.ok(
    scripts.length > 0 && scripts.every((s) => /src="/.test(s)),
    'Swagger UI has no inline scripts: script-src self suffices',
  );
  const document = (await send(service, { method: 'GET', url: '/openapi.json' })).json();
  t.match(document.components.securitySchemes.bearerAuth, {
    type: 'http',
    scheme: 'bearer',
    bearerFormat: 'JWT',
  });
  t.same(document.security, [{ bearerAuth: [] }], 'Swagger UI offers "Authorize"');
  t.same(document.paths['/health/live'].get.security, [], 'health is public');
  t.ok(document.paths['/care-plans/{id}'].get.responses['401'], 'protected operations document 401');
  const page = await send(
    service,
    {
      method: 'GET',
      url: `/care-plans/${(await create(service, planFor(PATIENT_A, NAME_A), await system())).plan.id}`,
      headers: { accept: 'text/html' },
    },
    await system(),
  );
  if (page.headers['content-type']?.toString().startsWith('text/html')) {
    t.notMatch(
      String(page.headers['content-security-policy']),
      /,/,
      'the plan page sends its own single policy',
    );
  }
});

t.test(
  'hostile JSON: __proto__ and constructor keys and absurd nesting never reach the mapping',
  async (t) => {
    const admin = await system();
    const before = await snapshot(service);
    const plan = JSON.stringify(planFor(PATIENT_A, NAME_A));
    const bodies = [
      plan.replace('{', '{"__proto__":{"isAdmin":true},'),
      plan.replace('"goals":[{', '"goals":[{"__proto__":{"polluted":1},'),
      plan.replace('{', '{"constructor":{"prototype":{"isAdmin":true}},'),
      plan.replace('{', `{"unmappedFhir":{"x":${'['.repeat(5000)}${']'.repeat(5000)}},`),
      plan.replace('{', `{"unmappedFhir":${'{"a":'.repeat(150)}1${'}'.repeat(150)},`),
    ];
    for (const [index, payload] of bodies.entries()) {
      for (const url of ['/care-plans', '/care-plans/$to-fhir', '/care-plans/$from-fhir']) {
        const response = await service.app.inject({
          method: 'POST',
          url,
          payload,
          headers: {
            authorization: `Bearer ${admin}`,
            'content-type': url.endsWith('from-fhir') ? 'application/fhir+json' : 'application/json',
          },
        });
        t.equal(response.statusCode, 400, `body ${index} to ${url}: 400`);
        t.equal(response.json().type, 'https://shared-care-plans.org/problems/bad-request');
      }
    }
    t.equal(({} as Record<string, unknown>).isAdmin, undefined, 'Object.prototype untouched');
    t.same(await snapshot(service), before, 'nothing stored');
    const big = await service.app.inject({
      method: 'POST',
      url: '/care-plans',
      payload: `{"title":"${'x'.repeat(1_100_000)}"}`,
      headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
    });
    t.equal(big.statusCode, 413, 'a body over BODY_LIMIT_BYTES: 413');
    const unauthenticatedBig = await service.app.inject({
      method: 'POST',
      url: '/care-plans',
      payload: `{"title":"${'x'.repeat(1_100_000)}"}`,
      headers: { 'content-type': 'application/json' },
    });
    t.equal(unauthenticatedBig.statusCode, 401, 'without a token the body is never read');
  },
);

t.test('AUTH_MODE=none warns loudly at start-up and still audits as anonymous', async (t) => {
  const open = await startSecureService(undefined);
  services.push(open);
  const warning = open.logs.records().find((r) => String(r.msg).includes('AUTH_MODE=none'));
  t.match(warning, { level: 40, authMode: 'none', defaulted: true });
  const created = await create(open, planFor(PATIENT_A, NAME_A));
  const history = (await send(open, { method: 'GET', url: `/care-plans/${created.plan.id}/history` })).json();
  t.equal(history.items[0].changedBy, 'anonymous (AUTH_MODE=none)');
  t.ok(
    open.logs.records().some((r) => r.audit === true && r.who === 'anonymous' && r.operation === 'create'),
  );
});

t.test('SMART Backend Services: obtains, caches and renews the token; retries once on 401', async (t) => {
  for (const algorithm of ['RS384', 'ES384'] as const) {
    const keys = await generateKeyPair(algorithm, { extractable: true });
    const issued: string[] = [];
    const seenJti = new Set<string>();
    let tokenRequests = 0;
    let refuse = false;
    const tokenEndpoint = await loopback(async (req, res) => {
      tokenRequests++;
      let raw = '';
      for await (const chunk of req) raw += chunk;
      const form = new URLSearchParams(raw);
      const fail = (error: string) => {
        res.writeHead(400, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error }));
      };
      if (form.get('grant_type') !== 'client_credentials') return fail('unsupported_grant_type');
      if (form.get('client_assertion_type') !== 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer')
        return fail('invalid_request');
      try {
        const { payload, protectedHeader } = await jwtVerify(
          form.get('client_assertion') as string,
          keys.publicKey,
          {
            issuer: 'care-plans-client',
            subject: 'care-plans-client',
            audience: `${tokenEndpoint.url}/token`,
            algorithms: [algorithm],
          },
        );
        if (protectedHeader.kid !== 'smart-key-1') return fail('invalid_client');
        if (!payload.jti || seenJti.has(payload.jti)) return fail('invalid_client');
        if ((payload.exp as number) - (payload.iat as number) > 300) return fail('invalid_client');
        seenJti.add(payload.jti);
      } catch {
        return fail('invalid_client');
      }
      if (form.get('scope') !== 'system/CarePlan.cruds') return fail('invalid_scope');
      if (refuse) return fail('invalid_client');
      const accessToken = `at-${algorithm}-${issued.length + 1}-${rand()}`;
      issued.push(accessToken);
      tokens.push(accessToken);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          access_token: accessToken,
          token_type: 'bearer',
          expires_in: 300,
          scope: 'system/CarePlan.cruds',
        }),
      );
    });
    // A FHIR server that accepts only the newest token it knows of, unless told to refuse all.
    let revoked = new Set<string>();
    let rejectAll = false;
    const fhirCalls: string[] = [];
    const fhir = await loopback((req, res) => {
      const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1] ?? '';
      fhirCalls.push(bearer);
      if (rejectAll || !issued.includes(bearer) || revoked.has(bearer)) {
        res.writeHead(401, { 'content-type': 'application/fhir+json' });
        return res.end(
          JSON.stringify({ resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'login' }] }),
        );
      }
      res.writeHead(200, { 'content-type': 'application/fhir+json' });
      res.end(JSON.stringify({ resourceType: 'Bundle', type: 'searchset', total: 0 }));
    });
    let now = Date.now();
    const smart = new SmartBackendAuth({
      tokenUrl: `${tokenEndpoint.url}/token`,
      clientId: 'care-plans-client',
      privateKey: keys.privateKey as never,
      keyId: 'smart-key-1',
      scope: 'system/CarePlan.cruds',
      algorithm,
      now: () => now,
    });
    const gateway = new FhirGateway({
      baseUrl: `${fhir.url}/fhir`,
      timeoutMs: 2000,
      maxRetries: 0,
      authorization: () => smart.authorization(),
      onUnauthorized: (authorization) => smart.invalidate(authorization),
    });
    const search = () => gateway.search('CarePlan', {}, {});

    await Promise.all(Array.from({ length: 10 }, search));
    t.equal(tokenRequests, 1, `${algorithm}: ten concurrent calls, one token request`);
    await search();
    t.equal(tokenRequests, 1, `${algorithm}: the token is cached`);
    t.same(new Set(fhirCalls), new Set([issued[0]]), `${algorithm}: every call carried it`);

    now += 241_000; // 300 s tokens are renewed 60 s before they expire
    await search();
    t.equal(tokenRequests, 2, `${algorithm}: renewed before expiry`);
    t.equal(fhirCalls.at(-1), issued[1]);

    revoked = new Set([issued[1]]); // the FHIR server stops accepting the cached token
    const callsBefore = fhirCalls.length;
    await search();
    t.equal(tokenRequests, 3, `${algorithm}: a 401 gets a fresh token`);
    t.same(
      fhirCalls.slice(callsBefore),
      [issued[1], issued[2]],
      `${algorithm}: and the call is sent once more`,
    );

    rejectAll = true;
    const failingFrom = fhirCalls.length;
    const failure = await search().catch((error) => error);
    t.ok(failure instanceof FhirServerError && failure.status === 401, `${algorithm}: still 401: an error`);
    t.equal(fhirCalls.length - failingFrom, 2, `${algorithm}: retried once only`);
    rejectAll = false;

    refuse = true;
    smart.invalidate(`Bearer ${issued.at(-1)}`);
    const refused = await smart.authorization().catch((error) => error);
    t.match(
      refused,
      { kind: 'upstream', message: /token endpoint refused.*400 invalid_client/ },
      `${algorithm}: a refused client is an error`,
    );
    refuse = false;

    const wrongKey = new SmartBackendAuth({
      tokenUrl: `${tokenEndpoint.url}/token`,
      clientId: 'care-plans-client',
      privateKey: (await generateKeyPair(algorithm)).privateKey as never,
      keyId: 'smart-key-1',
      scope: 'system/CarePlan.cruds',
      algorithm,
    });
    t.match(
      await wrongKey.authorization().catch((e) => e),
      { message: /invalid_client/ },
      `${algorithm}: the endpoint checks the assertion signature`,
    );
    await fhir.close();
    await tokenEndpoint.close();
  }
});

t.test(
  'FHIR_AUTH=smart-backend end to end: the app writes through a FHIR server that demands its token',
  async (t) => {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const target = await startSecureService(issuer);
    services.push(target);
    let tokenCount = 0;
    let app: Awaited<ReturnType<typeof buildApp>>;
    const tokenEndpoint = await loopback(async (req, res) => {
      let raw = '';
      for await (const chunk of req) raw += chunk;
      // The authorization server checks the assertion against the key set the service publishes.
      const published = await app.inject({ method: 'GET', url: '/.well-known/jwks.json' });
      await jwtVerify(
        new URLSearchParams(raw).get('client_assertion') as string,
        createLocalJWKSet(published.json()),
        {
          audience: `${tokenEndpoint.url}/token`,
        },
      );
      tokenCount++;
      const accessToken = `fhir-access-${tokenCount}-${rand()}`;
      tokens.push(accessToken);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ access_token: accessToken, token_type: 'Bearer', expires_in: 3600 }));
    });
    let valid = '';
    const proxy = await loopback(async (req, res) => {
      const authorization = req.headers.authorization ?? '';
      if (!valid || authorization !== `Bearer ${valid}`) {
        valid ||= authorization.slice('Bearer '.length); // the first token it sees becomes the valid one
        if (authorization !== `Bearer ${valid}`) {
          res.writeHead(401);
          return res.end();
        }
      }
      let body = '';
      for await (const chunk of req) body += chunk;
      const upstream = await fetch(`${target.fhirBaseUrl}${(req.url as string).slice('/fhir'.length)}`, {
        method: req.method,
        headers: {
          'content-type': 'application/fhir+json',
          ...(req.headers.prefer ? { prefer: String(req.headers.prefer) } : {}),
        },
        ...(body ? { body } : {}),
      });
      res.writeHead(upstream.status, { 'content-type': 'application/fhir+json' });
      res.end(await upstream.text());
    });
    const config = {
      ...loadConfig({
        AUTH_MODE: 'none',
        FHIR_BASE_URL: `${proxy.url}/fhir`,
        FHIR_AUTH: 'smart-backend',
        FHIR_SMART_TOKEN_URL: `${tokenEndpoint.url}/token`,
        FHIR_SMART_CLIENT_ID: 'care-plans-client',
        FHIR_SMART_KEY_ID: 'k',
        FHIR_SMART_PRIVATE_KEY: String(privateKey.export({ type: 'pkcs8', format: 'pem' })),
        FHIR_MAX_RETRIES: '0',
        LOG_LEVEL: 'silent',
      }),
      fhirBaseUrl: `${proxy.url}/fhir`,
    };
    app = await buildApp(config);
    t.teardown(async () => {
      await app.close();
      await proxy.close();
      await tokenEndpoint.close();
    });
    const jwks = await app.inject({ method: 'GET', url: '/.well-known/jwks.json' });
    t.equal(jwks.statusCode, 200, 'the public key set needs no token');
    t.match(jwks.headers['content-type'], /^application\/jwk-set\+json/);
    const [key, ...more] = jwks.json().keys;
    t.same(more, [], 'one key');
    t.match(key, {
      kty: 'RSA',
      kid: 'k',
      alg: 'RS384',
      use: 'sig',
      n: publicKey.export({ format: 'jwk' }).n,
    });
    for (const secret of ['d', 'p', 'q', 'dp', 'dq', 'qi'])
      t.notOk(secret in key, `no private member "${secret}" in the published key`);
    const none = await target.app.inject({ method: 'GET', url: '/.well-known/jwks.json' });
    t.equal(none.statusCode, 404, 'a service without FHIR_AUTH=smart-backend publishes no key');
    t.equal(none.json().type, 'https://shared-care-plans.org/problems/not-found');
    const created = await app.inject({
      method: 'POST',
      url: '/care-plans',
      payload: planFor(PATIENT_A, NAME_A),
    });
    t.equal(created.statusCode, 201, 'created through the token-checking FHIR server');
    t.equal((await app.inject({ method: 'GET', url: `/care-plans/${created.json().id}` })).statusCode, 200);
    t.equal(tokenCount, 1, 'one token for both');
    valid = 'rotated'; // the FHIR server no longer accepts the token: the app gets a new one (which is then refused too)
    const refused = await app.inject({ method: 'GET', url: `/care-plans/${created.json().id}` });
    t.equal(tokenCount, 2, 'a 401 makes the app fetch a new token once');
    t.equal(refused.statusCode, 502, 'and a FHIR server that still refuses is a 502');
  },
);

t.test(
  'logs: no patient name or id, no token, no body in any line (LOG_LEVEL=debug, all components)',
  async (t) => {
    // Provoke the error paths too: invalid bodies full of names, names in query strings and paths, bad JSON, a FHIR
    // server that is down.
    const admin = await system();
    const names = { patient: { reference: PATIENT_A, display: NAME_A }, status: 'bogus', intent: NAME_A };
    await send(service, { method: 'POST', url: '/care-plans', body: names }, admin);
    await service.app.inject({
      method: 'POST',
      url: '/care-plans',
      payload: `{"patient": "${NAME_A}"`,
      headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
    });
    await send(
      service,
      { method: 'GET', url: `/care-plans?patient=${PATIENT_B}&status=${encodeURIComponent(NAME_B)}` },
      admin,
    );
    await send(
      service,
      { method: 'GET', url: `/patients/${encodeURIComponent(NAME_B)}/${PATIENT_B}` },
      admin,
    );
    await send(service, { method: 'GET', url: `/care-plans/${PATIENT_B.split('/')[1]}?x=${NAME_B}` }, admin);
    await send(
      service,
      {
        method: 'GET',
        url: `/care-plans?patient=${PATIENT_A}`,
        headers: { 'x-request-id': NAME_A.replace(' ', '-') },
      },
      admin,
    );
    const down = await startSecureService(issuer);
    services.push(down);
    const plan = await create(down, planFor(PATIENT_B, NAME_B), admin);
    const embeddedLines = down.logs.lines.length;
    // The same service, logging into the same capture, with its FHIR server gone.
    const dead = await buildApp(
      { ...down.config, fhirBaseUrl: 'http://127.0.0.1:9/fhir', fhirTimeoutMs: 300, fhirMaxRetries: 0 },
      { logger: pino(loggerOptions(down.config), down.logs.stream) },
    );
    const unavailable = await dead.inject({
      method: 'GET',
      url: `/care-plans/${plan.plan.id}`,
      headers: { authorization: `Bearer ${admin}` },
    });
    t.equal(unavailable.statusCode, 503);
    await dead.inject({
      method: 'POST',
      url: '/care-plans',
      payload: planFor(PATIENT_B, NAME_B),
      headers: { authorization: `Bearer ${admin}` },
    });
    await dead.close();

    const all = services.map((s) => s.logs.text).join('\n');
    const records = services.flatMap((s) => s.logs.records());
    t.ok(
      records.some((r) => r.msg === 'embedded FHIR request' && r.level === 20),
      'the embedded FHIR server logged at debug',
    );
    t.ok(
      records.some((r) => r.msg === 'request refused'),
      'refusals were logged',
    );
    t.ok(
      records.some((r) => r.audit === true),
      'audit lines were logged',
    );
    t.ok(down.logs.lines.length > embeddedLines, 'the FHIR-server-down requests were logged');
    t.ok(
      all.length > 50_000,
      `a real amount of log output was searched (${all.length} characters, ${records.length} lines)`,
    );
    const forbidden = [
      ...[PATIENT_A, PATIENT_B].flatMap((p) => [p, p.split('/')[1]]),
      ...[NAME_A, NAME_B].flatMap((n) => [n, ...n.split(' '), encodeURIComponent(n)]),
      SECRET_TITLE,
      'Walk to the market',
      'Ana Lopez',
      ...tokens,
      ...tokens.map((tok) => tok.split('.').at(-1) as string).filter((sig) => sig.length > 20),
    ];
    for (const needle of forbidden) {
      if (all.includes(needle) && process.env.DEBUG_LOGS)
        console.error(
          services
            .flatMap((s) => s.logs.lines)
            .filter((l) => l.includes(needle))
            .slice(0, 3),
        );
      t.notOk(
        all.includes(needle),
        `no log line contains ${needle.length > 40 ? `${needle.slice(0, 16)}...` : `"${needle}"`}`,
      );
    }
    t.notOk(
      /authorization|bearer /i.test(all.replace(/"msg":"[^"]*"/g, '')),
      'no Authorization header was logged',
    );
  },
);
