// The OpenAPI 3 document (generated from the routes' schemas) at /openapi.json and Swagger UI at /docs.
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { examplePlan } from './schemas.js';

type OpenApi = {
  paths?: Record<
    string,
    Record<string, { requestBody?: { content?: Record<string, Record<string, unknown>> } }>
  >;
};

/** Request examples that work as they are in Swagger UI's "Try it out"; the first is the richest. */
function addExamples(document: OpenApi): OpenApi {
  const examples = {
    'patient-led-plan': {
      summary: 'A patient-led plan with a family caregiver, barriers, strengths and a shared decision',
      value: examplePlan,
    },
    'minimal-plan': {
      summary: 'The smallest plan: a patient, a status and an intent',
      value: { patient: { reference: 'Patient/example' }, status: 'draft', intent: 'proposal' },
    },
  };
  for (const path of ['/care-plans', '/care-plans/$to-fhir']) {
    const content = document.paths?.[path]?.post?.requestBody?.content;
    for (const media of Object.values(content ?? {})) media.examples = examples;
  }
  return document;
}

export default fp(async function docs(app: FastifyInstance) {
  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'shared-care-plans',
        version: '0.1.0',
        description:
          'Shared-decision care plans over REST, mapped faithfully onto FHIR R4 (CarePlan, Goal, CareTeam, Observation, ' +
          'Condition) and stored on a FHIR server. Errors are application/problem+json (RFC 9457).',
        license: { name: 'Apache-2.0', url: 'https://www.apache.org/licenses/LICENSE-2.0' },
      },
      servers: [{ url: '/' }],
      tags: [
        { name: 'care plans', description: 'Create and read shared-decision care plans' },
        { name: 'mapping', description: 'The FHIR mapping, both ways, without storing anything' },
        { name: 'sync', description: 'Versions and the change feed, for services that keep plans in sync' },
        { name: 'health', description: 'Liveness and readiness' },
      ],
    },
    refResolver: {
      buildLocalReference: (json, _baseUri, _fragment, index) =>
        typeof json.$id === 'string' ? json.$id : `schema-${index}`,
    },
    transformObject: (documentObject) =>
      addExamples((documentObject as { openapiObject: OpenApi }).openapiObject) as never,
  });
  await app.register(swaggerUi, {
    routePrefix: '/docs',
    uiConfig: { docExpansion: 'list', deepLinking: true },
  });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
});
