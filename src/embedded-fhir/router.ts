/**
 * Medplum's FhirRouter, adjusted into a conformant FHIR R4 REST surface for the embedded server:
 * - unknown resource types -> 404; unsupported/unknown search parameters -> 400 (Medplum silently
 *   matched nothing); default page size 20 (max 1000) with self/next/previous links; `_include` and
 *   `_revinclude`; multi-key `_sort` precedence fixed;
 * - `If-Match` accepted as `W/"v"`, `"v"` or bare `v` on PUT, PATCH and DELETE; PUT to a new id -> 201;
 * - transactions: conditional creates/updates/deletes are resolved here, before Medplum sees them, which
 *   also lifts Medplum's limit of 8 entries for transactions containing conditional operations; a
 *   `urn:uuid:` reference that matches no entry is rejected; failure responses name the failing entry;
 * - `GET metadata` returns a CapabilityStatement.
 */
import type { IncludeTarget, SearchRequest, WithId } from '@medplum/core';
import {
  allOk,
  badRequest,
  created,
  evalFhirPath,
  formatSearchQuery,
  getReferenceString,
  getResourceTypes,
  getSearchParameter,
  getSearchParameters,
  isOk,
  isResourceType,
  multipleMatches,
  normalizeOperationOutcome,
  notFound,
  OperationOutcomeError,
  Operator,
  parseSearchRequest,
  preconditionFailed,
} from '@medplum/core';
import type { FhirRequest, FhirResponse, FhirRouteHandler } from '@medplum/fhir-router';
import { createResourceImpl, FhirRouter } from '@medplum/fhir-router';
import type {
  Bundle,
  BundleEntry,
  BundleEntryRequest,
  BundleLink,
  CapabilityStatement,
  OperationOutcome,
  Resource,
} from '@medplum/fhirtypes';
import type { EmbeddedRepository } from './repository.js';

export const MEDPLUM_VERSION = '4.5.2';
export const SOFTWARE_NAME = `shared-care-plans embedded FHIR server (Medplum fhir-router ${MEDPLUM_VERSION})`;
export const DEFAULT_PAGE_SIZE = 20;
export const MAX_PAGE_SIZE = 1000;

/** Search parameter types that Medplum's in-memory matcher evaluates; others would silently match nothing. */
const MATCHABLE_TYPES = new Set(['reference', 'string', 'uri', 'token', 'date']);
/** Result parameters accepted and ignored (presentation only, they do not change which resources match). */
const IGNORED_RESULT_PARAMETERS = new Set(['_format', '_pretty', '_total', '_elements', '_summary']);
const RESULT_PARAMETERS = new Set(['_count', '_offset', '_sort', '_include', '_revinclude', '_', '_cursor']);
const LITERAL_REFERENCE = /^([A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})$/;
const UUID_URN = /^urn:uuid:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

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
    const bundle = await repo.readHistory(resourceType, id, {
      offset: number('_offset'),
      limit: number('_count'),
    });
    for (const entry of bundle.entry ?? []) {
      entry.fullUrl = `${options.baseUrl()}/${resourceType}/${id}`;
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

/**
 * Parses an If-Match value: `W/"v"`, `"v"` or bare `v` (`*` means "any current version").
 * Throws 400 on anything else.
 */
export function parseIfMatch(header: string | string[] | undefined): string | undefined {
  const value = (Array.isArray(header) ? header[0] : header)?.trim();
  if (!value) {
    return undefined;
  }
  const match = /^(?:W\/)?"([^"]+)"$/.exec(value) ?? /^([^"\s,]+)$/.exec(value);
  if (!match) {
    throw new OperationOutcomeError(badRequest(`Invalid If-Match header: ${value}`));
  }
  return match[1];
}

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
// Search

