/**
 * FHIR R4 validation: the official HL7 R4 JSON schema (AJV, compiled ahead of time for the types this
 * service emits, lazily for the rest) plus hand-written rules the schema misses (./rules.ts).
 *
 * Every nested resource (contained[], Bundle.entry.resource, Bundle.entry.response.outcome,
 * Parameters.parameter[.part].resource) is validated separately by dispatch on its resourceType; issue
 * paths are JSON pointers from the top of the value passed in (e.g. /entry/3/resource/contained/0/status).
 *
 * The happy path runs first-error validators only; when a resource fails, it is re-run with an allErrors
 * validator to collect every schema issue.
 */
import type { ErrorObject } from 'ajv';
import { patternNames } from './generated/fhir-r4-meta.js';
import { checkResourceRules, escapePointer, type ReportFn, type ValidationMode } from './rules.js';
import { isKnownResourceType, validatorsFor, warmUp } from './schema-validators.js';

export type { ValidationMode } from './rules.js';
export { REQUIRED_VALUE_SETS, US_CORE_VERSION } from './rules.js';

export interface FhirValidationIssue {
  resourceType: string;
  id?: string;
  /** JSON pointer inside the validated value, e.g. /goal/0/reference or /entry/2/resource/status */
  path: string;
  message: string;
  /** 'fhir-r4-schema' or a rule id such as 'cpl-3', 'fhir-r4-binding', 'us-core-careplan' */
  rule: string;
}

const SCHEMA_RULE = 'fhir-r4-schema';
type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Validates one resource and, recursively, the resources nested in it. */
export function validateFhirResource(resource: unknown, mode: ValidationMode): FhirValidationIssue[] {
  const issues: FhirValidationIssue[] = [];
  validateTopLevel(resource, mode, issues);
  return issues;
}

/** Validates a Bundle and every entry.resource (paths /entry/N/resource/...), recursively. */
export function validateFhirBundle(bundle: unknown, mode: ValidationMode): FhirValidationIssue[] {
  if (!isObject(bundle) || bundle.resourceType !== 'Bundle') {
    const resourceType =
      isObject(bundle) && typeof bundle.resourceType === 'string' ? bundle.resourceType : 'unknown';
    return [
      {
        resourceType,
        path: isObject(bundle) ? '/resourceType' : '',
        message: 'expected a Bundle',
        rule: SCHEMA_RULE,
      },
    ];
  }
  const issues: FhirValidationIssue[] = [];
  validateTopLevel(bundle, mode, issues);
  return issues;
}

/**
 * Loads (and lets V8 compile) all ahead-of-time validators: call at start-up, before declaring readiness.
 * `alsoCompile` optionally compiles other resource types now instead of on first use (each costs tens of
 * ms, the first one ~100 ms more for loading the schema), e.g. ['Patient', 'Practitioner'].
 */
export function warmUpValidators(alsoCompile: readonly string[] = []): void {
  warmUp(alsoCompile);
}

function validateTopLevel(resource: unknown, mode: ValidationMode, issues: FhirValidationIssue[]): void {
  if (!isObject(resource)) {
    issues.push({
      resourceType: 'unknown',
      path: '',
      message: 'a FHIR resource must be a JSON object',
      rule: SCHEMA_RULE,
    });
    return;
  }
  const rt = resource.resourceType;
  if (typeof rt !== 'string') {
    issues.push({
      resourceType: 'unknown',
      path: '/resourceType',
      message: 'resourceType is required',
      rule: SCHEMA_RULE,
    });
    return;
  }
  validateResource(resource, rt, '', mode, false, 0, issues);
}

/** Resources inside resources (Bundle in Bundle, ...) deeper than this are not validated. */
const MAX_RESOURCE_NESTING = 16;

