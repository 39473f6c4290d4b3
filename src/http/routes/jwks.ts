// The service's public key set (SMART Backend Services registration): an authorization server that registers this
// service as a backend client can fetch the key its client assertions are signed with from here.
import type { FastifyInstance } from 'fastify';
import { publicJwks } from '../../fhir/client/smart-backend-auth.js';
import { ApiProblem } from '../problems.js';
import { problems } from './responses.js';

export const JWKS_PATH = '/.well-known/jwks.json';

export default async function jwksRoutes(app: FastifyInstance) {
  const smart = app.config.fhirAuth === 'smart-backend' ? app.config.fhirSmart : undefined;
  const jwks = smart ? publicJwks(smart) : undefined;
  app.get(
    JWKS_PATH,
    {
      schema: {
        tags: ['definitions'],
        operationId: 'readJwks',
        summary: "The public key of the service's SMART Backend Services client (a JWK Set)",
        description:
          "Register this URL (or its content) with the FHIR server's authorization server: it verifies the client " +
          'assertions this service signs (FHIR_AUTH=smart-backend). 404 when the service uses no such key.',
        response: {
          200: {
            description: 'The JWK Set: one public key, with its kid and alg',
            content: {
              'application/jwk-set+json': {
                schema: {
                  type: 'object',
                  required: ['keys'],
                  properties: { keys: { type: 'array', items: { type: 'object' } } },
                },
              },
            },
          },
          ...problems(404),
        },
      },
    },
    async (_request, reply) => {
      if (!jwks)
        throw new ApiProblem('not-found', 'this service signs nothing: FHIR_AUTH is not smart-backend');
      return reply.type('application/jwk-set+json').send(jwks);
    },
  );
}
