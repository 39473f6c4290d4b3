// The access table: the SMART permission each route needs, and the routes that are public. Every route must be in
// it (plugins/auth.ts refuses to start otherwise).
import type { FastifyRequest } from 'fastify';
import type { Permission, ScopedResource } from '../auth/caller.js';

export interface RouteAccess {
  /** The SMART permission on CarePlan the route needs; `any`: any CarePlan scope at all. */
  permission: Permission | 'any';
  /** The operation, as the audit log names it. */
  action: string;
  /** The resource the SMART permission is on (default CarePlan). */
  resource?: ScopedResource;
}

declare module 'fastify' {
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
  // Taking part (the use cases' WHO_MAY table, src/care-plans/access.ts, decides who of those may do which).
  'POST /care-plans/:id/goals/:goalId/agreements': { permission: 'u', action: 'agreement' },
  'POST /care-plans/:id/goals/:goalId/notes': { permission: 'u', action: 'note-add' },
  'PUT /care-plans/:id/what-matters': { permission: 'u', action: 'what-matters-set' },
  'POST /care-plans/:id/preferences': { permission: 'u', action: 'preference-add' },
  'PATCH /care-plans/:id/preferences/:itemId': { permission: 'u', action: 'preference-change' },
  'DELETE /care-plans/:id/preferences/:itemId': { permission: 'u', action: 'preference-remove' },
  'POST /care-plans/:id/strengths': { permission: 'u', action: 'strength-add' },
  'PATCH /care-plans/:id/strengths/:itemId': { permission: 'u', action: 'strength-change' },
  'DELETE /care-plans/:id/strengths/:itemId': { permission: 'u', action: 'strength-remove' },
  'POST /care-plans/:id/barriers': { permission: 'u', action: 'barrier-add' },
  'PATCH /care-plans/:id/barriers/:itemId': { permission: 'u', action: 'barrier-change' },
  'DELETE /care-plans/:id/barriers/:itemId': { permission: 'u', action: 'barrier-remove' },
  'POST /care-plans/$to-fhir': { permission: 'any', action: 'to-fhir' },
  'POST /care-plans/$from-fhir': { permission: 'any', action: 'from-fhir' },
  // Figures over many plans: a search of CarePlan (a patient/ token: its own patient's plans only).
  'GET /measures/:id/report': { permission: 's', action: 'measure-report' },
  'GET /measures/report-jobs/:jobId': { permission: 's', action: 'measure-report-status' },
  'DELETE /measures/report-jobs/:jobId': { permission: 's', action: 'measure-report-cancel' },
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

/**
 * Health probes, the API documentation, the project's FHIR definitions (served at their canonical URLs) and the list
 * of measure definitions (no data).
 */
const PUBLIC_PATHS = new Set([
  '/health/live',
  '/health/ready',
  '/openapi.json',
  '/docs',
  '/fhir/:type/:id',
  '/.well-known/jwks.json',
  '/measures',
]);

export function isPublicRoute(url: string | undefined): boolean {
  return url !== undefined && (PUBLIC_PATHS.has(url) || url.startsWith('/docs/'));
}

/** A path (not a route pattern) of a public route: another method there is a 405 that needs no token. */
function isPublicPath(path: string): boolean {
  return isPublicRoute(path) || /^\/fhir\/[^/]+\/[^/]+$/.test(path);
}

export function accessOf(request: FastifyRequest): RouteAccess | 'public' | undefined {
  const { url, config } = request.routeOptions;
  if (config?.auth) return config.auth;
  if (isPublicRoute(url)) return 'public';
  if (url === undefined) return isPublicPath(request.url.split('?')[0]) ? 'public' : undefined;
  const method = request.method === 'HEAD' ? 'GET' : request.method;
  return ROUTE_ACCESS[`${method} ${url}`];
}
