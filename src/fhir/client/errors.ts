// How a call to the FHIR server failed, classified so that the API can answer with a meaningful status. Its own
// module so that the gateway and its paging (paging.ts) both throw it without importing each other.
import type { OperationOutcome } from 'fhir/r4.js';

export type FhirErrorKind =
  | 'not-found'
  | 'gone'
  | 'conflict'
  | 'precondition-failed'
  | 'rejected'
  | 'unavailable'
  | 'timeout'
  | 'upstream';

/** A failed call to the FHIR server, classified so the API can answer with a meaningful status. */
export class FhirServerError extends Error {
  constructor(
    readonly kind: FhirErrorKind,
    message: string,
    readonly status?: number,
    readonly outcome?: OperationOutcome,
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
  }
}
