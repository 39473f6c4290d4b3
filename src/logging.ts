// Logging without protected health information. Care plans are PHI: no log line may carry a request or response
// body, a token, a patient's name or a patient identifier. Enforced here, by configuration, for every logger the
// process makes (the app's, and the embedded FHIR server's child logger):
// - requests are logged as method + route shape (/care-plans/:id): no path parameter (a caller may put anything
//   there), no query value, no path that matches no route; FHIR URLs as /fhir/CarePlan/:id;
// - errors are logged as type, message, code and stack only: never their attached data (FHIR OperationOutcomes,
//   validation details, a raw HTTP packet with its Authorization header);
// - authorization/cookie headers and any `token` are censored should they ever be logged.
import { type DestinationStream, type Logger, type LoggerOptions, pino } from 'pino';
import { type Config, loadConfig } from './config.js';

/** A URL with every query value and every resource id in the path (Type/<id>) replaced. */
export function redactUrl(url: string): string {
  const [rawPath, query] = url.split('?', 2);
  const path = rawPath.replace(/(\/[A-Z][A-Za-z]+)\/[^/]+/g, '$1/:id');
  if (!query) return path;
  const names = query.split('&').map((pair) => `${pair.split('=')[0].slice(0, 40)}=[redacted]`);
  return `${path}?${names.join('&')}`;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** 16 to 64 hex digits with at least one letter: an all-digit value could be a card, phone or record number. */
const OPAQUE_HEX = /^(?=[0-9]*[a-f])[0-9a-f]{16,64}$/i;

/**
 * A caller's X-Request-Id, when it is one we may echo and log: a UUID (any version), or a long opaque hex
 * token. Anything else (e.g. digits and dashes such as an SSN 078-05-1120 or a phone number) is dropped and
 * the caller gets a generated id instead.
 */
export function requestIdFrom(header: string | string[] | undefined): string | undefined {
  return typeof header === 'string' && (UUID.test(header) || OPAQUE_HEX.test(header)) ? header : undefined;
}

interface LoggedRequest {
  method?: string;
  url?: string;
  id?: string;
  routeOptions?: { url?: string };
}

/** The request as logged: the route's shape (the audit line names the plan), never a path that matches no route. */
export function requestUrl(req: LoggedRequest): string {
  const route = req.routeOptions?.url;
  const query = req.url?.includes('?') ? redactUrl(`?${req.url.split('?', 2)[1]}`) : '';
  return `${route ?? '[no route]'}${query}`;
}

/** Errors without their attached data: type, message, code, status and stack. */
export function errorSerializer(error: unknown): unknown {
  if (!error || typeof error !== 'object') return error;
  const e = error as Error & { code?: unknown; statusCode?: unknown; status?: unknown; kind?: unknown };
  return {
    type: e.constructor?.name ?? 'Error',
    message: typeof e.message === 'string' ? e.message.slice(0, 500) : undefined,
    ...(typeof e.code === 'string' ? { code: e.code } : {}),
    ...(typeof e.statusCode === 'number' ? { statusCode: e.statusCode } : {}),
    ...(typeof e.status === 'number' ? { status: e.status } : {}),
    ...(typeof e.kind === 'string' ? { kind: e.kind } : {}),
    ...(typeof e.stack === 'string' ? { stack: e.stack.split('\n').slice(0, 12).join('\n') } : {}),
  };
}

export const serializers = {
  req: (req: LoggedRequest) => ({ method: req.method, url: requestUrl(req), id: req.id }),
  res: (res: { statusCode: number }) => ({ statusCode: res.statusCode }),
  err: errorSerializer,
  error: errorSerializer,
  /** Other components (the embedded FHIR server) log a raw `url`. */
  url: (url: unknown) => (typeof url === 'string' ? redactUrl(url) : url),
};

export function loggerOptions(config: Pick<Config, 'logLevel' | 'logFormat'>): LoggerOptions {
  return {
    level: config.logLevel,
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: {
      paths: [
        'req.headers.authorization',
        'req.headers.cookie',
        'headers.authorization',
        '*.authorization',
        'token',
        '*.token',
        'access_token',
        '*.access_token',
      ],
      censor: '[redacted]',
    },
    serializers,
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

/** The embedded FHIR server's logger: a child that redacts the URLs it logs. */
export function embeddedFhirLogger(logger: Logger): Logger {
  return logger.child({ component: 'embedded-fhir' }, { serializers });
}

/**
 * The logger of the standalone embedded FHIR server (npm run fhir:embedded): LOG_LEVEL and LOG_FORMAT as for the
 * service (a bad value throws a ConfigError naming it), with the same serializers and redaction.
 */
export function standaloneFhirLogger(
  env: Record<string, string | undefined>,
  destination?: DestinationStream,
): Logger {
  const { logLevel, logFormat } = loadConfig({ LOG_LEVEL: env.LOG_LEVEL, LOG_FORMAT: env.LOG_FORMAT });
  const options = { ...loggerOptions({ logLevel, logFormat }), name: 'embedded-fhir-server' };
  return destination ? pino(options, destination) : pino(options);
}
