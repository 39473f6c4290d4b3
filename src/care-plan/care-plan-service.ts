// The use cases of the API: each maps, validates and talks to the FHIR server through the gateway.
import { createHash, randomUUID } from 'node:crypto';
import type { Bundle, BundleEntry, CarePlan, Identifier, Provenance, Resource } from 'fhir/r4.js';
import { type Caller, callerDisplay, idempotencyScope, subjectPatient } from '../auth/caller.js';
import { ApiProblem } from '../errors.js';
import { type CallContext, type FhirGateway, FhirServerError } from '../fhir/gateway.js';
import { cloneJson, jsonEqual } from '../fhir/mapping/carry.js';
import { DEFAULT_US_CORE_VERSION, EXTENSION, SYSTEM, type UsCoreVersion } from '../fhir/mapping/codes.js';
import {
  type FhirPlanSource,
  PlanSourceError,
  planFromFhir,
  planSourceFromFhir,
  resolverFor,
} from '../fhir/mapping/from-fhir.js';
import { planFromFhirWithReport } from '../fhir/mapping/not-taken.js';
import { managedIdentifiers, ownParts, partReferencesOf, planKeyOf } from '../fhir/mapping/plan-parts.js';
import { planRevision, withProvenance } from '../fhir/mapping/provenance.js';
import { planToTransaction, type ToFhirOptions } from '../fhir/mapping/to-fhir.js';
import {
  type FhirValidationIssue,
  validateFhirBundle,
  validateFhirResource,
} from '../fhir/validation/index.js';
import { checkPlanRules, type SharedCarePlan } from './care-plan.js';
import { decodeCursor, encodeCursor } from './cursor.js';

export interface StoredPlan {
  plan: SharedCarePlan;
  /** The plan's version: the CarePlan's versionId, bumped by every change to any part of the plan. */
  version: string;
  /** The FHIR resources the plan was read from (CarePlan first). */
  resources: Resource[];
}

/** A call on behalf of an API caller: who it is (for Provenance) and which patient it is restricted to, if any. */
export interface PlanContext extends CallContext {
  caller?: Caller;
}

/** An edit of an existing plan; with an Idempotency-Key, what identifies the request (to tell a reused key). */
export interface EditContext extends PlanContext {
  idempotency?: { key: string; request: unknown };
}

export interface EditResult extends StoredPlan {
  /** True when an edit with the same Idempotency-Key had been written already: nothing new was written. */
  replayed: boolean;
}

export interface CreateContext extends PlanContext {
  idempotencyKey?: string;
  /** Who is calling, when there is no caller: idempotency keys are scoped to the caller. */
  clientId?: string;
}

/** A patient-restricted caller sees another patient's plan as absent, never as forbidden. */
function hiddenPlan(): ApiProblem {
  return new ApiProblem('not-found', 'the care plan (or a part of it) does not exist on the FHIR server', {
    denied: true,
  });
}

/** The patient a plan is for must be the restricted caller's patient. */
function requireOwnPatient(context: PlanContext, patient: string | undefined, pointer: string) {
  const restricted = context.caller?.patient;
  if (restricted && subjectPatient(patient) !== restricted) {
    throw new ApiProblem('forbidden', "a patient token can only write its own patient's plans", {
      errors: [{ pointer, detail: `must be ${restricted}` }],
      denied: true,
    });
  }
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

/** JSON with sorted keys, so that the same body always hashes the same. */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : 1));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

function issuesToErrors(issues: FhirValidationIssue[]) {
  return issues.map((issue) => ({
    pointer: issue.path,
    detail: `${issue.resourceType}${issue.id ? `/${issue.id}` : ''}: ${issue.message} (${issue.rule})`,
    in: 'fhir' as const,
  }));
}

