// Every error the API answers with is an RFC 9457 problem (application/problem+json) with a stable `type`.
import type { OperationOutcome } from 'fhir/r4.js';

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
