import { badRequest, OperationOutcomeError } from '@medplum/core';
import type { OperationOutcome } from '@medplum/fhirtypes';

export const MEDPLUM_VERSION = '4.5.2';
export const SOFTWARE_NAME = `shared-care-plans embedded FHIR server (Medplum fhir-router ${MEDPLUM_VERSION})`;
export const DEFAULT_PAGE_SIZE = 20;
export const MAX_PAGE_SIZE = 1000;

/** Search parameter types that Medplum's in-memory matcher evaluates; others would silently match nothing. */
export const MATCHABLE_TYPES = new Set(['reference', 'string', 'uri', 'token', 'date']);
/** Result parameters accepted and ignored (presentation only, they do not change which resources match). */
export const IGNORED_RESULT_PARAMETERS = new Set(['_format', '_pretty', '_total', '_elements', '_summary']);
export const RESULT_PARAMETERS = new Set([
  '_count',
  '_offset',
  '_sort',
  '_include',
  '_revinclude',
  '_',
  '_cursor',
]);
export const LITERAL_REFERENCE = /^([A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})$/;
export const UUID_URN =
  /^urn:uuid:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

export function singleHeader(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

export function isJsonObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function outcome(base: OperationOutcome, diagnostics: string, expression?: string): OperationOutcome {
  return {
    ...base,
    issue: (base.issue ?? []).map((issue) => ({
      ...issue,
      diagnostics,
      ...(expression ? { expression: [expression] } : {}),
    })),
  };
}

/**
 * Parses an If-Match value: `W/"v"`, `"v"` or bare `v` (`*` means "any current version").
 * Throws 400 on anything else.
 */
export function parseIfMatch(header: string | string[] | undefined): string | undefined {
  const value = (Array.isArray(header) ? header[0] : header)?.trim();
  if (!value) {
    return undefined;
  }
  const match = /^(?:W\/)?"([^"]+)"$/.exec(value) ?? /^([^"\s,]+)$/.exec(value);
  if (!match) {
    throw new OperationOutcomeError(badRequest(`Invalid If-Match header: ${value}`));
  }
  return match[1];
}
