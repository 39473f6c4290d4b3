// Taking FHIR elements into the model: each helper takes an element only when the model can hold it exactly, and
// leaves it in the remainder (carried as unmappedFhir) otherwise.
import type { Extension, CodeableConcept as FhirCodeableConcept } from 'fhir/r4.js';
import type { CodeableConcept, Reference } from '../../model/care-plan.js';
import { cloneJson, isPlainObject, type Json, type JsonObject, jsonEqual } from './carry.js';
import { EXTENSION, MANAGED_IDENTIFIER_SYSTEMS, SYSTEM } from './codes.js';

export type Obj = Record<string, unknown>;
export const text = (value: unknown): string | undefined =>
  typeof value === 'string' && /\S/.test(value) ? value : undefined;

/**
 * A code of one of the mapping's own tables, taken from `rest[key]` only when that CodeableConcept is exactly
 * what the mapping builds for the code (otherwise it stays carried as it is).
 */
export function takeOwnCode<C extends string>(
  rest: Obj,
  key: string,
  labels: Record<C, string>,
  build: (code: C) => FhirCodeableConcept,
): C | undefined {
  const code = (rest[key] as FhirCodeableConcept | undefined)?.coding?.[0]?.code;
  if (!code || !(code in labels)) return undefined;
  return takeIfEqual(rest, key, build(code as C)) ? (code as C) : undefined;
}

/** Removes `key` from `rest` when it equals `expected`; reports whether it did. */
export function takeIfEqual(rest: Obj, key: string, expected: unknown): boolean {
  if (rest[key] !== undefined && jsonEqual(rest[key], expected)) {
    delete rest[key];
    return true;
  }
  return false;
}

