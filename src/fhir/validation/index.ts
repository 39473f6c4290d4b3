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
 *
 * Bounded work: validation is linear in the size of the input (the AJV validators append errors instead of copying
 * them, see ajv-code.ts), and at most MAX_REPORTED_ISSUES issues are returned; when there are more, one last issue
 * (rule 'issue-limit') says how many were left out, so a hostile input cannot make the answer huge.
 */
import type { ErrorObject } from 'ajv';
import { withErrorLimit } from './ajv-code.js';
import { patternNames } from './generated/fhir-r4-meta.js';
import {
  checkResourceRules,
  escapePointer,
  type IssueCount,
  type ReportFn,
  type ValidationMode,
} from './rules.js';
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
/** Issues listed at most; the rest are counted (one 'issue-limit' issue says how many). */
export const MAX_REPORTED_ISSUES = 100;
export const ISSUE_LIMIT_RULE = 'issue-limit';
/** An allErrors run stops after this many schema errors (what is past it is only counted as "at least"). */
const SCHEMA_ERROR_LIMIT = 1000;
type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Validates one resource and, recursively, the resources nested in it. */
export function validateFhirResource(resource: unknown, mode: ValidationMode): FhirValidationIssue[] {
  const issues = new Issues();
  validateTopLevel(resource, mode, issues);
  return issues.result();
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
  const issues = new Issues();
  validateTopLevel(bundle, mode, issues);
  return issues.result();
}

/**
 * The issues found so far: the first MAX_REPORTED_ISSUES distinct ones, and a count of the rest (which are neither
 * kept nor described, so their cost stays small).
 */
class Issues implements IssueCount {
  readonly list: FhirValidationIssue[] = [];
  omitted = 0;
  /** True when some issues were not even counted (a validator stopped at its error limit). */
  uncounted = false;
  private readonly seen = new Set<string>();
  private resourceType = 'unknown';

  get full(): boolean {
    return this.list.length >= MAX_REPORTED_ISSUES;
  }

  add(issue: FhirValidationIssue): void {
    if (this.list.length === 0) this.resourceType = issue.resourceType;
    // exact duplicates (same path, rule and message) are reported once
    const key = `${issue.path}\u0000${issue.rule}\u0000${issue.message}`;
    if (this.seen.has(key)) return;
    if (this.full) {
      this.omitted++;
      return;
    }
    this.seen.add(key);
    this.list.push(issue);
  }

  result(): FhirValidationIssue[] {
    if (this.omitted === 0) return this.list;
    return [
      ...this.list,
      {
        resourceType: this.resourceType,
        path: '',
        message: `${this.uncounted ? 'at least ' : ''}${this.omitted} more issue${this.omitted === 1 ? '' : 's'} not listed (at most ${MAX_REPORTED_ISSUES} are reported)`,
        rule: ISSUE_LIMIT_RULE,
      },
    ];
  }
}

/**
 * Loads (and lets V8 compile) all ahead-of-time validators: call at start-up, before declaring readiness.
 * `alsoCompile` optionally compiles other resource types now instead of on first use (each costs tens of
 * ms, the first one ~100 ms more for loading the schema), e.g. ['Patient', 'Practitioner'].
 */
export function warmUpValidators(alsoCompile: readonly string[] = []): void {
  warmUp(alsoCompile);
}

