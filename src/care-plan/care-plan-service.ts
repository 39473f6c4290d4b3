// The use cases of the API: each maps, validates and talks to the FHIR server through the gateway.
import { createHash, randomUUID } from 'node:crypto';
import type { Bundle, BundleEntry, CarePlan, Identifier, Resource } from 'fhir/r4.js';
import { ApiProblem } from '../errors.js';
import { type CallContext, type FhirGateway, FhirServerError } from '../fhir/gateway.js';
import { SYSTEM } from '../fhir/mapping/codes.js';
import {
  type FhirPlanSource,
  PlanSourceError,
  planFromFhir,
  planSourceFromFhir,
} from '../fhir/mapping/from-fhir.js';
import { planToTransaction, type ToFhirOptions } from '../fhir/mapping/to-fhir.js';
import {
  type FhirValidationIssue,
  validateFhirBundle,
  validateFhirResource,
} from '../fhir/validation/index.js';
import { checkPlanRules, type SharedCarePlan } from './care-plan.js';

export interface StoredPlan {
  plan: SharedCarePlan;
  /** The plan's version: the CarePlan's versionId, bumped by every change to any part of the plan. */
  version: string;
  /** The FHIR resources the plan was read from (CarePlan first). */
  resources: Resource[];
}

export interface CreateContext extends CallContext {
  idempotencyKey?: string;
  /** Who is calling: idempotency keys are scoped to the caller. */
  clientId?: string;
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
  ) {}

  /** Maps a plan to a transaction Bundle and validates every resource in it. Pure: nothing is sent. */
  toFhir(plan: SharedCarePlan, options: Omit<ToFhirOptions, 'newUuid'> = {}): Bundle {
    const violations = checkPlanRules(plan);
    if (violations.length) {
      throw new ApiProblem('unprocessable', 'the parts of the plan do not fit together', {
        errors: violations.map((v) => ({ pointer: v.pointer, detail: v.message })),
      });
    }
    const bundle = planToTransaction(plan, { ...options, newUuid: this.newUuid });
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
    return planFromFhir(source);
  }

  async create(plan: SharedCarePlan, context: CreateContext): Promise<StoredPlan & { replayed: boolean }> {
    const fresh = withoutStoredIds(plan);
    if (!context.idempotencyKey) {
      const bundle = this.toFhir(fresh);
      const response = await this.send(bundle, context, false);
      return { ...this.planFromTransaction(bundle, response), replayed: false };
    }
    const keyHash = sha256(`${context.clientId ?? ''}\n${context.idempotencyKey}`);
    const requestHash = sha256(canonicalJson(plan));
    for (let attempt = 0; ; attempt++) {
      const existing = await this.findByIdempotencyKey(keyHash, context);
      if (existing) return { ...(await this.replay(existing, requestHash, context)), replayed: true };
      const bundle = this.toFhir(fresh, { idempotency: { keyHash, requestHash } });
      try {
        const response = await this.send(bundle, context, true);
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

  private async replay(carePlan: CarePlan, requestHash: string, context: CallContext): Promise<StoredPlan> {
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

  /** The stored plan, from the transaction's answer (no second round trip). */
  private planFromTransaction(request: Bundle, response: Bundle): StoredPlan {
    const byReference = new Map<string, Resource>();
    const resources: Resource[] = [];
    (response.entry ?? []).forEach((entry: BundleEntry, index: number) => {
      const resource = entry.resource;
      if (!resource) return;
      resources.push(resource);
      const requested = request.entry?.[index];
      if (requested?.fullUrl) byReference.set(requested.fullUrl, resource);
      if (resource.id) byReference.set(`${resource.resourceType}/${resource.id}`, resource);
    });
    const carePlan = resources.find((r) => r.resourceType === 'CarePlan') as CarePlan | undefined;
    if (!carePlan?.id) {
      throw new ApiProblem('fhir-server-error', 'the FHIR server did not return the stored CarePlan');
    }
    return this.stored(carePlan, byReference, resources);
  }

  private stored(carePlan: CarePlan, byReference: Map<string, Resource>, resources: Resource[]): StoredPlan {
    const resolve = (reference: string) => {
      if (reference.startsWith('#')) return carePlan.contained?.find((r) => r.id === reference.slice(1));
      const relative = /([A-Z][A-Za-z]+\/[A-Za-z0-9\-.]{1,64})(\/_history\/.*)?$/.exec(reference);
      return byReference.get(reference) ?? (relative ? byReference.get(relative[1]) : undefined);
    };
    const plan = planFromFhir({ carePlan, resolve });
    return { plan, version: carePlan.meta?.versionId ?? '', resources };
  }

  async read(id: string, context: CallContext): Promise<StoredPlan> {
    try {
      const { resource: carePlan } = await this.gateway.read<CarePlan>('CarePlan', id, context);
      const references = [
        ...(carePlan.goal ?? []),
        ...(carePlan.careTeam ?? []),
        ...(carePlan.supportingInfo ?? []),
      ]
        .map((r) => r.reference)
        .filter((r): r is string => !!r && /^[A-Z][A-Za-z]+\/[A-Za-z0-9\-.]{1,64}$/.test(r));
      const found = await this.gateway.readMany(references, context);
      return this.stored(carePlan, found, [carePlan, ...found.values()]);
    } catch (error) {
      throw problemFromFhirError(error);
    }
  }
}

/** The resources of a stored plan as a FHIR Bundle (collection). */
export function planResourcesBundle(stored: StoredPlan, baseUrl: string): Bundle {
  return {
    resourceType: 'Bundle',
    type: 'collection',
    entry: stored.resources.map((resource) => ({
      fullUrl: `${baseUrl}/${resource.resourceType}/${resource.id}`,
      resource,
    })),
  };
}
