// The API's request validators: bodies against schemas/ (no coercion, unknown properties rejected, every error
// reported up to a limit), query, path and header parameters (coerced, defaults applied). The first-error body and
// the parameter validators of every route are compiled ahead of time by scripts/generate-route-validators.mjs into
// the built tree (dist/src/http/generated/); a schema without one (tests run src/) is compiled here.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { Ajv, CodeOptions, ErrorObject, ValidateFunction } from 'ajv';
import type { FastifySchemaCompiler } from 'fastify';
import { linearErrors, withErrorLimit } from '../fhir/validation/ajv-code.js';
import type { SharedCarePlan } from '../model/care-plan.js';
import type { ErrorDetail } from '../model/errors.js';
import { FHIR_FORMATS } from '../model/formats.js';
import { carePlanSchemas } from './schemas.js';

/**
 * AJV's class, loaded when an instance is first made: with the generated validators the built app makes none
 * before a body or an edited plan first fails validation, and importing AJV (CommonJS, 63 files) cost start-up
 * 25-30 ms.
 */
function ajvClass(): typeof Ajv {
  return (createRequire(import.meta.url)('ajv') as { Ajv: typeof Ajv }).Ajv;
}

/** The AJV instance of request bodies; `code` adds options for the ahead-of-time generator (standalone source). */
export function bodyAjv(allErrors: boolean, code: CodeOptions = {}): Ajv {
  // Bodies: no coercion, unknown properties rejected (never stripped), every error reported (up to a limit).
  // Errors are appended, not copied per reference: allErrors stays linear in the body's size (ajv-code.ts).
  const ajv = new (ajvClass())({
    allErrors,
    strict: false,
    coerceTypes: false,
    removeAdditional: false,
    useDefaults: false,
    code: { process: linearErrors, ...code },
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

export type RouteSchemaKind = 'body' | 'parameter';

/** The name a route schema's ahead-of-time validator is exported under: its kind and a hash of its JSON. */
export function precompiledName(kind: RouteSchemaKind, schema: object): string {
  const hash = createHash('sha256').update(JSON.stringify(schema)).digest('hex').slice(0, 24);
  return `${kind === 'body' ? 'b' : 'p'}${hash}`;
}

/** Validators compiled ahead of time, by precompiledName. */
export type PrecompiledValidators = Readonly<Record<string, ValidateFunction | undefined>>;

export interface ValidatorOptions {
  precompiled?: PrecompiledValidators;
  /** Told every distinct schema a route compiles (the generator records them); `precompiled`: whether one was. */
  onSchema?: (kind: RouteSchemaKind, schema: object, precompiled: boolean) => void;
}

/**
 * What the generated validators depend on that the service reads at run time: the API's schemas (schemas/, through
 * schemas.ts). A build whose validators were made from other schemas than today's files (the files changed and
 * dist/ was not rebuilt) must not use them; the code itself changes only with a build, which regenerates them.
 */
export function schemasFingerprint(): string {
  return createHash('sha256').update(JSON.stringify(carePlanSchemas)).digest('hex').slice(0, 24);
}

/**
 * The validators generated into the built tree, or none: in src/, in a build without them, or when they were made
 * from other schemas than `fingerprint` (then every route schema is compiled at run time, as in src/). Loaded by
 * path: the module exists only after `npm run build`.
 */
export async function loadPrecompiledValidators(
  fingerprint = schemasFingerprint(),
): Promise<PrecompiledValidators> {
  const url = new URL('./generated/route-validators.js', import.meta.url);
  if (!existsSync(fileURLToPath(url))) return {};
  const { SCHEMAS_FINGERPRINT, ...validators } = (await import(url.href)) as Record<string, unknown>;
  return SCHEMAS_FINGERPRINT === fingerprint ? (validators as PrecompiledValidators) : {};
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

/** The AJV instance of query, path and header parameters (`code`: as for bodyAjv). */
export function parameterAjv(code: CodeOptions = {}): Ajv {
  const ajv = new (ajvClass())({
    allErrors: true,
    strict: false,
    coerceTypes: 'array',
    removeAdditional: false,
    useDefaults: true,
    code,
  });
  for (const [name, format] of Object.entries(FHIR_FORMATS)) ajv.addFormat(name, format);
  return ajv;
}

type FastifyValidatorCompiler = FastifySchemaCompiler<object>;

export interface RouteValidators {
  /** Fastify's validator compiler (every route's body, query, params and headers). */
  compiler: FastifyValidatorCompiler;
  /** The check of a whole plan against the API schema (for plans an edit changed). */
  checkSchema: (plan: SharedCarePlan) => ErrorDetail[];
}

/** The schema of a whole plan as the routes that take one give it. */
const PLAN_BODY = { $ref: 'SharedCarePlan#' };

export function routeValidators({ precompiled = {}, onSchema }: ValidatorOptions = {}): RouteValidators {
  // The AJV instances, made when first needed: with the generated validators, only the every-error one ever is
  // (on the first invalid body), and building one costs about 40 ms of start-up (adding and checking schemas/).
  let bodies: Ajv | undefined;
  const allErrorBodies = (): Ajv => {
    bodies ??= bodyAjv(true);
    return bodies;
  };
  let firstErrors: Ajv | undefined;
  let parameters: Ajv | undefined;
  const compiledBy = (kind: RouteSchemaKind, runtime: () => Ajv) =>
    memoized((schema) => {
      const generated = precompiled[precompiledName(kind, schema)];
      onSchema?.(kind, schema, !!generated);
      return generated ?? runtime().compile(schema);
    });
  const decide = compiledBy('body', () => {
    firstErrors ??= bodyAjv(false);
    return firstErrors;
  });
  const report = memoized((schema) => allErrorBodies().compile(schema));
  const parameter = compiledBy('parameter', () => {
    parameters ??= parameterAjv();
    return parameters;
  });
  const compiler: FastifyValidatorCompiler = ({ schema, httpPart }) =>
    httpPart === 'body' ? boundedBodyValidator(decide, report, schema) : parameter(schema);
  // A plan an edit made is decided by the plan body's first-error validator (generated in the built tree); the
  // every-error one, compiled on the first failure, only reports (it was about a tenth of the time to readiness).
  let decidePlan: ValidateFunction | undefined;
  let planSchema: ReturnType<Ajv['getSchema']>;
  const checkSchema = (plan: SharedCarePlan): ErrorDetail[] => {
    decidePlan ??= decide(PLAN_BODY);
    if (decidePlan(plan)) return [];
    planSchema ??= allErrorBodies().getSchema('SharedCarePlan#');
    return planSchema?.(plan)
      ? []
      : (planSchema?.errors ?? []).map((e) => ({
          pointer: e.instancePath,
          detail: e.message ?? 'is invalid',
        }));
  };
  return { compiler, checkSchema };
}
