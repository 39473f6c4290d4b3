// $to-fhir and $from-fhir: the mapping, both ways, without touching the FHIR server.
import type { FastifyInstance } from 'fastify';
import type { SharedCarePlan } from '../../model/care-plan.js';
import { problems } from './responses.js';

export default async function operationRoutes(app: FastifyInstance) {
  app.post<{ Body: SharedCarePlan }>(
    '/care-plans/$to-fhir',
    {
      schema: {
        tags: ['mapping'],
        operationId: 'mapPlanToFhir',
        summary: 'Map a plan to its FHIR R4 transaction Bundle (nothing is pushed)',
        body: { $ref: 'SharedCarePlan#' },
        response: {
          200: {
            description: 'The transaction Bundle',
            content: { 'application/fhir+json': { schema: { $ref: 'FhirResource#' } } },
          },
          ...problems(400, 413, 415, 422, 500),
        },
      },
    },
    // Nothing is stored: the PUT entries' fullUrls name the plan's resources at the public base of the FHIR server
    // (FHIR_PUBLIC_BASE_URL, by default FHIR_BASE_URL). The embedded server's loopback address is never shown to a
    // caller (issue 12), so with it and no public base the PUT entries have no fullUrl.
    async (request, reply) =>
      reply
        .type('application/fhir+json')
        .send(app.carePlans.toFhir(request.body, { serverBase: app.config.fhirPublicBaseUrl })),
  );

  app.post<{ Body: unknown; Querystring: { carePlan?: string } }>(
    '/care-plans/$from-fhir',
    {
      schema: {
        tags: ['mapping'],
        operationId: 'mapFhirToPlan',
        summary: 'Map FHIR (a CarePlan with contained resources, or a Bundle) to a plan (nothing is pushed)',
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            carePlan: {
              type: 'string',
              maxLength: 1000,
              description: 'Which CarePlan of a Bundle holding several (id or fullUrl).',
            },
          },
        },
        body: { $ref: 'FhirResource#' },
        response: {
          200: {
            description:
              'The plan. `notTaken` lists every input resource besides the CarePlan that the plan does not hold, and why (absent when it took everything).',
            content: { 'application/json': { schema: { $ref: 'SharedCarePlan#' } } },
          },
          ...problems(400, 413, 415, 422),
        },
      },
    },
    async (request) => app.carePlans.fromFhir(request.body, request.query.carePlan),
  );
}
