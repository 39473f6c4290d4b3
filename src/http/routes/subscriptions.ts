// /subscriptions: signed webhooks for services that sync care plans (the work is in src/subscriptions/).
import type { FastifyInstance } from 'fastify';
import { FHIR_ID_PATTERN } from '../../fhir/fhir-id.js';
import { EVENT_TYPES } from '../../subscriptions/subscription-resource.js';
import type { NewSubscription } from '../../subscriptions/subscription-service.js';
import { callContext } from '../call-context.js';
import { problems } from './responses.js';

const subscriptionParams = {
  type: 'object',
  required: ['id'],
  properties: {
    id: { type: 'string', pattern: `^${FHIR_ID_PATTERN}$`, description: 'The subscription id.' },
  },
} as const;

const events = {
  type: 'array',
  items: { type: 'string', enum: [...EVENT_TYPES] },
  minItems: 1,
  maxItems: EVENT_TYPES.length,
  uniqueItems: true,
  description:
    '`care-plan.created` (a new plan), `care-plan.updated` (any change of any part: the ETag moved), `care-plan.ended` ' +
    '(revoked, entered-in-error, completed). Default: all.',
} as const;

const subscriptionProperties = {
  id: { type: 'string' },
  endpoint: { type: 'string' },
  events,
  patient: { type: 'string', description: 'Only plans of this patient.' },
  description: { type: 'string' },
  status: { type: 'string', enum: ['active', 'error', 'off'] },
} as const;

export const subscriptionSchemas = [
  {
    $id: 'Subscription',
    type: 'object',
    required: ['id', 'endpoint', 'events', 'status'],
    properties: subscriptionProperties,
  },
  {
    $id: 'SubscriptionCreated',
    type: 'object',
    required: ['id', 'endpoint', 'events', 'status', 'secret'],
    properties: {
      ...subscriptionProperties,
      secret: {
        type: 'string',
        description: 'The signing secret (whsec_...). Shown only in this answer; keep it.',
      },
    },
  },
  {
    $id: 'SubscriptionStatus',
    type: 'object',
    required: ['id', 'status', 'lastEventNumber', 'lastDelivered', 'backlog', 'lastDeliveredAt', 'lastError'],
    properties: {
      id: { type: 'string' },
      status: { type: 'string', enum: ['active', 'error', 'off'] },
      lastEventNumber: { type: 'integer', description: 'The number of the newest event (settled) so far.' },
      lastDelivered: {
        type: 'integer',
        description: 'The number of the last event the receiver acknowledged.',
      },
      backlog: { type: 'integer', description: 'Events not yet acknowledged.' },
      lastDeliveredAt: { type: 'string', nullable: true },
      lastError: {
        type: 'object',
        nullable: true,
        required: ['message', 'at'],
        properties: { message: { type: 'string' }, at: { type: 'string' } },
      },
    },
  },
  {
    $id: 'WebhookDelivery',
    type: 'object',
    description:
      'The body of a delivery: POST <endpoint>, application/json, with the Standard Webhooks headers `webhook-id` ' +
      '(one per event, the same on every retry), `webhook-timestamp` (seconds since 1970) and `webhook-signature` ' +
      '(`v1,<base64 HMAC-SHA256 of "<webhook-id>.<webhook-timestamp>.<body>">` keyed with the secret\'s bytes after ' +
      '`whsec_`). Answer any 2xx to acknowledge; anything else is retried; 410 turns the subscription off. The ' +
      "callback's example headers sign this example's compact JSON (no spaces, as shown) with the example secret " +
      '`whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw`; a Standard Webhooks library verifies them (with its timestamp ' +
      'tolerance lifted, as the example is old).',
    required: ['type', 'timestamp', 'data'],
    properties: {
      type: { type: 'string', enum: [...EVENT_TYPES] },
      timestamp: { type: 'string', description: 'When the plan version was written (its lastUpdated).' },
      data: {
        type: 'object',
        required: ['subscription', 'eventNumber', 'plan'],
        properties: {
          subscription: { type: 'string' },
          eventNumber: {
            type: 'integer',
            minimum: 1,
            description: '1, 2, 3... per subscription, without gaps.',
          },
          plan: {
            type: 'object',
            required: ['id', 'version', 'status', 'lastUpdated'],
            properties: {
              id: { type: 'string' },
              version: { type: 'string' },
              status: { type: 'string' },
              patient: { type: 'string' },
              lastUpdated: { type: 'string' },
            },
          },
        },
      },
    },
    example: {
      type: 'care-plan.updated',
      timestamp: '2026-11-20T10:15:00.000Z',
      data: {
        subscription: 'b7f4c2e0-5d1a-4f7e-9a3b-2c8d1e6f0a94',
        eventNumber: 7,
        plan: {
          id: '3f2a9c1e-8b4d-4e6f-a1c2-7d9e0b3f5a68',
          version: '4',
          status: 'active',
          patient: 'Patient/maria-lopez',
          lastUpdated: '2026-11-20T10:15:00.000Z',
        },
      },
    },
  },
];

/** The delivery, as an OpenAPI callback of POST /subscriptions (OpenAPI 3.0 has no `webhooks`). */
const deliveryCallback = {
  callbacks: {
    carePlanEvent: {
      '{$request.body#/endpoint}': {
        post: {
          requestBody: {
            description:
              'Headers: webhook-id, webhook-timestamp, webhook-signature (Standard Webhooks); see WebhookDelivery.',
            content: { 'application/json': { schema: { $ref: 'WebhookDelivery#' } } },
          },
          responses: {
            '2XX': { description: 'Acknowledged: the next event follows.' },
            410: { description: 'Gone: the subscription turns off.' },
          },
        },
      },
    },
  },
};

