// Inbound authentication and authorisation, and the audit trail.
//
// AUTH_MODE=jwt: every route except the public ones (health, docs, the OpenAPI document, the FHIR definitions,
// the service's public key set) needs `Authorization: Bearer <JWT>`, verified against the issuer's JWKS
// (signature, iss, aud, exp). Each route needs one SMART permission on CarePlan (ROUTE_ACCESS); a patient/ scope
// restricts the request to the plans of the token's patient, which the care plan service enforces (another
// patient's plan is a 404).
//
// The hooks, in request order:
//   onRequest   identify the caller (verify the token; nothing is refused yet, so the rate limiter, a route-level
//               onRequest hook that runs next, can count every request by client or by IP)
//   preParsing  refuse (401/403) before the body is read
//   onResponse  one audit line per care plan request: who, which plan, what, outcome, status
import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import {
  type CryptoKey,
  createRemoteJWKSet,
  decodeProtectedHeader,
  type JWTPayload,
  type JWTVerifyOptions,
  type JWTVerifyResult,
  jwtVerify,
} from 'jose';
import type { AppConfig } from '../app.js';
import {
  ANONYMOUS,
  type Caller,
  carePlanGrants,
  clean,
  decide,
  type Permission,
  patientReference,
  type ScopedResource,
  scopesOf,
} from '../auth/caller.js';
import type { PlanContext } from '../care-plan/care-plan-service.js';
import { ApiProblem } from '../errors.js';

export interface RouteAccess {
  /** The SMART permission on CarePlan the route needs; `any`: any CarePlan scope at all. */
  permission: Permission | 'any';
  /** The operation, as the audit log names it. */
  action: string;
  /** The resource the SMART permission is on (default CarePlan). */
  resource?: ScopedResource;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Who is calling: set for every request that is not public (ANONYMOUS in AUTH_MODE=none). */
    caller: Caller | null;
    authFailure: ApiProblem | null;
    /** The caller was refused by the service (e.g. another patient's plan, answered 404). */
    auditDenied: boolean;
  }
  interface FastifyContextConfig {
    /** `public`, or the access rule of a route not listed in ROUTE_ACCESS. */
    auth?: 'public' | RouteAccess;
  }
}

/**
 * The permission each route needs. SMART v2: c create, r read (one plan, its versions), u update, d delete,
 * s search (searches and the change feed). Ending a plan (DELETE) needs d; changing its goals and activities
 * is an update of the plan (u). $to-fhir and $from-fhir read and store nothing, but are part of the care plan
 * API: any CarePlan scope will do.
 */
export const ROUTE_ACCESS: Record<string, RouteAccess> = {
  'POST /care-plans': { permission: 'c', action: 'create' },
  'GET /care-plans': { permission: 's', action: 'search' },
  'GET /care-plans/changes': { permission: 's', action: 'changes' },
  'GET /care-plans/:id': { permission: 'r', action: 'read' },
  'PUT /care-plans/:id': { permission: 'u', action: 'replace' },
  'DELETE /care-plans/:id': { permission: 'd', action: 'end' },
  'GET /care-plans/:id/history': { permission: 'r', action: 'history' },
  'POST /care-plans/:id/goals': { permission: 'u', action: 'goal-add' },
  'PATCH /care-plans/:id/goals/:goalId': { permission: 'u', action: 'goal-change' },
  'DELETE /care-plans/:id/goals/:goalId': { permission: 'u', action: 'goal-remove' },
  'POST /care-plans/:id/activities': { permission: 'u', action: 'activity-add' },
  'PATCH /care-plans/:id/activities/:activityId': { permission: 'u', action: 'activity-change' },
  'DELETE /care-plans/:id/activities/:activityId': { permission: 'u', action: 'activity-remove' },
  'POST /care-plans/$to-fhir': { permission: 'any', action: 'to-fhir' },
  'POST /care-plans/$from-fhir': { permission: 'any', action: 'from-fhir' },
  // Webhook subscriptions: SMART scopes on Subscription (system/Subscription.cruds, patient/Subscription.cruds...).
  'POST /subscriptions': { permission: 'c', action: 'subscription-create', resource: 'Subscription' },
  'GET /subscriptions': { permission: 's', action: 'subscription-list', resource: 'Subscription' },
  'GET /subscriptions/:id': { permission: 'r', action: 'subscription-read', resource: 'Subscription' },
  'DELETE /subscriptions/:id': { permission: 'd', action: 'subscription-delete', resource: 'Subscription' },
  'GET /subscriptions/:id/status': {
    permission: 'r',
    action: 'subscription-status',
    resource: 'Subscription',
  },
  'POST /subscriptions/:id/$replay': {
    permission: 'u',
    action: 'subscription-replay',
    resource: 'Subscription',
  },
};

