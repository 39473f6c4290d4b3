/**
 * In-memory FHIR repository for the embedded server: Medplum's MemoryRepository plus validation on every
 * write, server-assigned ids and versions, undo-log transactions (with savepoints for nested ones),
 * 410 Gone for deleted resources, and a history that is not reversed in place.
 *
 * Not safe for concurrent use on its own: the embedded server serialises every request through one mutex,
 * so at most one (top-level) transaction is open at any time.
 */
import type { SearchRequest, WithId } from '@medplum/core';
import {
  badRequest,
  deepClone,
  evalFhirPath,
  getSearchParameter,
  gone,
  matchesSearchRequest,
  notFound,
  OperationOutcomeError,
  parseFhirPath,
  preconditionFailed,
} from '@medplum/core';
import type { CreateResourceOptions, ReadHistoryOptions, UpdateResourceOptions } from '@medplum/fhir-router';
import { MemoryRepository } from '@medplum/fhir-router';
import type { Bundle, BundleEntry, Resource } from '@medplum/fhirtypes';
import { assertStorable } from './validation.js';

type ResourceMaps = Map<string, Map<string, Resource>>;
type HistoryMaps = Map<string, Map<string, Resource[]>>;

/** State of one resource before a write, enough to put it back. */
interface UndoRecord {
  readonly resourceType: string;
  readonly id: string;
  /** Current version before the write, undefined when there was none (new or deleted). */
  readonly previous: Resource | undefined;
  /** History length before the write, undefined when the resource had no history entry at all. */
  readonly historyLength: number | undefined;
}

type JsonPatchOperation = Parameters<MemoryRepository['patchResource']>[2][number];

export class EmbeddedRepository extends MemoryRepository {
  private readonly current: ResourceMaps;
  private readonly versions: HistoryMaps;
  /** The undo log of the open transaction, if any. */
  private undoLog: UndoRecord[] | undefined;
  /** `Type/id` of the patch in progress: a patch must not change the resource type or id. */
  private patching: string | undefined;

  constructor() {
    super();
    // MemoryRepository keeps its data in two private maps; the undo log needs to restore them directly.
    const internals = this as unknown as { resources?: unknown; history?: unknown };
    if (!(internals.resources instanceof Map) || !(internals.history instanceof Map)) {
      throw new Error('Unsupported @medplum/fhir-router version: MemoryRepository storage layout changed');
    }
    this.current = internals.resources as ResourceMaps;
    this.versions = internals.history as HistoryMaps;
  }

  /** Number of current (not deleted) resources, all types together. */
  get size(): number {
    let total = 0;
    for (const byId of this.current.values()) {
      total += byId.size;
    }
    return total;
  }

  /** True while a transaction is open. */
  get inTransaction(): boolean {
    return this.undoLog !== undefined;
  }

  /**
   * Creates a resource. The server assigns the id (a client-supplied id is ignored, as FHIR create
   * requires) unless `assignedId` is set, which Medplum's batch processor does after pre-assigning ids.
   */
  override async createResource<T extends Resource>(
    resource: T,
    options?: CreateResourceOptions,
  ): Promise<WithId<T>> {
    const id = options?.assignedId && resource.id ? resource.id : this.generateId();
    return this.tracked(`${resource.resourceType}/${id}`, () => this.write({ ...resource, id }));
  }

  override async updateResource<T extends Resource>(
    resource: T,
    options?: UpdateResourceOptions,
  ): Promise<WithId<T>> {
    if (!resource.id) {
      throw new OperationOutcomeError(badRequest('Missing id', `${resource.resourceType}.id`));
    }
    return this.tracked(`${resource.resourceType}/${resource.id}`, () =>
      this.update({ ...resource, id: resource.id as string }, options),
    );
  }

  private async update<T extends Resource>(
    resource: T & { id: string },
    options?: UpdateResourceOptions,
  ): Promise<WithId<T>> {
    if (this.patching && this.patching !== `${resource.resourceType}/${resource.id}`) {
      throw new OperationOutcomeError(badRequest('A patch must not change resourceType or id'));
    }
    if (options?.ifMatch !== undefined) {
      const existing = this.current.get(resource.resourceType)?.get(resource.id);
      if (existing?.meta?.versionId !== options.ifMatch) {
        throw new OperationOutcomeError(preconditionFailed);
      }
    }
    return this.write(resource);
  }

