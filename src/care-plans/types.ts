// The shapes the care plan use cases take and give.
import type { Resource } from 'fhir/r4.js';
import type { Caller } from '../auth/caller.js';
import type { CallContext } from '../fhir/client/gateway.js';
import type { SharedCarePlan } from '../model/care-plan.js';
import type { ErrorDetail } from '../model/errors.js';

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
  /** The person a write is attributed to (the caller's fhirUser, with a name), set by the use cases. */
  actor?: { reference: string; display?: string };
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
  /** The person who made the change (Patient/..., RelatedPerson/..., Practitioner/...), when known. */
  changedByReference?: string;
  /** The client (app) the person used. */
  via?: string;
}

/** Checks a plan against the API schema; returns the problems found (used for plans changed by an edit). */
export type PlanSchemaCheck = (plan: SharedCarePlan) => ErrorDetail[];
