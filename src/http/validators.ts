// The API's request validators: bodies against schemas/ (no coercion, unknown properties rejected, every error
// reported up to a limit), query, path and header parameters (coerced, defaults applied).
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import type { FastifyInstance } from 'fastify';
import { linearErrors, withErrorLimit } from '../fhir/validation/ajv-code.js';
import type { SharedCarePlan } from '../model/care-plan.js';
import type { ErrorDetail } from '../model/errors.js';
import { FHIR_FORMATS } from '../model/formats.js';
import { carePlanSchemas } from './schemas.js';

function bodyValidator(allErrors: boolean): Ajv {
  // Bodies: no coercion, unknown properties rejected (never stripped), every error reported (up to a limit).
  // Errors are appended, not copied per reference: allErrors stays linear in the body's size (ajv-code.ts).
  const ajv = new Ajv({
    allErrors,
    strict: false,
    coerceTypes: false,
    removeAdditional: false,
    useDefaults: false,
    code: { process: linearErrors },
  });
  for (const [name, format] of Object.entries(FHIR_FORMATS)) ajv.addFormat(name, format);
  for (const schema of carePlanSchemas) ajv.addSchema(schema);
  return ajv;
}

/** A body's allErrors run stops after this many errors (at most MAX_LISTED_ERRORS are listed anyway). */
const BODY_ERROR_LIMIT = 1000;

/**
 * Body validation: a first-error validator decides; only an invalid body is run again with every error, stopped
 * after BODY_ERROR_LIMIT (a body can have an error per JSON value). A stopped run ends with an `errorLimit` error.
 */
type Compile = (schema: object) => ValidateFunction;

/**
 * One validator per distinct schema: routes share most of theirs (path ids, headers, the plan), and AJV, which
 * caches by schema object, would compile each copy again (87 compilations at start-up for 35 schemas). A validator
 * runs synchronously, so routes can share one and its `errors`.
 */
function memoized(compile: Compile): Compile {
  const compiled = new Map<string, ValidateFunction>();
  return (schema) => {
    const key = JSON.stringify(schema);
    let validate = compiled.get(key);
    if (!validate) {
      validate = compile(schema);
      compiled.set(key, validate);
    }
    return validate;
  };
}

function boundedBodyValidator(fast: Compile, all: Compile, schema: object) {
  const decide = fast(schema);
  // Compiled on the first invalid body of the route, not at start-up: it is only ever run on one, and compiling
  // every route's pair was about a third of the time to readiness (bench/README.md, readyMs).
  let report: ValidateFunction | undefined;
  const validate = (data: unknown): boolean => {
    if (decide(data)) return true;
    report ??= all(schema);
    const run = withErrorLimit(BODY_ERROR_LIMIT, report, data);
    if (run.valid) {
      validate.errors = decide.errors ?? [];
      return false;
    }
    validate.errors = run.stopped
      ? [
          ...run.errors,
          { instancePath: '', schemaPath: '', keyword: 'errorLimit', params: { limit: BODY_ERROR_LIMIT } },
        ]
      : run.errors;
    return false;
  };
  validate.errors = [] as ErrorObject[];
  return validate;
}

function parameterValidator(): Ajv {
  const ajv = new Ajv({
    allErrors: true,
    strict: false,
    coerceTypes: 'array',
    removeAdditional: false,
    useDefaults: true,
  });
  for (const [name, format] of Object.entries(FHIR_FORMATS)) ajv.addFormat(name, format);
  return ajv;
}

/**
 * Installs the validators on the app; returns the check of a whole plan against the API schema (for plans an
 * edit changed).
 */
export function installValidators(app: FastifyInstance): (plan: SharedCarePlan) => ErrorDetail[] {
  // The every-error instance, made when it is first needed (as are its validators, see above).
  let bodies: Ajv | undefined;
  const allErrorBodies = (): Ajv => {
    bodies ??= bodyValidator(true);
    return bodies;
  };
  const firstErrorBodies = bodyValidator(false);
  const decide = memoized((schema) => firstErrorBodies.compile(schema));
  const report = memoized((schema) => allErrorBodies().compile(schema));
  const parameters = parameterValidator();
  const parameter = memoized((schema) => parameters.compile(schema));
  app.setValidatorCompiler(({ schema, httpPart }) =>
    httpPart === 'body' ? boundedBodyValidator(decide, report, schema) : parameter(schema),
  );
  // Compiled on the first edit, not at start-up (about a tenth of the time to readiness).
  let planSchema: ReturnType<Ajv['getSchema']>;
  return (plan) => {
    planSchema ??= allErrorBodies().getSchema('SharedCarePlan#');
    return planSchema?.(plan)
      ? []
      : (planSchema?.errors ?? []).map((e) => ({
          pointer: e.instancePath,
          detail: e.message ?? 'is invalid',
        }));
  };
}