const REFERENCE_PATTERN =
  /^(#[A-Za-z0-9\-.]{1,64}|[A-Z][A-Za-z]+\/[A-Za-z0-9\-.]{1,64}(\/_history\/[A-Za-z0-9\-.]{1,64})?|https?:\/\/\S+|urn:(uuid|oid):\S+)$/;

/** Splits a FHIR Reference into what the model holds and the rest. */
export function splitReference(value: unknown): { model?: Reference; rest?: JsonObject } {
  if (!isPlainObject(value)) return {};
  const rest: Obj = { ...value };
  const model: Reference = {};
  if (typeof rest.reference === 'string' && REFERENCE_PATTERN.test(rest.reference)) {
    model.reference = rest.reference;
    delete rest.reference;
  }
  if (text(rest.type) && /^\S+$/.test(rest.type as string)) {
    model.type = rest.type as string;
    delete rest.type;
  }
  if (text(rest.display)) {
    model.display = rest.display as string;
    delete rest.display;
  }
  return {
    model: Object.keys(model).length ? model : undefined,
    rest: Object.keys(rest).length ? (rest as JsonObject) : undefined,
  };
}

/** A reference the model can hold completely, or undefined. */
export function wholeReference(value: unknown): Reference | undefined {
  const { model, rest } = splitReference(value);
  return model && !rest ? model : undefined;
}

/** An array of references the model can hold completely, or undefined. */
export function wholeReferences(value: unknown): Reference[] | undefined {
  if (!Array.isArray(value)) return undefined;
  const refs = value.map(wholeReference);
  return refs.every((r): r is Reference => r !== undefined) ? refs : undefined;
}

const CODING_KEYS = new Set(['system', 'version', 'code', 'display', 'userSelected']);
export function wholeCodeableConcept(value: unknown): CodeableConcept | undefined {
  if (!isPlainObject(value)) return undefined;
  if (!Object.keys(value).every((k) => k === 'coding' || k === 'text')) return undefined;
  if (value.text !== undefined && !text(value.text)) return undefined;
  if (value.coding !== undefined) {
    if (!Array.isArray(value.coding) || value.coding.length === 0) return undefined;
    const codingOk = value.coding.every(
      (c) =>
        isPlainObject(c) &&
        Object.keys(c).length > 0 &&
        Object.entries(c).every(([k, v]) => CODING_KEYS.has(k) && (typeof v === 'boolean' || text(v))),
    );
    if (!codingOk) return undefined;
  }
  return cloneJson(value) as CodeableConcept;
}

const PERIOD_KEYS = new Set(['start', 'end']);
export function wholePeriod(value: unknown): { start?: string; end?: string } | undefined {
  if (!isPlainObject(value) || !Object.keys(value).length) return undefined;
  return Object.entries(value).every(([k, v]) => PERIOD_KEYS.has(k) && typeof v === 'string')
    ? (cloneJson(value) as { start?: string; end?: string })
    : undefined;
}

const QUANTITY_KEYS = new Set(['value', 'comparator', 'unit', 'system', 'code']);
export function wholeQuantity(value: unknown): Obj | undefined {
  if (!isPlainObject(value) || !Object.keys(value).length) return undefined;
  return Object.keys(value).every((k) => QUANTITY_KEYS.has(k)) ? cloneJson(value) : undefined;
}

/** Moves the subject out of `rest` when it is the plan's patient; keeps any difference. */
export function takeSubject(rest: Obj, key: string, patient: Reference) {
  const { model, rest: extra } = splitReference(rest[key]);
  if (model && jsonEqual(model, patient)) {
    if (extra) rest[key] = extra;
    else delete rest[key];
  }
}

/**
 * Strips what the server manages and the claim the mapping adds back itself (`ownClaim`, exactly). Every other
 * profile the input claimed moves, unchanged, into a source-profile-claim extension on meta: the service claims only
 * the profiles it checks, and cannot vouch for someone else's claim once it has mapped and rewritten the resource
 * (a claim of another US Core version, PACIO, SDOHCC...), yet nothing is lost.
 */
export function takeMeta(rest: Obj, ownClaim: string | undefined) {
  if (!isPlainObject(rest.meta)) return;
  const meta: Obj = { ...rest.meta };
  delete meta.versionId;
  delete meta.lastUpdated;
  if (Array.isArray(meta.profile)) {
    const others = meta.profile.filter((p) => p !== ownClaim);
    delete meta.profile;
    if (others.length) {
      const kept = Array.isArray(meta.extension) ? meta.extension : [];
      meta.extension = [
        ...kept,
        ...others.map((claim) => ({ url: EXTENSION.sourceProfileClaim, valueCanonical: claim })),
      ] as Json[];
    }
  }
  if (Object.keys(meta).length) rest.meta = meta as JsonObject;
  else delete rest.meta;
}

/** Removes this project's own identifiers; returns the goal key if there is one. */
export function takeIdentifiers(rest: Obj): string | undefined {
  if (!Array.isArray(rest.identifier)) return undefined;
  let key: string | undefined;
  const others = rest.identifier.filter((identifier: { system?: string; value?: string }) => {
    // Managed identifiers (plan membership, idempotency) are the service's, rewritten from what it stored.
    if (MANAGED_IDENTIFIER_SYSTEMS.includes(identifier.system ?? '')) return false;
    if (identifier.system !== SYSTEM.goalKey || Object.keys(identifier).length !== 2) return true;
    key = identifier.value;
    return false;
  });
  if (others.length) rest.identifier = others;
  else delete rest.identifier;
  return key;
}

/** Takes the extensions `parse` understands (exactly); leaves the others. */
export function takeExtensions<T>(
  rest: Obj,
  url: string,
  parse: (extension: Extension) => T | undefined,
): T[] {
  if (!Array.isArray(rest.extension)) return [];
  const taken: T[] = [];
  const others = (rest.extension as Extension[]).filter((extension) => {
    if (extension.url !== url) return true;
    const parsed = parse(extension);
    if (parsed === undefined) return true;
    taken.push(parsed);
    return false;
  });
  if (others.length) rest.extension = others;
  else delete rest.extension;
  return taken;
}

export function finish(rest: Obj, consumed: string[]): JsonObject | undefined {
  for (const key of consumed) delete rest[key];
  return Object.keys(rest).length ? (rest as JsonObject) : undefined;
}
