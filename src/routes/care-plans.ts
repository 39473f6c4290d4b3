// /care-plans: thin routes; the work happens in CarePlanService.
import type { FastifyInstance } from 'fastify';
import type { SharedCarePlan } from '../care-plan/care-plan.js';
import { planResourcesBundle } from '../care-plan/care-plan-service.js';
import { planIdParams, problems } from './responses.js';

const etagHeader = { ETag: { schema: { type: 'string' }, description: 'The plan version, W/"<version>".' } };
const planResponse = (description: string, headers: Record<string, unknown> = etagHeader) => ({
  description,
  headers,
  content: { 'application/json': { schema: { $ref: 'SharedCarePlan#' } } },
});

export default async function carePlanRoutes(app: FastifyInstance) {
  app.post<{ Body: SharedCarePlan; Headers: { 'idempotency-key'?: string } }>(
    '/care-plans',
    {
      schema: {
        tags: ['care plans'],
        summary: 'Create a shared-decision care plan',
        description:
          'Validates the plan, maps it to a FHIR R4 transaction Bundle (CarePlan, Goals, CareTeam, Observations, Conditions), ' +
          'validates every resource and pushes the Bundle to the FHIR server in one transaction. ' +
          'With an Idempotency-Key, a retry with the same body returns the same plan and creates nothing.',
        headers: {
          type: 'object',
          properties: {
            'idempotency-key': {
              type: 'string',
              minLength: 1,
              maxLength: 200,
              description:
                'Makes retries safe: the same key and body return the same plan; another body gets 422.',
            },
          },
        },
        body: { $ref: 'SharedCarePlan#' },
        response: {
          201: planResponse('Created (or, for a replayed Idempotency-Key, the plan created first).', {
            ...etagHeader,
            Location: { schema: { type: 'string' }, description: '/care-plans/{id}' },
          }),
          ...problems(400, 413, 415, 422, 429, 500, 502, 503, 504),
        },
      },
    },
    async (request, reply) => {
      const stored = await app.carePlans.create(request.body, {
        requestId: request.id,
        idempotencyKey: request.headers['idempotency-key'],
      });
      if (stored.replayed) reply.header('idempotent-replayed', 'true');
      return reply
        .code(201)
        .header('location', `/care-plans/${stored.plan.id}`)
        .header('etag', `W/"${stored.version}"`)
        .send(stored.plan);
    },
  );

  app.get<{ Params: { id: string } }>(
    '/care-plans/:id',
    {
      schema: {
        tags: ['care plans'],
        summary: 'Read a care plan',
        description:
          'Reads the CarePlan and the resources it references from the FHIR server and returns the plan. ' +
          'With Accept: application/fhir+json, returns the FHIR resources as a Bundle instead.',
        params: planIdParams,
        response: {
          200: {
            description: 'The plan',
            headers: etagHeader,
            content: {
              'application/json': { schema: { $ref: 'SharedCarePlan#' } },
              'application/fhir+json': { schema: { $ref: 'FhirResource#' } },
            },
          },
          ...problems(404, 406, 502, 503, 504),
        },
      },
    },
    async (request, reply) => {
      const stored = await app.carePlans.read(request.params.id, { requestId: request.id });
      reply.header('etag', `W/"${stored.version}"`);
      const wanted = reply.request.headers.accept ?? '*/*';
      if (/application\/fhir\+json/.test(wanted)) {
        return reply.type('application/fhir+json').send(planResourcesBundle(stored, app.fhir.baseUrl));
      }
      return reply.type('application/json').send(stored.plan);
    },
  );
}