/** Turns a failed FHIR server call into the API's answer. */
export function problemFromFhirError(error: unknown): unknown {
  if (!(error instanceof FhirServerError)) return error;
  const extra = { operationOutcome: error.outcome };
  switch (error.kind) {
    case 'not-found':
    case 'gone':
      return new ApiProblem(
        'not-found',
        'the care plan (or a part of it) does not exist on the FHIR server',
        extra,
      );
    case 'precondition-failed':
      return new ApiProblem(
        'precondition-failed',
        'the plan was changed by someone else; read it again',
        extra,
      );
    case 'conflict':
      return new ApiProblem('conflict', 'the FHIR server reported a conflict; retry', {
        ...extra,
        headers: { 'retry-after': '1' },
      });
    case 'rejected':
      return new ApiProblem('fhir-rejected', `the FHIR server rejected the plan (${error.status})`, extra);
    case 'timeout':
      return new ApiProblem('fhir-server-timeout', error.message, extra);
    case 'unavailable':
      return new ApiProblem('fhir-server-unavailable', error.message, {
        ...extra,
        headers: { 'retry-after': String(error.retryAfterSeconds ?? 5) },
      });
    default:
      return new ApiProblem('fhir-server-error', error.message, extra);
  }
}

/** Ids of non-contained resources are dropped so that POST always creates, never overwrites. */
function withoutStoredIds(plan: SharedCarePlan): SharedCarePlan {
  const strip = <T extends { id?: string }>(item: T): T => {
    if (item.id === undefined || item.id.startsWith('#')) return item;
    const { id: _id, ...rest } = item;
    return rest as T;
  };
  const { id: _id, version: _version, lastUpdated: _lastUpdated, ...rest } = plan;
  // Links by id must keep working once the id is gone: name such goals by their old id.
  const goals = plan.goals?.map((goal) =>
    goal.id && !goal.id.startsWith('#') && !goal.key ? { ...strip(goal), key: goal.id } : strip(goal),
  );
  return {
    ...rest,
    ...(goals ? { goals } : {}),
    ...(plan.whatMatters ? { whatMatters: strip(plan.whatMatters) } : {}),
    ...(plan.preferences ? { preferences: plan.preferences.map(strip) } : {}),
    ...(plan.barriers ? { barriers: plan.barriers.map(strip) } : {}),
    ...(plan.strengths ? { strengths: plan.strengths.map(strip) } : {}),
    ...(plan.careTeam ? { careTeam: strip(plan.careTeam) } : {}),
  };
}

export class CarePlanService {
  constructor(
    private readonly gateway: FhirGateway,
    private readonly newUuid: () => string = randomUUID,
    /** The US Core version of every profile claimed (US_CORE_VERSION); reading takes the claims of this version. */
    readonly usCoreVersion: UsCoreVersion = DEFAULT_US_CORE_VERSION,
  ) {}

  /** Maps a plan to a transaction Bundle and validates every resource in it. Pure: nothing is sent. */
  toFhir(plan: SharedCarePlan, options: Omit<ToFhirOptions, 'newUuid'> = {}): Bundle {
    const violations = checkPlanRules(plan);
    if (violations.length) {
      throw new ApiProblem('unprocessable', 'the parts of the plan do not fit together', {
        errors: violations.map((v) => ({ pointer: v.pointer, detail: v.message })),
      });
    }
    // PUT entries get their absolute fullUrl on the FHIR server the service writes to, unless the caller names
    // another base (the $to-fhir route: the public base).
    const bundle = planToTransaction(plan, {
      serverBase: this.gateway?.baseUrl,
      usCoreVersion: this.usCoreVersion,
      ...options,
      newUuid: this.newUuid,
    });
    const issues = validateFhirBundle(bundle, 'outbound');
    if (issues.length) {
      // Either the service mapped wrongly, or carried elements (unmappedFhir) are not valid FHIR.
      const fromCarried = JSON.stringify(plan).includes('"unmappedFhir"');
      throw new ApiProblem(
        fromCarried ? 'invalid-fhir' : 'mapping-failed',
        fromCarried
          ? 'the plan maps to invalid FHIR (check its unmappedFhir elements); nothing was sent'
          : 'the service produced FHIR that fails validation; nothing was sent',
        { errors: issuesToErrors(issues) },
      );
    }
    return bundle;
  }

  /** Maps FHIR (a CarePlan with contained resources, or a Bundle) to a plan. Pure: nothing is sent. */
  fromFhir(input: unknown, carePlanId?: string): SharedCarePlan {
    const isBundle = (input as Resource)?.resourceType === 'Bundle';
    const issues = isBundle ? validateFhirBundle(input, 'inbound') : validateFhirResource(input, 'inbound');
    if (issues.length) {
      throw new ApiProblem('invalid-fhir', 'the input is not valid FHIR R4', {
        errors: issuesToErrors(issues),
      });
    }
    let source: FhirPlanSource;
    try {
      source = planSourceFromFhir(input as Resource, carePlanId);
    } catch (error) {
      if (error instanceof PlanSourceError) {
        throw new ApiProblem(
          'unprocessable',
          error.message,
          error.carePlans.length ? { choices: error.carePlans } : {},
        );
      }
      throw error;
    }
    // Nothing is dropped silently: the input resources the plan does not hold are listed, with why.
    const { plan, notTaken } = planFromFhirWithReport(source, this.usCoreVersion);
    return notTaken.length ? { ...plan, notTaken } : plan;
  }

