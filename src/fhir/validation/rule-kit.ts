// What every hand-written rule shares: how issues are reported and small tests over FHIR JSON.
export type ValidationMode = 'outbound' | 'inbound';
export type ReportFn = (path: string, message: string, rule: string) => void;
/** How the caller keeps issues: once it lists no more (`full`), the walk only counts them (no pointer is built). */
export interface IssueCount {
  readonly full: boolean;
  omitted: number;
}
export type Json = Record<string, unknown>;

export const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
export const asArray = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
/** JSON pointer token escaping (RFC 6901). */
export const escapePointer = (token: string): string =>
  token.includes('~') || token.includes('/') ? token.replace(/~/g, '~0').replace(/\//g, '~1') : token;

/** A primitive is present when its value or its `_element` (extensions, e.g. data-absent-reason) is. */
export const hasPrimitive = (obj: Json, key: string): boolean =>
  obj[key] !== undefined || obj[`_${key}`] !== undefined;

/** Any key of a choice element `name[x]` (e.g. valueString, _valueString, detailQuantity). */
export function hasChoice(obj: Json, name: string): boolean {
  for (const key in obj) {
    const k = key.charCodeAt(0) === 95 /* _ */ ? key.slice(1) : key;
    if (k.length > name.length && k.startsWith(name)) {
      const c = k.charCodeAt(name.length);
      if (c >= 65 && c <= 90) return true; // next char upper case: a type suffix
    }
  }
  return false;
}

export function requirePrimitive(
  obj: Json,
  key: string,
  base: string,
  element: string,
  report: ReportFn,
): void {
  if (!hasPrimitive(obj, key))
    report(`${base}/${key}`, `${element} is required (1..1)`, 'fhir-r4-cardinality');
}
