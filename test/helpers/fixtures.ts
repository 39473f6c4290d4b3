// External fixtures as the mapping sees them: a Goal, CareTeam or Observation on its own becomes part of a minimal
// plan (a collection Bundle holding a CarePlan that references it), so that it goes through the mapping.
import type { Bundle, CarePlan, Resource } from 'fhir/r4.js';

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
