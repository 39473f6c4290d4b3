// Inbound authentication and authorisation.
//
// AUTH_MODE=jwt: every route except the public ones (health, docs, the OpenAPI document, the FHIR definitions,
// the service's public key set) needs `Authorization: Bearer <JWT>`, verified against the issuer's JWKS
// (signature, iss, aud, exp). Each route needs one SMART permission on CarePlan (ROUTE_ACCESS); a patient/ scope
// restricts the request to the plans of the token's patient, which the care plan use cases enforce (another
// patient's plan is a 404).
//
// The hooks, in request order:
//   onRequest   identify the caller (verify the token; nothing is refused yet, so the rate limiter, a route-level
//               onRequest hook that runs next, can count every request by client or by IP)
//   preParsing  refuse (401/403) before the body is read
//
// The access table is route-access.ts, token verification tokens.ts, the audit trail plugins/audit.ts.
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { ANONYMOUS, type Caller, decide } from '../../auth/caller.js';
import { ApiProblem } from '../problems.js';
import { accessOf, isPublicRoute, ROUTE_ACCESS } from '../route-access.js';
import { REALM, tokenVerifier, unauthorized } from '../tokens.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** Who is calling: set for every request that is not public (ANONYMOUS in AUTH_MODE=none). */
    caller: Caller | null;
    authFailure: ApiProblem | null;
  }
}

export default fp(async function auth(app: FastifyInstance) {
  const config = app.config;
  const verify = config.authMode === 'jwt' ? tokenVerifier(config) : undefined;
  app.decorateRequest('caller', null);
  app.decorateRequest('authFailure', null);

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
        throw new Error(`${method} ${route.url} has no access rule (src/http/route-access.ts)`);
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
});
