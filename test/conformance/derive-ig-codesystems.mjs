// Derives FHIR CodeSystem resources (JSON) from the FSH sources of the Person-Centered Outcomes (PCO 1.0.0) and
// SDOH Clinical Care (SDOHCC 3.0.0) implementation guides, for the conformance validator
// (test/conformance/README.md). SUSHI cannot run here (it needs the FHIR package registry for the IGs'
// dependencies), so this reads the `CodeSystem:` blocks of the FSH files named below and writes what they say:
// url (IG canonical + /CodeSystem/ + Id), name, title, description, the caret rules with plain values (status,
// experimental, caseSensitive, content, version, hierarchyMeaning, purpose, copyright) and every concept
// (`* #code "display" "definition"`, nested concepts included). `insert` rules (publisher RuleSets) are left out.
// Each output names its IG commit and source file in `meta.source`; ig/SOURCES.md lists them.
//
//   node test/conformance/derive-ig-codesystems.mjs [path/to/shared/reference]   (default ../shared/reference)
//
// The outputs are committed (test/conformance/ig/): the conformance run needs no shared/ folder.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const reference = resolve(process.argv[2] ?? join(here, '..', '..', '..', 'shared', 'reference'));
const out = join(here, 'ig');

const SOURCES = [
  {
    ig: 'hl7.fhir.us.pco',
    igVersion: '1.0.0',
    commit: 'HL7/pco-ig@32136290',
    canonical: 'http://hl7.org/fhir/us/pco',
    files: [
      'pco-ig/input/fsh/PCOTerminology.fsh',
      'pco-ig/input/fsh/WhatMattersTerminology.fsh',
      'pco-ig/input/fsh/PCOReadinessAssessment.fsh',
    ],
  },
  {
    ig: 'hl7.fhir.us.sdoh-clinicalcare',
    igVersion: '3.0.0',
    commit: 'HL7/fhir-sdoh-clinicalcare@6604b7a',
    canonical: 'http://hl7.org/fhir/us/sdoh-clinicalcare',
    files: ['sdoh-clinicalcare/input/fsh/codesystems/SDOHCCCodeSystemTemporaryCodes.fsh'],
  },
];

const TOP_LEVEL =
  /^(Alias|Profile|Extension|ValueSet|CodeSystem|Instance|RuleSet|Invariant|Mapping|Logical|Resource)\s*:/;
const unquote = (s) => s.replace(/\\"/g, '"');

function parseCodeSystems(text) {
  const lines = text.split(/\r?\n/);
  const systems = [];
  let current;
  let last; // last concept, for continuation lines
  const stack = []; // [indent, concept]
  for (const raw of lines) {
    const line = raw.replace(/\s+$/, '');
    if (/^\s*\/\//.test(line) || !line.trim()) continue;
    if (TOP_LEVEL.test(line)) {
      current = undefined;
      if (line.startsWith('CodeSystem:')) {
        current = { name: line.slice('CodeSystem:'.length).trim(), concept: [], caret: {} };
        systems.push(current);
        stack.length = 0;
      }
      continue;
    }
    if (!current) continue;
    const m1 = /^(Id|Title|Description)\s*:\s*"?(.*?)"?$/.exec(line);
    if (m1) {
      const m = m1;
      current[m[1].toLowerCase()] = unquote(m[2]);
      continue;
    }
    const m2 = /^\*\s*\^(\w+)\s*=\s*(.+)$/.exec(line);
    if (m2) {
      const m = m2;
      const value = m[2].trim();
      current.caret[m[1]] = value.startsWith('"')
        ? unquote(value.slice(1, value.lastIndexOf('"')))
        : value.startsWith('#')
          ? value.slice(1)
          : value === 'true' || value === 'false'
            ? value === 'true'
            : /^\d+$/.test(value)
              ? Number(value)
              : value;
      continue;
    }
    const m4 = /^(\s*)\*\s*#("[^"]+"|\S+)\s*(?:"((?:[^"\\]|\\.)*)")?\s*(?:"((?:[^"\\]|\\.)*)")?\s*$/.exec(
      line,
    );
    if (m4) {
      const m = m4;
      const indent = m[1].length;
      const concept = { code: m[2].replace(/^"|"$/g, '') };
      if (m[3] !== undefined) concept.display = unquote(m[3]);
      if (m[4] !== undefined) concept.definition = unquote(m[4]);
      while (stack.length && stack.at(-1)[0] >= indent) stack.pop();
      if (stack.length) {
        const parent = stack.at(-1)[1];
        parent.concept = parent.concept ?? [];
        parent.concept.push(concept);
      } else current.concept.push(concept);
      stack.push([indent, concept]);
      last = concept;
      continue;
    }
    const m3 = /^\s+"((?:[^"\\]|\\.)*)"\s*$/.exec(line);
    if (m3 && last) {
      const m = m3;
      last.definition = unquote(m[1]);
    }
    // insert rules and anything else: not taken (see the header).
  }
  return systems;
}

const count = (concepts) => concepts.reduce((n, c) => n + 1 + count(c.concept ?? []), 0);

mkdirSync(out, { recursive: true });
const written = [];
for (const source of SOURCES) {
  for (const file of source.files) {
    const text = readFileSync(join(reference, file), 'utf8');
    for (const cs of parseCodeSystems(text)) {
      const c = cs.caret;
      const resource = {
        resourceType: 'CodeSystem',
        id: cs.id,
        meta: { source: `${source.commit}/${file.split('/').slice(1).join('/')}` },
        url: `${source.canonical}/CodeSystem/${cs.id}`,
        version: typeof c.version === 'string' ? c.version : source.igVersion,
        name: cs.name,
        title: cs.title,
        status: c.status ?? 'draft',
        experimental: c.experimental,
        description: cs.description,
        purpose: c.purpose,
        copyright: c.copyright,
        caseSensitive: c.caseSensitive,
        hierarchyMeaning: c.hierarchyMeaning,
        content: c.content ?? 'complete',
        count: count(cs.concept),
        concept: cs.concept,
      };
      if (typeof c.count === 'number' && c.count !== resource.count)
        console.warn(`${file} ${cs.name}: ^count = ${c.count} but ${resource.count} concepts are defined`);
      for (const k of Object.keys(resource)) if (resource[k] === undefined) delete resource[k];
      const name = `CodeSystem-${cs.id}.json`;
      writeFileSync(join(out, name), `${JSON.stringify(resource, null, 2)}\n`);
      written.push(`${name} (${resource.count} concepts) <- ${file}`);
    }
  }
}
console.log(written.join('\n'));
