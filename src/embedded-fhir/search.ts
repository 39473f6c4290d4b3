// Search: checked parameters (unknown or unsupported ones are a 400, not silently nothing), paging links,
// _include and _revinclude.

import type { IncludeTarget, SearchRequest, WithId } from '@medplum/core';
import {
  allOk,
  badRequest,
  evalFhirPath,
  formatSearchQuery,
  getReferenceString,
  getSearchParameter,
  isResourceType,
  OperationOutcomeError,
  Operator,
  parseSearchRequest,
} from '@medplum/core';
import type { FhirRequest, FhirResponse } from '@medplum/fhir-router';
import type { Bundle, BundleEntry, BundleLink, Resource } from '@medplum/fhirtypes';
import type { EmbeddedRepository } from './repository.js';
import {
  DEFAULT_PAGE_SIZE,
  IGNORED_RESULT_PARAMETERS,
  isJsonObject,
  LITERAL_REFERENCE,
  MATCHABLE_TYPES,
  MAX_PAGE_SIZE,
  RESULT_PARAMETERS,
} from './router-common.js';

export async function searchHandler(
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

export function checkSearchRequest(
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

export function invalidSearch(message: string): OperationOutcomeError {
  return new OperationOutcomeError(badRequest(message));
}

export async function resolveIncludes(
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
