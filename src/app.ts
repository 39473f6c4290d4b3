// buildApp(config): the Fastify application with its plugins and routes. server.ts runs it; tests build it too.
import { randomUUID } from 'node:crypto';
import { Ajv } from 'ajv';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyServerOptions } from 'fastify';
import { CarePlanService, CarePlanStore } from './care-plan/care-plan-service.js';
import { FHIR_FORMATS } from './care-plan/formats.js';
import type { Config } from './config.js';
import { FhirGateway } from './fhir/gateway.js';
import { warmUpValidators } from './fhir/validation/index.js';
import docs from './plugins/docs.js';
import errors from './plugins/errors.js';
import { carePlanSchemas } from './plugins/schemas.js';
import carePlanRoutes from './routes/care-plans.js';
import healthRoutes from './routes/health.js';
import operationRoutes from './routes/operations.js';

declare module 'fastify' {
  interface FastifyInstance {
    config: AppConfig;
    carePlans: CarePlanService;
    carePlanStore: CarePlanStore;
    fhir: FhirGateway;
  }
}

/** The configuration the app runs with: a FHIR server is always known by now (embedded or external). */
export type AppConfig = Config & { fhirBaseUrl: string };

/** Query strings and plan ids in paths can carry patient identifiers: logs get the path shape only. */
function redactUrl(url: string): string {
  const [path, query] = url.split('?');
  if (!query) return path;
  const names = query.split('&').map((pair) => `${pair.split('=')[0]}=[redacted]`);
  return `${path}?${names.join('&')}`;
}

export function loggerOptions(
  config: Pick<Config, 'logLevel' | 'logFormat'>,
): FastifyServerOptions['logger'] {
  return {
    level: config.logLevel,
    redact: {
      paths: ['req.headers.authorization', 'req.headers.cookie', '*.authorization', '*.token'],
      censor: '[redacted]',
    },
    serializers: {
      req: (req: { method: string; url: string; id: string }) => ({
        method: req.method,
        url: redactUrl(req.url),
        id: req.id,
      }),
      res: (res: { statusCode: number }) => ({ statusCode: res.statusCode }),
    },
    ...(config.logFormat === 'pretty'
      ? {
          transport: {
            target: 'pino-pretty',
            options: { translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname' },
          },
        }
      : {}),
  };
}

function bodyValidator(): Ajv {
  // Bodies: no coercion, unknown properties rejected (never stripped), every error reported.
  const ajv = new Ajv({
    allErrors: true,
    strict: false,
    coerceTypes: false,
    removeAdditional: false,
    useDefaults: false,
  });
  for (const [name, format] of Object.entries(FHIR_FORMATS)) ajv.addFormat(name, format);
  for (const schema of carePlanSchemas) ajv.addSchema(schema);
  return ajv;
}

function parameterValidator(): Ajv {
  const ajv = new Ajv({
    allErrors: true,
    strict: false,
    coerceTypes: 'array',
    removeAdditional: false,
    useDefaults: true,
  });
  for (const [name, format] of Object.entries(FHIR_FORMATS)) ajv.addFormat(name, format);
  return ajv;
}

export interface BuildOptions {
  /** A pino logger to use instead of one built from the configuration (tests, server.ts). */
  logger?: FastifyBaseLogger;
}

export async function buildApp(config: AppConfig, options: BuildOptions = {}): Promise<FastifyInstance> {
  const app = Fastify({
    ...(options.logger ? { loggerInstance: options.logger } : { logger: loggerOptions(config) }),
    bodyLimit: config.bodyLimitBytes,
    requestIdHeader: 'x-request-id',
    genReqId: () => randomUUID(),
    onProtoPoisoning: 'error',
    onConstructorPoisoning: 'error',
    return503OnClosing: true,
  });
  // Validators of the FHIR R4 schema: loaded before the app is ready, never on the request path.
  warmUpValidators();

  const bodies = bodyValidator();
  const parameters = parameterValidator();
  app.setValidatorCompiler(({ schema, httpPart }) =>
    httpPart === 'body' ? bodies.compile(schema) : parameters.compile(schema),
  );
  // Replies are plans and FHIR resources with open-ended parts (unmappedFhir): serialise them as they are.
  app.setSerializerCompiler(() => (data) => JSON.stringify(data));

  // Only JSON bodies: text/plain is refused with 415 rather than validated as a string.
  app.removeContentTypeParser('text/plain');
  const jsonParser = app.getDefaultJsonParser('error', 'error');
  app.addContentTypeParser(['application/fhir+json'], { parseAs: 'string' }, jsonParser);

  app.decorate('config', config);
  const gateway = new FhirGateway({
    baseUrl: config.fhirBaseUrl,
    timeoutMs: config.fhirTimeoutMs,
    maxRetries: config.fhirMaxRetries,
    authorization: config.fhirBearerToken ? async () => `Bearer ${config.fhirBearerToken}` : undefined,
  });
  app.decorate('fhir', gateway);
  const carePlans = new CarePlanService(gateway);
  app.decorate('carePlans', carePlans);
  const planSchema = bodies.getSchema('SharedCarePlan#');
  app.decorate(
    'carePlanStore',
    new CarePlanStore(carePlans, gateway, {
      settleMs: config.changeFeedSettleMs,
      checkSchema: (plan) =>
        planSchema?.(plan)
          ? []
          : (planSchema?.errors ?? []).map((e) => ({
              pointer: e.instancePath,
              detail: e.message ?? 'is invalid',
            })),
    }),
  );

  app.addHook('onSend', async (request, reply) => {
    reply.header('x-request-id', request.id);
  });

  await app.register(errors);
  for (const schema of carePlanSchemas) app.addSchema(schema);
  await app.register(docs);
  await app.register(healthRoutes);
  await app.register(carePlanRoutes);
  await app.register(operationRoutes);
  return app;
}
