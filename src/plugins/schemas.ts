// The API contract as named schemas: schemas/care-plan.schema.json split into one schema per definition, so
// that validators and the OpenAPI document share them and every component has a proper name.
import { readFileSync } from 'node:fs';
import { fromRoot } from '../paths.js';

type Schema = Record<string, unknown>;

function rewriteRefs(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(rewriteRefs);
  if (value && typeof value === 'object') {
    const result: Schema = {};
    for (const [key, item] of Object.entries(value)) {
      result[key] =
        key === '$ref' && typeof item === 'string' && item.startsWith('#/definitions/')
          ? `${item.slice('#/definitions/'.length)}#`
          : rewriteRefs(item);
    }
    return result;
  }
  return value;
}

const source = JSON.parse(readFileSync(fromRoot('schemas', 'care-plan.schema.json'), 'utf8')) as Schema;
export const examplePlan = JSON.parse(
  readFileSync(fromRoot('schemas', 'examples', 'patient-led-plan.json'), 'utf8'),
);

const {
  definitions,
  $schema: _s,
  $id: _id,
  ...root
} = source as Schema & { definitions: Record<string, Schema> };

const problemSchema: Schema = {
  $id: 'Problem',
  type: 'object',
  description: 'An RFC 9457 problem: every error answer of this API.',
  required: ['type', 'title', 'status', 'detail'],
  properties: {
    type: {
      type: 'string',
      description: 'Stable problem type URI.',
      examples: ['https://shared-care-plans.org/problems/validation'],
    },
    title: { type: 'string' },
    status: { type: 'integer' },
    detail: { type: 'string' },
    instance: { type: 'string' },
    errors: {
      type: 'array',
      description: 'What was wrong and where (JSON pointer).',
      items: {
        type: 'object',
        required: ['pointer', 'detail'],
        properties: {
          pointer: { type: 'string', examples: ['/goals/0/lifecycleStatus'] },
          detail: { type: 'string' },
          in: { type: 'string', enum: ['body', 'query', 'header', 'path', 'fhir'] },
        },
      },
    },
    operationOutcome: {
      type: 'object',
      description: "The FHIR server's OperationOutcome, when it refused something.",
    },
    choices: { type: 'array', items: { type: 'string' } },
  },
};

const fhirResourceSchema: Schema = {
  $id: 'FhirResource',
  type: 'object',
  description:
    'A FHIR R4 resource (application/fhir+json), validated against the official FHIR R4 JSON schema.',
  required: ['resourceType'],
  properties: { resourceType: { type: 'string' } },
};

export const carePlanSchemas: Schema[] = [
  ...Object.entries(definitions).map(([name, schema]) => ({ $id: name, ...(rewriteRefs(schema) as Schema) })),
  { $id: 'SharedCarePlan', ...(rewriteRefs(root) as Schema) },
  problemSchema,
  fhirResourceSchema,
];
