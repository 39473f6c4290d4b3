// buildApp(config): the Fastify application with its plugins and routes. server.ts runs it; tests build it too.
import { randomUUID } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import { Ajv, type ErrorObject } from 'ajv';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyReply,
  type FastifyServerOptions,
  LogController,
} from 'fastify';
import type { SharedCarePlan } from './care-plan/care-plan.js';
import { CarePlanService, CarePlanStore } from './care-plan/care-plan-service.js';
import { FHIR_FORMATS } from './care-plan/formats.js';
import type { Config } from './config.js';
import { ApiProblem, PROBLEM_BASE, PROBLEM_TYPES, type ProblemType } from './errors.js';
import { FhirGateway } from './fhir/gateway.js';
import { SmartBackendAuth } from './fhir/smart-backend-auth.js';
import { linearErrors, withErrorLimit } from './fhir/validation/ajv-code.js';
import { warmUpValidators } from './fhir/validation/index.js';
import { loggerOptions as pinoOptions, requestIdFrom } from './logging.js';
import auth from './plugins/auth.js';
import docs from './plugins/docs.js';
import errors from './plugins/errors.js';
import jsonBody, { MAX_JSON_DEPTH } from './plugins/json-body.js';
import { carePlanSchemas, examplePlan } from './plugins/schemas.js';
import security from './plugins/security.js';
import carePlanRoutes from './routes/care-plans.js';
import definitionRoutes from './routes/definitions.js';
import healthRoutes from './routes/health.js';
import jwksRoutes from './routes/jwks.js';
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

/** Logger options (see logging.ts: no PHI in any log line). */
export function loggerOptions(
  config: Pick<Config, 'logLevel' | 'logFormat'>,
): FastifyServerOptions['logger'] {
  return pinoOptions(config) as FastifyServerOptions['logger'];
}

/**
 * Requests Node's HTTP parser refuses before Fastify sees them (a request line or headers over the size limit,
 * malformed HTTP, a timeout) are answered as problems too, and logged without their raw bytes.
 */
