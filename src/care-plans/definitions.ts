// This project's own conformance resources: the StructureDefinitions of its extensions (schemas/fhir/) and the
// CodeSystems of its codes, built from the same tables the mapping uses, so they can never disagree.
import { readdirSync, readFileSync } from 'node:fs';
import type { CodeSystem, StructureDefinition } from 'fhir/r4.js';
import { BARRIER_LABEL, CANONICAL_BASE, ROLE_LABEL, SYSTEM } from '../fhir/mapping/codes.js';
import { fromRoot } from '../paths.js';

type Definition = StructureDefinition | CodeSystem;

function codeSystem(
  id: string,
  url: string,
  title: string,
  description: string,
  concepts: Record<string, string>,
): CodeSystem {
  return {
    resourceType: 'CodeSystem',
    id,
    url,
    version: '0.1.0',
    name: title.replace(/[^A-Za-z]/g, ''),
    title,
    status: 'draft',
    experimental: false,
    publisher: 'shared-care-plans',
    description,
    caseSensitive: true,
    content: 'complete',
    count: Object.keys(concepts).length,
    concept: Object.entries(concepts).map(([code, display]) => ({ code, display })),
  };
}

function load(): Map<string, Definition> {
  const definitions = new Map<string, Definition>();
  const folder = fromRoot('schemas', 'fhir');
  for (const file of readdirSync(folder).filter((f) => f.endsWith('.json'))) {
    const resource = JSON.parse(readFileSync(`${folder}/${file}`, 'utf8')) as Definition;
    definitions.set(`${resource.resourceType}/${resource.id}`, resource);
  }
  const systems = [
    codeSystem(
      'care-team-role',
      SYSTEM.careTeamRole,
      'Care team role',
      'Roles in a shared care team, in plain words. Mapped alongside SNOMED CT where a code exists.',
      ROLE_LABEL,
    ),
    codeSystem(
      'barrier-category',
      SYSTEM.barrierCategory,
      'Barrier category',
      'What gets in the way of a goal.',
      BARRIER_LABEL,
    ),
    codeSystem(
      'what-matters',
      SYSTEM.whatMattersComponent,
      'What matters',
      "Codes of the 'what matters to me' Observation.",
      {
        'what-matters': 'What matters to me',
        value: 'Personal value',
      },
    ),
  ];
  for (const system of systems) definitions.set(`CodeSystem/${system.id}`, system);
  for (const definition of definitions.values()) {
    if (!definition.url?.startsWith(CANONICAL_BASE))
      throw new Error(`${definition.id}: canonical URL outside ${CANONICAL_BASE}`);
  }
  return definitions;
}

export const projectDefinitions: ReadonlyMap<string, Definition> = load();
