// Generic walk: calendar dates and extensions, everywhere in the resource except nested resources
// (contained[], Bundle.entry.resource, ...), which are validated on their own.
//
// The generated deciders (scripts/fhir-deciders.mjs) decide these same rules, with the functions exported here, in
// their own pass over a resource: for the types compiled ahead of time the walk runs only to report the issues of a
// resource a decider refused (index.ts).
import {
  ambiguousDateNames,
  dateElementNames,
  dateKeyPattern,
  dateTimePattern,
} from './generated/fhir-r4-meta.js';
import { escapePointer, hasChoice, type IssueCount, isObject, type Json, type ReportFn } from './rule-kit.js';

/**
 * Keys whose string values are FHIR date/dateTime/instant: the names typed so in the official schema
 * (generated) plus a pattern (scripts/generate-validators.mjs); never a name that is free text elsewhere
 * (`value`: Identifier.value).
 */
const DATE_KEY_PATTERN = new RegExp(dateKeyPattern);
const dateKeyCache = new Map<string, boolean>();
const derivedDateNames: ReadonlySet<string> = new Set(dateElementNames);
const ambiguousNames: ReadonlySet<string> = new Set(ambiguousDateNames);
export function isDateKey(key: string): boolean {
  let v = dateKeyCache.get(key);
  if (v === undefined) {
    v = !ambiguousNames.has(key) && (derivedDateNames.has(key) || DATE_KEY_PATTERN.test(key));
    if (dateKeyCache.size < 10_000) dateKeyCache.set(key, v);
  }
  return v;
}

/** The official FHIR R4 dateTime regex (a superset of the date and instant shapes), from the schema. */
const DATE_TIME_SHAPE = new RegExp(dateTimePattern);
const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/**
 * FHIR R4 datatypes: "Dates SHALL be valid dates" (https://hl7.org/fhir/R4/datatypes.html#date,
 * #dateTime, #instant). The schema regex allows 2026-02-30 and 2025-02-29; only strings that fully match
 * that regex are tested, so free text never produces an issue here.
 */
function impossibleDate(value: string): boolean {
  if (value.length < 10 || value.charCodeAt(4) !== 45 || value.charCodeAt(7) !== 45) return false;
  const d1 = value.charCodeAt(8) - 48;
  const d2 = value.charCodeAt(9) - 48;
  if (d1 < 0 || d1 > 9 || d2 < 0 || d2 > 9) return false;
  const day = d1 * 10 + d2;
  if (day <= 28) return false; // valid in every month: the common case needs no regex
  const year = Number(value.slice(0, 4));
  const month = Number(value.slice(5, 7));
  const leap = (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
  const max = month === 2 && leap ? 29 : DAYS_IN_MONTH[month - 1];
  if (max === undefined || day <= max) return false;
  // only a string that fully matches the FHIR regex counts (the schema reports malformed typed values)
  return DATE_TIME_SHAPE.test(value);
}

/** A date key's value (a string, or the strings of an array) holds a date that is not a real calendar date. */
export function hasImpossibleDate(value: unknown): boolean {
  if (typeof value === 'string') return impossibleDate(value);
  if (!Array.isArray(value)) return false;
  for (let i = 0; i < value.length; i++) {
    const item: unknown = value[i];
    if (typeof item === 'string' && impossibleDate(item)) return true;
  }
  return false;
}

/** An item of an extension array that checkExtension would report. */
export function isBrokenExtension(item: unknown): boolean {
  if (!isObject(item) || typeof item.resourceType === 'string') return false;
  return typeof item.url !== 'string' || hasChoice(item, 'value') === hasExtensions(item);
}

const hasExtensions = (ext: Json): boolean => Array.isArray(ext.extension) && ext.extension.length > 0;

export const MAX_DEPTH = 128;

export function walk(node: Json, path: PathTokens, report: ReportFn, depth: number, count: IssueCount): void {
  if (depth > MAX_DEPTH) {
    report(pointer(path), `nesting deeper than ${MAX_DEPTH} levels`, 'fhir-r4-schema');
    return;
  }
  // for...in (own enumerable keys of plain JSON objects) allocates no key array: this runs on every element.
  for (const key in node) {
    const value = node[key];
    if (typeof value === 'string') {
      // the cheap test of the characters first: most strings are not dates, and a key lookup costs more
      if (value.length >= 10 && impossibleDate(value) && isDateKey(key))
        dateIssue(path, key, value, report, count);
    } else if (typeof value === 'object' && value !== null) {
      if (Array.isArray(value)) {
        const isExt = key === 'extension' || key === 'modifierExtension';
        for (let i = 0; i < value.length; i++) {
          const item: unknown = value[i];
          if (typeof item === 'string') {
            if (item.length >= 10 && impossibleDate(item) && isDateKey(key)) {
              dateIssue(path, `${key}/${i}`, item, report, count);
            }
          } else if (isObject(item) && typeof item.resourceType !== 'string') {
            path.push(key, i);
            if (isExt) checkExtension(item, path, report, count);
            walk(item, path, report, depth + 1, count);
            path.pop();
            path.pop();
          }
        }
      } else if (typeof (value as Json).resourceType !== 'string') {
        path.push(key);
        walk(value as Json, path, report, depth + 1, count);
        path.pop();
      }
    }
  }
}

/** A JSON pointer under construction: keys, and array indexes as numbers (turned into text only on an issue). */
export type PathTokens = (string | number)[];

const pointer = (path: PathTokens): string =>
  path.length === 0 ? '' : `/${path.map((token) => escapePointer(String(token))).join('/')}`;

function dateIssue(path: PathTokens, key: string, value: string, report: ReportFn, count: IssueCount): void {
  if (count.full) {
    count.omitted++;
    return;
  }
  report(`${pointer(path)}/${key}`, `'${value}' is not a real calendar date`, 'fhir-r4-date');
}

/**
 * Extension (https://hl7.org/fhir/R4/extensibility.html#Extension):
 * - Extension.url is 1..1 (R4 Extension definition); the schema does not require it.
 * - ext-1: "Must have either extensions or value[x], not both" (extension.exists() != value.exists()).
 */
function checkExtension(ext: Json, path: PathTokens, report: ReportFn, count: IssueCount): void {
  const noUrl = typeof ext.url !== 'string';
  const hasValue = hasChoice(ext, 'value');
  const extended = hasExtensions(ext);
  if (count.full) {
    count.omitted += (noUrl ? 1 : 0) + (hasValue === extended ? 1 : 0);
    return;
  }
  if (noUrl) report(`${pointer(path)}/url`, 'Extension.url is required (1..1)', 'fhir-r4-cardinality');
  if (hasValue === extended) {
    report(
      pointer(path),
      hasValue
        ? 'ext-1: an extension must have either extensions or value[x], not both'
        : 'ext-1: an extension must have either extensions or value[x] (it has neither)',
      'ext-1',
    );
  }
}