  /**
   * The transaction with the Provenance of the write appended (who: the caller), validated like every outbound
   * resource.
   */
  withProvenance(
    bundle: Bundle,
    context: PlanContext,
    activity: 'CREATE' | 'UPDATE',
    idempotencyTag?: string,
  ): Bundle {
    const caller = context.caller;
    const result = withProvenance(bundle, {
      activity,
      agent: { clientId: caller?.clientId, display: callerDisplay(caller) },
      recorded: new Date().toISOString(),
      idempotencyTag,
      uuid: this.newUuid(),
      usCoreVersion: this.usCoreVersion,
    });
    const provenance = result.entry?.[result.entry.length - 1]?.resource as Provenance;
    const issues = validateFhirResource(provenance, 'outbound');
    if (issues.length) {
      throw new ApiProblem('mapping-failed', 'the service produced a Provenance that fails validation', {
        errors: issuesToErrors(issues),
      });
    }
    return result;
  }

  async create(plan: SharedCarePlan, context: CreateContext): Promise<StoredPlan & { replayed: boolean }> {
    requireOwnPatient(context, plan.patient?.reference, '/patient/reference');
    const fresh = withActivityIds(withoutStoredIds(plan), this.newUuid);
    if (!context.idempotencyKey) {
      const bundle = this.toFhir(fresh, { revision: this.newUuid(), planKey: this.newUuid() });
      const response = await this.send(this.withProvenance(bundle, context, 'CREATE'), context, false);
      return { ...this.planFromTransaction(bundle, response), replayed: false };
    }
    const scope = context.caller ? idempotencyScope(context.caller) : (context.clientId ?? '');
    const keyHash = sha256(`${scope}\n${context.idempotencyKey}`);
    const requestHash = sha256(canonicalJson(plan));
    for (let attempt = 0; ; attempt++) {
      const existing = await this.findByIdempotencyKey(keyHash, context);
      if (existing) return { ...(await this.replay(existing, requestHash, context)), replayed: true };
      // Derived from the key, so that concurrent requests with one key write parts of one plan.
      const planKey = sha256(`plan\n${keyHash}`).slice(0, 32);
      const bundle = this.toFhir(fresh, {
        idempotency: { keyHash, requestHash },
        revision: keyHash,
        planKey,
      });
      try {
        const response = await this.send(
          this.withProvenance(bundle, context, 'CREATE', `${keyHash}/provenance`),
          context,
          true,
        );
        const stored = this.planFromTransaction(bundle, response);
        // 200 instead of 201: a concurrent request with the same key created the plan first.
        const createdNow = response.entry?.[0]?.response?.status?.startsWith('201') ?? true;
        if (!createdNow)
          return {
            ...(await this.replay(stored.resources[0] as CarePlan, requestHash, context)),
            replayed: true,
          };
        return { ...stored, replayed: false };
      } catch (error) {
        // A server that makes concurrent conditional creates unique by a constraint answers 409 to the loser.
        if (error instanceof ApiProblem && error.problemType === 'conflict' && attempt < 2) continue;
        throw error;
      }
    }
  }

  private async findByIdempotencyKey(keyHash: string, context: CallContext): Promise<CarePlan | undefined> {
    const found = await this.gateway
      .search('CarePlan', { identifier: `${SYSTEM.idempotencyKey}|${keyHash}` }, context)
      .catch((error) => {
        throw problemFromFhirError(error);
      });
    return found.entry?.find((e) => e.resource?.resourceType === 'CarePlan')?.resource as
      | CarePlan
      | undefined;
  }

  private async replay(carePlan: CarePlan, requestHash: string, context: PlanContext): Promise<StoredPlan> {
    const original = carePlan.identifier?.find(
      (i: Identifier) => i.system === SYSTEM.idempotencyRequest,
    )?.value;
    if (original !== requestHash) {
      throw new ApiProblem(
        'idempotency-key-reused',
        'this Idempotency-Key was already used with a different request body',
      );
    }
    return this.read(carePlan.id as string, context);
  }