/** Health probes, the API documentation, and the project's FHIR definitions (served at their canonical URLs). */
const PUBLIC_PATHS = new Set([
  '/health/live',
  '/health/ready',
  '/openapi.json',
  '/docs',
  '/fhir/:type/:id',
  '/.well-known/jwks.json',
]);

export function isPublicRoute(url: string | undefined): boolean {
  return url !== undefined && (PUBLIC_PATHS.has(url) || url.startsWith('/docs/'));
}

/** A path (not a route pattern) of a public route: another method there is a 405 that needs no token. */
function isPublicPath(path: string): boolean {
  return isPublicRoute(path) || /^\/fhir\/[^/]+\/[^/]+$/.test(path);
}

function accessOf(request: FastifyRequest): RouteAccess | 'public' | undefined {
  const { url, config } = request.routeOptions;
  if (config?.auth) return config.auth;
  if (isPublicRoute(url)) return 'public';
  if (url === undefined) return isPublicPath(request.url.split('?')[0]) ? 'public' : undefined;
  const method = request.method === 'HEAD' ? 'GET' : request.method;
  return ROUTE_ACCESS[`${method} ${url}`];
}

/** What the care plan service needs to know about a request: its id, and who calls (with any patient restriction). */
export function callContext(request: FastifyRequest): PlanContext {
  return { requestId: request.id, ...(request.caller ? { caller: request.caller } : {}) };
}

const REALM = 'Bearer realm="shared-care-plans"';
/** Asymmetric algorithms only: a shared-secret (HS*) or `none` token is never accepted. */
const ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'];

function unauthorized(description?: string): ApiProblem {
  return new ApiProblem(
    'unauthorized',
    description
      ? `the access token is not accepted: ${description}`
      : 'send an access token: Authorization: Bearer <token>',
    {
      headers: {
        'www-authenticate': description
          ? `${REALM}, error="invalid_token", error_description="${description}"`
          : REALM,
      },
      denied: true,
    },
  );
}

/** Why jose refused a token, in words an integrator can act on (never the token itself). */
function describeTokenError(error: unknown): string | undefined {
  const { code, claim } = error as { code?: string; claim?: string };
  switch (code) {
    case 'ERR_JWT_EXPIRED':
      return 'it has expired';
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED':
      if (claim === 'iss') return 'its issuer (iss) is not trusted here';
      if (claim === 'aud') return 'its audience (aud) is not this service';
      if (claim === 'nbf') return 'it is not valid yet (nbf)';
      if (claim === 'exp') return 'it has no expiry (exp)';
      return `its ${clean(String(claim)).replace(/\W/g, '')} claim is not valid`;
    case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED':
      return 'its signature is not valid';
    case 'ERR_JWKS_NO_MATCHING_KEY':
    case 'ERR_JWKS_MULTIPLE_MATCHING_KEYS':
      return 'it is not signed with a key the issuer publishes';
    case 'ERR_TOO_MANY_KEYS_WITHOUT_KID':
      return `it has no kid, and the issuer publishes more than ${MAX_KEYS_WITHOUT_KID} keys it could be signed with`;
    case 'ERR_JWS_INVALID':
    case 'ERR_JWT_INVALID':
    case 'ERR_JOSE_ALG_NOT_ALLOWED':
    case 'ERR_JOSE_NOT_SUPPORTED':
      return 'it is not a signed JWT with an allowed algorithm';
    default:
      return undefined; // the key set could not be fetched: not the caller's fault
  }
}

const str = (value: unknown): string | undefined =>
  typeof value === 'string' && value.length > 0 ? clean(value) : undefined;

export function callerFromPayload(payload: JWTPayload): Caller {
  const claims = payload as Record<string, unknown>;
  const subject = str(payload.sub);
  return {
    kind: 'token',
    clientId: str(claims.client_id) ?? str(claims.azp) ?? subject ?? 'unknown client',
    subject,
    fhirUser: str(claims.fhirUser),
    patientClaim: patientReference(claims.patient),
    grants: carePlanGrants(scopesOf(claims)),
    subscriptionGrants: carePlanGrants(scopesOf(claims), 'Subscription'),
  };
}

