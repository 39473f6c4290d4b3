// Batch and transaction: conditional entries resolved before Medplum sees them, urn:uuid references checked,
// failures that name the failing entry.

import type { WithId } from '@medplum/core';
import {
  badRequest,
  getReferenceString,
  isOk,
  isResourceType,
  multipleMatches,
  normalizeOperationOutcome,
  OperationOutcomeError,
  parseSearchRequest,
} from '@medplum/core';
import type { FhirRequest, FhirResponse, FhirRouteHandler, FhirRouter } from '@medplum/fhir-router';
import type { Bundle, BundleEntry, BundleEntryRequest, OperationOutcome, Resource } from '@medplum/fhirtypes';
import type { EmbeddedRepository } from './repository.js';
import { isJsonObject, outcome, parseIfMatch, UUID_URN } from './router-common.js';
import { checkSearchRequest } from './search.js';

export async function batchHandler(
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
export function checkBundleReferences(entries: BundleEntry[]): void {
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

export function visitReferences(
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
export async function resolveConditionals(entries: BundleEntry[], repo: EmbeddedRepository): Promise<void> {
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

export async function conditionalMatches(
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

export function replaceInBundle(entries: BundleEntry[], from: string, to: string): void {
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

export function describeTransactionFailure(
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

export function e2s(entry: BundleEntry): string {
  return `${entry.request?.method} ${entry.request?.url}`;
}

export function decorateResponseEntry(entry: BundleEntry): void {
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
