// Phase 2, the direct push: the least a server can do to get a plan onto the FHIR server. The transaction
// Bundles of the benchmark's plan pool are built once at start-up exactly as CarePlans.create() builds
// them for a plain create (activity ids, toFhir with a fresh plan revision and plan key, the Provenance of the write
// appended, all through the service's own methods); a request names its plan by the x-bench-plan header, its
// JSON body is parsed (as the service must), and the precomputed Bundle, with fresh ids, is sent with
// fhir-kit-client straight to the FHIR server (with the Prefer header the service sends: the gateway's TRANSACTION_PREFER). Answers 201 with the FHIR server's
// transaction-response Bundle; any failure answers 502.
// Env: PORT, FHIR_BASE_URL (required); PLAN_SIZE (default medium), POOL_SIZE (default 128), HOST,
//      BENCH_DIST (the build to take the mapping from, default dist/), BENCH_CLIENT_ID (the Provenance agent).
import { randomUUID } from 'node:crypto';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import Fastify from 'fastify';
import { Client } from 'fhir-kit-client';
import { generatePool } from '../plans.mjs';

const dist = pathToFileURL(
  resolve(process.env.BENCH_DIST || new URL('../../dist', import.meta.url).pathname),
).href;
const { PlanFhir } = await import(`${dist}/src/care-plans/plan-fhir.js`);
// The Prefer header the service sends with a transaction (builds without the export: representation).
const gateway = await import(`${dist}/src/fhir/client/gateway.js`);
const prefer = gateway.TRANSACTION_PREFER ?? 'return=representation';

const size = process.env.PLAN_SIZE || 'medium';
const pool = generatePool(size, Number(process.env.POOL_SIZE || 128));
const service = new PlanFhir(undefined, randomUUID);
const clientId = process.env.BENCH_CLIENT_ID || 'bench-client';
const context = { caller: { kind: 'token', clientId, subject: clientId, grants: [] } };
// As CarePlans.create() (generated plans carry no stored ids): new activities get an id.
const withActivityIds = (plan) =>
  plan.activities
    ? {
        ...plan,
        activities: plan.activities.map((a) =>
          a.id ? a : { id: `activity-${randomUUID().slice(0, 8)}`, ...a },
        ),
      }
    : plan;
const bundles = pool.map((plan) =>
  service.withProvenance(
    service.toFhir(withActivityIds(plan), { revision: randomUUID(), planKey: randomUUID() }),
    context,
    'CREATE',
  ),
);

// Each request sends its plan's Bundle with fresh ids, as the service would: every UUID in it (fullUrls, the plan
// revision) is replaced by a new one, consistently within the Bundle, and so are the activity ids derived from
// UUIDs. Sending the same ids again and again would give the FHIR server less distinct data to index than the
// service gives it. The Bundle goes as JSON text (fhir-kit-client sends a string body as it is).
const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|activity-[0-9a-f]{8}/g;
const templates = bundles.map((bundle) => JSON.stringify(bundle));
function freshBundleText(index) {
  const fresh = new Map();
  return templates[index].replace(UUID, (old) => {
    let replacement = fresh.get(old);
    if (!replacement) {
      const uuid = randomUUID();
      replacement = old.startsWith('activity-') ? `activity-${uuid.slice(0, 8)}` : uuid;
      fresh.set(old, replacement);
    }
    return replacement;
  });
}

const client = new Client({ baseUrl: process.env.FHIR_BASE_URL });
const app = Fastify({ logger: false, bodyLimit: 10 * 1024 * 1024 });
app.post('/care-plans', async (request, reply) => {
  const index = Number(request.headers['x-bench-plan']);
  const bundle = bundles[index];
  if (!bundle || typeof request.body !== 'object')
    return reply.code(400).send({ error: 'unknown x-bench-plan' });
  try {
    const response = await client.transaction({
      body: freshBundleText(index),
      options: { headers: { prefer } },
    });
    return reply.code(201).send(response);
  } catch (error) {
    return reply.code(502).send({
      error: String(error?.message ?? error),
      status: error?.response?.status,
      data: error?.response?.data,
    });
  }
});
app.get('/health/ready', async () => ({ status: 'ready' }));

process.once('SIGTERM', () => app.close().then(() => process.exit(0)));
await app.listen({ host: process.env.HOST || '127.0.0.1', port: Number(process.env.PORT) });