  private async send(bundle: Bundle, context: CallContext, idempotent: boolean): Promise<Bundle> {
    try {
      return await this.gateway.transaction(bundle, { ...context, idempotent });
    } catch (error) {
      throw problemFromFhirError(error);
    }
  }

  /**
   * A stored plan from its CarePlan and the resources it references (found by Type/id). Only the resources that
   * prove they are the plan's parts are used; every other reference stays a reference (carried, never resolved).
   */
  storedFrom(carePlan: CarePlan, found: ReadonlyMap<string, Resource>): StoredPlan {
    const parts = ownParts(carePlan, found);
    return this.stored(carePlan, parts, [carePlan, ...parts.values()]);
  }

  /** The stored plan, from the transaction's answer (no second round trip). */
  planFromTransaction(request: Bundle, response: Bundle, previous: Resource[] = []): StoredPlan {
    const byReference = new Map<string, Resource>();
    for (const resource of previous) byReference.set(`${resource.resourceType}/${resource.id}`, resource);
    const resources: Resource[] = [];
    (response.entry ?? []).forEach((entry: BundleEntry, index: number) => {
      const resource = entry.resource;
      if (!resource || resource.resourceType === 'Provenance') return;
      resources.push(resource);
      const requested = request.entry?.[index];
      if (requested?.fullUrl) byReference.set(requested.fullUrl, resource);
      if (resource.id) byReference.set(`${resource.resourceType}/${resource.id}`, resource);
    });
    const carePlan = resources.find((r) => r.resourceType === 'CarePlan') as CarePlan | undefined;
    if (!carePlan?.id) {
      throw new ApiProblem('fhir-server-error', 'the FHIR server did not return the stored CarePlan');
    }
    return this.stored(carePlan, ownParts(carePlan, byReference), resources);
  }

  private stored(
    carePlan: CarePlan,
    byReference: ReadonlyMap<string, Resource>,
    resources: Resource[],
  ): StoredPlan {
    const lookup = resolverFor(carePlan, byReference);
    const resolve = (reference: string) => {
      const found = lookup(reference);
      return found && withoutServerStamp(found);
    };
    const plan = planFromFhir({ carePlan: withoutServerStamp(carePlan), resolve });
    return { plan, version: carePlan.meta?.versionId ?? '', resources };
  }

  async read(id: string, context: PlanContext): Promise<StoredPlan> {
    try {
      const { resource: carePlan } = await this.gateway.read<CarePlan>('CarePlan', id, context);
      const restricted = context.caller?.patient;
      if (restricted && subjectPatient(carePlan.subject?.reference) !== restricted) throw hiddenPlan();
      const found = await this.gateway.readMany(partReferencesOf(carePlan), context);
      return this.storedFrom(carePlan, found);
    } catch (error) {
      throw problemFromFhirError(error);
    }
  }
}

/**
 * The resources of a stored plan as a FHIR Bundle (collection). `fullUrl`s use the FHIR server's public base URL;
 * without one (the embedded server, whose loopback address means nothing to a caller) entries have none.
 */
export function planResourcesBundle(stored: StoredPlan, publicBaseUrl: string | undefined): Bundle {
  const base = publicBaseUrl?.replace(/\/+$/, '');
  return {
    resourceType: 'Bundle',
    type: 'collection',
    entry: stored.resources.map((resource) => ({
      ...(base ? { fullUrl: `${base}/${resource.resourceType}/${resource.id}` } : {}),
      resource,
    })),
  };
}

/**
 * Without the meta.source "#<request id>" a server stamps on every write (HAPI does): like versionId, it is the
 * server's, not the plan's. Only applied to what the service reads back from its own FHIR server.
 */
function withoutServerStamp<T extends Resource>(resource: T): T {
  const source = resource.meta?.source;
  if (!source?.startsWith('#')) return resource;
  const { source: _source, ...meta } = resource.meta ?? {};
  return { ...resource, meta };
}

