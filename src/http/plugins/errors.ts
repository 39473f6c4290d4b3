// The one place errors leave the service: everything becomes an application/problem+json answer.
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { escapePointer } from '../../fhir/validation/rules.js';
import { ApiProblem, type ProblemError, problemOf } from '../problems.js';
import conformance, { allowedMethods, methodNotAllowed } from './conformance.js';

interface AjvError {
  instancePath: string;
  keyword: string;
  message?: string;
  params: Record<string, unknown>;
}

/** Errors listed at most in a problem; one more entry counts the rest (as FHIR validation issues do). */
export const MAX_LISTED_ERRORS = 100;

function validationErrors(errors: AjvError[], part: string | undefined): ProblemError[] {
  const where =
    part === 'querystring' ? 'query' : part === 'params' ? 'path' : part === 'headers' ? 'header' : 'body';
  const seen = new Set<string>();
  const result: ProblemError[] = [];
  let omitted = 0;
  let stopped = false;
  for (const error of errors) {
    if (error.keyword === 'errorLimit') {
      // validation stopped after this many errors: the rest were not even counted
      stopped = true;
      continue;
    }
    let pointer = error.instancePath;
    let detail = error.message ?? 'is invalid';
    if (error.keyword === 'additionalProperties') {
      pointer = `${pointer}/${escapePointer(String(error.params.additionalProperty))}`;
      detail = 'is not a property this schema knows (unknown properties are rejected, never dropped)';
    } else if (error.keyword === 'required') {
      pointer = `${pointer}/${String(error.params.missingProperty)}`;
      detail = 'is required';
    } else if (error.keyword === 'enum') {
      detail = `must be one of: ${(error.params.allowedValues as unknown[]).join(', ')}`;
    } else if (error.keyword === 'format') {
      detail = `must be a valid ${String(error.params.format)} (FHIR format, a real calendar date; a time needs a time zone)`;
    }
    const key = `${pointer} ${detail}`;
    if (seen.has(key)) continue;
    seen.add(key);
    // past the limit counted only: a hostile body can have an error per JSON value
    if (result.length < MAX_LISTED_ERRORS) result.push({ pointer, detail, in: where });
    else omitted++;
  }
  if (omitted) {
    result.push({
      pointer: '',
      detail: `${stopped ? 'at least ' : ''}${omitted} more error${omitted === 1 ? '' : 's'} not listed (at most ${MAX_LISTED_ERRORS} are reported)`,
      in: where,
    });
  }
  return result;
}

export function sendProblem(reply: FastifyReply, request: FastifyRequest, problem: ApiProblem): FastifyReply {
  for (const [name, value] of Object.entries(problem.extra.headers ?? {})) reply.header(name, value);
  return reply
    .code(problem.status)
    .type('application/problem+json')
    .send(problem.toProblem(request.url.split('?')[0]));
}

function toApiProblem(error: FastifyError & { validationContext?: string }): ApiProblem {
  // Errors of the floors below (domain, FHIR server) and the HTTP layer's own problems.
  const known = problemOf(error);
  if (known) return known;
  if (error.validation) {
    // If-Match is required on writes (declared so in the schema); its absence is RFC 6585's 428, not a 400.
    const missing = (error.validation as unknown as AjvError[]).some(
      (e) => e.keyword === 'required' && e.params.missingProperty === 'if-match',
    );
    if (error.validationContext === 'headers' && missing) {
      return new ApiProblem('precondition-required', 'send If-Match with the ETag from a read of the plan', {
        errors: [{ pointer: '/if-match', detail: 'is required', in: 'header' }],
      });
    }
    return new ApiProblem(
      'validation',
      `the ${error.validationContext ?? 'request'} does not match the schema`,
      {
        errors: validationErrors(error.validation as unknown as AjvError[], error.validationContext),
      },
    );
  }
  switch (error.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new ApiProblem('payload-too-large', error.message);
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new ApiProblem('unsupported-media-type', 'send application/json or application/fhir+json');
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new ApiProblem('bad-request', 'the request body is empty');
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return new ApiProblem('bad-request', `the request body is not valid JSON: ${error.message}`);
  }
  if (error.statusCode === 429) return new ApiProblem('too-many-requests', error.message);
  if (error.statusCode && error.statusCode >= 400 && error.statusCode < 500) {
    // Fastify's own client errors: bad JSON, prototype poisoning, bad headers...
    return new ApiProblem('bad-request', error.message);
  }
  return new ApiProblem('internal', 'an unexpected error occurred; it has been logged');
}

export default fp(async function errors(app: FastifyInstance) {
  app.setErrorHandler((error: FastifyError, request, reply) => {
    let problem = toApiProblem(error);
    // Fastify refuses a QUERY without Content-Type before it looks for a route; no route of this API takes QUERY,
    // so the answer is what any unsupported method gets: 405 on a path that exists, else 404.
    if (
      error.code === 'FST_ERR_ROUTE_MISSING_CONTENT_TYPE' &&
      !request.routeOptions.method?.includes('QUERY')
    ) {
      const path = request.url.split('?')[0];
      const allowed = allowedMethods(app, path);
      problem = allowed.length
        ? methodNotAllowed(request.method, path, allowed)
        : new ApiProblem('not-found', `no route for ${request.method} ${path}`);
    }
    if (problem.status >= 500)
      request.log.error({ err: error, problem: problem.problemType }, 'request failed');
    else request.log.info({ problem: problem.problemType, status: problem.status }, 'request refused');
    return sendProblem(reply, request, problem);
  });
  await app.register(conformance);
  // A path that exists with other methods is a 405 naming them (RFC 9110 15.5.6), not a 404.
  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?')[0];
    const allowed = allowedMethods(app, path);
    if (allowed.length > 0) {
      return sendProblem(reply, request, methodNotAllowed(request.method, path, allowed));
    }
    return sendProblem(reply, request, new ApiProblem('not-found', `no route for ${request.method} ${path}`));
  });
});
