// External fixtures as the mapping sees them: a Goal, CareTeam or Observation on its own becomes part of a minimal
// plan (a collection Bundle holding a CarePlan that references it), so that it goes through the mapping.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Bundle, CarePlan, Resource } from 'fhir/r4.js';

/** Where the real R4 resources written by others are (test/fixtures/fhir-r4-external/SOURCES.md). */
export const EXTERNAL_FIXTURES = join(import.meta.dirname, '..', 'fixtures', 'fhir-r4-external');

/** Every external fixture, as `folder/file.json` and its parsed JSON. */
export function readExternalFixtures(
  root = EXTERNAL_FIXTURES,
): Array<{ name: string; json: Record<string, unknown> }> {
  const out: Array<{ name: string; json: Record<string, unknown> }> = [];
  for (const dir of readdirSync(root, { withFileTypes: true })) {
    if (!dir.isDirectory() || dir.name.startsWith('.')) continue;
    for (const file of readdirSync(join(root, dir.name))) {
      if (!file.endsWith('.json')) continue;
      out.push({
        name: `${dir.name}/${file}`,
        json: JSON.parse(readFileSync(join(root, dir.name, file), 'utf8')),
      });
    }
  }
  return out;
}

export function wrapStandalone(resource: Resource): Resource {
  if (resource.resourceType === 'CarePlan' || resource.resourceType === 'Bundle') return resource;
  const subject = (resource as { subject?: { reference?: string } }).subject ?? {
    reference: 'Patient/example',
  };
  const link = { reference: `${resource.resourceType}/${resource.id}` };
  const carePlan: CarePlan = {
    resourceType: 'CarePlan',
    id: 'wrapper',
    status: 'active',
    intent: 'plan',
    subject: { reference: subject.reference },
    ...(resource.resourceType === 'Goal' ? { goal: [link] } : {}),
    ...(resource.resourceType === 'CareTeam' ? { careTeam: [link] } : {}),
    ...(resource.resourceType === 'Observation' ? { supportingInfo: [link] } : {}),
  };
  return {
    resourceType: 'Bundle',
    type: 'collection',
    entry: [
      { fullUrl: 'http://example.org/fhir/CarePlan/wrapper', resource: carePlan },
      { fullUrl: `http://example.org/fhir/${resource.resourceType}/${resource.id}`, resource },
    ],
  } as Bundle;
}