  override async patchResource<T extends Resource>(
    resourceType: T['resourceType'],
    id: string,
    patch: JsonPatchOperation[],
  ): Promise<WithId<T>> {
    this.patching = `${resourceType}/${id}`;
    try {
      return await this.tracked(this.patching, () => super.patchResource<T>(resourceType, id, patch));
    } finally {
      this.patching = undefined;
    }
  }

  override async readResource<T extends Resource>(resourceType: string, id: string): Promise<WithId<T>> {
    const resource = this.current.get(resourceType)?.get(id);
    if (!resource) {
      throw new OperationOutcomeError(this.versions.get(resourceType)?.get(id)?.length ? gone : notFound);
    }
    return deepClone(resource) as WithId<T>;
  }

  /** `Type/id` of the last write that failed (validation, If-Match...), to name it in a failure report. */
  failedTarget: string | undefined;

  /** versionId of the current version, undefined when the resource does not exist (or is deleted). */
  currentVersion(resourceType: string, id: string): string | undefined {
    return this.current.get(resourceType)?.get(id)?.meta?.versionId;
  }

  /** True when the resource exists and is not deleted. */
  exists(resourceType: string, id: string): boolean {
    return this.current.get(resourceType)?.has(id) ?? false;
  }

  /** True when the resource existed once and has been deleted. */
  isDeleted(resourceType: string, id: string): boolean {
    return !this.exists(resourceType, id) && Boolean(this.versions.get(resourceType)?.get(id)?.length);
  }

  /**
   * Instance history, newest first. Unlike MemoryRepository.readHistory this does not reverse the stored
   * array in place (which flipped the order on every other call), honours `_offset`/`_count`, sets `total`,
   * and still answers after the resource has been deleted.
   */
  override async readHistory<T extends Resource>(
    resourceType: string,
    id: string,
    options?: ReadHistoryOptions,
  ): Promise<Bundle<WithId<T>>> {
    const stored = this.versions.get(resourceType)?.get(id);
    if (!stored?.length) {
      throw new OperationOutcomeError(notFound);
    }
    const offset = Math.max(0, options?.offset ?? 0);
    const limit = options?.limit === undefined || Number.isNaN(options.limit) ? undefined : options.limit;
    const end = limit === undefined ? 0 : Math.max(0, stored.length - offset - Math.max(0, limit));
    const entry: BundleEntry<WithId<T>>[] = [];
    // Newest first, without touching the stored array
    for (let i = stored.length - 1 - offset; i >= end; i--) {
      const version = stored[i];
      const versionId = version.meta?.versionId as string;
      entry.push({
        resource: deepClone(version) as WithId<T>,
        request:
          i === 0 ? { method: 'POST', url: resourceType } : { method: 'PUT', url: `${resourceType}/${id}` },
        response: {
          status: i === 0 ? '201' : '200',
          etag: `W/"${versionId}"`,
          lastModified: version.meta?.lastUpdated,
        },
      });
    }
    return {
      resourceType: 'Bundle',
      type: 'history',
      total: stored.length,
      ...(entry.length ? { entry } : {}),
    };
  }

  override async readVersion<T extends Resource>(
    resourceType: string,
    id: string,
    versionId: string,
  ): Promise<WithId<T>> {
    const version = this.versions
      .get(resourceType)
      ?.get(id)
      ?.find((v) => v.meta?.versionId === versionId);
    if (!version) {
      throw new OperationOutcomeError(notFound);
    }
    return deepClone(version) as WithId<T>;
  }

