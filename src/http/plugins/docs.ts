// The OpenAPI 3 document (generated from the routes' schemas) at /openapi.json and Swagger UI at /docs.
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { isPublicRoute } from '../route-access.js';
import { exampleFhirBundle, exampleFhirCarePlan, examplePlan } from '../schemas.js';
import { offeredTypes } from './conformance.js';

type OpenApi = {
  paths?: Record<
    string,
    Record<string, { requestBody?: { content?: Record<string, Record<string, unknown>> } }>
  >;
};

/** Request examples that work as they are in Swagger UI's "Try it out"; the first is the richest. */
function addExamples(document: OpenApi): OpenApi {
  const examples = {
    'patient-led-plan': {
      summary: 'A patient-led plan with a family caregiver, barriers, strengths and a shared decision',
      value: examplePlan,
    },
    'minimal-plan': {
      summary: 'The smallest plan: a patient, a status and an intent',
      value: { patient: { reference: 'Patient/example' }, status: 'draft', intent: 'proposal' },
    },
  };
  // OpenAPI 3.0 has no `dependencies`: express each as an equivalent allOf (the document only; validation of
  // requests uses the schemas as they are).
  const schemas = (document as { components?: { schemas?: Record<string, Record<string, unknown>> } })
    .components?.schemas;
  for (const schema of Object.values(schemas ?? {})) {
    const dependencies = schema.dependencies as Record<string, string[]> | undefined;
    if (!dependencies) continue;
    delete schema.dependencies;
    schema.allOf = [
      ...((schema.allOf as unknown[]) ?? []),
      ...Object.entries(dependencies).map(([key, needs]) => ({
        anyOf: [{ not: { required: [key] } }, { required: [key, ...needs] }],
      })),
    ];
  }
  for (const path of ['/care-plans', '/care-plans/$to-fhir']) {
    const content = document.paths?.[path]?.post?.requestBody?.content;
    for (const media of Object.values(content ?? {})) media.examples = examples;
  }
  const fhirExamples = {
    'pco-bundle': {
      summary:
        'A Bundle (collection) with a Person-Centered Outcomes CarePlan and the patient-expressed Goal it references',
      value: exampleFhirBundle,
    },
    'contained-careplan': {
      summary: 'An HL7 R4 example CarePlan with its Goal, CareTeam and Condition contained',
      value: exampleFhirCarePlan,
    },
  };
  const fromFhir = document.paths?.['/care-plans/$from-fhir']?.post?.requestBody?.content;
  for (const media of Object.values(fromFhir ?? {})) media.examples = fhirExamples;
  return document;
}

/**
 * The webhook delivery (a callback of POST /subscriptions): its summary and its Standard Webhooks headers, which
 * @fastify/swagger's callbacks cannot carry (https://www.standardwebhooks.com, "Webhook headers").
 */
function addDeliveryHeaders(document: OpenApi): OpenApi {
  const callbacks = (
    document.paths?.['/subscriptions']?.post as
      | { callbacks?: Record<string, Record<string, Record<string, Record<string, unknown>>>> }
      | undefined
  )?.callbacks;
  for (const urls of Object.values(callbacks ?? {})) {
    for (const operations of Object.values(urls)) {
      const post = operations.post;
      if (!post) continue;
      post.summary = 'A care plan event, signed (Standard Webhooks)';
      const header = (name: string, description: string, example: string) => ({
        name,
        in: 'header',
        required: true,
        description,
        schema: { type: 'string' },
        example,
      });
      post.parameters = [
        header(
          'webhook-id',
          'One per event, the same on every retry of it.',
          'msg_2f1c9a0b7e6d4c3b8a5f1e2d3c4b5a69',
        ),
        header('webhook-timestamp', 'When this attempt was sent, in seconds since 1970.', '1795170900'),
        header(
          'webhook-signature',
          '`v1,<base64 HMAC-SHA256 of "<webhook-id>.<webhook-timestamp>.<body>">`, keyed with the bytes of the secret after `whsec_`.',
          // The WebhookDelivery example's compact JSON signed with the example secret its description names.
          'v1,zEgQwWXPk0wl+rRzBO8R1jMySKI9NFFFgeUpNRopGIE=',
        ),
      ];
    }
  }
  return document;
}

/** The route pattern of an OpenAPI path: /fhir/{type}/{id} -> /fhir/:type/:id. */
const routeOf = (path: string) => path.replace(/\{([^}]+)\}/g, ':$1');

const problemAnswer = (description: string) => ({
  description,
  content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } },
});

/**
 * Swagger UI's own route is not in the document (the plugin hides it): described here, so that the document
 * says it needs no token.
 */
function addDocsPage(document: OpenApi): OpenApi {
  document.paths = {
    ...document.paths,
    '/docs': {
      get: {
        tags: ['docs'],
        operationId: 'readApiDocs',
        summary: 'Swagger UI for this document',
        responses: {
          200: {
            description: 'The Swagger UI page',
            content: { 'text/html': { schema: { type: 'string' } } },
          },
        },
      },
    } as never,
  };
  return document;
}