const subscriptionAnswer = (description: string, ref: string) => ({
  description,
  content: { 'application/json': { schema: { $ref: `${ref}#` } } },
});

export default async function subscriptionRoutes(app: FastifyInstance) {
  app.post<{ Body: NewSubscription }>(
    '/subscriptions',
    {
      schema: {
        tags: ['webhooks'],
        operationId: 'createSubscription',
        summary: 'Subscribe to care plan changes: signed webhooks, at least once, in order',
        description:
          'The service POSTs one event per new plan version to `endpoint` (see the callback and the WebhookDelivery ' +
          'schema), numbered 1, 2, 3... per subscription; event n+1 only after n was acknowledged (2xx). Failures are ' +
          'retried with exponential backoff for WEBHOOK_RETRY_FOR_MS (24 h), then the subscription turns `error` until ' +
          '`$replay`. The endpoint must be https and reach a public address (plain http and private addresses only for ' +
          'hosts in WEBHOOK_ALLOWED_HOSTS; with the embedded FHIR server, loopback). The secret is in this answer only.',
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['endpoint'],
          properties: {
            endpoint: {
              type: 'string',
              minLength: 1,
              maxLength: 2000,
              description: 'The receiver URL (https).',
            },
            events,
            patient: {
              type: 'string',
              pattern: `^Patient/${FHIR_ID_PATTERN}$`,
              description: 'Only plans of this patient (a patient token: its own patient, the default).',
            },
            description: { type: 'string', minLength: 1, maxLength: 500, pattern: '\\S' },
          },
          examples: [
            {
              endpoint: 'http://127.0.0.1:8080/webhooks',
              events: ['care-plan.created', 'care-plan.updated', 'care-plan.ended'],
              patient: 'Patient/maria-lopez',
              description: 'Sync for the community care app',
            },
          ],
        },
        ...deliveryCallback,
        response: {
          201: {
            ...subscriptionAnswer('Subscribed; the secret is shown only here', 'SubscriptionCreated'),
            headers: { Location: { type: 'string', description: '/subscriptions/{id}' } },
          },
          ...problems(400, 413, 415, 422, 502, 503, 504),
        },
      },
    },
    async (request, reply) => {
      const created = await app.subscriptions.create(request.body, callContext(request));
      return reply.code(201).header('location', `/subscriptions/${created.id}`).send(created);
    },
  );

  app.get(
    '/subscriptions',
    {
      schema: {
        tags: ['webhooks'],
        operationId: 'listSubscriptions',
        summary: 'The subscriptions (never their secrets)',
        response: {
          200: {
            description: 'Subscriptions',
            content: {
              'application/json': {
                schema: {
                  type: 'object',
                  required: ['items'],
                  properties: { items: { type: 'array', items: { $ref: 'Subscription#' } } },
                },
              },
            },
          },
          ...problems(502, 503, 504),
        },
      },
    },
    async (request) => ({ items: await app.subscriptions.list(callContext(request)) }),
  );

  app.get<{ Params: { id: string } }>(
    '/subscriptions/:id',
    {
      schema: {
        tags: ['webhooks'],
        operationId: 'readSubscription',
        summary: 'A subscription (never its secret)',
        params: subscriptionParams,
        response: {
          200: subscriptionAnswer('The subscription', 'Subscription'),
          ...problems(400, 404, 502, 503, 504),
        },
      },
    },
    async (request) => app.subscriptions.read(request.params.id, callContext(request)),
  );

  app.delete<{ Params: { id: string } }>(
    '/subscriptions/:id',
    {
      schema: {
        tags: ['webhooks'],
        operationId: 'deleteSubscription',
        summary: 'Unsubscribe: no delivery attempt starts after this answers',
        params: subscriptionParams,
        response: {
          204: { description: 'Deleted', type: 'null' },
          ...problems(400, 404, 502, 503, 504),
        },
      },
    },
    async (request, reply) => {
      await app.subscriptions.delete(request.params.id, callContext(request));
      return reply.code(204).send();
    },
  );

  app.get<{ Params: { id: string } }>(
    '/subscriptions/:id/status',
    {
      schema: {
        tags: ['webhooks'],
        operationId: 'readSubscriptionStatus',
        summary: 'Delivery status: the last event number, the last delivered, the last error, the backlog',
        params: subscriptionParams,
        response: {
          200: subscriptionAnswer('The delivery status', 'SubscriptionStatus'),
          ...problems(400, 404, 502, 503, 504),
        },
      },
    },
    async (request) => app.subscriptions.status(request.params.id, callContext(request)),
  );

  app.post<{ Params: { id: string }; Body: { fromEvent: number } }>(
    '/subscriptions/:id/$replay',
    {
      schema: {
        tags: ['webhooks'],
        operationId: 'replaySubscription',
        summary: 'Deliver again from event n (also turns an `error` or `off` subscription back on)',
        params: subscriptionParams,
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['fromEvent'],
          properties: { fromEvent: { type: 'integer', minimum: 1, maximum: 100_000 } },
          examples: [{ fromEvent: 1 }],
        },
        response: {
          200: subscriptionAnswer('The delivery status after the change', 'SubscriptionStatus'),
          ...problems(400, 404, 413, 415, 422, 502, 503, 504),
        },
      },
    },
    async (request) =>
      app.subscriptions.replay(request.params.id, request.body.fromEvent, callContext(request)),
  );
}