async function searchHandler(
  req: FhirRequest,
  repo: EmbeddedRepository,
  baseUrl: string,
): Promise<FhirResponse> {
  const resourceType = req.params.resourceType as Resource['resourceType'];
  const query: Record<string, string | string[] | undefined> = { ...req.query };
  if (req.method === 'POST' && isJsonObject(req.body)) {
    for (const [key, value] of Object.entries(req.body as Record<string, unknown>)) {
      if (typeof value === 'string' || (Array.isArray(value) && value.every((v) => typeof v === 'string'))) {
        query[key] = value as string | string[];
      }
    }
  }
  const searchRequest = parseSearchRequest(resourceType, query);
  checkSearchRequest(searchRequest, query);
  const count = Math.min(searchRequest.count ?? DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE);
  const offset = searchRequest.offset ?? 0;
  const { include, revInclude } = searchRequest;
  const bundle = await repo.search({
    ...searchRequest,
    count,
    offset,
    include: undefined,
    revInclude: undefined,
  });
  const matches = (bundle.entry ?? []).map((e) => e.resource as WithId<Resource>);
  const entry: BundleEntry[] = matches.map((resource) => ({
    fullUrl: `${baseUrl}/${resource.resourceType}/${resource.id}`,
    resource,
    search: { mode: 'match' },
  }));
  for (const resource of await resolveIncludes(repo, matches, include, revInclude)) {
    entry.push({
      fullUrl: `${baseUrl}/${resource.resourceType}/${resource.id}`,
      resource,
      search: { mode: 'include' },
    });
  }
  const total = bundle.total ?? matches.length;
  const pageLink = (relation: string, pageOffset: number): BundleLink => ({
    relation,
    url: `${baseUrl}/${resourceType}${formatSearchQuery({ ...searchRequest, count, offset: pageOffset })}`,
  });
  const link = [pageLink('self', offset)];
  if (count > 0 && offset + count < total) {
    link.push(pageLink('next', offset + count));
  }
  if (offset > 0 && count > 0) {
    link.push(pageLink('previous', Math.max(0, offset - count)));
  }
  const result: Bundle = { resourceType: 'Bundle', type: 'searchset', total, link };
  if (entry.length) {
    result.entry = entry;
  }
  return [allOk, result];
}

function checkSearchRequest(
  searchRequest: SearchRequest,
  query: Record<string, string | string[] | undefined>,
): void {
  const { resourceType } = searchRequest;
  for (const key of Object.keys(query)) {
    const code = key.split(':')[0];
    if (code === '_has' || key.includes('.')) {
      throw invalidSearch(`Chained and _has searches are not supported: ${key}`);
    }
    if (code.startsWith('_') && !getSearchParameter(resourceType, code) && !RESULT_PARAMETERS.has(code)) {
      if (!IGNORED_RESULT_PARAMETERS.has(code)) {
        throw invalidSearch(`Unsupported search parameter: ${key}`);
      }
    }
  }
  for (const name of ['_count', '_offset']) {
    const value = query[name];
    const values = Array.isArray(value) ? value : value === undefined ? [] : [value];
    if (values.some((v) => !/^\d+$/.test(v))) {
      throw invalidSearch(`${name} must be a non-negative integer`);
    }
  }
  for (const filter of searchRequest.filters ?? []) {
    const param = getSearchParameter(resourceType, filter.code);
    if (!param) {
      throw invalidSearch(`Unknown search parameter "${filter.code}" for ${resourceType}`);
    }
    if (!MATCHABLE_TYPES.has(param.type ?? '')) {
      throw invalidSearch(`Search parameter "${filter.code}" (type ${param.type}) is not supported here`);
    }
  }
  for (const rule of searchRequest.sortRules ?? []) {
    if (!getSearchParameter(resourceType, rule.code)?.expression) {
      throw invalidSearch(`Unknown sort parameter "${rule.code}" for ${resourceType}`);
    }
  }
  for (const target of [...(searchRequest.include ?? []), ...(searchRequest.revInclude ?? [])]) {
    if (target.modifier === Operator.ITERATE) {
      throw invalidSearch(':iterate is not supported on _include/_revinclude');
    }
    if (
      !isResourceType(target.resourceType) ||
      !getSearchParameter(target.resourceType, target.searchParam)
    ) {
      throw invalidSearch(`Unknown include target ${target.resourceType}:${target.searchParam}`);
    }
  }
}

