// The single door to the FHIR server: every call has a timeout, safe calls are retried with backoff and
// jitter (honouring Retry-After), a circuit breaker turns a dead server into fast 503s, the request id is
// passed on, and credentials only ever go to the configured base URL (a paging link elsewhere is refused).

import {
  BrokenCircuitError,
  ConsecutiveBreaker,
  circuitBreaker,
  DelegateBackoff,
  handleWhen,
  type IPolicy,
  retry,
  TaskCancelledError,
  TimeoutStrategy,
  timeout,
  wrap,
} from 'cockatiel';
import type { Bundle, OperationOutcome, Resource } from 'fhir/r4.js';
import { Client, RESPONSE_KEY } from 'fhir-kit-client';
import { isFhirId, isResourceType, parseLiteralReference } from '../fhir-id.js';
import { type FhirErrorKind, FhirServerError } from './errors.js';
import { followNextLinks } from './paging.js';

export { type FhirErrorKind, FhirServerError } from './errors.js';
export { linkWithinBase } from './paging.js';

export interface FhirGatewayOptions {
  baseUrl: string;
  timeoutMs: number;
  maxRetries: number;
  /** Returns the Authorization header value for the FHIR server, if any. */
  authorization?: () => Promise<string | undefined>;
  /**
   * Called when the FHIR server answers 401 to a request sent with this Authorization value: the request is then
   * sent once more with a fresh `authorization()` (e.g. after an access token was revoked or expired early).
   */
  onUnauthorized?: (authorization: string) => void | Promise<void>;
  /** Consecutive failures that open the circuit, and how long it stays open. */
  breakerThreshold?: number;
  breakerOpenMs?: number;
}

/**
 * The Prefer header of every transaction (exported for the benchmark's direct push, which must send the same).
 * The stored representation, not `return=minimal`: a server may store other bytes than it was sent (HAPI
 * re-encodes a narrative's XHTML), and the plan answered must be the plan a read gives.
 */
export const TRANSACTION_PREFER = 'return=representation';

export interface CallContext {
  requestId?: string;
}

export interface VersionedResource<T extends Resource = Resource> {
  resource: T;
  /** The version id (from meta.versionId, else the ETag). */
  version?: string;
}

function classify(status: number): FhirErrorKind {
  if (status === 404) return 'not-found';
  if (status === 410) return 'gone';
  if (status === 409) return 'conflict';
  if (status === 412) return 'precondition-failed';
  if (status === 400 || status === 422) return 'rejected';
  if (status === 429 || status === 503) return 'unavailable';
  if (status === 504) return 'timeout';
  return 'upstream';
}

function retryAfterSeconds(headers: Headers | undefined): number | undefined {
  const value = headers?.get('retry-after');
  if (!value) return undefined;
  if (/^\d+$/.test(value)) return Number(value);
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, Math.ceil((date - Date.now()) / 1000));
}

const RETRYABLE_STATUS = new Set([429, 502, 503, 504]);

function isRetryable(error: unknown): boolean {
  if (error instanceof FhirServerError) {
    return error.status === undefined ? error.kind !== 'rejected' : RETRYABLE_STATUS.has(error.status);
  }
  return error instanceof TaskCancelledError;
}

/** Network failures, timeouts and 5xx count against the breaker; a 4xx means the server is alive. */
function isServerFailure(error: unknown): boolean {
  if (error instanceof FhirServerError)
    return error.status === undefined || error.status >= 500 || error.status === 429;
  return true;
}

/**
 * The ids this client puts in a URL path obey the FHIR id rule (no `.`/`..` segments, nothing to encode), checked
 * here again whatever the caller checked: no resource can have another id, so anything else is simply not found.
 */
function requireFhirId(resourceType: string, id: string): void {
  if (!isResourceType(resourceType) || !isFhirId(id)) {
    throw new FhirServerError('not-found', 'not a FHIR resource type and id', 404);
  }
}

/** A transaction's entries address types (`Type`, `Type?query`) or resources (`Type/id`), nothing else. */
function isEntryUrl(url: string | undefined): boolean {
  if (!url) return false;
  const [path] = url.split('?', 1);
  return isResourceType(path) || !!parseLiteralReference(path);
}

