// The audit trail: one structured line per care plan request (who, which plan, what, outcome, status), at info
// level even when LOG_LEVEL is warn or error (silent stays silent). Never a body, a name or a token.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { problemOf } from '../problems.js';
import { accessOf } from '../route-access.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The caller was refused by the service (e.g. another patient's plan, answered 404). */
    auditDenied: boolean;
  }
}

const PLAN_ID = /^[A-Za-z0-9\-.]{1,64}$/;

/**
 * The plan a request was about, when the answer shows it is one: a refused or failed lookup (400, 401, 403, a
 * plain 404) names only what the caller typed, which may be anything (even a patient's id), so it is not logged.
 */
function auditPlanId(request: FastifyRequest, status: number, location: unknown): string | undefined {
  // A 404 that hides another patient's plan names a real plan (and is worth auditing).
  if (status === 404 ? !request.auditDenied : [400, 401, 403].includes(status)) return undefined;
  // Only the care plan and subscription routes have their resource's id in the path (a measure's id is not).
  const id = /^\/(?:care-plans|subscriptions)(?:\/|$)/.test(request.routeOptions.url ?? '')
    ? (request.params as { id?: unknown } | undefined)?.id
    : undefined;
  if (typeof id === 'string' && PLAN_ID.test(id)) return id;
  const created =
    typeof location === 'string'
      ? /^\/(?:care-plans|subscriptions)\/([A-Za-z0-9\-.]{1,64})$/.exec(location)
      : null;
  return created?.[1];
}

export default fp(async function audit(app: FastifyInstance) {
  app.decorateRequest('auditDenied', false);
  app.addHook('onError', async (request, _reply, error) => {
    if (problemOf(error)?.extra.denied) request.auditDenied = true;
  });

  const auditLog = app.log.child({}, { level: app.log.level === 'silent' ? 'silent' : 'info' });
  app.addHook('onResponse', async (request, reply) => {
    const access = accessOf(request);
    if (!access || access === 'public') return;
    const caller = request.caller;
    const status = reply.statusCode;
    auditLog.info(
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