function invalidSearch(message: string): OperationOutcomeError {
  return new OperationOutcomeError(badRequest(message));
}

async function resolveIncludes(
  repo: EmbeddedRepository,
  matches: WithId<Resource>[],
  include: IncludeTarget[] | undefined,
  revInclude: IncludeTarget[] | undefined,
): Promise<WithId<Resource>[]> {
  if (!matches.length || (!include?.length && !revInclude?.length)) {
    return [];
  }
  const seen = new Set(matches.map((r) => getReferenceString(r)));
  const found: WithId<Resource>[] = [];
  const add = (resource: WithId<Resource>): void => {
    const key = getReferenceString(resource);
    if (!seen.has(key)) {
      seen.add(key);
      found.push(resource);
    }
  };
  for (const target of include ?? []) {
    const expression = getSearchParameter(target.resourceType, target.searchParam)?.expression;
    if (!expression) {
      continue;
    }
    for (const resource of matches.filter((r) => r.resourceType === target.resourceType)) {
      for (const value of evalFhirPath(expression, resource)) {
        const reference = (value as { reference?: unknown } | undefined)?.reference;
        const parts = typeof reference === 'string' ? LITERAL_REFERENCE.exec(reference) : null;
        if (
          !parts ||
          (target.targetType && parts[1] !== target.targetType) ||
          seen.has(reference as string)
        ) {
          continue;
        }
        if (repo.exists(parts[1], parts[2])) {
          add(await repo.readResource(parts[1], parts[2]));
        }
      }
    }
  }
  for (const target of revInclude ?? []) {
    const references = matches.map((r) => getReferenceString(r));
    const bundle = await repo.search({
      resourceType: target.resourceType as Resource['resourceType'],
      filters: [{ code: target.searchParam, operator: Operator.EQUALS, value: references.join(',') }],
    });
    for (const e of bundle.entry ?? []) {
      if (e.resource) {
        add(e.resource);
      }
    }
  }
  return found;
}

// ---------------------------------------------------------------------------------------------------------
// Batch / transaction

async function batchHandler(
  req: FhirRequest,
  repo: EmbeddedRepository,
  router: FhirRouter,
  medplumBatch: FhirRouteHandler,
  baseUrl: string,
): Promise<FhirResponse> {
  const bundle = req.body as Bundle | undefined;
  if (!isJsonObject(bundle) || bundle.resourceType !== 'Bundle') {
    return [badRequest('Expected a Bundle of type batch or transaction', 'resourceType')];
  }
  if (bundle.type !== 'batch' && bundle.type !== 'transaction') {
    return [badRequest('Bundle.type must be batch or transaction', 'Bundle.type')];
  }
  const entries = bundle.entry;
  if (!Array.isArray(entries) || entries.length === 0) {
    return [badRequest('Bundle.entry must be a non-empty array', 'Bundle.entry')];
  }
  for (const [i, entry] of entries.entries()) {
    if (!isJsonObject(entry) || !isJsonObject(entry.request) || typeof entry.request.url !== 'string') {
      return [badRequest('Each entry needs request.method and request.url', `Bundle.entry[${i}].request`)];
    }
    if (entry.resource !== undefined && !isJsonObject(entry.resource)) {
      return [badRequest('Entry resource must be a JSON object', `Bundle.entry[${i}].resource`)];
    }
    const request = entries[i].request as BundleEntryRequest;
    // Absolute URLs on this server are accepted as relative ones
    if (request.url.startsWith(`${baseUrl}/`)) {
      request.url = request.url.slice(baseUrl.length + 1);
    }
    if (request.ifMatch) {
      request.ifMatch = `W/"${parseIfMatch(request.ifMatch)}"`;
    }
  }
  const transaction = bundle.type === 'transaction';
  if (transaction) {
    checkBundleReferences(entries);
    await resolveConditionals(entries, repo);
  }
  repo.failedTarget = undefined;
  let result: OperationOutcome;
  let response: Resource | undefined;
  try {
    [result, response] = await medplumBatch(
      { ...req, config: { ...req.config, transactions: true } },
      repo,
      router,
    );
  } catch (err) {
    // A failing transaction entry throws out of Medplum's batch processor (after the rollback)
    result = normalizeOperationOutcome(err);
  }
  if (!isOk(result) || !response) {
    return [transaction ? describeTransactionFailure(result, entries, repo.failedTarget) : result];
  }
  for (const responseEntry of (response as Bundle).entry ?? []) {
    decorateResponseEntry(responseEntry);
  }
  return [result, response];
}

