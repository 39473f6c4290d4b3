// The FHIR server a phase pushes to: a fresh embedded FHIR server process per phase (the default), or, with
// BENCH_FHIR=hapi, the real HAPI FHIR JPA server that `npm run test:hapi` builds and starts (test/hapi/start.sh
// and stop.sh, on a free port), one for the whole run: it takes tens of seconds to start.
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { freePort, HOST, onExit, sleep, spawnNode, stop, waitFor200 } from './processes.mjs';

/** The embedded FHIR server as its own process; `stop()` ends it. */
export async function startEmbedded({ root, logs, dist }, name) {
  const port = await freePort();
  const child = spawnNode(root, logs, `${name}-fhir`, [join(dist, 'src/embedded-fhir/main.js')], {
    EMBEDDED_FHIR_PORT: String(port),
    EMBEDDED_FHIR_HOST: HOST,
    LOG_LEVEL: 'warn',
  });
  const baseUrl = `http://${HOST}:${port}/fhir`;
  await waitFor200(`${baseUrl}/metadata`, child, 30_000, 20);
  return { baseUrl, pid: child.pid, stop: () => stop(child) };
}

/**
 * HAPI via test/hapi/start.sh (builds it when needed, waits for /metadata). Its process is found by its pid
 * file, for the CPU columns. stop.sh runs when the run ends, whatever the outcome.
 */
export async function startHapi({ root, logs }) {
  const port = String(await freePort());
  const script = (name) => join(root, 'test/hapi', name);
  const env = { ...process.env, HAPI_PORT: port };
  onExit(() => execFileSync(script('stop.sh'), { env, stdio: 'ignore' }));
  const started = Date.now();
  try {
    execFileSync(script('start.sh'), { env, stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 1 << 24 });
  } catch (error) {
    throw new Error(`test/hapi/start.sh failed:\n${error.stdout ?? ''}${error.stderr ?? ''}`);
  }
  const pid = Number(
    execFileSync('cat', [join(root, 'test/hapi/target/hapi.pid')], { encoding: 'utf8' }).trim(),
  );
  const baseUrl = `http://${HOST}:${port}/fhir`;
  return {
    baseUrl,
    pid,
    startMs: Date.now() - started,
    logFile: join(logs, '..', '..', '..', 'test/hapi/target/hapi.log'),
    stop: async () => execFileSync(script('stop.sh'), { env, stdio: 'ignore' }),
  };
}

/**
 * HAPI enforces referential integrity: the Patients, Practitioners and RelatedPersons the pool's plans name
 * are created first (PUT, in one transaction).
 */
export async function seedReferences(baseUrl, pool) {
  const entries = new Map();
  for (const plan of pool) {
    const patient = plan.patient.reference;
    for (const match of JSON.stringify(plan).matchAll(
      /"reference":"(Patient|Practitioner|RelatedPerson)\/([^"]+)"/g,
    )) {
      const [, resourceType, id] = match;
      const resource = { resourceType, id, active: true };
      if (resourceType === 'RelatedPerson') resource.patient = { reference: patient };
      entries.set(`${resourceType}/${id}`, resource);
    }
  }
  // Patients first: RelatedPersons reference them.
  const ordered = [...entries.values()].sort(
    (a, b) => (a.resourceType === 'Patient' ? -1 : 0) - (b.resourceType === 'Patient' ? -1 : 0),
  );
  const response = await fetch(baseUrl, {
    method: 'POST',
    headers: {
      'content-type': 'application/fhir+json',
      accept: 'application/fhir+json',
      prefer: 'return=minimal',
    },
    body: JSON.stringify({
      resourceType: 'Bundle',
      type: 'transaction',
      entry: ordered.map((resource) => ({
        resource,
        request: { method: 'PUT', url: `${resource.resourceType}/${resource.id}` },
      })),
    }),
  });
  const text = await response.text();
  if (!response.ok)
    throw new Error(
      `seeding ${entries.size} resources on ${baseUrl}: ${response.status} ${text.slice(0, 500)}`,
    );
  return entries.size;
}

/** The number of resources of a type on the FHIR server. */
export async function countOnServer(baseUrl, resourceType) {
  const response = await fetch(`${baseUrl}/${resourceType}?_summary=count&_total=accurate`, {
    headers: { accept: 'application/fhir+json', 'cache-control': 'no-cache' },
  });
  const body = await response.json();
  if (response.status !== 200 || typeof body.total !== 'number') {
    throw new Error(
      `counting ${resourceType} on ${baseUrl} failed: ${response.status} ${JSON.stringify(body).slice(0, 300)}`,
    );
  }
  return body.total;
}

/** Waits until the count stops moving (requests aborted at the end of the warm-up may still land). */
export async function settledCount(baseUrl, resourceType) {
  let last = await countOnServer(baseUrl, resourceType);
  for (let stable = 0; stable < 3; ) {
    await sleep(150);
    const now = await countOnServer(baseUrl, resourceType);
    stable = now === last ? stable + 1 : 0;
    last = now;
  }
  return last;
}
