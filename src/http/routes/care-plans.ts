// /care-plans: thin routes; the work happens in the care plan use cases (app.carePlans, src/care-plans/).
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Write } from '../../care-plans/access.js';
import { planResourcesBundle } from '../../care-plans/repository.js';
import type { EditContext, EditResult, StoredPlan } from '../../care-plans/types.js';
import { FHIR_ID_PATTERN } from '../../fhir/fhir-id.js';
import type { Activity, Goal, SharedCarePlan } from '../../model/care-plan.js';
import { addPart, changePart, removePart } from '../../model/plan-edits.js';
import { callContext } from '../call-context.js';
import { formatEtag, versionOfEtag } from '../etag.js';
import { ApiProblem } from '../problems.js';
import { PLAN_PAGE_CSP, prefersHtml, renderPlanPage } from '../views/plan-page.js';
import { planIdParams, problems } from './responses.js';

const etagHeader = { ETag: { type: 'string', description: 'The plan version, W/"<version>".' } };
export const planResponse = (description: string, headers: Record<string, unknown> = etagHeader) => ({
  description,
  headers,
  content: { 'application/json': { schema: { $ref: 'SharedCarePlan#' } } },
});
export const idempotencyKeyHeader = {
  type: 'string',
  minLength: 1,
  maxLength: 200,
  description:
    'Makes retries safe: the same key and request answer as the first time and write nothing; another request with the same key gets 422.',
} as const;
export const editHeaders = {
  type: 'object',
  required: ['if-match'],
  properties: {
    'if-match': {
      type: 'string',
      minLength: 1,
      maxLength: 1000,
      description:
        'The ETag from a read of the plan (or a list of ETags: it matches when any does). Required: a missing one, or `*`, ' +
        'gets 428; a stale one 412.',
    },
    'idempotency-key': idempotencyKeyHeader,
  },
} as const;
export const partParams = (name: string) => ({
  type: 'object',
  required: ['id', name],
  properties: {
    ...planIdParams.properties,
    [name]: {
      type: 'string',
      // A goal key or a FHIR id (#id when contained); never only dots.
      pattern: '^#?(?!\\.+$)[A-Za-z0-9\\-._]{1,64}$',
      description: 'The id (or key) of the part.',
    },
  },
});

export type Versioned = {
  Headers: { 'if-match'?: string; 'idempotency-key'?: string };
  Params: { id: string };
};

/**
 * The versions an If-Match header names (RFC 9110 13.1.1: a list matches when any member does). `*` would match
 * any version, so it cannot protect a read-modify-write: writes need a real ETag (428).
 */
export function ifMatchOf(request: FastifyRequest<Versioned>): string[] | undefined {
  const header = request.headers['if-match'];
  if (header === undefined) return undefined;
  const members = header.split(',').map((member) => member.trim());
  if (members.some((member) => member === '*' || member === 'W/"*"' || member === '"*"')) {
    throw new ApiProblem(
      'precondition-required',
      'If-Match: * is not accepted; send the ETag of the plan you read',
      {
        errors: [{ pointer: '', detail: 'If-Match must name a version', in: 'header' }],
      },
    );
  }
  return members.map((member) => versionOfEtag(member) ?? member).filter(Boolean);
}

/** Who calls, and with an Idempotency-Key what identifies the request (method, URL, body). */
export function editContext(request: FastifyRequest<Versioned>): EditContext {
  const key = request.headers['idempotency-key'];
  return {
    ...callContext(request),
    ...(key ? { idempotency: { key, request: [request.method, request.url, request.body ?? null] } } : {}),
  };
}

export function sendPlan(reply: FastifyReply, stored: StoredPlan | EditResult, status = 200) {
  if ('replayed' in stored && stored.replayed) reply.header('idempotent-replayed', 'true');
  return reply
    .code(status)
    .header('etag', formatEtag(stored.version))
    .type('application/json')
    .send(stored.plan);
}