/** Every `urn:uuid:` reference inside a transaction must point at an entry of the same Bundle. */
function checkBundleReferences(entries: BundleEntry[]): void {
  const fullUrls = new Set(entries.map((e) => e.fullUrl).filter((u): u is string => typeof u === 'string'));
  entries.forEach((entry, i) => {
    visitReferences(entry.resource, `Bundle.entry[${i}].resource`, (reference, path) => {
      if (reference.startsWith('urn:uuid:') && !fullUrls.has(reference)) {
        throw new OperationOutcomeError(
          badRequest(`Reference ${reference} does not match the fullUrl of any entry in the Bundle`, path),
        );
      }
    });
  });
}

function visitReferences(
  value: unknown,
  path: string,
  visit: (reference: string, path: string) => void,
): void {
  if (Array.isArray(value)) {
    for (const [i, item] of value.entries()) {
      visitReferences(item, `${path}[${i}]`, visit);
    }
  } else if (isJsonObject(value)) {
    for (const [key, child] of Object.entries(value)) {
      if (key === 'reference' && typeof child === 'string') {
        visit(child, `${path}.reference`);
      } else {
        visitReferences(child, `${path}.${key}`, visit);
      }
    }
  }
}

/**
 * Resolves conditional create (ifNoneExist), conditional update (PUT Type?criteria) and conditional delete
 * (DELETE Type?criteria) entries of a transaction into plain operations. Runs under the server mutex, so
 * nothing can change between these searches and the writes. Doing it here also avoids Medplum's
 * "Transaction requires strict isolation but has too many entries" (more than 8 entries).
 */
async function resolveConditionals(entries: BundleEntry[], repo: EmbeddedRepository): Promise<void> {
  for (const [i, entry] of entries.entries()) {
    const request = entry.request;
    if (!request) {
      continue;
    }
    const method = request.method;
    const path = `Bundle.entry[${i}].request`;
    if (method === 'POST' && request.ifNoneExist) {
      const matches = await conditionalMatches(
        repo,
        `${request.url}?${request.ifNoneExist}`,
        `${path}.ifNoneExist`,
      );
      if (matches.length === 0) {
        request.ifNoneExist = undefined;
      } else {
        // Existing resource: the entry becomes a read (200 + resource), and its fullUrl now means that resource
        const reference = getReferenceString(matches[0]);
        entry.request = { method: 'GET', url: reference };
        entry.resource = undefined;
        if (entry.fullUrl && UUID_URN.test(entry.fullUrl)) {
          replaceInBundle(entries, entry.fullUrl, reference);
        }
      }
    } else if ((method === 'PUT' || method === 'DELETE') && request.url.includes('?')) {
      const matches = await conditionalMatches(repo, request.url, `${path}.url`);
      const resourceType = request.url.split('?')[0];
      if (method === 'DELETE') {
        if (matches.length === 1) {
          request.url = getReferenceString(matches[0]);
        }
        continue;
      }
      const resource = entry.resource;
      if (!resource || resource.resourceType !== resourceType) {
        throw new OperationOutcomeError(
          badRequest(`Expected a ${resourceType} resource`, `Bundle.entry[${i}]`),
        );
      }
      if (matches.length === 0 && resource.id) {
        throw new OperationOutcomeError(
          badRequest('Conditional update matched nothing and the resource has an id', `Bundle.entry[${i}]`),
        );
      }
      if (matches.length === 1 && resource.id && resource.id !== matches[0].id) {
        throw new OperationOutcomeError(
          badRequest('Resource id does not match the resource found by the condition', `Bundle.entry[${i}]`),
        );
      }
      const id = matches[0]?.id ?? repo.generateId();
      resource.id = id;
      request.url = `${resourceType}/${id}`;
    }
  }
}

