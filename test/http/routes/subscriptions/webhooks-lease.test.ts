// DELETE /subscriptions/{id} while another instance holds the lease: two app instances over one FHIR server (the
// embedded one; HAPI in test:hapi) with one key. Instance A answers the API and delivers nothing (its worker is
// stopped); instance B holds the lease and is delivering a backlog to a slow receiver when A is asked to delete.
// No delivery may reach the receiver after the DELETE answered, and B hands the lease back (A need not wait it out).
import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { Subscription } from 'fhir/r4.js';
import t from 'tap';
import { loadConfig } from '../../../../src/config.js';
import { buildApp } from '../../../../src/http/app.js';
import {
  examplePlan,
  injectJson,
  type Json,
  quietLogger,
  startTestService,
  type TestService,
} from '../../../helpers/service.js';
import { deliveryFigures, startReceiver } from '../../../helpers/webhook-receiver.js';

const LEASE_MS = 6000;
const ENV = {
  LOG_LEVEL: 'silent',
  CHANGE_FEED_SETTLE_MS: '200',
  WEBHOOK_POLL_MS: '100',
  WEBHOOK_RETRY_MIN_MS: '50',
  WEBHOOK_RETRY_MAX_MS: '200',
  WEBHOOK_TIMEOUT_MS: '2000',
  WEBHOOK_LEASE_MS: String(LEASE_MS),
  WEBHOOK_SECRET_KEY: randomBytes(32).toString('hex'),
};
t.setTimeout(300_000);

let a: TestService;
let b: FastifyInstance;
t.before(async () => {
  a = await startTestService(ENV);
  await a.app.deliveryWorker.stop(); // A only answers the API
  b = await buildApp({ ...loadConfig(ENV), fhirBaseUrl: a.fhirBaseUrl }, { logger: quietLogger });
  await b.ready();
});
t.teardown(async () => {
  await b.close();
  await a.close();
});

t.test('DELETE while another instance holds the lease: no delivery after DELETE answers', async (t) => {
  const patient = await a.newPatient('lease-delete');
  // A slow receiver (250 ms an answer), so that a backlog is still being delivered when the DELETE comes.
  const receiver = await startReceiver(() => ({ status: 200, delayMs: 250 }));
  t.teardown(() => receiver.close());
  const created = await injectJson(a.app, 'POST', '/subscriptions', { endpoint: receiver.url, patient });
  t.equal(created.status, 201);
  receiver.secret = created.body?.secret;
  const id = created.body?.id as string;

  // A plan and 10 goal changes, then its end: 12 versions, written through A.
  const plan = examplePlan() as Json;
  plan.patient.reference = patient;
  const made = await injectJson(a.app, 'POST', '/care-plans', plan);
  let etag = made.headers.etag as string;
  for (let i = 0; i < 10; i++) {
    const changed = await injectJson(
      a.app,
      'PATCH',
      `/care-plans/${made.body?.id}/goals/walk-to-market`,
      { achievementStatus: i % 2 ? 'improving' : 'worsening' },
      { 'if-match': etag },
    );
    etag = changed.headers.etag as string;
  }
  await injectJson(a.app, 'DELETE', `/care-plans/${made.body?.id}`, undefined, { 'if-match': etag });
  const versions = 12;

  await receiver.waitFor((d) => d.length >= 3, 90_000);
  const stored = await a.fhir<Subscription>(`Subscription/${id}`);
  const state = JSON.parse(
    stored.body.extension?.find((e) => e.url.endsWith('/webhook-delivery-state'))?.valueString ?? '{}',
  );
  t.equal(state.lease?.owner, b.deliveryWorker.instance, 'instance B holds the lease');
  t.not(state.lease?.owner, a.app.deliveryWorker.instance, 'not the instance asked to delete');

  const asked = Date.now();
  const deleted = await injectJson(a.app, 'DELETE', `/subscriptions/${id}`);
  const answered = Date.now();
  t.equal(deleted.status, 204);
  const deliveredAtAnswer = receiver.deliveries.length;
  t.ok(deliveredAtAnswer < versions, `events were pending: ${deliveredAtAnswer} of ${versions} delivered`);
  t.ok(
    answered - asked < LEASE_MS,
    `B handed the lease back: the DELETE took ${answered - asked} ms, less than the lease (${LEASE_MS} ms)`,
  );

  // Long enough for B to have sent several more (250 ms each) had it not stopped.
  await new Promise((resolve) => setTimeout(resolve, 3000));
  t.same(
    receiver.deliveries.filter((d) => d.at > answered).map((d) => d.body.data.eventNumber),
    [],
    'no delivery reached the receiver after the DELETE answered',
  );
  t.equal(receiver.deliveries.length, deliveredAtAnswer);
  const figures = deliveryFigures(receiver.deliveries);
  t.match(figures, { gaps: 0, orderViolations: 0, duplicates: 0 }, 'what was delivered, in order');
  t.ok(
    receiver.deliveries.every((d) => d.verified),
    'every signature verifies (standardwebhooks)',
  );
  t.ok([404, 410].includes((await a.fhir(`Subscription/${id}`)).status), 'gone from the FHIR server');
  t.equal((await injectJson(b, 'GET', `/subscriptions/${id}`)).status, 404, 'B does not know it either');
});