/** Activities are addressed by id (PATCH /care-plans/{id}/activities/{activityId}): give new ones an id. */
function withActivityIds(plan: SharedCarePlan, newUuid: () => string): SharedCarePlan {
  if (!plan.activities?.some((a) => a.id === undefined)) return plan;
  return {
    ...plan,
    activities: plan.activities.map((a) => (a.id ? a : { id: `activity-${newUuid().slice(0, 8)}`, ...a })),
  };
}

/** A resource without what the server stamps on every write, to tell a real change from a no-op. */
function content(resource: Resource): unknown {
  const { meta, ...rest } = resource;
  const { versionId: _v, lastUpdated: _l, source, ...metaRest } = meta ?? {};
  const keptMeta = { ...metaRest, ...(source && !source.startsWith('#') ? { source } : {}) };
  return Object.keys(keptMeta).length ? { ...rest, meta: keptMeta } : rest;
}

/** The references (Type/id) of the stored resources a plan is made of, besides its CarePlan. */
function partReferences(plan: SharedCarePlan): Set<string> {
  const refs = new Set<string>();
  const add = (type: string, id: string | undefined) => {
    if (id && !id.startsWith('#')) refs.add(`${type}/${id}`);
  };
  for (const goal of plan.goals ?? []) add('Goal', goal.id);
  add('CareTeam', plan.careTeam?.id);
  add('Observation', plan.whatMatters?.id);
  for (const item of [...(plan.preferences ?? []), ...(plan.barriers ?? [])]) add('Observation', item.id);
  for (const item of plan.strengths ?? []) add('Condition', item.id);
  return refs;
}

export interface SearchFilters {
  patient?: string;
  status?: string;
  updatedSince?: string;
}

export interface Page<T> {
  items: T[];
  next: string | null;
}

export interface ChangeItem {
  id: string;
  version: string;
  lastUpdated: string;
  status: string;
  patient?: string;
}

export interface HistoryItem {
  version: string;
  lastUpdated?: string;
  status?: string;
  changedBy?: string;
}

/** The write side of an existing plan and the read side of many: kept apart from creation for clarity. */
/** Checks a plan against the API schema; returns the problems found (used for plans changed by an edit). */
export type PlanSchemaCheck = (plan: SharedCarePlan) => { pointer: string; detail: string }[];

export interface CarePlanStoreOptions {
  newUuid?: () => string;
  /** The change feed holds back changes younger than this (ms). */
  settleMs?: number;
  checkSchema?: PlanSchemaCheck;
}

export class CarePlanStore {
  private readonly newUuid: () => string;
  private readonly settleMs: number;
  private readonly checkSchema: PlanSchemaCheck;

  constructor(
    private readonly service: CarePlanService,
    private readonly gateway: FhirGateway,
    options: CarePlanStoreOptions = {},
  ) {
    this.newUuid = options.newUuid ?? randomUUID;
    this.settleMs = options.settleMs ?? 0;
    this.checkSchema = options.checkSchema ?? (() => []);
  }

  /** Replaces a plan: the body is the plan as GET returned it, edited; ids and version are checked. */
  async replace(
    id: string,
    next: SharedCarePlan,
    ifMatch: string[] | undefined,
    context: EditContext,
  ): Promise<EditResult> {
    return this.apply(id, ifMatch, context, () => next);
  }

  /** Read, change, write: the small edits (goals, activities, ending a plan) all go through here. */
  async edit(
    id: string,
    ifMatch: string[] | undefined,
    change: (plan: SharedCarePlan) => SharedCarePlan,
    context: EditContext,
  ): Promise<EditResult> {
    return this.apply(id, ifMatch, context, (current) => {
      const changed = change(cloneJson(current.plan));
      const errors = this.checkSchema(changed);
      if (errors.length) {
        throw new ApiProblem('unprocessable', 'after this change the plan would not be valid', { errors });
      }
      return changed;
    });
  }

  private async apply(
    id: string,
    ifMatch: string[] | undefined,
    context: EditContext,
    change: (current: StoredPlan) => SharedCarePlan,
  ): Promise<EditResult> {
    const current = await this.service.read(id, context);
    const revision = context.idempotency ? editRevision(id, context) : this.newUuid();
    if (context.idempotency) {
      const replayed = await this.replayed(current, ifMatch, revision, context);
      if (replayed) return { ...replayed, replayed: true };
    }
    requireVersion(current, ifMatch);
    return { ...(await this.write(current, change(current), context, revision)), replayed: false };
  }

