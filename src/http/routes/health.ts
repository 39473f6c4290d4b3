import type { FastifyInstance } from 'fastify';

export default async function healthRoutes(app: FastifyInstance) {
  app.get(
    '/health/live',
    {
      schema: {
        tags: ['health'],
        operationId: 'checkLive',
        summary: 'The process is up',
        response: {
          200: { type: 'object', properties: { status: { type: 'string' } } },
          503: { description: 'Shutting down', type: 'object', properties: { status: { type: 'string' } } },
        },
      },
    },
    async () => ({ status: 'live' }),
  );
  app.get(
    '/health/ready',
    {
      schema: {
        tags: ['health'],
        operationId: 'checkReady',
        summary: 'Ready to serve: the FHIR server answers',
        response: {
          200: { type: 'object', properties: { status: { type: 'string' } } },
          503: { type: 'object', properties: { status: { type: 'string' }, detail: { type: 'string' } } },
        },
      },
    },
    async (_request, reply) => {
      if (await app.fhir.ping()) return { status: 'ready' };
      return reply.code(503).send({ status: 'not-ready', detail: 'the FHIR server does not answer' });
    },
  );
}
