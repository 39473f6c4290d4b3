// Phase 1, the framework floor: a bare Fastify route, no schema, no validation, no logging. It parses the
// JSON body and answers 201 with it. Env: PORT (required), HOST (default 127.0.0.1).
import Fastify from 'fastify';

const app = Fastify({ logger: false, bodyLimit: 10 * 1024 * 1024 });
app.post('/care-plans', async (request, reply) => reply.code(201).send(request.body));
app.post('/care-plans/$to-fhir', async (request, reply) => reply.code(201).send(request.body));
app.get('/health/ready', async () => ({ status: 'ready' }));

process.once('SIGTERM', () => app.close().then(() => process.exit(0)));
await app.listen({ host: process.env.HOST || '127.0.0.1', port: Number(process.env.PORT) });