  /**
   * The plan, when an edit with this Idempotency-Key was written already (its revision names the key): the
   * latest version, or an earlier one when the caller's If-Match is stale because others wrote after it. The same
   * key with another request is a 422.
   */
  private async replayed(
    current: StoredPlan,
    ifMatch: string[] | undefined,
    revision: string,
    context: EditContext,
  ): Promise<StoredPlan | undefined> {
    const key = `${revision.split('.')[0]}.`;
    let written = planRevision(current.resources[0] as CarePlan);
    if (!written?.startsWith(key)) {
      // If-Match still current: nothing was written since the caller read, so neither was this edit.
      if (!ifMatch || ifMatch.includes(current.version)) return undefined;
      const history = await this.gateway
        .history('CarePlan', current.plan.id as string, context)
        .catch((error) => {
          throw problemFromFhirError(error);
        });
      written = (history.entry ?? [])
        .map((e) => planRevision(e.resource as CarePlan))
        .find((r) => r?.startsWith(key));
      if (!written) return undefined;
    }
    if (written !== revision) {
      throw new ApiProblem(
        'idempotency-key-reused',
        'this Idempotency-Key was already used with a different request on this plan',
      );
    }
    return current;
  }

  /** Writes `next` over `current` in one transaction conditional on its version (If-Match checked by the caller). */
  private async write(
    current: StoredPlan,
    next: SharedCarePlan,
    context: PlanContext,
    revision: string,
  ): Promise<StoredPlan> {
    requireOwnPatient(context, next.patient?.reference, '/patient/reference');
    const id = current.plan.id as string;
    if (next.id !== undefined && next.id !== id) {
      throw new ApiProblem('unprocessable', `the body is plan "${next.id}", not "${id}"`, {
        errors: [{ pointer: '/id', detail: 'must be the id of the plan in the path' }],
      });
    }
    if (next.version !== undefined && next.version !== current.version) {
      throw staleProblem(current.version, 'the version in the body is not the current version of the plan');
    }
    // Parts named by id must be parts of this plan: an update never takes over another plan's resources.
    const owned = partReferences(current.plan);
    const wanted = partReferences(next);
    const foreign = [...wanted].filter((ref) => !owned.has(ref));
    if (foreign.length) {
      throw new ApiProblem('unprocessable', 'the body names parts that do not belong to this plan', {
        errors: foreign.map((ref) => ({ pointer: '', detail: `${ref} is not part of plan ${id}` })),
      });
    }
    const { version: _v, lastUpdated: _l, ...plan } = { ...withActivityIds(next, this.newUuid), id };
    const carePlan = current.resources[0] as CarePlan;
    const bundle = this.service.toFhir(plan, {
      ifMatchVersion: current.version,
      revision,
      deleteReferences: [...owned].filter((ref) => !wanted.has(ref)),
      // A plan written before parts carried the plan's identifier gets one now; its old parts stay references.
      planKey: planKeyOf(carePlan) ?? this.newUuid(),
      storedIdentifiers: new Map(
        current.resources.map((r) => [`${r.resourceType}/${r.id}`, managedIdentifiers(r)]),
      ),
    });
    // Parts that did not change are not rewritten, so their own versions stay meaningful.
    const previous = new Map(current.resources.map((r) => [`${r.resourceType}/${r.id}`, r]));
    bundle.entry = bundle.entry?.filter((entry, index) => {
      if (index === 0 || entry.request?.method !== 'PUT' || !entry.resource) return true;
      const before = previous.get(entry.request.url);
      return !before || !jsonEqual(content(before), content(entry.resource));
    });
    const withProvenance = this.service.withProvenance(bundle, context, 'UPDATE');
    try {
      const response = await this.gateway.transaction(withProvenance, { ...context, idempotent: false });
      return this.service.planFromTransaction(bundle, response, current.resources);
    } catch (error) {
      // A stale If-Match is a 412 (409 on HAPI, which reports version conflicts that way).
      if (
        error instanceof FhirServerError &&
        (error.kind === 'precondition-failed' || error.kind === 'conflict')
      ) {
        const latest = await this.service.read(id, context);
        if (latest.version !== current.version) {
          throw staleProblem(latest.version, 'the plan was changed by someone else; read it again');
        }
        // Not a stale version: another conflict the FHIR server reported (its OperationOutcome says which).
      }
      // The answer was lost or late, but the write may have committed: the revision it wrote tells.
      if (isAmbiguous(error)) {
        const landed = await this.service.read(id, context).catch(() => undefined);
        if (landed && planRevision(landed.resources[0] as CarePlan) === revision) return landed;
      }
      throw problemFromFhirError(error);
    }
  }