export function etagVersion(etag: string | null | undefined): string | undefined {
  const match = etag ? /^(?:W\/)?"?([^"]*)"?$/.exec(etag.trim()) : null;
  return match?.[1] || undefined;
}

export class FhirGateway {
  private readonly client: Client;
  private readonly safePolicy: IPolicy;
  private readonly unsafePolicy: IPolicy;

  constructor(private readonly options: FhirGatewayOptions) {
    this.client = new Client({ baseUrl: options.baseUrl });
    const breaker = circuitBreaker(handleWhen(isServerFailure), {
      halfOpenAfter: options.breakerOpenMs ?? 5_000,
      breaker: new ConsecutiveBreaker(options.breakerThreshold ?? 8),
    });
    // abortOnReturn off: cockatiel would otherwise abort every finished call's signal, which builds an
    // AbortError DOMException (a stack trace) and runs fetch's abort listeners for nothing; a call returns only
    // when its answer has been read whole, so there is nothing left to abort.
    const perAttemptTimeout = timeout(options.timeoutMs, {
      strategy: TimeoutStrategy.Aggressive,
      abortOnReturn: false,
    });
    const backoff = new DelegateBackoff<unknown>((context) => {
      const result = (context as { result?: { error?: unknown }; attempt: number }).result;
      const error = result?.error;
      const hinted = error instanceof FhirServerError ? error.retryAfterSeconds : undefined;
      if (hinted !== undefined) return Math.min(hinted * 1000, 10_000);
      const attempt = (context as { attempt: number }).attempt;
      return Math.random() * Math.min(2_000, 50 * 2 ** attempt); // exponential with full jitter
    });
    const retryPolicy = retry(handleWhen(isRetryable), { maxAttempts: options.maxRetries, backoff });
    this.safePolicy = wrap(retryPolicy, breaker, perAttemptTimeout);
    this.unsafePolicy = wrap(breaker, perAttemptTimeout);
  }

  get baseUrl(): string {
    return this.options.baseUrl;
  }

  /** Runs one HTTP exchange through the policies and turns every failure into a FhirServerError. */
  private async call<T>(
    safe: boolean,
    context: CallContext,
    send: (options: { headers: Record<string, string>; signal: AbortSignal }) => Promise<T>,
  ): Promise<{ body: T; headers?: Headers; status?: number }> {
    const policy = safe ? this.safePolicy : this.unsafePolicy;
    try {
      // A signal per call: cockatiel links its timeout to it (a shared default signal collects listeners).
      return await policy.execute(async ({ signal }) => {
        for (let renewed = false; ; renewed = true) {
          const headers: Record<string, string> = {};
          if (context.requestId) headers['x-request-id'] = context.requestId;
          const authorization = await this.options.authorization?.();
          if (authorization) headers.authorization = authorization;
          try {
            const body = await send({ headers, signal });
            const response = (body as unknown as Record<string, Response | undefined>)[RESPONSE_KEY];
            return { body, headers: response?.headers, status: response?.status };
          } catch (error) {
            const failure = toFhirServerError(error, signal);
            // A 401 is refused before anything happens, so even a create may be sent again: once, with a new token.
            const unauthorized = failure instanceof FhirServerError && failure.status === 401;
            if (unauthorized && !renewed && authorization && this.options.onUnauthorized) {
              await this.options.onUnauthorized(authorization);
              continue;
            }
            throw failure;
          }
        }
      }, new AbortController().signal);
    } catch (error) {
      if (error instanceof FhirServerError) throw error;
      if (error instanceof BrokenCircuitError) {
        throw new FhirServerError(
          'unavailable',
          'the FHIR server is failing; calls are paused',
          undefined,
          undefined,
          5,
        );
      }
      if (error instanceof TaskCancelledError) {
        throw new FhirServerError(
          'timeout',
          `the FHIR server did not answer within ${this.options.timeoutMs} ms`,
        );
      }
      throw toFhirServerError(error);
    }
  }

