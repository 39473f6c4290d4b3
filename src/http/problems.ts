// Every error the API answers with is an RFC 9457 problem (application/problem+json) with a stable `type`.
import type { OperationOutcome } from 'fhir/r4.js';
import { FhirServerError } from '../fhir/client/gateway.js';
import { DomainError, type DomainErrorKind } from '../model/errors.js';
import { formatEtag } from './etag.js';

export const PROBLEM_BASE = 'https://shared-care-plans.org/problems';

export interface ProblemError {
  /** JSON pointer to where the problem is (in the request body, or a FHIR resource). */
  pointer: string;
  detail: string;
  /** Where the pointer points: the request body (default), a query parameter, a header, a FHIR resource. */
  in?: 'body' | 'query' | 'header' | 'path' | 'fhir';
}

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  instance?: string;
  errors?: ProblemError[];
  /** Issues reported by the FHIR server, when it refused something. */
  operationOutcome?: OperationOutcome;
  /** Names to choose from (e.g. the CarePlans of a Bundle). */
  choices?: string[];
}

export const PROBLEM_TYPES = {
  'bad-request': { status: 400, title: 'The request is malformed' },
  validation: { status: 400, title: 'The request does not match the API schema' },
  unauthorized: { status: 401, title: 'Authentication is required' },
  forbidden: { status: 403, title: 'Not allowed' },
  'not-found': { status: 404, title: 'Not found' },
  'method-not-allowed': { status: 405, title: 'Method not allowed' },
  'not-acceptable': { status: 406, title: 'Not acceptable' },
  conflict: { status: 409, title: 'Conflict' },
  'precondition-failed': { status: 412, title: 'The plan has changed since it was read' },
  'payload-too-large': { status: 413, title: 'The request body is too large' },
  'body-too-complex': { status: 413, title: 'The request body holds too many JSON values or array items' },
  'uri-too-long': { status: 414, title: 'The URL is too long' },
  'unsupported-media-type': { status: 415, title: 'Unsupported media type' },
  'headers-too-large': { status: 431, title: 'The request line or headers are too large' },
  unprocessable: { status: 422, title: 'The request is well-formed but cannot be processed' },
  'invalid-fhir': { status: 422, title: 'The FHIR input is not valid FHIR R4' },
  'fhir-rejected': { status: 422, title: 'The FHIR server rejected the plan' },
  'idempotency-key-reused': { status: 422, title: 'The Idempotency-Key was used with a different request' },
  'precondition-required': { status: 428, title: 'If-Match is required' },
  'too-many-requests': { status: 429, title: 'Too many requests' },
  'auth-unavailable': { status: 503, title: 'The access token cannot be checked now' },
  'webhooks-unavailable': { status: 503, title: 'Webhook subscriptions are not configured' },
  'mapping-failed': { status: 500, title: 'The service produced invalid FHIR (a bug in the service)' },
  internal: { status: 500, title: 'Internal error' },
  'fhir-server-error': { status: 502, title: 'The FHIR server failed' },
  'fhir-server-unavailable': { status: 503, title: 'The FHIR server is unavailable' },
  'fhir-server-timeout': { status: 504, title: 'The FHIR server did not answer in time' },
} as const;

export type ProblemType = keyof typeof PROBLEM_TYPES;

/** An error that leaves the API as a problem document. */
export class ApiProblem extends Error {
  constructor(
    readonly problemType: ProblemType,
    readonly detail: string,
    readonly extra: Partial<Pick<Problem, 'errors' | 'operationOutcome' | 'choices'>> & {
      headers?: Record<string, string>;
      /** For the audit log: the caller was refused (e.g. another patient's plan, shown as a 404). */
      denied?: boolean;
    } = {},
  ) {
    super(detail);
  }

  get status(): number {
    return PROBLEM_TYPES[this.problemType].status;
  }

  toProblem(instance?: string): Problem {
    const { headers: _headers, denied: _denied, ...extra } = this.extra;
    return {
      type: `${PROBLEM_BASE}/${this.problemType}`,
      title: PROBLEM_TYPES[this.problemType].title,
      status: this.status,
      detail: this.detail,
      ...(instance ? { instance } : {}),
      ...extra,
    };
  }
}

const DOMAIN_PROBLEMS: Record<Exclude<DomainErrorKind, 'stale' | 'version-required'>, ProblemType> = {
  'not-found': 'not-found',
  'not-allowed': 'forbidden',
  unprocessable: 'unprocessable',
  'invalid-request': 'bad-request',
  'invalid-fhir': 'invalid-fhir',
  'mapping-failed': 'mapping-failed',
  'idempotency-key-reused': 'idempotency-key-reused',
  'webhooks-unavailable': 'webhooks-unavailable',
};

/** A domain error as the API answers it. */
function problemFromDomainError(error: DomainError): ApiProblem {
  const { errors, choices, currentVersion, denied } = error.details;
  if (error.kind === 'version-required') {
    return new ApiProblem('precondition-required', 'send If-Match with the ETag from a read of the plan', {
      errors: [{ pointer: '', detail: 'If-Match is missing', in: 'header' }],
    });
  }
  if (error.kind === 'stale') {
    return new ApiProblem('precondition-failed', error.message, {
      headers: { etag: formatEtag(currentVersion ?? '') },
    });
  }
  return new ApiProblem(DOMAIN_PROBLEMS[error.kind], error.message, {
    ...(errors ? { errors } : {}),
    ...(choices ? { choices } : {}),
    ...(denied ? { denied } : {}),
  });
}

/** A failed FHIR server call as the API answers it. */
function problemFromFhirError(error: FhirServerError): ApiProblem {
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

/**
 * The one place where errors of the floors below (domain errors, FHIR server errors) become problems: their
 * status, type and headers. Anything else is not a known error (undefined).
 */
export function problemOf(error: unknown): ApiProblem | undefined {
  if (error instanceof ApiProblem) return error;
  if (error instanceof DomainError) return problemFromDomainError(error);
  if (error instanceof FhirServerError) return problemFromFhirError(error);
  return undefined;
}
