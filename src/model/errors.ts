// Domain errors: what went wrong, in the plan's terms. They know no HTTP: src/http/problems.ts turns each kind
// into a problem (status, type, headers) in one place.

/** Where in the request a detail points (a JSON pointer into the body, a query parameter, a FHIR resource...). */
export interface ErrorDetail {
  pointer: string;
  detail: string;
  in?: 'body' | 'query' | 'header' | 'path' | 'fhir';
}

export type DomainErrorKind =
  /** The plan, or a part of it, does not exist (or the caller may not know it does). */
  | 'not-found'
  /** The caller may not do this (e.g. a patient token writing another patient's plan). */
  | 'not-allowed'
  /** Well-formed, but the plan (or the change) cannot be processed. */
  | 'unprocessable'
  /** A request value the service does not know (e.g. a cursor it never gave out). */
  | 'invalid-request'
  /** FHIR input that is not valid FHIR R4, or a plan whose carried FHIR is not. */
  | 'invalid-fhir'
  /** The service produced FHIR that fails validation (a bug in the service). */
  | 'mapping-failed'
  /** The version the caller based a change on is not the current one (currentVersion says which is). */
  | 'stale'
  /** A change was sent without naming the version it is based on. */
  | 'version-required'
  /** An idempotency key reused with another request. */
  | 'idempotency-key-reused'
  /** Webhook subscriptions need a setting this deployment lacks (the secret key). */
  | 'webhooks-unavailable';

export interface DomainErrorDetails {
  errors?: ErrorDetail[];
  /** Names to choose from (e.g. the CarePlans of a Bundle). */
  choices?: string[];
  /** With `stale`: the current version of the plan. */
  currentVersion?: string;
  /** The caller was refused (for the audit log), e.g. another patient's plan shown as not found. */
  denied?: boolean;
}

export class DomainError extends Error {
  constructor(
    readonly kind: DomainErrorKind,
    message: string,
    readonly details: DomainErrorDetails = {},
  ) {
    super(message);
  }
}