function clientErrorHandler(this: FastifyInstance, error: Error & { code?: string }, socket: Duplex): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  const [problemType, detail]: [ProblemType, string] =
    error.code === 'HPE_HEADER_OVERFLOW'
      ? ['headers-too-large', 'the request line and headers together exceed the size limit (16 KiB)']
      : ['bad-request', 'the request is not well-formed HTTP'];
  const status = error.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : PROBLEM_TYPES[problemType].status;
  this.log.debug({ code: error.code, status }, 'client error');
  if (socket.writable) {
    const body = JSON.stringify({
      type: `${PROBLEM_BASE}/${problemType}`,
      title: PROBLEM_TYPES[problemType].title,
      status,
      detail: status === 408 ? 'the request took too long to arrive' : detail,
    });
    socket.write(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/problem+json\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy();
}

// The body checks live in plugins/json-body.ts; re-exported for the tests that use them from here.
export { MAX_JSON_DEPTH } from './plugins/json-body.js';

function bodyValidator(allErrors: boolean): Ajv {
  // Bodies: no coercion, unknown properties rejected (never stripped), every error reported (up to a limit).
  // Errors are appended, not copied per reference: allErrors stays linear in the body's size (ajv-code.ts).
  const ajv = new Ajv({
    allErrors,
    strict: false,
    coerceTypes: false,
    removeAdditional: false,
    useDefaults: false,
    code: { process: linearErrors },
  });
  for (const [name, format] of Object.entries(FHIR_FORMATS)) ajv.addFormat(name, format);
  for (const schema of carePlanSchemas) ajv.addSchema(schema);
  return ajv;
}

/** A body's allErrors run stops after this many errors (at most MAX_LISTED_ERRORS are listed anyway). */
const BODY_ERROR_LIMIT = 1000;

/**
 * Body validation: a first-error validator decides; only an invalid body is run again with every error, stopped
 * after BODY_ERROR_LIMIT (a body can have an error per JSON value). A stopped run ends with an `errorLimit` error.
 */
function boundedBodyValidator(fast: Ajv, all: Ajv, schema: object) {
  const decide = fast.compile(schema);
  const report = all.compile(schema);
  const validate = (data: unknown): boolean => {
    if (decide(data)) return true;
    const run = withErrorLimit(BODY_ERROR_LIMIT, report, data);
    if (run.valid) {
      validate.errors = decide.errors ?? [];
      return false;
    }
    validate.errors = run.stopped
      ? [
          ...run.errors,
          { instancePath: '', schemaPath: '', keyword: 'errorLimit', params: { limit: BODY_ERROR_LIMIT } },
        ]
      : run.errors;
    return false;
  };
  validate.errors = [] as ErrorObject[];
  return validate;
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

/** How long start-up spends running the mapping before the first request (see warmUpMapping). */
const MAPPING_WARM_UP_MS = 100;

/**
 * Maps and validates the documented example plan for MAPPING_WARM_UP_MS before the app is ready, so that V8 has
 * optimised the mapping and the validators before the first request. Measured (bench/README.md): without it, on a
 * stream of similar plans, V8 can settle on code that maps and validates a medium plan about 1.7x slower.
 */
function warmUpMapping(carePlans: CarePlanService): void {
  const until = performance.now() + MAPPING_WARM_UP_MS;
  while (performance.now() < until) JSON.stringify(carePlans.toFhir(examplePlan as SharedCarePlan));
}

export interface BuildOptions {
  /** A pino logger to use instead of one built from the configuration (tests, server.ts). */
  logger?: FastifyBaseLogger;
}

export async function buildApp(config: AppConfig, options: BuildOptions = {}): Promise<FastifyInstance> {
  const trusted = config.trustProxy;
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
  });
  // Validators of the FHIR R4 schema: loaded before the app is ready, never on the request path.
  warmUpValidators();

  const bodies = bodyValidator(true);
  const firstErrorBodies = bodyValidator(false);
  const parameters = parameterValidator();
  app.setValidatorCompiler(({ schema, httpPart }) =>
    httpPart === 'body' ? boundedBodyValidator(firstErrorBodies, bodies, schema) : parameters.compile(schema),
  );
  // Replies are plans and FHIR resources with open-ended parts (unmappedFhir): serialise them as they are.
  app.setSerializerCompiler(() => (data) => JSON.stringify(data));

  // Only UTF-8 JSON, uncompressed, within the shape limits (plugins/json-body.ts).
  await app.register(jsonBody, {
    maxValues: config.bodyMaxJsonValues,
    maxArrayItems: config.bodyMaxArrayItems,
    maxStringLength: config.bodyMaxStringLength,
    maxDepth: MAX_JSON_DEPTH,
  });

  app.decorate('config', config);
  const smart =
    config.fhirAuth === 'smart-backend' && config.fhirSmart
      ? new SmartBackendAuth({ ...config.fhirSmart, timeoutMs: config.fhirTimeoutMs })
      : undefined;
  const bearer = config.fhirAuth === 'bearer' ? config.fhirBearerToken : undefined;
  const gateway = new FhirGateway({
    baseUrl: config.fhirBaseUrl,
    timeoutMs: config.fhirTimeoutMs,
    maxRetries: config.fhirMaxRetries,
    authorization: smart ? () => smart.authorization() : bearer ? async () => `Bearer ${bearer}` : undefined,
    onUnauthorized: smart ? (authorization) => smart.invalidate(authorization) : undefined,
  });
  app.decorate('fhir', gateway);
  const carePlans = new CarePlanService(gateway, undefined, config.usCoreVersion);
  app.decorate('carePlans', carePlans);
  warmUpMapping(carePlans);
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
  for (const schema of carePlanSchemas) app.addSchema(schema);
  await app.register(docs);
  await app.register(healthRoutes);
  await app.register(carePlanRoutes);
  await app.register(operationRoutes);
  await app.register(definitionRoutes);
  await app.register(jwksRoutes);
  return app;
}
