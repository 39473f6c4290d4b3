/**
 * Resource validation for the embedded FHIR server: Medplum's structural validator (cardinality, types,
 * unknown elements, FHIRPath invariants) plus two checks it lacks and that a real FHIR server makes:
 * required bindings on `code` elements (e.g. `CarePlan.status`) and calendar-valid date/dateTime/instant
 * values with a time zone whenever a time is given.
 */
import type { TypedValueWithPath } from '@medplum/core';
import {
  crawlTypedValue,
  normalizeErrorString,
  OperationOutcomeError,
  toTypedValue,
  validateResource,
} from '@medplum/core';
import type { OperationOutcome, OperationOutcomeIssue, Resource } from '@medplum/fhirtypes';
import { getValueSetCodes } from './definitions.js';

/**
 * Validates a resource; throws an OperationOutcomeError (HTTP 400) listing every error found.
 * Every issue carries `expression` (where) and `diagnostics` (what), as clients expect.
 * @param resource - The resource to validate.
 */
export function assertStorable(resource: Resource): void {
  if (typeof resource !== 'object' || resource === null || Array.isArray(resource)) {
    throw new OperationOutcomeError(invalid('Resource must be a JSON object', []));
  }
  try {
    validateResource(resource);
  } catch (err) {
    if (err instanceof OperationOutcomeError) {
      throw new OperationOutcomeError(withDiagnostics(err.outcome), err);
    }
    // Unknown resourceType and similar cases surface as plain errors from the type schema lookup
    throw new OperationOutcomeError(invalid(normalizeErrorString(err), ['resourceType']), err);
  }
  const issues = checkCodesAndDates(resource);
  if (issues.length > 0) {
    throw new OperationOutcomeError({ resourceType: 'OperationOutcome', issue: issues });
  }
}

function invalid(message: string, expression: string[]): OperationOutcome {
  return {
    resourceType: 'OperationOutcome',
    issue: [
      {
        severity: 'error',
        code: 'invalid',
        details: { text: message },
        diagnostics: message,
        ...(expression.length ? { expression } : undefined),
      },
    ],
  };
}

function withDiagnostics(outcome: OperationOutcome): OperationOutcome {
  return {
    ...outcome,
    issue: (outcome.issue ?? []).map((issue) => {
      const text = issue.diagnostics ?? issue.details?.text ?? 'Invalid resource';
      const where = issue.expression?.length ? ` (${issue.expression.join(', ')})` : '';
      return { ...issue, diagnostics: issue.diagnostics ?? `${text}${where}` };
    }),
  };
}

const DATE_TYPES = new Set(['date', 'dateTime', 'instant']);

function checkCodesAndDates(resource: Resource): OperationOutcomeIssue[] {
  const issues: OperationOutcomeIssue[] = [];
  crawlTypedValue(toTypedValue(resource), {
    visitProperty(_parent, key, _path, propertyValues, schema) {
      const element = schema.elements[key];
      const binding = element?.binding;
      const valueSet = binding?.strength === 'required' ? binding.valueSet : undefined;
      for (const value of propertyValues.flat() as (TypedValueWithPath | undefined)[]) {
        if (!value || typeof value.value !== 'string') {
          continue;
        }
        if (valueSet && value.type === 'code') {
          const codes = getValueSetCodes(valueSet);
          if (codes && !codes.has(value.value)) {
            const message = `Value "${value.value}" is not in the required value set ${valueSet.split('|')[0]}`;
            issues.push(issue('code-invalid', message, value.path));
          }
        } else if (DATE_TYPES.has(value.type)) {
          const problem = checkDate(value.value);
          if (problem) {
            issues.push(issue('value', `Invalid ${value.type} "${value.value}": ${problem}`, value.path));
          }
        }
      }
    },
  });
  return issues;
}

function issue(code: OperationOutcomeIssue['code'], message: string, path: string): OperationOutcomeIssue {
  return { severity: 'error', code, details: { text: message }, diagnostics: message, expression: [path] };
}

const DATE_PREFIX = /^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?/;

/** Returns a problem description, or undefined when the (already regex-checked) value is valid. */
function checkDate(value: string): string | undefined {
  const match = DATE_PREFIX.exec(value);
  if (!match) {
    return undefined; // Medplum's regex check reports the format problem
  }
  const [, year, month, day] = match;
  if (month && day) {
    const daysInMonth = new Date(Date.UTC(Number(year), Number(month), 0)).getUTCDate();
    if (Number(day) > daysInMonth) {
      return 'no such day in that month';
    }
  }
  if (value.includes('T') && !/(Z|[+-]\d{2}:\d{2})$/.test(value)) {
    return 'a time zone is required when a time is given';
  }
  return undefined;
}
