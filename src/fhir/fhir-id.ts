// The one rule for FHIR ids, used wherever an id enters (a path, a reference, a token claim) and again where an id
// leaves towards the FHIR server. FHIR R4 `id`: [A-Za-z0-9\-\.]{1,64} (http://hl7.org/fhir/R4/datatypes.html#id).
// Ids made only of dots are refused as well: the FHIR pattern allows `.` and `..`, but as URL path segments they
// are resolved away (RFC 3986, 5.2.4), so `CarePlan/..` would address the type, not a resource.

/** The FHIR id pattern, as a JSON Schema / OpenAPI `pattern` (no flags, portable lookahead). */
export const FHIR_ID_PATTERN = '(?!\\.+$)[A-Za-z0-9\\-.]{1,64}';

const FHIR_ID = new RegExp(`^${FHIR_ID_PATTERN}$`);
const RESOURCE_TYPE = /^[A-Z][A-Za-z]{1,63}$/;
const LITERAL_REFERENCE = /^([A-Z][A-Za-z]{1,63})\/([^/]+)$/;

export function isFhirId(value: unknown): value is string {
  return typeof value === 'string' && FHIR_ID.test(value);
}

export function isResourceType(value: unknown): value is string {
  return typeof value === 'string' && RESOURCE_TYPE.test(value);
}

/** `Type/id` with a valid type and id, else undefined. */
export function parseLiteralReference(reference: unknown): { type: string; id: string } | undefined {
  if (typeof reference !== 'string') return undefined;
  const match = LITERAL_REFERENCE.exec(reference);
  return match && isFhirId(match[2]) ? { type: match[1], id: match[2] } : undefined;
}