  async search(
    filters: SearchFilters,
    limit: number,
    cursor: string | undefined,
    context: PlanContext,
  ): Promise<Page<StoredPlan>> {
    const restricted = context.caller?.patient;
    if (restricted && subjectPatient(filters.patient) !== restricted) {
      throw new ApiProblem('forbidden', "a patient token can only search its own patient's plans", {
        errors: [{ pointer: '/patient', detail: `must be ${restricted}`, in: 'query' }],
        denied: true,
      });
    }
    const { carePlans, cursorAfter, hasMore } = await this.page(filters, limit, cursor, context, 0);
    const found = await this.gateway.readMany(carePlans.flatMap(partReferencesOf), context).catch((error) => {
      throw problemFromFhirError(error);
    });
    return {
      items: carePlans.map((c) => this.service.storedFrom(c, found)),
      next: hasMore ? (cursorAfter as string) : null,
    };
  }

  /** Changes oldest first, resumable from a cursor; an empty page means the consumer is up to date. */
  async changes(
    since: string | undefined,
    limit: number,
    context: PlanContext,
    patient?: string,
  ): Promise<Page<ChangeItem>> {
    // A patient-restricted caller's feed holds its patient's plans only.
    const restricted = context.caller?.patient;
    if (restricted && patient && subjectPatient(patient) !== restricted) {
      throw new ApiProblem('forbidden', "a patient token can only follow its own patient's plans", {
        denied: true,
      });
    }
    const filter = restricted ?? patient;
    const { carePlans, cursorAfter } = await this.page(
      { patient: filter },
      limit,
      since,
      context,
      this.settleMs,
    );
    return {
      items: carePlans.map((c) => ({
        id: c.id as string,
        version: c.meta?.versionId as string,
        lastUpdated: c.meta?.lastUpdated as string,
        status: c.status,
        ...(c.subject?.reference ? { patient: c.subject.reference } : {}),
      })),
      next: cursorAfter ?? since ?? encodeCursor({ t: '', seen: [] }),
    };
  }

  /**
   * One page of CarePlans ordered by lastUpdated, from a keyset cursor (the last time seen and the ids already
   * returned at that time), so paging works on servers that give no paging links.
   */
  private async page(
    filters: SearchFilters,
    limit: number,
    cursor: string | undefined,
    context: PlanContext,
    settleMs: number,
  ): Promise<{ carePlans: CarePlan[]; cursorAfter?: string; hasMore: boolean }> {
    const position = cursor === undefined ? undefined : decodeCursor(cursor);
    if (cursor !== undefined && !position) {
      throw new ApiProblem('bad-request', 'the cursor is not one this service gave out', {
        errors: [{ pointer: '/cursor', detail: 'unknown cursor', in: 'query' }],
      });
    }
    const seen = new Set(position?.seen ?? []);
    const params: Record<string, string> = { _sort: '_lastUpdated', _count: String(limit + seen.size + 1) };
    // Later pages start at the cursor, which is never before updatedSince (the first page applied it).
    const since = position?.t || filters.updatedSince;
    if (since) params._lastUpdated = `ge${since}`;
    if (filters.patient) params.subject = filters.patient;
    if (filters.status) params.status = filters.status;
    const bundle = await this.gateway.search('CarePlan', params, context).catch((error) => {
      throw problemFromFhirError(error);
    });
    // Writes that are still settling may yet commit with an earlier time: the feed waits until they cannot.
    const settledBefore = settleMs > 0 ? new Date(Date.now() - settleMs).toISOString() : undefined;
    const restricted = context.caller?.patient;
    const all = (bundle.entry ?? [])
      .map((e) => e.resource as CarePlan)
      .filter((c) => c?.resourceType === 'CarePlan' && !!c.meta?.lastUpdated)
      // Defence in depth: whatever the server's search did, a restricted caller sees its patient's plans only.
      .filter((c) => !restricted || subjectPatient(c.subject?.reference) === restricted)
      .filter((c) => !(c.meta?.lastUpdated === position?.t && seen.has(c.id as string)))
      .filter((c) => !settledBefore || (c.meta?.lastUpdated as string) <= settledBefore);
    const carePlans = all.slice(0, limit);
    if (carePlans.length === 0) return { carePlans, hasMore: false };
    const last = carePlans[carePlans.length - 1].meta?.lastUpdated as string;
    const tied = carePlans.filter((c) => c.meta?.lastUpdated === last).map((c) => c.id as string);
    const cursorAfter = encodeCursor({ t: last, seen: last === position?.t ? [...seen, ...tied] : tied });
    // Servers cap page sizes (HAPI: 50): a next link then also means there is more.
    const serverHasMore = (bundle.link ?? []).some((link) => link.relation === 'next');
    return { carePlans, cursorAfter, hasMore: all.length > limit || serverHasMore };
  }