async function conditionalMatches(
  repo: EmbeddedRepository,
  criteria: string,
  path: string,
): Promise<WithId<Resource>[]> {
  const searchRequest = parseSearchRequest(criteria);
  if (!isResourceType(searchRequest.resourceType)) {
    throw new OperationOutcomeError(badRequest(`Unknown resource type in ${criteria}`, path || undefined));
  }
  try {
    checkSearchRequest(searchRequest, Object.fromEntries(new URLSearchParams(criteria.split('?')[1] ?? '')));
  } catch (err) {
    throw err instanceof OperationOutcomeError
      ? new OperationOutcomeError({
          ...err.outcome,
          issue: err.outcome.issue?.map((x) => (path ? { ...x, expression: [path] } : x)),
        })
      : err;
  }
  if (!searchRequest.filters?.length) {
    throw new OperationOutcomeError(
      badRequest('A condition needs at least one search parameter', path || undefined),
    );
  }
  const matches = await repo.searchResources({ ...searchRequest, count: 2, offset: 0, sortRules: undefined });
  if (matches.length > 1) {
    throw new OperationOutcomeError(
      outcome(multipleMatches, `Condition ${criteria} matched more than one resource`, path || undefined),
    );
  }
  return matches;
}

function replaceInBundle(entries: BundleEntry[], from: string, to: string): void {
  const rewrite = (value: unknown): unknown => {
    if (typeof value === 'string') {
      return value.includes(from) ? value.replaceAll(from, to) : value;
    }
    if (Array.isArray(value)) {
      return value.map(rewrite);
    }
    if (isJsonObject(value)) {
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, rewrite(v)]));
    }
    return value;
  };
  for (const entry of entries) {
    if (entry.resource) {
      entry.resource = rewrite(entry.resource) as Resource;
    }
    if (entry.request?.url) {
      entry.request.url = rewrite(entry.request.url) as string;
    }
  }
}

function describeTransactionFailure(
  result: OperationOutcome,
  entries: BundleEntry[],
  failedTarget: string | undefined,
): OperationOutcome {
  let index = -1;
  if (failedTarget) {
    index = entries.findIndex(
      (e) =>
        (e.resource?.id && `${e.resource.resourceType}/${e.resource.id}` === failedTarget) ||
        e.request?.url === failedTarget,
    );
  }
  const where = index >= 0 ? `Bundle.entry[${index}] (${e2s(entries[index])}) failed` : 'An entry failed';
  return {
    ...result,
    issue: [
      ...(result.issue ?? []),
      {
        severity: 'information',
        code: 'informational',
        diagnostics: `Transaction rolled back: ${where}; no change from this transaction was kept`,
        ...(index >= 0 ? { expression: [`Bundle.entry[${index}]`] } : {}),
      },
    ],
  };
}

function e2s(entry: BundleEntry): string {
  return `${entry.request?.method} ${entry.request?.url}`;
}

function decorateResponseEntry(entry: BundleEntry): void {
  const resource = entry.resource;
  const response = entry.response;
  const versionId = resource?.meta?.versionId;
  if (!response || !resource?.id || !versionId) {
    return;
  }
  response.etag = `W/"${versionId}"`;
  if (resource.meta?.lastUpdated) {
    response.lastModified = resource.meta.lastUpdated;
  }
  if (response.location) {
    response.location = `${resource.resourceType}/${resource.id}/_history/${versionId}`;
  }
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

// ---------------------------------------------------------------------------------------------------------

function singleHeader(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

function isJsonObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function outcome(base: OperationOutcome, diagnostics: string, expression?: string): OperationOutcome {
  return {
    ...base,
    issue: (base.issue ?? []).map((issue) => ({
      ...issue,
      diagnostics,
      ...(expression ? { expression: [expression] } : {}),
    })),
  };
}