  /**
   * Search with the same matching as MemoryRepository.search, but: sort keys computed once per resource
   * (not per comparison), sort rules applied in precedence order (MemoryRepository let the last rule win),
   * and only the returned page deep-cloned (MemoryRepository cloned every match before slicing).
   */
  override async search<T extends Resource>(searchRequest: SearchRequest<T>): Promise<Bundle<WithId<T>>> {
    const matched: Resource[] = [];
    for (const resource of this.current.get(searchRequest.resourceType)?.values() ?? []) {
      if (matchesSearchRequest(resource, searchRequest)) {
        matched.push(resource);
      }
    }
    let ordered = matched;
    const rules = (searchRequest.sortRules ?? []).flatMap((rule) => {
      const expression = getSearchParameter(searchRequest.resourceType, rule.code)?.expression;
      return expression ? [{ atom: parseFhirPath(expression), descending: Boolean(rule.descending) }] : [];
    });
    if (rules.length) {
      ordered = matched
        .map((resource) => ({
          resource,
          keys: rules.map((rule) => JSON.stringify(evalFhirPath(rule.atom, resource))),
        }))
        .sort((a, b) => {
          for (let i = 0; i < rules.length; i++) {
            const order = a.keys[i].localeCompare(b.keys[i]);
            if (order !== 0) {
              return rules[i].descending ? -order : order;
            }
          }
          return 0;
        })
        .map((item) => item.resource);
    }
    const offset = searchRequest.offset ?? 0;
    const page = ordered.slice(
      offset,
      searchRequest.count === undefined ? undefined : offset + searchRequest.count,
    );
    return {
      resourceType: 'Bundle',
      type: 'searchset',
      total: matched.length,
      ...(page.length
        ? { entry: page.map((resource) => ({ resource: deepClone(resource) as WithId<T> })) }
        : {}),
    };
  }

  override async deleteResource(resourceType: string, id: string): Promise<void> {
    const byId = this.current.get(resourceType);
    if (!byId?.has(id)) {
      if (this.isDeleted(resourceType, id)) {
        return; // deleting a deleted resource is a no-op (FHIR: 200/204)
      }
      this.failedTarget = `${resourceType}/${id}`;
      throw new OperationOutcomeError(notFound);
    }
    this.recordUndo(resourceType, id);
    byId.delete(id);
  }

  /**
   * Runs the callback atomically. The outermost call opens an undo log that every write appends to;
   * if the callback throws, the writes are undone in reverse order (cost proportional to the writes, not
   * the store). A nested call is a savepoint: its own writes are undone if it throws, and the outer
   * transaction decides about the rest.
   */
  override async withTransaction<TResult>(
    callback: (client: undefined) => Promise<TResult>,
  ): Promise<TResult> {
    const outer = this.undoLog;
    const log = outer ?? [];
    const mark = log.length;
    this.undoLog = log;
    try {
      return await callback(undefined);
    } catch (err) {
      this.rollbackTo(log, mark);
      throw err;
    } finally {
      if (!outer) {
        this.undoLog = undefined;
      }
    }
  }

  private async tracked<R>(target: string, operation: () => Promise<R>): Promise<R> {
    try {
      return await operation();
    } catch (err) {
      this.failedTarget = target;
      throw err;
    }
  }

  private async write<T extends Resource>(resource: T & { id: string }): Promise<WithId<T>> {
    const toStore = { ...resource };
    if (toStore.meta) {
      // versionId and lastUpdated are always server-assigned
      const { versionId: _v, lastUpdated: _l, ...meta } = toStore.meta;
      toStore.meta = meta;
    }
    assertStorable(toStore);
    this.recordUndo(toStore.resourceType, toStore.id);
    return super.createResource(toStore);
  }

  private recordUndo(resourceType: string, id: string): void {
    if (!this.undoLog) {
      return;
    }
    this.undoLog.push({
      resourceType,
      id,
      previous: this.current.get(resourceType)?.get(id),
      historyLength: this.versions.get(resourceType)?.get(id)?.length,
    });
  }

  private rollbackTo(log: UndoRecord[], mark: number): void {
    for (let i = log.length - 1; i >= mark; i--) {
      const { resourceType, id, previous, historyLength } = log[i];
      const byId = this.current.get(resourceType);
      if (previous) {
        byId?.set(id, previous);
      } else {
        byId?.delete(id);
      }
      const historyById = this.versions.get(resourceType);
      if (historyLength === undefined) {
        historyById?.delete(id);
      } else {
        const stored = historyById?.get(id);
        if (stored) {
          stored.length = historyLength;
        }
      }
    }
    log.length = mark;
  }
}
