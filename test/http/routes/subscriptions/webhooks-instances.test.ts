// Two service instances (processes of their own) over one FHIR server (the embedded one; HAPI in test:hapi, where
// TEST_FHIR_BASE_URL names it), the instance delivering a subscription
// killed with SIGKILL in the middle of delivering: the other takes over when its lease expires, and the receiver
// (verifying every signature with `standardwebhooks`) gets every version, in order, without gaps; an event is
// seen again only after a failure (a failed attempt, or the kill).
import { type ChildProcess, fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import type { Subscription } from 'fhir/r4.js';
import t from 'tap';
import { type EmbeddedFhirServer, startEmbeddedFhirServer } from '../../../../src/embedded-fhir/server.js';
import { fromRoot } from '../../../../src/paths.js';
import { createPeople, examplePlan, put, quietLogger } from '../../../helpers/service.js';
import { deliveryFigures, startReceiver } from '../../../helpers/webhook-receiver.js';

// biome-ignore lint/suspicious/noExplicitAny: answers are probed field by field
type Json = Record<string, any>;

interface Instance {
  child: ChildProcess;
  url: string;
  worker: string;
}

async function startInstance(env: Record<string, string>): Promise<Instance> {
  const child = fork(fromRoot('test', 'helpers', 'service-process.ts'), [], {
    env: { ...process.env, ...env },
    execArgv: process.execArgv,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const ready = await new Promise<{ url: string; worker: string }>((resolve, reject) => {
    child.once('message', (message) => resolve(message as { url: string; worker: string }));
    child.once('exit', (code) => reject(new Error(`instance exited (${code})`)));
  });
  return { child, ...ready };
}

async function call(
  base: string,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
) {
  const response = await fetch(`${base}${path}`, {
    method,
    headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  return {
    status: response.status,
    etag: response.headers.get('etag'),
    body: (text ? JSON.parse(text) : undefined) as Json,
  };
}

const versionOf = (etag: string | null) => /"([^"]+)"/.exec(etag ?? '')?.[1] as string;

/** A write's answer, which must be a success: a failed write would otherwise show only as an event never sent. */
function written(answer: Awaited<ReturnType<typeof call>>, what: string) {
  if (answer.status >= 300 || !answer.etag)
    throw new Error(`${what}: ${answer.status} ${JSON.stringify(answer.body)}`);
  return answer;
}

let embedded: EmbeddedFhirServer | undefined;
let fhirBaseUrl = process.env.TEST_FHIR_BASE_URL ?? '';
const instances: Instance[] = [];
t.before(async () => {
  if (fhirBaseUrl)
    await createPeople(fhirBaseUrl); // HAPI enforces referential integrity
  else {
    embedded = await startEmbeddedFhirServer({ logger: quietLogger });
    fhirBaseUrl = embedded.baseUrl;
  }
});
t.teardown(async () => {
  for (const instance of instances) instance.child.kill('SIGKILL');
  await embedded?.close();
});
t.setTimeout(300_000);

t.test(
  'SIGKILL of the delivering instance: the other takes over; nothing lost, no gap, in order',
  async (t) => {
    const env = {
      FHIR_BASE_URL: fhirBaseUrl,
      AUTH_MODE: 'none',
      LOG_LEVEL: 'silent',
      WEBHOOK_SECRET_KEY: randomBytes(32).toString('hex'),
      WEBHOOK_ALLOWED_HOSTS: '127.0.0.1',
      // Two instances write at once: on HAPI under load a transaction committed more than 200 ms after its
      // lastUpdated stamp, behind a later one, and 200 ms of settle window skipped its version (4 of 52 in a run).
      CHANGE_FEED_SETTLE_MS: '2000',
      WEBHOOK_POLL_MS: '100',
      WEBHOOK_RETRY_MIN_MS: '50',
      WEBHOOK_RETRY_MAX_MS: '200',
      // A lease long enough for a slow FHIR server's writes (HAPI under load), so that only the kill hands it over.
      WEBHOOK_TIMEOUT_MS: '2000',
      WEBHOOK_LEASE_MS: '6000',
    };
    const [a, b] = [await startInstance(env), await startInstance(env)];
    instances.push(a, b);
    // Fails one delivery in seven; the kill lands while the backlog is being delivered.
    const receiver = await startReceiver((n) => (n % 7 === 3 ? { status: 500 } : { status: 200 }));
    t.teardown(() => receiver.close());
    const patient = `Patient/instances-${randomBytes(4).toString('hex')}`;
    if (!embedded)
      await put(fhirBaseUrl, { resourceType: 'Patient', id: patient.split('/')[1], active: true });
    const created = await call(a.url, 'POST', '/subscriptions', { endpoint: receiver.url, patient });
    t.equal(created.status, 201);
    receiver.secret = created.body.secret;

    // Changes through both instances: plans created, goals changed, plans ended. Each answer names its version.
    const versions = new Set<string>();
    const change = async (via: Instance, plans: number) => {
      for (let p = 0; p < plans; p++) {
        const plan = examplePlan() as Json;
        plan.patient.reference = patient;
        const made = written(await call(via.url, 'POST', '/care-plans', plan), 'create');
        const id = made.body.id as string;
        versions.add(`${id}/${versionOf(made.etag)}`);
        let etag = made.etag as string;
        for (const status of ['improving', 'worsening']) {
          const edited = written(
            await call(
              via.url,
              'PATCH',
              `/care-plans/${id}/goals/walk-to-market`,
              { achievementStatus: status },
              { 'if-match': etag },
            ),
            'goal change',
          );
          etag = edited.etag as string;
          versions.add(`${id}/${versionOf(etag)}`);
        }
        const ended = written(
          await call(via.url, 'DELETE', `/care-plans/${id}`, undefined, { 'if-match': etag }),
          'end',
        );
        versions.add(`${id}/${versionOf(ended.etag)}`);
      }
    };
    await Promise.all([change(a, 5), change(b, 5)]);

    // Kill whichever instance holds the lease, once it has delivered some events and is delivering more.
    await receiver.waitFor((d) => deliveryFigures(d).distinct >= 8, 60_000);
    const stored = (await (
      await fetch(`${fhirBaseUrl}/Subscription/${created.body.id}`)
    ).json()) as Subscription;
    const state = JSON.parse(
      stored.extension?.find((e) => e.url.endsWith('/webhook-delivery-state'))?.valueString ?? '{}',
    );
    const holder = [a, b].find((i) => i.worker === state.lease?.owner);
    t.ok(holder, 'one instance holds the lease');
    const survivor = holder === a ? b : a;
    const killedAt = Date.now();
    holder?.child.kill('SIGKILL');
    const deliveredBeforeKill = deliveryFigures(receiver.deliveries).distinct;
    // More changes after the kill, through the survivor.
    await change(survivor, 3);

    await receiver
      .waitFor((d) => deliveryFigures(d).distinct >= versions.size, 120_000)
      .catch((error) => {
        t.comment(
          `after the kill: ${JSON.stringify(deliveryFigures(receiver.deliveries))} of ${versions.size}`,
        );
        throw error;
      });
    await new Promise((resolve) => setTimeout(resolve, 500)); // anything still in flight lands
    const figures = deliveryFigures(receiver.deliveries);
    const delivered = new Set(
      receiver.deliveries
        .filter((d) => d.answered === 200)
        .map((d) => `${d.body.data.plan.id}/${d.body.data.plan.version}`),
    );
    const lost = [...versions].filter((v) => !delivered.has(v)).length;
    // A repeat of an acknowledged event is allowed only for the one the killed instance had not recorded yet.
    const repeatsAfterAck = receiver.deliveries.filter((d, i) =>
      receiver.deliveries.slice(0, i).some((e) => e.webhookId === d.webhookId && e.answered === 200),
    );
    const failedAttempts = receiver.deliveries.filter((d) => d.answered !== 200).length;
    t.comment(
      `changes made ${versions.size}, events delivered ${figures.distinct} (${receiver.deliveries.length} attempts, ` +
        `${failedAttempts} failed by the receiver), duplicates ${figures.duplicates} (each after the kill), gaps ${figures.gaps}, ` +
        `order violations ${figures.orderViolations}, lost ${lost}; ${deliveredBeforeKill} delivered before the kill`,
    );
    t.equal(figures.distinct, versions.size, 'one event per version written');
    t.equal(lost, 0, 'lost: 0');
    t.equal(figures.gaps, 0, 'gaps: 0');
    t.equal(figures.orderViolations, 0, 'order violations: 0');
    // Acknowledgements are recorded at most every WEBHOOK_POLL_MS: the events sent again are the last ones the killed
    // instance delivered but had not recorded, a run that ends with the last event acknowledged before the kill.
    const again = [...new Set(repeatsAfterAck.map((d) => d.body.data.eventNumber as number))].sort(
      (x, y) => x - y,
    );
    // The highest event acknowledged before the survivor's first repeat: where the killed instance had got to.
    const firstRepeat = repeatsAfterAck.length ? receiver.deliveries.indexOf(repeatsAfterAck[0]) : 0;
    const reached = Math.max(
      0,
      ...receiver.deliveries
        .slice(0, firstRepeat)
        .filter((d) => d.answered === 200)
        .map((d) => d.body.data.eventNumber as number),
    );
    t.ok(
      again.every((n, i) => n === reached - again.length + 1 + i),
      `sent again after the kill: ${again.length ? again.join(', ') : 'none'} (the unrecorded tail before it)`,
    );
    t.ok(
      repeatsAfterAck.every((d) => d.at >= killedAt),
      'an acknowledged event comes again only after the kill',
    );
    t.ok(
      receiver.deliveries.every((d) => d.verified),
      'every signature verifies (standardwebhooks)',
    );
    const status = await call(survivor.url, 'GET', `/subscriptions/${created.body.id}/status`);
    t.match(status.body, { status: 'active', lastDelivered: versions.size, backlog: 0 });
  },
);
