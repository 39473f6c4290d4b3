// The subscriptions API under AUTH_MODE=jwt: SMART scopes on Subscription; a patient token manages only the
// subscriptions to its own patient's plans, another's are 404 (no existence oracle); and the delivery of a
// patient's subscription carries only that patient's plans.
import t from 'tap';
import { ROUTE_ACCESS } from '../../../../src/http/route-access.js';
import { type Issuer, type SecureService, startIssuer, startSecureService } from '../../../helpers/auth.js';
import { examplePlan } from '../../../helpers/service.js';
import { startReceiver } from '../../../helpers/webhook-receiver.js';

// biome-ignore lint/suspicious/noExplicitAny: answers are probed field by field
type Json = Record<string, any>;
const rand = () => Math.random().toString(36).slice(2, 8);
const PATIENT_A = `Patient/wa-${rand()}`;
const PATIENT_B = `Patient/wb-${rand()}`;

let issuer: Issuer;
let service: SecureService;
t.before(async () => {
  issuer = await startIssuer();
  service = await startSecureService(issuer, {
    LOG_LEVEL: 'silent',
    CHANGE_FEED_SETTLE_MS: '100',
    WEBHOOK_POLL_MS: '100',
    WEBHOOK_RETRY_MIN_MS: '50',
    WEBHOOK_RETRY_MAX_MS: '100',
  });
});
t.teardown(async () => {
  await service.close();
  await issuer.close();
});

const system = (scope: string) => issuer.token({ scope, client_id: 'sync-engine', sub: 'sync-engine' });
const patientToken = (patient: string, scope: string) =>
  issuer.token({ scope, client_id: 'patient-app', patient: patient.split('/')[1], sub: `user-${rand()}` });

async function send(method: string, url: string, bearer: string | undefined, body?: unknown) {
  const reply = await service.app.inject({
    method: method as 'GET',
    url,
    headers: {
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      ...(bearer ? { authorization: `Bearer ${bearer}` } : {}),
    },
    ...(body !== undefined ? { payload: JSON.stringify(body) } : {}),
  });
  return {
    status: reply.statusCode,
    headers: reply.headers,
    body: reply.body ? (reply.json() as Json) : undefined,
  };
}

t.test(
  'every subscription route: 401 without a token, 403 without a Subscription scope, 404 for another patient',
  async (t) => {
    const receiver = await startReceiver();
    t.teardown(() => receiver.close());
    const admin = await system('system/Subscription.cruds');
    const ofA = await send('POST', '/subscriptions', admin, { endpoint: receiver.url, patient: PATIENT_A });
    t.equal(ofA.status, 201);
    const id = ofA.body?.id as string;
    const calls: Record<string, [string, string, unknown?]> = {
      'POST /subscriptions': ['POST', '/subscriptions', { endpoint: receiver.url, patient: PATIENT_A }],
      'GET /subscriptions': ['GET', '/subscriptions'],
      'GET /subscriptions/:id': ['GET', `/subscriptions/${id}`],
      'DELETE /subscriptions/:id': ['DELETE', `/subscriptions/${id}`],
      'GET /subscriptions/:id/status': ['GET', `/subscriptions/${id}/status`],
      'POST /subscriptions/:id/$replay': ['POST', `/subscriptions/${id}/$replay`, { fromEvent: 1 }],
    };
    const subscriptionRoutes = Object.entries(ROUTE_ACCESS).filter(([, a]) => a.resource === 'Subscription');
    t.same(
      Object.keys(calls).sort(),
      subscriptionRoutes.map(([route]) => route).sort(),
      'every route is tried',
    );
    const patientB = await patientToken(PATIENT_B, 'patient/Subscription.cruds');
    for (const [route, access] of subscriptionRoutes) {
      const [method, url, body] = calls[route];
      t.equal((await send(method, url, undefined, body)).status, 401, `${route}: 401 without a token`);
      const carePlanOnly = await send(method, url, await system('system/CarePlan.cruds'), body);
      t.equal(carePlanOnly.status, 403, `${route}: 403 with CarePlan scopes only`);
      const others = `system/Subscription.${'cruds'.replace(access.permission, '')}`;
      t.equal(
        (await send(method, url, await system(others), body)).status,
        403,
        `${route} with ${others}: 403`,
      );
      const other = await send(method, url, patientB, body);
      const expected = route.includes(':id') ? 404 : route === 'POST /subscriptions' ? 403 : 200;
      t.equal(
        other.status,
        expected,
        `${route} with patient B's token on patient A's subscription: ${expected}`,
      );
      if (route === 'GET /subscriptions')
        t.notOk(
          other.body?.items.some((s: Json) => s.id === id),
          'not listed',
        );
    }
    t.equal((await send('GET', `/subscriptions/${id}`, admin)).status, 200, 'still there');
    const own = await send('POST', '/subscriptions', patientB, { endpoint: receiver.url });
    t.equal(own.status, 201, "a patient token subscribes to its own patient's plans");
    t.equal(own.body?.patient, PATIENT_B, 'by default');
    t.equal((await send('GET', `/subscriptions/${own.body?.id}`, patientB)).status, 200);
    t.equal(
      (await send('GET', `/subscriptions/${own.body?.id}`, await system('user/Subscription.rs'))).status,
      200,
    );
  },
);

