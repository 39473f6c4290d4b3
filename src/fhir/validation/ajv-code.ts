/**
 * AJV `code.process` hook: bounded error collection for allErrors validators.
 *
 * - AJV gathers the errors of a referenced definition with `vErrors = vErrors.concat(child.errors)`, a copy of every
 *   error so far per failing reference: an array of 100,000 bad items took tens of seconds (quadratic). Appending in
 *   place makes it linear.
 * - Every error is also noted in a process-wide sink: inside `withErrorLimit`, the validator stops (throws the sink)
 *   once it has made `limit` errors, so a body with an error per JSON value costs the same as one with `limit`.
 *
 * scripts/generate-validators.mjs applies the same rewrite to the validators it compiles ahead of time (keep the two
 * in step); the API's body validator (app.ts) and the FHIR validators compiled at run time use this one.
 */
import type { ErrorObject } from 'ajv';

interface ErrorSink {
  active: boolean;
  limit: number;
  list: ErrorObject[];
}

const SINK_KEY = Symbol.for('shared-care-plans/ajv-error-sink');
const globals = globalThis as unknown as Record<symbol, ErrorSink | undefined>;
globals[SINK_KEY] ??= { active: false, limit: 0, list: [] };
const sink = globals[SINK_KEY] as ErrorSink;

export const ERROR_HELPERS =
  "const errorSink = (globalThis[Symbol.for('shared-care-plans/ajv-error-sink')] ??= { active: false, limit: 0, list: [] });\n" +
  'function noteError(e) { if (errorSink.active) { if (errorSink.list.length >= errorSink.limit) throw errorSink; errorSink.list.push(e); } }\n' +
  'function appendErrors(to, more) { for (let i = 0; i < more.length; i++) to.push(more[i]); return to; }\n';

export function linearErrors(code: string): string {
  const rewritten = code
    .replace(/vErrors\.concat\(([\w.]+)\.errors\)/g, 'appendErrors(vErrors, $1.errors)')
    .replace(/vErrors\.push\((err\d+)\);\}errors\+\+;/g, 'vErrors.push($1);}errors++;noteError($1);');
  return rewritten === code ? code : ERROR_HELPERS + rewritten;
}

export interface LimitedResult {
  valid: boolean;
  /** The errors made: all of them, or the first `limit` when the validator was stopped. */
  errors: ErrorObject[];
  stopped: boolean;
}

/** Runs an allErrors validator that stops after `limit` errors. */
export function withErrorLimit(
  limit: number,
  validate: { (data: unknown): boolean; errors?: ErrorObject[] | null },
  data: unknown,
): LimitedResult {
  const outer = { active: sink.active, limit: sink.limit, list: sink.list };
  sink.active = true;
  sink.limit = limit;
  sink.list = [];
  try {
    const valid = validate(data);
    return { valid, errors: validate.errors ?? [], stopped: false };
  } catch (error) {
    if (error !== sink) throw error;
    return { valid: false, errors: sink.list, stopped: true };
  } finally {
    sink.active = outer.active;
    sink.limit = outer.limit;
    sink.list = outer.list;
  }
}
