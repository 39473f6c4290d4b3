// The project's conformance resources, served where their canonical URLs point (https://shared-care-plans.org/fhir/...).
import type { FastifyInstance } from 'fastify';
import { projectDefinitions } from '../../care-plans/definitions.js';
import { MEASURE_RESOURCES } from '../../measures/definitions.js';
import { ApiProblem } from '../problems.js';
import { problems } from './responses.js';

export default async function definitionRoutes(app: FastifyInstance) {
  app.get<{ Params: { type: 'StructureDefinition' | 'CodeSystem' | 'Measure'; id: string } }>(
    '/fhir/:type/:id',
    {
      schema: {
        tags: ['definitions'],
        operationId: 'readFhirDefinition',
        summary: "This project's FHIR definitions (extension StructureDefinitions, CodeSystems, Measures)",
        description:
          'E.g. /fhir/StructureDefinition/shared-decision, the extension that carries shared decisions on a CarePlan, ' +
          '/fhir/CodeSystem/care-team-role, or /fhir/Measure/goals-agreed-by-patient (the quality measures of GET /measures).',
        params: {
          type: 'object',
          required: ['type', 'id'],
          properties: {
            type: { type: 'string', enum: ['StructureDefinition', 'CodeSystem', 'Measure'] },
            id: { type: 'string', pattern: '^[A-Za-z0-9\\-.]{1,64}$' },
          },
        },
        response: {
          200: {
            description: 'The definition',
            content: { 'application/fhir+json': { schema: { $ref: 'FhirResource#' } } },
          },
          ...problems(400, 404),
        },
      },
    },
    async (request, reply) => {
      const key = `${request.params.type}/${request.params.id}`;
      const definition = projectDefinitions.get(key) ?? MEASURE_RESOURCES.get(key);
      if (!definition)
        throw new ApiProblem('not-found', `no ${request.params.type} "${request.params.id}" in this project`);
      return reply.type('application/fhir+json').send(definition);
    },
  );
}