export default async function carePlanRoutes(app: FastifyInstance) {
  /** Reads the plan, applies one change, and writes it back conditional on If-Match. */
  const edit = (
    request: FastifyRequest<Versioned>,
    write: Write,
    change: (plan: SharedCarePlan) => SharedCarePlan,
  ) => app.carePlans.edit(request.params.id, ifMatchOf(request), change, editContext(request), { write });
  const editSchema = (summary: string, extra: Record<string, unknown> = {}) => ({
    tags: ['care plans'],
    summary,
    headers: editHeaders,
    params: planIdParams,
    response: {
      200: planResponse('The plan after the change'),
      // Routes with a body can also meet the body limit and content-type checks.
      ...problems(400, 404, 412, 422, 428, 502, 503, 504, ...('body' in extra ? ([413, 415] as const) : [])),
    },
    ...extra,
  });

  app.post<{ Body: SharedCarePlan; Headers: { 'idempotency-key'?: string } }>(
    '/care-plans',
    {
      schema: {
        tags: ['care plans'],
        operationId: 'createCarePlan',
        summary: 'Create a shared-decision care plan',
        description:
          'Validates the plan, maps it to a FHIR R4 transaction Bundle (CarePlan, Goals, CareTeam, Observations, Conditions), ' +
          'validates every resource and pushes the Bundle to the FHIR server in one transaction. ' +
          'With an Idempotency-Key, a retry with the same body returns the same plan and creates nothing.',
        headers: {
          type: 'object',
          properties: { 'idempotency-key': idempotencyKeyHeader },
        },
        body: { $ref: 'SharedCarePlan#' },
        response: {
          201: planResponse('Created (or, for a replayed Idempotency-Key, the plan created first).', {
            ...etagHeader,
            Location: { type: 'string', description: '/care-plans/{id}' },
          }),
          ...problems(400, 409, 413, 415, 422, 429, 500, 502, 503, 504),
        },
      },
    },
    async (request, reply) => {
      const stored = await app.carePlans.create(request.body, {
        ...callContext(request),
        idempotencyKey: request.headers['idempotency-key'],
      });
      return sendPlan(reply.header('location', `/care-plans/${stored.plan.id}`), stored, 201);
    },
  );

  app.get<{
    Querystring: { patient: string; status?: string; updatedSince?: string; limit: number; cursor?: string };
  }>(
    '/care-plans',
    {
      schema: {
        tags: ['care plans'],
        operationId: 'searchCarePlans',
        summary: "Search a patient's plans",
        description: 'Plans of one patient, oldest change first, with cursor paging (the cursor is opaque).',
        querystring: {
          type: 'object',
          additionalProperties: false,
          required: ['patient'],
          properties: {
            patient: {
              type: 'string',
              pattern: `^Patient/${FHIR_ID_PATTERN}$`,
              description: 'Patient/<id>',
            },
            status: {
              type: 'string',
              enum: ['draft', 'active', 'on-hold', 'revoked', 'completed', 'entered-in-error', 'unknown'],
            },
            updatedSince: {
              type: 'string',
              format: 'fhir-date-time',
              description: 'Only plans changed at or after this time.',
            },
            limit: { type: 'integer', minimum: 1, maximum: 100, default: 20 },
            cursor: { type: 'string', maxLength: 4096 },
          },
        },
        response: {
          200: {
            description: 'A page of plans',
            content: { 'application/json': { schema: { $ref: 'CarePlanPage#' } } },
          },
          ...problems(400, 502, 503, 504),
        },
      },
    },
    async (request) => {
      const { patient, status, updatedSince, limit, cursor } = request.query;
      const page = await app.carePlans.search(
        { patient, status, updatedSince },
        limit,
        cursor,
        callContext(request),
      );
      return { items: page.items.map((s) => s.plan), next: page.next };
    },
  );

  app.get<{ Querystring: { since?: string; limit: number } }>(
    '/care-plans/changes',
    {
      schema: {
        tags: ['sync'],
        operationId: 'listCarePlanChanges',
        summary: 'The change feed: new versions of plans, oldest first',
        description:
          'Start without `since` to read from the beginning; resume with the `next` cursor of the last answer. ' +
          'An empty `items` means you are up to date. Several changes of one plan between two reads show as its latest version; ' +
          'GET /care-plans/{id}/history lists every version.',
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            since: {
              type: 'string',
              maxLength: 4096,
              description: 'The `next` cursor of the previous answer.',
            },
            limit: { type: 'integer', minimum: 1, maximum: 500, default: 100 },
          },
        },
        response: {
          200: {
            description: 'Changes',
            content: { 'application/json': { schema: { $ref: 'ChangeFeedPage#' } } },
          },
          ...problems(400, 502, 503, 504),
        },
      },
    },
    async (request) => app.carePlans.changes(request.query.since, request.query.limit, callContext(request)),
  );

  app.get<{ Params: { id: string }; Headers: { 'if-none-match'?: string } }>(
    '/care-plans/:id',
    {
      schema: {
        tags: ['care plans'],
        operationId: 'readCarePlan',
        summary: 'Read a care plan',
        description:
          'Reads the CarePlan and the resources it references from the FHIR server and returns the plan. ' +
          'With Accept: application/fhir+json, returns the FHIR resources as a Bundle instead. Honours If-None-Match (304).',
        params: planIdParams,
        response: {
          200: {
            description: 'The plan',
            headers: etagHeader,
            content: {
              'application/json': { schema: { $ref: 'SharedCarePlan#' } },
              'application/fhir+json': { schema: { $ref: 'FhirResource#' } },
              'text/html': {
                schema: {
                  type: 'string',
                  description:
                    'The plan as a printable, plain-language page (when the client prefers text/html, as browsers do).',
                },
              },
            },
          },
          304: { type: 'null', description: 'Not modified (If-None-Match matches the current ETag)' },
          ...problems(400, 404, 406, 502, 503, 504),
        },
      },
    },
    async (request, reply) => {
      const stored = await app.carePlans.read(request.params.id, callContext(request));
      reply.header('etag', formatEtag(stored.version));
      const ifNoneMatch = request.headers['if-none-match'];
      if (
        ifNoneMatch?.split(',').some((tag) => tag.trim() === '*' || versionOfEtag(tag) === stored.version)
      ) {
        return reply.code(304).send();
      }
      reply.header('vary', 'Accept');
      if (prefersHtml(request.headers.accept)) {
        return reply
          .type('text/html; charset=utf-8')
          .header('content-security-policy', PLAN_PAGE_CSP)
          .header('x-content-type-options', 'nosniff')
          .header('referrer-policy', 'no-referrer')
          .header('cache-control', 'private, no-cache')
          .send(renderPlanPage(stored.plan));
      }
      const wanted = request.answerType; // negotiated in src/http/plugins/conformance.ts
      if (/application\/fhir\+json/.test(wanted)) {
        return reply
          .type('application/fhir+json')
          .send(planResourcesBundle(stored, app.config.fhirPublicBaseUrl));
      }
      return reply.type('application/json').send(stored.plan);
    },
  );

  app.put<Versioned & { Body: SharedCarePlan }>(
    '/care-plans/:id',
    {
      schema: editSchema('Replace a plan (version-checked)', {
        operationId: 'replaceCarePlan',
        description:
          'The body is the plan as GET returned it, edited. Goals, team, activities and the rest are updated in one ' +
          'transaction with the CarePlan: a conflict or failure changes nothing. Parts left out are removed.',
        body: { $ref: 'SharedCarePlan#' },
      }),
    },
    async (request, reply) =>
      sendPlan(
        reply,
        await app.carePlans.replace(
          request.params.id,
          request.body,
          ifMatchOf(request),
          editContext(request),
        ),
      ),
  );

  app.delete<Versioned & { Querystring: { status: 'revoked' | 'entered-in-error' } }>(
    '/care-plans/:id',
    {
      schema: editSchema('End a plan (revoked, or entered-in-error); its history stays', {
        operationId: 'endCarePlan',
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            status: { type: 'string', enum: ['revoked', 'entered-in-error'], default: 'revoked' },
          },
        },
      }),
    },
    async (request, reply) =>
      sendPlan(reply, await edit(request, 'end', (plan) => ({ ...plan, status: request.query.status }))),
  );

  app.get<{ Params: { id: string } }>(
    '/care-plans/:id/history',
    {
      schema: {
        tags: ['sync'],
        operationId: 'readCarePlanHistory',
        summary: 'The versions of a plan, newest first',
        params: planIdParams,
        response: {
          200: {
            description: 'Versions',
            content: { 'application/json': { schema: { $ref: 'PlanHistory#' } } },
          },
          ...problems(400, 404, 502, 503, 504),
        },
      },
    },
    async (request) => ({
      items: await app.carePlans.history(request.params.id, callContext(request)),
    }),
  );

  // Goals and activities: add, change (e.g. record a goal's progress), remove; each version-checked.
  const parts = [
    {
      part: 'goals',
      param: 'goalId',
      schema: 'Goal',
      label: 'goal',
      change: 'Change a goal (e.g. record progress: achievementStatus, lifecycleStatus)',
      remove: 'Remove a goal (and the links to it)',
    },
    {
      part: 'activities',
      param: 'activityId',
      schema: 'Activity',
      label: 'activity',
      change: 'Change an activity',
      remove: 'Remove an activity',
    },
  ] as const;
  for (const { part, param, schema, label, change, remove } of parts) {
    type Named = Versioned & { Params: Record<typeof param, string> };
    app.post<Versioned & { Body: Goal | Activity }>(
      `/care-plans/:id/${part}`,
      {
        schema: editSchema(`Add ${label === 'activity' ? 'an' : 'a'} ${label}`, {
          operationId: `add${schema}`,
          body: { $ref: `${schema}#` },
          response: {
            201: planResponse(`The plan with the new ${label}`),
            ...problems(400, 404, 412, 413, 415, 422, 428, 502, 503, 504),
          },
        }),
      },
      async (request, reply) => {
        const stored = await edit(request, `${label}-add`, (plan) =>
          addPart(plan, part, request.body as never),
        );
        const added = stored.plan[part]?.at(-1);
        return sendPlan(
          reply.header('location', `/care-plans/${stored.plan.id}/${part}/${added?.id}`),
          stored,
          201,
        );
      },
    );
    app.patch<Named & { Body: Partial<Goal & Activity> }>(
      `/care-plans/:id/${part}/:${param}`,
      {
        schema: editSchema(change, {
          operationId: `change${schema}`,
          params: partParams(param),
          body: { $ref: `${schema}Patch#` },
        }),
      },
      async (request, reply) =>
        sendPlan(
          reply,
          await edit(request, `${label}-change`, (plan) =>
            changePart(plan, part, request.params[param], request.body as never),
          ),
        ),
    );
    app.delete<Named>(
      `/care-plans/:id/${part}/:${param}`,
      { schema: editSchema(remove, { operationId: `remove${schema}`, params: partParams(param) }) },
      async (request, reply) =>
        sendPlan(
          reply,
          await edit(request, `${label}-remove`, (plan) => removePart(plan, part, request.params[param])),
        ),
    );
  }
}