  async read<T extends Resource>(
    resourceType: string,
    id: string,
    context: CallContext,
  ): Promise<VersionedResource<T>> {
    requireFhirId(resourceType, id);
    const { body, headers } = await this.call(true, context, (options) =>
      this.client.read({ resourceType, id, options }),
    );
    const resource = body as unknown as T;
    return { resource, version: resource.meta?.versionId ?? etagVersion(headers?.get('etag')) };
  }

  /** Reads several resources in one batch; those not found are simply absent from the result. */
  async readMany(references: string[], context: CallContext): Promise<Map<string, Resource>> {
    const found = new Map<string, Resource>();
    // Only Type/id references are read; anything else cannot name a resource and is simply not found.
    const unique = [...new Set(references)].filter((reference) => !!parseLiteralReference(reference));
    if (unique.length === 0) return found;
    const bundle: Bundle = {
      resourceType: 'Bundle',
      type: 'batch',
      entry: unique.map((url) => ({ request: { method: 'GET', url } })),
    };
    const { body } = await this.call(true, context, (options) =>
      this.client.batch({ body: bundle as never, options }),
    );
    const response = body as unknown as Bundle;
    (response.entry ?? []).forEach((entry, index) => {
      if (entry.resource && entry.response?.status?.startsWith('200'))
        found.set(unique[index], entry.resource);
    });
    return found;
  }

  /**
   * Sends a transaction. Retried only when `idempotent` (every create conditional, every update version-checked),
   * since a lost answer to a plain create cannot be told from a lost request.
   */
  async transaction(bundle: Bundle, context: CallContext & { idempotent: boolean }): Promise<Bundle> {
    const bad = (bundle.entry ?? []).find((entry) => !isEntryUrl(entry.request?.url));
    if (bad) {
      throw new FhirServerError('rejected', `a transaction entry addresses "${bad.request?.url}"`, 400);
    }
    const { body } = await this.call(context.idempotent, context, (options) =>
      this.client.transaction({
        body: bundle as never,
        options: { ...options, headers: { ...options.headers, prefer: TRANSACTION_PREFER } },
      }),
    );
    return body as unknown as Bundle;
  }

  /** A search; a parameter given several values (an array) is repeated, and all of them apply. */
  async search(
    resourceType: string,
    searchParams: Record<string, string | string[]>,
    context: CallContext,
  ): Promise<Bundle> {
    const { body } = await this.call(true, context, (options) =>
      this.client.search({ resourceType, searchParams, options }),
    );
    return body as unknown as Bundle;
  }

  /**
   * The instance histories of several resources (Type/id) in one batch, at most `count` versions each (newest
   * first); a resource whose history cannot be read is simply absent from the result.
   */
  async historyMany(references: string[], count: number, context: CallContext): Promise<Map<string, Bundle>> {
    const found = new Map<string, Bundle>();
    const unique = [...new Set(references)].filter((reference) => !!parseLiteralReference(reference));
    if (unique.length === 0) return found;
    const bundle: Bundle = {
      resourceType: 'Bundle',
      type: 'batch',
      entry: unique.map((reference) => ({
        request: { method: 'GET', url: `${reference}/_history?_count=${count}` },
      })),
    };
    const { body } = await this.call(true, context, (options) =>
      this.client.batch({ body: bundle as never, options }),
    );
    ((body as unknown as Bundle).entry ?? []).forEach((entry, index) => {
      const history = entry.resource as Bundle | undefined;
      if (history?.resourceType === 'Bundle' && entry.response?.status?.startsWith('200'))
        found.set(unique[index], history);
    });
    return found;
  }

  async history(resourceType: string, id: string, context: CallContext): Promise<Bundle> {
    requireFhirId(resourceType, id);
    const { body } = await this.call(true, context, (options) =>
      this.client.history({ resourceType, id, options }),
    );
    return body as unknown as Bundle;
  }