t.test("a patient's subscription delivers that patient's plans only", async (t) => {
  const receiver = await startReceiver();
  t.teardown(() => receiver.close());
  const mine = await send('POST', '/subscriptions', await patientToken(PATIENT_A, 'patient/Subscription.c'), {
    endpoint: receiver.url,
  });
  receiver.secret = mine.body?.secret;
  const writer = await system('system/CarePlan.cruds');
  for (const patient of [PATIENT_B, PATIENT_A, PATIENT_B]) {
    const plan = examplePlan() as Json;
    plan.patient.reference = patient;
    t.equal((await send('POST', '/care-plans', writer, plan)).status, 201);
  }
  await receiver.waitFor((d) => d.length >= 1);
  await new Promise((resolve) => setTimeout(resolve, 800));
  t.equal(receiver.deliveries.length, 1, "one event: patient A's plan");
  t.equal(receiver.deliveries[0].body.data.plan.patient, PATIENT_A);
  t.ok(receiver.deliveries[0].verified);
});

t.test(
  "the person a token names bounds it too: a patient user sees their own; a family member's token subscribes to nothing",
  async (t) => {
    const receiver = await startReceiver();
    t.teardown(() => receiver.close());
    // A user/ token whose user is patient A: restricted to A whatever its scopes (README, "Who is calling").
    const patientUser = await issuer.token({
      scope: 'user/Subscription.cruds',
      client_id: 'patient-app',
      sub: `user-${rand()}`,
      fhirUser: PATIENT_A,
    });
    const toB = await send('POST', '/subscriptions', patientUser, {
      endpoint: receiver.url,
      patient: PATIENT_B,
    });
    t.equal(toB.status, 403, "a patient user cannot subscribe to another patient's plans");
    const own = await send('POST', '/subscriptions', patientUser, { endpoint: receiver.url });
    t.equal(own.status, 201);
    t.equal(own.body?.patient, PATIENT_A, "by default the patient user's own plans");
    const ofB = await send('POST', '/subscriptions', await system('system/Subscription.cruds'), {
      endpoint: receiver.url,
      patient: PATIENT_B,
    });
    t.equal(ofB.status, 201);
    t.equal(
      (await send('GET', `/subscriptions/${ofB.body?.id}`, patientUser)).status,
      404,
      "B's is not theirs",
    );
    const listed = await send('GET', '/subscriptions', patientUser);
    const items = (listed.body?.items ?? []) as Json[];
    t.ok(
      items.length > 0 && items.every((s) => s.patient === PATIENT_A),
      "the patient user's list holds their own patient's only",
    );

    // A family member (RelatedPerson) through a patient/ token of patient A: they see A's plans whose care team
    // they are on, one by one; a subscription would cover all of A's plans.
    const family = await issuer.token({
      scope: 'patient/Subscription.cruds',
      client_id: 'family-app',
      sub: `user-${rand()}`,
      patient: PATIENT_A.split('/')[1],
      fhirUser: 'RelatedPerson/ana-lopez',
    });
    const before = (await send('GET', '/subscriptions', await system('system/Subscription.rs'))).body?.items
      .length;
    const refused = await send('POST', '/subscriptions', family, { endpoint: receiver.url });
    t.equal(refused.status, 403, "a family member's token cannot subscribe");
    t.match(refused.body, {
      detail: /care team they are on; a subscription covers all of a patient's plans$/,
    });
    t.equal(
      (await send('GET', '/subscriptions', await system('system/Subscription.rs'))).body?.items.length,
      before,
      'nothing stored',
    );
    t.same((await send('GET', '/subscriptions', family)).body?.items, [], 'and lists none');
    t.equal(
      (await send('GET', `/subscriptions/${own.body?.id}`, family)).status,
      404,
      "nor reads the patient's",
    );
    t.equal(
      (await send('DELETE', `/subscriptions/${own.body?.id}`, family)).status,
      404,
      "nor deletes the patient's",
    );
  },
);
