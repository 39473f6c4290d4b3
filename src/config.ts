// Environment -> typed, validated configuration. Read once at start-up; a bad value stops the process with a
// message naming the variable (never echoing a secret).

import { createPrivateKey, type KeyObject, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';

/** SMART Backend Services (outbound): client_credentials with a private_key_jwt client assertion. */
export interface SmartBackendConfig {
  tokenUrl: string;
  clientId: string;
  /** The signing key (a KeyObject: it never prints or serialises its secret). */
  privateKey: KeyObject;
  keyId: string;
  scope: string;
  algorithm: 'RS384' | 'ES384';
}

export interface Config {
  host: string;
  port: number;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  logFormat: 'json' | 'pretty';
  /** External FHIR server base URL; undefined = start the embedded in-memory FHIR server. */
  fhirBaseUrl?: string;
  fhirTimeoutMs: number;
  fhirMaxRetries: number;
  fhirAuth: 'none' | 'bearer' | 'smart-backend';
  fhirBearerToken?: string;
  fhirSmart?: SmartBackendConfig;
  /** Inbound authentication: `jwt` (Bearer JWT checked against a JWKS) or `none` (anyone may call). */
  authMode: 'jwt' | 'none';
  /** True when `none` was chosen by default (embedded FHIR server, nothing configured): start-up warns loudly. */
  authModeDefaulted: boolean;
  authJwksUrl?: string;
  /** Accepted `iss` values (AUTH_ISSUER, comma-separated). */
  authIssuer: string[];
  /** Accepted `aud` values (AUTH_AUDIENCE, comma-separated): a token must name one of them. */
  authAudience: string[];
  authClockToleranceSeconds: number;
  /**
   * Which reverse proxies may set X-Forwarded-For (the client's address, which the rate limit counts):
   * false = none (the socket's address is the client), a hop count, or the proxies' addresses/CIDRs.
   */
  trustProxy: false | number | string[];
  /** Requests per client (token client id, else IP address) per window; 0 = no rate limit. */
  rateLimitMax: number;
  rateLimitWindowMs: number;
  bodyLimitBytes: number;
  /** Most JSON values in one request body (413 past it): bounds the work of validating it. */
  bodyMaxJsonValues: number;
  /** Most items in one array, or members in one object, of a request body (413 past it). */
  bodyMaxArrayItems: number;
  /** Longest string in a request body, in characters of its JSON text (413 past it). */
  bodyMaxStringLength: number;
  /** The change feed holds back changes younger than this, so a slow commit is never skipped. */
  changeFeedSettleMs: number;
  /** Where the embedded FHIR server listens (port 0 = any free port). */
  embeddedFhirPort: number;
  /**
   * How much V8 lets the old generation grow past the live heap before the next full collection, in percent
   * (V8's --heap-growing-percent); 0 = V8's own heuristic. See server.ts.
   */
  heapGrowthPercent: number;
  /** Inbound HTTP: the whole request (headers and body) must arrive within this (ms). */
  requestTimeoutMs: number;
  /** Inbound HTTP: the request line and headers must arrive within this (ms). */
  headersTimeoutMs: number;
  /** Inbound HTTP: an idle keep-alive connection is closed after this (ms). */
  keepAliveTimeoutMs: number;
  /**
   * The FHIR server's base URL as API callers may see it (`fullUrl`s of FHIR answers); undefined with the embedded
   * server, whose loopback address means nothing to a caller: its answers then carry no fullUrl.
   */
  fhirPublicBaseUrl?: string;
  /** Webhook subscriptions (src/subscriptions/): delivery settings, validated here. */
  webhooks: WebhookConfig;
  /** The US Core version of every profile the service claims (US_CORE_VERSION): 6.1.0 (default) or 7.0.0. */
  usCoreVersion: '6.1.0' | '7.0.0';
}

export interface WebhookConfig {
  /**
   * AES-256-GCM key for the subscriptions' secrets at rest (WEBHOOK_SECRET_KEY, 32 bytes as base64 or hex).
   * Undefined with an external FHIR server and no key: subscriptions are switched off (a restart would lose them).
   */
  secretKey?: Buffer;
  /** Hosts that may be plain http or resolve to private, loopback or link-local addresses. */
  allowedHosts: string[];
  timeoutMs: number;
  retryMinMs: number;
  retryMaxMs: number;
  /** How long an event is retried before the subscription turns `error`. */
  retryForMs: number;
  pollMs: number;
  leaseMs: number;
  maxSubscriptions: number;
  /** Versions or Subscriptions asked for per page of the FHIR server; every page is read (`next` links). */
  pageSize: number;
}

/** The configuration the app runs with: a FHIR server is always known by now (embedded or external). */
export type AppConfig = Config & { fhirBaseUrl: string };

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

/**
 * TRUST_PROXY: unset or `false`, a hop count (1-10), or a comma-separated list of proxy addresses or CIDRs.
 * `true` (trust whoever connects) is refused: any caller could then choose the address it is rate-limited by.
 */
function trustProxy(env: Env): false | number | string[] {
  const value = env.TRUST_PROXY?.trim();
  if (!value || value === 'false') return false;
  if (/^\d+$/.test(value)) return integer(env, 'TRUST_PROXY', 0, 1, 10);
  const proxies = list(env, 'TRUST_PROXY');
  for (const proxy of proxies) {
    const [address, bits, extra] = proxy.split('/');
    const family = isIP(address);
    const maxBits = family === 4 ? 32 : 128;
    const badBits = bits !== undefined && (!/^\d{1,3}$/.test(bits) || Number(bits) > maxBits);
    if (family === 0 || badBits || extra !== undefined) {
      throw new ConfigError(
        `TRUST_PROXY must be false, a hop count (1-10) or a comma-separated list of proxy addresses or CIDRs (got "${proxy}")`,
      );
    }
  }
  return proxies;
}

function list(env: Env, name: string): string[] {
  return (env[name] ?? '')
    .split(',')
    .map((item) => item.trim())
    .filter(Boolean);
}

const AUTH_VARIABLES = ['AUTH_JWKS_URL', 'AUTH_ISSUER', 'AUTH_AUDIENCE'] as const;

/**
 * Inbound authentication. Explicit AUTH_MODE wins. Without it: any AUTH_* setting means `jwt`; nothing configured
 * means `none` only for the embedded FHIR server (a throwaway in-memory store): pointed at a real FHIR server
 * (FHIR_BASE_URL), the service refuses to start rather than serve patient data to anyone.
 */
function authConfig(env: Env) {
  const explicit = env.AUTH_MODE ? oneOf(env, 'AUTH_MODE', ['jwt', 'none'] as const, 'none') : undefined;
  const configured = AUTH_VARIABLES.some((name) => env[name]);
  let authMode: 'jwt' | 'none';
  if (explicit) authMode = explicit;
  else if (configured) authMode = 'jwt';
  else if (env.FHIR_BASE_URL) {
    throw new ConfigError(
      'FHIR_BASE_URL names a real FHIR server but no authentication is configured: set AUTH_MODE=jwt with ' +
        'AUTH_JWKS_URL, AUTH_ISSUER and AUTH_AUDIENCE, or AUTH_MODE=none to let anyone call the API on purpose',
    );
  } else authMode = 'none';
  const authJwksUrl = url(env, 'AUTH_JWKS_URL');
  const authIssuer = list(env, 'AUTH_ISSUER');
  const authAudience = list(env, 'AUTH_AUDIENCE');
  if (authMode === 'jwt') {
    const missing = AUTH_VARIABLES.filter((name) => !env[name]);
    if (missing.length) throw new ConfigError(`AUTH_MODE=jwt needs ${missing.join(', ')}`);
  }
  return {
    authMode,
    authModeDefaulted: !explicit && authMode === 'none',
    authJwksUrl,
    authIssuer,
    authAudience,
    authClockToleranceSeconds: integer(env, 'AUTH_CLOCK_TOLERANCE_S', 30, 0, 300),
  };
}

/** FHIR_SMART_PRIVATE_KEY: PEM text (\n escapes allowed), a JWK as JSON, or the path of a file holding either. */
function privateKey(value: string): KeyObject {
  let text = value.trim();
  if (!text.startsWith('-----BEGIN') && !text.startsWith('{')) {
    try {
      text = readFileSync(text, 'utf8').trim();
    } catch {
      throw new ConfigError('FHIR_SMART_PRIVATE_KEY is neither a PEM key, a JWK, nor a readable file');
    }
  }
  try {
    if (text.startsWith('{')) return createPrivateKey({ key: JSON.parse(text), format: 'jwk' });
    return createPrivateKey(text.replace(/\\n/g, '\n'));
  } catch {
    throw new ConfigError('FHIR_SMART_PRIVATE_KEY is not a private key this service can read (PEM or JWK)');
  }
}

function smartConfig(env: Env): SmartBackendConfig {
  const missing = [
    'FHIR_SMART_TOKEN_URL',
    'FHIR_SMART_CLIENT_ID',
    'FHIR_SMART_PRIVATE_KEY',
    'FHIR_SMART_KEY_ID',
  ].filter((name) => !env[name]);
  if (missing.length) throw new ConfigError(`FHIR_AUTH=smart-backend needs ${missing.join(', ')}`);
  const key = privateKey(env.FHIR_SMART_PRIVATE_KEY as string);
  // SMART Backend Services: RS384 or ES384; the key decides which, unless FHIR_SMART_ALG says so.
  const keyAlgorithm =
    key.asymmetricKeyType === 'rsa'
      ? 'RS384'
      : key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'secp384r1'
        ? 'ES384'
        : undefined;
  if (!keyAlgorithm) {
    throw new ConfigError('FHIR_SMART_PRIVATE_KEY must be an RSA key (RS384) or an EC P-384 key (ES384)');
  }
  const algorithm = oneOf(env, 'FHIR_SMART_ALG', ['RS384', 'ES384'] as const, keyAlgorithm);
  if (algorithm !== keyAlgorithm) {
    throw new ConfigError(`FHIR_SMART_ALG=${algorithm} does not fit the key (it needs ${keyAlgorithm})`);
  }
  return {
    tokenUrl: url(env, 'FHIR_SMART_TOKEN_URL') as string,
    clientId: env.FHIR_SMART_CLIENT_ID as string,
    privateKey: key,
    keyId: env.FHIR_SMART_KEY_ID as string,
    scope: env.FHIR_SMART_SCOPE || DEFAULT_SMART_SCOPE,
    algorithm,
  };
}

/** What the service reads and writes on the FHIR server. */
export const DEFAULT_SMART_SCOPE = [
  'system/CarePlan.cruds',
  'system/Goal.cruds',
  'system/CareTeam.cruds',
  'system/Observation.cruds',
  'system/Condition.cruds',
  'system/Provenance.crs',
].join(' ');

/**
 * Request body shape limits: with them, the worst body validates in well under 50 ms of blocking here (README,
 * Security, "Limits"; test/http/plugins/json-body.test.ts).
 */
export const DEFAULT_BODY_MAX_JSON_VALUES = 10_000;
export const DEFAULT_BODY_MAX_ARRAY_ITEMS = 1_000;
export const DEFAULT_BODY_MAX_STRING_LENGTH = 65_536;

export function loadConfig(env: Env = process.env): Config {
  const fhirAuth = oneOf(env, 'FHIR_AUTH', ['none', 'bearer', 'smart-backend'] as const, 'none');
  const fhirBearerToken = env.FHIR_BEARER_TOKEN || undefined;
  if (fhirAuth === 'bearer' && !fhirBearerToken) {
    throw new ConfigError('FHIR_AUTH=bearer needs FHIR_BEARER_TOKEN');
  }
  const fhirSmart = fhirAuth === 'smart-backend' ? smartConfig(env) : undefined;
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
    fhirBearerToken: fhirAuth === 'bearer' ? fhirBearerToken : undefined,
    ...(fhirSmart ? { fhirSmart } : {}),
    ...authConfig(env),
    trustProxy: trustProxy(env),
    rateLimitMax: integer(env, 'RATE_LIMIT_MAX', 60_000, 0, 10_000_000),
    rateLimitWindowMs: integer(env, 'RATE_LIMIT_WINDOW_MS', 60_000, 1000, 3_600_000),
    bodyLimitBytes: integer(env, 'BODY_LIMIT_BYTES', 1_048_576, 1024, 50 * 1_048_576),
    bodyMaxJsonValues: integer(env, 'BODY_MAX_JSON_VALUES', DEFAULT_BODY_MAX_JSON_VALUES, 100, 10_000_000),
    bodyMaxArrayItems: integer(env, 'BODY_MAX_ARRAY_ITEMS', DEFAULT_BODY_MAX_ARRAY_ITEMS, 10, 1_000_000),
    bodyMaxStringLength: integer(
      env,
      'BODY_MAX_STRING_LENGTH',
      DEFAULT_BODY_MAX_STRING_LENGTH,
      100,
      50 * 1_048_576,
    ),
    changeFeedSettleMs: integer(env, 'CHANGE_FEED_SETTLE_MS', 1000, 0, 600_000),
    embeddedFhirPort: integer(env, 'EMBEDDED_FHIR_PORT', 0, 0, 65535),
    heapGrowthPercent: integer(env, 'HEAP_GROWTH_PERCENT', 30, 0, 300),
    ...inboundTimeouts(env),
    fhirPublicBaseUrl: url(env, 'FHIR_PUBLIC_BASE_URL') ?? url(env, 'FHIR_BASE_URL'),
    webhooks: webhookConfig(env),
    usCoreVersion: oneOf(env, 'US_CORE_VERSION', ['6.1.0', '7.0.0'] as const, '6.1.0'),
  };
}

