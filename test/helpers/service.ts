// Starts the real service for a test: the app (buildApp) over real HTTP against a real FHIR server, the
// embedded one by default, or the server named by TEST_FHIR_BASE_URL (e.g. HAPI in `npm run test:hapi`).
import { readFileSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import type { Bundle, Resource } from 'fhir/r4.js';
import { type Logger, pino } from 'pino';
import type { AppConfig } from '../../src/config.js';
import { loadConfig } from '../../src/config.js';
import { type EmbeddedFhirServer, startEmbeddedFhirServer } from '../../src/embedded-fhir/server.js';
import { buildApp } from '../../src/http/app.js';
import { fromRoot } from '../../src/paths.js';

export interface TestService {
  app: FastifyInstance;
  fhirBaseUrl: string;
  /**
   * A patient id unique to one test (so tests sharing a FHIR server never see each other's data). On a server
   * with referential integrity (HAPI) the Patient is created first.
   */
  newPatient(label: string): Promise<string>;
  /** Talks straight to the FHIR server, to check what the service really stored. */
  fhir<T = Resource>(
    path: string,
    init?: RequestInit,
  ): Promise<{ status: number; body: T; headers: Headers }>;
  close(): Promise<void>;
}

export const quietLogger = pino({ level: 'silent' });

export async function startTestService(
  env: Record<string, string> = {},
  options: { logger?: Logger } = {},
): Promise<TestService> {
  const external = process.env.TEST_FHIR_BASE_URL;
  let embedded: EmbeddedFhirServer | undefined;
  if (!external) embedded = await startEmbeddedFhirServer({ logger: quietLogger });
  const fhirBaseUrl = external ?? (embedded as EmbeddedFhirServer).baseUrl;
  const config: AppConfig = { ...loadConfig({ LOG_LEVEL: 'silent', ...env }), fhirBaseUrl };
  const app = await buildApp(config, { logger: options.logger ?? quietLogger });
  await app.ready();
  if (external) await createPeople(fhirBaseUrl);
  return {
    app,
    fhirBaseUrl,
    async newPatient(label: string) {
      const reference = `Patient/${label}-${Math.random().toString(36).slice(2, 10)}`;
      if (external)
        await put(fhirBaseUrl, { resourceType: 'Patient', id: reference.split('/')[1], active: true });
      return reference;
    },
    async fhir<T>(path: string, init?: RequestInit) {
      const response = await fetch(`${fhirBaseUrl}/${path}`, {
        ...init,
        headers: {
          accept: 'application/fhir+json',
          'content-type': 'application/fhir+json',
          ...init?.headers,
        },
      });
      const text = await response.text();
      return {
        status: response.status,
        body: (text ? JSON.parse(text) : undefined) as T,
        headers: response.headers,
      };
    },
    async close() {
      await app.close();
      await embedded?.close();
    },
  };
}

export function examplePlan(): Record<string, unknown> {
  return JSON.parse(readFileSync(fromRoot('schemas', 'examples', 'patient-led-plan.json'), 'utf8'));
}

/** Total number of resources of a type for a patient on the FHIR server. */
export async function countOnServer(service: TestService, resourceType: string, query = ''): Promise<number> {
  const { body } = await service.fhir<Bundle>(`${resourceType}?_count=1000${query ? `&${query}` : ''}`);
  return body.total ?? body.entry?.length ?? 0;
}

export async function put(
  fhirBaseUrl: string,
  resource: { resourceType: string; id: string } & Record<string, unknown>,
) {
  const response = await fetch(`${fhirBaseUrl}/${resource.resourceType}/${resource.id}`, {
    method: 'PUT',
    headers: { 'content-type': 'application/fhir+json' },
    body: JSON.stringify(resource),
  });
  if (!response.ok)
    throw new Error(
      `cannot create ${resource.resourceType}/${resource.id}: ${response.status} ${await response.text()}`,
    );
}

/**
 * The people the example plan names. The service never creates records of people: on a FHIR server that
 * enforces referential integrity, a test creates them first, as an EHR would have.
 */
export async function createPeople(fhirBaseUrl: string) {
  await put(fhirBaseUrl, {
    resourceType: 'Patient',
    id: 'maria-lopez',
    name: [{ family: 'Lopez', given: ['Maria'] }],
  });
  await put(fhirBaseUrl, { resourceType: 'Patient', id: 'example', active: true });
  await put(fhirBaseUrl, {
    resourceType: 'RelatedPerson',
    id: 'ana-lopez',
    patient: { reference: 'Patient/maria-lopez' },
    name: [{ family: 'Lopez', given: ['Ana'] }],
  });
  for (const id of ['dr-okafor', 'nurse-kim', 'pt-silva', 'desk-patel']) {
    await put(fhirBaseUrl, { resourceType: 'Practitioner', id, active: true });
  }
}

// biome-ignore lint/suspicious/noExplicitAny: answers are probed field by field
export type Json = Record<string, any>;

/** One request through app.inject: a JSON body (when given) and the answer's status, headers and JSON body. */
export async function injectJson(
  app: FastifyInstance,
  method: string,
  url: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: Record<string, unknown>; body: Json | undefined }> {
  const reply = await app.inject({
    method: method as 'GET',
    url,
    headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
    ...(body === undefined ? {} : { payload: JSON.stringify(body) }),
  });
  return {
    status: reply.statusCode,
    headers: reply.headers,
    body: reply.body ? (reply.json() as Json) : undefined,
  };
}