function validateResource(
  resource: Json,
  rt: string,
  prefix: string,
  mode: ValidationMode,
  contained: boolean,
  depth: number,
  issues: FhirValidationIssue[],
): void {
  const id = typeof resource.id === 'string' ? resource.id : undefined;
  const push = (path: string, message: string, rule: string): void => {
    issues.push(
      id === undefined
        ? { resourceType: rt, path, message, rule }
        : { resourceType: rt, id, path, message, rule },
    );
  };
  if (!isKnownResourceType(rt)) {
    push(`${prefix}/resourceType`, `unknown FHIR R4 resourceType '${rt}'`, SCHEMA_RULE);
    return;
  }
  if (depth > MAX_RESOURCE_NESTING) {
    push(prefix, `resources nested more than ${MAX_RESOURCE_NESTING} deep are not validated`, SCHEMA_RULE);
    return;
  }

  // 1. official schema
  const first = issues.length;
  let schemaPaths: Set<string> | undefined;
  const validators = validatorsFor(rt);
  let errors: ErrorObject[] | null | undefined;
  try {
    if (!validators.fast(resource)) {
      const all = validators.all();
      errors = all(resource) ? validators.fast.errors : all.errors;
    }
  } catch (err) {
    // e.g. RangeError on absurdly deep nesting
    push(prefix, `schema validation failed: ${(err as Error).message}`, SCHEMA_RULE);
    return;
  }
  if (errors) {
    schemaPaths = new Set();
    for (const e of errors) {
      const { path, message } = describeSchemaError(e);
      schemaPaths.add(prefix + path);
      push(prefix + path, message, SCHEMA_RULE);
    }
  }

  // 2. hand-written rules; an issue the schema already reported at the same path is not repeated
  const report: ReportFn = (path, message, rule) => {
    if (schemaPaths?.has(prefix + path)) return;
    push(prefix + path, message, rule);
  };
  checkResourceRules(resource, rt, mode, contained, report);
  if (issues.length - first > 1) dedupeFrom(issues, first);

  // 3. nested resources, each on its own
  const containedList = resource.contained;
  if (Array.isArray(containedList)) {
    for (let i = 0; i < containedList.length; i++) {
      nested(containedList[i], `${prefix}/contained/${i}`, mode, true, depth, issues);
    }
  }
  if (rt === 'Bundle' && Array.isArray(resource.entry)) {
    for (let i = 0; i < resource.entry.length; i++) {
      const entry: unknown = resource.entry[i];
      if (!isObject(entry)) continue;
      nested(entry.resource, `${prefix}/entry/${i}/resource`, mode, false, depth, issues);
      if (isObject(entry.response))
        nested(entry.response.outcome, `${prefix}/entry/${i}/response/outcome`, mode, false, depth, issues);
    }
  } else if (rt === 'Parameters') {
    nestedParameters(resource.parameter, `${prefix}/parameter`, mode, depth, issues);
  }
}

function nestedParameters(
  params: unknown,
  at: string,
  mode: ValidationMode,
  depth: number,
  issues: FhirValidationIssue[],
  partDepth = 0,
): void {
  if (!Array.isArray(params) || partDepth > 64) return;
  for (let i = 0; i < params.length; i++) {
    const p: unknown = params[i];
    if (!isObject(p)) continue;
    nested(p.resource, `${at}/${i}/resource`, mode, false, depth, issues);
    nestedParameters(p.part, `${at}/${i}/part`, mode, depth, issues, partDepth + 1);
  }
}

function nested(
  value: unknown,
  at: string,
  mode: ValidationMode,
  contained: boolean,
  parentDepth: number,
  issues: FhirValidationIssue[],
): void {
  // a non-object or a missing resourceType is already reported by the parent's schema (ResourceList)
  if (!isObject(value) || typeof value.resourceType !== 'string') return;
  validateResource(value, value.resourceType, at, mode, contained, parentDepth + 1, issues);
}

/** Removes exact duplicates (same path, message and rule) from issues[first..]. */
function dedupeFrom(issues: FhirValidationIssue[], first: number): void {
  const seen = new Set<string>();
  let w = first;
  for (let r = first; r < issues.length; r++) {
    const it = issues[r];
    const key = `${it.path}\u0000${it.rule}\u0000${it.message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    issues[w++] = it;
  }
  issues.length = w;
}

const DATE_HINT =
  ' (YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDThh:mm:ss[.fff] with a timezone Z or +hh:mm; a time requires seconds and a timezone)';

function describeSchemaError(e: ErrorObject): { path: string; message: string } {
  const params = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case 'required': {
      const missing = String(params.missingProperty);
      return { path: `${e.instancePath}/${escapePointer(missing)}`, message: `'${missing}' is required` };
    }
    case 'additionalProperties': {
      const extra = String(params.additionalProperty);
      return {
        path: `${e.instancePath}/${escapePointer(extra)}`,
        message: `unknown element '${extra}' (not defined here in FHIR R4)`,
      };
    }
    case 'enum':
      return {
        path: e.instancePath,
        message: `must be one of: ${(params.allowedValues as unknown[]).map(String).join(' | ')}`,
      };
    case 'const':
      return { path: e.instancePath, message: `must be ${JSON.stringify(params.allowedValue)}` };
    case 'pattern': {
      const name = patternNames[String(params.pattern)];
      if (!name) return { path: e.instancePath, message: e.message ?? 'does not match the FHIR pattern' };
      const hint = /date|instant/i.test(name) ? DATE_HINT : '';
      return { path: e.instancePath, message: `is not a valid FHIR ${name}${hint}` };
    }
    case 'type':
      return {
        path: e.instancePath,
        message: `must be ${params.type === 'array' ? 'an array (repeating element)' : `of JSON type ${String(params.type)}`}`,
      };
    default:
      return { path: e.instancePath, message: e.message ?? `fails ${e.keyword}` };
  }
}