/** WEBHOOK_SECRET_KEY: 32 bytes, as 64 hex digits or base64; with the embedded server a key per process. */
function webhookSecretKey(env: Env): Buffer | undefined {
  const value = env.WEBHOOK_SECRET_KEY?.trim();
  if (!value) return env.FHIR_BASE_URL ? undefined : randomBytes(32);
  const key = /^[0-9a-fA-F]{64}$/.test(value) ? Buffer.from(value, 'hex') : Buffer.from(value, 'base64');
  if (key.length !== 32 || (!/^[0-9a-fA-F]{64}$/.test(value) && !/^[A-Za-z0-9+/_-]+=*$/.test(value))) {
    throw new ConfigError('WEBHOOK_SECRET_KEY must be 32 bytes, as 64 hex digits or base64');
  }
  return key;
}

function webhookConfig(env: Env): WebhookConfig {
  const allowedHosts =
    env.WEBHOOK_ALLOWED_HOSTS !== undefined
      ? list(env, 'WEBHOOK_ALLOWED_HOSTS').map((host) => host.toLowerCase())
      : env.FHIR_BASE_URL
        ? []
        : ['localhost', '127.0.0.1', '[::1]'];
  const retryMinMs = integer(env, 'WEBHOOK_RETRY_MIN_MS', 1_000, 10, 600_000);
  const retryMaxMs = integer(env, 'WEBHOOK_RETRY_MAX_MS', 300_000, 10, 86_400_000);
  if (retryMaxMs < retryMinMs) {
    throw new ConfigError(
      `WEBHOOK_RETRY_MAX_MS (${retryMaxMs}) must not be below WEBHOOK_RETRY_MIN_MS (${retryMinMs})`,
    );
  }
  const timeoutMs = integer(env, 'WEBHOOK_TIMEOUT_MS', 10_000, 100, 60_000);
  const leaseMs = integer(env, 'WEBHOOK_LEASE_MS', 30_000, 300, 600_000);
  // A lease is renewed when half of it is left, so one attempt must fit in well under half of it.
  if (leaseMs < 3 * timeoutMs) {
    throw new ConfigError(
      `WEBHOOK_LEASE_MS (${leaseMs}) must be at least 3 x WEBHOOK_TIMEOUT_MS (${timeoutMs})`,
    );
  }
  return {
    secretKey: webhookSecretKey(env),
    allowedHosts,
    timeoutMs,
    retryMinMs,
    retryMaxMs,
    retryForMs: integer(env, 'WEBHOOK_RETRY_FOR_MS', 86_400_000, 100, 30 * 86_400_000),
    pollMs: integer(env, 'WEBHOOK_POLL_MS', 1_000, 50, 60_000),
    leaseMs,
    maxSubscriptions: integer(env, 'WEBHOOK_MAX_SUBSCRIPTIONS', 100, 1, 1_000),
    pageSize: integer(env, 'WEBHOOK_PAGE_SIZE', 100, 2, 1_000),
  };
}

/** Slow or silent clients must not hold connections open (issue 12): every phase of a request has a deadline. */
function inboundTimeouts(env: Env) {
  const requestTimeoutMs = integer(env, 'REQUEST_TIMEOUT_MS', 30_000, 100, 600_000);
  const headersTimeoutMs = integer(env, 'HEADERS_TIMEOUT_MS', 10_000, 100, 600_000);
  // Node refuses a headers timeout longer than the request timeout (ERR_OUT_OF_RANGE).
  if (headersTimeoutMs > requestTimeoutMs) {
    throw new ConfigError(
      `HEADERS_TIMEOUT_MS (${headersTimeoutMs}) must not exceed REQUEST_TIMEOUT_MS (${requestTimeoutMs})`,
    );
  }
  return {
    requestTimeoutMs,
    headersTimeoutMs,
    keepAliveTimeoutMs: integer(env, 'KEEP_ALIVE_TIMEOUT_MS', 5_000, 100, 600_000),
  };
}