/** Keys tried for a token without `kid`: enough for a key rotation, too few for a big JWKS to cost much. */
export const MAX_KEYS_WITHOUT_KID = 5;

type KeySet = Parameters<typeof jwtVerify>[1] & ((...args: never[]) => unknown);

/**
 * jwtVerify, and for a token without `kid` when the JWKS holds several keys it could be signed with (during a
 * key rotation): each of them, at most MAX_KEYS_WITHOUT_KID. Accepted only when exactly one key verifies it.
 */
export async function verifyJwt(
  token: string,
  jwks: KeySet,
  options: JWTVerifyOptions,
): Promise<JWTVerifyResult> {
  try {
    return await jwtVerify(token, jwks, options);
  } catch (error) {
    const candidates = error as Partial<AsyncIterable<CryptoKey>> & { code?: string };
    if (candidates.code !== 'ERR_JWKS_MULTIPLE_MATCHING_KEYS' || !candidates[Symbol.asyncIterator])
      throw error;
    if (decodeProtectedHeader(token).kid !== undefined) throw error; // two keys with one kid: the issuer's mistake
    // Each key the signature verifies with: its result, or the claim error (expired, ...) that followed.
    const verified: (JWTVerifyResult | { claimError: unknown })[] = [];
    let tried = 0;
    for await (const key of candidates as AsyncIterable<CryptoKey>) {
      if (++tried > MAX_KEYS_WITHOUT_KID) throw tooManyKeys();
      try {
        verified.push(await jwtVerify(token, key, options));
      } catch (keyError) {
        if ((keyError as { code?: string }).code !== 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED')
          verified.push({ claimError: keyError });
      }
    }
    if (verified.length !== 1) throw error; // none, or ambiguous: "not signed with a key the issuer publishes"
    const [result] = verified;
    if ('claimError' in result) throw result.claimError;
    return result;
  }
}

class TooManyKeys extends Error {
  readonly code = 'ERR_TOO_MANY_KEYS_WITHOUT_KID';
}
const tooManyKeys = () => new TooManyKeys('too many candidate keys for a token without kid');

/** Verifies a bearer token: signature by a key of the JWKS, iss, aud, exp (required). Throws a 401 or 503 problem. */
export function tokenVerifier(config: AppConfig): (token: string) => Promise<Caller> {
  const jwks = createRemoteJWKSet(new URL(config.authJwksUrl as string), {
    timeoutDuration: 5_000,
    cooldownDuration: 30_000,
    cacheMaxAge: 10 * 60_000,
  });
  // A token already verified is not verified again until it expires (at most 5 minutes): the signature check
  // costs about as much CPU as a whole bare request. Keyed by the whole token, signature included.
  const verified = new Map<string, { caller: Caller; until: number }>();
  return async (token) => {
    const now = Date.now();
    const hit = verified.get(token);
    if (hit && hit.until > now) return hit.caller;
    if (hit) verified.delete(token);
    try {
      const { payload } = await verifyJwt(token, jwks, {
        issuer: config.authIssuer,
        audience: config.authAudience,
        algorithms: ALGORITHMS,
        clockTolerance: config.authClockToleranceSeconds,
        requiredClaims: ['exp'],
      });
      const caller = callerFromPayload(payload);
      const until = Math.min(now + 300_000, (payload.exp as number) * 1000);
      if (verified.size >= 1000) verified.delete(verified.keys().next().value as string);
      verified.set(token, { caller, until });
      return caller;
    } catch (error) {
      const description = describeTokenError(error);
      if (description) throw unauthorized(description);
      throw new ApiProblem(
        'auth-unavailable',
        'the keys to check access tokens cannot be fetched now; retry',
        {
          headers: { 'retry-after': '5' },
        },
      );
    }
  };
}

const PLAN_ID = /^[A-Za-z0-9\-.]{1,64}$/;

/**
 * The plan a request was about, when the answer shows it is one: a refused or failed lookup (400, 401, 403, a
 * plain 404) names only what the caller typed, which may be anything (even a patient's id), so it is not logged.
 */
function auditPlanId(request: FastifyRequest, status: number, location: unknown): string | undefined {
  // A 404 that hides another patient's plan names a real plan (and is worth auditing).
  if (status === 404 ? !request.auditDenied : [400, 401, 403].includes(status)) return undefined;
  const id = (request.params as { id?: unknown } | undefined)?.id;
  if (typeof id === 'string' && PLAN_ID.test(id)) return id;
  const created =
    typeof location === 'string'
      ? /^\/(?:care-plans|subscriptions)\/([A-Za-z0-9\-.]{1,64})$/.exec(location)
      : null;
  return created?.[1];
}

export default fp(async function auth(app: FastifyInstance) {
  const config = app.config;
  const verify = config.authMode === 'jwt' ? tokenVerifier(config) : undefined;
  app.decorateRequest('caller', null);
  app.decorateRequest('authFailure', null);
  app.decorateRequest('auditDenied', false);

  if (config.authMode === 'none') {
    app.log.warn(
      { authMode: 'none', defaulted: config.authModeDefaulted },
      '!!! AUTH_MODE=none: NO AUTHENTICATION. Anyone who can reach this service can read and change every care plan. ' +
        (config.authModeDefaulted
          ? 'This is the default only because the embedded in-memory FHIR server is used and no AUTH_* variable is set. '
          : '') +
        'Set AUTH_MODE=jwt with AUTH_JWKS_URL, AUTH_ISSUER and AUTH_AUDIENCE before real patient data comes near it. !!!',
    );
  } else if (
    config.authJwksUrl?.startsWith('http:') &&
    !/^http:\/\/(localhost|127\.|\[::1\])/.test(config.authJwksUrl)
  ) {
    app.log.warn(
      'AUTH_JWKS_URL is plain http: the keys that decide who may read care plans can be tampered with',
    );
  }

  // Every route must say who may call it: a route added without a rule fails at start-up, not open in production.
  app.addHook('onRoute', (route) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    const config = route.config as { auth?: unknown } | undefined;
    if (config?.auth || isPublicRoute(route.url)) return;
    for (const method of methods) {
      const key = `${method === 'HEAD' ? 'GET' : method} ${route.url}`;
      if (!ROUTE_ACCESS[key])
        throw new Error(`${method} ${route.url} has no access rule (src/plugins/auth.ts)`);
    }
  });

  app.addHook('onRequest', async (request) => {
    const access = accessOf(request);
    if (access === 'public') return;
    if (!verify) {
      request.caller = ANONYMOUS;
      return;
    }
    const header = request.headers.authorization;
    if (!header) {
      request.authFailure = unauthorized();
      return;
    }
    const match = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i.exec(header);
    if (!match) {
      request.authFailure = unauthorized('the Authorization header is not Bearer <token>');
      return;
    }
    try {
      request.caller = await verify(match[1]);
    } catch (error) {
      request.authFailure = error as ApiProblem;
    }
  });

  app.addHook('preParsing', async (request, _reply, payload) => {
    const access = accessOf(request);
    if (access === 'public') return payload;
    if (request.authFailure) throw request.authFailure;
    if (!access || !request.caller) return payload; // no such route: the 404 follows
    const decision = decide(request.caller, access.permission, access.resource);
    if (!decision.allowed) {
      throw new ApiProblem('forbidden', `the access token does not allow this: ${decision.reason}`, {
        headers: {
          'www-authenticate': `${REALM}, error="insufficient_scope", scope="${decision.needed.join(' ')}"`,
        },
        denied: true,
      });
    }
    if (decision.patient) request.caller = { ...request.caller, patient: decision.patient };
    return payload;
  });

  app.addHook('onError', async (request, _reply, error) => {
    if (error instanceof ApiProblem && error.extra.denied) request.auditDenied = true;
  });

  // The audit trail: at info level even when LOG_LEVEL is warn or error (silent stays silent).
  const audit = app.log.child({}, { level: app.log.level === 'silent' ? 'silent' : 'info' });
  app.addHook('onResponse', async (request, reply) => {
    const access = accessOf(request);
    if (!access || access === 'public') return;
    const caller = request.caller;
    const status = reply.statusCode;
    audit.info(
      {
        audit: true,
        who: caller ? (caller.kind === 'anonymous' ? 'anonymous' : caller.clientId) : 'unauthenticated',
        ...(caller?.subject && caller.subject !== caller.clientId ? { user: caller.subject } : {}),
        ...(caller?.patient ? { patientScoped: true } : {}),
        [access.resource === 'Subscription' ? 'subscriptionId' : 'planId']: auditPlanId(
          request,
          status,
          reply.getHeader('location'),
        ),
        operation: access.action,
        outcome:
          status < 400
            ? 'success'
            : request.auditDenied || status === 401 || status === 403
              ? 'denied'
              : 'failure',
        status,
        requestId: request.id,
      },
      'audit',
    );
  });
});
