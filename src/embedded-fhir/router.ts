import {
  allOk,
  badRequest,
  created,
  getResourceTypes,
  getSearchParameters,
  isResourceType,
  notFound,
  OperationOutcomeError,
  preconditionFailed,
} from '@medplum/core';
import type { FhirRequest, FhirResponse, FhirRouteHandler } from '@medplum/fhir-router';
import { createResourceImpl, FhirRouter } from '@medplum/fhir-router';
import type { CapabilityStatement, Resource } from '@medplum/fhirtypes';
import type { EmbeddedRepository } from './repository.js';
import {
  isJsonObject,
  MATCHABLE_TYPES,
  MEDPLUM_VERSION,
  outcome,
  parseIfMatch,
  SOFTWARE_NAME,
  singleHeader,
} from './router-common.js';
import { invalidSearch, searchHandler } from './search.js';
import { batchHandler, conditionalMatches } from './transaction.js';

export interface EmbeddedRouterOptions {
  /** Base URL of the server (`http://host:port/fhir`), known once it listens; used for links. */
  readonly baseUrl: () => string;
}

/** Creates the FhirRouter for one repository. */
export function createEmbeddedRouter(repo: EmbeddedRepository, options: EmbeddedRouterOptions): FhirRouter {
  const router = new FhirRouter();
  const replace = (method: string, path: string, handler: FhirRouteHandler): void => {
    const segments = path.split('/').filter(Boolean);
    const route = router.router.routes.find(
      (r) =>
        r.method === method &&
        r.path.length === segments.length &&
        r.path.every((s, i) => (s.param ? `:${s.value}` : s.value) === segments[i]),
    );
    if (!route) {
      throw new Error(`Unsupported @medplum/fhir-router version: route ${method} ${path} not found`);
    }
    route.handler = handler;
  };

  const originalBatch = router.find('POST', '')?.handler;
  if (!originalBatch) {
    throw new Error('Unsupported @medplum/fhir-router version: batch route not found');
  }
  const search = (req: FhirRequest): Promise<FhirResponse> => searchHandler(req, repo, options.baseUrl());

  replace('GET', '', async () => [
    badRequest('System-level search is not supported; search one resource type'),
  ]);
  replace('POST', '', (req, _repo, r) => batchHandler(req, repo, r, originalBatch, options.baseUrl()));
  replace('GET', ':resourceType', search);
  replace('POST', ':resourceType/_search', search);
  replace('POST', ':resourceType', async (req, _repo, _router, routeOptions) => {
    const { resourceType } = req.params;
    const resource = req.body as Resource | undefined;
    if (!isJsonObject(resource)) {
      return [badRequest('Request body must be a FHIR resource (JSON object)')];
    }
    const ifNoneExist = singleHeader(req.headers?.['if-none-exist']);
    if (ifNoneExist !== undefined) {
      const [existing] = await conditionalMatches(repo, `${resourceType}?${ifNoneExist}`, '');
      if (existing) {
        return [allOk, existing];
      }
    }
    // In a batch, Medplum has already assigned the id (so that references to the entry can be rewritten)
    return createResourceImpl(resourceType as Resource['resourceType'], resource, repo, {
      assignedId: Boolean(routeOptions?.batch),
    });
  });
  // Conditional update/delete/patch: criteria Medplum cannot evaluate would silently match nothing
  for (const method of ['PUT', 'DELETE', 'PATCH'] as const) {
    const medplumHandler = router.find(method, 'Patient?_id=x')?.handler;
    if (!medplumHandler) {
      throw new Error(`Unsupported @medplum/fhir-router version: conditional ${method} route not found`);
    }
    replace(method, ':resourceType', async (req, r, fhirRouter, routeOptions) => {
      const criteria = new URLSearchParams(
        Object.entries(req.query).flatMap(([k, v]) =>
          (Array.isArray(v) ? v : [v ?? '']).map((x): [string, string] => [k, x]),
        ),
      ).toString();
      await conditionalMatches(repo, `${req.params.resourceType}?${criteria}`, '');
      return medplumHandler(req, r, fhirRouter, routeOptions);
    });
  }
  replace('PUT', ':resourceType/:id', (req) => updateHandler(req, repo));
  replace('PATCH', ':resourceType/:id', async (req) => {
    const { resourceType, id } = req.params;
    if (!Array.isArray(req.body)) {
      return [badRequest('PATCH body must be a JSON Patch array (application/json-patch+json)')];
    }
    checkIfMatch(repo, resourceType, id, req);
    return [allOk, await repo.patchResource(resourceType as Resource['resourceType'], id, req.body)];
  });
  replace('DELETE', ':resourceType/:id', async (req) => {
    const { resourceType, id } = req.params;
    checkIfMatch(repo, resourceType, id, req);
    await repo.deleteResource(resourceType, id);
    return [allOk];
  });
  replace('GET', ':resourceType/:id/_history', async (req) => {
    const { resourceType, id } = req.params;
    const number = (name: string): number | undefined => {
      const value = req.query[name];
      const text = Array.isArray(value) ? value[value.length - 1] : value;
      if (text !== undefined && !/^\d+$/.test(text)) {
        throw invalidSearch(`${name} must be a non-negative integer`);
      }
      return text === undefined ? undefined : Number(text);
    };
    const [offset, count] = [number('_offset') ?? 0, number('_count')];
    const bundle = await repo.readHistory(resourceType, id, { offset, limit: count });
    for (const entry of bundle.entry ?? []) {
      entry.fullUrl = `${options.baseUrl()}/${resourceType}/${id}`;
    }
    // Paging links, as a history is a paged Bundle (R4 http.html#history): a client walks a long history by `next`.
    if (count) {
      const page = (relation: string, at: number) => ({
        relation,
        url: `${options.baseUrl()}/${resourceType}/${id}/_history?_count=${count}&_offset=${at}`,
      });
      bundle.link = [page('self', offset)];
      if (offset + count < (bundle.total ?? 0)) bundle.link.push(page('next', offset + count));
    }
    return [allOk, bundle];
  });
  router.add('GET', ':resourceType/_history', async () => [
    badRequest('Type-level history is not supported; use instance history'),
  ]);
  let capabilities: CapabilityStatement | undefined;
  router.add('GET', 'metadata', async () => {
    capabilities ??= buildCapabilityStatement(options.baseUrl());
    return [allOk, capabilities];
  });

  // Every route with a :resourceType segment answers 404 for a type that does not exist in FHIR R4
  for (const route of router.router.routes) {
    if (route.path.some((s) => s.param && s.value === 'resourceType')) {
      const inner = route.handler;
      route.handler = async (req, r, fhirRouter, routeOptions) =>
        isResourceType(req.params.resourceType)
          ? inner(req, r, fhirRouter, routeOptions)
          : [outcome(notFound, `Unknown resource type "${req.params.resourceType}"`)];
    }
  }
  return router;
}

