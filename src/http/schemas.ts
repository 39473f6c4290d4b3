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
const example = (name: string) => JSON.parse(readFileSync(fromRoot('schemas', 'examples', name), 'utf8'));
export const examplePlan = example('patient-led-plan.json');
/** FHIR written by others, for $from-fhir: resources from the PCO and HL7 R4 examples, unchanged. */
export const exampleFhirBundle = example('from-fhir-pco-bundle.json');
export const exampleFhirCarePlan = example('from-fhir-contained-careplan.json');

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

/** A partial goal or activity for PATCH: the fields given replace the stored ones; ids cannot change. */
function patchOf(name: string): Schema {
  const {
    required: _required,
    oneOf: _oneOf,
    dependencies: _dependencies,
    not: _not,
    ...schema
  } = definitions[name] as Schema & {
    properties: Record<string, unknown>;
  };
  const { id: _id, ...properties } = (schema as { properties: Record<string, unknown> }).properties;
  return {
    ...(rewriteRefs(schema) as Schema),
    $id: `${name}Patch`,
    description: `Changes to one ${name.toLowerCase()}: the fields given replace the stored ones.`,
    properties: rewriteRefs(properties),
    minProperties: 1,
  };
}

const pageSchema = (id: string, item: Schema, description: string): Schema => ({
  $id: id,
  type: 'object',
  description,
  required: ['items', 'next'],
  properties: {
    items: { type: 'array', items: item },
    next: {
      type: ['string', 'null'],
      description: 'Opaque cursor of the next page (null on the last page).',
    },
  },
});

export const carePlanSchemas: Schema[] = [
  ...Object.entries(definitions).map(([name, schema]) => ({ $id: name, ...(rewriteRefs(schema) as Schema) })),
  { $id: 'SharedCarePlan', ...(rewriteRefs(root) as Schema) },
  problemSchema,
  fhirResourceSchema,
  patchOf('Goal'),
  patchOf('Activity'),
  patchOf('Preference'),
  patchOf('Strength'),
  patchOf('Barrier'),
  pageSchema('CarePlanPage', { $ref: 'SharedCarePlan#' }, 'A page of plans.'),
  {
    $id: 'ChangeFeedPage',
    type: 'object',
    required: ['items', 'next'],
    description: 'Changes to plans, oldest first. An empty items list means the consumer is up to date.',
    properties: {
      items: {
        type: 'array',
        items: {
          type: 'object',
          required: ['id', 'version', 'lastUpdated', 'status'],
          properties: {
            id: { type: 'string' },
            version: { type: 'string' },
            lastUpdated: { type: 'string' },
            status: { type: 'string' },
            patient: { type: 'string' },
          },
        },
      },
      next: { type: 'string', description: 'The cursor to resume from (always present).' },
    },
  },
  {
    $id: 'PlanHistory',
    type: 'object',
    required: ['items'],
    description: 'The versions of a plan, newest first.',
    properties: {
      items: {
        type: 'array',
        items: {
          type: 'object',
          required: ['version'],
          properties: {
            version: { type: 'string' },
            lastUpdated: { type: 'string' },
            status: { type: 'string' },
            changedBy: {
              type: 'string',
              description: "Who made the change, when known: the person's name (fhirUser), else the client.",
            },
            changedByReference: {
              type: 'string',
              description: 'The person (Patient/..., RelatedPerson/..., ...).',
            },
            via: { type: 'string', description: 'The client the person used.' },
          },
        },
      },
    },
  },
];