  /** Creates a resource (not retried: a lost answer to a plain create cannot be told from a lost request). */
  async create<T extends Resource>(resource: T, context: CallContext): Promise<VersionedResource<T>> {
    if (!isResourceType(resource.resourceType))
      throw new FhirServerError('rejected', 'not a resource type', 400);
    const { body, headers } = await this.call(false, context, (options) =>
      this.client.create({ resourceType: resource.resourceType, body: resource as never, options }),
    );
    const created = body as unknown as T;
    return { resource: created, version: created.meta?.versionId ?? etagVersion(headers?.get('etag')) };
  }

  /**
   * Updates a resource; with `ifMatchVersion` only when that is still its current version (else a
   * `precondition-failed`, or a `conflict` on HAPI). Version-checked updates are safe to retry.
   */
  async update<T extends Resource>(
    resource: T & { id: string },
    context: CallContext & { ifMatchVersion?: string },
  ): Promise<VersionedResource<T>> {
    requireFhirId(resource.resourceType, resource.id);
    const ifMatch = context.ifMatchVersion;
    const { body, headers } = await this.call(ifMatch !== undefined, context, (options) =>
      this.client.update({
        resourceType: resource.resourceType,
        id: resource.id,
        body: resource as never,
        options: ifMatch
          ? { ...options, headers: { ...options.headers, 'if-match': `W/"${ifMatch}"` } }
          : options,
      }),
    );
    const updated = body as unknown as T;
    return { resource: updated, version: updated.meta?.versionId ?? etagVersion(headers?.get('etag')) };
  }

  async delete(resourceType: string, id: string, context: CallContext): Promise<void> {
    requireFhirId(resourceType, id);
    await this.call(true, context, (options) => this.client.delete({ resourceType, id, options }));
  }

  /**
   * The first page of a resource's versions (`count` asked for), newest first; the rest through nextPages. `_since`
   * the epoch asks for every version and makes HAPI count them afresh: by default (historyCountMode
   * CACHED_ONLY_WITHOUT_OFFSET) it answers a plain history from a cached count, with too few entries and no next link.
   */
  async fullHistory(resourceType: string, id: string, count: number, context: CallContext): Promise<Bundle> {
    requireFhirId(resourceType, id);
    const query = `_count=${Math.floor(count)}&_since=1970-01-01T00:00:00Z`;
    const { body } = await this.call(true, context, (options) =>
      this.client.request(`${resourceType}/${id}/_history?${query}`, { options }),
    );
    return body as unknown as Bundle;
  }

  /**
   * The pages after `first`, following each page's `next` link: only within the base URL (else an `upstream`
   * error, nothing fetched), and never one link twice (a server that pages in a loop); see paging.ts.
   */
  nextPages(first: Bundle, context: CallContext): AsyncGenerator<Bundle> {
    return followNextLinks(first, this.options.baseUrl, async (url) => {
      const { body } = await this.call(true, context, (options) => this.client.request(url, { options }));
      return body as unknown as Bundle;
    });
  }

  /** True when the FHIR server answers its capability statement. */
  async ping(context: CallContext = {}): Promise<boolean> {
    try {
      await this.call(false, context, (options) => this.client.capabilityStatement(options));
      return true;
    } catch {
      return false;
    }
  }
}

function toFhirServerError(
  error: unknown,
  signal?: AbortSignal,
): FhirServerError | TaskCancelledError | unknown {
  if (error instanceof FhirServerError || error instanceof TaskCancelledError) return error;
  const response = (
    error as { response?: { status?: number; data?: unknown }; config?: { headers?: Headers } }
  )?.response;
  if (response?.status) {
    const data = response.data as OperationOutcome | undefined;
    const outcome =
      data && typeof data === 'object' && data.resourceType === 'OperationOutcome' ? data : undefined;
    const headers = (error as { config?: { headers?: Headers } }).config?.headers;
    return new FhirServerError(
      classify(response.status),
      `the FHIR server answered ${response.status}`,
      response.status,
      outcome,
      retryAfterSeconds(headers instanceof Headers ? headers : undefined),
    );
  }
  if (signal?.aborted) return new TaskCancelledError('timed out');
  return new FhirServerError(
    'unavailable',
    `the FHIR server could not be reached (${(error as Error)?.message})`,
  );
}