function validateTopLevel(resource: unknown, mode: ValidationMode, issues: Issues): void {
  if (!isObject(resource)) {
    issues.add({
      resourceType: 'unknown',
      path: '',
      message: 'a FHIR resource must be a JSON object',
      rule: SCHEMA_RULE,
    });
    return;
  }
  const rt = resource.resourceType;
  if (typeof rt !== 'string') {
    issues.add({
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
  issues: Issues,
): void {
  const id = typeof resource.id === 'string' ? resource.id : undefined;
  const push = (path: string, message: string, rule: string): void => {
    issues.add(
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

  // 1. official schema (and, for a generated decider, the walk's element rules: see rules.ts)
  let schemaPaths: Set<string> | undefined;
  const validators = validatorsFor(rt);
  let errors: ErrorObject[] | null | undefined;
  let accepted = false;
  /** The decider refused what AJV's allErrors run accepts: the element rules must say why, or the two differ. */
  let unexplained = false;
  try {
    accepted = validators.fast(resource);
    if (!accepted) {
      if (issues.full) {
        // nothing more is listed: the first error is enough to count it
        issues.omitted++;
        issues.uncounted = true;
        errors = [];
      } else {
        const run = withErrorLimit(SCHEMA_ERROR_LIMIT, validators.all(), resource);
        if (run.stopped) issues.uncounted = true;
        if (!run.valid) errors = run.errors;
        else if (validators.decidesElementRules) unexplained = true;
        // The two decide alike; were they ever to differ, the first-error run's errors (which carry no instance
        // path) are reported at the resource.
        else errors = validators.fast.errors;
      }
    }
  } catch (err) {
    // e.g. RangeError on absurdly deep nesting
    push(prefix, `schema validation failed: ${(err as Error).message}`, SCHEMA_RULE);
    return;
  }
  const reportSchemaErrors = (found: ErrorObject[]): void => {
    for (const e of found) {
      const path = prefix + schemaErrorPath(e);
      schemaPaths?.add(path);
      // past the limit an issue is only counted: no message is built for it
      if (issues.full) issues.omitted++;
      else push(path, describeSchemaError(e), SCHEMA_RULE);
    }
  };
  if (errors) {
    schemaPaths = new Set();
    reportSchemaErrors(errors);
  }

  // 2. hand-written rules; an issue the schema already reported at the same path is not repeated
  let ruleIssues = 0;
  const report: ReportFn = (path, message, rule) => {
    ruleIssues++;
    if (schemaPaths?.has(prefix + path)) return;
    push(prefix + path, message, rule);
  };
  const elementsDecided = accepted && validators.decidesElementRules;
  checkResourceRules(resource, rt, mode, contained, report, issues, elementsDecided);
  if (unexplained && ruleIssues === 0) reportSchemaErrors(validators.fast.errors ?? []);

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
  issues: Issues,
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
  issues: Issues,
): void {
  // a non-object or a missing resourceType is already reported by the parent's schema (ResourceList)
  if (!isObject(value) || typeof value.resourceType !== 'string') return;
  validateResource(value, value.resourceType, at, mode, contained, parentDepth + 1, issues);
}

const DATE_HINT =
  ' (YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDThh:mm:ss[.fff] with a timezone Z or +hh:mm; a time requires seconds and a timezone)';

/** Where a schema error is: a missing or unknown property is reported at the property itself. */
function schemaErrorPath(e: ErrorObject): string {
  const params = e.params as Record<string, unknown>;
  if (e.keyword === 'required') return `${e.instancePath}/${escapePointer(String(params.missingProperty))}`;
  if (e.keyword === 'additionalProperties') {
    return `${e.instancePath}/${escapePointer(String(params.additionalProperty))}`;
  }
  return e.instancePath;
}

function describeSchemaError(e: ErrorObject): string {
  const params = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case 'required':
      return `'${String(params.missingProperty)}' is required`;
    case 'additionalProperties':
      return `unknown element '${String(params.additionalProperty)}' (not defined here in FHIR R4)`;
    case 'enum':
      return `must be one of: ${(params.allowedValues as unknown[]).map(String).join(' | ')}`;
    case 'const':
      return `must be ${JSON.stringify(params.allowedValue)}`;
    case 'pattern': {
      const name = patternNames[String(params.pattern)];
      if (!name) return e.message ?? 'does not match the FHIR pattern';
      const hint = /date|instant/i.test(name) ? DATE_HINT : '';
      return `is not a valid FHIR ${name}${hint}`;
    }
    case 'type':
      return `must be ${params.type === 'array' ? 'an array (repeating element)' : `of JSON type ${String(params.type)}`}`;
    default:
      return e.message ?? `fails ${e.keyword}`;
  }
}
