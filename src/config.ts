// Environment -> typed, validated configuration. Read once at start-up; a bad value stops the process with a
// message naming the variable.

export interface Config {
  host: string;
  port: number;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  logFormat: 'json' | 'pretty';
  /** External FHIR server base URL; undefined = start the embedded in-memory FHIR server. */
  fhirBaseUrl?: string;
  fhirTimeoutMs: number;
  fhirMaxRetries: number;
  fhirAuth: 'none' | 'bearer';
  fhirBearerToken?: string;
  bodyLimitBytes: number;
  /** The change feed holds back changes younger than this, so a slow commit is never skipped. */
  changeFeedSettleMs: number;
  /** Where the embedded FHIR server listens (port 0 = any free port). */
  embeddedFhirPort: number;
}

export class ConfigError extends Error {}

type Env = Record<string, string | undefined>;

function oneOf<T extends string>(env: Env, name: string, allowed: readonly T[], fallback: T): T {
  const value = env[name];
  if (value === undefined || value === '') return fallback;
  if (!(allowed as readonly string[]).includes(value)) {
    throw new ConfigError(`${name} must be one of ${allowed.join(', ')} (got "${value}")`);
  }
  return value as T;
}

function integer(env: Env, name: string, fallback: number, min: number, max: number): number {
  const value = env[name];
  if (value === undefined || value === '') return fallback;
  if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) {
    throw new ConfigError(`${name} must be an integer from ${min} to ${max} (got "${value}")`);
  }
  return Number(value);
}

function url(env: Env, name: string): string | undefined {
  const value = env[name];
  if (value === undefined || value === '') return undefined;
  let parsed: URL;
  try {
    parsed = new URL(value);
  } catch {
    throw new ConfigError(`${name} must be an absolute http(s) URL (got "${value}")`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new ConfigError(`${name} must be an http(s) URL (got "${value}")`);
  }
  return value.replace(/\/+$/, '');
}

export function loadConfig(env: Env = process.env): Config {
  const fhirAuth = oneOf(env, 'FHIR_AUTH', ['none', 'bearer'] as const, 'none');
  const fhirBearerToken = env.FHIR_BEARER_TOKEN || undefined;
  if (fhirAuth === 'bearer' && !fhirBearerToken) {
    throw new ConfigError('FHIR_AUTH=bearer needs FHIR_BEARER_TOKEN');
  }
  const host = env.HOST || '127.0.0.1';
  if (!/^[A-Za-z0-9.:\-[\]]+$/.test(host))
    throw new ConfigError(`HOST is not a host name or address (got "${host}")`);
  return {
    host,
    port: integer(env, 'PORT', 3000, 0, 65535),
    logLevel: oneOf(
      env,
      'LOG_LEVEL',
      ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const,
      'info',
    ),
    logFormat: oneOf(env, 'LOG_FORMAT', ['json', 'pretty'] as const, 'json'),
    fhirBaseUrl: url(env, 'FHIR_BASE_URL'),
    fhirTimeoutMs: integer(env, 'FHIR_TIMEOUT_MS', 10_000, 100, 300_000),
    fhirMaxRetries: integer(env, 'FHIR_MAX_RETRIES', 3, 0, 10),
    fhirAuth,
    fhirBearerToken,
    bodyLimitBytes: integer(env, 'BODY_LIMIT_BYTES', 1_048_576, 1024, 50 * 1_048_576),
    changeFeedSettleMs: integer(env, 'CHANGE_FEED_SETTLE_MS', 1000, 0, 600_000),
    embeddedFhirPort: integer(env, 'EMBEDDED_FHIR_PORT', 0, 0, 65535),
  };
}
