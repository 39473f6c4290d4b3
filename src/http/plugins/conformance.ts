// HTTP semantics the router does not give by itself (RFC 9110):
// - content negotiation: a route that declares the media types of its answers (`content` in a 2xx response
//   schema) answers in the one the Accept header ranks highest, q=0 meaning "not this"; none acceptable is a 406
//   problem. The choice is `request.answerType`, for handlers that can answer in more than one type;
// - 405 with Allow for a method the path does not have (used by the not-found handler in errors.ts).
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { ApiProblem } from '../problems.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The media type chosen for the answer from the route's declared ones ('' where it declares none). */
    answerType: string;
  }
}

interface MediaRange {
  type: string;
  subtype: string;
  q: number;
}

const TOKEN = "[A-Za-z0-9!#$%&'*+.^_`|~-]+";
const MEDIA_RANGE = new RegExp(`^\\s*(${TOKEN})/(${TOKEN})\\s*$`);
const QVALUE = /^(0(\.\d{0,3})?|1(\.0{0,3})?)$/;

/** The media ranges of an Accept header. Unreadable ranges are skipped; an unreadable q counts as 0 (refused). */
export function parseAccept(accept: string): MediaRange[] {
  const ranges: MediaRange[] = [];
  for (const part of accept.split(',')) {
    const [range = '', ...params] = part.split(';');
    const match = MEDIA_RANGE.exec(range);
    if (!match) continue;
    const type = match[1].toLowerCase();
    const subtype = match[2].toLowerCase();
    if (type === '*' && subtype !== '*') continue;
    let q = 1;
    for (const param of params) {
      const [name = '', value = ''] = param.split('=').map((piece) => piece.trim());
      if (name.toLowerCase() === 'q') q = QVALUE.test(value) ? Number(value) : 0;
    }
    ranges.push({ type, subtype, q });
  }
  return ranges;
}

/**
 * How a media type fares against the ranges: [q, specificity] of the most specific range that matches it.
 * `application/json` also covers the JSON-based types (application/fhir+json, application/jwk-set+json), as
 * FHIR servers and JSON clients expect, but less specifically than naming them.
 */
function rank(ranges: MediaRange[], mediaType: string): [number, number] {
  const [type, subtype] = mediaType.split('/');
  let best: [number, number] = [0, -1];
  for (const range of ranges) {
    const specificity =
      range.type === type && range.subtype === subtype
        ? 3
        : range.type === 'application' &&
            range.subtype === 'json' &&
            type === 'application' &&
            subtype.endsWith('+json')
          ? 2
          : range.type === type && range.subtype === '*'
            ? 1
            : range.type === '*'
              ? 0
              : -1;
    if (specificity > best[1]) best = [range.q, specificity];
  }
  return best;
}

/**
 * The offered media type the Accept header prefers: highest q, then the one named most specifically, then the
 * first offered. Undefined when none is acceptable (406). No Accept header (or one with no readable range)
 * accepts anything.
 */
export function negotiate(accept: string | undefined, offered: readonly string[]): string | undefined {
  const ranges = accept ? parseAccept(accept) : [];
  if (ranges.length === 0) return offered[0];
  let chosen: string | undefined;
  let best: [number, number] = [0, -1];
  for (const mediaType of offered) {
    const [q, specificity] = rank(ranges, mediaType);
    if (q > 0 && (q > best[0] || (q === best[0] && specificity > best[1]))) {
      chosen = mediaType;
      best = [q, specificity];
    }
  }
  return chosen;
}

type RouteSchema = { response?: Record<string, { content?: Record<string, unknown> } | undefined> };
const offeredBySchema = new WeakMap<object, string[]>();

/** The media types a route's successful answers declare, in the order declared. */
export function offeredTypes(schema: unknown): string[] {
  if (!schema || typeof schema !== 'object') return [];
  const cached = offeredBySchema.get(schema);
  if (cached) return cached;
  const types: string[] = [];
  for (const [status, response] of Object.entries((schema as RouteSchema).response ?? {})) {
    if (!status.startsWith('2')) continue;
    for (const mediaType of Object.keys(response?.content ?? {}))
      if (!types.includes(mediaType)) types.push(mediaType);
  }
  offeredBySchema.set(schema, types);
  return types;
}

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const;

/** The methods of each fixed path (no parameters), per app. */
const fixedPathsOf = new WeakMap<FastifyInstance, Map<string, string[]>>();

function fixedPathMethods(app: FastifyInstance, path: string): string[] | undefined {
  const fixed = fixedPathsOf.get(app);
  if (!fixed) return undefined;
  let decoded = path;
  try {
    decoded = decodeURIComponent(path);
  } catch {}
  return fixed.get(path) ?? fixed.get(decoded);
}

/**
 * The methods the router has a route for at this path (no query string); empty when the path has none. A fixed
 * path answers with its own methods, not those of a parameter route that also matches it.
 */
export function allowedMethods(app: FastifyInstance, path: string): string[] {
  const fixed = fixedPathMethods(app, path);
  if (fixed) return METHODS.filter((method) => fixed.includes(method));
  return METHODS.filter((method) => {
    try {
      return app.findRoute({ method, url: path }) !== null;
    } catch {
      return false; // a path the router cannot read has no methods
    }
  });
}

/** A 405 naming the methods a path has (RFC 9110 15.5.6). */
export function methodNotAllowed(method: string, path: string, allowed: string[]): ApiProblem {
  return new ApiProblem(
    'method-not-allowed',
    `${method} is not allowed on ${path}; it allows ${allowed.join(', ')}`,
    {
      headers: { allow: allowed.join(', ') },
    },
  );
}

export default fp(async function conformance(app: FastifyInstance) {
  app.decorateRequest('answerType', '');
  // A fixed path (e.g. /care-plans/$to-fhir, POST only) is also matched by a parameter route for other methods
  // (GET /care-plans/:id): a method the fixed path lacks is then a 405, not a 400 for an impossible id.
  const fixedPaths = new Map<string, string[]>();
  fixedPathsOf.set(app, fixedPaths);
  app.addHook('onRoute', (route) => {
    if (/[:*]/.test(route.url)) return;
    const methods = [route.method].flat().map(String);
    fixedPaths.set(route.url, [...new Set([...(fixedPaths.get(route.url) ?? []), ...methods])]);
  });
  app.addHook('onRequest', async (request) => {
    if (!request.routeOptions.url?.includes(':')) return;
    const path = request.url.split('?')[0];
    const allowed = fixedPathMethods(app, path);
    if (allowed && !allowed.includes(request.method)) {
      throw methodNotAllowed(request.method, path, allowedMethods(app, path));
    }
  });
  // preValidation: after authentication (401/403 come first) and before the body is validated or any work done.
  app.addHook('preValidation', async (request) => {
    const offered = offeredTypes(request.routeOptions.schema);
    if (offered.length === 0) return;
    const chosen = negotiate(request.headers.accept, offered);
    if (chosen === undefined) {
      throw new ApiProblem(
        'not-acceptable',
        `this answer is available as ${offered.join(', ')}; the Accept header allows none of them`,
      );
    }
    request.answerType = chosen;
  });
});
