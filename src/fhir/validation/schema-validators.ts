/**
 * Per-resource-type validators against the official HL7 FHIR R4 JSON schema.
 *
 * - The types the service emits are compiled ahead of time by scripts/generate-validators.mjs into ./generated/:
 *   deciders (first-error, scripts/fhir-deciders.mjs), imported below, and AJV's allErrors validators, required
 *   on the first invalid resource (half a megabyte of code a valid resource never needs).
 * - Any other resource type (Patient, Encounter, ... in inbound data) is compiled on first use from the
 *   same prepared schema (./generated/fhir-r4.prepared.schema.json) and cached.
 * - Each type has a first-error validator (happy path) and an allErrors validator (only run when the first
 *   one fails, to report every issue).
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { Ajv as AjvClass, ErrorObject } from 'ajv';
import { linearErrors } from './ajv-code.js';
import { hasImpossibleDate, isBrokenExtension, MAX_DEPTH } from './element-walk.js';
import { aotResourceTypes, resourceTypes, schemaId } from './generated/fhir-r4-meta.js';
import { createDeciders } from './generated/fhir-r4-validators.js';

/** The generated deciders, with the walk's element rules decided in their pass (scripts/fhir-deciders.mjs). */
const fastAot = createDeciders({ hasImpossibleDate, isBrokenExtension, MAX_DEPTH });

export interface SchemaValidateFunction {
  (data: unknown): boolean;
  errors?: ErrorObject[] | null;
}

interface ValidatorPair {
  fast: SchemaValidateFunction;
  /**
   * `fast` also decides the rules' element walk (dates, extensions, depth: scripts/fhir-deciders.mjs), so that a
   * resource it accepts need not be walked again: the generated deciders do, AJV's runtime validators do not.
   */
  decidesElementRules: boolean;
  /** allErrors variant: loaded (ahead-of-time types) or compiled (the others) on first use */
  all: () => SchemaValidateFunction;
}

const knownTypes: ReadonlySet<string> = new Set(resourceTypes);
const cache = new Map<string, ValidatorPair>();
const require = createRequire(import.meta.url);

let allErrorsAot: Record<string, SchemaValidateFunction | undefined> | undefined;
const allErrorsAotFor = (type: string): SchemaValidateFunction => {
  allErrorsAot ??= require('./generated/fhir-r4-validators-all-errors.cjs') as typeof allErrorsAot;
  const all = allErrorsAot?.[type];
  if (!all) throw new Error(`generated validators lack ${type}: run scripts/generate-validators.mjs`);
  return all;
};

for (const type of aotResourceTypes) {
  const fast = (fastAot as unknown as Record<string, SchemaValidateFunction>)[type];
  if (!fast) throw new Error(`generated validators lack ${type}: run scripts/generate-validators.mjs`);
  cache.set(type, { fast, decidesElementRules: true, all: () => allErrorsAotFor(type) });
}

export function isKnownResourceType(type: string): boolean {
  return knownTypes.has(type);
}

export function isAotResourceType(type: string): boolean {
  return aotResourceTypes.includes(type);
}

/** Runtime AJV instances (first-error and allErrors), created on the first non-AOT type. */
let runtime: { fast: AjvClass; all: AjvClass } | undefined;

function runtimeAjv(): { fast: AjvClass; all: AjvClass } {
  if (runtime) return runtime;
  // ajv is CommonJS: loaded lazily so that importing this module stays cheap
  const Ajv = (require('ajv') as { Ajv: typeof AjvClass }).Ajv;
  const draft06 = require('ajv/dist/refs/json-schema-draft-06.json') as object;
  const schema = JSON.parse(
    readFileSync(new URL('./generated/fhir-r4.prepared.schema.json', import.meta.url), 'utf8'),
  ) as object;
  const make = (allErrors: boolean): AjvClass => {
    // validateSchema: false — the generator already compiled this exact schema;
    // optimize: false — compiles about twice as fast (first use of a type is on a request path);
    // linearErrors — errors are appended, not copied per reference (see ajv-code.ts)
    const ajv = new Ajv({
      strict: false,
      allErrors,
      inlineRefs: false,
      validateSchema: false,
      code: { optimize: false, process: linearErrors },
    });
    ajv.addMetaSchema(draft06);
    ajv.addSchema(schema);
    return ajv;
  };
  runtime = { fast: make(false), all: make(true) };
  return runtime;
}

function compileAtRuntime(type: string, allErrors: boolean): SchemaValidateFunction {
  const ajv = allErrors ? runtimeAjv().all : runtimeAjv().fast;
  const fn = ajv.getSchema(`${schemaId}#/definitions/${type}`);
  if (!fn) throw new Error(`no schema definition for ${type}`);
  return fn;
}

/** Validators for a known resource type (caller checks isKnownResourceType first). */
export function validatorsFor(type: string): ValidatorPair {
  let pair = cache.get(type);
  if (!pair) {
    let all: SchemaValidateFunction | undefined;
    pair = {
      fast: compileAtRuntime(type, false),
      decidesElementRules: false,
      all: () => {
        all ??= compileAtRuntime(type, true);
        return all;
      },
    };
    cache.set(type, pair);
  }
  return pair;
}

/**
 * Runs every AOT decider once before the first request (the allErrors validators stay unloaded until a resource
 * fails); optionally compiles runtime validators for other types up front (e.g. the inbound types a deployment
 * expects).
 */
export function warmUp(extraTypes: readonly string[] = []): void {
  for (const type of aotResourceTypes) cache.get(type)?.fast({ resourceType: type });
  for (const type of extraTypes) {
    if (!isKnownResourceType(type)) throw new Error(`unknown FHIR R4 resourceType '${type}'`);
    validatorsFor(type).all();
  }
}