// ---------------------------------------------------------------------------------------------------------
// Update / If-Match

function checkIfMatch(repo: EmbeddedRepository, resourceType: string, id: string, req: FhirRequest): void {
  const expected = parseIfMatch(req.headers?.['if-match']);
  if (expected === undefined) {
    return;
  }
  const current = repo.currentVersion(resourceType, id);
  if (current === undefined || (expected !== '*' && current !== expected)) {
    throw new OperationOutcomeError(
      outcome(
        preconditionFailed,
        `If-Match ${expected} does not match current version ${current ?? '(none)'}`,
      ),
    );
  }
}

async function updateHandler(req: FhirRequest, repo: EmbeddedRepository): Promise<FhirResponse> {
  const { resourceType, id } = req.params;
  const resource = req.body as Resource | undefined;
  if (!isJsonObject(resource)) {
    return [badRequest('Request body must be a FHIR resource (JSON object)')];
  }
  if (resource.resourceType !== resourceType) {
    return [badRequest(`Incorrect resource type: expected ${resourceType}`, 'resourceType')];
  }
  if (resource.id !== id) {
    return [badRequest('Resource id must be present and equal the id in the URL', `${resourceType}.id`)];
  }
  checkIfMatch(repo, resourceType, id, req);
  const existed = repo.exists(resourceType, id);
  const result = await repo.updateResource(resource);
  return [existed ? allOk : created, result];
}

// ---------------------------------------------------------------------------------------------------------
// CapabilityStatement

function buildCapabilityStatement(baseUrl: string): CapabilityStatement {
  const interactions = [
    'read',
    'vread',
    'update',
    'patch',
    'delete',
    'history-instance',
    'create',
    'search-type',
  ];
  return {
    resourceType: 'CapabilityStatement',
    status: 'active',
    date: new Date().toISOString(),
    kind: 'instance',
    software: { name: SOFTWARE_NAME, version: MEDPLUM_VERSION },
    implementation: {
      description: 'In-memory FHIR R4 server for development and tests: all data is lost when it stops',
      url: baseUrl,
    },
    fhirVersion: '4.0.1',
    format: ['application/fhir+json', 'json'],
    patchFormat: ['application/json-patch+json'],
    rest: [
      {
        mode: 'server',
        interaction: [{ code: 'transaction' }, { code: 'batch' }],
        resource: getResourceTypes()
          .slice()
          .sort()
          .map((type) => ({
            type,
            versioning: 'versioned',
            readHistory: true,
            updateCreate: true,
            conditionalCreate: true,
            conditionalUpdate: true,
            conditionalDelete: 'single',
            interaction: interactions.map((code) => ({ code: code as 'read' })),
            searchParam: Object.values(getSearchParameters(type) ?? {})
              .filter((sp) => MATCHABLE_TYPES.has(sp.type ?? '') && sp.code)
              .map((sp) => ({ name: sp.code as string, type: sp.type as 'token', definition: sp.url })),
          })),
      },
    ],
  };
}