  /**
   * The versions of a plan, newest first, each with who made it (changedBy) from the Provenance written in the same
   * transaction (matched by the plan-revision both carry). A patient-restricted caller sees only the versions
   * of its patient's plan; another patient's plan is absent (404).
   */
  async history(id: string, context: PlanContext): Promise<HistoryItem[]> {
    const [bundle, provenance] = await Promise.all([
      this.gateway.history('CarePlan', id, context),
      this.gateway.search('Provenance', { target: `CarePlan/${id}`, _count: '1000' }, context),
    ]).catch((error) => {
      throw problemFromFhirError(error);
    });
    const changedBy = new Map<string, string>();
    for (const entry of provenance.entry ?? []) {
      const resource = entry.resource as Provenance | undefined;
      if (resource?.resourceType !== 'Provenance') continue;
      const revision = resource.extension?.find((e) => e.url === EXTENSION.planRevision)?.valueString;
      const who = resource.agent?.[0]?.who;
      const display = who?.display ?? who?.reference ?? who?.identifier?.value;
      if (revision && display) changedBy.set(revision, display);
    }
    const restricted = context.caller?.patient;
    const versions = (bundle.entry ?? [])
      .map((e) => e.resource as CarePlan | undefined)
      .filter((c): c is CarePlan => c?.resourceType === 'CarePlan')
      .filter((c) => !restricted || subjectPatient(c.subject?.reference) === restricted);
    if (restricted && versions.length === 0) throw hiddenPlan();
    return versions
      .map((c) => {
        const by = changedBy.get(planRevision(c) ?? '');
        return {
          version: c.meta?.versionId as string,
          ...(c.meta?.lastUpdated ? { lastUpdated: c.meta.lastUpdated } : {}),
          status: c.status,
          ...(by ? { changedBy: by } : {}),
        };
      })
      .sort((a, b) => ((a.lastUpdated ?? '') < (b.lastUpdated ?? '') ? 1 : -1));
  }
}

/** A failure after which the FHIR server may or may not have committed the transaction. */
function isAmbiguous(error: unknown): boolean {
  if (!(error instanceof FhirServerError)) return true;
  return error.kind === 'timeout' || error.kind === 'upstream' || error.kind === 'unavailable';
}

/**
 * The plan-revision an edit with an Idempotency-Key writes: the key (hashed, scoped to the caller) and the request
 * (hashed), so that a retry can find its own write and tell a reused key.
 */
function editRevision(id: string, context: EditContext): string {
  const idempotency = context.idempotency as NonNullable<EditContext['idempotency']>;
  const scope = context.caller ? idempotencyScope(context.caller) : '';
  const key = sha256(`edit\n${scope}\n${idempotency.key}`).slice(0, 32);
  return `${key}.${sha256(canonicalJson({ id, request: idempotency.request })).slice(0, 32)}`;
}

function staleProblem(currentVersion: string, detail: string): ApiProblem {
  return new ApiProblem('precondition-failed', detail, { headers: { etag: `W/"${currentVersion}"` } });
}

/** `ifMatch`: the versions of the If-Match header (a list matches when any member does; `*` is refused earlier). */
function requireVersion(current: StoredPlan, ifMatch: string[] | undefined) {
  if (ifMatch === undefined) {
    throw new ApiProblem('precondition-required', 'send If-Match with the ETag from a read of the plan', {
      errors: [{ pointer: '', detail: 'If-Match is missing', in: 'header' }],
    });
  }
  if (!ifMatch.includes(current.version)) {
    throw staleProblem(current.version, 'the plan was changed since it was read (If-Match is stale)');
  }
}
