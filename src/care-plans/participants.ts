// Who the caller is on one plan (access.ts: Role): patient, family member on its care team, professional, or a
// client without a person. Anyone else is shown no plan (404). Reads the RelatedPerson a family member's token
// names, when the FHIR server holds it, to check that it is the plan's patient's.
import type { RelatedPerson } from 'fhir/r4.js';
import { personType, subjectPatient } from '../auth/caller.js';
import { FhirServerError } from '../fhir/client/gateway.js';
import type { SharedCarePlan } from '../model/care-plan.js';
import { hiddenPlan, type Participant } from './access.js';
import type { UseCaseDeps } from './deps.js';
import type { PlanContext } from './types.js';

/** The display name of a person as the plan knows it (its patient, a team member), if it does. */
export function knownName(plan: SharedCarePlan, reference: string): string | undefined {
  if (subjectPatient(plan.patient?.reference) === reference && plan.patient?.display)
    return plan.patient.display;
  return plan.careTeam?.members.find((m) => m.member.reference === reference)?.member.display;
}

function nameOf(person: RelatedPerson | undefined): string | undefined {
  const name = person?.name?.[0];
  if (!name) return undefined;
  return name.text ?? ([...(name.given ?? []), name.family].filter(Boolean).join(' ') || undefined);
}

/** The caller's role on `plan`; throws hiddenPlan for a person who has none. */
export async function participantOf(
  deps: UseCaseDeps,
  plan: SharedCarePlan,
  context: PlanContext,
): Promise<Participant> {
  const person = context.caller?.person;
  const type = personType(person);
  if (!person || !type) return { role: 'client' };
  const named = (display?: string) => ({ reference: person, ...(display ? { display } : {}) });
  if (type === 'Practitioner' || type === 'PractitionerRole')
    return { role: 'professional', person: named(knownName(plan, person)) };
  const patient = subjectPatient(plan.patient?.reference);
  if (type === 'Patient') {
    if (patient !== person) throw hiddenPlan();
    return { role: 'patient', person: named(knownName(plan, person)) };
  }
  // A RelatedPerson: through a patient/ token of the plan's patient, on the plan's care team.
  const onTeam = plan.careTeam?.members.some((m) => m.member.reference === person);
  if (!context.caller?.patient || context.caller.patient !== patient || !onTeam) throw hiddenPlan();
  const held = await heldRelatedPerson(deps, person.split('/')[1], context);
  if (held && subjectPatient(held.patient?.reference) !== patient) throw hiddenPlan();
  return { role: 'family', person: named(knownName(plan, person) ?? nameOf(held)) };
}

async function heldRelatedPerson(
  deps: UseCaseDeps,
  id: string,
  context: PlanContext,
): Promise<RelatedPerson | undefined> {
  try {
    return await deps.repository.readResource<RelatedPerson>('RelatedPerson', id, context);
  } catch (error) {
    if (error instanceof FhirServerError && (error.kind === 'not-found' || error.kind === 'gone'))
      return undefined;
    throw error;
  }
}