/**
 * The bearer token security scheme (Swagger UI then offers "Authorize"), required by every operation but the
 * public ones (`security: []`, see isPublicRoute in src/http/route-access.ts); those that need a token also answer 401
 * and 403. Every operation can meet the rate limit (429, except the health probes), the header size limit
 * (431), and, where it declares the media types of its answers, content negotiation (406).
 */
function addSecurity(document: OpenApi, negotiated: Set<string>, authRequired: boolean): OpenApi {
  const doc = document as OpenApi & { components?: Record<string, unknown>; security?: unknown };
  // With AUTH_MODE=none nothing needs a token: the document served then says so (no scheme, no 401/403). The
  // committed openapi/openapi.json is the document of AUTH_MODE=jwt (scripts/write-openapi.mjs).
  if (authRequired)
    doc.components = {
      ...doc.components,
      securitySchemes: {
        bearerAuth: {
          type: 'http',
          scheme: 'bearer',
          bearerFormat: 'JWT',
          description:
            'An access token (JWT) from the configured issuer, with SMART on FHIR scopes on CarePlan: ' +
            'system/CarePlan.cruds, user/CarePlan.rs, patient/CarePlan.rs (plus a patient claim), or the v1 forms ' +
            '.read/.write/.*. Needed when the service runs with AUTH_MODE=jwt.',
        },
      },
    };
  if (authRequired) doc.security = [{ bearerAuth: [] }];
  for (const [path, item] of Object.entries(doc.paths ?? {})) {
    const route = routeOf(path);
    for (const [method, operation] of Object.entries(item) as [string, Record<string, unknown>][]) {
      const responses = (operation.responses ?? {}) as Record<string, unknown>;
      const isPublic = !authRequired || isPublicRoute(route);
      if (isPublic && authRequired) operation.security = [];
      operation.responses = {
        ...(isPublic
          ? {}
          : {
              401: problemAnswer(
                'No valid access token (missing, expired, wrong issuer/audience, bad signature).',
              ),
              403: problemAnswer("The token's scopes do not allow this operation."),
            }),
        ...(negotiated.has(`${method.toUpperCase()} ${route}`)
          ? { 406: problemAnswer('None of the media types this answer has is acceptable (Accept).') }
          : {}),
        ...(route.startsWith('/health/')
          ? {}
          : { 429: problemAnswer('Too many requests from this client; retry after Retry-After.') }),
        431: problemAnswer('The request line and headers together are larger than 16 KiB.'),
        ...responses,
      };
    }
  }
  return doc;
}

export default fp(async function docs(app: FastifyInstance) {
  // The routes that negotiate their answer's media type (src/http/plugins/conformance.ts), so may answer 406.
  const negotiated = new Set<string>();
  app.addHook('onRoute', (route) => {
    if (offeredTypes(route.schema).length === 0) return;
    for (const method of [route.method].flat()) negotiated.add(`${method} ${route.url}`);
  });
  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'shared-care-plans',
        version: '0.1.0',
        description:
          'Shared-decision care plans over REST, mapped faithfully onto FHIR R4 (CarePlan, Goal, CareTeam, Observation, ' +
          'Condition) and stored on a FHIR server. Errors are application/problem+json (RFC 9457).',
        license: { name: 'Apache-2.0', url: 'https://www.apache.org/licenses/LICENSE-2.0' },
      },
      servers: [{ url: '/' }],
      tags: [
        { name: 'care plans', description: 'Create and read shared-decision care plans' },
        { name: 'mapping', description: 'The FHIR mapping, both ways, without storing anything' },
        { name: 'sync', description: 'Versions and the change feed, for services that keep plans in sync' },
        {
          name: 'webhooks',
          description: 'Signed webhooks: care plan changes pushed, at least once, in order',
        },
        { name: 'health', description: 'Liveness and readiness' },
        { name: 'definitions', description: "This project's FHIR extensions and code systems" },
        { name: 'docs', description: 'This API document and Swagger UI' },
      ],
    },
    refResolver: {
      buildLocalReference: (json, _baseUri, _fragment, index) =>
        typeof json.$id === 'string' ? json.$id : `schema-${index}`,
    },
    transformObject: (documentObject) =>
      addSecurity(
        addDocsPage(
          addDeliveryHeaders(addExamples((documentObject as { openapiObject: OpenApi }).openapiObject)),
        ),
        negotiated,
        app.config.authMode === 'jwt',
      ) as never,
  });
  await app.register(swaggerUi, {
    routePrefix: '/docs',
    uiConfig: { docExpansion: 'list', deepLinking: true },
  });
  app.get(
    '/openapi.json',
    {
      schema: {
        tags: ['docs'],
        operationId: 'readOpenApiDocument',
        summary: 'This OpenAPI 3 document',
        response: {
          200: {
            description: 'The OpenAPI document (also committed as openapi/openapi.json)',
            content: { 'application/json': { schema: { type: 'object' } } },
          },
        },
      },
    },
    async (_request, reply) => reply.type('application/json').send(app.swagger()),
  );
});
