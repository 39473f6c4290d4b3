// Reusable OpenAPI response declarations, so every route documents its error answers the same way.
import { FHIR_ID_PATTERN } from '../../fhir/fhir-id.js';

const problem = (description: string) => ({
  description,
  content: { 'application/problem+json': { schema: { $ref: 'Problem#' } } },
});

export const problemResponses = {
  400: problem('The request is malformed or does not match the schema (unknown properties are rejected).'),
  403: problem(
    "The token does not allow this, or the caller may not change it (someone else wrote it: see README, 'Who may do what').",
  ),
  404: problem('No such care plan.'),
  406: problem('The requested media type cannot be produced.'),
  409: problem('A conflicting request is in flight; retry after Retry-After.'),
  412: problem('The plan changed since it was read (If-Match is stale); the current ETag is in the answer.'),
  413: problem('The request body is larger than the configured limit.'),
  415: problem('Send application/json or application/fhir+json.'),
  422: problem(
    'Well-formed, but not processable (the plan parts do not fit together, or the FHIR server rejected it).',
  ),
  428: problem('If-Match is required.'),
  429: problem('Too many requests; retry after Retry-After.'),
  500: problem('A bug in the service (e.g. it produced invalid FHIR); nothing was sent to the FHIR server.'),
  502: problem('The FHIR server failed.'),
  503: problem('The FHIR server is unavailable; retry after Retry-After.'),
  504: problem('The FHIR server did not answer in time.'),
} as const;

type Code = keyof typeof problemResponses;
export const problems = (...codes: Code[]) =>
  Object.fromEntries(codes.map((code) => [code, problemResponses[code]]));

export const planIdParams = {
  type: 'object',
  required: ['id'],
  properties: {
    id: {
      type: 'string',
      pattern: `^${FHIR_ID_PATTERN}$`,
      description: 'The care plan id (the FHIR CarePlan id; not only dots).',
    },
  },
} as const;
