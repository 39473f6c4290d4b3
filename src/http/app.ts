// buildApp(config): the Fastify application, its plugins and routes registered in order. server.ts runs it; tests
// build it too. The pieces live beside it: validators.ts, services.ts, client-errors.ts, plugins/, routes/.
import { randomUUID } from 'node:crypto';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyReply,
  type FastifyServerOptions,
  LogController,
} from 'fastify';
import type { AppConfig, Config } from '../config.js';
import { warmUpValidators } from '../fhir/validation/index.js';
import { loggerOptions as pinoOptions, requestIdFrom } from '../logging.js';
import { clientErrorHandler } from './client-errors.js';
import audit from './plugins/audit.js';
import auth from './plugins/auth.js';
import docs from './plugins/docs.js';
import errors from './plugins/errors.js';
import jsonBody, { MAX_JSON_DEPTH } from './plugins/json-body.js';
import security from './plugins/security.js';
import { ApiProblem } from './problems.js';
import carePlanRoutes from './routes/care-plans.js';
import definitionRoutes from './routes/definitions.js';
import healthRoutes from './routes/health.js';
import jwksRoutes from './routes/jwks.js';
import measureRoutes from './routes/measures.js';
import operationRoutes from './routes/operations.js';
import participationRoutes from './routes/participation.js';
import subscriptionRoutes, { subscriptionSchemas } from './routes/subscriptions.js';
import { carePlanSchemas } from './schemas.js';
import { decorateServices } from './services.js';
import { loadPrecompiledValidators, routeValidators, type ValidatorOptions } from './validators.js';

/** Logger options (see logging.ts: no PHI in any log line). */
export function loggerOptions(
  config: Pick<Config, 'logLevel' | 'logFormat'>,
): FastifyServerOptions['logger'] {
  return pinoOptions(config) as FastifyServerOptions['logger'];
}

export interface BuildOptions {
  /** A pino logger to use instead of one built from the configuration (tests, server.ts). */
  logger?: FastifyBaseLogger;
  /** The routes' validators: by default the generated ones of the built tree (validators.ts). */
  validators?: ValidatorOptions;
}

export async function buildApp(config: AppConfig, options: BuildOptions = {}): Promise<FastifyInstance> {
  const trusted = config.trustProxy;
  const validators = routeValidators(
    options.validators ?? { precompiled: await loadPrecompiledValidators() },
  );
  const app = Fastify({
    ...(options.logger ? { loggerInstance: options.logger } : { logger: loggerOptions(config) }),
    bodyLimit: config.bodyLimitBytes,
    // Deadlines for slow or silent clients. Node checks the request and headers timeouts only every
    // connectionsCheckingInterval (30 s by default), so that is set to a fraction of the shortest of them.
    requestTimeout: config.requestTimeoutMs,
    keepAliveTimeout: config.keepAliveTimeoutMs,
    http: {
      headersTimeout: config.headersTimeoutMs,
      connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(config.headersTimeoutMs / 4))),
    },
    // One log line per request (written when it completes, below) instead of Fastify's two.
    logController: new LogController({ disableRequestLogging: true }),
    // A caller's X-Request-Id is kept (echoed, logged on every line, passed on to the FHIR server) only when it
    // cannot carry PHI: see requestIdFrom.
    requestIdHeader: false,
    genReqId: (req) => requestIdFrom(req.headers['x-request-id']) ?? randomUUID(),
    clientErrorHandler,
    // A URL the router refuses (bad encoding, a path parameter over 100 characters) is a problem too.
    frameworkErrors: (error, _request, reply) => {
      const tooLong = error.code === 'FST_ERR_MAX_PARAM_LENGTH';
      const problem = new ApiProblem(
        tooLong ? 'uri-too-long' : 'bad-request',
        tooLong ? 'a path segment is longer than any id of this API' : 'the URL is not well-formed',
      );
      (reply as FastifyReply).code(problem.status).type('application/problem+json').send(problem.toProblem());
    },
    // A hop count trusts that many proxies in front of the service (what Fastify does with a number).
    trustProxy: typeof trusted === 'number' ? (_address: string, hop: number) => hop < trusted : trusted,
    onProtoPoisoning: 'error',
    onConstructorPoisoning: 'error',
    return503OnClosing: true,
    // The service's own compilers (validators.ts; replies are plans and FHIR resources with open-ended parts,
    // unmappedFhir: serialised as they are). Given here, Fastify does not load its default ones (AJV and
    // fast-json-stringify: about 20 ms of start-up).
    // (Fastify's types want its AJV compiler's signature here; the compiler is its FastifySchemaCompiler.)
    schemaController: {
      compilersFactory: {
        buildValidator: (() => validators.compiler) as never,
        buildSerializer: () => () => (data: unknown) => JSON.stringify(data),
      },
    },
  });
  // Validators of the FHIR R4 schema: loaded before the app is ready, never on the request path.
  warmUpValidators();

  // Only UTF-8 JSON, uncompressed, within the shape limits (plugins/json-body.ts).
  await app.register(jsonBody, {
    maxValues: config.bodyMaxJsonValues,
    maxArrayItems: config.bodyMaxArrayItems,
    maxStringLength: config.bodyMaxStringLength,
    maxDepth: MAX_JSON_DEPTH,
  });

  decorateServices(app, config, validators.checkSchema);

  app.addHook('onResponse', async (request, reply) => {
    request.log.info(
      { req: request, res: reply, responseTime: Math.round(reply.elapsedTime * 10) / 10 },
      'request completed',
    );
  });

  app.addHook('onSend', async (request, reply) => {
    reply.header('x-request-id', request.id);
  });

  await app.register(errors);
  await app.register(security);
  await app.register(auth);
  await app.register(audit);
  for (const schema of carePlanSchemas) app.addSchema(schema);
  for (const schema of subscriptionSchemas) app.addSchema(schema);
  await app.register(docs);
  await app.register(healthRoutes);
  await app.register(carePlanRoutes);
  await app.register(participationRoutes);
  await app.register(operationRoutes);
  await app.register(definitionRoutes);
  await app.register(measureRoutes);
  await app.register(jwksRoutes);
  await app.register(subscriptionRoutes);
  return app;
}
