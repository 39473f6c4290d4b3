// Security headers (helmet) and rate limiting per client.
//
// The headers are helmet's for this configuration, worked out once at start-up and set on every response by one
// hook: @fastify/helmet builds a new helmet middleware, and parses the policy again, for every request (about 4 % of
// a `$to-fhir` request's CPU in the benchmark's profile). No route configures helmet itself.
//
// The Content-Security-Policy is strict (scripts and everything else from this origin only, nothing framed) and
// still lets Swagger UI at /docs work: its scripts and style sheets are files served from here, and it sets
// inline styles. Responses that bring their own policy (the printable plan page) replace this header.
//
// The rate limit counts requests per client: the verified token's client id, else (no or a bad token, or
// AUTH_MODE=none) the IP address. The default, 60,000 per minute, lets one integrator sync at several hundred
// requests per second for minutes on end (more than one instance of this service writes to a FHIR server) and
// still stops a runaway loop; RATE_LIMIT_MAX=0 switches it off. Health probes are never limited.
import type { IncomingMessage, ServerResponse } from 'node:http';
import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import helmet, { type HelmetOptions } from 'helmet';
import { ApiProblem } from '../problems.js';

export const CONTENT_SECURITY_POLICY = {
  'default-src': ["'self'"],
  'base-uri': ["'self'"],
  'connect-src': ["'self'"],
  'font-src': ["'self'", 'data:'],
  'form-action': ["'self'"],
  'frame-ancestors': ["'none'"],
  'img-src': ["'self'", 'data:'],
  'object-src': ["'none'"],
  'script-src': ["'self'"],
  'script-src-attr': ["'none'"],
  'style-src': ["'self'", "'unsafe-inline'"],
};

const HELMET_OPTIONS: HelmetOptions = {
  contentSecurityPolicy: { useDefaults: false, directives: CONTENT_SECURITY_POLICY },
};

/** What helmet's middleware does to a response with these options: the headers it sets and those it removes. */
function helmetHeaders(options: HelmetOptions): {
  set: Array<[string, string]>;
  removed: string[];
} {
  const set: Array<[string, string]> = [];
  const removed: string[] = [];
  const response = {
    setHeader: (name: string, value: string) => set.push([name, String(value)]),
    removeHeader: (name: string) => removed.push(name),
  };
  let failure: unknown;
  helmet(options)({} as IncomingMessage, response as unknown as ServerResponse, (error?: unknown) => {
    failure = error;
  });
  if (failure) throw failure;
  return { set, removed };
}

export function rateLimitKey(request: FastifyRequest): string {
  const clientId = request.caller?.kind === 'token' ? request.caller.clientId : undefined;
  return clientId ? `client:${clientId}` : `ip:${request.ip}`;
}

export default fp(async function security(app: FastifyInstance) {
  const { set, removed } = helmetHeaders(HELMET_OPTIONS);
  app.addHook('onRequest', (_request, reply, done) => {
    const response = reply.raw;
    for (const name of removed) response.removeHeader(name);
    for (const [name, value] of set) response.setHeader(name, value);
    done();
  });

  const { rateLimitMax: max, rateLimitWindowMs: timeWindow } = app.config;
  if (max > 0) {
    await app.register(rateLimit, {
      global: true,
      max,
      timeWindow,
      // A route-level onRequest hook: it runs after the auth plugin's onRequest hook has identified the caller.
      keyGenerator: rateLimitKey,
      allowList: (request) => request.routeOptions.url?.startsWith('/health/') ?? false,
      errorResponseBuilder: (_request, context) =>
        new ApiProblem(
          'too-many-requests',
          `more than ${context.max} requests in ${Math.round(timeWindow / 1000)} s from this client; retry after ${Math.ceil(context.ttl / 1000)} s`,
          { headers: { 'retry-after': String(Math.max(1, Math.ceil(context.ttl / 1000))) } },
        ),
    });
  }
});
